//! Hidden Markov models with discrete or diagonal-Gaussian emissions: the forward
//! and backward algorithms (scaled, Rabiner 1989), Viterbi decoding (log space),
//! sampling, and Baum-Welch (EM) training.
//!
//! A model has `N` states, start probabilities `pi` (`N`), a transition matrix
//! `A` (`N x N`, row `i` = `p(next | i)`) and emissions: a symbol table `B`
//! (`N x M`) or per-state means and variances (`N x d`).
//!
//! - Forward: `alpha_t(j) = b_j(o_t) sum_i alpha_{t-1}(i) a_ij`, normalized each step
//!   by `c_t`; `log p(o) = sum_t log c_t`.
//! - Viterbi: `delta_t(j) = log b_j(o_t) + max_i (delta_{t-1}(i) + log a_ij)`.
//! - Baum-Welch: `gamma_t(i) = p(s_t = i | o)`, `xi_t(i, j) = p(s_t = i, s_{t+1} = j | o)`;
//!   `pi = gamma_1`, `a_ij = sum_t xi_t(i,j) / sum_{t<T} gamma_t(i)`,
//!   `b_j(k) = sum_{t: o_t = k} gamma_t(j) / sum_t gamma_t(j)` (Gaussian: weighted
//!   means and variances + `min_var`). Several sequences are pooled.
//!
//! ```
//! use dl_classic::hmm::{Hmm, Observations};
//! // Wikipedia's healthy/fever example: observations normal, cold, dizzy.
//! let hmm = Hmm::discrete(vec![0.6, 0.4], vec![0.7, 0.3, 0.4, 0.6],
//!                         vec![0.5, 0.4, 0.1, 0.1, 0.3, 0.6], 3).unwrap();
//! let obs = Observations::<f64>::Symbols(&[0, 1, 2]);
//! let (path, logp) = hmm.viterbi(obs).unwrap();
//! assert_eq!(path, vec![0, 0, 1]);
//! assert!((logp.exp() - 0.01512).abs() < 1e-12);
//! ```

use crate::error::{param, Error, Result};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{MatRef, Rng, Scalar};

/// A sequence of observations.
#[derive(Clone, Copy, Debug)]
pub enum Observations<'a, T> {
    /// Symbols `0..M` (discrete emissions).
    Symbols(&'a [usize]),
    /// One row per time step (Gaussian emissions).
    Vectors(MatRef<'a, T>),
}

impl<T: Scalar> Observations<'_, T> {
    fn len(&self) -> usize {
        match self {
            Observations::Symbols(s) => s.len(),
            Observations::Vectors(m) => m.rows(),
        }
    }
}

/// Emission model.
#[derive(Clone, Debug, PartialEq)]
pub enum Emission<T> {
    /// Symbol probabilities `N x M`.
    Discrete {
        /// Row-major `N x M`.
        probs: Vec<T>,
        /// Alphabet size `M`.
        n_symbols: usize,
    },
    /// Diagonal Gaussians.
    Gaussian {
        /// `N x d`.
        means: Vec<T>,
        /// `N x d`, positive.
        vars: Vec<T>,
        /// Dimension `d`.
        dim: usize,
    },
}

/// A hidden Markov model.
#[derive(Clone, Debug, PartialEq)]
pub struct Hmm<T> {
    /// Start probabilities, `N`.
    pub start: Vec<T>,
    /// Transitions, `N x N`, rows sum to 1.
    pub trans: Vec<T>,
    /// Emissions.
    pub emission: Emission<T>,
}

fn check_stochastic<T: Scalar>(
    v: &[T],
    rows: usize,
    cols: usize,
    name: &'static str,
) -> Result<()> {
    for r in v.chunks_exact(cols).take(rows) {
        let s: T = r.iter().copied().sum();
        let ok = r.iter().all(|p| p.is_finite() && *p >= T::ZERO)
            && (s - T::ONE).abs() <= T::from_f64_lossy(1e-4);
        param(
            ok,
            name,
            s.to_f64_lossless(),
            "rows of non-negative probabilities summing to 1",
        )?;
    }
    Ok(())
}

impl<T: Scalar> Hmm<T> {
    /// A discrete-emission HMM; checks sizes and that every row is a distribution.
    pub fn discrete(start: Vec<T>, trans: Vec<T>, emit: Vec<T>, n_symbols: usize) -> Result<Self> {
        let n = start.len();
        if n == 0 || n_symbols == 0 {
            return Err(Error::EmptyData {
                op: "Hmm::discrete",
            });
        }
        param(
            trans.len() == n * n,
            "trans",
            trans.len() as f64,
            "N x N entries",
        )?;
        param(
            emit.len() == n * n_symbols,
            "emit",
            emit.len() as f64,
            "N x M entries",
        )?;
        check_stochastic(&start, 1, n, "start")?;
        check_stochastic(&trans, n, n, "trans")?;
        check_stochastic(&emit, n, n_symbols, "emit")?;
        Ok(Hmm {
            start,
            trans,
            emission: Emission::Discrete {
                probs: emit,
                n_symbols,
            },
        })
    }

    /// A diagonal-Gaussian-emission HMM.
    pub fn gaussian(
        start: Vec<T>,
        trans: Vec<T>,
        means: Vec<T>,
        vars: Vec<T>,
        dim: usize,
    ) -> Result<Self> {
        let n = start.len();
        if n == 0 || dim == 0 {
            return Err(Error::EmptyData {
                op: "Hmm::gaussian",
            });
        }
        param(
            trans.len() == n * n,
            "trans",
            trans.len() as f64,
            "N x N entries",
        )?;
        param(
            means.len() == n * dim,
            "means",
            means.len() as f64,
            "N x d entries",
        )?;
        param(
            vars.len() == n * dim,
            "vars",
            vars.len() as f64,
            "N x d entries",
        )?;
        check_stochastic(&start, 1, n, "start")?;
        check_stochastic(&trans, n, n, "trans")?;
        if let Some(v) = vars
            .iter()
            .find(|v| v.is_nan() || **v <= T::ZERO || !v.is_finite())
        {
            return Err(Error::InvalidParameter {
                name: "vars",
                value: v.to_f64_lossless(),
                valid: "> 0 and finite",
            });
        }
        Ok(Hmm {
            start,
            trans,
            emission: Emission::Gaussian { means, vars, dim },
        })
    }

    /// Number of hidden states.
    pub fn n_states(&self) -> usize {
        self.start.len()
    }

    /// Emission log-likelihoods `log b_j(o_t)`, `T x N`; checks the observations.
    fn log_emissions(&self, obs: Observations<'_, T>) -> Result<Vec<T>> {
        let n = self.n_states();
        let len = obs.len();
        if len == 0 {
            return Err(Error::EmptyData { op: "Hmm" });
        }
        let mut out = vec![T::ZERO; len * n];
        match (&self.emission, obs) {
            (Emission::Discrete { probs, n_symbols }, Observations::Symbols(s)) => {
                for (t, &o) in s.iter().enumerate() {
                    if o >= *n_symbols {
                        return Err(Error::InvalidValue {
                            op: "Hmm",
                            row: t,
                            col: 0,
                            valid: "a symbol < n_symbols",
                        });
                    }
                    for j in 0..n {
                        out[t * n + j] = probs[j * n_symbols + o].ln();
                    }
                }
            }
            (Emission::Gaussian { means, vars, dim }, Observations::Vectors(x)) => {
                crate::error::check_predict(x, *dim, x.rows(), "Hmm")?;
                let half = T::from_f64_lossy(0.5);
                let l2pi = T::from_f64_lossy(libm::log(core::f64::consts::TAU));
                for (t, row) in x.iter_rows().enumerate() {
                    for j in 0..n {
                        let mut s = T::ZERO;
                        for k in 0..*dim {
                            let v = vars[j * dim + k];
                            let z = row[k] - means[j * dim + k];
                            s = s + l2pi + v.ln() + z * z / v;
                        }
                        out[t * n + j] = -half * s;
                    }
                }
            }
            _ => {
                return Err(Error::InvalidParameter {
                    name: "observations",
                    value: 0.0,
                    valid: "symbols for a discrete HMM, vectors for a Gaussian HMM",
                })
            }
        }
        Ok(out)
    }

    /// Scaled forward pass: `(alpha_hat (T x N), log c_t (T))`, each row of
    /// `alpha_hat` summing to 1.
    fn forward_scaled(&self, loge: &[T]) -> (Vec<T>, Vec<T>) {
        let n = self.n_states();
        let len = loge.len() / n;
        let mut alpha = vec![T::ZERO; len * n];
        let mut logc = vec![T::ZERO; len];
        for t in 0..len {
            // Emissions are scaled by their row maximum so tiny densities cannot
            // underflow; the shift is added back into log c_t.
            let row = &loge[t * n..(t + 1) * n];
            let m = row.iter().fold(T::neg_infinity(), |a, b| a.max(*b));
            for j in 0..n {
                let prior = if t == 0 {
                    self.start[j]
                } else {
                    (0..n)
                        .map(|i| alpha[(t - 1) * n + i] * self.trans[i * n + j])
                        .sum()
                };
                alpha[t * n + j] = prior * (row[j] - m).exp();
            }
            let c: T = alpha[t * n..(t + 1) * n].iter().copied().sum();
            for j in 0..n {
                alpha[t * n + j] = alpha[t * n + j] / c;
            }
            logc[t] = c.ln() + m;
        }
        (alpha, logc)
    }

    /// Backward pass with the forward pass's scales: `beta_hat (T x N)`.
    fn backward_scaled(&self, loge: &[T], logc: &[T]) -> Vec<T> {
        let n = self.n_states();
        let len = logc.len();
        let mut beta = vec![T::ZERO; len * n];
        for j in 0..n {
            beta[(len - 1) * n + j] = T::ONE;
        }
        for t in (0..len - 1).rev() {
            let m = loge[(t + 1) * n..(t + 2) * n]
                .iter()
                .fold(T::neg_infinity(), |a, b| a.max(*b));
            // c_{t+1} without the emission shift m.
            let c = (logc[t + 1] - m).exp();
            for i in 0..n {
                let mut s = T::ZERO;
                for j in 0..n {
                    s = s + self.trans[i * n + j]
                        * (loge[(t + 1) * n + j] - m).exp()
                        * beta[(t + 1) * n + j];
                }
                beta[t * n + i] = s / c;
            }
        }
        beta
    }

    /// `log p(o_1..o_T)` by the forward algorithm.
    pub fn log_likelihood(&self, obs: Observations<'_, T>) -> Result<T> {
        let loge = self.log_emissions(obs)?;
        let (_, logc) = self.forward_scaled(&loge);
        Ok(logc.iter().copied().sum())
    }

    /// Forward variables in probability space, `alpha_t(j) = p(o_1..o_t, s_t = j)`,
    /// `T x N` (may underflow for long sequences; use [`Self::log_likelihood`]).
    pub fn forward(&self, obs: Observations<'_, T>) -> Result<Vec<T>> {
        let loge = self.log_emissions(obs)?;
        let (mut alpha, logc) = self.forward_scaled(&loge);
        let n = self.n_states();
        let mut acc = T::ZERO;
        for (t, lc) in logc.iter().enumerate() {
            acc = acc + *lc;
            let s = acc.exp();
            alpha[t * n..(t + 1) * n]
                .iter_mut()
                .for_each(|a| *a = *a * s);
        }
        Ok(alpha)
    }

    /// State posteriors `gamma_t(i) = p(s_t = i | o)`, `T x N`.
    pub fn posteriors(&self, obs: Observations<'_, T>) -> Result<Vec<T>> {
        let loge = self.log_emissions(obs)?;
        let (alpha, logc) = self.forward_scaled(&loge);
        let beta = self.backward_scaled(&loge, &logc);
        Ok(alpha.iter().zip(&beta).map(|(a, b)| *a * *b).collect())
    }

    /// The most likely state path and its log joint probability `log p(o, s*)`.
    pub fn viterbi(&self, obs: Observations<'_, T>) -> Result<(Vec<usize>, T)> {
        let loge = self.log_emissions(obs)?;
        let n = self.n_states();
        let len = loge.len() / n;
        let mut delta = vec![T::ZERO; len * n];
        let mut back = vec![0usize; len * n];
        for j in 0..n {
            delta[j] = self.start[j].ln() + loge[j];
        }
        for t in 1..len {
            for j in 0..n {
                let mut best = (T::neg_infinity(), 0);
                for i in 0..n {
                    let v = delta[(t - 1) * n + i] + self.trans[i * n + j].ln();
                    if v > best.0 {
                        best = (v, i);
                    }
                }
                delta[t * n + j] = best.0 + loge[t * n + j];
                back[t * n + j] = best.1;
            }
        }
        let last = &delta[(len - 1) * n..];
        let mut s = crate::knn::argmax(last);
        let logp = last[s];
        let mut path = vec![0; len];
        for t in (0..len).rev() {
            path[t] = s;
            s = back[t * n + s];
        }
        Ok((path, logp))
    }

    /// Samples `len` steps: `(states, observations)`; observations are symbols for
    /// discrete models (in `.1`) or rows of `.2` (`len x d`) for Gaussian ones.
    pub fn sample(&self, len: usize, rng: &mut Rng) -> (Vec<usize>, Vec<usize>, Vec<T>) {
        let n = self.n_states();
        let draw = |p: &[T], rng: &mut Rng| {
            let u = rng.next_f64();
            let mut acc = 0.0;
            for (i, v) in p.iter().enumerate() {
                acc += v.to_f64_lossless();
                if u < acc {
                    return i;
                }
            }
            p.len() - 1
        };
        let mut states = Vec::with_capacity(len);
        let mut symbols = Vec::new();
        let mut vectors = Vec::new();
        let mut s = draw(&self.start, rng);
        for t in 0..len {
            if t > 0 {
                s = draw(&self.trans[s * n..(s + 1) * n], rng);
            }
            states.push(s);
            match &self.emission {
                Emission::Discrete { probs, n_symbols } => {
                    symbols.push(draw(&probs[s * n_symbols..(s + 1) * n_symbols], rng));
                }
                Emission::Gaussian { means, vars, dim } => {
                    for k in 0..*dim {
                        vectors.push(rng.normal(means[s * dim + k], vars[s * dim + k].sqrt()));
                    }
                }
            }
        }
        (states, symbols, vectors)
    }
}

/// Baum-Welch (EM) training settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaumWelch {
    /// Hidden states `N` (>= 1).
    pub n_states: usize,
    /// EM iterations (>= 1).
    pub max_iter: usize,
    /// Stop when the log-likelihood improves by less than this (>= 0).
    pub tol: f64,
    /// Floor added to Gaussian variances after each M-step (> 0). hmmlearn has no
    /// such floor (its `min_covar` only enters its initialisation; its M-step
    /// regularises through `covars_prior`); `f64::MIN_POSITIVE` here with
    /// `covars_prior = 0` there gives the same plain maximum-likelihood update.
    pub min_var: f64,
    /// Seed of the random initial model.
    pub seed: u64,
}

impl Default for BaumWelch {
    fn default() -> Self {
        BaumWelch {
            n_states: 2,
            max_iter: 500,
            tol: 1e-6,
            min_var: 1e-3,
            seed: 0,
        }
    }
}

/// The result of Baum-Welch.
#[derive(Clone, Debug)]
pub struct FittedHmm<T> {
    /// The trained model.
    pub hmm: Hmm<T>,
    /// Final total log-likelihood of the training sequences.
    pub log_likelihood: f64,
    /// EM iterations run.
    pub n_iter: usize,
    /// Whether `tol` was reached.
    pub converged: bool,
}

impl BaumWelch {
    /// Defaults with `n` states.
    pub fn new(n: usize) -> Self {
        BaumWelch {
            n_states: n,
            ..Default::default()
        }
    }
    /// Sets the iteration cap.
    pub fn max_iter(mut self, v: usize) -> Self {
        self.max_iter = v;
        self
    }
    /// Sets the tolerance.
    pub fn tol(mut self, v: f64) -> Self {
        self.tol = v;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(self.n_states >= 1, "n_states", self.n_states as f64, ">= 1")?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")?;
        param(self.tol >= 0.0, "tol", self.tol, ">= 0")?;
        param(self.min_var > 0.0, "min_var", self.min_var, "> 0")
    }

    fn random_rows<T: Scalar>(rows: usize, cols: usize, rng: &mut Rng) -> Vec<T> {
        let mut v = Vec::with_capacity(rows * cols);
        for _ in 0..rows {
            let r: Vec<f64> = (0..cols).map(|_| 0.5 + rng.next_f64()).collect();
            let s: f64 = r.iter().sum();
            v.extend(r.iter().map(|x| T::from_f64_lossy(x / s)));
        }
        v
    }

    /// Trains a discrete HMM on symbol sequences from a seeded random start.
    pub fn fit_discrete<T: Scalar>(
        &self,
        seqs: &[&[usize]],
        n_symbols: usize,
    ) -> Result<FittedHmm<T>> {
        self.validate()?;
        param(n_symbols >= 1, "n_symbols", n_symbols as f64, ">= 1")?;
        let mut rng = Rng::seed_from_u64(self.seed);
        let n = self.n_states;
        let init = Hmm::discrete(
            Self::random_rows(1, n, &mut rng),
            Self::random_rows(n, n, &mut rng),
            Self::random_rows(n, n_symbols, &mut rng),
            n_symbols,
        )?;
        let obs: Vec<Observations<'_, T>> = seqs.iter().map(|s| Observations::Symbols(s)).collect();
        self.fit_from(init, &obs)
    }

    /// Trains a Gaussian HMM on one sequence of rows from a seeded start (means at
    /// random rows, variances at the data variance).
    pub fn fit_gaussian<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<FittedHmm<T>> {
        self.validate()?;
        crate::error::check_x(x, "BaumWelch::fit_gaussian")?;
        let (len, d, n) = (x.rows(), x.cols(), self.n_states);
        if len < n {
            return Err(Error::TooFewSamples { k: n, n: len });
        }
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut means = Vec::with_capacity(n * d);
        for _ in 0..n {
            means.extend_from_slice(x.row(rng.below(len)));
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut mu = vec![0.0; d];
        crate::linalg::col_means(&xf, len, d, &mut mu);
        let var: Vec<T> = (0..d)
            .map(|k| {
                T::from_f64_lossy(
                    (0..len)
                        .map(|t| (xf[t * d + k] - mu[k]) * (xf[t * d + k] - mu[k]))
                        .sum::<f64>()
                        / len as f64
                        + self.min_var,
                )
            })
            .collect();
        let vars = (0..n).flat_map(|_| var.iter().copied()).collect();
        let init = Hmm::gaussian(
            Self::random_rows(1, n, &mut rng),
            Self::random_rows(n, n, &mut rng),
            means,
            vars,
            d,
        )?;
        self.fit_from(init, &[Observations::Vectors(x)])
    }

    /// Runs EM from `init` on the given sequences.
    pub fn fit_from<T: Scalar>(
        &self,
        init: Hmm<T>,
        seqs: &[Observations<'_, T>],
    ) -> Result<FittedHmm<T>> {
        self.validate()?;
        if seqs.is_empty() || seqs.iter().any(|s| s.len() == 0) {
            return Err(Error::EmptyData {
                op: "BaumWelch::fit",
            });
        }
        let mut hmm = init;
        let n = hmm.n_states();
        let mut prev = f64::NEG_INFINITY;
        let mut converged = false;
        let mut n_iter = 0;
        let mut ll = prev;
        for it in 0..self.max_iter {
            n_iter = it + 1;
            // Expected counts, pooled over sequences (f64 accumulators).
            let mut start = vec![0.0; n];
            let mut trans = vec![0.0; n * n];
            let mut occupancy = vec![0.0; n];
            let mut emit_num: Vec<f64> = match &hmm.emission {
                Emission::Discrete { n_symbols, .. } => vec![0.0; n * n_symbols],
                Emission::Gaussian { dim, .. } => vec![0.0; 2 * n * dim],
            };
            ll = 0.0;
            for obs in seqs {
                let loge = hmm.log_emissions(*obs)?;
                let (alpha, logc) = hmm.forward_scaled(&loge);
                let beta = hmm.backward_scaled(&loge, &logc);
                ll += logc.iter().map(|v| v.to_f64_lossless()).sum::<f64>();
                let len = logc.len();
                for t in 0..len {
                    for i in 0..n {
                        let g = (alpha[t * n + i] * beta[t * n + i]).to_f64_lossless();
                        if t == 0 {
                            start[i] += g;
                        }
                        occupancy[i] += g;
                        match (&hmm.emission, obs) {
                            (Emission::Discrete { n_symbols, .. }, Observations::Symbols(s)) => {
                                emit_num[i * n_symbols + s[t]] += g;
                            }
                            (Emission::Gaussian { dim, .. }, Observations::Vectors(x)) => {
                                for (k, v) in x.row(t).iter().enumerate() {
                                    let v = v.to_f64_lossless();
                                    emit_num[i * dim + k] += g * v;
                                    emit_num[n * dim + i * dim + k] += g * v * v;
                                }
                            }
                            _ => {}
                        }
                    }
                    if t + 1 < len {
                        let m = loge[(t + 1) * n..(t + 2) * n]
                            .iter()
                            .fold(T::neg_infinity(), |a, b| a.max(*b));
                        let c = (logc[t + 1] - m).exp();
                        for i in 0..n {
                            for j in 0..n {
                                let xi = alpha[t * n + i]
                                    * hmm.trans[i * n + j]
                                    * (loge[(t + 1) * n + j] - m).exp()
                                    * beta[(t + 1) * n + j]
                                    / c;
                                trans[i * n + j] += xi.to_f64_lossless();
                            }
                        }
                    }
                }
            }
            // M-step.
            let ns = seqs.len() as f64;
            hmm.start = start.iter().map(|v| T::from_f64_lossy(v / ns)).collect();
            for i in 0..n {
                let row: f64 = trans[i * n..(i + 1) * n].iter().sum();
                for j in 0..n {
                    hmm.trans[i * n + j] = T::from_f64_lossy(if row > 0.0 {
                        trans[i * n + j] / row
                    } else {
                        1.0 / n as f64
                    });
                }
            }
            match &mut hmm.emission {
                Emission::Discrete { probs, n_symbols } => {
                    let m = *n_symbols;
                    for i in 0..n {
                        let row: f64 = emit_num[i * m..(i + 1) * m].iter().sum();
                        for k in 0..m {
                            probs[i * m + k] = T::from_f64_lossy(if row > 0.0 {
                                emit_num[i * m + k] / row
                            } else {
                                1.0 / m as f64
                            });
                        }
                    }
                }
                Emission::Gaussian { means, vars, dim } => {
                    let d = *dim;
                    for i in 0..n {
                        let g = occupancy[i].max(f64::MIN_POSITIVE);
                        for k in 0..d {
                            let mu = emit_num[i * d + k] / g;
                            let var =
                                (emit_num[n * d + i * d + k] / g - mu * mu).max(0.0) + self.min_var;
                            means[i * d + k] = T::from_f64_lossy(mu);
                            vars[i * d + k] = T::from_f64_lossy(var);
                        }
                    }
                }
            }
            if (ll - prev).abs() < self.tol {
                converged = true;
                break;
            }
            prev = ll;
        }
        Ok(FittedHmm {
            hmm,
            log_likelihood: ll,
            n_iter,
            converged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wiki() -> Hmm<f64> {
        Hmm::discrete(
            vec![0.6, 0.4],
            vec![0.7, 0.3, 0.4, 0.6],
            vec![0.5, 0.4, 0.1, 0.1, 0.3, 0.6],
            3,
        )
        .unwrap()
    }

    #[test]
    fn forward_and_viterbi_match_hand_computation() {
        // alpha_1 = [0.6*0.5, 0.4*0.1] = [0.3, 0.04]
        // alpha_2 = [(0.3*0.7 + 0.04*0.4)*0.4, (0.3*0.3 + 0.04*0.6)*0.3] = [0.0904, 0.0342]
        // alpha_3 = [(0.0904*0.7 + 0.0342*0.4)*0.1, (0.0904*0.3 + 0.0342*0.6)*0.6]
        //         = [0.007696, 0.028584]; p(o) = 0.03628
        let h = wiki();
        let obs = Observations::Symbols(&[0, 1, 2]);
        let a = h.forward(obs).unwrap();
        let want = [0.3, 0.04, 0.0904, 0.0342, 0.007696, 0.028584];
        for (x, y) in a.iter().zip(want) {
            assert!((x - y).abs() < 1e-12, "{a:?}");
        }
        assert!((h.log_likelihood(obs).unwrap() - 0.03628f64.ln()).abs() < 1e-12);
        // Viterbi: delta_2 = [0.084, 0.027], delta_3 = [0.00588, 0.01512]; path H H F.
        let (path, lp) = h.viterbi(obs).unwrap();
        assert_eq!(path, vec![0, 0, 1]);
        assert!((lp - 0.01512f64.ln()).abs() < 1e-12);
        // Posteriors at t = 3 are alpha_3 / p(o).
        let g = h.posteriors(obs).unwrap();
        assert!((g[4] - 0.007696 / 0.03628).abs() < 1e-12);
        let row_sums: Vec<f64> = g.chunks(2).map(|r| r[0] + r[1]).collect();
        assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
    }
}
