//! Bayesian optimization: a Gaussian-process surrogate ([`crate::gp`]) and the
//! expected-improvement acquisition, for expensive black-box functions on a box, and
//! [`bayes_search`] to tune an estimator's hyper-parameters by cross-validation.
//!
//! Each step fits the GP to all evaluations so far (inputs scaled to the unit cube,
//! length scale and noise chosen by marginal likelihood on a small grid unless
//! fixed), then evaluates the point maximizing expected improvement
//! `EI(x) = (f_best - mu(x) - xi) Phi(z) + sigma(x) phi(z)`, `z = (f_best - mu - xi) / sigma`
//! (minimization). EI is maximized over random candidates plus Gaussian moves around
//! the best points, refined by a shrinking local search.
//!
//! ```
//! use dl_data::bayes::BayesOpt;
//! // Minimum of (x - 0.3)^2 on [0, 1].
//! let r = BayesOpt { n_evaluations: 12, ..Default::default() }
//!     .minimize(&[(0.0, 1.0)], |x| (x[0] - 0.3) * (x[0] - 0.3))
//!     .unwrap();
//! assert!((r.best_x[0] - 0.3).abs() < 0.05);
//! ```

use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, Predict, Rng, Scalar};

use crate::error::{Error, Result};
use crate::gp::{GaussianProcess, Kernel};
use crate::selection::{cross_val_score, Cv, ParamSpace, SearchResult, Trial};

/// Settings of a Bayesian optimization run.
#[derive(Clone, Debug, PartialEq)]
pub struct BayesOpt {
    /// Total evaluations of the objective, initial ones included.
    pub n_evaluations: usize,
    /// Random initial evaluations before the surrogate is used (>= 2).
    pub n_initial: usize,
    /// Seed for the initial points and the acquisition search.
    pub seed: u64,
    /// Surrogate kernel.
    pub kernel: Kernel,
    /// Fixed `(length scale, noise ratio)` in unit-cube coordinates; `None` fits them
    /// on the grid below by marginal likelihood at every step.
    pub fixed_hyper: Option<(f64, f64)>,
    /// Length scales tried when fitting.
    pub length_scales: Vec<f64>,
    /// Noise ratios tried when fitting.
    pub noise_ratios: Vec<f64>,
    /// Exploration margin `xi` of EI, in standardized target units.
    pub xi: f64,
    /// Random candidates scored per acquisition step.
    pub n_candidates: usize,
}

impl Default for BayesOpt {
    fn default() -> Self {
        BayesOpt {
            n_evaluations: 30,
            n_initial: 5,
            seed: 0,
            kernel: Kernel::Matern52,
            fixed_hyper: None,
            length_scales: vec![0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0],
            noise_ratios: vec![1e-6, 1e-4, 1e-2],
            xi: 0.01,
            n_candidates: 2000,
        }
    }
}

/// The evaluations of an optimization run.
#[derive(Clone, Debug, PartialEq)]
pub struct OptResult {
    /// The best point found.
    pub best_x: Vec<f64>,
    /// Its value.
    pub best_y: f64,
    /// Every evaluated point, in order (row-major, `dim` per row).
    pub xs: Vec<f64>,
    /// Every value, in order.
    pub ys: Vec<f64>,
}

impl OptResult {
    fn new(xs: Vec<f64>, ys: Vec<f64>, dim: usize) -> Self {
        let mut b = 0;
        for (i, &y) in ys.iter().enumerate() {
            if y < ys[b] {
                b = i;
            }
        }
        OptResult {
            best_x: xs[b * dim..(b + 1) * dim].to_vec(),
            best_y: ys[b],
            xs,
            ys,
        }
    }

    /// The best value after each evaluation (a convergence trace).
    pub fn best_so_far(&self) -> Vec<f64> {
        let mut best = f64::INFINITY;
        self.ys
            .iter()
            .map(|&y| {
                best = best.min(y);
                best
            })
            .collect()
    }
}

/// Standard normal density and distribution function.
fn phi(z: f64) -> f64 {
    libm::exp(-0.5 * z * z) / libm::sqrt(2.0 * core::f64::consts::PI)
}
fn big_phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / core::f64::consts::SQRT_2)
}

/// Expected improvement below `best` of a normal prediction `(mu, sigma)`.
pub fn expected_improvement(mu: f64, sigma: f64, best: f64, xi: f64) -> f64 {
    let imp = best - mu - xi;
    if sigma <= 1e-12 {
        return imp.max(0.0);
    }
    let z = imp / sigma;
    imp * big_phi(z) + sigma * phi(z)
}

fn check_bounds(bounds: &[(f64, f64)]) -> Result<()> {
    if bounds.is_empty() {
        return Err(Error::Empty {
            op: "BayesOpt::minimize",
            what: "bounds",
        });
    }
    for &(lo, hi) in bounds {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::InvalidParameter {
                op: "BayesOpt::minimize",
                name: "bounds",
                value: hi,
                valid: "finite, lo < hi",
            });
        }
    }
    Ok(())
}

fn to_box(u: &[f64], bounds: &[(f64, f64)], out: &mut [f64]) {
    for ((o, &v), &(lo, hi)) in out.iter_mut().zip(u).zip(bounds) {
        *o = lo + (hi - lo) * v;
    }
}

impl BayesOpt {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, value: f64, valid| {
            Err(Error::InvalidParameter {
                op: "BayesOpt",
                name,
                value,
                valid,
            })
        };
        if self.n_initial < 2 {
            return bad("n_initial", self.n_initial as f64, ">= 2");
        }
        if self.n_evaluations < self.n_initial {
            return bad("n_evaluations", self.n_evaluations as f64, ">= n_initial");
        }
        if self.n_candidates == 0 {
            return bad("n_candidates", 0.0, ">= 1");
        }
        if !(self.xi >= 0.0 && self.xi.is_finite()) {
            return bad("xi", self.xi, ">= 0, finite");
        }
        if self.fixed_hyper.is_none()
            && (self.length_scales.is_empty() || self.noise_ratios.is_empty())
        {
            return bad(
                "length_scales",
                0.0,
                "non-empty grids when fixed_hyper is None",
            );
        }
        Ok(())
    }

    fn surrogate(&self, us: &[f64], dim: usize, ys: &[f64]) -> Result<GaussianProcess> {
        match self.fixed_hyper {
            Some((l, g)) => GaussianProcess::fit(us, dim, ys, self.kernel, l, g),
            None => GaussianProcess::fit_grid(
                us,
                dim,
                ys,
                self.kernel,
                &self.length_scales,
                &self.noise_ratios,
            ),
        }
    }

    /// The unit-cube point maximizing EI under `gp`.
    fn next_point(
        &self,
        gp: &GaussianProcess,
        us: &[f64],
        ys: &[f64],
        dim: usize,
        rng: &mut Rng,
    ) -> Vec<f64> {
        let best = ys.iter().copied().fold(f64::INFINITY, f64::min);
        // EI in standardized units: scale xi by the targets' spread.
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let sd =
            libm::sqrt(ys.iter().map(|y| (y - mean) * (y - mean)).sum::<f64>() / ys.len() as f64)
                .max(1e-12);
        let xi = self.xi * sd;
        let ei = |u: &[f64]| {
            let (m, s) = gp.predict(u);
            expected_improvement(m, s, best, xi)
        };
        // Starting points near the best observations, for local moves.
        let mut ranked: Vec<usize> = (0..ys.len()).collect();
        ranked.sort_by(|&a, &b| {
            ys[a]
                .partial_cmp(&ys[b])
                .unwrap_or(core::cmp::Ordering::Equal)
        });
        let mut cand = vec![0.0; dim];
        let mut best_u = vec![0.5; dim];
        let mut best_ei = f64::NEG_INFINITY;
        for c in 0..self.n_candidates {
            if c % 2 == 0 {
                cand.iter_mut().for_each(|v| *v = rng.next_f64());
            } else {
                let centre = ranked[(c / 2) % ranked.len().min(5)];
                let scale = [0.02, 0.05, 0.15][(c / 2) % 3];
                for (j, v) in cand.iter_mut().enumerate() {
                    *v = (us[centre * dim + j] + rng.normal(0.0, scale)).clamp(0.0, 1.0);
                }
            }
            let e = ei(&cand);
            if e > best_ei {
                best_ei = e;
                best_u.copy_from_slice(&cand);
            }
        }
        // Shrinking local search around the winner.
        let mut step = 0.05;
        for _ in 0..60 {
            for (j, v) in cand.iter_mut().enumerate() {
                *v = (best_u[j] + rng.normal(0.0, step)).clamp(0.0, 1.0);
            }
            let e = ei(&cand);
            if e > best_ei {
                best_ei = e;
                best_u.copy_from_slice(&cand);
            } else {
                step = (step * 0.9).max(1e-4);
            }
        }
        best_u
    }

    /// Minimizes `f` over the box `bounds` (one `(lo, hi)` per dimension).
    pub fn minimize(
        &self,
        bounds: &[(f64, f64)],
        mut f: impl FnMut(&[f64]) -> f64,
    ) -> Result<OptResult> {
        self.validate()?;
        check_bounds(bounds)?;
        let dim = bounds.len();
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut us: Vec<f64> = Vec::with_capacity(self.n_evaluations * dim);
        let mut xs: Vec<f64> = Vec::with_capacity(self.n_evaluations * dim);
        let mut ys: Vec<f64> = Vec::with_capacity(self.n_evaluations);
        let mut x = vec![0.0; dim];
        for i in 0..self.n_evaluations {
            let u: Vec<f64> = if i < self.n_initial {
                (0..dim).map(|_| rng.next_f64()).collect()
            } else {
                let gp = self.surrogate(&us, dim, &ys)?;
                self.next_point(&gp, &us, &ys, dim, &mut rng)
            };
            to_box(&u, bounds, &mut x);
            let y = f(&x);
            if !y.is_finite() {
                return Err(Error::Estimator {
                    stage: "objective",
                    message: alloc::format!("objective returned {y} at {x:?}"),
                });
            }
            us.extend_from_slice(&u);
            xs.extend_from_slice(&x);
            ys.push(y);
        }
        Ok(OptResult::new(xs, ys, dim))
    }
}

/// Random search on a box with the same interface (the baseline BO is compared to).
pub fn random_minimize(
    bounds: &[(f64, f64)],
    n_evaluations: usize,
    seed: u64,
    mut f: impl FnMut(&[f64]) -> f64,
) -> Result<OptResult> {
    check_bounds(bounds)?;
    if n_evaluations == 0 {
        return Err(Error::InvalidParameter {
            op: "random_minimize",
            name: "n_evaluations",
            value: 0.0,
            valid: ">= 1",
        });
    }
    let dim = bounds.len();
    let mut rng = Rng::seed_from_u64(seed);
    let mut xs = Vec::with_capacity(n_evaluations * dim);
    let mut ys = Vec::with_capacity(n_evaluations);
    let mut x = vec![0.0; dim];
    for _ in 0..n_evaluations {
        let u: Vec<f64> = (0..dim).map(|_| rng.next_f64()).collect();
        to_box(&u, bounds, &mut x);
        ys.push(f(&x));
        xs.extend_from_slice(&x);
    }
    Ok(OptResult::new(xs, ys, dim))
}

/// Tunes hyper-parameters by Bayesian optimization of the cross-validation score:
/// each parameter's domain is mapped from the unit interval (log scale for
/// `LogUniform`, rounded for discrete domains) and the negated mean score minimized.
pub fn bayes_search<T, Y, F, B, S>(
    space: &ParamSpace,
    opt: &BayesOpt,
    build: B,
    cv: &Cv<'_, T, Y>,
    scorer: S,
) -> Result<SearchResult>
where
    T: Scalar,
    Y: Clone + Default,
    F: Fit<T, Y>,
    F::Fitted: Predict<T, Y>,
    B: Fn(&crate::selection::Params) -> Result<F>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    space.validate()?;
    let dim = space.params().len();
    let bounds = vec![(0.0, 1.0); dim];
    let mut trials: Vec<Trial> = Vec::new();
    let mut failure: Option<Error> = None;
    opt.minimize(&bounds, |u| {
        if failure.is_some() {
            return 0.0;
        }
        let params = space.from_unit(u);
        let score = build(&params).and_then(|est| cross_val_score(&est, cv, &scorer));
        match score {
            Ok(s) => {
                let v = -s.mean;
                trials.push(Trial { params, score: s });
                v
            }
            Err(e) => {
                failure = Some(e);
                0.0
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(SearchResult::from_trials(trials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_improvement_by_hand() {
        // sigma = 0: improvement itself, clipped at 0.
        assert_eq!(expected_improvement(1.0, 0.0, 3.0, 0.0), 2.0);
        assert_eq!(expected_improvement(4.0, 0.0, 3.0, 0.0), 0.0);
        // mu = best: EI = sigma * phi(0) = sigma / sqrt(2 pi).
        let e = expected_improvement(1.0, 2.0, 1.0, 0.0);
        assert!((e - 2.0 / (2.0 * core::f64::consts::PI).sqrt()).abs() < 1e-12);
        assert!((big_phi(1.96) - 0.975_002_104_851_780).abs() < 1e-12);
    }

    #[test]
    fn settings_are_validated() {
        assert!(BayesOpt {
            n_initial: 1,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(BayesOpt {
            n_evaluations: 3,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(BayesOpt::default()
            .minimize(&[(1.0, 0.0)], |x| x[0])
            .is_err());
    }
}
