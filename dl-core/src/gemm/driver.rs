//! The packed gemm (the BLIS / GotoBLAS loop nest) on top of the micro-kernels:
//!
//! ```text
//! for jc in 0..n step NC            columns of C and B
//!   for pc in 0..k step KC          depth
//!     pack B[pc.., jc..] into KC x NR panels          (the KC x NC block stays in L2)
//!     for ir in 0..m step MR        rows of C and A
//!       pack A[ir.., pc..] into an MR x KC panel       (reused from L1 ...)
//!       for each B panel                               (... against the whole block)
//!         micro-kernel on one MR x NR tile of C
//! ```
//!
//! The first depth block applies the caller's `beta`, later ones add (`beta = 1`).
//! Under std the packing buffers only grow and are kept, so repeated products allocate
//! nothing: thread-local ones for products on the calling thread, and one pair per
//! part for large products, which are split into blocks of C run on the helper threads
//! of `pool.rs`. A part is a fixed block of rows or columns of C, and every element
//! of C is computed by the same kernel with the same depth order, so the result does
//! not depend on the number of threads.

use super::kernel::{Element, Kernel, Portable};
use super::scale_by_beta;
use super::view::{MatMut, View};
use crate::scalar::Scalar;
use core::any::TypeId;

/// Products below this many multiply-adds run on the calling thread only: waking a
/// helper costs a few microseconds, about what a core does in this many.
#[cfg(feature = "std")]
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// One product: `C = alpha * A B + beta * C`, `A` (`m x k`) and `B` (`k x n`) as
/// strided views, `C` contiguous row-major (`m x n`).
#[derive(Clone, Copy)]
struct Problem<'a, T> {
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: View<'a, T>,
    b: View<'a, T>,
    beta: T,
}

impl<'a, T> Problem<'a, T> {
    /// The problem for row-major buffers as [`super::gemm`] takes them: a transpose
    /// swaps the strides.
    #[allow(clippy::too_many_arguments)]
    fn new(
        trans_a: bool,
        trans_b: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        a: &'a [T],
        b: &'a [T],
        beta: T,
    ) -> Self {
        let (ars, acs) = if trans_a { (1, m) } else { (k, 1) };
        let (brs, bcs) = if trans_b { (1, k) } else { (n, 1) };
        Self {
            m,
            n,
            k,
            alpha,
            a: View {
                data: a,
                rs: ars,
                cs: acs,
            },
            b: View {
                data: b,
                rs: brs,
                cs: bcs,
            },
            beta,
        }
    }
}

/// [`super::gemm`] after its length checks: picks the element type's kernels (f32,
/// f64) and runs the packed product; any other `Scalar` implementation gets the
/// plain fallback loop.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<T: Scalar>(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    if let (Some(a), Some(b), Some(c)) = (cast::<T, f32>(a), cast::<T, f32>(b), cast_mut(c)) {
        let (alpha, beta) = (
            cast::<T, f32>(&[alpha]).map(|x| x[0]),
            cast::<T, f32>(&[beta]).map(|x| x[0]),
        );
        if let (Some(alpha), Some(beta)) = (alpha, beta) {
            return gemm_typed(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
        }
    }
    if let (Some(a), Some(b), Some(c)) = (cast::<T, f64>(a), cast::<T, f64>(b), cast_mut(c)) {
        let (alpha, beta) = (
            cast::<T, f64>(&[alpha]).map(|x| x[0]),
            cast::<T, f64>(&[beta]).map(|x| x[0]),
        );
        if let (Some(alpha), Some(beta)) = (alpha, beta) {
            return gemm_typed(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
        }
    }
    super::fallback_unchecked(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
}

/// `x` as a slice of `U` when `T` is `U`.
pub(super) fn cast<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        // SAFETY: `T` and `U` are the same type, so the slice is reinterpreted as itself.
        Some(unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<U>(), x.len()) })
    } else {
        None
    }
}

/// `x` as a mutable slice of `U` when `T` is `U`.
pub(super) fn cast_mut<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
    if TypeId::of::<T>() == TypeId::of::<U>() {
        // SAFETY: `T` and `U` are the same type; the unique borrow moves into the result.
        Some(unsafe { core::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<U>(), x.len()) })
    } else {
        None
    }
}

/// The packed product for one element type: picks the best kernel this CPU runs.
#[allow(clippy::too_many_arguments)]
fn gemm_typed<T: Element>(
    trans_a: bool,
    trans_b: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &mut [T],
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == T::ZERO {
        // BLAS convention: A and B are not read, so C = beta * C exactly.
        scale_by_beta(c, beta);
        return;
    }
    if m == 1 {
        // A is one contiguous row either way round.
        return super::gemv::gemv(trans_b, n, k, alpha, a, b, beta, c);
    }
    let p = Problem::new(trans_a, trans_b, m, n, k, alpha, a, b, beta);
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(kernel) = T::Avx512::detect() {
            return run(kernel, p, c, threads_for::<T::Avx512>(m, n, k));
        }
        if let Some(kernel) = T::Avx2::detect() {
            return run(kernel, p, c, threads_for::<T::Avx2>(m, n, k));
        }
    }
    run(Portable::new(), p, c, threads_for::<Portable<T>>(m, n, k))
}

/// How many parts to split an `m x n x k` product into.
fn threads_for<K: Kernel>(m: usize, n: usize, k: usize) -> usize {
    #[cfg(feature = "std")]
    {
        let macs = m.saturating_mul(n).saturating_mul(k);
        if macs >= PARALLEL_MIN_MACS {
            let threads = super::pool::threads();
            let tiles = if split_by_rows::<K>(m, n, k, threads) {
                m.div_ceil(K::MR)
            } else {
                n.div_ceil(K::NR)
            };
            return threads.min(tiles);
        }
    }
    let _ = (m, n, k);
    1
}

/// Whether `parts` parts should split C by rows (else by columns): whichever packs
/// fewer elements per part. A part packs all of B and its rows of A once per `NC`
/// columns when split by rows; its columns of B and all of A once per `NC` of its
/// columns when split by columns. (Square products split by columns; an MLP's
/// `dW = X^T dY`, tall and narrow, by rows.)
#[cfg(feature = "std")]
fn split_by_rows<K: Kernel>(m: usize, n: usize, k: usize, parts: usize) -> bool {
    let packed = |a_rows: usize, b_cols: usize| {
        let a = a_rows
            .saturating_mul(k)
            .saturating_mul(b_cols.div_ceil(K::NC));
        k.saturating_mul(b_cols).saturating_add(a)
    };
    packed(m.div_ceil(parts), n) <= packed(m, n.div_ceil(parts))
}

/// Runs the product on the calling thread, or under std in `parts` blocks of C on the
/// pool, split as [`split_by_rows`] says, in multiples of the register tile.
fn run<K: Kernel>(kernel: K, p: Problem<'_, K::T>, c: &mut [K::T], parts: usize) {
    let c = MatMut::new(c, p.m, p.n);
    #[cfg(feature = "std")]
    {
        use std::sync::{Mutex, PoisonError};
        // One pair of part buffers per part (see `Element::with_part_buffers`).
        let parts = parts.min(super::pool::MAX_THREADS);
        if parts > 1 {
            let by_rows = split_by_rows::<K>(p.m, p.n, p.k, parts);
            let step = if by_rows {
                p.m.div_ceil(parts).next_multiple_of(K::MR)
            } else {
                p.n.div_ceil(parts).next_multiple_of(K::NR)
            };
            // Each part takes its block of C out of its slot: disjoint blocks handed
            // to threads without allocating (a fixed array of futex mutexes).
            let mut rest = Some(c);
            let slots: [Mutex<Option<MatMut<'_, K::T>>>; super::pool::MAX_THREADS] =
                core::array::from_fn(|_| {
                    let block = match rest.take() {
                        Some(r) => {
                            let (block, r) = if by_rows {
                                let at = step.min(r.rows());
                                r.split_at_row(at)
                            } else {
                                let at = step.min(r.cols());
                                r.split_at_col(at)
                            };
                            rest = Some(r);
                            Some(block)
                        }
                        None => None,
                    };
                    Mutex::new(block)
                });
            super::pool::run(parts, &|part| {
                let block = slots[part]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let Some(block) = block.filter(|b| b.rows() > 0 && b.cols() > 0) else {
                    return;
                };
                let sub = if by_rows {
                    Problem {
                        m: block.rows(),
                        a: p.a.rows_from(part * step),
                        ..p
                    }
                } else {
                    Problem {
                        n: block.cols(),
                        b: p.b.cols_from(part * step),
                        ..p
                    }
                };
                K::T::with_part_buffers(part, |abuf, bbuf| serial(kernel, sub, block, abuf, bbuf));
            });
        } else {
            K::T::with_buffers(|abuf, bbuf| serial(kernel, p, c, abuf, bbuf));
        }
    }
    #[cfg(not(feature = "std"))]
    {
        // Without std there are no thread-locals to keep the buffers in; allocate
        // them per product, as matrixmultiply does.
        let _ = parts;
        let (mut abuf, mut bbuf) = (alloc::vec::Vec::new(), alloc::vec::Vec::new());
        serial(kernel, p, c, &mut abuf, &mut bbuf);
    }
}

/// The depth block size: at most `KC`, and as even as possible (k = 784 makes four
/// blocks of 196 rather than three of 256 and one of 16, whose C traffic and loop
/// overhead per multiply-add would be high). Depends on `k` only, so every part of a
/// threaded product uses the same blocks, and every element of C the same sum order.
pub(super) fn depth_block<K: Kernel>(k: usize) -> usize {
    k.div_ceil(k.div_ceil(K::KC))
}

/// The first `len` elements of `buf` after its first 64-byte boundary (so that panel
/// rows do not straddle cache lines), growing `buf` if needed: once a thread has
/// multiplied matrices of some size, products up to that size allocate nothing.
pub(super) fn aligned<T: Element>(buf: &mut alloc::vec::Vec<T>, len: usize) -> &mut [T] {
    let slack = 64 / core::mem::size_of::<T>();
    if buf.len() < len + slack {
        buf.resize(len + slack, T::ZERO);
    }
    let offset = buf.as_ptr().align_offset(64).min(slack);
    &mut buf[offset..offset + len]
}

/// The loop nest of the module doc, on the calling thread; `c` is the `p.m x p.n`
/// block of C the problem describes.
fn serial<K: Kernel>(
    kernel: K,
    p: Problem<'_, K::T>,
    mut c: MatMut<'_, K::T>,
    abuf: &mut alloc::vec::Vec<K::T>,
    bbuf: &mut alloc::vec::Vec<K::T>,
) {
    let (m, n, k) = (p.m, p.n, p.k);
    let kc_max = depth_block::<K>(k);
    let a_panel = aligned(abuf, K::MR * kc_max);
    let b_block = aligned(bbuf, n.min(K::NC).next_multiple_of(K::NR) * kc_max);
    for jc in (0..n).step_by(K::NC) {
        let nc = K::NC.min(n - jc);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            let beta = if pc == 0 { p.beta } else { K::T::ONE };
            let b_block = &mut b_block[..nc.next_multiple_of(K::NR) * kc];
            K::pack_b(b_block, p.b, pc..pc + kc, jc..jc + nc);
            for ir in (0..m).step_by(K::MR) {
                let mr = K::MR.min(m - ir);
                // Packed just before use, so it is still in L1 for all of the block.
                let a_panel = &mut a_panel[..K::MR * kc];
                K::pack_a(a_panel, p.a, ir..ir + mr, pc..pc + kc);
                let b_panels = b_block.chunks_exact(K::NR * kc);
                for (jr, b_panel) in (0..nc).step_by(K::NR).zip(b_panels) {
                    let nr = K::NR.min(nc - jr);
                    let tile = c.block(ir, jc + jr, mr, nr);
                    kernel.run(a_panel, b_panel, tile, p.alpha, beta);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use alloc::vec::Vec;

    /// `alpha * op(A) op(B) + beta * C` by the definition, accumulated in f64
    /// (`beta == 0` ignores C).
    #[allow(clippy::too_many_arguments)]
    fn naive<T: Element>(
        ta: bool,
        tb: bool,
        m: usize,
        n: usize,
        k: usize,
        alpha: T,
        a: &[T],
        b: &[T],
        beta: T,
        c: &[T],
    ) -> Vec<f64> {
        let f = |x: T| x.to_f64_lossless();
        let mut out = alloc::vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| {
                        let aip = if ta { a[p * m + i] } else { a[i * k + p] };
                        let bpj = if tb { b[j * k + p] } else { b[p * n + j] };
                        f(aip) * f(bpj)
                    })
                    .sum();
                let old = if beta == T::ZERO {
                    0.0
                } else {
                    f(beta) * f(c[i * n + j])
                };
                out[i * n + j] = f(alpha) * s + old;
            }
        }
        out
    }

    fn random<T: Element>(len: usize, rng: &mut Rng) -> Vec<T> {
        (0..len).map(|_| rng.uniform(-T::ONE, T::ONE)).collect()
    }

    /// Runs `kernel` with `parts` parts on every transpose mode and a few alpha/beta
    /// pairs, against [`naive`]; C starts as NaN when `beta == 0`.
    fn check_kernel<K: Kernel>(kernel: K, m: usize, n: usize, k: usize, parts: usize, tol: f64) {
        let mut rng = Rng::seed_from_u64((m * 1_000_003 + n * 1009 + k) as u64);
        let a = random::<K::T>(m * k, &mut rng);
        let b = random::<K::T>(k * n, &mut rng);
        let c0 = random::<K::T>(m * n, &mut rng);
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.5, -0.5)] {
                let alpha = K::T::from_f64_lossy(alpha);
                let beta = K::T::from_f64_lossy(beta);
                let mut c = if beta == K::T::ZERO {
                    alloc::vec![<K::T as num_traits::Float>::nan(); m * n]
                } else {
                    c0.clone()
                };
                let want = naive(ta, tb, m, n, k, alpha, &a, &b, beta, &c);
                let p = Problem::new(ta, tb, m, n, k, alpha, &a, &b, beta);
                run(kernel, p, &mut c, parts);
                for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
                    let got = got.to_f64_lossless();
                    assert!(
                        (got - w).abs() <= tol * (k as f64 + 1.0),
                        "{} MR={} ta={ta} tb={tb} m={m} n={n} k={k} parts={parts}: \
                         c[{idx}] = {got}, want {w}",
                        K::T::NAME,
                        K::MR,
                    );
                }
            }
        }
    }

    /// Shapes that cross every block size (KC = 256 in three uneven depth blocks,
    /// NC = 512, the register tiles), with odd edges and degenerate sides.
    const SHAPES: [(usize, usize, usize); 7] = [
        (37, 531, 300),
        (301, 45, 517),
        (9, 1030, 17),
        (600, 33, 65),
        (1, 600, 600),
        (600, 1, 97),
        (67, 67, 600),
    ];

    fn check_all_shapes<K: Kernel>(kernel: K, tol: f64) {
        for (m, n, k) in SHAPES {
            check_kernel(kernel, m, n, k, 1, tol);
        }
        // Threaded splits by rows (tall) and by columns (wide), in more parts than
        // there are threads.
        check_kernel(kernel, 130, 70, 300, 3, tol);
        check_kernel(kernel, 50, 300, 270, 2, tol);
    }

    #[test]
    fn portable_kernel_matches_naive_product() {
        check_all_shapes(Portable::<f32>::new(), 1e-6);
        check_all_shapes(Portable::<f64>::new(), 1e-14);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_kernels_match_naive_product() {
        use super::super::kernel_x86::{Avx2F32, Avx2F64, Avx512F32, Avx512F64};
        // Each runs only where the CPU has it.
        if let Some(kernel) = Avx2F32::detect() {
            check_all_shapes(kernel, 1e-6);
        }
        if let Some(kernel) = Avx2F64::detect() {
            check_all_shapes(kernel, 1e-14);
        }
        if let Some(kernel) = Avx512F32::detect() {
            check_all_shapes(kernel, 1e-6);
        }
        if let Some(kernel) = Avx512F64::detect() {
            check_all_shapes(kernel, 1e-14);
        }
    }

    /// Splitting over threads must not change a single bit: every element is summed
    /// by the same kernel in the same depth order whichever part it falls in.
    #[test]
    fn result_does_not_depend_on_the_number_of_parts() {
        fn bits<K: Kernel>(kernel: K, m: usize, n: usize, k: usize, parts: usize) -> Vec<f64> {
            let mut rng = Rng::seed_from_u64(11);
            let a = random::<K::T>(m * k, &mut rng);
            let b = random::<K::T>(k * n, &mut rng);
            let mut c = random::<K::T>(m * n, &mut rng);
            let p = Problem::new(false, true, m, n, k, K::T::ONE, &a, &b, K::T::ONE);
            run(kernel, p, &mut c, parts);
            c.iter().map(|x| x.to_f64_lossless()).collect()
        }
        fn check<K: Kernel>(kernel: K) {
            for (m, n) in [(203, 61), (61, 203)] {
                let one = bits(kernel, m, n, 530, 1);
                for parts in [2, 3, 5] {
                    let split = bits(kernel, m, n, 530, parts);
                    assert!(
                        one.iter()
                            .zip(&split)
                            .all(|(x, y)| x.to_bits() == y.to_bits()),
                        "m={m} n={n}: {parts} parts differ from 1"
                    );
                }
            }
        }
        check(Portable::<f32>::new());
        #[cfg(target_arch = "x86_64")]
        if let Some(kernel) = <f32 as Element>::Avx512::detect() {
            check(kernel);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(kernel) = <f64 as Element>::Avx2::detect() {
            check(kernel);
        }
    }

    #[test]
    fn alpha_zero_and_empty_sides_only_scale_c() {
        // BLAS: with alpha = 0, A and B are not read (NaN in them does not leak).
        let a = [f32::NAN; 6];
        let mut c = [1.0f32, 2.0, 3.0, 4.0];
        gemm(false, false, 2, 2, 3, 0.0, &a, &a, 0.5, &mut c);
        assert_eq!(c, [0.5, 1.0, 1.5, 2.0]);
        gemm(false, false, 2, 2, 0, 1.0, &[], &[], 0.0, &mut c);
        assert_eq!(c, [0.0; 4]);
    }
}
