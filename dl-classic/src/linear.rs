//! Linear models fitted by least squares, and the perceptron.
//!
//! - [`LinearRegression`]: ridge regression `min ||y - X w - b||^2 + alpha ||w||^2`
//!   (the intercept is not penalized; `alpha = 0` is ordinary least squares), solved
//!   in closed form on centered data: `(Xc^T Xc + alpha I) w = Xc^T yc`.
//! - [`LeastSquaresClassifier`]: the same regression on one-vs-all targets in
//!   `{-1, +1}`, predicting the class of largest output (scikit-learn's
//!   `RidgeClassifier`).
//! - [`Perceptron`]: Rosenblatt's rule, one-vs-all, `w += eta * y_i x_i` on each
//!   mistake, epochs in a seeded shuffled order, stopping when the epoch's
//!   perceptron loss `mean max(0, -y w.x)` has not improved by `tol` for
//!   `n_iter_no_change` epochs (scikit-learn's `Perceptron`).

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use crate::linalg;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// Hyper-parameters of (ridge) linear regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearRegression {
    /// L2 penalty on the weights (>= 0; 0 = ordinary least squares).
    pub alpha: f64,
    /// Fit an unpenalized intercept.
    pub fit_intercept: bool,
}

impl Default for LinearRegression {
    fn default() -> Self {
        LinearRegression {
            alpha: 0.0,
            fit_intercept: true,
        }
    }
}

impl LinearRegression {
    /// Sets the ridge penalty.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Sets whether an intercept is fitted.
    pub fn fit_intercept(mut self, b: bool) -> Self {
        self.fit_intercept = b;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.alpha >= 0.0 && self.alpha.is_finite(),
            "alpha",
            self.alpha,
            ">= 0 and finite",
        )
    }
}

/// Weights `d x k` and intercepts `k` of a multi-output linear map.
#[derive(Clone, Debug)]
pub struct LinearMap<T> {
    /// Row-major `n_features x n_outputs`.
    pub weights: Vec<T>,
    /// One per output.
    pub intercept: Vec<T>,
    /// Features.
    pub n_features: usize,
    /// Outputs.
    pub n_outputs: usize,
}

impl<T: Scalar> LinearMap<T> {
    /// `x W + b` for one row into `out` (length `n_outputs`).
    pub fn apply(&self, row: &[T], out: &mut [T]) {
        out.copy_from_slice(&self.intercept);
        for (j, &xj) in row.iter().enumerate() {
            if xj == T::ZERO {
                continue;
            }
            let w = &self.weights[j * self.n_outputs..(j + 1) * self.n_outputs];
            for (o, wv) in out.iter_mut().zip(w) {
                *o = *o + xj * *wv;
            }
        }
    }
}

/// Solves the ridge problem for `k` targets `y` (`n x k`), in f64.
fn ridge_solve<T: Scalar>(
    x: MatRef<'_, T>,
    y: &[f64],
    k: usize,
    alpha: f64,
    intercept: bool,
) -> Result<LinearMap<T>> {
    let (n, d) = (x.rows(), x.cols());
    let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
    let mut xm = vec![0.0; d];
    let mut ym = vec![0.0; k];
    if intercept {
        linalg::col_means(&xf, n, d, &mut xm);
        linalg::col_means(y, n, k, &mut ym);
    }
    // Gram matrix Xc^T Xc + alpha I and right-hand side Xc^T yc.
    let mut gram = vec![0.0; d * d];
    let mut rhs = vec![0.0; d * k];
    let mut xc = vec![0.0; d];
    for i in 0..n {
        for j in 0..d {
            xc[j] = xf[i * d + j] - xm[j];
        }
        for a in 0..d {
            if xc[a] == 0.0 {
                continue;
            }
            for b in 0..=a {
                gram[a * d + b] += xc[a] * xc[b];
            }
            for c in 0..k {
                rhs[a * k + c] += xc[a] * (y[i * k + c] - ym[c]);
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            gram[b * d + a] = gram[a * d + b];
        }
        gram[a * d + a] += alpha;
    }
    linalg::solve(&mut gram, d, &mut rhs, k).map_err(|_| Error::Singular {
        what: "Gram matrix X^T X",
        hint: "features are collinear: set alpha > 0 (ridge)",
    })?;
    let intercept: Vec<T> = (0..k)
        .map(|c| T::from_f64_lossy(ym[c] - (0..d).map(|j| xm[j] * rhs[j * k + c]).sum::<f64>()))
        .collect();
    Ok(LinearMap {
        weights: rhs.iter().map(|v| T::from_f64_lossy(*v)).collect(),
        intercept,
        n_features: d,
        n_outputs: k,
    })
}

impl<T: Scalar> Fit<T, T> for LinearRegression {
    type Fitted = LinearMap<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<LinearMap<T>> {
        self.validate()?;
        check_xy(x, y.len(), "LinearRegression::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        let yf: Vec<f64> = y.iter().map(|v| v.to_f64_lossless()).collect();
        ridge_solve(x, &yf, 1, self.alpha, self.fit_intercept)
    }
}

impl<T: Scalar> Predict<T, T> for LinearMap<T> {
    type Error = Error;

    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "LinearRegression::predict")?;
        let mut o = vec![T::ZERO; self.n_outputs];
        for (row, y) in x.iter_rows().zip(out.iter_mut()) {
            self.apply(row, &mut o);
            *y = o[0];
        }
        Ok(())
    }
}

/// Hyper-parameters of the least-squares (ridge) classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeastSquaresClassifier {
    /// L2 penalty (>= 0).
    pub alpha: f64,
}

impl Default for LeastSquaresClassifier {
    /// scikit-learn's `RidgeClassifier` default, `alpha = 1`.
    fn default() -> Self {
        LeastSquaresClassifier { alpha: 1.0 }
    }
}

impl LeastSquaresClassifier {
    /// Sets the ridge penalty.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        LinearRegression::default().alpha(self.alpha).validate()
    }
}

/// A fitted linear classifier: one score per class, the largest wins.
#[derive(Clone, Debug)]
pub struct FittedLinearClassifier<T> {
    /// Class scores `x W + b`.
    pub map: LinearMap<T>,
    /// Labels in score order.
    pub classes: Vec<usize>,
}

impl<T: Scalar> FittedLinearClassifier<T> {
    /// Per-class scores, `rows x n_classes`.
    pub fn decision_function(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        check_predict(
            x,
            self.map.n_features,
            x.rows(),
            "LinearClassifier::decision_function",
        )?;
        let k = self.map.n_outputs;
        let mut out = vec![T::ZERO; x.rows() * k];
        for (row, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.map.apply(row, o);
        }
        Ok(out)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedLinearClassifier<T> {
    type Error = Error;

    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(
            x,
            self.map.n_features,
            out.len(),
            "LinearClassifier::predict",
        )?;
        let mut s = vec![T::ZERO; self.map.n_outputs];
        for (row, y) in x.iter_rows().zip(out.iter_mut()) {
            self.map.apply(row, &mut s);
            *y = self.classes[argmax(&s)];
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, usize> for LeastSquaresClassifier {
    type Fitted = FittedLinearClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "LeastSquaresClassifier::fit")?;
        let (classes, yi) = encode_labels(y);
        if classes.len() < 2 {
            return Err(Error::SingleClass {
                op: "LeastSquaresClassifier::fit",
            });
        }
        let k = classes.len();
        let mut t = vec![-1.0; y.len() * k];
        for (i, &c) in yi.iter().enumerate() {
            t[i * k + c] = 1.0;
        }
        let map = ridge_solve(x, &t, k, self.alpha, true)?;
        Ok(FittedLinearClassifier { map, classes })
    }
}

/// Hyper-parameters of the perceptron.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perceptron {
    /// Learning rate (> 0).
    pub eta: f64,
    /// Maximum epochs (>= 1).
    pub max_iter: usize,
    /// Stop when the epoch loss has not improved by `tol` (>= 0) ...
    pub tol: f64,
    /// ... for this many epochs (>= 1).
    pub n_iter_no_change: usize,
    /// Shuffle the samples each epoch.
    pub shuffle: bool,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl Default for Perceptron {
    /// scikit-learn's defaults.
    fn default() -> Self {
        Perceptron {
            eta: 1.0,
            max_iter: 1000,
            tol: 1e-3,
            n_iter_no_change: 5,
            shuffle: true,
            seed: 0,
        }
    }
}

impl Perceptron {
    /// Sets the learning rate.
    pub fn eta(mut self, v: f64) -> Self {
        self.eta = v;
        self
    }
    /// Sets the maximum number of epochs.
    pub fn max_iter(mut self, v: usize) -> Self {
        self.max_iter = v;
        self
    }
    /// Sets the stopping tolerance.
    pub fn tol(mut self, v: f64) -> Self {
        self.tol = v;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }
    /// Sets whether samples are shuffled each epoch.
    pub fn shuffle(mut self, v: bool) -> Self {
        self.shuffle = v;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.eta > 0.0 && self.eta.is_finite(),
            "eta",
            self.eta,
            "> 0",
        )?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")?;
        param(self.tol >= 0.0, "tol", self.tol, ">= 0")?;
        param(
            self.n_iter_no_change >= 1,
            "n_iter_no_change",
            self.n_iter_no_change as f64,
            ">= 1",
        )
    }

    /// One binary perceptron on targets `t` in {-1, +1}: returns `(w, b)`.
    fn fit_binary(
        &self,
        x: &[f64],
        n: usize,
        d: usize,
        t: &[f64],
        rng: &mut Rng,
    ) -> (Vec<f64>, f64) {
        let mut w = vec![0.0; d];
        let mut b = 0.0;
        let mut order: Vec<usize> = (0..n).collect();
        let mut best = f64::INFINITY;
        let mut stale = 0;
        for _ in 0..self.max_iter {
            if self.shuffle {
                rng.shuffle(&mut order);
            }
            let mut loss = 0.0;
            for &i in &order {
                let row = &x[i * d..(i + 1) * d];
                let margin = t[i] * (linalg::dot(&w, row) + b);
                if margin <= 0.0 {
                    loss -= margin;
                    for (wv, xv) in w.iter_mut().zip(row) {
                        *wv += self.eta * t[i] * xv;
                    }
                    b += self.eta * t[i];
                }
            }
            loss /= n as f64;
            if loss > best - self.tol {
                stale += 1;
            } else {
                stale = 0;
            }
            best = best.min(loss);
            if stale >= self.n_iter_no_change {
                break;
            }
        }
        (w, b)
    }
}

impl<T: Scalar> Fit<T, usize> for Perceptron {
    type Fitted = FittedLinearClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "Perceptron::fit")?;
        let (classes, yi) = encode_labels(y);
        if classes.len() < 2 {
            return Err(Error::SingleClass {
                op: "Perceptron::fit",
            });
        }
        let (n, d) = (x.rows(), x.cols());
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut rng = Rng::seed_from_u64(self.seed);
        // Two classes need one separating plane; the second score is its negation.
        let planes = if classes.len() == 2 { 1 } else { classes.len() };
        let k = classes.len();
        let mut weights = vec![T::ZERO; d * k];
        let mut intercept = vec![T::ZERO; k];
        for c in 0..planes {
            let positive = if planes == 1 { 1 } else { c };
            let t: Vec<f64> = yi
                .iter()
                .map(|&l| if l == positive { 1.0 } else { -1.0 })
                .collect();
            let mut sub = rng.fork(c as u64);
            let (w, b) = self.fit_binary(&xf, n, d, &t, &mut sub);
            let cols: &[(usize, f64)] = if planes == 1 {
                &[(1, 1.0), (0, -1.0)]
            } else {
                &[(c, 1.0)]
            };
            for &(col, sign) in cols {
                for j in 0..d {
                    weights[j * k + col] = T::from_f64_lossy(sign * w[j]);
                }
                intercept[col] = T::from_f64_lossy(sign * b);
            }
        }
        Ok(FittedLinearClassifier {
            map: LinearMap {
                weights,
                intercept,
                n_features: d,
                n_outputs: k,
            },
            classes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ols_recovers_exact_line_and_ridge_shrinks() {
        // y = 2 x0 - 3 x1 + 1 exactly.
        let x = [0.0f64, 1.0, 1.0, 0.0, 2.0, 1.0, 3.0, 5.0, -1.0, 2.0];
        let y: Vec<f64> = x.chunks(2).map(|r| 2.0 * r[0] - 3.0 * r[1] + 1.0).collect();
        let m = LinearRegression::default()
            .fit(MatRef::new(&x, 5, 2).unwrap(), &y)
            .unwrap();
        assert!((m.weights[0] - 2.0).abs() < 1e-12 && (m.weights[1] + 3.0).abs() < 1e-12);
        assert!((m.intercept[0] - 1.0).abs() < 1e-12);
        // One feature, centered x = [-1, 1], y = [-1, 1]: ridge w = 2 / (2 + alpha).
        let r = LinearRegression::default()
            .alpha(2.0)
            .fit(MatRef::new(&[0.0f64, 2.0], 2, 1).unwrap(), &[0.0, 2.0])
            .unwrap();
        assert!((r.weights[0] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn perceptron_separates_separable_data() {
        let x = [
            0.0f64, 0.0, 1.0, 0.2, 0.2, 1.0, 3.0, 3.0, 4.0, 3.2, 3.1, 4.0,
        ];
        let y = [0usize, 0, 0, 1, 1, 1];
        let m = Perceptron::default()
            .fit(MatRef::new(&x, 6, 2).unwrap(), &y)
            .unwrap();
        assert_eq!(
            m.predict(MatRef::new(&x, 6, 2).unwrap()).unwrap(),
            y.to_vec()
        );
    }
}
