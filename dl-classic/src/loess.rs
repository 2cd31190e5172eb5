//! LOESS (Cleveland 1979): at each query, a weighted least-squares line (or
//! constant) through the `k = floor(frac n)` nearest training points (as statsmodels'
//! `lowess` and R count them), weighted by the
//! tricube `w = (1 - (dist / h)^3)^3` with `h` the distance to the `k`-th nearest
//! point (widened by a hair so it keeps a sliver of weight).
//!
//! Optional robustness iterations (Cleveland 1979, section 2): after a fit, each
//! training point gets the weight `B(r_i / (6 s))`, with `r_i` its residual, `s`
//! the median of `|r|` and the bisquare `B(u) = (1 - u^2)^2` for `|u| < 1`, else 0;
//! the next fit multiplies its tricube weights by these. This is what
//! statsmodels' `lowess(it=...)` and R's `lowess(iter=...)` do.

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::linalg;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// LOESS hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loess {
    /// Fraction of the data in each local fit, in `(0, 1]`.
    pub frac: f64,
    /// Local polynomial degree: 0 (constant) or 1 (linear).
    pub degree: usize,
    /// Robustness iterations after the first fit (0: plain least squares; 3 is the
    /// usual choice against outliers).
    pub robust_iters: usize,
}

impl Default for Loess {
    fn default() -> Self {
        Loess {
            frac: 2.0 / 3.0,
            degree: 1,
            robust_iters: 0,
        }
    }
}

impl Loess {
    /// With span `frac`.
    pub fn new(frac: f64) -> Self {
        Loess {
            frac,
            ..Default::default()
        }
    }
    /// Sets the local degree.
    pub fn degree(mut self, d: usize) -> Self {
        self.degree = d;
        self
    }
    /// Sets the number of robustness iterations.
    pub fn robust_iters(mut self, n: usize) -> Self {
        self.robust_iters = n;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.frac > 0.0 && self.frac <= 1.0,
            "frac",
            self.frac,
            "(0, 1]",
        )?;
        param(self.degree <= 1, "degree", self.degree as f64, "0 or 1")
    }
}

/// The training set (LOESS fits locally at prediction time).
#[derive(Clone, Debug)]
pub struct FittedLoess<T> {
    x: Vec<f64>,
    y: Vec<f64>,
    d: usize,
    k: usize,
    degree: usize,
    /// Robustness weight of each training point (all 1 without robustness iterations).
    robust: Vec<f64>,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, T> for Loess {
    type Fitted = FittedLoess<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "Loess::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        let n = x.rows();
        // statsmodels takes `int(frac * n + 1e-10)`: the nudge keeps a span such as
        // 0.3 * 10, which rounds to 2.999..., at 3 points.
        let k = libm::floor(self.frac * n as f64 + 1e-10) as usize;
        let need = if self.degree == 1 { x.cols() + 1 } else { 1 };
        if k < need {
            return Err(Error::TooFewSamples { k: need, n: k });
        }
        let mut fitted = FittedLoess {
            x: x.data().iter().map(|v| v.to_f64_lossless()).collect(),
            y: y.iter().map(|v| v.to_f64_lossless()).collect(),
            d: x.cols(),
            k: k.min(n),
            degree: self.degree,
            robust: vec![1.0; n],
            _t: core::marker::PhantomData,
        };
        let mut dist = vec![(0.0, 0); n];
        let mut resid = vec![0.0; n];
        for _ in 0..self.robust_iters {
            for (i, r) in resid.iter_mut().enumerate() {
                let q = fitted.x[i * fitted.d..(i + 1) * fitted.d].to_vec();
                *r = libm::fabs(fitted.y[i] - fitted.local_fit(&q, &mut dist));
            }
            let s = median(&resid);
            for (w, r) in fitted.robust.iter_mut().zip(&resid) {
                // A zero median (more than half the points fitted exactly) leaves
                // weight only on the exact fits, as statsmodels does.
                let u = if s > 0.0 {
                    r / (6.0 * s)
                } else if *r > 0.0 {
                    1.0
                } else {
                    0.0
                };
                *w = if u < 1.0 {
                    (1.0 - u * u) * (1.0 - u * u)
                } else {
                    0.0
                };
            }
        }
        Ok(fitted)
    }
}

/// The median (mean of the two middle values for an even count), as numpy's.
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

impl<T: Scalar> FittedLoess<T> {
    fn local_fit(&self, q: &[f64], dist: &mut [(f64, usize)]) -> f64 {
        let v = self.weighted_fit(q, dist, true);
        // Robustness can zero every neighbour's weight (all of them outliers);
        // the plain tricube fit is then the only estimate left.
        if v.is_finite() {
            v
        } else {
            self.weighted_fit(q, dist, false)
        }
    }

    fn weighted_fit(&self, q: &[f64], dist: &mut [(f64, usize)], robust: bool) -> f64 {
        let d = self.d;
        for (i, r) in self.x.chunks_exact(d).enumerate() {
            let s: f64 = r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
            dist[i] = (libm::sqrt(s), i);
        }
        dist.select_nth_unstable_by(self.k - 1, |a, b| a.0.total_cmp(&b.0));
        let h = dist[self.k - 1].0 * (1.0 + 1e-10) + f64::MIN_POSITIVE;
        let p = if self.degree == 1 { d + 1 } else { 1 };
        // Weighted normal equations in coordinates centred at the query.
        let mut a = vec![0.0; p * p];
        let mut b = vec![0.0; p];
        let mut z = vec![0.0; p];
        let (mut sw, mut swy) = (0.0, 0.0);
        for &(dist_i, i) in &dist[..self.k] {
            let u = dist_i / h;
            let w = if u < 1.0 {
                let t = 1.0 - u * u * u;
                t * t * t
            } else {
                0.0
            } * if robust { self.robust[i] } else { 1.0 };
            z[0] = 1.0;
            if p > 1 {
                for j in 0..d {
                    z[j + 1] = self.x[i * d + j] - q[j];
                }
            }
            for r in 0..p {
                for c in 0..p {
                    a[r * p + c] += w * z[r] * z[c];
                }
                b[r] += w * z[r] * self.y[i];
            }
            sw += w;
            swy += w * self.y[i];
        }
        // At the query the local line's value is its intercept; if the neighbours
        // are degenerate (e.g. all on a line in 2-D) fall back to the weighted mean.
        match linalg::solve(&mut a, p, &mut b, 1) {
            Ok(()) => b[0],
            Err(_) => swy / sw,
        }
    }
}

impl<T: Scalar> Predict<T, T> for FittedLoess<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(x, self.d, out.len(), "Loess::predict")?;
        let mut dist = vec![(0.0, 0); self.y.len()];
        let mut q = vec![0.0; self.d];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            for (a, b) in q.iter_mut().zip(r) {
                *a = b.to_f64_lossless();
            }
            *o = T::from_f64_lossy(self.local_fit(&q, &mut dist));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_linear_reproduces_lines_and_smooths_a_step() {
        let x: Vec<f64> = (0..20).map(|v| v as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v - 2.0).collect();
        let m = Loess::new(0.3)
            .fit(MatRef::new(&x, 20, 1).unwrap(), &y)
            .unwrap();
        let p = m
            .predict(MatRef::new(&[0.0, 7.5, 19.0], 3, 1).unwrap())
            .unwrap();
        for (a, b) in p.iter().zip([-2.0, 20.5, 55.0]) {
            assert!((a - b).abs() < 1e-9, "{p:?}");
        }
        // Degree 0 at the centre of 5 symmetric points {-2..2} with y = x^2, frac 1:
        // h = 2 (widened), weights (1 - (|x|/2)^3)^3 -> symmetric, the mean is
        // (2 w1 * 1 + 2 w2 * 4) / (w0 + 2 w1 + 2 w2).
        let xs = [-2.0f64, -1.0, 0.0, 1.0, 2.0];
        let ys: Vec<f64> = xs.iter().map(|v| v * v).collect();
        let c = Loess::new(1.0)
            .degree(0)
            .fit(MatRef::new(&xs, 5, 1).unwrap(), &ys)
            .unwrap();
        let v = c.predict(MatRef::new(&[0.0], 1, 1).unwrap()).unwrap()[0];
        let h = 2.0 * (1.0 + 1e-10);
        let w = |u: f64| (1.0 - (u / h).powi(3)).powi(3);
        let want =
            (2.0 * w(1.0) * 1.0 + 2.0 * w(2.0) * 4.0) / (w(0.0) + 2.0 * w(1.0) + 2.0 * w(2.0));
        assert!((v - want).abs() < 1e-12, "{v} {want}");
    }

    #[test]
    fn robustness_iteration_drops_a_gross_outlier() {
        // A line with one point lifted by 30. The plain fit bends towards it; its
        // residual then exceeds 6 times the median residual, so its bisquare weight
        // is exactly 0 and the refit sees only points on the line: exact again.
        let x: Vec<f64> = (0..20).map(|v| v as f64).collect();
        let mut y: Vec<f64> = x.iter().map(|v| 2.0 * v + 1.0).collect();
        y[9] += 30.0;
        let xm = MatRef::new(&x, 20, 1).unwrap();
        let plain = Loess::new(1.0).fit(xm, &y).unwrap().predict(xm).unwrap();
        assert!((plain[9] - 19.0).abs() > 1.0, "{plain:?}");
        let robust = Loess::new(1.0)
            .robust_iters(1)
            .fit(xm, &y)
            .unwrap()
            .predict(xm)
            .unwrap();
        for (p, v) in robust.iter().zip(&x) {
            // Rounding of a 2 x 2 weighted solve.
            assert!((p - (2.0 * v + 1.0)).abs() < 1e-9, "{robust:?}");
        }
    }
    #[test]
    fn zero_median_residual_leaves_no_nan() {
        // y = 0 except y_5 = 1, three neighbours each (the third, at the radius,
        // weighs ~2.7e-29 = (3e-10)^3 since the radius is widened by 1e-10). The
        // plain fits are exactly 0 at x = 0..3 and 7..9 and exactly 1 at x = 5 (its
        // own point dominates); at 4 and 6 they are ~2.7e-29. More than half the
        // residuals are 0, so the median is 0: without the zero-median rule the
        // weights would be 0/0. With it only x = 4 and 6 (residual > 0) lose their
        // weight, and the refit at 4 is the line through (3, 0) and (5, 1), equally
        // weighted: 0.5 (likewise at 6). statsmodels, whose radius point weighs
        // exactly 0, keeps y_4 = 0 there instead; only such ties tell them apart.
        let x: Vec<f64> = (0..10).map(|v| v as f64).collect();
        let mut y = vec![0.0; 10];
        y[5] = 1.0;
        let xm = MatRef::new(&x, 10, 1).unwrap();
        let p = Loess::new(0.3)
            .robust_iters(1)
            .fit(xm, &y)
            .unwrap()
            .predict(xm)
            .unwrap();
        let want = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0, 0.0];
        for (a, b) in p.iter().zip(want) {
            // Rounding of 2 x 2 solves with weights near 1e-29.
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
    }

    #[test]
    fn all_zero_robustness_weights_fall_back_to_the_plain_fit() {
        // A neighbourhood of outliers only would leave 0 / 0; the guard refits
        // without robustness weights instead.
        let x: Vec<f64> = (0..8).map(|v| v as f64 * 0.5).collect();
        let y: Vec<f64> = x.iter().map(|v| v * v).collect();
        let xm = MatRef::new(&x, 8, 1).unwrap();
        let plain: FittedLoess<f64> = Loess::new(0.5).fit(xm, &y).unwrap();
        let mut zeroed = plain.clone();
        zeroed.robust = vec![0.0; 8];
        let q = MatRef::new(&[0.3, 1.7, 3.4], 3, 1).unwrap();
        let (a, b) = (plain.predict(q).unwrap(), zeroed.predict(q).unwrap());
        assert!(b.iter().all(|v| v.is_finite()), "{b:?}");
        assert_eq!(a, b);
    }
}
