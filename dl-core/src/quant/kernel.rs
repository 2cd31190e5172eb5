//! The int8 multiply-accumulate core that dense and convolution layers share, and the
//! choice of instruction set that runs it.
//!
//! `mat_mul` computes, for `rows` weight rows `w[r]` and `cols` input vectors `x[c]`
//! (each `k` long), `acc = bias[r] + sum_i w[r][i] * x[c][i]` in wrapping 32-bit
//! arithmetic and writes it requantized ([`Out`]), so no accumulator buffer is
//! needed: the scalar kernels requantize each result as it comes, the VNNI kernel
//! sixteen at a time in vector registers. Every [`Kernel`] returns the same bits:
//! integer sums wrap the same way in any order, and the output stage is exact.

use super::requant::Requant;
use super::{dsp, x86};
use crate::error::{Error, Result};

/// An implementation of the int8 multiply-accumulate loop. All give identical results;
/// they differ in speed and in where they run ([`Kernel::is_available`]).
///
/// [`Kernel::best`] is what [`super::dense_s8`] and [`super::conv2d_s8`] use; the
/// `*_with` variants take one explicitly (for tests and benchmarks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Plain Rust, two output rows per pass; runs everywhere (Cortex-M0 included).
    Portable,
    /// The Cortex-M DSP algorithm (`SXTB16`, `SMLAD`) on plain-Rust emulations of
    /// those instructions ([`super::sxtb16`], [`super::sxtb16_ror8`],
    /// [`super::smlad`]): the same loop as [`Kernel::Dsp`], testable on any host.
    DspEmulated,
    /// The Cortex-M4/M7/M33 DSP loop in inline assembly. Compiled in on Arm when the
    /// `dsp` target feature is set (nightly Rust reports it for `thumbv7em` targets;
    /// stable Rust reports no Arm target features) or when built with
    /// `RUSTFLAGS="--cfg dl_arm_dsp"`, which asserts the core has the DSP extension
    /// (set for a core without it, e.g. `thumbv7m`, the assembler refuses the build).
    /// Reads the operands with unaligned `LDR`s, as CMSIS-NN does.
    Dsp,
    /// x86-64 AVX2: sign-extend to 16 bits (`vpmovsxbw`), multiply-add pairs
    /// (`vpmaddwd`, exact for int8 products; never the saturating `vpmaddubsw`).
    Avx2,
    /// x86-64 AVX-512 VNNI (with AVX-512F and BW): `vpdpbusd` (unsigned x signed
    /// bytes), the input biased by +128 and the bias corrected by `-128 * sum(w)`
    /// (exact in wrapping arithmetic).
    Avx512Vnni,
}

impl Kernel {
    /// Every kernel, available here or not (filter with [`Kernel::is_available`]).
    pub const ALL: [Kernel; 5] = [
        Kernel::Portable,
        Kernel::DspEmulated,
        Kernel::Dsp,
        Kernel::Avx2,
        Kernel::Avx512Vnni,
    ];

    /// Whether this kernel can run here: [`Kernel::Portable`] and
    /// [`Kernel::DspEmulated`] always; [`Kernel::Dsp`] when compiled for an Arm core
    /// with DSP; the x86 kernels when the CPU has the features (detected at run time
    /// under `std`, from the compile-time target features without it).
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable | Kernel::DspEmulated => true,
            Kernel::Dsp => dsp::HAS_ASM,
            Kernel::Avx2 => x86::has_avx2(),
            Kernel::Avx512Vnni => x86::has_vnni(),
        }
    }

    /// The fastest available kernel: VNNI, else AVX2 on x86-64; the DSP assembly on
    /// an Arm core with DSP; else the portable loop. Cached after the first call.
    pub fn best() -> Kernel {
        if dsp::HAS_ASM {
            return Kernel::Dsp;
        }
        x86::best().unwrap_or(Kernel::Portable)
    }

    /// `Ok` if available, else `InvalidParameter` naming `op`.
    pub(crate) fn check(self, op: &'static str) -> Result<()> {
        if self.is_available() {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                op,
                name: "kernel",
                value: self as u8 as f64,
                valid: "a kernel this machine runs (Kernel::is_available)",
            })
        }
    }
}

/// Where [`mat_mul`] writes: result `(c, r)` requantized as channel `ch0 + r` of
/// `rq` into `y[c * ldy + r]` (a batch row, or an output pixel's channels).
pub(crate) struct Out<'o, 'r> {
    /// The output stage (validated for every channel it is asked for).
    pub rq: &'o Requant<'r>,
    /// The channel of row 0.
    pub ch0: usize,
    /// The output.
    pub y: &'o mut [i8],
    /// Distance in `y` between the results of two input vectors.
    pub ldy: usize,
}

/// `out[c, r] = requant(bias[r] + dot(w[r], x[c]))` for every `r < rows`, `c < cols`,
/// with `w` holding `rows` rows and `x` `cols` vectors of `k` values each (see
/// [`Out`]).
///
/// The caller has checked the lengths (`w.len() >= rows * k`, `x.len() >= cols * k`,
/// `bias.len() >= rows`, room in `out.y`), validated `out.rq`, and checked that
/// `kernel` is available.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_mul(
    kernel: Kernel,
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    cols: usize,
    bias: &[i32],
    out: &mut Out<'_, '_>,
) {
    debug_assert!(w.len() >= rows * k && x.len() >= cols * k && bias.len() >= rows);
    if rows == 0 || cols == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx512Vnni {
        // Requantizes sixteen channels at a time in vector registers.
        return x86::mat_mul_vnni(w, rows, k, x, cols, bias, out);
    }
    let Out { rq, ch0, y, ldy } = out;
    let (ch0, ldy) = (*ch0, *ldy);
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx2 {
        let mut emit = |c: usize, r: usize, acc: i32| y[c * ldy + r] = rq.apply(ch0 + r, acc);
        return x86::mat_mul_avx2(w, rows, k, x, cols, bias, &mut emit);
    }
    // Elsewhere the x86 kernels are never available (`Kernel::check`), so only the
    // kernels below get here.
    let mut scratch = dsp::Scratch::new();
    for c in 0..cols {
        let xc = &x[c * k..(c + 1) * k];
        let yc = &mut y[c * ldy..c * ldy + rows];
        let s = &mut scratch;
        match kernel {
            Kernel::Dsp => dsp::mat_vec_asm(w, k, xc, bias, rq, ch0, yc, s),
            Kernel::DspEmulated => dsp::mat_vec::<dsp::Emulated>(w, k, xc, bias, rq, ch0, yc, s),
            _ => mat_vec_portable(w, rows, k, xc, bias, &mut |r, acc| {
                yc[r] = rq.apply(ch0 + r, acc)
            }),
        }
    }
}

/// The portable core: two weight rows per pass, so each input byte loaded serves two
/// multiply-accumulates.
fn mat_vec_portable(
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
        let (mut a0, mut a1) = (bias[r], bias[r + 1]);
        for ((&xv, &u), &v) in x.iter().zip(w0).zip(w1) {
            let xv = i32::from(xv);
            a0 = a0.wrapping_add(i32::from(u) * xv);
            a1 = a1.wrapping_add(i32::from(v) * xv);
        }
        emit(r, a0);
        emit(r + 1, a1);
        r += 2;
    }
    if r < rows {
        let w0 = &w[r * k..(r + 1) * k];
        let a0 = x.iter().zip(w0).fold(bias[r], |a, (&xv, &u)| {
            a.wrapping_add(i32::from(u) * i32::from(xv))
        });
        emit(r, a0);
    }
}
