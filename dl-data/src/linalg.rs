//! The little dense linear algebra the Gaussian process needs: Cholesky
//! factorization and triangular solves on row-major `n x n` slices, in place,
//! allocation-free.

use crate::error::{Error, Result};

/// Factors the symmetric positive-definite `a` (row-major `n x n`) as `L L^T`,
/// writing `L` into the lower triangle of `a` and zeroing the upper one.
///
/// Fails with [`Error::InvalidParameter`] naming the pivot if `a` is not positive
/// definite (a GP adds jitter to its diagonal and retries).
///
/// ```
/// use dl_data::linalg::cholesky_in_place;
/// let mut a = [4.0, 2.0, 2.0, 3.0];
/// cholesky_in_place(&mut a, 2).unwrap();
/// assert_eq!(a, [2.0, 0.0, 1.0, 2f64.sqrt()]);
/// ```
pub fn cholesky_in_place(a: &mut [f64], n: usize) -> Result<()> {
    if a.len() != n * n {
        return Err(Error::LengthMismatch {
            op: "cholesky",
            what: "matrix",
            expected: n * n,
            actual: a.len(),
        });
    }
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        // NaN fails `d > 0.0`, so it is rejected too.
        if d.is_nan() || d <= 0.0 || !d.is_finite() {
            return Err(Error::InvalidParameter {
                op: "cholesky",
                name: "pivot",
                value: d,
                valid: "> 0 (matrix must be positive definite)",
            });
        }
        let ljj = libm::sqrt(d);
        a[j * n + j] = ljj;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / ljj;
        }
        for k in j + 1..n {
            a[j * n + k] = 0.0;
        }
    }
    Ok(())
}

/// Solves `L x = b` in place (`b` becomes `x`), `L` lower triangular row-major.
pub fn solve_lower_in_place(l: &[f64], n: usize, b: &mut [f64]) {
    debug_assert_eq!(l.len(), n * n);
    debug_assert_eq!(b.len(), n);
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves `L^T x = b` in place, `L` lower triangular row-major.
pub fn solve_upper_t_in_place(l: &[f64], n: usize, b: &mut [f64]) {
    debug_assert_eq!(l.len(), n * n);
    debug_assert_eq!(b.len(), n);
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves `(L L^T) x = b` in place given the Cholesky factor `L`.
pub fn cholesky_solve_in_place(l: &[f64], n: usize, b: &mut [f64]) {
    solve_lower_in_place(l, n, b);
    solve_upper_t_in_place(l, n, b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_3x3_system() {
        // A = [[4,12,-16],[12,37,-43],[-16,-43,98]] has L = [[2,0,0],[6,1,0],[-8,5,3]].
        let mut a = [4.0, 12.0, -16.0, 12.0, 37.0, -43.0, -16.0, -43.0, 98.0];
        cholesky_in_place(&mut a, 3).unwrap();
        assert_eq!(a, [2.0, 0.0, 0.0, 6.0, 1.0, 0.0, -8.0, 5.0, 3.0]);
        // A x = b with x = [1, 2, 3]: b = [4+24-48, 12+74-129, -16-86+294].
        let mut b = [-20.0, -43.0, 192.0];
        cholesky_solve_in_place(&a, 3, &mut b);
        for (x, e) in b.iter().zip([1.0, 2.0, 3.0]) {
            assert!((x - e).abs() < 1e-12, "{b:?}");
        }
        let mut not_pd = [1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_in_place(&mut not_pd, 2).is_err());
    }
}
