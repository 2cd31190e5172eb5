//! x86-64 multiply-accumulate kernels: AVX-512 VNNI and AVX2, on register tiles of
//! weight rows by input vectors (so a batch of inputs shares each weight load, and
//! each input load serves several rows).
//!
//! - VNNI (`vpdpbusd`, unsigned x signed bytes into 32-bit lanes, non-saturating):
//!   the input is made unsigned by flipping its sign bit (`x ^ 0x80 = x + 128`), so
//!   each lane sums `(x + 128) * w`; the row's `128 * sum(w)` is taken off the bias
//!   once per row tile (its own `vpdpbusd` pass with a vector of ones). Every step
//!   wraps mod 2^32 like the portable loop, so the result is the same bits. Tails
//!   shorter than 64 bytes use masked loads, which read nothing past the row.
//! - AVX2: `vpmovsxbw` widens 16 bytes to 16 words and `vpmaddwd` multiplies and adds
//!   pairs into 32-bit lanes: exact, as an int8 product pair sums to at most 2^15.
//!   (`vpmaddubsw` would saturate at 16 bits, so it is not used.)
//!
//! Detection runs once and is cached (`is_x86_feature_detected!` under `std`; the
//! compile-time target features without it).

use super::kernel::Kernel;

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn features() -> (bool, bool) {
    use core::sync::atomic::{AtomicU8, Ordering};
    const KNOWN: u8 = 0x80;
    static CACHE: AtomicU8 = AtomicU8::new(0);
    let mut bits = CACHE.load(Ordering::Relaxed);
    if bits & KNOWN == 0 {
        let avx2 = std::is_x86_feature_detected!("avx2");
        let vnni = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni");
        bits = KNOWN | u8::from(avx2) | (u8::from(vnni) << 1);
        CACHE.store(bits, Ordering::Relaxed);
    }
    (bits & 1 != 0, bits & 2 != 0)
}

#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn features() -> (bool, bool) {
    (
        cfg!(target_feature = "avx2"),
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        )),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> (bool, bool) {
    (false, false)
}

/// Whether the AVX2 kernel can run.
pub(crate) fn has_avx2() -> bool {
    features().0
}

/// Whether the AVX-512 VNNI kernel can run.
pub(crate) fn has_vnni() -> bool {
    features().1
}

/// The best x86 kernel this CPU runs, if any.
pub(crate) fn best() -> Option<Kernel> {
    match features() {
        (_, true) => Some(Kernel::Avx512Vnni),
        (true, false) => Some(Kernel::Avx2),
        _ => None,
    }
}

/// [`super::kernel::mat_mul`] for `Kernel::Avx2` and `Kernel::Avx512Vnni`; the caller
/// has checked that the CPU has the kernel's features.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_mul(
    kernel: Kernel,
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    cols: usize,
    bias: &[i32],
    emit: &mut impl FnMut(usize, usize, i32),
) {
    assert!(
        w.len() >= rows * k && x.len() >= cols * k && bias.len() >= rows && rows > 0 && cols > 0
    );
    if kernel == Kernel::Avx512Vnni && has_vnni() {
        // SAFETY: the CPU has AVX-512F/BW/VNNI (checked just above); the lengths the
        // kernel's pointer reads rely on are asserted above.
        unsafe { vnni::mat_mul(w, rows, k, x, cols, bias, emit) }
    } else if kernel == Kernel::Avx2 && has_avx2() {
        // SAFETY: the CPU has AVX2; lengths as above.
        unsafe { avx2::mat_mul(w, rows, k, x, cols, bias, emit) }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    // Tiles are indexed by row and column of the register block.
    #![allow(clippy::needless_range_loop)]

    use core::arch::x86_64::*;

    /// Rows per register tile; with 4 input vectors, 16 accumulators, 4 inputs, 1
    /// weight vector and the sign-flip constant take 22 of the 32 registers.
    const TR: usize = 4;

    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI; `w` holds `rows * k`, `x` `cols * k` bytes,
    /// `bias` `rows` values, and `rows`, `cols` are nonzero.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn mat_mul(
        w: &[i8],
        rows: usize,
        k: usize,
        x: &[i8],
        cols: usize,
        bias: &[i32],
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let steps = k / 64;
        let tail = k % 64;
        let tail_mask: u64 = if tail == 0 { 0 } else { (1u64 << tail) - 1 };
        let ones = _mm512_set1_epi8(1);
        let mut r0 = 0;
        while r0 < rows {
            // A partial tile repeats the last row; its extra sums are not emitted.
            let mut wp = [w.as_ptr(); TR];
            for (i, p) in wp.iter_mut().enumerate() {
                *p = w[(r0 + i).min(rows - 1) * k..].as_ptr();
            }
            let mut sums = [_mm512_setzero_si512(); TR];
            for s in 0..steps {
                for i in 0..TR {
                    let wv = _mm512_loadu_si512(wp[i].add(s * 64).cast());
                    sums[i] = _mm512_dpbusd_epi32(sums[i], ones, wv);
                }
            }
            if tail != 0 {
                for i in 0..TR {
                    let wv = _mm512_maskz_loadu_epi8(tail_mask, wp[i].add(steps * 64));
                    sums[i] = _mm512_dpbusd_epi32(sums[i], ones, wv);
                }
            }
            let mut corrected = [0i32; TR];
            for i in 0..TR {
                let row_sum = _mm512_reduce_add_epi32(sums[i]);
                corrected[i] = bias[(r0 + i).min(rows - 1)].wrapping_sub(row_sum.wrapping_mul(128));
            }
            let live_rows = TR.min(rows - r0);
            let mut c0 = 0;
            while c0 + 4 <= cols {
                tile::<4>(&wp, x, k, c0, &corrected, live_rows, r0, emit);
                c0 += 4;
            }
            while c0 < cols {
                tile::<1>(&wp, x, k, c0, &corrected, live_rows, r0, emit);
                c0 += 1;
            }
            r0 += TR;
        }
    }

    /// The `TR x TC` block of results for rows `wp` and input vectors `c0..c0 + TC`.
    ///
    /// # Safety
    /// As [`mat_mul`]; each `wp[i]` points at a row of `k` bytes, and `x` holds the
    /// vectors `c0..c0 + TC`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const TC: usize>(
        wp: &[*const i8; TR],
        x: &[i8],
        k: usize,
        c0: usize,
        corrected: &[i32; TR],
        live_rows: usize,
        r0: usize,
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let steps = k / 64;
        let tail = k % 64;
        let tail_mask: u64 = if tail == 0 { 0 } else { (1u64 << tail) - 1 };
        let flip = _mm512_set1_epi8(i8::MIN);
        let zero = _mm512_setzero_si512();
        let mut xp = [x.as_ptr(); TC];
        for (j, p) in xp.iter_mut().enumerate() {
            *p = x[(c0 + j) * k..].as_ptr();
        }
        let mut acc = [[zero; TC]; TR];
        for s in 0..steps {
            let mut xv = [zero; TC];
            for j in 0..TC {
                xv[j] = _mm512_xor_si512(_mm512_loadu_si512(xp[j].add(s * 64).cast()), flip);
            }
            for i in 0..TR {
                let wv = _mm512_loadu_si512(wp[i].add(s * 64).cast());
                for j in 0..TC {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[j], wv);
                }
            }
        }
        if tail != 0 {
            let mut xv = [zero; TC];
            for j in 0..TC {
                // Masked-off lanes read as 0 and flip to 128; the weight there is 0.
                let v = _mm512_maskz_loadu_epi8(tail_mask, xp[j].add(steps * 64));
                xv[j] = _mm512_xor_si512(v, flip);
            }
            for i in 0..TR {
                let wv = _mm512_maskz_loadu_epi8(tail_mask, wp[i].add(steps * 64));
                for j in 0..TC {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], xv[j], wv);
                }
            }
        }
        for i in 0..live_rows {
            for j in 0..TC {
                let sum = _mm512_reduce_add_epi32(acc[i][j]);
                emit(c0 + j, r0 + i, corrected[i].wrapping_add(sum));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    // Tiles are indexed by row and column of the register block.
    #![allow(clippy::needless_range_loop)]

    use core::arch::x86_64::*;

    /// Rows per register tile; with 2 input vectors, 8 accumulators, 2 inputs and 1
    /// weight vector take 11 of the 16 registers.
    const TR: usize = 4;

    /// Sum of the eight 32-bit lanes (wrapping).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }

    /// # Safety
    /// The CPU has AVX2; `w` holds `rows * k`, `x` `cols * k` bytes, `bias` `rows`
    /// values, and `rows`, `cols` are nonzero.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mat_mul(
        w: &[i8],
        rows: usize,
        k: usize,
        x: &[i8],
        cols: usize,
        bias: &[i32],
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let mut r0 = 0;
        while r0 < rows {
            // A partial tile repeats the last row; its extra sums are not emitted.
            let mut wrow = [0usize; TR];
            for (i, r) in wrow.iter_mut().enumerate() {
                *r = (r0 + i).min(rows - 1);
            }
            let live_rows = TR.min(rows - r0);
            let mut c0 = 0;
            while c0 + 2 <= cols {
                tile::<2>(w, &wrow, x, k, c0, bias, live_rows, r0, emit);
                c0 += 2;
            }
            if c0 < cols {
                tile::<1>(w, &wrow, x, k, c0, bias, live_rows, r0, emit);
            }
            r0 += TR;
        }
    }

    /// The `TR x TC` block of results for rows `wrow` and input vectors `c0..c0 + TC`.
    ///
    /// # Safety
    /// As [`mat_mul`]; `wrow` are rows of `w`, and `x` holds the vectors
    /// `c0..c0 + TC`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const TC: usize>(
        w: &[i8],
        wrow: &[usize; TR],
        x: &[i8],
        k: usize,
        c0: usize,
        bias: &[i32],
        live_rows: usize,
        r0: usize,
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let steps = k / 16;
        let done = steps * 16;
        let zero = _mm256_setzero_si256();
        let mut acc = [[zero; TC]; TR];
        for s in 0..steps {
            let mut xv = [zero; TC];
            for j in 0..TC {
                let p = x.as_ptr().add((c0 + j) * k + s * 16);
                xv[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
            }
            for i in 0..TR {
                let p = w.as_ptr().add(wrow[i] * k + s * 16);
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
                for j in 0..TC {
                    acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(wv, xv[j]));
                }
            }
        }
        for i in 0..live_rows {
            let wr = &w[wrow[i] * k..(wrow[i] + 1) * k];
            for j in 0..TC {
                let xc = &x[(c0 + j) * k..(c0 + j + 1) * k];
                let tail = wr[done..]
                    .iter()
                    .zip(&xc[done..])
                    .fold(0i32, |a, (&u, &v)| {
                        a.wrapping_add(i32::from(u) * i32::from(v))
                    });
                let acc = bias[wrow[i]]
                    .wrapping_add(hsum(acc[i][j]))
                    .wrapping_add(tail);
                emit(c0 + j, r0 + i, acc);
            }
        }
    }
}
