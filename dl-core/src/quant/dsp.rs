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

    /// The main loop: `(a0 + dot(w0, x), a1 + dot(w1, x))` over three slices of the
    /// same length, a multiple of 8, as two [`mac4`] per 8 bytes. The assembly
    /// overrides it with the same instruction sequence, hand-allocated.
    #[inline(always)]
    fn blocks8(x: &[i8], w0: &[i8], w1: &[i8], mut a0: i32, mut a1: i32) -> (i32, i32)
    where
        Self: Sized,
    {
        for ((xb, p), q) in x
            .chunks_exact(8)
            .zip(w0.chunks_exact(8))
            .zip(w1.chunks_exact(8))
        {
            (a0, a1) = mac4::<Self>(word(&xb[..4]), word(&p[..4]), word(&q[..4]), a0, a1);
            (a0, a1) = mac4::<Self>(word(&xb[4..]), word(&p[4..]), word(&q[4..]), a0, a1);
        }
        (a0, a1)
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

        /// Per 8 bytes: 6 loads, 12 `SXTB16`, 8 `SMLAD`, `SUBS` + `BNE`: 28
        /// instructions for 16 multiply-accumulates. Each group of 13 lines is one
        /// [`super::mac4`]: the input word is expanded once into `xe` (bytes 0, 2) and
        /// `xo` (bytes 1, 3) for both rows, after which its register takes each weight
        /// expansion in turn.
        #[inline(always)]
        fn blocks8(x: &[i8], w0: &[i8], w1: &[i8], mut a0: i32, mut a1: i32) -> (i32, i32) {
            let n = x.len() / 8;
            // The caller passes three slices of one length; the length checks only
            // keep the pointer reads below provably in bounds.
            if n == 0 || w0.len() < n * 8 || w1.len() < n * 8 {
                return (a0, a1);
            }
            // SAFETY: the three pointers are read for n * 8 bytes, which each slice
            // has (checked above); LDR may be unaligned on Armv7-M (CMSIS-NN relies on
            // it too; it faults only if the application sets CCR.UNALIGN_TRP). The
            // loop runs n >= 1 times. Flags (and APSR.Q) are clobbered.
            unsafe {
                asm!(
                    "2:",
                    "ldr {x}, [{px}], #4",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {xe}, {x}",
                    "sxtb16 {xo}, {x}, ror #8",
                    "sxtb16 {x}, {w}",
                    "smlad {a0}, {x}, {xe}, {a0}",
                    "sxtb16 {x}, {w}, ror #8",
                    "smlad {a0}, {x}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {x}, {w}",
                    "smlad {a1}, {x}, {xe}, {a1}",
                    "sxtb16 {x}, {w}, ror #8",
                    "smlad {a1}, {x}, {xo}, {a1}",
                    "ldr {x}, [{px}], #4",
                    "ldr {w}, [{p0}], #4",
                    "sxtb16 {xe}, {x}",
                    "sxtb16 {xo}, {x}, ror #8",
                    "sxtb16 {x}, {w}",
                    "smlad {a0}, {x}, {xe}, {a0}",
                    "sxtb16 {x}, {w}, ror #8",
                    "smlad {a0}, {x}, {xo}, {a0}",
                    "ldr {w}, [{p1}], #4",
                    "sxtb16 {x}, {w}",
                    "smlad {a1}, {x}, {xe}, {a1}",
                    "sxtb16 {x}, {w}, ror #8",
                    "smlad {a1}, {x}, {xo}, {a1}",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    px = inout(reg) x.as_ptr() => _,
                    p0 = inout(reg) w0.as_ptr() => _,
                    p1 = inout(reg) w1.as_ptr() => _,
                    n = inout(reg) n => _,
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    x = out(reg) _,
                    w = out(reg) _,
                    xe = out(reg) _,
                    xo = out(reg) _,
                    options(readonly, nostack),
                );
            }
            (a0, a1)
        }
    }
}

/// The loop on the real instructions where compiled in; elsewhere (never reached:
/// [`super::Kernel::check`] refuses `Dsp` there) on the emulation.
#[inline]
pub(crate) fn mat_vec_asm(
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    bias: &[i32],
    emit: &mut impl FnMut(usize, i32),
) {
    #[cfg(all(target_arch = "arm", any(target_feature = "dsp", dl_arm_dsp)))]
    mat_vec::<asm::Asm>(w, rows, k, x, bias, emit);
    #[cfg(not(all(target_arch = "arm", any(target_feature = "dsp", dl_arm_dsp))))]
    mat_vec::<Emulated>(w, rows, k, x, bias, emit);
}

/// `emit(r, bias[r] + dot(w[r], x))` for each of the `rows` rows of `w` (`k` long).
#[inline]
pub(crate) fn mat_vec<D: DspOps>(
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    bias: &[i32],
    emit: &mut impl FnMut(usize, i32),
) {
    let mut r = 0;
    while r + 2 <= rows {
        let (w0, w1) = (&w[r * k..(r + 1) * k], &w[(r + 1) * k..(r + 2) * k]);
        let (a0, a1) = dot2::<D>(w0, w1, x, bias[r], bias[r + 1]);
        emit(r, a0);
        emit(r + 1, a1);
        r += 2;
    }
    if r < rows {
        // The odd row pairs with itself; the duplicate sum costs one row's work once.
        let w0 = &w[r * k..(r + 1) * k];
        emit(r, dot2::<D>(w0, w0, x, bias[r], 0).0);
    }
}

/// Four little-endian bytes as one word: a single (unaligned) `LDR` on Armv7-M.
#[inline(always)]
fn word(b: &[i8]) -> u32 {
    u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])
}

/// Four multiply-accumulates into each of two rows: `x`, `p`, `q` are four packed
/// bytes of the input and of the two weight rows.
#[inline(always)]
fn mac4<D: DspOps>(x: u32, p: u32, q: u32, a0: i32, a1: i32) -> (i32, i32) {
    let (x_even, x_odd) = (D::sxtb16(x), D::sxtb16_ror8(x));
    let a0 = D::smlad(D::sxtb16(p), x_even, a0);
    let a0 = D::smlad(D::sxtb16_ror8(p), x_odd, a0);
    let a1 = D::smlad(D::sxtb16(q), x_even, a1);
    let a1 = D::smlad(D::sxtb16_ror8(q), x_odd, a1);
    (a0, a1)
}

/// `(a0 + dot(w0, x), a1 + dot(w1, x))` over equal-length slices, eight bytes per pass
/// (two words per row), then four, then single bytes.
#[inline(always)]
fn dot2<D: DspOps>(w0: &[i8], w1: &[i8], x: &[i8], mut a0: i32, mut a1: i32) -> (i32, i32) {
    let n8 = x.len() / 8 * 8;
    (a0, a1) = D::blocks8(&x[..n8], &w0[..n8], &w1[..n8], a0, a1);
    let n4 = x.len() / 4 * 4;
    if n4 > n8 {
        (a0, a1) = mac4::<D>(
            word(&x[n8..n4]),
            word(&w0[n8..n4]),
            word(&w1[n8..n4]),
            a0,
            a1,
        );
    }
    for ((&xv, &u), &v) in x[n4..].iter().zip(&w0[n4..]).zip(&w1[n4..]) {
        a0 = a0.wrapping_add(i32::from(u) * i32::from(xv));
        a1 = a1.wrapping_add(i32::from(v) * i32::from(xv));
    }
    (a0, a1)
}
