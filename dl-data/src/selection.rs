//! Model selection over any [`Fit`] / [`Predict`] pair: k-fold cross-validation
//! scores, and grid and random search over a declared [`ParamSpace`] (Bayesian search
//! is in [`crate::bayes`]). A search maps each parameter set to an estimator with a
//! user closure, so any hyper-parameter struct works:
//!
//! ```
//! use dl_data::selection::{grid_search, Cv, Domain, ParamSpace};
//! use dl_data::{datasets, metrics, split::StratifiedKFold};
//! # use dl_core::{Fit, MatRef, Predict};
//! # /// Predicts the majority class of the training set (or `bias` if larger).
//! # struct Majority { bias: usize }
//! # struct Fitted(usize);
//! # impl Fit<f64, usize> for Majority {
//! #     type Fitted = Fitted; type Error = dl_data::Error;
//! #     fn fit(&self, _x: MatRef<'_, f64>, y: &[usize]) -> Result<Fitted, dl_data::Error> {
//! #         let mut c = [0usize; 3]; for &v in y { c[v] += 1; }
//! #         Ok(Fitted((0..3).max_by_key(|&k| (c[k], k == self.bias)).unwrap()))
//! #     }
//! # }
//! # impl Predict<f64, usize> for Fitted {
//! #     type Error = dl_data::Error;
//! #     fn predict_into(&self, _x: MatRef<'_, f64>, out: &mut [usize]) -> Result<(), dl_data::Error> {
//! #         out.fill(self.0); Ok(())
//! #     }
//! # }
//! let iris = datasets::iris::<f64>().unwrap();
//! let folds = StratifiedKFold::new(5).split(iris.targets()).unwrap();
//! let cv = Cv::new(iris.x(), iris.targets(), &folds).unwrap();
//! let space = ParamSpace::new().add("bias", Domain::Values(vec![0.0, 1.0, 2.0]));
//! let result = grid_search(&space, |p| Ok(Majority { bias: p.get_usize("bias")? }), &cv, metrics::accuracy).unwrap();
//! assert_eq!(result.results.len(), 3);
//! ```

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

use crate::dataset::gather_rows;
use crate::error::{Error, Result};
use crate::split::Fold;

/// Scores of one estimator over the folds.
#[derive(Clone, Debug, PartialEq)]
pub struct CvScore {
    /// One score per fold, in fold order.
    pub scores: Vec<f64>,
    /// Mean of the scores.
    pub mean: f64,
    /// Population standard deviation of the scores (numpy's default `ddof=0`).
    pub std: f64,
}

impl CvScore {
    /// Mean and population standard deviation of `scores`.
    pub fn from_scores(scores: Vec<f64>) -> Self {
        let n = scores.len().max(1) as f64;
        let mean = scores.iter().sum::<f64>() / n;
        let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / n;
        CvScore {
            scores,
            mean,
            std: libm::sqrt(var),
        }
    }
}

/// The data and folds of a cross-validation, checked once.
#[derive(Clone, Copy, Debug)]
pub struct Cv<'a, T, Y> {
    x: MatRef<'a, T>,
    y: &'a [Y],
    folds: &'a [Fold],
}

impl<'a, T: Scalar, Y> Cv<'a, T, Y> {
    /// Checks that `y` has one target per row and every fold index is in range.
    pub fn new(x: MatRef<'a, T>, y: &'a [Y], folds: &'a [Fold]) -> Result<Self> {
        if y.len() != x.rows() {
            return Err(Error::LengthMismatch {
                op: "Cv::new",
                what: "y",
                expected: x.rows(),
                actual: y.len(),
            });
        }
        if folds.is_empty() {
            return Err(Error::Empty {
                op: "Cv::new",
                what: "folds",
            });
        }
        for f in folds {
            if f.train.is_empty() || f.test.is_empty() {
                return Err(Error::Empty {
                    op: "Cv::new",
                    what: "a fold's train or test part",
                });
            }
            if let Some(&i) = f.train.iter().chain(&f.test).find(|&&i| i >= x.rows()) {
                return Err(Error::Core(dl_core::Error::IndexOutOfRange {
                    op: "Cv::new",
                    index: i,
                    bound: x.rows(),
                }));
            }
        }
        Ok(Cv { x, y, folds })
    }
}

pub(crate) fn estimator_err(stage: &'static str, e: impl core::fmt::Display) -> Error {
    Error::Estimator {
        stage,
        message: e.to_string(),
    }
}

/// Fits on each fold's training part and scores on its test part.
///
/// `scorer(y_true, y_pred)` is "higher is better", e.g. [`crate::metrics::accuracy`]
/// (wrap an error metric as its negative, as scikit-learn's `neg_*` scorers do).
pub fn cross_val_score<T, Y, F, S>(estimator: &F, cv: &Cv<'_, T, Y>, scorer: S) -> Result<CvScore>
where
    T: Scalar,
    Y: Clone + Default,
    F: Fit<T, Y>,
    F::Fitted: Predict<T, Y>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    let cols = cv.x.cols();
    let mut scores = Vec::with_capacity(cv.folds.len());
    let (mut xtr, mut xte) = (Vec::new(), Vec::new());
    for fold in cv.folds {
        xtr.resize(fold.train.len() * cols, T::ZERO);
        gather_rows(cv.x.data(), cols, &fold.train, &mut xtr);
        xte.resize(fold.test.len() * cols, T::ZERO);
        gather_rows(cv.x.data(), cols, &fold.test, &mut xte);
        let ytr: Vec<Y> = fold.train.iter().map(|&i| cv.y[i].clone()).collect();
        let yte: Vec<Y> = fold.test.iter().map(|&i| cv.y[i].clone()).collect();
        let model = estimator
            .fit(MatRef::new(&xtr, fold.train.len(), cols)?, &ytr)
            .map_err(|e| estimator_err("fit", e))?;
        let pred = model
            .predict(MatRef::new(&xte, fold.test.len(), cols)?)
            .map_err(|e| estimator_err("predict", e))?;
        scores.push(scorer(&yte, &pred)?);
    }
    Ok(CvScore::from_scores(scores))
}

/// Where a hyper-parameter's values come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Domain {
    /// A finite list (grid search enumerates it; random search picks uniformly).
    Values(Vec<f64>),
    /// Uniform in `[lo, hi]`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Log-uniform in `[lo, hi]` (`lo > 0`): the usual prior for learning rates and
    /// regularization strengths.
    LogUniform {
        /// Lower bound (> 0).
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Integers `lo..=hi`, uniformly.
    IntRange {
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
    },
}

impl Domain {
    fn validate(&self, name: &str) -> Result<()> {
        let bad = |value: f64, valid: &'static str| {
            let _ = name;
            Err(Error::InvalidParameter {
                op: "ParamSpace",
                name: "domain bounds",
                value,
                valid,
            })
        };
        match *self {
            Domain::Values(ref v) if v.is_empty() => bad(0.0, "at least one value"),
            Domain::Values(ref v) if v.iter().any(|x| !x.is_finite()) => {
                bad(f64::NAN, "finite values")
            }
            Domain::Uniform { lo, hi } if !(lo.is_finite() && hi.is_finite() && lo <= hi) => {
                bad(hi, "finite, lo <= hi")
            }
            Domain::LogUniform { lo, hi } if !(lo > 0.0 && hi.is_finite() && lo <= hi) => {
                bad(lo, "0 < lo <= hi, finite")
            }
            Domain::IntRange { lo, hi } if lo > hi => bad(hi as f64, "lo <= hi"),
            _ => Ok(()),
        }
    }

    /// Maps `u` in `[0, 1]` onto the domain (uniform, log-uniform, or an index for
    /// the discrete kinds). Random and Bayesian search both draw through this.
    pub fn from_unit(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        match self {
            Domain::Values(v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)],
            Domain::Uniform { lo, hi } => lo + (hi - lo) * u,
            Domain::LogUniform { lo, hi } => {
                libm::exp(libm::log(*lo) + (libm::log(*hi) - libm::log(*lo)) * u)
            }
            Domain::IntRange { lo, hi } => {
                let span = (hi - lo + 1) as f64;
                (*lo as f64 + libm::floor(u * span)).min(*hi as f64)
            }
        }
    }
}

/// Named hyper-parameters and their domains, in declaration order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamSpace {
    params: Vec<(String, Domain)>,
}

impl ParamSpace {
    /// An empty space.
    pub fn new() -> Self {
        ParamSpace::default()
    }

    /// Adds a parameter (builder style).
    pub fn add(mut self, name: &str, domain: Domain) -> Self {
        self.params.push((String::from(name), domain));
        self
    }

    /// The parameters and their domains.
    pub fn params(&self) -> &[(String, Domain)] {
        &self.params
    }

    /// Checks every domain and that the space is not empty.
    pub fn validate(&self) -> Result<()> {
        if self.params.is_empty() {
            return Err(Error::Empty {
                op: "ParamSpace",
                what: "parameter list",
            });
        }
        for (n, d) in &self.params {
            d.validate(n)?;
        }
        Ok(())
    }

    /// The point with unit coordinates `u` (one per parameter).
    pub fn from_unit(&self, u: &[f64]) -> Params {
        Params {
            entries: self
                .params
                .iter()
                .zip(u)
                .map(|((n, d), &v)| (n.clone(), d.from_unit(v)))
                .collect(),
        }
    }

    /// Every combination of the `Values` / `IntRange` domains, the last parameter
    /// varying fastest (scikit-learn's `ParameterGrid` order for one dict with keys
    /// in declaration order). Continuous domains cannot be enumerated.
    pub fn grid(&self) -> Result<Vec<Params>> {
        self.validate()?;
        let mut lists: Vec<Vec<f64>> = Vec::new();
        for (name, d) in &self.params {
            lists.push(match d {
                Domain::Values(v) => v.clone(),
                Domain::IntRange { lo, hi } => (*lo..=*hi).map(|v| v as f64).collect(),
                _ => {
                    return Err(Error::UnknownParameter {
                        name: format!("{name} (continuous domain: use random or Bayesian search)"),
                    })
                }
            });
        }
        let total: usize = lists.iter().map(|l| l.len()).product();
        let mut out = Vec::with_capacity(total);
        for mut k in 0..total {
            let mut values = alloc::vec![0.0; lists.len()];
            for (j, l) in lists.iter().enumerate().rev() {
                values[j] = l[k % l.len()];
                k /= l.len();
            }
            out.push(Params {
                entries: self
                    .params
                    .iter()
                    .map(|(n, _)| n.clone())
                    .zip(values)
                    .collect(),
            });
        }
        Ok(out)
    }
}

/// One set of hyper-parameter values, by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// `(name, value)` in the space's order.
    pub entries: Vec<(String, f64)>,
}

impl Params {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Result<f64> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
            .ok_or_else(|| Error::UnknownParameter {
                name: String::from(name),
            })
    }

    /// The value of `name` as a non-negative integer (rounded).
    pub fn get_usize(&self, name: &str) -> Result<usize> {
        let v = self.get(name)?;
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::InvalidParameter {
                op: "Params::get_usize",
                name: "value",
                value: v,
                valid: ">= 0",
            });
        }
        Ok(libm::round(v) as usize)
    }
}

impl core::fmt::Display for Params {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

/// One evaluated parameter set.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    /// The parameters.
    pub params: Params,
    /// Their cross-validation score.
    pub score: CvScore,
}

/// The outcome of a search: the best parameters and the full table.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchResult {
    /// Index into `results` of the best trial (highest mean; the first on ties, as
    /// scikit-learn's `best_index_`).
    pub best_index: usize,
    /// Every trial in evaluation order.
    pub results: Vec<Trial>,
}

impl SearchResult {
    /// Builds a result from trials, picking the best.
    pub(crate) fn from_trials(results: Vec<Trial>) -> Self {
        let mut best_index = 0;
        for (i, t) in results.iter().enumerate() {
            if t.score.mean > results[best_index].score.mean {
                best_index = i;
            }
        }
        SearchResult {
            best_index,
            results,
        }
    }

    /// The best parameters.
    pub fn best_params(&self) -> &Params {
        &self.results[self.best_index].params
    }

    /// The best trial's score.
    pub fn best_score(&self) -> &CvScore {
        &self.results[self.best_index].score
    }

    /// The results table as text: rank, mean, std, parameters.
    pub fn table(&self) -> String {
        let mut order: Vec<usize> = (0..self.results.len()).collect();
        // Stable sort keeps evaluation order among equal means.
        order.sort_by(|&a, &b| {
            self.results[b]
                .score
                .mean
                .partial_cmp(&self.results[a].score.mean)
                .unwrap_or(core::cmp::Ordering::Equal)
        });
        let mut s = String::from("rank  mean      std       params\n");
        for (rank, &i) in order.iter().enumerate() {
            let t = &self.results[i];
            let _ = writeln!(
                s,
                "{:<5} {:<9.6} {:<9.6} {}",
                rank + 1,
                t.score.mean,
                t.score.std,
                t.params
            );
        }
        s
    }
}

fn run_trials<T, Y, F, B, S>(
    candidates: Vec<Params>,
    build: B,
    cv: &Cv<'_, T, Y>,
    scorer: S,
) -> Result<SearchResult>
where
    T: Scalar,
    Y: Clone + Default,
    F: Fit<T, Y>,
    F::Fitted: Predict<T, Y>,
    B: Fn(&Params) -> Result<F>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    let mut results = Vec::with_capacity(candidates.len());
    for params in candidates {
        let est = build(&params)?;
        let score = cross_val_score(&est, cv, &scorer)?;
        results.push(Trial { params, score });
    }
    Ok(SearchResult::from_trials(results))
}

/// Cross-validates every combination of the grid (see [`ParamSpace::grid`]).
pub fn grid_search<T, Y, F, B, S>(
    space: &ParamSpace,
    build: B,
    cv: &Cv<'_, T, Y>,
    scorer: S,
) -> Result<SearchResult>
where
    T: Scalar,
    Y: Clone + Default,
    F: Fit<T, Y>,
    F::Fitted: Predict<T, Y>,
    B: Fn(&Params) -> Result<F>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    run_trials(space.grid()?, build, cv, scorer)
}

/// `n_iter` parameter sets drawn from the space (log-uniform where declared) with a
/// seeded generator.
pub fn sample(space: &ParamSpace, n_iter: usize, seed: u64) -> Result<Vec<Params>> {
    space.validate()?;
    let mut rng = Rng::seed_from_u64(seed);
    let mut u = alloc::vec![0.0; space.params().len()];
    Ok((0..n_iter)
        .map(|_| {
            u.iter_mut().for_each(|v| *v = rng.next_f64());
            space.from_unit(&u)
        })
        .collect())
}

/// Cross-validates `n_iter` random parameter sets.
pub fn random_search<T, Y, F, B, S>(
    space: &ParamSpace,
    n_iter: usize,
    seed: u64,
    build: B,
    cv: &Cv<'_, T, Y>,
    scorer: S,
) -> Result<SearchResult>
where
    T: Scalar,
    Y: Clone + Default,
    F: Fit<T, Y>,
    F::Fitted: Predict<T, Y>,
    B: Fn(&Params) -> Result<F>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    if n_iter == 0 {
        return Err(Error::InvalidParameter {
            op: "random_search",
            name: "n_iter",
            value: 0.0,
            valid: ">= 1",
        });
    }
    run_trials(sample(space, n_iter, seed)?, build, cv, scorer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_order_and_sampling() {
        let s = ParamSpace::new()
            .add("a", Domain::Values(alloc::vec![1.0, 2.0]))
            .add("b", Domain::IntRange { lo: 0, hi: 2 });
        let g = s.grid().unwrap();
        let pairs: Vec<(f64, f64)> = g
            .iter()
            .map(|p| (p.get("a").unwrap(), p.get("b").unwrap()))
            .collect();
        assert_eq!(
            pairs,
            alloc::vec![
                (1.0, 0.0),
                (1.0, 1.0),
                (1.0, 2.0),
                (2.0, 0.0),
                (2.0, 1.0),
                (2.0, 2.0)
            ]
        );
        let lr = ParamSpace::new().add("lr", Domain::LogUniform { lo: 1e-4, hi: 1e-1 });
        let xs = sample(&lr, 2000, 1).unwrap();
        // Log-uniform: about a third of the draws in each decade.
        let in_first_decade = xs.iter().filter(|p| p.get("lr").unwrap() < 1e-3).count();
        assert!((600..730).contains(&in_first_decade), "{in_first_decade}");
        assert!(xs
            .iter()
            .all(|p| (1e-4..=1e-1).contains(&p.get("lr").unwrap())));
        assert!(lr.grid().is_err());
        assert!(ParamSpace::new()
            .add("x", Domain::LogUniform { lo: 0.0, hi: 1.0 })
            .validate()
            .is_err());
        assert!(xs[0].get("nope").is_err());
        let c = CvScore::from_scores(alloc::vec![1.0, 3.0]);
        assert_eq!((c.mean, c.std), (2.0, 1.0));
    }
}
