//! Gaussian discriminant analysis: each class is a Gaussian `N(mu_k, Sigma_k)` with
//! prior `pi_k` (the class frequency); a sample goes to the class of largest
//! posterior.
//!
//! - [`Lda`] (linear): one pooled covariance `Sigma = sum_k sum_{i in k}
//!   (x_i - mu_k)(x_i - mu_k)^T / n` (maximum likelihood, the within-class scaling
//!   of scikit-learn's `svd` solver), giving linear scores
//!   `x^T Sigma^+ mu_k - mu_k^T Sigma^+ mu_k / 2 + log pi_k`. `Sigma^+` is the
//!   pseudo-inverse computed on standardized features, dropping directions whose
//!   singular value is below `tol` (as scikit-learn's `svd` solver does), so
//!   constant features (e.g. always-blank pixels) are harmless.
//! - [`Qda`] (quadratic): one covariance per class (maximum likelihood, ddof 0),
//!   regularized as `(1 - reg_param) Sigma_k + reg_param I` (scikit-learn's rule);
//!   scores
//!   `-(log det Sigma_k + (x - mu_k)^T Sigma_k^-1 (x - mu_k)) / 2 + log pi_k`.
//!   A class covariance with an eigenvalue at or below `tol` after regularization
//!   is an [`Error::Singular`] naming `reg_param`.

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use crate::linalg;
use crate::linear::{FittedLinearClassifier, LinearMap};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// Class means (`k x d`), counts and encoded labels, in f64.
struct ClassMeans {
    classes: Vec<usize>,
    yi: Vec<usize>,
    counts: Vec<f64>,
    means: Vec<f64>,
}

fn class_means<T: Scalar>(x: MatRef<'_, T>, y: &[usize], op: &'static str) -> Result<ClassMeans> {
    let (classes, yi) = encode_labels(y);
    if classes.len() < 2 {
        return Err(Error::SingleClass { op });
    }
    let (d, k) = (x.cols(), classes.len());
    let mut counts = vec![0.0; k];
    let mut means = vec![0.0; k * d];
    for (i, row) in x.iter_rows().enumerate() {
        counts[yi[i]] += 1.0;
        for j in 0..d {
            means[yi[i] * d + j] += row[j].to_f64_lossless();
        }
    }
    for c in 0..k {
        for j in 0..d {
            means[c * d + j] /= counts[c];
        }
    }
    Ok(ClassMeans {
        classes,
        yi,
        counts,
        means,
    })
}

/// Linear discriminant analysis hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lda {
    /// Singular values (of the standardized within-class data) below this are
    /// treated as zero (>= 0).
    pub tol: f64,
}

impl Default for Lda {
    fn default() -> Self {
        Lda { tol: 1e-4 }
    }
}

impl Lda {
    /// Sets the rank tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.tol >= 0.0 && self.tol.is_finite(),
            "tol",
            self.tol,
            ">= 0",
        )
    }
}

impl<T: Scalar> Fit<T, usize> for Lda {
    type Fitted = FittedLinearClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "Lda::fit")?;
        let cm = class_means(x, y, "Lda::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), cm.classes.len());
        if n <= k {
            return Err(Error::TooFewSamples { k: k + 1, n });
        }
        // Within-class centered data, standardized per feature.
        let mut xc = vec![0.0; n * d];
        for (i, row) in x.iter_rows().enumerate() {
            for j in 0..d {
                xc[i * d + j] = row[j].to_f64_lossless() - cm.means[cm.yi[i] * d + j];
            }
        }
        let mut std = vec![0.0; d];
        for r in xc.chunks_exact(d) {
            for j in 0..d {
                std[j] += r[j] * r[j];
            }
        }
        // Xc has zero column means by construction, so std = sqrt(mean of squares).
        std.iter_mut().for_each(|s| {
            *s = libm::sqrt(*s / n as f64);
            if *s == 0.0 {
                *s = 1.0;
            }
        });
        for r in xc.chunks_exact_mut(d) {
            for j in 0..d {
                r[j] /= std[j];
            }
        }
        let zero = vec![0.0; d];
        let mut s = vec![0.0; d * d];
        // ddof 0: scikit-learn's svd solver scales the within-class data by
        // 1/sqrt(n), and `tol` applies to singular values on that scale.
        linalg::covariance(&xc, n, d, &zero, 0, &mut s);
        let mut w = vec![0.0; d];
        let mut v = vec![0.0; d * d];
        linalg::sym_eig(&mut s, d, &mut w, &mut v);
        // Pseudo-inverse over the kept directions, mapped back to the raw scale.
        let mut pinv = vec![0.0; d * d];
        for (e, &lam) in w.iter().enumerate() {
            if lam <= 0.0 || libm::sqrt(lam) <= self.tol {
                continue;
            }
            for a in 0..d {
                let va = v[a * d + e] / lam;
                for b in 0..d {
                    pinv[a * d + b] += va * v[b * d + e];
                }
            }
        }
        for a in 0..d {
            for b in 0..d {
                pinv[a * d + b] /= std[a] * std[b];
            }
        }
        let mut weights = vec![T::ZERO; d * k];
        let mut intercept = vec![T::ZERO; k];
        for c in 0..k {
            let mu = &cm.means[c * d..(c + 1) * d];
            let mut coef = vec![0.0; d];
            linalg::matmul(&pinv, mu, &mut coef, d, d, 1);
            for j in 0..d {
                weights[j * k + c] = T::from_f64_lossy(coef[j]);
            }
            let prior = cm.counts[c] / n as f64;
            intercept[c] = T::from_f64_lossy(-0.5 * linalg::dot(mu, &coef) + libm::log(prior));
        }
        Ok(FittedLinearClassifier {
            map: LinearMap {
                weights,
                intercept,
                n_features: d,
                n_outputs: k,
            },
            classes: cm.classes,
        })
    }
}

/// Quadratic discriminant analysis hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Qda {
    /// Shrinks each class covariance towards the identity, in `[0, 1]`.
    pub reg_param: f64,
    /// Smallest eigenvalue a regularized class covariance may have (>= 0).
    pub tol: f64,
}

impl Default for Qda {
    fn default() -> Self {
        Qda {
            reg_param: 0.0,
            tol: 1e-4,
        }
    }
}

impl Qda {
    /// Sets the covariance regularization.
    pub fn reg_param(mut self, r: f64) -> Self {
        self.reg_param = r;
        self
    }
    /// Sets the eigenvalue tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            (0.0..=1.0).contains(&self.reg_param),
            "reg_param",
            self.reg_param,
            "[0, 1]",
        )?;
        param(
            self.tol >= 0.0 && self.tol.is_finite(),
            "tol",
            self.tol,
            ">= 0",
        )
    }
}

/// A fitted QDA model: per class, a mean and the eigendecomposition of its
/// regularized covariance.
#[derive(Clone, Debug)]
pub struct FittedQda<T> {
    /// Labels in score order.
    pub classes: Vec<usize>,
    means: Vec<T>,
    /// Per class `d x d`, eigenvectors as columns.
    rotations: Vec<T>,
    /// Per class `d` eigenvalues (regularized).
    scalings: Vec<T>,
    /// Per class `log pi_k - log det Sigma_k / 2`.
    offsets: Vec<T>,
    n_features: usize,
}

impl<T: Scalar> FittedQda<T> {
    fn scores(&self, row: &[T], out: &mut [T], z: &mut [T]) {
        let d = self.n_features;
        let half = T::from_f64_lossy(0.5);
        for (c, o) in out.iter_mut().enumerate() {
            let mu = &self.means[c * d..(c + 1) * d];
            for (zj, (x, m)) in z.iter_mut().zip(row.iter().zip(mu)) {
                *zj = *x - *m;
            }
            let rot = &self.rotations[c * d * d..(c + 1) * d * d];
            let sc = &self.scalings[c * d..(c + 1) * d];
            let mut maha = T::ZERO;
            for e in 0..d {
                let mut p = T::ZERO;
                for j in 0..d {
                    p = p + z[j] * rot[j * d + e];
                }
                maha = maha + p * p / sc[e];
            }
            *o = self.offsets[c] - half * maha;
        }
    }

    /// Per-class scores (log posterior up to a constant), `rows x n_classes`.
    pub fn decision_function(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        check_predict(x, self.n_features, x.rows(), "Qda::decision_function")?;
        let k = self.classes.len();
        let mut out = vec![T::ZERO; x.rows() * k];
        let mut z = vec![T::ZERO; self.n_features];
        for (row, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.scores(row, o, &mut z);
        }
        Ok(out)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedQda<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "Qda::predict")?;
        let mut s = vec![T::ZERO; self.classes.len()];
        let mut z = vec![T::ZERO; self.n_features];
        for (row, o) in x.iter_rows().zip(out.iter_mut()) {
            self.scores(row, &mut s, &mut z);
            *o = self.classes[argmax(&s)];
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, usize> for Qda {
    type Fitted = FittedQda<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "Qda::fit")?;
        let cm = class_means(x, y, "Qda::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), cm.classes.len());
        let r = self.reg_param;
        let mut rotations = Vec::with_capacity(k * d * d);
        let mut scalings = Vec::with_capacity(k * d);
        let mut offsets = Vec::with_capacity(k);
        for c in 0..k {
            let nk = cm.counts[c] as usize;
            if nk < 2 {
                return Err(Error::TooFewSamples { k: 2, n: nk });
            }
            let mut xk = Vec::with_capacity(nk * d);
            for (i, row) in x.iter_rows().enumerate() {
                if cm.yi[i] == c {
                    xk.extend(row.iter().map(|v| v.to_f64_lossless()));
                }
            }
            let mut cov = vec![0.0; d * d];
            linalg::covariance(&xk, nk, d, &cm.means[c * d..(c + 1) * d], 0, &mut cov);
            let mut w = vec![0.0; d];
            let mut v = vec![0.0; d * d];
            linalg::sym_eig(&mut cov, d, &mut w, &mut v);
            let mut logdet = 0.0;
            for lam in w.iter_mut() {
                *lam = (1.0 - r) * *lam + r;
                if *lam <= self.tol {
                    return Err(Error::Singular {
                        what: "class covariance",
                        hint: "features are collinear within a class: set reg_param > 0",
                    });
                }
                logdet += libm::log(*lam);
            }
            rotations.extend(v.iter().map(|v| T::from_f64_lossy(*v)));
            scalings.extend(w.iter().map(|v| T::from_f64_lossy(*v)));
            offsets.push(T::from_f64_lossy(
                libm::log(cm.counts[c] / n as f64) - 0.5 * logdet,
            ));
        }
        Ok(FittedQda {
            classes: cm.classes,
            means: cm.means.iter().map(|v| T::from_f64_lossy(*v)).collect(),
            rotations,
            scalings,
            offsets,
            n_features: d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lda_boundary_is_the_midpoint_for_equal_priors() {
        // 1-D classes {0, 2} and {4, 6}: pooled var = (1+1+1+1)/4 = 1;
        // score difference = x (5-1)/1 - (25-1)/2 = 4x - 12 -> boundary at x = 3.
        let x = [0.0f64, 2.0, 4.0, 6.0];
        let m = Lda::default()
            .fit(MatRef::new(&x, 4, 1).unwrap(), &[0, 0, 1, 1])
            .unwrap();
        let s = m
            .decision_function(MatRef::new(&[3.0, 4.0], 2, 1).unwrap())
            .unwrap();
        assert!((s[1] - s[0]).abs() < 1e-12);
        assert!((s[3] - s[2] - 4.0).abs() < 1e-12);
    }

    #[test]
    fn qda_scores_match_gaussian_log_density() {
        // Class 0: {0, 2} -> mean 1, var 1 (ddof 0); class 1: {4, 8} -> mean 6, var 4.
        let x = [0.0f64, 2.0, 4.0, 8.0];
        let m = Qda::default()
            .fit(MatRef::new(&x, 4, 1).unwrap(), &[0, 0, 1, 1])
            .unwrap();
        let s = m
            .decision_function(MatRef::new(&[3.0], 1, 1).unwrap())
            .unwrap();
        let half = 0.5f64.ln();
        let e0 = half - 0.5 * (1f64.ln() + 4.0 / 1.0);
        let e1 = half - 0.5 * (4f64.ln() + 9.0 / 4.0);
        assert!(
            (s[0] - e0).abs() < 1e-12 && (s[1] - e1).abs() < 1e-12,
            "{s:?}"
        );
    }
}
