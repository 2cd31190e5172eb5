//! Gaussian-process regression, the surrogate model of Bayesian optimization.
//!
//! Prior `f ~ GP(0, s2 * k(x, x'))` on standardized targets, observation noise
//! `s2 * g` (`g` the noise ratio). With `K = C + g I` (`C` the kernel's correlation
//! matrix) and its Cholesky factor `L`, the posterior at `x*` is
//! `mean = c*^T K^{-1} y`, `var = s2 * (1 - c*^T K^{-1} c*)`. The signal variance has
//! a closed-form maximum-likelihood value `s2 = y^T K^{-1} y / n`, so the log marginal
//! likelihood depends only on the length scale and `g`:
//! `log p(y) = -n/2 log s2 - sum(log L_ii) - n/2 (1 + log 2 pi)`,
//! and [`GaussianProcess::fit_grid`] picks those two by a small grid search on it.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::linalg::{cholesky_in_place, cholesky_solve_in_place, solve_lower_in_place};

/// Covariance function of the distance `r` between inputs, with length scale `l`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Squared exponential: `exp(-r^2 / (2 l^2))`.
    Rbf,
    /// Matern 5/2: `(1 + sqrt5 r/l + 5 r^2 / (3 l^2)) exp(-sqrt5 r/l)` (the usual
    /// choice for Bayesian optimization: less smooth than RBF).
    Matern52,
}

impl Kernel {
    /// The correlation at squared distance `r2`.
    pub fn eval(&self, r2: f64, length_scale: f64) -> f64 {
        match self {
            Kernel::Rbf => libm::exp(-0.5 * r2 / (length_scale * length_scale)),
            Kernel::Matern52 => {
                let s = libm::sqrt(5.0 * r2) / length_scale;
                (1.0 + s + s * s / 3.0) * libm::exp(-s)
            }
        }
    }
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A fitted Gaussian process.
#[derive(Clone, Debug)]
pub struct GaussianProcess {
    kernel: Kernel,
    length_scale: f64,
    noise_ratio: f64,
    signal_var: f64,
    dim: usize,
    x: Vec<f64>,
    chol: Vec<f64>,
    alpha: Vec<f64>,
    y_mean: f64,
    y_scale: f64,
    log_ml: f64,
}

impl GaussianProcess {
    /// Fits with a fixed length scale and noise ratio; `x` is `n x dim` row-major.
    /// The targets are standardized internally.
    pub fn fit(
        x: &[f64],
        dim: usize,
        y: &[f64],
        kernel: Kernel,
        length_scale: f64,
        noise_ratio: f64,
    ) -> Result<Self> {
        let n = y.len();
        if n == 0 || dim == 0 {
            return Err(Error::Empty {
                op: "GaussianProcess::fit",
                what: "observations",
            });
        }
        if x.len() != n * dim {
            return Err(Error::LengthMismatch {
                op: "GaussianProcess::fit",
                what: "x",
                expected: n * dim,
                actual: x.len(),
            });
        }
        if !(length_scale > 0.0 && length_scale.is_finite()) {
            return Err(Error::InvalidParameter {
                op: "GaussianProcess::fit",
                name: "length_scale",
                value: length_scale,
                valid: "> 0, finite",
            });
        }
        if !(noise_ratio >= 0.0 && noise_ratio.is_finite()) {
            return Err(Error::InvalidParameter {
                op: "GaussianProcess::fit",
                name: "noise_ratio",
                value: noise_ratio,
                valid: ">= 0, finite",
            });
        }
        if let Some(index) = y.iter().chain(x).position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "GaussianProcess::fit",
                index,
            });
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean) * (v - y_mean)).sum::<f64>() / n as f64;
        let y_scale = if var > 0.0 { libm::sqrt(var) } else { 1.0 };
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_scale).collect();
        // Jitter grows until the factorization succeeds (duplicate points make C
        // singular when the noise ratio is 0).
        let mut jitter = 0.0;
        let mut chol = vec![0.0; n * n];
        loop {
            for i in 0..n {
                for j in 0..n {
                    chol[i * n + j] = kernel.eval(
                        sq_dist(&x[i * dim..(i + 1) * dim], &x[j * dim..(j + 1) * dim]),
                        length_scale,
                    );
                }
                chol[i * n + i] += noise_ratio + jitter;
            }
            match cholesky_in_place(&mut chol, n) {
                Ok(()) => break,
                Err(e) if jitter > 1e-2 => return Err(e),
                Err(_) => jitter = if jitter == 0.0 { 1e-10 } else { jitter * 10.0 },
            }
        }
        let mut alpha = ys.clone();
        cholesky_solve_in_place(&chol, n, &mut alpha);
        let quad: f64 = ys.iter().zip(&alpha).map(|(a, b)| a * b).sum();
        let signal_var = (quad / n as f64).max(1e-12);
        let log_det_half: f64 = (0..n).map(|i| libm::log(chol[i * n + i])).sum();
        let nf = n as f64;
        let log_ml = -0.5 * nf * libm::log(signal_var)
            - log_det_half
            - 0.5 * nf * (1.0 + libm::log(2.0 * core::f64::consts::PI));
        Ok(GaussianProcess {
            kernel,
            length_scale,
            noise_ratio,
            signal_var,
            dim,
            x: x.to_vec(),
            chol,
            alpha,
            y_mean,
            y_scale,
            log_ml,
        })
    }

    /// Fits every (length scale, noise ratio) pair and keeps the one with the highest
    /// log marginal likelihood.
    pub fn fit_grid(
        x: &[f64],
        dim: usize,
        y: &[f64],
        kernel: Kernel,
        length_scales: &[f64],
        noise_ratios: &[f64],
    ) -> Result<Self> {
        let mut best: Option<GaussianProcess> = None;
        let mut last_err = None;
        for &l in length_scales {
            for &g in noise_ratios {
                match GaussianProcess::fit(x, dim, y, kernel, l, g) {
                    Ok(gp) => {
                        if best.as_ref().is_none_or(|b| gp.log_ml > b.log_ml) {
                            best = Some(gp);
                        }
                    }
                    Err(e) => last_err = Some(e),
                }
            }
        }
        best.ok_or(last_err.unwrap_or(Error::Empty {
            op: "GaussianProcess::fit_grid",
            what: "hyper-parameter grid",
        }))
    }

    /// Posterior mean and standard deviation at `xq` (length `dim`), in the units of
    /// the original targets.
    pub fn predict(&self, xq: &[f64]) -> (f64, f64) {
        let n = self.alpha.len();
        let mut k: Vec<f64> = (0..n)
            .map(|i| {
                self.kernel.eval(
                    sq_dist(&self.x[i * self.dim..(i + 1) * self.dim], xq),
                    self.length_scale,
                )
            })
            .collect();
        let mean: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        solve_lower_in_place(&self.chol, n, &mut k);
        let explained: f64 = k.iter().map(|v| v * v).sum();
        let var = (self.signal_var * (1.0 - explained)).max(0.0);
        (
            self.y_mean + self.y_scale * mean,
            self.y_scale * libm::sqrt(var),
        )
    }

    /// Log marginal likelihood of the standardized targets at the fitted settings.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.log_ml
    }

    /// The fitted `(length scale, noise ratio, signal variance)`.
    pub fn hyper_parameters(&self) -> (f64, f64, f64) {
        (self.length_scale, self.noise_ratio, self.signal_var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_without_noise_and_is_uncertain_far_away() {
        let x = [0.0, 0.5, 1.0];
        let y = [1.0, 3.0, 2.0];
        let gp = GaussianProcess::fit(&x, 1, &y, Kernel::Rbf, 0.3, 0.0).unwrap();
        for (xi, yi) in x.iter().zip(y) {
            let (m, s) = gp.predict(&[*xi]);
            assert!((m - yi).abs() < 1e-6 && s < 1e-3, "{m} {s}");
        }
        let (m, s) = gp.predict(&[10.0]);
        // Far from the data the mean returns to the target mean, 2.0.
        assert!((m - 2.0).abs() < 1e-6 && s > 0.5, "{m} {s}");
        // The matern kernel at r = 0 is 1, and decreases.
        assert_eq!(Kernel::Matern52.eval(0.0, 1.0), 1.0);
        assert!(Kernel::Matern52.eval(1.0, 1.0) < Kernel::Matern52.eval(0.25, 1.0));
        assert!(GaussianProcess::fit(&x, 1, &y, Kernel::Rbf, 0.0, 0.0).is_err());
    }

    #[test]
    fn grid_prefers_the_generating_length_scale() {
        // Smooth data (a slow sine) favours a long length scale over a short one.
        let x: Vec<f64> = (0..20).map(|i| i as f64 / 19.0).collect();
        let y: Vec<f64> = x.iter().map(|v| libm::sin(3.0 * v)).collect();
        let gp = GaussianProcess::fit_grid(&x, 1, &y, Kernel::Rbf, &[0.02, 0.5], &[1e-6]).unwrap();
        assert_eq!(gp.hyper_parameters().0, 0.5);
    }
}
