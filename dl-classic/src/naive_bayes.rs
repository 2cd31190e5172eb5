//! Naive Bayes: features independent given the class, so
//! `log p(k|x) = log pi_k + sum_j log p(x_j|k) + const`, and the class of largest
//! joint log-likelihood wins. Priors are the class frequencies.
//!
//! - [`GaussianNb`]: `x_j|k ~ N(mu_kj, var_kj + eps)` with
//!   `eps = var_smoothing * max_j var(x_j)` (scikit-learn's rule; variances ddof 0).
//! - [`MultinomialNb`]: counts; `p(j|k) = (N_kj + alpha) / (N_k + alpha d)` and
//!   `log p(x|k) = sum_j x_j log p(j|k)`.
//! - [`BernoulliNb`]: binary features (`x > binarize`);
//!   `p_kj = (N_kj + alpha) / (N_k + 2 alpha)`,
//!   `log p(x|k) = sum_j x_j log p_kj + (1 - x_j) log(1 - p_kj)`.

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use crate::linalg::logsumexp;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// Which naive Bayes model a fitted [`FittedNaiveBayes`] is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Gaussian,
    Multinomial,
    Bernoulli { binarize: f64 },
}

/// A fitted naive Bayes model (any of the three kinds).
#[derive(Clone, Debug)]
pub struct FittedNaiveBayes<T> {
    kind: Kind,
    /// Labels in column order.
    pub classes: Vec<usize>,
    /// `log pi_k`.
    pub class_log_prior: Vec<T>,
    /// Gaussian: means `k x d`; multinomial/Bernoulli: `log p(j|k)`.
    pub theta: Vec<T>,
    /// Gaussian: variances `k x d` (smoothed); Bernoulli: `log (1 - p_kj)`.
    pub aux: Vec<T>,
    n_features: usize,
}

impl<T: Scalar> FittedNaiveBayes<T> {
    /// Joint log-likelihoods `log pi_k + log p(x|k)`, `rows x n_classes`.
    pub fn joint_log_likelihood(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        check_predict(
            x,
            self.n_features,
            x.rows(),
            "NaiveBayes::joint_log_likelihood",
        )?;
        let k = self.classes.len();
        let mut out = vec![T::ZERO; x.rows() * k];
        for (row, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.jll_row(row, o);
        }
        Ok(out)
    }

    /// Which of the three models this is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Number of input features.
    pub(crate) fn n_features(&self) -> usize {
        self.n_features
    }

    /// Posterior class probabilities, `rows x n_classes`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        let mut j = self.joint_log_likelihood(x)?;
        for row in j.chunks_exact_mut(self.classes.len()) {
            let lse = logsumexp(row);
            row.iter_mut().for_each(|v| *v = (*v - lse).exp());
        }
        Ok(j)
    }

    fn jll_row(&self, row: &[T], out: &mut [T]) {
        let d = self.n_features;
        let half = T::from_f64_lossy(0.5);
        let two_pi = T::from_f64_lossy(core::f64::consts::TAU);
        for (c, o) in out.iter_mut().enumerate() {
            let th = &self.theta[c * d..(c + 1) * d];
            let ax = &self.aux[c * d..(c + 1) * d];
            let mut s = self.class_log_prior[c];
            match self.kind {
                Kind::Gaussian => {
                    for j in 0..d {
                        let diff = row[j] - th[j];
                        s = s - half * ((two_pi * ax[j]).ln() + diff * diff / ax[j]);
                    }
                }
                Kind::Multinomial => {
                    for j in 0..d {
                        s = s + row[j] * th[j];
                    }
                }
                Kind::Bernoulli { binarize } => {
                    let b = T::from_f64_lossy(binarize);
                    for j in 0..d {
                        s = s + if row[j] > b { th[j] } else { ax[j] };
                    }
                }
            }
            *o = s;
        }
    }
}

impl<T: Scalar> Predict<T, usize> for FittedNaiveBayes<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "NaiveBayes::predict")?;
        let mut j = vec![T::ZERO; self.classes.len()];
        for (row, o) in x.iter_rows().zip(out.iter_mut()) {
            self.jll_row(row, &mut j);
            *o = self.classes[argmax(&j)];
        }
        Ok(())
    }
}

/// Labels, per-class counts and per-class feature sums (f64), shared by all kinds.
struct ClassStats {
    classes: Vec<usize>,
    yi: Vec<usize>,
    counts: Vec<f64>,
}

fn class_stats(y: &[usize]) -> ClassStats {
    let (classes, yi) = encode_labels(y);
    let mut counts = vec![0.0; classes.len()];
    for &c in &yi {
        counts[c] += 1.0;
    }
    ClassStats {
        classes,
        yi,
        counts,
    }
}

fn log_prior<T: Scalar>(counts: &[f64]) -> Vec<T> {
    let n: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| T::from_f64_lossy(libm::log(c / n)))
        .collect()
}

/// Gaussian naive Bayes hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNb {
    /// Fraction of the largest feature variance added to every variance (>= 0).
    pub var_smoothing: f64,
}

impl Default for GaussianNb {
    fn default() -> Self {
        GaussianNb {
            var_smoothing: 1e-9,
        }
    }
}

impl GaussianNb {
    /// Sets the variance smoothing.
    pub fn var_smoothing(mut self, v: f64) -> Self {
        self.var_smoothing = v;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.var_smoothing >= 0.0 && self.var_smoothing.is_finite(),
            "var_smoothing",
            self.var_smoothing,
            ">= 0",
        )
    }
}

impl<T: Scalar> Fit<T, usize> for GaussianNb {
    type Fitted = FittedNaiveBayes<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "GaussianNb::fit")?;
        let st = class_stats(y);
        let (n, d, k) = (x.rows(), x.cols(), st.classes.len());
        let mut mean = vec![0.0; k * d];
        let mut var = vec![0.0; k * d];
        let mut gmean = vec![0.0; d];
        for (i, row) in x.iter_rows().enumerate() {
            for j in 0..d {
                mean[st.yi[i] * d + j] += row[j].to_f64_lossless();
                gmean[j] += row[j].to_f64_lossless();
            }
        }
        for c in 0..k {
            for j in 0..d {
                mean[c * d + j] /= st.counts[c];
            }
        }
        gmean.iter_mut().for_each(|m| *m /= n as f64);
        let mut gvar = vec![0.0; d];
        for (i, row) in x.iter_rows().enumerate() {
            for j in 0..d {
                let v = row[j].to_f64_lossless();
                let dc = v - mean[st.yi[i] * d + j];
                var[st.yi[i] * d + j] += dc * dc;
                gvar[j] += (v - gmean[j]) * (v - gmean[j]);
            }
        }
        let eps = self.var_smoothing * gvar.iter().fold(0.0f64, |m, v| m.max(v / n as f64));
        for c in 0..k {
            for j in 0..d {
                var[c * d + j] = var[c * d + j] / st.counts[c] + eps;
                if var[c * d + j] <= 0.0 {
                    return Err(Error::Singular {
                        what: "class variance of a feature (zero)",
                        hint: "a feature is constant within a class: set var_smoothing > 0",
                    });
                }
            }
        }
        Ok(FittedNaiveBayes {
            kind: Kind::Gaussian,
            class_log_prior: log_prior(&st.counts),
            classes: st.classes,
            theta: mean.iter().map(|v| T::from_f64_lossy(*v)).collect(),
            aux: var.iter().map(|v| T::from_f64_lossy(*v)).collect(),
            n_features: d,
        })
    }
}

/// Multinomial naive Bayes hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultinomialNb {
    /// Additive (Laplace/Lidstone) smoothing (> 0).
    pub alpha: f64,
}

impl Default for MultinomialNb {
    fn default() -> Self {
        MultinomialNb { alpha: 1.0 }
    }
}

impl MultinomialNb {
    /// Sets the smoothing.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.alpha > 0.0 && self.alpha.is_finite(),
            "alpha",
            self.alpha,
            "> 0",
        )
    }
}

/// Per-class feature sums (after `map`), `k x d`, in f64.
fn class_feature_sums<T: Scalar>(
    x: MatRef<'_, T>,
    yi: &[usize],
    k: usize,
    map: impl Fn(T) -> f64,
) -> Vec<f64> {
    let d = x.cols();
    let mut s = vec![0.0; k * d];
    for (i, row) in x.iter_rows().enumerate() {
        for j in 0..d {
            s[yi[i] * d + j] += map(row[j]);
        }
    }
    s
}

impl<T: Scalar> Fit<T, usize> for MultinomialNb {
    type Fitted = FittedNaiveBayes<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "MultinomialNb::fit")?;
        for (row, r) in x.iter_rows().enumerate() {
            if let Some(col) = r.iter().position(|v| *v < T::ZERO) {
                return Err(Error::InvalidValue {
                    op: "MultinomialNb::fit",
                    row,
                    col,
                    valid: ">= 0 (counts)",
                });
            }
        }
        let st = class_stats(y);
        let (d, k) = (x.cols(), st.classes.len());
        let sums = class_feature_sums(x, &st.yi, k, |v| v.to_f64_lossless());
        let mut theta = vec![T::ZERO; k * d];
        for c in 0..k {
            let total: f64 = sums[c * d..(c + 1) * d].iter().sum::<f64>() + self.alpha * d as f64;
            for j in 0..d {
                theta[c * d + j] =
                    T::from_f64_lossy(libm::log((sums[c * d + j] + self.alpha) / total));
            }
        }
        Ok(FittedNaiveBayes {
            kind: Kind::Multinomial,
            class_log_prior: log_prior(&st.counts),
            classes: st.classes,
            aux: vec![T::ZERO; k * d],
            theta,
            n_features: d,
        })
    }
}

/// Bernoulli naive Bayes hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BernoulliNb {
    /// Additive smoothing (> 0).
    pub alpha: f64,
    /// A feature counts as 1 when above this threshold.
    pub binarize: f64,
}

impl Default for BernoulliNb {
    fn default() -> Self {
        BernoulliNb {
            alpha: 1.0,
            binarize: 0.0,
        }
    }
}

impl BernoulliNb {
    /// Sets the smoothing.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Sets the binarization threshold.
    pub fn binarize(mut self, b: f64) -> Self {
        self.binarize = b;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.alpha > 0.0 && self.alpha.is_finite(),
            "alpha",
            self.alpha,
            "> 0",
        )?;
        param(
            self.binarize.is_finite(),
            "binarize",
            self.binarize,
            "finite",
        )
    }
}

impl<T: Scalar> Fit<T, usize> for BernoulliNb {
    type Fitted = FittedNaiveBayes<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "BernoulliNb::fit")?;
        let st = class_stats(y);
        let (d, k) = (x.cols(), st.classes.len());
        let b = T::from_f64_lossy(self.binarize);
        let sums = class_feature_sums(x, &st.yi, k, |v| if v > b { 1.0 } else { 0.0 });
        let mut theta = vec![T::ZERO; k * d];
        let mut aux = vec![T::ZERO; k * d];
        for c in 0..k {
            for j in 0..d {
                let p = (sums[c * d + j] + self.alpha) / (st.counts[c] + 2.0 * self.alpha);
                theta[c * d + j] = T::from_f64_lossy(libm::log(p));
                aux[c * d + j] = T::from_f64_lossy(libm::log1p(-p));
            }
        }
        Ok(FittedNaiveBayes {
            kind: Kind::Bernoulli {
                binarize: self.binarize,
            },
            class_log_prior: log_prior(&st.counts),
            classes: st.classes,
            theta,
            aux,
            n_features: d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_nb_hand_computed_posterior() {
        // Class 0 at x = {0, 2} (mean 1, var 1), class 1 at x = {4, 6} (mean 5, var 1).
        // No smoothing. At x = 3: equal distance, equal priors -> p = 0.5.
        let x = [0.0f64, 2.0, 4.0, 6.0];
        let m = GaussianNb::default()
            .var_smoothing(0.0)
            .fit(MatRef::new(&x, 4, 1).unwrap(), &[0, 0, 1, 1])
            .unwrap();
        let p = m
            .predict_proba(MatRef::new(&[3.0, 2.0], 2, 1).unwrap())
            .unwrap();
        assert!((p[0] - 0.5).abs() < 1e-12);
        // At x = 2: log-odds = ((2-5)^2 - (2-1)^2) / 2 = 4 -> p0 = sigmoid(4).
        assert!((p[2] - 1.0 / (1.0 + (-4.0f64).exp())).abs() < 1e-12);
    }

    #[test]
    fn multinomial_and_bernoulli_smoothing() {
        // Two features, class 0 counts (3, 1), class 1 counts (0, 2); alpha = 1:
        // p(0|0) = 4/6, p(1|0) = 2/6; p(0|1) = 1/4, p(1|1) = 3/4.
        let x = [3.0f64, 1.0, 0.0, 2.0];
        let m = MultinomialNb::default()
            .fit(MatRef::new(&x, 2, 2).unwrap(), &[0, 1])
            .unwrap();
        assert!((m.theta[0] - (4.0f64 / 6.0).ln()).abs() < 1e-12);
        assert!((m.theta[3] - (0.75f64).ln()).abs() < 1e-12);
        let b = BernoulliNb::default()
            .fit(MatRef::new(&x, 2, 2).unwrap(), &[0, 1])
            .unwrap();
        // Class 1, feature 0 never on: p = (0 + 1) / (1 + 2) = 1/3.
        assert!((b.theta[2] - (1.0f64 / 3.0).ln()).abs() < 1e-12);
        assert!((b.aux[2] - (2.0f64 / 3.0).ln()).abs() < 1e-12);
    }
}
