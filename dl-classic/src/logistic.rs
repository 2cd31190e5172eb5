//! Logistic regression with an L2 penalty, fitted by L-BFGS (scikit-learn's `lbfgs`
//! solver and objective).
//!
//! - Two classes: `p(y=1|x) = sigmoid(w.x + b)`, minimizing
//!   `C * sum_i [log(1 + exp(z_i)) - y_i z_i] + ||w||^2 / 2`.
//! - More classes (multinomial / softmax): `p(k|x) = softmax(x W + b)_k`, minimizing
//!   `C * sum_i -log p(y_i|x_i) + ||W||_F^2 / 2`.
//!
//! The intercept is not penalized. The gradient is `C X^T (P - Y) + W`. Both losses
//! are strictly convex, so any solver converging to `max |grad| <= tol` lands on the
//! same optimum as scikit-learn's.

use crate::error::{check_xy, param, Error, Result};
use crate::knn::encode_labels;
use crate::linalg::logsumexp;
use crate::linear::{FittedLinearClassifier, LinearMap};
use crate::optim;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// Hyper-parameters of logistic regression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogisticRegression {
    /// Inverse regularization strength (> 0; `f64::INFINITY` = no penalty).
    pub c: f64,
    /// Stop when the largest entry of the gradient of the *mean* objective
    /// `(C sum_i loss_i + ||w||^2 / 2) / (C n)` is below this (> 0): scikit-learn's
    /// scaling, so the same `tol` means the same thing.
    pub tol: f64,
    /// Maximum L-BFGS iterations (>= 1).
    pub max_iter: usize,
    /// L-BFGS memory (>= 1).
    pub memory: usize,
    /// Fit an unpenalized intercept.
    pub fit_intercept: bool,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression {
            c: 1.0,
            tol: 1e-4,
            max_iter: 10_000,
            memory: 10,
            fit_intercept: true,
        }
    }
}

impl LogisticRegression {
    /// Sets `C`, the inverse penalty.
    pub fn c(mut self, c: f64) -> Self {
        self.c = c;
        self
    }
    /// Sets the gradient tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Sets the iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Sets whether an intercept is fitted.
    pub fn fit_intercept(mut self, b: bool) -> Self {
        self.fit_intercept = b;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(self.c > 0.0, "C", self.c, "> 0 (infinity = no penalty)")?;
        param(
            self.tol > 0.0 && self.tol.is_finite(),
            "tol",
            self.tol,
            "> 0",
        )?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")?;
        param(self.memory >= 1, "memory", self.memory as f64, ">= 1")
    }
}

/// A fitted logistic regression.
#[derive(Clone, Debug)]
pub struct FittedLogisticRegression<T> {
    /// Class scores (logits). For two classes the scores are `(0, w.x + b)`.
    pub linear: FittedLinearClassifier<T>,
    /// L-BFGS iterations used.
    pub n_iter: usize,
    /// Whether the gradient tolerance was reached within `max_iter`.
    pub converged: bool,
}

impl<T: Scalar> FittedLogisticRegression<T> {
    /// The learned labels, in probability-column order.
    pub fn classes(&self) -> &[usize] {
        &self.linear.classes
    }

    /// Class probabilities, `rows x n_classes`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        let mut s = self.linear.decision_function(x)?;
        let k = self.linear.classes.len();
        for row in s.chunks_exact_mut(k) {
            let lse = logsumexp(row);
            row.iter_mut().for_each(|v| *v = (*v - lse).exp());
        }
        Ok(s)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedLogisticRegression<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        self.linear.predict_into(x, out)
    }
}

impl<T: Scalar> Fit<T, usize> for LogisticRegression {
    type Fitted = FittedLogisticRegression<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "LogisticRegression::fit")?;
        let (classes, yi) = encode_labels(y);
        if classes.len() < 2 {
            return Err(Error::SingleClass {
                op: "LogisticRegression::fit",
            });
        }
        let (n, d) = (x.rows(), x.cols());
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let c = self.c;
        let reg = if c.is_infinite() { 0.0 } else { 1.0 };
        let cw = if c.is_infinite() { 1.0 } else { c };
        let bias = self.fit_intercept;
        let k = classes.len();
        // Parameters: weights (d x outs) then intercepts (outs).
        let outs = if k == 2 { 1 } else { k };
        let mut w = vec![0.0; d * outs + outs];
        let mut z = vec![0.0; outs];
        let min = optim::lbfgs(
            |w, g| {
                let (wt, b) = w.split_at(d * outs);
                g.iter_mut().for_each(|v| *v = 0.0);
                let (gw, gb) = g.split_at_mut(d * outs);
                let mut loss = 0.0;
                for i in 0..n {
                    let row = &xf[i * d..(i + 1) * d];
                    z.copy_from_slice(b);
                    for (j, &xj) in row.iter().enumerate() {
                        if xj != 0.0 {
                            for o in 0..outs {
                                z[o] += xj * wt[j * outs + o];
                            }
                        }
                    }
                    if outs == 1 {
                        // Binary: log(1 + e^z) - y z, derivative sigmoid(z) - y.
                        let t = if yi[i] == 1 { 1.0 } else { 0.0 };
                        let zi = z[0];
                        let softplus = if zi > 0.0 {
                            zi + libm::log1p(libm::exp(-zi))
                        } else {
                            libm::log1p(libm::exp(zi))
                        };
                        loss += softplus - t * zi;
                        z[0] = 1.0 / (1.0 + libm::exp(-zi)) - t;
                    } else {
                        let lse = logsumexp(&z);
                        loss += lse - z[yi[i]];
                        for (o, zv) in z.iter_mut().enumerate() {
                            *zv = libm::exp(*zv - lse) - if o == yi[i] { 1.0 } else { 0.0 };
                        }
                    }
                    // z now holds dloss/dz for this sample.
                    for (j, &xj) in row.iter().enumerate() {
                        if xj != 0.0 {
                            for o in 0..outs {
                                gw[j * outs + o] += xj * z[o];
                            }
                        }
                    }
                    if bias {
                        for o in 0..outs {
                            gb[o] += z[o];
                        }
                    }
                }
                let mut l2 = 0.0;
                for (gv, wv) in gw.iter_mut().zip(wt) {
                    *gv = cw * *gv + reg * wv;
                    l2 += wv * wv;
                }
                gb.iter_mut().for_each(|v| *v *= cw);
                cw * loss + 0.5 * reg * l2
            },
            &mut w,
            self.memory,
            self.max_iter,
            self.tol * cw * n as f64,
        );
        let (wt, b) = w.split_at(d * outs);
        let map = if outs == 1 {
            // Scores (0, z): argmax and softmax give the sigmoid model exactly.
            let mut weights = vec![T::ZERO; d * 2];
            for j in 0..d {
                weights[j * 2 + 1] = T::from_f64_lossy(wt[j]);
            }
            LinearMap {
                weights,
                intercept: vec![T::ZERO, T::from_f64_lossy(b[0])],
                n_features: d,
                n_outputs: 2,
            }
        } else {
            LinearMap {
                weights: wt.iter().map(|v| T::from_f64_lossy(*v)).collect(),
                intercept: b.iter().map(|v| T::from_f64_lossy(*v)).collect(),
                n_features: d,
                n_outputs: k,
            }
        };
        Ok(FittedLogisticRegression {
            linear: FittedLinearClassifier { map, classes },
            n_iter: min.iterations,
            converged: min.converged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_vanishes_at_the_fitted_optimum() {
        // 1-D, two classes, overlapping: the optimum satisfies
        // C * sum (sigmoid(w x_i + b) - y_i) x_i + w = 0 and C * sum (p_i - y_i) = 0.
        let x = [-2.0f64, -1.0, 0.0, 1.0, 0.5, 2.0];
        let y = [0usize, 0, 1, 1, 0, 1];
        let m = LogisticRegression::default()
            .tol(1e-10)
            .fit(MatRef::new(&x, 6, 1).unwrap(), &y)
            .unwrap();
        assert!(m.converged);
        let w = m.linear.map.weights[1];
        let b = m.linear.map.intercept[1];
        let (mut gw, mut gb) = (w, 0.0);
        for (xi, yi) in x.iter().zip(y) {
            let p = 1.0 / (1.0 + (-(w * xi + b)).exp());
            gw += (p - yi as f64) * xi;
            gb += p - yi as f64;
        }
        assert!(gw.abs() < 1e-8 && gb.abs() < 1e-8, "{gw} {gb}");
        let p = m.predict_proba(MatRef::new(&[0.0], 1, 1).unwrap()).unwrap();
        assert!((p[1] - 1.0 / (1.0 + (-b).exp())).abs() < 1e-12);
    }
}
