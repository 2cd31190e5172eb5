//! Softmax, log-softmax and fused softmax cross-entropy over the last axis of a
//! `[rows, cols]` buffer, with their backward passes.
//!
//! All are numerically stable: each row's maximum is subtracted before `exp`, so
//! logits of +-1000 give no overflow, NaN or infinity.
//!
//! ```
//! use dl_core::softmax::{softmax, softmax_cross_entropy};
//! let logits = [1000.0f32, 1000.0, -1000.0];
//! let mut p = [0.0f32; 3];
//! softmax(&logits, 1, 3, &mut p).unwrap();
//! assert_eq!(p, [0.5, 0.5, 0.0]);
//! // Cross-entropy of [0, ln 3] for target 1: -ln(3/4) = 0.2877
//! let loss = softmax_cross_entropy(&[0.0f64, 3f64.ln()], 1, 2, &[1], None).unwrap();
//! assert!((loss - (4.0f64 / 3.0).ln()).abs() < 1e-15);
//! ```

use crate::elementwise::{check_len, dot_kernel, LANES};
use crate::error::{Error, Result};
use crate::par;
use crate::reduce::sum_slice;
use crate::scalar::Scalar;

/// Checks that `len` elements form a `rows x cols` matrix (overflow included).
fn check_matrix(
    op: &'static str,
    what: &'static str,
    rows: usize,
    cols: usize,
    len: usize,
) -> Result<usize> {
    let n = rows.checked_mul(cols).ok_or(Error::Overflow { op })?;
    check_len(op, what, n, len)?;
    Ok(n)
}

/// Largest element of a non-empty row (NaN is ignored here; it still propagates
/// through `exp(x - max)`).
/// Keeps [`LANES`] running maxima (a max is exact in any order, and one chain per
/// lane vectorizes where a single running maximum waits on each comparison).
#[inline]
fn row_max<T: Scalar>(row: &[T]) -> T {
    let mut acc = [T::neg_infinity(); LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            if c[l] > acc[l] {
                acc[l] = c[l];
            }
        }
    }
    acc.iter()
        .chain(rest)
        .fold(T::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// `(m, log(sum(exp(row - m))))` with `m` the row's maximum, so that
/// `log softmax(row)_i = (row_i - m) - log_sum` is exact for the largest entries
/// (adding `m` back first would round away `log_sum` when `|m|` is large).
/// A row that is all `-inf` or has a `+inf` gives NaN, as in PyTorch.
#[inline]
fn shifted_log_sum_exp<T: Scalar>(row: &[T]) -> (T, T) {
    let m = row_max(row);
    let mut s = T::ZERO;
    for &v in row {
        s = s + (v - m).exp();
    }
    (m, s.ln())
}

/// `out[r, :] = exp(x[r, :]) / sum(exp(x[r, :]))` for every row of a `rows x cols`
/// buffer. Errors if a buffer's length is not `rows * cols`.
pub fn softmax<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    const OP: &str = "softmax";
    check_matrix(OP, "input", rows, cols, x.len())?;
    check_matrix(OP, "output", rows, cols, out.len())?;
    if cols == 0 {
        return Ok(());
    }
    par::for_each_block(out, cols, &|first, ob| {
        let xb = &x[first * cols..first * cols + ob.len()];
        for (xr, or) in xb.chunks_exact(cols).zip(ob.chunks_exact_mut(cols)) {
            let m = row_max(xr);
            for (o, &v) in or.iter_mut().zip(xr) {
                *o = v - m;
            }
            // Arguments are <= 0 (or NaN, which stays NaN), where the vectorized exp
            // is within 2e-7 relative for f32 and exact for f64.
            crate::vmath::exp_inplace(or);
            let inv = T::ONE / sum_slice(or);
            for o in or.iter_mut() {
                *o = *o * inv;
            }
        }
    });
    Ok(())
}

/// `out[r, :] = x[r, :] - log(sum(exp(x[r, :])))` for every row (the log of
/// [`softmax`], without its underflow to `log 0`).
pub fn log_softmax<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    const OP: &str = "log_softmax";
    check_matrix(OP, "input", rows, cols, x.len())?;
    check_matrix(OP, "output", rows, cols, out.len())?;
    if cols == 0 {
        return Ok(());
    }
    for (xr, or) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let (m, log_sum) = shifted_log_sum_exp(xr);
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = (v - m) - log_sum;
        }
    }
    Ok(())
}

/// Backward of [`softmax`] given its output `y`: per row
/// `dx += y * (dy - sum(dy * y))` (accumulates).
pub fn softmax_backward<T: Scalar>(
    y: &[T],
    dy: &[T],
    rows: usize,
    cols: usize,
    dx: &mut [T],
) -> Result<()> {
    const OP: &str = "softmax_backward";
    check_matrix(OP, "y", rows, cols, y.len())?;
    check_matrix(OP, "dy", rows, cols, dy.len())?;
    check_matrix(OP, "dx", rows, cols, dx.len())?;
    if cols == 0 {
        return Ok(());
    }
    for ((yr, gr), dr) in y
        .chunks_exact(cols)
        .zip(dy.chunks_exact(cols))
        .zip(dx.chunks_exact_mut(cols))
    {
        let s = dot_kernel(yr, gr);
        for ((d, &yv), &g) in dr.iter_mut().zip(yr).zip(gr) {
            *d = *d + yv * (g - s);
        }
    }
    Ok(())
}

/// Backward of [`log_softmax`] given its output `y_log`: per row
/// `dx += dy - softmax * sum(dy)`, with `softmax = exp(y_log)` (accumulates).
pub fn log_softmax_backward<T: Scalar>(
    y_log: &[T],
    dy: &[T],
    rows: usize,
    cols: usize,
    dx: &mut [T],
) -> Result<()> {
    const OP: &str = "log_softmax_backward";
    check_matrix(OP, "y", rows, cols, y_log.len())?;
    check_matrix(OP, "dy", rows, cols, dy.len())?;
    check_matrix(OP, "dx", rows, cols, dx.len())?;
    if cols == 0 {
        return Ok(());
    }
    for ((yr, gr), dr) in y_log
        .chunks_exact(cols)
        .zip(dy.chunks_exact(cols))
        .zip(dx.chunks_exact_mut(cols))
    {
        let s = sum_slice(gr);
        for ((d, &yl), &g) in dr.iter_mut().zip(yr).zip(gr) {
            *d = *d + g - yl.exp() * s;
        }
    }
    Ok(())
}

/// Fused softmax + negative log-likelihood: the mean over rows of
/// `-log softmax(logits[r, :])[targets[r]]`, computed as `logsumexp - logit[target]`
/// (stable for any logits).
///
/// If `grad` is given it is OVERWRITTEN with `d(mean loss)/d logits =
/// (softmax - onehot(target)) / rows`. Errors if a length disagrees, `rows == 0`
/// (the mean is undefined) or a target is `>= cols`.
pub fn softmax_cross_entropy<T: Scalar>(
    logits: &[T],
    rows: usize,
    cols: usize,
    targets: &[usize],
    grad: Option<&mut [T]>,
) -> Result<T> {
    const OP: &str = "softmax_cross_entropy";
    check_matrix(OP, "logits", rows, cols, logits.len())?;
    check_len(OP, "targets", rows, targets.len())?;
    if let Some(g) = &grad {
        check_matrix(OP, "gradient", rows, cols, g.len())?;
    }
    if rows == 0 {
        return Err(Error::InvalidParameter {
            op: OP,
            name: "rows",
            value: 0.0,
            valid: ">= 1",
        });
    }
    if let Some(&bad) = targets.iter().find(|&&t| t >= cols) {
        return Err(Error::IndexOutOfRange {
            op: OP,
            index: bad,
            bound: cols,
        });
    }
    // The loss is accumulated in f64 so a large batch in f32 does not lose digits,
    // per block of rows (blocks fixed by the size, so any thread count gives the same
    // sum) and then over blocks in order.
    let inv_rows = T::ONE / T::from_usize_lossy(rows);
    let blocks = par::blocks_by_size(rows, cols);
    let total = match grad {
        None => par::for_ranges(rows, blocks, &|range| {
            let mut total = 0.0f64;
            for r in range {
                let xr = &logits[r * cols..(r + 1) * cols];
                let (m, log_sum) = shifted_log_sum_exp(xr);
                total += (log_sum - (xr[targets[r]] - m)).to_f64_lossless();
            }
            total
        }),
        Some(g) => par::for_blocks(g, cols, blocks, &|first, gb| {
            let mut total = 0.0f64;
            for (i, gr) in gb.chunks_exact_mut(cols).enumerate() {
                let (xr, t) = (&logits[(first + i) * cols..][..cols], targets[first + i]);
                // exp(x - m) once, vectorized (see `softmax`), gives both the sum
                // and the probabilities.
                let m = row_max(xr);
                for (gv, &v) in gr.iter_mut().zip(xr) {
                    *gv = v - m;
                }
                crate::vmath::exp_inplace(gr);
                let sum = sum_slice(gr);
                total += (sum.ln() - (xr[t] - m)).to_f64_lossless();
                let scale = inv_rows / sum;
                for gv in gr.iter_mut() {
                    *gv = *gv * scale;
                }
                gr[t] = gr[t] - inv_rows;
            }
            total
        }),
    };
    Ok(T::from_f64_lossy(total / rows as f64))
}

/// `(rows, cols)` of a tensor seen as a stack of rows along its last axis (a rank-0
/// tensor is one row of one).
#[cfg(feature = "alloc")]
fn rows_cols(shape: &crate::shape::Shape) -> (usize, usize) {
    let cols = shape.dims().last().copied().unwrap_or(1);
    let rows = shape.numel().checked_div(cols).unwrap_or(0);
    (rows, cols)
}

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;

    impl<T: Scalar> Tensor<T> {
        /// Softmax over the last axis.
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let p = Tensor::from_rows([[0.0f64, 0.0], [0.0, 2f64.ln()]]).softmax();
        /// assert_eq!(p.data()[0], 0.5);
        /// assert!((p.data()[3] - 2.0 / 3.0).abs() < 1e-15);
        /// ```
        pub fn softmax(&self) -> Tensor<T> {
            let (rows, cols) = rows_cols(self.shape());
            let mut out = self.clone();
            // Lengths agree by construction, so this cannot fail.
            let _ = softmax(self.data(), rows, cols, out.data_mut());
            out
        }

        /// Log-softmax over the last axis.
        pub fn log_softmax(&self) -> Tensor<T> {
            let (rows, cols) = rows_cols(self.shape());
            let mut out = self.clone();
            // Lengths agree by construction, so this cannot fail.
            let _ = log_softmax(self.data(), rows, cols, out.data_mut());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large inputs are split over threads by blocks of rows: each row comes out as
    /// it does alone, and the loss as the row-by-row sum (to f64 rounding).
    #[cfg(feature = "alloc")]
    #[test]
    fn split_rows_match_rows_done_one_at_a_time() {
        use alloc::vec::Vec;
        let (rows, cols) = (70, 1000);
        let mut rng = crate::rng::Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..rows * cols)
            .map(|_| rng.uniform(-8.0f32, 8.0))
            .collect();
        let t: Vec<usize> = (0..rows).map(|r| (r * 37) % cols).collect();
        assert!(par::blocks_by_size(rows, cols) > 1);
        let mut all = alloc::vec![0.0f32; rows * cols];
        softmax(&x, rows, cols, &mut all).unwrap();
        let mut grad = alloc::vec![0.0f32; rows * cols];
        let loss = softmax_cross_entropy(&x, rows, cols, &t, Some(&mut grad)).unwrap();
        let loss_only = softmax_cross_entropy(&x, rows, cols, &t, None).unwrap();
        let mut sum = 0.0f64;
        for r in 0..rows {
            let xr = &x[r * cols..(r + 1) * cols];
            let mut one = alloc::vec![0.0f32; cols];
            softmax(xr, 1, cols, &mut one).unwrap();
            assert_eq!(&all[r * cols..(r + 1) * cols], &one[..], "row {r}");
            let mut g = alloc::vec![0.0f32; cols];
            sum += softmax_cross_entropy(xr, 1, cols, &t[r..r + 1], Some(&mut g)).unwrap() as f64;
            for (a, b) in grad[r * cols..(r + 1) * cols].iter().zip(&g) {
                // The single row's gradient is divided by 1 instead of `rows`.
                let want = *b / rows as f32;
                assert!((*a - want).abs() <= 1e-6 * want.abs() + 1e-12, "row {r}");
            }
        }
        let mean = sum / rows as f64;
        assert!((loss as f64 - mean).abs() < 1e-5 * mean, "{loss} vs {mean}");
        assert!(
            (loss_only - loss).abs() <= 1e-6 * loss,
            "{loss_only} vs {loss}"
        );
    }

    #[test]
    fn cross_entropy_and_gradient_fixture() {
        // Two rows: logits [0, 0] (loss ln 2) and [ln 3, 0] with target 0
        // (softmax [3/4, 1/4], loss -ln(3/4)). Mean = (ln 2 + ln 4/3) / 2.
        let l3 = 3f64.ln();
        let logits = [0.0, 0.0, l3, 0.0];
        let mut g = [9.0; 4];
        let loss = softmax_cross_entropy(&logits, 2, 2, &[1, 0], Some(&mut g)).unwrap();
        let want = (2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0;
        assert!((loss - want).abs() < 1e-15);
        // (softmax - onehot) / 2
        let want_g = [0.25, -0.25, -0.125, 0.125];
        for (a, b) in g.iter().zip(want_g) {
            assert!((a - b).abs() < 1e-15, "{g:?}");
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let x = [1000.0f32, -1000.0, 0.0, -1000.0, -1000.0, -1000.0];
        let mut y = [0.0f32; 6];
        log_softmax(&x, 2, 3, &mut y).unwrap();
        assert_eq!(y[0], 0.0);
        assert_eq!(y[1], -2000.0);
        assert!((y[3] + 3f32.ln()).abs() < 1e-6);
        let loss = softmax_cross_entropy(&x, 2, 3, &[1, 0], None).unwrap();
        // (2000 + ln 3) / 2
        assert!((loss - (2000.0 + 3f32.ln()) / 2.0).abs() < 1e-3);
    }

    #[test]
    fn backward_fixtures() {
        // y = [1/4, 3/4], dy = [1, 0]: sum(dy y) = 1/4, dx = y (dy - 1/4)
        //   = [1/4 * 3/4, 3/4 * -1/4] = [3/16, -3/16].
        let y = [0.25f64, 0.75];
        let mut dx = [1.0, 1.0];
        softmax_backward(&y, &[1.0, 0.0], 1, 2, &mut dx).unwrap();
        assert_eq!(dx, [1.0 + 3.0 / 16.0, 1.0 - 3.0 / 16.0]);
        // log-softmax: dx = dy - softmax * sum(dy) = [1, 0] - [1/4, 3/4]
        let yl = [0.25f64.ln(), 0.75f64.ln()];
        let mut dx = [0.0, 0.0];
        log_softmax_backward(&yl, &[1.0, 0.0], 1, 2, &mut dx).unwrap();
        assert!((dx[0] - 0.75).abs() < 1e-15 && (dx[1] + 0.75).abs() < 1e-15);
    }

    #[test]
    fn errors_name_the_op() {
        let mut out = [0.0f32; 6];
        assert_eq!(
            softmax(&[0.0f32; 5], 2, 3, &mut out)
                .unwrap_err()
                .to_string(),
            "softmax: input has 5 elements, expected 6"
        );
        assert_eq!(
            log_softmax(&[0.0f32; 6], 2, 3, &mut out[..4])
                .unwrap_err()
                .to_string(),
            "log_softmax: output has 4 elements, expected 6"
        );
        assert_eq!(
            softmax_backward(&[0.0f32; 6], &[0.0; 3], 2, 3, &mut out)
                .unwrap_err()
                .to_string(),
            "softmax_backward: dy has 3 elements, expected 6"
        );
        assert_eq!(
            log_softmax_backward(&[0.0f32; 6], &[0.0; 6], 3, 3, &mut out)
                .unwrap_err()
                .to_string(),
            "log_softmax_backward: y has 6 elements, expected 9"
        );
        assert_eq!(
            softmax_cross_entropy(&[0.0f32; 6], 2, 3, &[0, 3], None)
                .unwrap_err()
                .to_string(),
            "softmax_cross_entropy: index 3 is out of range (must be < 3)"
        );
        assert_eq!(
            softmax_cross_entropy(&[0.0f32; 6], 2, 3, &[0], None)
                .unwrap_err()
                .to_string(),
            "softmax_cross_entropy: targets has 1 elements, expected 2"
        );
        assert_eq!(
            softmax_cross_entropy(&[0.0f32; 6], 2, 3, &[0, 1], Some(&mut out[..5]))
                .unwrap_err()
                .to_string(),
            "softmax_cross_entropy: gradient has 5 elements, expected 6"
        );
        assert_eq!(
            softmax_cross_entropy::<f32>(&[], 0, 3, &[], None)
                .unwrap_err()
                .to_string(),
            "softmax_cross_entropy: invalid rows = 0, valid range: >= 1"
        );
        assert!(matches!(
            softmax(&[0.0f32; 0], usize::MAX, 2, &mut []),
            Err(Error::Overflow { op: "softmax" })
        ));
    }
}
