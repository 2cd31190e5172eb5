//! Gaussian mixture models fitted by expectation-maximization:
//! `p(x) = sum_k w_k N(x | mu_k, Sigma_k)`.
//!
//! - E-step: responsibilities `r_ik = w_k N(x_i|k) / p(x_i)` (in log space).
//! - M-step: `N_k = sum_i r_ik`, `w_k = N_k / n`, `mu_k = sum_i r_ik x_i / N_k`,
//!   `Sigma_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / N_k + reg_covar I`
//!   (only the diagonal for [`CovarianceType::Diag`]).
//! - Stops when the mean log-likelihood changes by less than `tol`.
//! - Initialization: k-means (seeded) labels as hard responsibilities, or explicit
//!   weights / means / covariances ([`GaussianMixture::fit_from`]), as scikit-learn
//!   does with `weights_init`, `means_init`, `precisions_init`.
//! - `bic = -2 n mean_log_likelihood + p ln n`, with `p` free parameters.

use crate::error::{check_predict, check_x, param, Error, Result};
use crate::kmeans::KMeans;
use crate::knn::argmax;
use crate::linalg;
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// The shape of each component's covariance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CovarianceType {
    /// A full `d x d` matrix per component.
    #[default]
    Full,
    /// A diagonal per component.
    Diag,
}

/// Gaussian mixture hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianMixture {
    /// Components `k` (>= 1, at most the number of samples).
    pub n_components: usize,
    /// Covariance shape.
    pub covariance_type: CovarianceType,
    /// Convergence threshold on the change of the mean log-likelihood (>= 0).
    pub tol: f64,
    /// Added to every covariance diagonal (>= 0); keeps them positive definite.
    pub reg_covar: f64,
    /// EM iterations (>= 1).
    pub max_iter: usize,
    /// Seed of the k-means initialization.
    pub seed: u64,
}

impl Default for GaussianMixture {
    fn default() -> Self {
        GaussianMixture {
            n_components: 1,
            covariance_type: CovarianceType::Full,
            tol: 1e-3,
            reg_covar: 1e-6,
            max_iter: 100,
            seed: 0,
        }
    }
}

impl GaussianMixture {
    /// Defaults with `k` components.
    pub fn new(k: usize) -> Self {
        GaussianMixture {
            n_components: k,
            ..Default::default()
        }
    }
    /// Sets the covariance type.
    pub fn covariance_type(mut self, c: CovarianceType) -> Self {
        self.covariance_type = c;
        self
    }
    /// Sets the tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Sets the covariance regularization.
    pub fn reg_covar(mut self, r: f64) -> Self {
        self.reg_covar = r;
        self
    }
    /// Sets the iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.n_components >= 1,
            "n_components",
            self.n_components as f64,
            ">= 1",
        )?;
        param(
            self.tol >= 0.0 && self.tol.is_finite(),
            "tol",
            self.tol,
            ">= 0",
        )?;
        param(
            self.reg_covar >= 0.0 && self.reg_covar.is_finite(),
            "reg_covar",
            self.reg_covar,
            ">= 0",
        )?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")
    }

    /// Runs EM from the given parameters: `weights` (`k`), `means` (`k x d`) and
    /// `covariances` (`k x d x d` for `Full`, `k x d` for `Diag`).
    pub fn fit_from<T: Scalar>(
        &self,
        x: MatRef<'_, T>,
        weights: &[f64],
        means: &[f64],
        covariances: &[f64],
    ) -> Result<FittedGaussianMixture<T>> {
        self.validate()?;
        check_x(x, "GaussianMixture::fit_from")?;
        let (d, k) = (x.cols(), self.n_components);
        let clen = match self.covariance_type {
            CovarianceType::Full => k * d * d,
            CovarianceType::Diag => k * d,
        };
        for (what, len, want) in [
            ("weights", weights.len(), k),
            ("means", means.len(), k * d),
            ("covariances", covariances.len(), clen),
        ] {
            if len != want {
                return Err(Error::Core(dl_core::Error::LengthMismatch {
                    op: "GaussianMixture::fit_from",
                    what,
                    expected: want,
                    actual: len,
                }));
            }
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let params = Params::new(
            self.covariance_type,
            weights.to_vec(),
            means.to_vec(),
            covariances.to_vec(),
            d,
        )?;
        self.em(&xf, x.rows(), d, params)
    }

    fn em<T: Scalar>(
        &self,
        x: &[f64],
        n: usize,
        d: usize,
        mut p: Params,
    ) -> Result<FittedGaussianMixture<T>> {
        let k = self.n_components;
        let mut resp = vec![0.0; n * k];
        let mut prev = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        for it in 0..self.max_iter {
            n_iter = it + 1;
            let ll = p.e_step(x, n, &mut resp);
            p = Params::m_step(self.covariance_type, x, n, d, &resp, k, self.reg_covar)?;
            if (ll - prev).abs() < self.tol {
                converged = true;
                break;
            }
            prev = ll;
        }
        let ll = p.e_step(x, n, &mut resp);
        Ok(FittedGaussianMixture {
            n_params: p.n_params(),
            params: p,
            mean_log_likelihood: ll,
            converged,
            n_iter,
            _t: core::marker::PhantomData,
        })
    }
}

/// Mixture parameters plus each component's Cholesky factor (full) or
/// inverse variances (diag), in f64.
#[derive(Clone, Debug)]
struct Params {
    kind: CovarianceType,
    d: usize,
    weights: Vec<f64>,
    means: Vec<f64>,
    covariances: Vec<f64>,
    /// Full: Cholesky factors `L_k`; diag: the variances again.
    factors: Vec<f64>,
    /// `log det Sigma_k`.
    logdets: Vec<f64>,
}

const SINGULAR_HINT: &str = "a component collapsed onto too few points: increase reg_covar";

impl Params {
    fn new(
        kind: CovarianceType,
        weights: Vec<f64>,
        means: Vec<f64>,
        covariances: Vec<f64>,
        d: usize,
    ) -> Result<Self> {
        let k = weights.len();
        let mut factors = covariances.clone();
        let mut logdets = vec![0.0; k];
        for c in 0..k {
            match kind {
                CovarianceType::Full => {
                    let f = &mut factors[c * d * d..(c + 1) * d * d];
                    linalg::cholesky(f, d).map_err(|_| Error::Singular {
                        what: "component covariance",
                        hint: SINGULAR_HINT,
                    })?;
                    logdets[c] = linalg::cholesky_logdet(f, d);
                }
                CovarianceType::Diag => {
                    let v = &factors[c * d..(c + 1) * d];
                    if v.iter().any(|&s| s.is_nan() || s <= 0.0) {
                        return Err(Error::Singular {
                            what: "component variance",
                            hint: SINGULAR_HINT,
                        });
                    }
                    logdets[c] = v.iter().map(|s| libm::log(*s)).sum();
                }
            }
        }
        Ok(Params {
            kind,
            d,
            weights,
            means,
            covariances,
            factors,
            logdets,
        })
    }

    fn n_params(&self) -> usize {
        let (k, d) = (self.weights.len(), self.d);
        let cov = match self.kind {
            CovarianceType::Full => k * d * (d + 1) / 2,
            CovarianceType::Diag => k * d,
        };
        cov + k * d + k - 1
    }

    /// `log w_k + log N(x | k)` for each component.
    fn log_joint(&self, row: &[f64], out: &mut [f64], z: &mut [f64]) {
        let d = self.d;
        let log2pi = libm::log(core::f64::consts::TAU);
        for (c, o) in out.iter_mut().enumerate() {
            let mu = &self.means[c * d..(c + 1) * d];
            for j in 0..d {
                z[j] = row[j] - mu[j];
            }
            let maha = match self.kind {
                CovarianceType::Full => {
                    linalg::solve_lower(&self.factors[c * d * d..(c + 1) * d * d], d, z, 1);
                    linalg::dot(z, z)
                }
                CovarianceType::Diag => {
                    let v = &self.factors[c * d..(c + 1) * d];
                    z.iter().zip(v).map(|(a, s)| a * a / s).sum()
                }
            };
            *o = libm::log(self.weights[c]) - 0.5 * (d as f64 * log2pi + self.logdets[c] + maha);
        }
    }

    /// Fills responsibilities; returns the mean log-likelihood.
    fn e_step(&self, x: &[f64], n: usize, resp: &mut [f64]) -> f64 {
        let k = self.weights.len();
        let mut z = vec![0.0; self.d];
        let mut total = 0.0;
        for (row, r) in x.chunks_exact(self.d).zip(resp.chunks_exact_mut(k)) {
            self.log_joint(row, r, &mut z);
            let lse = linalg::logsumexp(r);
            total += lse;
            r.iter_mut().for_each(|v| *v = libm::exp(*v - lse));
        }
        total / n as f64
    }

    fn m_step(
        kind: CovarianceType,
        x: &[f64],
        n: usize,
        d: usize,
        resp: &[f64],
        k: usize,
        reg: f64,
    ) -> Result<Self> {
        let mut nk = vec![10.0 * f64::EPSILON; k];
        let mut means = vec![0.0; k * d];
        for (row, r) in x.chunks_exact(d).zip(resp.chunks_exact(k)) {
            for c in 0..k {
                nk[c] += r[c];
                for j in 0..d {
                    means[c * d + j] += r[c] * row[j];
                }
            }
        }
        for c in 0..k {
            for j in 0..d {
                means[c * d + j] /= nk[c];
            }
        }
        let clen = if kind == CovarianceType::Full {
            d * d
        } else {
            d
        };
        let mut cov = vec![0.0; k * clen];
        let mut z = vec![0.0; d];
        for (row, r) in x.chunks_exact(d).zip(resp.chunks_exact(k)) {
            for c in 0..k {
                for j in 0..d {
                    z[j] = row[j] - means[c * d + j];
                }
                let cv = &mut cov[c * clen..(c + 1) * clen];
                match kind {
                    CovarianceType::Full => {
                        for a in 0..d {
                            let ra = r[c] * z[a];
                            for b in 0..=a {
                                cv[a * d + b] += ra * z[b];
                            }
                        }
                    }
                    CovarianceType::Diag => {
                        for j in 0..d {
                            cv[j] += r[c] * z[j] * z[j];
                        }
                    }
                }
            }
        }
        for c in 0..k {
            let cv = &mut cov[c * clen..(c + 1) * clen];
            match kind {
                CovarianceType::Full => {
                    for a in 0..d {
                        for b in 0..=a {
                            let v = cv[a * d + b] / nk[c] + if a == b { reg } else { 0.0 };
                            cv[a * d + b] = v;
                            cv[b * d + a] = v;
                        }
                    }
                }
                CovarianceType::Diag => cv.iter_mut().for_each(|v| *v = *v / nk[c] + reg),
            }
        }
        let weights = nk.iter().map(|v| v / n as f64).collect();
        Params::new(kind, weights, means, cov, d)
    }
}

/// A fitted Gaussian mixture.
#[derive(Clone, Debug)]
pub struct FittedGaussianMixture<T> {
    params: Params,
    /// Mean log-likelihood of the training data under the final parameters.
    pub mean_log_likelihood: f64,
    /// Whether `tol` was reached within `max_iter`.
    pub converged: bool,
    /// EM iterations run.
    pub n_iter: usize,
    n_params: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedGaussianMixture<T> {
    /// Mixing weights.
    pub fn weights(&self) -> &[f64] {
        &self.params.weights
    }
    /// Component means, `k x d`.
    pub fn means(&self) -> &[f64] {
        &self.params.means
    }
    /// Covariances, `k x d x d` (full) or `k x d` (diag).
    pub fn covariances(&self) -> &[f64] {
        &self.params.covariances
    }

    /// Mean log-likelihood `sum_i log p(x_i) / n` of `x`.
    pub fn score(&self, x: MatRef<'_, T>) -> Result<f64> {
        check_predict(x, self.params.d, x.rows(), "GaussianMixture::score")?;
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut resp = vec![0.0; x.rows() * self.params.weights.len()];
        Ok(self.params.e_step(&xf, x.rows(), &mut resp))
    }

    /// Bayesian information criterion on `x`: `-2 n score + p ln n`.
    pub fn bic(&self, x: MatRef<'_, T>) -> Result<f64> {
        let n = x.rows() as f64;
        Ok(-2.0 * self.score(x)? * n + self.n_params as f64 * libm::log(n))
    }

    /// Responsibilities `p(k | x_i)`, `rows x k`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.params.d, x.rows(), "GaussianMixture::predict_proba")?;
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut resp = vec![0.0; x.rows() * self.params.weights.len()];
        self.params.e_step(&xf, x.rows(), &mut resp);
        Ok(resp)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedGaussianMixture<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.params.d, out.len(), "GaussianMixture::predict")?;
        let k = self.params.weights.len();
        let mut lj = vec![0.0; k];
        let mut z = vec![0.0; self.params.d];
        let mut row = vec![0.0; self.params.d];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            for (a, b) in row.iter_mut().zip(r) {
                *a = b.to_f64_lossless();
            }
            self.params.log_joint(&row, &mut lj, &mut z);
            *o = argmax(&lj);
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, ()> for GaussianMixture {
    type Fitted = FittedGaussianMixture<T>;
    type Error = Error;

    /// Initializes from a seeded k-means (one run) and runs EM.
    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedGaussianMixture<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "GaussianMixture::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), self.n_components);
        if k > n {
            return Err(Error::TooFewSamples { k, n });
        }
        let km = KMeans::new(k).n_init(1).seed(self.seed).fit(x, &[])?;
        let mut resp = vec![0.0; n * k];
        for (i, &l) in km.labels.iter().enumerate() {
            resp[i * k + l] = 1.0;
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let p = Params::m_step(self.covariance_type, &xf, n, d, &resp, k, self.reg_covar)?;
        self.em(&xf, n, d, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_component_is_the_gaussian_mle() {
        // x = {0, 1, 2, 3}: mean 1.5, variance (ddof 0) 1.25 (+ reg_covar).
        let x = [0.0f64, 1.0, 2.0, 3.0];
        let m = GaussianMixture::new(1)
            .fit(MatRef::new(&x, 4, 1).unwrap(), &[])
            .unwrap();
        assert!((m.means()[0] - 1.5).abs() < 1e-12);
        let var = 1.25 + 1e-6;
        assert!((m.covariances()[0] - var).abs() < 1e-12);
        // Mean log-likelihood of a Gaussian MLE: -0.5 (ln(2 pi var) + 1.25 / var).
        let expect = -0.5 * ((2.0 * core::f64::consts::PI * var).ln() + 1.25 / var);
        assert!((m.mean_log_likelihood - expect).abs() < 1e-12);
    }
}
