//! Products with a single row of C (`m == 1`: a batch-1 dense layer). Packing B
//! would copy the whole weight matrix to use each element once, so these read it in
//! place: a dot product per output when B is stored transposed (PyTorch's `[out,
//! in]` weights), a scaled row sum when it is not.

use super::kernel::Element;

/// Lanes of partial sums: independent accumulators the compiler keeps in SIMD
/// registers (one running sum would be a serial dependency chain).
const LANES: usize = 32;

#[inline(always)]
fn dot<T: Element>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] = acc[l] + a[l] * b[l];
        }
    }
    let mut s = T::ZERO;
    for (&a, &b) in xr.iter().zip(yr) {
        s = s + a * b;
    }
    // Pairwise, so the result does not depend on how the lanes were laid out.
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] = acc[l] + acc[l + w];
        }
    }
    acc[0] + s
}

/// `c = alpha * a op(B) + beta * c` for a row `a` of length `k` (see the module doc).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemv_body<T: Element>(
    trans_b: bool,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    if trans_b {
        for (j, cj) in c.iter_mut().enumerate() {
            let v = alpha * dot(a, &b[j * k..(j + 1) * k]);
            *cj = if beta == T::ZERO { v } else { beta * *cj + v };
        }
    } else {
        super::scale_by_beta(c, beta);
        for (p, &ap) in a.iter().enumerate() {
            let s = alpha * ap;
            for (cj, &bv) in c.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cj = *cj + s * bv;
            }
        }
    }
}

/// Dot-product form (`trans_b`) products of at least this many multiply-adds are
/// split over threads by blocks of outputs: at batch 1 a layer streams its whole
/// weight matrix from L2 once, so two cores each reading half of it halve the time,
/// and each output's dot product is the same whichever block it falls in.
#[cfg(feature = "std")]
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// `c = alpha * a op(B) + beta * c` for a row `a` (see the module doc), threaded under
/// std for large dot-product forms.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemv<T: Element>(
    trans_b: bool,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    #[cfg(feature = "std")]
    {
        const MAX: usize = super::pool::MAX_THREADS;
        let parts = super::pool::threads().min(MAX);
        if trans_b && parts > 1 && n.saturating_mul(k) >= PARALLEL_MIN_MACS && n >= 32 {
            // Blocks of 16 outputs (whole cache lines of f32 C, whole groups of the
            // 4-row kernel).
            let size = n.div_ceil(parts).next_multiple_of(16);
            let mut blocks = c.chunks_mut(size).zip(b.chunks(size * k));
            let mut items: [Option<(&mut [T], &[T])>; MAX] =
                core::array::from_fn(|_| blocks.next());
            super::for_each_mut(&mut items, &|_, item| {
                if let Some((c, b)) = item {
                    gemv_serial(true, c.len(), k, alpha, a, b, beta, c);
                }
            });
            return;
        }
    }
    gemv_serial(trans_b, n, k, alpha, a, b, beta, c)
}

/// Runs [`gemv_body`] compiled for the best vector extension this CPU has.
#[allow(clippy::too_many_arguments)]
fn gemv_serial<T: Element>(
    trans_b: bool,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if trans_b && std::is_x86_feature_detected!("avx512f") {
            if let (Some(a), Some(b), Some(c)) = (
                super::driver::cast::<T, f32>(a),
                super::driver::cast::<T, f32>(b),
                super::driver::cast_mut::<T, f32>(c),
            ) {
                let alpha = super::driver::cast::<T, f32>(core::slice::from_ref(&alpha))
                    .map_or(1.0, |v| v[0]);
                let beta = super::driver::cast::<T, f32>(core::slice::from_ref(&beta))
                    .map_or(0.0, |v| v[0]);
                // SAFETY: the CPU has AVX-512F (checked just above).
                return unsafe { dots_avx512_f32(k, alpha, a, b, beta, c) };
            }
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { gemv_avx512(trans_b, n, k, alpha, a, b, beta, c) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { gemv_avx2(trans_b, n, k, alpha, a, b, beta, c) };
        }
    }
    gemv_body(trans_b, n, k, alpha, a, b, beta, c)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_avx512<T: Element>(
    trans_b: bool,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    gemv_body(trans_b, n, k, alpha, a, b, beta, c)
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemv_avx2<T: Element>(
    trans_b: bool,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    gemv_body(trans_b, n, k, alpha, a, b, beta, c)
}

/// `c_j = alpha * a . b_j + beta * c_j` for the rows `b_j` (length `k`) of `b`, f32 on
/// AVX-512: eight rows at a time share each load of `a`, one accumulator per row (a
/// row is summed the same way in a group or in the tail), the depth tail is a masked
/// load; the sums are reduced in a fixed order.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512_f32(k: usize, alpha: f32, a: &[f32], b: &[f32], beta: f32, c: &mut [f32]) {
    use core::arch::x86_64::*;
    /// Rows per group: each shares the loads of `a`, and eight row streams keep
    /// more cache-line fills in flight than four.
    const G: usize = 8;
    let n = c.len();
    debug_assert!(a.len() >= k && b.len() >= n * k);
    let full = k / 16;
    let tail = k % 16;
    let mask: __mmask16 = ((1u32 << tail) - 1) as __mmask16;
    let ap = a.as_ptr();
    let finish = |v: f32, cj: &mut f32| {
        let v = alpha * v;
        *cj = if beta == 0.0 { v } else { beta * *cj + v };
    };
    let mut j = 0;
    while j + G <= n {
        let rows: [*const f32; G] = core::array::from_fn(|r| b.as_ptr().add((j + r) * k));
        let mut acc = [_mm512_setzero_ps(); G];
        for q in 0..full {
            let av = _mm512_loadu_ps(ap.add(16 * q));
            for r in 0..G {
                acc[r] = _mm512_fmadd_ps(av, _mm512_loadu_ps(rows[r].add(16 * q)), acc[r]);
            }
        }
        if tail > 0 {
            let av = _mm512_maskz_loadu_ps(mask, ap.add(16 * full));
            for r in 0..G {
                let bv = _mm512_maskz_loadu_ps(mask, rows[r].add(16 * full));
                acc[r] = _mm512_fmadd_ps(av, bv, acc[r]);
            }
        }
        for r in 0..G {
            finish(_mm512_reduce_add_ps(acc[r]), &mut c[j + r]);
        }
        j += G;
    }
    while j < n {
        let row = b.as_ptr().add(j * k);
        let mut acc = _mm512_setzero_ps();
        for q in 0..full {
            acc = _mm512_fmadd_ps(
                _mm512_loadu_ps(ap.add(16 * q)),
                _mm512_loadu_ps(row.add(16 * q)),
                acc,
            );
        }
        if tail > 0 {
            let av = _mm512_maskz_loadu_ps(mask, ap.add(16 * full));
            acc = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, row.add(16 * full)), acc);
        }
        finish(_mm512_reduce_add_ps(acc), &mut c[j]);
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use alloc::vec::Vec;

    /// Splitting the outputs over threads changes no bit: each output's dot product is
    /// computed the same way in any block.
    #[test]
    fn threaded_dot_form_matches_one_thread() {
        let mut rng = Rng::seed_from_u64(8);
        for (n, k) in [(600usize, 784usize), (130, 513), (33, 2000)] {
            let a: Vec<f32> = (0..k).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let b: Vec<f32> = (0..n * k).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let c0: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            for (alpha, beta) in [(1.0, 0.0), (0.5, -2.0)] {
                let (mut par, mut one) = (c0.clone(), c0.clone());
                gemv(true, n, k, alpha, &a, &b, beta, &mut par);
                gemv_serial(true, n, k, alpha, &a, &b, beta, &mut one);
                assert!(par == one, "n={n} k={k}: threaded gemv differs");
            }
        }
    }
}
