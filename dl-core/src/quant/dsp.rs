//! The Cortex-M DSP multiply-accumulate loop (CMSIS-NN's `arm_nn_mat_mult_nt_t_s8` /
//! `arm_nn_vec_mat_mult_t_s8` way), written once over [`DspOps`] and instantiated
//! twice: on the real instructions through `asm!` (Arm cores with the DSP extension)
//! and on exact plain-Rust emulations of them, which the host's tests run against
//! the portable loop.
//!
//! Four int8 values packed in a 32-bit word `[b0, b1, b2, b3]` (little-endian) are
//! sign-extended into two pairs of int16: `SXTB16` gives `(b0, b2)` and
//! `SXTB16 ..., ROR #8` gives `(b1, b3)`. Doing the same to four weights and four
//! inputs pairs them in matching order, so two `SMLAD`s (each `acc += lo*lo + hi*hi`)
//! accumulate all four products without the reordering CMSIS-NN's
//! `read_and_pad_reordered` needs when only one operand is expanded. Each pass takes
//! two weight rows, so the input word and its two expansions serve both.

// `dl_arm_dsp` is set by the user (`RUSTFLAGS="--cfg dl_arm_dsp"`), so Cargo does not
// know it.
#![allow(unexpected_cfgs)]

use super::requant::Requant;
use core::mem::MaybeUninit;

/// Whether the assembly loop is compiled in (see [`super::Kernel::Dsp`]).
pub(crate) const HAS_ASM: bool = cfg!(all(
    target_arch = "arm",
    any(target_feature = "dsp", dl_arm_dsp)
));

/// Arm's `SXTB16 Rd, Rm` (ARM ARM A7.7.180, rotation 0): sign-extends bytes 0 and 2 of
/// `x` into the low and high halfwords of the result.
///
/// ```
/// use dl_core::quant::sxtb16;
/// assert_eq!(sxtb16(0x44_83_22_F1), 0xFF83_FFF1); // bytes 0x83 and 0xF1 are negative
/// ```
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    let lo = x as u8 as i8 as i16 as u16 as u32;
    let hi = (x >> 16) as u8 as i8 as i16 as u16 as u32;
    lo | (hi << 16)
}

/// Arm's `SXTB16 Rd, Rm, ROR #8`: sign-extends bytes 1 and 3 of `x` into the low and
/// high halfwords of the result.
///
/// ```
/// use dl_core::quant::sxtb16_ror8;
/// assert_eq!(sxtb16_ror8(0x44_83_22_F1), 0x0044_0022);
/// ```
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    sxtb16(x.rotate_right(8))
}

/// Arm's `SMLAD Rd, Rn, Rm, Ra` (ARM ARM A7.7.123): `Ra + Rn.lo * Rm.lo + Rn.hi *
/// Rm.hi` with signed 16-bit halves, computed exactly and then truncated to 32 bits.
/// Returns the result and whether it overflowed, which is when the hardware sets the
/// sticky `APSR.Q` flag (it still writes the wrapped value).
///
/// ```
/// use dl_core::quant::smlad;
/// assert_eq!(smlad(0x0002_0003, 0x0004_0005, 10), (10 + 3 * 5 + 2 * 4, false));
/// // (-32768)^2 + (-32768)^2 = 2^31 does not fit: wraps, and Q is set.
/// assert_eq!(smlad(0x8000_8000, 0x8000_8000, 0), (i32::MIN, true));
/// ```
#[inline(always)]
pub fn smlad(rn: u32, rm: u32, ra: i32) -> (i32, bool) {
    let p1 = i64::from(rn as u16 as i16) * i64::from(rm as u16 as i16);
    let p2 = i64::from((rn >> 16) as u16 as i16) * i64::from((rm >> 16) as u16 as i16);
    let exact = p1 + p2 + i64::from(ra);
    let result = exact as i32;
    (result, i64::from(result) != exact)
}

/// The three instructions the loop is written in.
pub(crate) trait DspOps {
    /// `SXTB16`.
    fn sxtb16(x: u32) -> u32;
    /// `SXTB16 ..., ROR #8`.
    fn sxtb16_ror8(x: u32) -> u32;
    /// `SMLAD` (the Q flag is not read by the loop).
    fn smlad(rn: u32, rm: u32, ra: i32) -> i32;

    /// The main loop: `(a0 + dot(w0, x), a1 + dot(w1, x))` over two weight rows of
    /// `8 * n` bytes and the input expanded by [`expand`] (`4 * n` words: per four
    /// input bytes, their `SXTB16` and `SXTB16 ROR #8`), as two [`mac4`] per 8 bytes.
    /// The assembly overrides it with the same instruction sequence, hand-allocated.
    #[inline(always)]
    fn blocks8(xe: &[u32], w0: &[i8], w1: &[i8], mut a0: i32, mut a1: i32) -> (i32, i32)
    where
        Self: Sized,
    {
        for ((x, p), q) in xe
            .chunks_exact(4)
            .zip(w0.chunks_exact(8))
            .zip(w1.chunks_exact(8))
        {
            (a0, a1) = mac4::<Self>(x[0], x[1], word(&p[..4]), word(&q[..4]), a0, a1);
            (a0, a1) = mac4::<Self>(x[2], x[3], word(&p[4..]), word(&q[4..]), a0, a1);
        }
        (a0, a1)
    }

    /// [`DspOps::blocks8`] for three weight rows: each expanded input word serves
    /// three rows (1.4 instructions per multiply-accumulate in the assembly).
    #[inline(always)]
    fn blocks8x3(xe: &[u32], w: [&[i8]; 3], mut a: [i32; 3]) -> [i32; 3]
    where
        Self: Sized,
    {
        for (((x, p), q), r) in xe
            .chunks_exact(4)
            .zip(w[0].chunks_exact(8))
            .zip(w[1].chunks_exact(8))
            .zip(w[2].chunks_exact(8))
        {
            for (h, (xe, xo)) in [(x[0], x[1]), (x[2], x[3])].into_iter().enumerate() {
                for (acc, row) in a.iter_mut().zip([p, q, r]) {
                    let v = word(&row[4 * h..4 * h + 4]);
                    *acc = Self::smlad(Self::sxtb16(v), xe, *acc);
                    *acc = Self::smlad(Self::sxtb16_ror8(v), xo, *acc);
                }
            }
        }
        a
    }

    /// `acc[3t + j] = bias[3t + j] + dot(row 3t + j, x)` for the `acc.len() / 3`
    /// whole triples of rows of `rows` (each `k = 2 * xe.len()` bytes, a multiple of
    /// 8; `xe` the whole input expanded): every [`DspOps::blocks8x3`] of a layer in
    /// one call. The assembly runs the loop over triples itself, keeping its state in
    /// memory, since the inner loop needs all twelve registers.
    #[inline(always)]
    fn triples(xe: &[u32], rows: &[i8], bias: &[i32], acc: &mut [MaybeUninit<i32>])
    where
        Self: Sized,
    {
        let k = xe.len() * 2;
        if k == 0 {
            return;
        }
        for ((a, b), w) in acc
            .chunks_exact_mut(3)
            .zip(bias.chunks_exact(3))
            .zip(rows.chunks_exact(3 * k))
        {
            let (w0, w12) = w.split_at(k);
            let (w1, w2) = w12.split_at(k);
            let sums = Self::blocks8x3(xe, [w0, w1, w2], [b[0], b[1], b[2]]);
            for (slot, v) in a.iter_mut().zip(sums) {
                slot.write(v);
            }
        }
    }
}

/// The instructions as plain Rust.
pub(crate) struct Emulated;

impl DspOps for Emulated {
    #[inline(always)]
    fn sxtb16(x: u32) -> u32 {
        sxtb16(x)
    }
    #[inline(always)]
    fn sxtb16_ror8(x: u32) -> u32 {
        sxtb16_ror8(x)
    }
    #[inline(always)]
    fn smlad(rn: u32, rm: u32, ra: i32) -> i32 {
        smlad(rn, rm, ra).0
    }
}

#[cfg(all(target_arch = "arm", any(target_feature = "dsp", dl_arm_dsp)))]
mod asm {
    use core::arch::asm;

    /// The instructions themselves.
    pub(crate) struct Asm;

    impl super::DspOps for Asm {
        #[inline(always)]
        fn sxtb16(x: u32) -> u32 {
            let r: u32;
            // SAFETY: SXTB16 touches only its two registers; this module is compiled
            // only for cores with the DSP extension.
            unsafe {
                asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }
        #[inline(always)]
        fn sxtb16_ror8(x: u32) -> u32 {
            let r: u32;
            // SAFETY: as in `sxtb16`.
            unsafe {
                asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
                     options(pure, nomem, nostack, preserves_flags));
            }
            r
        }
        #[inline(always)]
        fn smlad(rn: u32, rm: u32, ra: i32) -> i32 {
            let r: i32;
            // SAFETY: SMLAD touches its four registers and may set APSR.Q (hence no
            // `preserves_flags`); this module is compiled only for DSP cores.
            unsafe {
                asm!("smlad {r}, {a}, {b}, {c}", r = lateout(reg) r, a = in(reg) rn,
                     b = in(reg) rm, c = in(reg) ra, options(pure, nomem, nostack));
            }
            r
        }

        /// Per 8 input bytes: 2 `LDRD`s of the expanded input, 4 weight loads, 8
        /// `SXTB16`, 8 `SMLAD`: 22 instructions for 16 multiply-accumulates, and a
        /// `SUBS` + `BNE` per 16 bytes (1.44 per multiply-accumulate). Each group of
        /// 11 lines is one [`super::mac4`]; `t` takes each weight expansion in turn.
        /// An odd number of 8-byte blocks enters the 16-byte body half way.
        #[inline(always)]
        fn blocks8(xe: &[u32], w0: &[i8], w1: &[i8], mut a0: i32, mut a1: i32) -> (i32, i32) {
            let n = xe.len() / 4;
            // The caller passes matching lengths; the checks only keep the pointer
            // reads below provably in bounds.
            if n == 0 || w0.len() < n * 8 || w1.len() < n * 8 {
                return (a0, a1);
            }
            // SAFETY: `xe` is read for n * 16 bytes and each weight row for n * 8,
            // which the slices have (checked above); `xe` is a `u32` slice, so word
            // aligned as LDRD requires; the weight LDRs may be unaligned on Armv7-M
            // (CMSIS-NN relies on it too; they fault only if the application sets
            // CCR.UNALIGN_TRP). n >= 1 blocks of 8 run: n / 2 whole passes, plus the
            // second half of one for an odd n. Flags (and APSR.Q) are clobbered.
            unsafe {
                asm!(
                    "lsrs {n}, {n}, #1",
                    "bcc 2f",
                    "adds {n}, {n}, #1",
                    "b 3f",
                    "2:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "3:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    px = inout(reg) xe.as_ptr() => _,
                    p0 = inout(reg) w0.as_ptr() => _,
                    p1 = inout(reg) w1.as_ptr() => _,
                    n = inout(reg) n => _,
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    xe = out(reg) _,
                    xo = out(reg) _,
                    w = out(reg) _,
                    t = out(reg) _,
                    options(readonly, nostack),
                );
            }
            (a0, a1)
        }

        /// Three rows: per 8 input bytes 2 `LDRD`s, 6 weight loads, 12 `SXTB16`, 12
        /// `SMLAD` (32 instructions for 24 multiply-accumulates), `SUBS` + `BNE` per
        /// 16 bytes: 1.375 per multiply-accumulate, in all twelve registers `asm!`
        /// may use.
        #[inline(always)]
        fn blocks8x3(xe: &[u32], w: [&[i8]; 3], a: [i32; 3]) -> [i32; 3] {
            let n = xe.len() / 4;
            let [mut a0, mut a1, mut a2] = a;
            if n == 0 || w.iter().any(|r| r.len() < n * 8) {
                return a;
            }
            // SAFETY: as in `blocks8`, with a third row read for n * 8 bytes.
            unsafe {
                asm!(
                    "lsrs {n}, {n}, #1",
                    "bcc 2f",
                    "adds {n}, {n}, #1",
                    "b 3f",
                    "2:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "3:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    px = inout(reg) xe.as_ptr() => _,
                    p0 = inout(reg) w[0].as_ptr() => _,
                    p1 = inout(reg) w[1].as_ptr() => _,
                    p2 = inout(reg) w[2].as_ptr() => _,
                    n = inout(reg) n => _,
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    a2 = inout(reg) a2,
                    xe = out(reg) _,
                    xo = out(reg) _,
                    w = out(reg) _,
                    t = out(reg) _,
                    options(readonly, nostack),
                );
            }
            [a0, a1, a2]
        }

        /// The loop over triples around the [`DspOps::blocks8x3`] body: per triple
        /// about 30 instructions of bookkeeping (biases in, sums out, the next rows),
        /// with the loop's state in a small array whose address waits on the stack.
        #[inline(always)]
        fn triples(xe: &[u32], rows: &[i8], bias: &[i32], acc: &mut [core::mem::MaybeUninit<i32>]) {
            let k = xe.len() * 2;
            let n = (acc.len() / 3).min(bias.len() / 3);
            if k == 0 || n == 0 || rows.len() < 3 * n * k {
                return;
            }
            // [sums out, triples left, expanded input, 8-byte blocks, k, biases in]
            let mut state = [
                acc.as_mut_ptr() as u32,
                n as u32,
                xe.as_ptr() as u32,
                (k / 8) as u32,
                k as u32,
                bias.as_ptr() as u32,
            ];
            let p = rows.as_ptr();
            // SAFETY: `n` triples of rows of `k` bytes are read (`rows` has them,
            // checked above), each over the whole of `xe` (`k / 8 >= 1` blocks of
            // 16 bytes; `xe` is `u32`s, so word aligned for LDRD); `3 n` biases are
            // read and `3 n` sums written (both slices have them). `state` is
            // written in place. One word is pushed and popped on the stack; nothing
            // is called. Flags (and APSR.Q) are clobbered.
            unsafe {
                asm!(
                    "push {{{t}}}",
                    "4:",
                    "ldr {t}, [sp]",
                    "ldr {w}, [{t}, #20]",
                    "ldr {a0}, [{w}], #4",
                    "ldr {a1}, [{w}], #4",
                    "ldr {a2}, [{w}], #4",
                    "str {w}, [{t}, #20]",
                    "ldr {px}, [{t}, #8]",
                    "ldr {n}, [{t}, #12]",
                    "lsrs {n}, {n}, #1",
                    "bcc 2f",
                    "adds {n}, {n}, #1",
                    "b 3f",
                    "2:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "3:",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "ldrd {xe}, {xo}, [{px}], #8",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a0}, {t}, {xe}, {a0}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a0}, {t}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a1}, {t}, {xe}, {a1}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a1}, {t}, {xo}, {a1}",
                    "ldr {w}, [{p2}], #4",
                    "sxtb16 {t}, {w}",
                    "smlad {a2}, {t}, {xe}, {a2}",
                    "sxtb16 {t}, {w}, ror #8",
                    "smlad {a2}, {t}, {xo}, {a2}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    "ldr {t}, [sp]",
                    "ldr {w}, [{t}, #0]",
                    "str {a0}, [{w}], #4",
                    "str {a1}, [{w}], #4",
                    "str {a2}, [{w}], #4",
                    "str {w}, [{t}, #0]",
                    "ldr {xe}, [{t}, #16]",
                    "mov {p0}, {p2}",
                    "add {p1}, {p2}, {xe}",
                    "add {p2}, {p1}, {xe}",
                    "ldr {xo}, [{t}, #4]",
                    "subs {xo}, {xo}, #1",
                    "str {xo}, [{t}, #4]",
                    "bne 4b",
                    "add sp, sp, #4",
                    t = inout(reg) state.as_mut_ptr() => _,
                    p0 = inout(reg) p => _,
                    p1 = inout(reg) p.wrapping_add(k) => _,
                    p2 = inout(reg) p.wrapping_add(2 * k) => _,
                    px = out(reg) _,
                    n = out(reg) _,
                    a0 = out(reg) _,
                    a1 = out(reg) _,
                    a2 = out(reg) _,
                    xe = out(reg) _,
                    xo = out(reg) _,
                    w = out(reg) _,
                );
            }
        }
    }
}

/// [`mat_vec`] on the real instructions where compiled in; elsewhere (never reached:
/// [`super::Kernel::check`] refuses `Dsp` there) on the emulation.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_vec_asm(
    w: &[i8],
    k: usize,
    x: &[i8],
    bias: &[i32],
    rq: &Requant,
    ch0: usize,
    y: &mut [i8],
    scratch: &mut Scratch,
) {
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", dl_arm_dsp)))]
    mat_vec::<asm::Asm>(w, k, x, bias, rq, ch0, y, scratch);
    #[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", dl_arm_dsp))))]
    mat_vec::<Emulated>(w, k, x, bias, rq, ch0, y, scratch);
}

/// Rows summed before their block is requantized ([`mat_vec`]).
const BLOCK: usize = 32;
/// Input bytes expanded at a time (a multiple of 8).
const SPAN: usize = 128;

/// The buffers of [`mat_vec`], made once per layer and left uninitialized: zeroing
/// them cost more instructions than a small layer's whole output stage.
pub(crate) struct Scratch {
    acc: [MaybeUninit<i32>; BLOCK],
    xe: [MaybeUninit<u32>; SPAN / 2],
}

impl Scratch {
    /// Uninitialized buffers.
    pub(crate) fn new() -> Self {
        Scratch {
            acc: [MaybeUninit::uninit(); BLOCK],
            xe: [MaybeUninit::uninit(); SPAN / 2],
        }
    }
}

/// `slots`, every one of which the caller has just written, as initialized values.
///
/// # Safety
/// Every element of `slots` must have been written.
unsafe fn written<T>(slots: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller wrote every element.
    unsafe { &mut *(slots as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// `y[r] = rq(ch0 + r, bias[r] + dot(w[r], x))` for each of the `y.len()` rows of `w`
/// (`k` long; `x` at least `k` long, `w` and `bias` at least `y.len()` rows).
///
/// The input is sign-extended once per span of [`SPAN`] bytes ([`expand`]), not once
/// per pair of rows; a block of up to [`BLOCK`] rows is summed into a buffer and
/// then requantized in a loop of its own ([`Requant::requantize`]): the
/// multiply-accumulate loop needs ten registers, and an output stage interleaved
/// with it would spill the rest. Never inlined, for the same reason.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_vec<D: DspOps>(
    w: &[i8],
    k: usize,
    x: &[i8],
    bias: &[i32],
    rq: &Requant,
    ch0: usize,
    y: &mut [i8],
    scratch: &mut Scratch,
) {
    let x = &x[..k];
    let Scratch { acc, xe } = scratch;
    if k.is_multiple_of(8) && (8..=SPAN).contains(&k) {
        // The whole input fits one span and has no tail: expand it once, run every
        // whole triple of rows in one call, the one or two rows left with `dot2`.
        let xe = expand::<D>(x, &mut xe[..k / 2]);
        for (r0, out) in (0..).step_by(BLOCK).zip(y.chunks_mut(BLOCK)) {
            let n = out.len();
            let whole = n / 3 * 3;
            let (rows, bias) = (&w[r0 * k..(r0 + n) * k], &bias[r0..r0 + n]);
            let slots = &mut acc[..n];
            D::triples(xe, rows, bias, &mut slots[..whole]);
            let rest = &rows[whole * k..];
            match &mut slots[whole..] {
                [a0, a1] => {
                    let (w0, w1) = rest.split_at(k);
                    let (s0, s1) = dot2::<D>(w0, w1, x, xe, bias[whole], bias[whole + 1]);
                    a0.write(s0);
                    a1.write(s1);
                }
                [a] => {
                    a.write(dot2::<D>(rest, rest, x, xe, bias[whole], 0).0);
                }
                _ => {}
            }
            // SAFETY: `triples` wrote the `whole` first slots (all of its triples:
            // `whole / 3` of them, with the rows and biases it needs), the match the
            // `n - whole` (0, 1 or 2) others.
            let acc = unsafe { written(slots) };
            rq.requantize(ch0 + r0, acc, out);
        }
        return;
    }
    for (r0, out) in (0..).step_by(BLOCK).zip(y.chunks_mut(BLOCK)) {
        let n = out.len();
        let slots = &mut acc[..n];
        for (slot, &b) in slots.iter_mut().zip(&bias[r0..r0 + n]) {
            slot.write(b);
        }
        // SAFETY: the loop above wrote all `n` slots (`bias[r0..r0 + n]` has `n`).
        let acc = unsafe { written(slots) };
        let rows = &w[r0 * k..(r0 + n) * k];
        for (c0, xs) in (0..).step_by(SPAN).zip(x.chunks(SPAN)) {
            let n8 = xs.len() / 8 * 8;
            let xe = expand::<D>(&xs[..n8], &mut xe[..n8 / 2]);
            add_sums::<D>(rows, k, c0, xs, xe, acc);
        }
        rq.requantize(ch0 + r0, acc, out);
    }
}

/// `xe[2i], xe[2i + 1] = SXTB16(x word i), SXTB16(x word i, ROR #8)` for the
/// `x.len() / 4 == xe.len() / 2` words of `x`; returns `xe`, written.
#[inline(always)]
fn expand<'e, D: DspOps>(x: &[i8], xe: &'e mut [MaybeUninit<u32>]) -> &'e [u32] {
    debug_assert_eq!(x.len() / 4 * 2, xe.len());
    let words = x.chunks_exact(4).zip(xe.chunks_exact_mut(2));
    let written_len = 2 * words.len();
    for (b, e) in words {
        let v = word(b);
        e[0].write(D::sxtb16(v));
        e[1].write(D::sxtb16_ror8(v));
    }
    let xe = &mut xe[..written_len];
    // SAFETY: the loop wrote both slots of each of its `written_len / 2` pairs,
    // which are exactly `xe[..written_len]`.
    unsafe { written(xe) }
}

/// `acc[r] += dot(rows[r][c0..c0 + xs.len()], xs)` for the `acc.len()` rows (`k`
/// long) of `rows`, three at a time, then a pair or a single row; `xe` is the
/// expansion of the first `xe.len() * 2` bytes of `xs`.
#[inline(always)]
fn add_sums<D: DspOps>(rows: &[i8], k: usize, c0: usize, xs: &[i8], xe: &[u32], acc: &mut [i32]) {
    let len = xs.len();
    if c0 == 0 && len == k {
        // One span covers the rows (every layer with k <= SPAN): walk them whole,
        // with no per-row bounds checks.
        return add_sums_whole::<D>(rows, k, xs, xe, acc);
    }
    let span = |r: usize| &rows[r * k + c0..r * k + c0 + len];
    let left = acc.len() / 3 * 3;
    let (whole, rest) = acc.split_at_mut(left);
    for (r, a) in (0..).step_by(3).zip(whole.chunks_exact_mut(3)) {
        let w = [span(r), span(r + 1), span(r + 2)];
        let sums = D::blocks8x3(xe, w, [a[0], a[1], a[2]]);
        for ((acc, sum), row) in a.iter_mut().zip(sums).zip(w) {
            *acc = tail(row, xs, xe.len() * 2, sum);
        }
    }
    match rest {
        [a0, a1] => (*a0, *a1) = dot2::<D>(span(left), span(left + 1), xs, xe, *a0, *a1),
        // The odd row pairs with itself; the duplicate sum costs one row's work once.
        [a] => *a = dot2::<D>(span(left), span(left), xs, xe, *a, 0).0,
        _ => {}
    }
}

/// [`add_sums`] when each row is `xs.len() == k` long and starts the span.
#[inline(always)]
fn add_sums_whole<D: DspOps>(rows: &[i8], k: usize, xs: &[i8], xe: &[u32], acc: &mut [i32]) {
    let expanded = xe.len() * 2;
    let mut triples = acc.chunks_exact_mut(3);
    let mut rows3 = rows.chunks_exact(3 * k);
    for (a, w) in (&mut triples).zip(&mut rows3) {
        let (w0, w12) = w.split_at(k);
        let (w1, w2) = w12.split_at(k);
        let sums = D::blocks8x3(xe, [w0, w1, w2], [a[0], a[1], a[2]]);
        if expanded == k {
            a.copy_from_slice(&sums);
        } else {
            for ((acc, sum), row) in a.iter_mut().zip(sums).zip([w0, w1, w2]) {
                *acc = tail(row, xs, expanded, sum);
            }
        }
    }
    let rest = rows3.remainder();
    match triples.into_remainder() {
        [a0, a1] if rest.len() >= 2 * k => {
            let (w0, w1) = rest.split_at(k);
            (*a0, *a1) = dot2::<D>(w0, &w1[..k], xs, xe, *a0, *a1)
        }
        [a] if rest.len() >= k => *a = dot2::<D>(&rest[..k], &rest[..k], xs, xe, *a, 0).0,
        _ => {}
    }
}

/// `acc + dot(w[from..], x[from..])`: the bytes after the expanded part.
#[inline(always)]
fn tail(w: &[i8], x: &[i8], from: usize, acc: i32) -> i32 {
    x[from..].iter().zip(&w[from..]).fold(acc, |a, (&xv, &u)| {
        a.wrapping_add(i32::from(u) * i32::from(xv))
    })
}

/// Four little-endian bytes as one word: a single (unaligned) `LDR` on Armv7-M.
#[inline(always)]
fn word(b: &[i8]) -> u32 {
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

/// Four multiply-accumulates into each of two rows: `xe`, `xo` are the expansions of
/// four input bytes, `p`, `q` four packed bytes of the two weight rows.
#[inline(always)]
fn mac4<D: DspOps>(xe: u32, xo: u32, p: u32, q: u32, a0: i32, a1: i32) -> (i32, i32) {
    let a0 = D::smlad(D::sxtb16(p), xe, a0);
    let a0 = D::smlad(D::sxtb16_ror8(p), xo, a0);
    let a1 = D::smlad(D::sxtb16(q), xe, a1);
    let a1 = D::smlad(D::sxtb16_ror8(q), xo, a1);
    (a0, a1)
}

/// `(a0 + dot(w0, x), a1 + dot(w1, x))` over equal-length slices: the expanded part
/// (`xe`, eight bytes per pass), then single bytes.
#[inline(always)]
fn dot2<D: DspOps>(
    w0: &[i8],
    w1: &[i8],
    x: &[i8],
    xe: &[u32],
    mut a0: i32,
    mut a1: i32,
) -> (i32, i32) {
    let n8 = xe.len() * 2;
    (a0, a1) = D::blocks8(xe, &w0[..n8], &w1[..n8], a0, a1);
    for ((&xv, &u), &v) in x[n8..].iter().zip(&w0[n8..]).zip(&w1[n8..]) {
        a0 = a0.wrapping_add(i32::from(u) * i32::from(xv));
        a1 = a1.wrapping_add(i32::from(v) * i32::from(xv));
    }
    (a0, a1)
}
