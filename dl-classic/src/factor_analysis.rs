//! Factor analysis: `x = mu + W^T z + e` with `z ~ N(0, I_k)` and
//! `e ~ N(0, diag(psi))`, so `x ~ N(mu, W^T W + diag(psi))`. Fitted by maximum
//! likelihood with scikit-learn's SVD-based iteration (Barber, *Bayesian Reasoning
//! and Machine Learning*, algorithm 21.1):
//!
//! with `S = Xc^T Xc / n` and `D = diag(psi)`, take the top-`k` eigenpairs
//! `(s_j, v_j)` of `D^-1/2 S D^-1/2`; then `W = sqrt(max(s - 1, 0)) V^T D^1/2`,
//! `log L = -n/2 (d ln 2 pi + k + sum_j ln s_j + sum_{j>k} s_j + sum ln psi)`, and
//! `psi = max(var(x) - diag(W^T W), 1e-12)`, until `log L` grows by less than `tol`.

use crate::error::{check_predict, param, Error, Result};
use crate::linalg;
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Scalar};

/// Factor analysis hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FactorAnalysis {
    /// Latent dimension `k` (`1..=d`).
    pub n_components: usize,
    /// Stop when the log-likelihood grows by less than this (> 0).
    pub tol: f64,
    /// Iteration cap (>= 1).
    pub max_iter: usize,
}

impl Default for FactorAnalysis {
    fn default() -> Self {
        FactorAnalysis {
            n_components: 1,
            tol: 1e-2,
            max_iter: 1000,
        }
    }
}

impl FactorAnalysis {
    /// With `k` factors.
    pub fn new(k: usize) -> Self {
        FactorAnalysis {
            n_components: k,
            ..Default::default()
        }
    }
    /// Sets the tolerance.
    pub fn tol(mut self, t: f64) -> Self {
        self.tol = t;
        self
    }
    /// Sets the iteration cap.
    pub fn max_iter(mut self, m: usize) -> Self {
        self.max_iter = m;
        self
    }
    /// Checks every hyper-parameter (the bound `k <= d` is checked at fit).
    pub fn validate(&self) -> Result<()> {
        param(
            self.n_components >= 1,
            "n_components",
            self.n_components as f64,
            ">= 1 and <= n_features",
        )?;
        param(self.tol > 0.0, "tol", self.tol, "> 0")?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")
    }
}

/// A fitted factor analysis model.
#[derive(Clone, Debug)]
pub struct FittedFactorAnalysis<T> {
    /// Feature means.
    pub mean: Vec<f64>,
    /// Loadings `W`, `k x d`.
    pub components: Vec<f64>,
    /// Noise variances `psi`, `d`.
    pub noise_variance: Vec<f64>,
    /// Log-likelihood of the training data at each iteration.
    pub loglike: Vec<f64>,
    k: usize,
    d: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, ()> for FactorAnalysis {
    type Fitted = FittedFactorAnalysis<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedFactorAnalysis<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "FactorAnalysis::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), self.n_components);
        param(k <= d, "n_components", k as f64, ">= 1 and <= n_features")?;
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut mean = vec![0.0; d];
        linalg::col_means(&xf, n, d, &mut mean);
        let mut s = vec![0.0; d * d];
        linalg::covariance(&xf, n, d, &mean, 0, &mut s);
        let var: Vec<f64> = (0..d).map(|j| s[j * d + j]).collect();
        let small = 1e-12;
        let llconst = d as f64 * libm::log(core::f64::consts::TAU) + k as f64;
        let mut psi = vec![1.0; d];
        let mut w = vec![0.0; k * d];
        let mut loglike = Vec::new();
        let mut old = f64::NEG_INFINITY;
        let mut m = vec![0.0; d * d];
        let mut ev = vec![0.0; d];
        let mut vecs = vec![0.0; d * d];
        for _ in 0..self.max_iter {
            let sq: Vec<f64> = psi.iter().map(|p| libm::sqrt(*p) + small).collect();
            for a in 0..d {
                for b in 0..d {
                    m[a * d + b] = s[a * d + b] / (sq[a] * sq[b]);
                }
            }
            linalg::sym_eig(&mut m, d, &mut ev, &mut vecs);
            let mut ll = llconst;
            for j in 0..k {
                ll += libm::log(ev[j]);
                let scale = libm::sqrt((ev[j] - 1.0).max(0.0));
                for c in 0..d {
                    w[j * d + c] = scale * vecs[c * d + j] * sq[c];
                }
            }
            ll += ev[k..].iter().map(|v| v.max(0.0)).sum::<f64>();
            ll += psi.iter().map(|p| libm::log(*p)).sum::<f64>();
            ll *= -(n as f64) / 2.0;
            loglike.push(ll);
            if ll - old < self.tol {
                break;
            }
            old = ll;
            for c in 0..d {
                let ww: f64 = (0..k).map(|j| w[j * d + c] * w[j * d + c]).sum();
                psi[c] = (var[c] - ww).max(small);
            }
        }
        Ok(FittedFactorAnalysis {
            mean,
            components: w,
            noise_variance: psi,
            loglike,
            k,
            d,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T: Scalar> FittedFactorAnalysis<T> {
    /// The model covariance `W^T W + diag(psi)`, `d x d`.
    pub fn covariance(&self) -> Vec<f64> {
        let d = self.d;
        let mut c = vec![0.0; d * d];
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] = (0..self.k)
                    .map(|j| self.components[j * d + a] * self.components[j * d + b])
                    .sum::<f64>();
            }
            c[a * d + a] += self.noise_variance[a];
        }
        c
    }

    /// `log p(x_i)` under the fitted Gaussian, for each row.
    pub fn score_samples(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.d, x.rows(), "FactorAnalysis::score_samples")?;
        let d = self.d;
        let mut l = self.covariance();
        linalg::cholesky(&mut l, d)?;
        let logdet = linalg::cholesky_logdet(&l, d);
        let c = d as f64 * libm::log(core::f64::consts::TAU) + logdet;
        let mut z = vec![0.0; d];
        Ok(x.iter_rows()
            .map(|r| {
                for j in 0..d {
                    z[j] = r[j].to_f64_lossless() - self.mean[j];
                }
                linalg::solve_lower(&l, d, &mut z, 1);
                -0.5 * (linalg::dot(&z, &z) + c)
            })
            .collect())
    }

    /// Mean log-likelihood of `x`.
    pub fn score(&self, x: MatRef<'_, T>) -> Result<f64> {
        let s = self.score_samples(x)?;
        Ok(s.iter().sum::<f64>() / s.len() as f64)
    }

    /// Posterior means of the factors, `E[z | x] = (I + W D^-1 W^T)^-1 W D^-1 (x - mu)`,
    /// `rows x k`.
    pub fn transform(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.d, x.rows(), "FactorAnalysis::transform")?;
        let (d, k) = (self.d, self.k);
        let wp: Vec<f64> = (0..k * d)
            .map(|i| self.components[i] / self.noise_variance[i % d])
            .collect();
        let mut a = vec![0.0; k * k];
        for p in 0..k {
            for q in 0..k {
                a[p * k + q] = (0..d)
                    .map(|c| wp[p * d + c] * self.components[q * d + c])
                    .sum::<f64>()
                    + if p == q { 1.0 } else { 0.0 };
            }
        }
        linalg::cholesky(&mut a, k)?;
        let mut out = vec![0.0; x.rows() * k];
        for (r, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            for p in 0..k {
                o[p] = (0..d)
                    .map(|c| wp[p * d + c] * (r[c].to_f64_lossless() - self.mean[c]))
                    .sum();
            }
            linalg::cholesky_solve(&a, k, o, 1);
        }
        Ok(out)
    }
}
