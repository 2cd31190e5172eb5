//! General matrix multiplication on row-major slices:
//! `C = alpha * op(A) op(B) + beta * C`, where `op(X)` is `X` or `X^T`.
//!
//! With the `alloc` feature, [`gemm`] is a packed, cache-blocked product in the style
//! of BLIS: blocks of A and B are copied ("packed") into buffers laid out for a
//! register-tiled micro-kernel, which does the arithmetic in SIMD registers (AVX-512F
//! or AVX2+FMA on x86-64, picked at run time under `std`; portable code elsewhere).
//! Transposes are read through strides while packing, so nothing else is copied.
//! Under `std` the packing buffers are kept and reused, so once a product of some size
//! has been done, later ones up to that size allocate nothing; large products are
//! split into blocks of C run on a few persistent helper threads (the result does not
//! depend on how many). With `alloc` but not `std` the buffers are allocated
//! per call. Without `alloc`, [`gemm`] runs [`gemm_fallback`], a cache-blocked loop
//! that allocates nothing: slower, but enough for the small models a microcontroller
//! runs.
//!
//! ```
//! use dl_core::gemm::gemm;
//! // A is 2x3, B^T is stored as 2x3 (so B is 3x2): C = A B is 2x2.
//! let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let bt = [1.0f32, 0.0, 1.0, 0.0, 1.0, 0.0];
//! let mut c = [f32::NAN; 4]; // beta = 0 overwrites whatever C holds
//! gemm(false, true, 2, 2, 3, 1.0, &a, &bt, 0.0, &mut c).unwrap();
//! assert_eq!(c, [4.0, 2.0, 10.0, 5.0]);
//! ```

use crate::error::{Error, Result};
use crate::scalar::Scalar;

#[cfg(feature = "alloc")]
mod driver;
#[cfg(feature = "alloc")]
mod gemv;
#[cfg(feature = "alloc")]
mod kernel;
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
mod kernel_x86;
#[cfg(feature = "alloc")]
mod pack;
#[cfg(feature = "alloc")]
mod packed;
#[cfg(feature = "std")]
mod pool;
#[cfg(feature = "alloc")]
mod view;

#[cfg(feature = "alloc")]
pub use packed::PackedB;

/// Threads the threaded kernels use, the caller included: `DL_NUM_THREADS` if set to a
/// positive number (read once), else the machine's parallelism (at most 16); 1
/// without `std`.
pub fn num_threads() -> usize {
    #[cfg(feature = "std")]
    return pool::threads();
    #[cfg(not(feature = "std"))]
    return 1;
}

/// For tests that must see a given thread count: runs test `test` of the running test
/// binary again in a child process with `DL_NUM_THREADS=threads` and `env`, and
/// returns what the child printed (its stdout; the test should print with
/// `--nocapture` in mind). The pool reads `DL_NUM_THREADS` once per process, so a
/// child process is the only honest way to vary the count.
///
/// # Panics
/// With the child's output, unless the child ran exactly that test and it passed: a
/// test that cannot run on the count it asked for fails rather than passes unseen.
#[cfg(feature = "std")]
pub fn rerun_test_with_threads(
    test: &str,
    threads: usize,
    env: &[(&str, &str)],
) -> std::string::String {
    use std::string::String;
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("DL_NUM_THREADS", std::format!("{threads}"))
        .envs(env.iter().copied())
        .output()
        .expect("the test binary runs again");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test} failed in its child at DL_NUM_THREADS={threads}:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// For tests of threaded splits: true when this process has at least `threads`
/// threads, so the test should check here; otherwise runs `test` again with that many
/// ([`rerun_test_with_threads`]), fails if it fails there, and returns false. So a
/// split is checked on a machine of any size, never passed by not splitting.
#[cfg(feature = "std")]
pub fn on_threads(test: &str, threads: usize) -> bool {
    if num_threads() >= threads {
        return true;
    }
    rerun_test_with_threads(test, threads, &[]);
    false
}

/// Runs `task(0)`, ..., `task(parts - 1)` and returns when all are done: on the gemm's
/// persistent helper threads and the caller under `std` (allocation-free; parts are
/// claimed one at a time, so a slow thread leaves its share to the others), in order
/// on the calling thread without `std` or when the pool is already running another
/// job. Work that splits into independent blocks (the rows of a batch) uses it to
/// run on the same threads as the products. A panic in a part is re-raised once all
/// parts are done.
pub fn run_parts(parts: usize, task: &(dyn Fn(usize) + Sync)) {
    #[cfg(feature = "std")]
    pool::run(parts, task);
    #[cfg(not(feature = "std"))]
    (0..parts).for_each(task);
}

/// Runs `task(i, &mut items[i])` for every item, as parts of [`run_parts`]: each item
/// is borrowed by exactly one part, so blocks of disjoint buffers prepared by the
/// caller (a batch's rows, say) can be worked on in place from different threads.
pub fn for_each_mut<P: Send>(items: &mut [P], task: &(dyn Fn(usize, &mut P) + Sync)) {
    /// The items' base pointer, shared with the parts.
    struct Items<P>(*mut P);
    // SAFETY: parts only ever touch disjoint items (one index each, see below), and
    // `P: Send` lets each be used from the thread that runs its part.
    unsafe impl<P: Send> Sync for Items<P> {}
    impl<P> Items<P> {
        /// Item `i` (a method, so the closure below captures all of `Items`, which is
        /// `Sync`, rather than its raw pointer field, which is not).
        ///
        /// SAFETY: the caller must be the only user of item `i`, which must be in bounds.
        unsafe fn get(&self, i: usize) -> *mut P {
            self.0.add(i)
        }
    }
    let base = Items(items.as_mut_ptr());
    let len = items.len();
    run_parts(len, &|i| {
        assert!(i < len);
        // SAFETY: `run_parts` calls every index in `0..len` exactly once and returns
        // only after all calls finish, while `items` is mutably borrowed by this
        // function; so this is the only reference to item `i` for its duration.
        let item = unsafe { &mut *base.get(i) };
        task(i, item);
    });
}

/// `C = alpha * op(A) op(B) + beta * C` on contiguous row-major buffers.
///
/// Shapes: `C` is `m x n`; `op(A)` is `m x k`, stored as `m x k` (or `k x m` when
/// `trans_a`); `op(B)` is `k x n`, stored as `k x n` (or `n x k` when `trans_b`).
/// Each buffer's length must match its shape exactly. `beta == 0` overwrites `C`
/// (NaN or infinity in it does not leak into the result); any of `m`, `n`, `k` may be 0
/// (`k == 0` leaves `C = beta * C`).
///
/// Uses the packed product under `alloc` (allocation-free once warm under `std`, see
/// the module doc), else [`gemm_fallback`].
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Scalar>(
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
) -> Result<()> {
    check_gemm_lengths(m, n, k, a.len(), b.len(), c.len())?;
    #[cfg(feature = "alloc")]
    driver::gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    #[cfg(not(feature = "alloc"))]
    fallback_unchecked(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    Ok(())
}

/// `c = a b` with `a` of shape `m x k`, `b` of shape `k x n` and `c` of shape `m x n`
/// (row-major); overwrites `c`. A shorthand for [`gemm`] without transposes.
///
/// ```
/// let a = [1.0f64, 2.0, 3.0]; // 1x3
/// let b = [4.0f64, 5.0, 6.0]; // 3x1
/// let mut c = [0.0f64; 1];
/// dl_core::gemm::matmul(&a, &b, &mut c, 1, 3, 1).unwrap();
/// assert_eq!(c, [32.0]);
/// ```
pub fn matmul<T: Scalar>(
    a: &[T],
    b: &[T],
    c: &mut [T],
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    gemm(false, false, m, n, k, T::ONE, a, b, T::ZERO, c)
}

/// `batch` independent products `C_i = alpha * op(A_i) op(B_i) + beta * C_i`, with the
/// matrices of each operand stored one after another (`a` holds `batch` matrices of
/// `m * k` elements, `b` of `k * n`, `c` of `m * n`; layouts as in [`gemm`]).
#[allow(clippy::too_many_arguments)]
pub fn batched_gemm<T: Scalar>(
    batch: usize,
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
) -> Result<()> {
    const OP: &str = "batched_gemm";
    let overflow = Error::Overflow { op: OP };
    let (sa, sb, sc) = (
        m.checked_mul(k).ok_or(overflow)?,
        k.checked_mul(n).ok_or(overflow)?,
        m.checked_mul(n).ok_or(overflow)?,
    );
    check_len(OP, "a", batch.checked_mul(sa).ok_or(overflow)?, a.len())?;
    check_len(OP, "b", batch.checked_mul(sb).ok_or(overflow)?, b.len())?;
    check_len(OP, "c", batch.checked_mul(sc).ok_or(overflow)?, c.len())?;
    for i in 0..batch {
        gemm(
            trans_a,
            trans_b,
            m,
            n,
            k,
            alpha,
            &a[i * sa..(i + 1) * sa],
            &b[i * sb..(i + 1) * sb],
            beta,
            &mut c[i * sc..(i + 1) * sc],
        )?;
    }
    Ok(())
}

fn check_len(op: &'static str, what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op,
            what,
            expected,
            actual,
        })
    }
}

fn check_gemm_lengths(m: usize, n: usize, k: usize, a: usize, b: usize, c: usize) -> Result<()> {
    const OP: &str = "gemm";
    let overflow = Error::Overflow { op: OP };
    check_len(OP, "a", m.checked_mul(k).ok_or(overflow)?, a)?;
    check_len(OP, "b", k.checked_mul(n).ok_or(overflow)?, b)?;
    check_len(OP, "c", m.checked_mul(n).ok_or(overflow)?, c)
}

/// Columns of `C` (and rows of a non-transposed `B`) processed per block: with
/// [`KC`] rows of `B` the block is 64 KiB of f32, so it stays in L2 while every row of
/// `A` streams past it.
const NC: usize = 256;
/// Depth (the `k` range) per block.
const KC: usize = 64;
/// Rows of a transposed `B` kept hot per block in the dot-product form.
const NB: usize = 32;

/// The allocation-free gemm [`gemm`] uses without `alloc`; same contract, same results
/// up to rounding. Public so it can be tested and benchmarked on any host.
///
/// Two loop orders keep the innermost loop on contiguous memory: with `B` not
/// transposed, each row of `C` gets `alpha * a_ip * B[p, :]` added (an axpy over
/// a `KC x NC` block of `B` that stays in cache); with `B` transposed, each `C[i, j]` is
/// a dot product of row `i` of `op(A)` with row `j` of the stored `B`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_fallback<T: Scalar>(
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
) -> Result<()> {
    check_gemm_lengths(m, n, k, a.len(), b.len(), c.len())?;
    fallback_unchecked(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
    Ok(())
}

/// [`gemm_fallback`] after its length checks.
#[allow(clippy::too_many_arguments)]
fn fallback_unchecked<T: Scalar>(
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
    scale_by_beta(c, beta);
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // op(A)[i, p]
    let a_at = |i: usize, p: usize| if trans_a { a[p * m + i] } else { a[i * k + p] };
    if !trans_b {
        for j0 in (0..n).step_by(NC) {
            let j1 = (j0 + NC).min(n);
            for p0 in (0..k).step_by(KC) {
                let p1 = (p0 + KC).min(k);
                for i in 0..m {
                    let c_row = &mut c[i * n + j0..i * n + j1];
                    for p in p0..p1 {
                        let s = alpha * a_at(i, p);
                        let b_row = &b[p * n + j0..p * n + j1];
                        for (cij, &bpj) in c_row.iter_mut().zip(b_row) {
                            *cij = *cij + s * bpj;
                        }
                    }
                }
            }
        }
    } else {
        for j0 in (0..n).step_by(NB) {
            let j1 = (j0 + NB).min(n);
            for i in 0..m {
                for j in j0..j1 {
                    let b_row = &b[j * k..(j + 1) * k];
                    let s = if trans_a {
                        // Column i of the stored A is strided; no contiguous dot here.
                        let mut s = T::ZERO;
                        for (p, &bjp) in b_row.iter().enumerate() {
                            s = s + a[p * m + i] * bjp;
                        }
                        s
                    } else {
                        dot(&a[i * k..(i + 1) * k], b_row)
                    };
                    c[i * n + j] = c[i * n + j] + alpha * s;
                }
            }
        }
    }
}

/// `c = beta * c`, writing exact zeros when `beta == 0` (BLAS convention: C is then
/// not read, so NaN in it does not survive).
fn scale_by_beta<T: Scalar>(c: &mut [T], beta: T) {
    if beta == T::ZERO {
        c.fill(T::ZERO);
    } else if beta != T::ONE {
        for x in c.iter_mut() {
            *x = *x * beta;
        }
    }
}

/// Dot product with four independent partial sums, so the compiler can keep them in
/// SIMD lanes (a single running sum is a serial dependency chain).
fn dot<T: Scalar>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let xc = x.chunks_exact(4);
    let yc = y.chunks_exact(4);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..4 {
            acc[l] = acc[l] + xs[l] * ys[l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&xi, &yi) in xr.iter().zip(yr) {
        s = s + xi * yi;
    }
    s
}

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::gemm;
    use crate::error::{Error, Result};
    use crate::scalar::Scalar;
    use crate::shape::Shape;
    use crate::tensor::Tensor;
    use alloc::vec;

    impl<T: Scalar> Tensor<T> {
        /// Matrix product `self @ rhs`: `[m, k] x [k, n] -> [m, n]`, batched
        /// `[b, m, k] x [b, k, n] -> [b, m, n]`, or `[b, m, k] x [k, n] -> [b, m, n]`
        /// (the same right-hand matrix for every batch entry).
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let a = Tensor::from_rows([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        /// let b = Tensor::from_rows([[1.0f32], [1.0], [1.0]]);
        /// assert_eq!(a.matmul(&b).unwrap().data(), &[6.0, 15.0]);
        /// assert_eq!(
        ///     a.matmul(&a).unwrap_err().to_string(),
        ///     "matmul: shapes [2, 3] and [2, 3] are incompatible (inner dimensions must agree)"
        /// );
        /// ```
        pub fn matmul(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            let (ls, rs) = (*self.shape(), *rhs.shape());
            let mismatch = |why| Error::ShapeMismatch {
                op: "matmul",
                lhs: ls,
                rhs: rs,
                why,
            };
            let (batch, m, k, n, shared_rhs) = match (ls.dims(), rs.dims()) {
                (&[m, k], &[k2, n]) if k == k2 => (1, m, k, n, true),
                (&[b, m, k], &[k2, n]) if k == k2 => (b, m, k, n, true),
                (&[b, m, k], &[b2, k2, n]) if k == k2 && b == b2 => (b, m, k, n, false),
                (&[_, _, _], &[_, _, _]) if ls.dims()[2] == rs.dims()[1] => {
                    return Err(mismatch("batch dimensions must agree"))
                }
                (&[_, _], &[_, _]) | (&[_, _, _], &[_, _]) | (&[_, _, _], &[_, _, _]) => {
                    return Err(mismatch("inner dimensions must agree"))
                }
                _ => {
                    return Err(mismatch(
                        "matmul takes 2-D x 2-D, 3-D x 3-D or 3-D x 2-D operands",
                    ))
                }
            };
            let out_shape = if ls.rank() == 2 {
                Shape::new(&[m, n])?
            } else {
                Shape::new(&[batch, m, n])?
            };
            let mut out = vec![T::ZERO; out_shape.numel()];
            if shared_rhs {
                // Consecutive row-major [m, k] matrices are one [batch * m, k] matrix:
                // a single large gemm instead of `batch` small ones.
                gemm(
                    false,
                    false,
                    batch * m,
                    n,
                    k,
                    T::ONE,
                    self.data(),
                    rhs.data(),
                    T::ZERO,
                    &mut out,
                )?;
            } else {
                super::batched_gemm(
                    batch,
                    false,
                    false,
                    m,
                    n,
                    k,
                    T::ONE,
                    self.data(),
                    rhs.data(),
                    T::ZERO,
                    &mut out,
                )?;
            }
            Tensor::from_shape_vec(out_shape, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_each_mut_visits_every_item_once_in_place() {
        let mut items = [0usize; 7];
        for round in 1..=50 {
            for_each_mut(&mut items, &|i, item| *item += i + 1);
            for (i, &v) in items.iter().enumerate() {
                assert_eq!(v, round * (i + 1));
            }
        }
    }

    #[test]
    fn fallback_matches_hand_computed_product() {
        // [1 2; 3 4] [5 6; 7 8] = [19 22; 43 50]; then alpha = 2, beta = 1 on top.
        let a = [1.0f64, 2.0, 3.0, 4.0];
        let b = [5.0f64, 6.0, 7.0, 8.0];
        let mut c = [f64::NAN; 4];
        gemm_fallback(false, false, 2, 2, 2, 1.0, &a, &b, 0.0, &mut c).unwrap();
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        gemm_fallback(false, false, 2, 2, 2, 2.0, &a, &b, 1.0, &mut c).unwrap();
        assert_eq!(c, [57.0, 66.0, 129.0, 150.0]);
        // A^T B^T = (B A)^T: B A = [23 34; 31 46].
        gemm_fallback(true, true, 2, 2, 2, 1.0, &a, &b, 0.0, &mut c).unwrap();
        assert_eq!(c, [23.0, 31.0, 34.0, 46.0]);
    }

    #[test]
    fn k_zero_scales_c_only() {
        let mut c = [1.0f32, 2.0];
        gemm(false, false, 1, 2, 0, 1.0, &[], &[], 3.0, &mut c).unwrap();
        assert_eq!(c, [3.0, 6.0]);
        gemm_fallback(false, false, 1, 2, 0, 1.0, &[], &[], 0.5, &mut c).unwrap();
        assert_eq!(c, [1.5, 3.0]);
    }

    #[test]
    fn dot_handles_remainders() {
        let x: [f64; 7] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        assert_eq!(dot(&x, &x), 140.0);
        assert_eq!(dot::<f64>(&[], &[]), 0.0);
    }
}
