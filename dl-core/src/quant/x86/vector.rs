//! x86-64 element-wise int8 kernels: quantization of f32 input (AVX-512F, AVX2) and
//! the 2x2 stride-2 max pooling of NHWC activations (AVX-512BW). Each returns the
//! same bits as the portable loop it replaces (see each function for why).
//!
//! The caller has checked the CPU's features and the lengths; every function here is
//! `unsafe` only for the target features and the pointer reads that rely on them.

// Tables and tiles are indexed by lane.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

/// Beyond this magnitude every quotient quantizes to -128 or 127 whatever the zero
/// point (`1024 - 128 > 127`), so quotients are clamped to it first: then truncation,
/// the fraction and the integer conversion are all exact, and no lane saturates.
const LIMIT: f32 = 1024.0;

/// `y[i] = clamp(round_half_away(x[i] / scale) + zero_point, -128, 127)`, NaN to the
/// zero point, sixteen at a time: the same bits as `convert::quantize_f32_s8`'s loop.
///
/// Why the same: the quotient is the same IEEE division (`vdivps` rounds as `divss`,
/// under the same MXCSR). A NaN quotient is set to 0 (the scalar cast gives 0, so the
/// zero point). Clamping to `±LIMIT` changes no result (any `|q| >= LIMIT` ends at
/// -128 or 127 after the zero point, as the scalar's saturating path does, infinities
/// included). Below `LIMIT`, `trunc` and `q - trunc(q)` are exact, so the fraction
/// tests are the scalar's, and the final saturating narrowing (`vpmovsdb`) is its
/// clamp.
///
/// # Safety
/// The CPU has AVX-512F; `y.len() >= x.len()`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn quantize_avx512(x: &[f32], scale: f32, zero_point: i32, y: &mut [i8]) {
    if scale >= f32::MIN_POSITIVE {
        // SAFETY: as this function's.
        return unsafe { quantize_avx512_halved(x, scale, zero_point, y) };
    }
    let s = _mm512_set1_ps(scale);
    let (lo, hi) = (_mm512_set1_ps(-LIMIT), _mm512_set1_ps(LIMIT));
    let (half, neg_half) = (_mm512_set1_ps(0.5), _mm512_set1_ps(-0.5));
    let one = _mm512_set1_epi32(1);
    let zp = _mm512_set1_epi32(zero_point);
    let one16 = |v: __m512| -> __m128i {
        let q = _mm512_div_ps(v, s);
        let q = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(q, q), q);
        let q = _mm512_min_ps(_mm512_max_ps(q, lo), hi);
        let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(q);
        let f = _mm512_sub_ps(q, t);
        let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(f, half);
        let down = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(f, neg_half);
        let i = _mm512_cvttps_epi32(t);
        let i = _mm512_mask_add_epi32(i, up, i, one);
        let i = _mm512_mask_sub_epi32(i, down, i, one);
        _mm512_cvtsepi32_epi8(_mm512_add_epi32(i, zp))
    };
    // SAFETY: as this function's.
    unsafe { map16(x, y, one16) }
}

/// [`quantize_avx512`] for a normal scale, as the portable loop computes it: `t =
/// trunc(x / (scale / 2))`, which is `trunc(2 * (x / scale))` bit for bit (halving a
/// normal scale is exact, and scaling by 2 commutes with rounding), then the
/// half-away rounding in integers, `(t + 1 + (t >> 31)) >> 1`. The doubled quotient
/// is clamped to `±2 * LIMIT` first (no result changes, no lane saturates) and a NaN
/// set to 0. Two vector operations fewer per sixteen values than the fraction tests.
///
/// # Safety
/// The CPU has AVX-512F; `y.len() >= x.len()`.
#[target_feature(enable = "avx512f")]
unsafe fn quantize_avx512_halved(x: &[f32], scale: f32, zero_point: i32, y: &mut [i8]) {
    let h = _mm512_set1_ps(scale * 0.5);
    let (lo, hi) = (_mm512_set1_ps(-2.0 * LIMIT), _mm512_set1_ps(2.0 * LIMIT));
    let one = _mm512_set1_epi32(1);
    let zp = _mm512_set1_epi32(zero_point);
    let one16 = |v: __m512| -> __m128i {
        let q2 = _mm512_div_ps(v, h);
        let q2 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(q2, q2), q2);
        let t = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(q2, lo), hi));
        let r = _mm512_srai_epi32::<1>(_mm512_add_epi32(
            _mm512_add_epi32(t, one),
            _mm512_srai_epi32::<31>(t),
        ));
        _mm512_cvtsepi32_epi8(_mm512_add_epi32(r, zp))
    };
    // SAFETY: as this function's.
    unsafe { map16(x, y, one16) }
}

/// `y[i] = f(x[i])` sixteen at a time: whole vectors, then the tail under a mask
/// (the loop both AVX-512 quantize kernels share).
///
/// # Safety
/// The CPU has AVX-512F; `y.len() >= x.len()`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn map16(x: &[f32], y: &mut [i8], f: impl Fn(__m512) -> __m128i) {
    let n = x.len();
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        let v = f(_mm512_loadu_ps(xp.add(i)));
        _mm_storeu_si128(yp.add(i).cast(), v);
        i += 16;
    }
    if i < n {
        let mask = ((1u32 << (n - i)) - 1) as u16;
        let v = f(_mm512_maskz_loadu_ps(mask, xp.add(i)));
        _mm_mask_storeu_epi8_avx512(yp.add(i), mask, v);
    }
}

/// Stores the bytes of `v` selected by `mask` (`vpmovdb`'s masked store has the
/// values as 32-bit lanes; this one takes the narrowed bytes): AVX-512F alone has no
/// masked byte store of an `xmm`, so the 16 bytes are widened back and stored with
/// `vpmovdb`'s mask.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn _mm_mask_storeu_epi8_avx512(y: *mut i8, mask: u16, v: __m128i) {
    _mm512_mask_cvtepi32_storeu_epi8(y, mask, _mm512_cvtepi8_epi32(v));
}

/// [`quantize_avx512`] eight at a time on AVX2, the same bits for the same reasons
/// (the comparisons give all-ones lanes, -1, so adding or subtracting them steps the
/// truncated value); the last `n % 8` values by the scalar loop.
///
/// # Safety
/// The CPU has AVX2; `y.len() >= x.len()`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn quantize_avx2(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
    scalar: impl Fn(f32) -> i8,
) {
    let n = x.len();
    let s = _mm256_set1_ps(scale);
    let (lo, hi) = (_mm256_set1_ps(-LIMIT), _mm256_set1_ps(LIMIT));
    let (half, neg_half) = (_mm256_set1_ps(0.5), _mm256_set1_ps(-0.5));
    let zp = _mm256_set1_epi32(zero_point);
    let (min8, max8) = (_mm256_set1_epi32(-128), _mm256_set1_epi32(127));
    // Byte 0 of each 32-bit lane to the low four bytes of its 128-bit half, then the
    // two halves' low words together.
    let pick = _mm256_setr_epi8(
        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1,
        -1, -1, -1, -1, -1, -1, -1, -1,
    );
    let join = _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1);
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n {
        let q = _mm256_div_ps(_mm256_loadu_ps(xp.add(i)), s);
        let q = _mm256_and_ps(q, _mm256_cmp_ps::<_CMP_ORD_Q>(q, q));
        let q = _mm256_min_ps(_mm256_max_ps(q, lo), hi);
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(q);
        let f = _mm256_sub_ps(q, t);
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(f, half));
        let down = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(f, neg_half));
        let v = _mm256_add_epi32(_mm256_sub_epi32(_mm256_cvttps_epi32(t), up), down);
        let v = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v, zp), min8), max8);
        let v = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick), join);
        _mm_storel_epi64(yp.add(i).cast(), _mm256_castsi256_si128(v));
        i += 8;
    }
    for j in i..n {
        *yp.add(j) = scalar(*xp.add(j));
    }
}

/// `dst[i] = src[i] ^ 0x80` for every byte of `src` (int8 as the unsigned `x + 128`
/// that `vpdpbusd` takes), 64 bytes at a time, the tail masked.
///
/// # Safety
/// The CPU has AVX-512F. (The last `n % 64` bytes go by words, [`super::flip_into`].)
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn flip_avx512(src: &[i8], dst: &mut [u8]) {
    let n = src.len();
    assert!(dst.len() >= n);
    let flip = _mm512_set1_epi8(i8::MIN);
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 64 <= n {
        let v = _mm512_loadu_si512(s.add(i).cast());
        _mm512_storeu_si512(d.add(i).cast(), _mm512_xor_si512(v, flip));
        i += 64;
    }
    if i < n {
        super::flip_into(&src[i..], &mut dst[i..n]);
    }
}

/// Input bytes of a pooling row pair handled per step: two vectors from each row.
const STEP_IN: usize = 128;

/// Max pooling with a 2x2 window, stride 2 and no padding over `n` NHWC images of
/// `h x w x c` (every window inside the input: `2 * out_h <= h`, `2 * out_w <= w`),
/// clamped to `[lo, hi]`: byte-wise signed maxima (`vpmaxsb`), the same bits as any
/// order of the scalar loop's maxima.
///
/// Output rows are made from pairs of input rows: their byte-wise maximum, then the
/// maximum of each pixel's `c` bytes with its right neighbour's. With `c` of 2, 4, 8,
/// 16 or 32 bytes, 64 output bytes (from 128 of each input row) are made at once, the
/// even and odd pixels of two vectors gathered by `vpermt2w/d/q`; other channel counts
/// go pixel by pixel, 64 channels at a time.
///
/// # Safety
/// The CPU has AVX-512F and BW; `x` holds `n * h * w * c` bytes, `y` `n * out_h *
/// out_w * c`, and `2 * out_h <= h`, `2 * out_w <= w`.
#[target_feature(enable = "avx512f,avx512bw")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn max_pool_2x2_avx512(
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    out_h: usize,
    out_w: usize,
    x: &[i8],
    lo: i8,
    hi: i8,
    y: &mut [i8],
) {
    let (lo, hi) = (_mm512_set1_epi8(lo), _mm512_set1_epi8(hi));
    let clamp = |v: __m512i| _mm512_min_epi8(_mm512_max_epi8(v, lo), hi);
    let row_in = w * c;
    let row_out = out_w * c;
    // The even and odd pixels of two vectors (`a` then `b`), by elements of `e` bytes.
    let e = c.min(8);
    let paired = matches!(c, 2 | 4 | 8 | 16 | 32);
    let (even, odd) = if paired {
        let per = c / e; // elements per pixel
        let lanes = 64 / e;
        let mut ev = [0u16; 32];
        let mut od = [0u16; 32];
        for m in 0..lanes {
            let (p, sub) = (m / per, m % per);
            ev[m] = (2 * p * per + sub) as u16;
            od[m] = ((2 * p + 1) * per + sub) as u16;
        }
        // Indices as lanes of `e` bytes (the permutes read each lane's low bits).
        let widen = |t: &[u16; 32]| -> __m512i {
            let mut b = [0u8; 64];
            for m in 0..lanes {
                let v = u64::from(t[m]).to_le_bytes();
                b[m * e..(m + 1) * e].copy_from_slice(&v[..e]);
            }
            _mm512_loadu_si512(b.as_ptr().cast())
        };
        (widen(&ev), widen(&od))
    } else {
        (_mm512_setzero_si512(), _mm512_setzero_si512())
    };
    let pair = |a: __m512i, b: __m512i| -> __m512i {
        match e {
            2 => _mm512_max_epi8(
                _mm512_permutex2var_epi16(a, even, b),
                _mm512_permutex2var_epi16(a, odd, b),
            ),
            4 => _mm512_max_epi8(
                _mm512_permutex2var_epi32(a, even, b),
                _mm512_permutex2var_epi32(a, odd, b),
            ),
            _ => _mm512_max_epi8(
                _mm512_permutex2var_epi64(a, even, b),
                _mm512_permutex2var_epi64(a, odd, b),
            ),
        }
    };
    let mask = |bytes: usize| -> u64 {
        if bytes >= 64 {
            u64::MAX
        } else {
            (1u64 << bytes) - 1
        }
    };
    for b in 0..n {
        for i in 0..out_h {
            let r0 = x.as_ptr().add((b * h + 2 * i) * row_in);
            let r1 = r0.add(row_in);
            let out = y.as_mut_ptr().add((b * out_h + i) * row_out);
            if paired {
                let mut o = 0;
                while o < row_out {
                    let left = row_out - o;
                    let (src, dst) = (2 * o, o);
                    let (ma, mb) = (mask(2 * left), mask((2 * left).saturating_sub(64)));
                    let va = _mm512_max_epi8(
                        _mm512_maskz_loadu_epi8(ma, r0.add(src)),
                        _mm512_maskz_loadu_epi8(ma, r1.add(src)),
                    );
                    let vb = if mb == 0 {
                        _mm512_setzero_si512()
                    } else {
                        _mm512_max_epi8(
                            _mm512_maskz_loadu_epi8(mb, r0.add(src + 64)),
                            _mm512_maskz_loadu_epi8(mb, r1.add(src + 64)),
                        )
                    };
                    _mm512_mask_storeu_epi8(out.add(dst), mask(left), clamp(pair(va, vb)));
                    o += STEP_IN / 2;
                }
            } else {
                for j in 0..out_w {
                    let (p, q) = (r0.add(2 * j * c), r1.add(2 * j * c));
                    let mut ch = 0;
                    while ch < c {
                        let m = mask(c - ch);
                        let v = _mm512_max_epi8(
                            _mm512_max_epi8(
                                _mm512_maskz_loadu_epi8(m, p.add(ch)),
                                _mm512_maskz_loadu_epi8(m, p.add(c + ch)),
                            ),
                            _mm512_max_epi8(
                                _mm512_maskz_loadu_epi8(m, q.add(ch)),
                                _mm512_maskz_loadu_epi8(m, q.add(c + ch)),
                            ),
                        );
                        _mm512_mask_storeu_epi8(out.add(j * c + ch), m, clamp(v));
                        ch += 64;
                    }
                }
            }
        }
    }
}
