//! Dense linear algebra on row-major slices, no allocation (works without `alloc`):
//! Cholesky (with an optional growing jitter), LU solve, the symmetric
//! eigendecomposition (cyclic Jacobi) and the SVD (one-sided Jacobi), plus the
//! column means and covariance the statistical models need.
//!
//! Jacobi methods are chosen over Householder + QR for their accuracy: every
//! eigenvalue comes out to high *relative* precision, which is what lets PCA's
//! explained-variance ratios match LAPACK to 1e-6 and more. They cost O(n^3) per
//! sweep with ~6-10 sweeps, fine for the feature counts (tens to a few hundred) of
//! classic methods.
//!
//! ```
//! use dl_classic::linalg;
//! // A = [[4, 2], [2, 3]] = L L^T
//! let mut a = [4.0f64, 2.0, 2.0, 3.0];
//! linalg::cholesky(&mut a, 2).unwrap();
//! assert!((a[0] - 2.0).abs() < 1e-12 && (a[2] - 1.0).abs() < 1e-12);
//! assert!((a[3] - 2.0f64.sqrt()).abs() < 1e-12);
//! ```

use crate::error::{Error, Result};
use dl_core::Scalar;

const CHOLESKY_HINT: &str =
    "the matrix must be symmetric positive definite: add a regularization (jitter / reg_covar / reg_param) to its diagonal";

/// In-place Cholesky factorization `A = L L^T` of the `n x n` symmetric positive
/// definite matrix `a` (only its lower triangle is read). On success `a` holds `L`
/// with its strict upper triangle zeroed; on failure returns [`Error::Singular`] and
/// `a` is partly overwritten.
pub fn cholesky<T: Scalar>(a: &mut [T], n: usize) -> Result<()> {
    debug_assert_eq!(a.len(), n * n);
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d = d - a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= T::ZERO {
            return Err(Error::Singular {
                what: "matrix in Cholesky factorization",
                hint: CHOLESKY_HINT,
            });
        }
        let ljj = d.sqrt();
        a[j * n + j] = ljj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s = s - a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / ljj;
        }
        for k in j + 1..n {
            a[j * n + k] = T::ZERO;
        }
    }
    Ok(())
}

/// Cholesky with a growing diagonal jitter, as GP and GMM codes do for matrices that
/// are positive semi-definite up to rounding: tries `A`, then `A + j I` with
/// `j = first_jitter * 10^t` for `t = 0..max_tries`. `scratch` (length `n * n`) keeps
/// a copy of `A` between tries. Returns the jitter that was added (zero if none).
pub fn cholesky_jitter<T: Scalar>(
    a: &mut [T],
    n: usize,
    first_jitter: T,
    max_tries: usize,
    scratch: &mut [T],
) -> Result<T> {
    scratch.copy_from_slice(a);
    if cholesky(a, n).is_ok() {
        return Ok(T::ZERO);
    }
    let ten = T::from_f64_lossy(10.0);
    let mut jitter = first_jitter;
    for _ in 0..max_tries {
        a.copy_from_slice(scratch);
        for i in 0..n {
            a[i * n + i] = a[i * n + i] + jitter;
        }
        if cholesky(a, n).is_ok() {
            return Ok(jitter);
        }
        jitter = jitter * ten;
    }
    Err(Error::Singular {
        what: "matrix in Cholesky factorization (even with jitter)",
        hint: CHOLESKY_HINT,
    })
}

/// Solves `L y = b` in place (forward substitution) for `nrhs` right-hand sides
/// stored as the columns of the row-major `n x nrhs` matrix `b`.
pub fn solve_lower<T: Scalar>(l: &[T], n: usize, b: &mut [T], nrhs: usize) {
    for i in 0..n {
        for c in 0..nrhs {
            let mut s = b[i * nrhs + c];
            for k in 0..i {
                s = s - l[i * n + k] * b[k * nrhs + c];
            }
            b[i * nrhs + c] = s / l[i * n + i];
        }
    }
}

/// Solves `L^T x = y` in place (back substitution), `b` as in [`solve_lower`].
pub fn solve_lower_transposed<T: Scalar>(l: &[T], n: usize, b: &mut [T], nrhs: usize) {
    for i in (0..n).rev() {
        for c in 0..nrhs {
            let mut s = b[i * nrhs + c];
            for k in i + 1..n {
                s = s - l[k * n + i] * b[k * nrhs + c];
            }
            b[i * nrhs + c] = s / l[i * n + i];
        }
    }
}

/// Solves `A X = B` given the Cholesky factor `L` of `A`; `b` (`n x nrhs`) becomes `X`.
pub fn cholesky_solve<T: Scalar>(l: &[T], n: usize, b: &mut [T], nrhs: usize) {
    solve_lower(l, n, b, nrhs);
    solve_lower_transposed(l, n, b, nrhs);
}

/// `log det A = 2 sum log L_ii` from the Cholesky factor of `A`.
pub fn cholesky_logdet<T: Scalar>(l: &[T], n: usize) -> T {
    let two = T::ONE + T::ONE;
    (0..n).map(|i| two * l[i * n + i].ln()).sum()
}

/// Solves the general square system `A X = B` by LU factorization with partial
/// pivoting. `a` (`n x n`) is overwritten by its factors, `b` (`n x nrhs`) by `X`.
/// Returns [`Error::Singular`] when a pivot is zero (to working precision).
pub fn solve<T: Scalar>(a: &mut [T], n: usize, b: &mut [T], nrhs: usize) -> Result<()> {
    debug_assert_eq!(a.len(), n * n);
    debug_assert_eq!(b.len(), n * nrhs);
    let scale = a.iter().fold(T::ZERO, |m, v| m.max(v.abs()));
    let tiny = scale * T::EPSILON * T::from_usize_lossy(n.max(1));
    for col in 0..n {
        // Partial pivoting: the largest remaining entry of the column.
        let mut p = col;
        for r in col + 1..n {
            if a[r * n + col].abs() > a[p * n + col].abs() {
                p = r;
            }
        }
        if a[p * n + col].abs() <= tiny || a[p * n + col].is_nan() {
            return Err(Error::Singular {
                what: "matrix in linear solve",
                hint: "the system has no unique solution: add a ridge (alpha) or remove collinear features",
            });
        }
        if p != col {
            for k in 0..n {
                a.swap(p * n + k, col * n + k);
            }
            for k in 0..nrhs {
                b.swap(p * nrhs + k, col * nrhs + k);
            }
        }
        let piv = a[col * n + col];
        for r in col + 1..n {
            let f = a[r * n + col] / piv;
            if f == T::ZERO {
                continue;
            }
            a[r * n + col] = f;
            for k in col + 1..n {
                a[r * n + k] = a[r * n + k] - f * a[col * n + k];
            }
            for k in 0..nrhs {
                b[r * nrhs + k] = b[r * nrhs + k] - f * b[col * nrhs + k];
            }
        }
    }
    for i in (0..n).rev() {
        for c in 0..nrhs {
            let mut s = b[i * nrhs + c];
            for k in i + 1..n {
                s = s - a[i * n + k] * b[k * nrhs + c];
            }
            b[i * nrhs + c] = s / a[i * n + i];
        }
    }
    Ok(())
}

/// Symmetric eigendecomposition `A = V diag(w) V^T` by the cyclic Jacobi method.
///
/// `a` (`n x n`, symmetric) is destroyed; `w` (length `n`) receives the eigenvalues in
/// descending order and `v` (`n x n`, row-major) the matching unit eigenvectors as its
/// *columns*. Each eigenvector's sign is fixed so its largest-magnitude entry is
/// positive, making the output deterministic.
pub fn sym_eig<T: Scalar>(a: &mut [T], n: usize, w: &mut [T], v: &mut [T]) {
    debug_assert_eq!(a.len(), n * n);
    for (i, x) in v.iter_mut().enumerate() {
        *x = if i / n.max(1) == i % n.max(1) {
            T::ONE
        } else {
            T::ZERO
        };
    }
    let norm2: T = a.iter().map(|x| *x * *x).sum();
    let tol = norm2 * T::EPSILON * T::EPSILON;
    for _sweep in 0..100 {
        let mut off = T::ZERO;
        for p in 0..n {
            for q in p + 1..n {
                off = off + a[p * n + q] * a[p * n + q];
            }
        }
        if off <= tol || off == T::ZERO {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == T::ZERO {
                    continue;
                }
                let app = a[p * n + p];
                let aqq = a[q * n + q];
                let theta = (aqq - app) / (apq + apq);
                // The smaller root of t^2 + 2 t theta - 1 = 0 keeps the rotation < 45
                // degrees, which is what makes Jacobi converge.
                let t = if theta.is_infinite() {
                    T::ZERO
                } else {
                    let r = (theta * theta + T::ONE).sqrt();
                    let t = T::ONE / (theta.abs() + r);
                    if theta < T::ZERO {
                        -t
                    } else {
                        t
                    }
                };
                let c = T::ONE / (t * t + T::ONE).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    for i in 0..n {
        w[i] = a[i * n + i];
    }
    sort_desc_with_columns(w, v, n, n);
    fix_column_signs(v, n, n);
}

/// Thin SVD `A = U diag(s) V^T` of the `m x n` matrix `a` by one-sided (Hestenes)
/// Jacobi: columns of `A` are rotated until mutually orthogonal.
///
/// `a` is overwritten by `U` (`m x n`, unit columns; a zero singular value leaves a zero
/// column), `s` (length `n`) receives the singular values in descending order and `v`
/// (`n x n`) the right singular vectors as columns. Signs follow [`sym_eig`]'s rule
/// applied to `V`.
pub fn svd<T: Scalar>(a: &mut [T], m: usize, n: usize, s: &mut [T], v: &mut [T]) {
    debug_assert_eq!(a.len(), m * n);
    for (i, x) in v.iter_mut().enumerate() {
        *x = if i / n.max(1) == i % n.max(1) {
            T::ONE
        } else {
            T::ZERO
        };
    }
    let eps = T::EPSILON;
    for _sweep in 0..100 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (mut alpha, mut beta, mut gamma) = (T::ZERO, T::ZERO, T::ZERO);
                for i in 0..m {
                    let x = a[i * n + p];
                    let y = a[i * n + q];
                    alpha = alpha + x * x;
                    beta = beta + y * y;
                    gamma = gamma + x * y;
                }
                if gamma == T::ZERO || gamma.abs() <= eps * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (gamma + gamma);
                let t = {
                    let t = T::ONE / (zeta.abs() + (T::ONE + zeta * zeta).sqrt());
                    if zeta < T::ZERO {
                        -t
                    } else {
                        t
                    }
                };
                let c = T::ONE / (T::ONE + t * t).sqrt();
                let sn = c * t;
                for i in 0..m {
                    let x = a[i * n + p];
                    let y = a[i * n + q];
                    a[i * n + p] = c * x - sn * y;
                    a[i * n + q] = sn * x + c * y;
                }
                for i in 0..n {
                    let x = v[i * n + p];
                    let y = v[i * n + q];
                    v[i * n + p] = c * x - sn * y;
                    v[i * n + q] = sn * x + c * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    for j in 0..n {
        let norm = (0..m)
            .map(|i| a[i * n + j] * a[i * n + j])
            .sum::<T>()
            .sqrt();
        s[j] = norm;
        if norm > T::ZERO {
            for i in 0..m {
                a[i * n + j] = a[i * n + j] / norm;
            }
        }
    }
    // Sort U's and V's columns together with s.
    for i in 0..n {
        let mut best = i;
        for j in i + 1..n {
            if s[j] > s[best] {
                best = j;
            }
        }
        if best != i {
            s.swap(i, best);
            swap_columns(a, m, n, i, best);
            swap_columns(v, n, n, i, best);
        }
    }
    for j in 0..n {
        let mut big = 0;
        for i in 0..n {
            if v[i * n + j].abs() > v[big * n + j].abs() {
                big = i;
            }
        }
        if v[big * n + j] < T::ZERO {
            for i in 0..n {
                v[i * n + j] = -v[i * n + j];
            }
            for i in 0..m {
                a[i * n + j] = -a[i * n + j];
            }
        }
    }
}

fn swap_columns<T: Scalar>(v: &mut [T], rows: usize, cols: usize, i: usize, j: usize) {
    for r in 0..rows {
        v.swap(r * cols + i, r * cols + j);
    }
}

/// Selection sort of `w` (descending), moving the columns of `v` (`rows x n`) along.
fn sort_desc_with_columns<T: Scalar>(w: &mut [T], v: &mut [T], rows: usize, n: usize) {
    for i in 0..n {
        let mut best = i;
        for j in i + 1..n {
            if w[j] > w[best] {
                best = j;
            }
        }
        if best != i {
            w.swap(i, best);
            swap_columns(v, rows, n, i, best);
        }
    }
}

/// Makes each column's largest-magnitude entry positive (a deterministic sign).
fn fix_column_signs<T: Scalar>(v: &mut [T], rows: usize, n: usize) {
    for j in 0..n {
        let mut big = 0;
        for i in 0..rows {
            if v[i * n + j].abs() > v[big * n + j].abs() {
                big = i;
            }
        }
        if v[big * n + j] < T::ZERO {
            for i in 0..rows {
                v[i * n + j] = -v[i * n + j];
            }
        }
    }
}

/// Column means of the `rows x cols` matrix `x` into `out` (length `cols`).
pub fn col_means<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) {
    out.iter_mut().for_each(|m| *m = T::ZERO);
    for r in x.chunks_exact(cols.max(1)).take(rows) {
        for (m, v) in out.iter_mut().zip(r) {
            *m = *m + *v;
        }
    }
    let inv = T::ONE / T::from_usize_lossy(rows.max(1));
    out.iter_mut().for_each(|m| *m = *m * inv);
}

/// Covariance `sum_i (x_i - mean)(x_i - mean)^T / (rows - ddof)` into `out`
/// (`cols x cols`), computed in two passes around the given `mean` for accuracy.
pub fn covariance<T: Scalar>(
    x: &[T],
    rows: usize,
    cols: usize,
    mean: &[T],
    ddof: usize,
    out: &mut [T],
) {
    out.iter_mut().for_each(|v| *v = T::ZERO);
    for r in x.chunks_exact(cols.max(1)).take(rows) {
        for i in 0..cols {
            let di = r[i] - mean[i];
            if di == T::ZERO {
                continue;
            }
            for j in 0..=i {
                out[i * cols + j] = out[i * cols + j] + di * (r[j] - mean[j]);
            }
        }
    }
    let denom = T::from_usize_lossy(rows.saturating_sub(ddof).max(1));
    for i in 0..cols {
        for j in 0..=i {
            let v = out[i * cols + j] / denom;
            out[i * cols + j] = v;
            out[j * cols + i] = v;
        }
    }
}

/// Dot product.
#[inline]
pub fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::ZERO, |s, (x, y)| s + *x * *y)
}

/// Plain `C = A B` for row-major `A` (`m x k`), `B` (`k x n`), `C` (`m x n`), in the
/// cache-friendly i-k-j order. Used for the small products of classic methods.
pub fn matmul<T: Scalar>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    c.iter_mut().for_each(|v| *v = T::ZERO);
    for i in 0..m {
        let ci = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let aip = a[i * k + p];
            if aip == T::ZERO {
                continue;
            }
            for (cv, bv) in ci.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cv = *cv + aip * *bv;
            }
        }
    }
}

/// Numerically stable `log(sum(exp(v)))`.
pub fn logsumexp<T: Scalar>(v: &[T]) -> T {
    let m = v.iter().fold(T::neg_infinity(), |m, x| m.max(*x));
    if m == T::neg_infinity() {
        return m;
    }
    m + v.iter().map(|x| (*x - m).exp()).sum::<T>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn cholesky_of_known_matrix() {
        // A = L L^T with L = [[2,0,0],[6,1,0],[-8,5,3]] (the classic textbook example).
        let mut a = [4.0f64, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        cholesky(&mut a, 3).unwrap();
        let l = [2.0, 0.0, 0.0, 6.0, 1.0, 0.0, -8.0, 5.0, 3.0];
        for (x, y) in a.iter().zip(l) {
            assert!(close(*x, y, 1e-12), "{a:?}");
        }
        // log det A = 2 (ln 2 + ln 1 + ln 3) = ln 36
        assert!(close(cholesky_logdet(&a, 3), 36f64.ln(), 1e-12));
        // Solve A x = b for b = A [1, 2, 3]^T = [-20, -43, 192].
        let mut b = [-20.0, -43.0, 192.0];
        cholesky_solve(&a, 3, &mut b, 1);
        for (x, y) in b.iter().zip([1.0, 2.0, 3.0]) {
            assert!(close(*x, y, 1e-10), "{b:?}");
        }
    }

    #[test]
    fn cholesky_rejects_indefinite_and_jitter_rescues_semidefinite() {
        let mut a = [1.0f64, 2.0, 2.0, 1.0]; // eigenvalues 3, -1
        assert!(matches!(cholesky(&mut a, 2), Err(Error::Singular { .. })));
        // Rank-1 PSD matrix [[1,1],[1,1]]: fails plain, succeeds with jitter 1e-10.
        let mut b = [1.0f64, 1.0, 1.0, 1.0];
        let mut scratch = [0.0; 4];
        let j = cholesky_jitter(&mut b, 2, 1e-10, 5, &mut scratch).unwrap();
        assert!((1e-10..=1e-6).contains(&j), "jitter {j}");
        // L L^T reproduces A + jI.
        let r11 = b[2] * b[2] + b[3] * b[3];
        assert!(close(r11, 1.0 + j, 1e-9));
    }

    #[test]
    fn lu_solve_with_pivoting() {
        // The first pivot is zero: needs a row swap.
        let mut a = [0.0f64, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0];
        // x = [1, -1, 2]: b = A x
        let mut b = [-2.0 + 2.0, 1.0 - 1.0 + 2.0, 2.0 - 1.0 + 6.0];
        solve(&mut a, 3, &mut b, 1).unwrap();
        for (x, y) in b.iter().zip([1.0, -1.0, 2.0]) {
            assert!(close(*x, y, 1e-12), "{b:?}");
        }
        let mut s = [1.0f64, 2.0, 2.0, 4.0];
        let mut rhs = [1.0, 2.0];
        assert!(matches!(
            solve(&mut s, 2, &mut rhs, 1),
            Err(Error::Singular { .. })
        ));
    }

    #[test]
    fn eigen_of_known_matrices() {
        // [[2,1],[1,2]]: eigenvalues 3 and 1, vectors (1,1)/sqrt2 and (1,-1)/sqrt2.
        let mut a = [2.0f64, 1.0, 1.0, 2.0];
        let mut w = [0.0; 2];
        let mut v = [0.0; 4];
        sym_eig(&mut a, 2, &mut w, &mut v);
        assert!(close(w[0], 3.0, 1e-14) && close(w[1], 1.0, 1e-14), "{w:?}");
        let h = core::f64::consts::FRAC_1_SQRT_2;
        assert!(close(v[0].abs(), h, 1e-12) && close(v[2].abs(), h, 1e-12));
        assert!(close(v[0] * v[1] + v[2] * v[3], 0.0, 1e-12));
        // The 3x3 matrix [[2,-1,0],[-1,2,-1],[0,-1,2]] has eigenvalues 2 + sqrt2, 2,
        // 2 - sqrt2 (the 1-D Laplacian: 2 - 2 cos(k pi / 4)).
        let mut b = [2.0f64, -1.0, 0.0, -1.0, 2.0, -1.0, 0.0, -1.0, 2.0];
        let orig = b;
        let mut w3 = [0.0; 3];
        let mut v3 = [0.0; 9];
        sym_eig(&mut b, 3, &mut w3, &mut v3);
        let r2 = 2f64.sqrt();
        for (x, y) in w3.iter().zip([2.0 + r2, 2.0, 2.0 - r2]) {
            assert!(close(*x, y, 1e-13), "{w3:?}");
        }
        // A v = w v for each column.
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| orig[i * 3 + k] * v3[k * 3 + j]).sum();
                assert!(close(av, w3[j] * v3[i * 3 + j], 1e-12));
            }
        }
    }

    #[test]
    fn svd_of_known_matrix() {
        // A = [[3, 2, 2], [2, 3, -2]] has singular values 5 and 3 (and 0 for n = 3).
        let orig = [3.0f64, 2.0, 2.0, 2.0, 3.0, -2.0];
        // SVD of A^T (3 x 2) gives the two nonzero values.
        let mut at = [3.0f64, 2.0, 2.0, 3.0, 2.0, -2.0];
        let mut s = [0.0; 2];
        let mut v = [0.0; 4];
        svd(&mut at, 3, 2, &mut s, &mut v);
        assert!(close(s[0], 5.0, 1e-13) && close(s[1], 3.0, 1e-13), "{s:?}");
        // Reconstruct A^T = U S V^T.
        for i in 0..3 {
            for j in 0..2 {
                let r: f64 = (0..2).map(|k| at[i * 2 + k] * s[k] * v[j * 2 + k]).sum();
                assert!(close(r, orig[j * 3 + i], 1e-12));
            }
        }
        let mut a = orig;
        let mut s3 = [0.0; 3];
        let mut v3 = [0.0; 9];
        svd(&mut a, 2, 3, &mut s3, &mut v3);
        assert!(close(s3[0], 5.0, 1e-13) && close(s3[1], 3.0, 1e-13) && s3[2].abs() < 1e-12);
    }

    #[test]
    fn covariance_matches_hand_computation() {
        // x = [[1,2],[3,6],[5,7]]: means (3, 5); cov (ddof 1) = [[4, 5], [5, 7]].
        let x = [1.0f64, 2.0, 3.0, 6.0, 5.0, 7.0];
        let mut m = [0.0; 2];
        col_means(&x, 3, 2, &mut m);
        assert_eq!(m, [3.0, 5.0]);
        let mut c = [0.0; 4];
        covariance(&x, 3, 2, &m, 1, &mut c);
        assert_eq!(c, [4.0, 5.0, 5.0, 7.0]);
        assert!(close(logsumexp(&[0.0f64, 0.0]), 2f64.ln(), 1e-15));
    }
}
