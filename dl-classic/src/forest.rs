//! Random forests (Breiman 2001): many CART trees, each grown on a bootstrap sample
//! and trying only a random subset of `max_features` features at each split; the
//! forest predicts the class of largest mean leaf probability
//! ([`RandomForest`]), or the mean of the trees' predictions with regression trees
//! ([`RandomForestRegressor`], out-of-bag score = R^2).
//!
//! - Out-of-bag score: each sample is predicted by the trees whose bootstrap missed
//!   it; `oob_score` is the accuracy of those predictions (samples no tree missed
//!   are skipped, as scikit-learn does).
//! - Determinism: tree `i` draws its bootstrap and feature subsets from a stream
//!   forked from the forest's seed *before* any tree is grown, so the result is the
//!   same whatever the number of threads (under `std`, trees grow in parallel with
//!   rayon).
//!
//! The same machinery (with all features at every split) is bagging; see
//! [`crate::bagging`].

use crate::error::{check_n_estimators, check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use crate::tree::{
    ensemble_importances, to_f64, Criterion, DecisionTree, MaxFeatures, Target, Tree,
};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// Random forest hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomForest {
    /// Number of trees (>= 1).
    pub n_estimators: usize,
    /// Settings of every tree (its `seed` is replaced per tree).
    pub tree: DecisionTree,
    /// Grow each tree on a bootstrap sample (else on all samples).
    pub bootstrap: bool,
    /// Bootstrap size as a fraction of `n`, in `(0, 1]`.
    pub max_samples: f64,
    /// Compute the out-of-bag accuracy (needs `bootstrap`).
    pub oob_score: bool,
    /// Seed of the whole forest.
    pub seed: u64,
}

impl Default for RandomForest {
    /// scikit-learn's defaults: 100 trees, `sqrt(d)` features per split, bootstrap.
    fn default() -> Self {
        RandomForest {
            n_estimators: 100,
            tree: DecisionTree::default().max_features(MaxFeatures::Sqrt),
            bootstrap: true,
            max_samples: 1.0,
            oob_score: false,
            seed: 0,
        }
    }
}

impl RandomForest {
    /// Defaults with `n` trees.
    pub fn new(n: usize) -> Self {
        RandomForest {
            n_estimators: n,
            ..Default::default()
        }
    }
    /// Sets the tree settings.
    pub fn tree(mut self, t: DecisionTree) -> Self {
        self.tree = t;
        self
    }
    /// Sets the features tried per split.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.tree.max_features = m;
        self
    }
    /// Sets bootstrapping.
    pub fn bootstrap(mut self, b: bool) -> Self {
        self.bootstrap = b;
        self
    }
    /// Sets the bootstrap fraction.
    pub fn max_samples(mut self, f: f64) -> Self {
        self.max_samples = f;
        self
    }
    /// Requests the out-of-bag score.
    pub fn oob_score(mut self, b: bool) -> Self {
        self.oob_score = b;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        check_n_estimators(self.n_estimators)?;
        param(
            self.max_samples > 0.0 && self.max_samples <= 1.0,
            "max_samples",
            self.max_samples,
            "(0, 1]",
        )?;
        param(
            !self.oob_score || self.bootstrap,
            "oob_score",
            1.0,
            "needs bootstrap = true",
        )?;
        self.tree.validate()
    }
}

/// A fitted forest (random forest or bagged trees).
#[derive(Clone, Debug)]
pub struct FittedForest<T> {
    /// The trees (leaf values are class probabilities).
    pub trees: Vec<Tree>,
    /// Labels in probability order.
    pub classes: Vec<usize>,
    /// Out-of-bag accuracy, when requested.
    pub oob_score: Option<f64>,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedForest<T> {
    /// Mean decrease in impurity per feature: the trees' importances averaged and
    /// scaled to sum to 1 (scikit-learn's `feature_importances_`).
    pub fn feature_importances(&self) -> Vec<f64> {
        ensemble_importances(&self.trees, self.n_features, true)
    }

    /// Mean of the trees' class probabilities, `rows x n_classes`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.n_features, x.rows(), "Forest::predict_proba")?;
        let k = self.classes.len();
        let mut out = vec![0.0; x.rows() * k];
        for (r, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.proba_row(r, o);
        }
        Ok(out)
    }

    fn proba_row(&self, r: &[T], o: &mut [f64]) {
        o.iter_mut().for_each(|v| *v = 0.0);
        for t in &self.trees {
            for (a, b) in o.iter_mut().zip(t.leaf_values(r)) {
                *a += b;
            }
        }
        let m = self.trees.len() as f64;
        o.iter_mut().for_each(|v| *v /= m);
    }
}

impl<T: Scalar> Predict<T, usize> for FittedForest<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "Forest::predict")?;
        let mut p = vec![0.0; self.classes.len()];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            self.proba_row(r, &mut p);
            *o = self.classes[argmax(&p)];
        }
        Ok(())
    }
}

/// Grows `p.n_estimators` trees on bootstrap samples of the rows of `xf` (`n x d`,
/// already checked), returning each tree with its per-sample bootstrap counts
/// (shared by the classifier, the regressor and bagging).
fn grow_trees(
    p: &RandomForest,
    xf: &[f64],
    n: usize,
    d: usize,
    target: Target<'_>,
) -> Vec<(Tree, Vec<f64>)> {
    let draws = ((p.max_samples * n as f64) as usize).max(1);
    // Per-tree streams are fixed up front: results do not depend on scheduling.
    let mut master = Rng::seed_from_u64(p.seed);
    let seeds: Vec<(Rng, u64)> = (0..p.n_estimators)
        .map(|i| {
            let mut r = master.fork(i as u64);
            let tree_seed = r.next_u64();
            (r, tree_seed)
        })
        .collect();
    let grow = |(mut r, tree_seed): (Rng, u64)| -> (Tree, Vec<f64>) {
        let mut w = vec![0.0; n];
        if p.bootstrap {
            for _ in 0..draws {
                w[r.below(n)] += 1.0;
            }
        } else {
            w.iter_mut().for_each(|v| *v = 1.0);
        }
        let t = p.tree.seed(tree_seed).fit_weighted(xf, n, d, target, &w);
        (t, w)
    };
    #[cfg(feature = "std")]
    {
        use rayon::prelude::*;
        seeds.into_par_iter().map(grow).collect()
    }
    #[cfg(not(feature = "std"))]
    seeds.into_iter().map(grow).collect()
}

/// Sums each tree's leaf values over the samples its bootstrap missed: per sample,
/// `k` summed values and whether any tree missed it.
fn oob_sums(
    grown: &[(Tree, Vec<f64>)],
    xf: &[f64],
    n: usize,
    d: usize,
    k: usize,
) -> (Vec<f64>, Vec<bool>) {
    let mut sums = vec![0.0; n * k];
    let mut seen = vec![false; n];
    for (t, w) in grown {
        for i in 0..n {
            if w[i] == 0.0 {
                seen[i] = true;
                for (a, b) in sums[i * k..(i + 1) * k]
                    .iter_mut()
                    .zip(t.leaf_values(&xf[i * d..(i + 1) * d]))
                {
                    *a += b;
                }
            }
        }
    }
    (sums, seen)
}

/// Grows a classification forest (shared by forests and bagging).
pub(crate) fn fit_forest<T: Scalar>(
    p: &RandomForest,
    x: MatRef<'_, T>,
    y: &[usize],
    op: &'static str,
) -> Result<FittedForest<T>> {
    p.validate()?;
    check_xy(x, y.len(), op)?;
    let (classes, yi) = encode_labels(y);
    let (n, d, k) = (x.rows(), x.cols(), classes.len());
    let xf = to_f64(x);
    let grown = grow_trees(p, &xf, n, d, Target::Classes(&yi, k));
    let oob_score = p.oob_score.then(|| {
        let (votes, seen) = oob_sums(&grown, &xf, n, d, k);
        let scored: Vec<usize> = (0..n).filter(|&i| seen[i]).collect();
        let right = scored
            .iter()
            .filter(|&&i| argmax(&votes[i * k..(i + 1) * k]) == yi[i])
            .count();
        right as f64 / scored.len().max(1) as f64
    });
    Ok(FittedForest {
        trees: grown.into_iter().map(|(t, _)| t).collect(),
        classes,
        oob_score,
        n_features: d,
        _t: core::marker::PhantomData,
    })
}

impl<T: Scalar> Fit<T, usize> for RandomForest {
    type Fitted = FittedForest<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<FittedForest<T>> {
        fit_forest(self, x, y, "RandomForest::fit")
    }
}

/// A random-forest regressor: [`RandomForest`] settings, regression trees (MSE
/// criterion, leaves hold means) and the mean of the trees' predictions (a
/// separate type because the classifier already implements `Fit` with `usize`
/// targets, as for [`crate::tree::DecisionTreeRegressor`]). scikit-learn's
/// `RandomForestRegressor` tries all features at each split by default (`1.0`);
/// [`Self::new`] keeps that default, unlike the classifier's `sqrt(d)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomForestRegressor(pub RandomForest);

impl Default for RandomForestRegressor {
    /// scikit-learn's defaults: 100 trees, all features per split, bootstrap.
    fn default() -> Self {
        RandomForestRegressor(RandomForest::default().tree(DecisionTree::regressor().0))
    }
}

impl RandomForestRegressor {
    /// Defaults with `n` trees.
    pub fn new(n: usize) -> Self {
        let mut f = Self::default();
        f.0.n_estimators = n;
        f
    }
    /// Sets the tree settings (the criterion must be [`Criterion::Mse`]).
    pub fn tree(self, t: DecisionTree) -> Self {
        RandomForestRegressor(self.0.tree(t))
    }
    /// Sets every tree's maximum depth.
    pub fn max_depth(self, d: Option<usize>) -> Self {
        RandomForestRegressor(self.0.tree(self.0.tree.max_depth(d)))
    }
    /// Sets every tree's minimum samples per leaf.
    pub fn min_samples_leaf(self, v: usize) -> Self {
        RandomForestRegressor(self.0.tree(self.0.tree.min_samples_leaf(v)))
    }
    /// Sets the features tried per split.
    pub fn max_features(self, m: MaxFeatures) -> Self {
        RandomForestRegressor(self.0.max_features(m))
    }
    /// Sets bootstrapping.
    pub fn bootstrap(self, b: bool) -> Self {
        RandomForestRegressor(self.0.bootstrap(b))
    }
    /// Sets the bootstrap fraction.
    pub fn max_samples(self, f: f64) -> Self {
        RandomForestRegressor(self.0.max_samples(f))
    }
    /// Requests the out-of-bag R^2.
    pub fn oob_score(self, b: bool) -> Self {
        RandomForestRegressor(self.0.oob_score(b))
    }
    /// Sets the seed.
    pub fn seed(self, s: u64) -> Self {
        RandomForestRegressor(self.0.seed(s))
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.0.validate()?;
        param(
            self.0.tree.criterion == Criterion::Mse,
            "criterion",
            0.0,
            "Mse for regression",
        )
    }
}

/// A fitted random-forest regressor.
#[derive(Clone, Debug)]
pub struct FittedForestRegressor<T> {
    /// The trees (leaf values are means).
    pub trees: Vec<Tree>,
    /// Out-of-bag R^2 (over the samples some tree missed), when requested.
    pub oob_score: Option<f64>,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedForestRegressor<T> {
    /// Mean decrease in impurity (variance) per feature: the trees' importances
    /// averaged and scaled to sum to 1.
    pub fn feature_importances(&self) -> Vec<f64> {
        ensemble_importances(&self.trees, self.n_features, true)
    }
}

impl<T: Scalar> Fit<T, T> for RandomForestRegressor {
    type Fitted = FittedForestRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<FittedForestRegressor<T>> {
        self.validate()?;
        check_xy(x, y.len(), "RandomForestRegressor::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        let (n, d) = (x.rows(), x.cols());
        let xf = to_f64(x);
        let yf: Vec<f64> = y.iter().map(|v| v.to_f64_lossless()).collect();
        let grown = grow_trees(&self.0, &xf, n, d, Target::Values(&yf));
        let oob_score = self.0.oob_score.then(|| {
            let (sums, seen) = oob_sums(&grown, &xf, n, d, 1);
            // Each sample's OOB prediction is the mean over the trees that missed it.
            let mut missed = vec![0.0; n];
            for (_, w) in &grown {
                for (m, &c) in missed.iter_mut().zip(w) {
                    if c == 0.0 {
                        *m += 1.0;
                    }
                }
            }
            let scored: Vec<usize> = (0..n).filter(|&i| seen[i]).collect();
            let mean = scored.iter().map(|&i| yf[i]).sum::<f64>() / scored.len().max(1) as f64;
            let (mut ss_res, mut ss_tot) = (0.0, 0.0);
            for &i in &scored {
                let (r, t) = (yf[i] - sums[i] / missed[i], yf[i] - mean);
                ss_res += r * r;
                ss_tot += t * t;
            }
            1.0 - ss_res / ss_tot
        });
        Ok(FittedForestRegressor {
            trees: grown.into_iter().map(|(t, _)| t).collect(),
            oob_score,
            n_features: d,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T: Scalar> Predict<T, T> for FittedForestRegressor<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(
            x,
            self.n_features,
            out.len(),
            "RandomForestRegressor::predict",
        )?;
        let m = self.trees.len() as f64;
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            let s: f64 = self.trees.iter().map(|t| t.leaf_values(r)[0]).sum();
            *o = T::from_f64_lossy(s / m);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regressor_fits_a_smooth_function_and_reports_oob_r2() {
        let mut rng = Rng::seed_from_u64(4);
        let n = 300;
        let x: Vec<f64> = (0..n * 2).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y: Vec<f64> = x.chunks(2).map(|r| r[0] * r[0] + 0.5 * r[1]).collect();
        let xm = MatRef::new(&x, n, 2).unwrap();
        let f = RandomForestRegressor::new(30).oob_score(true).seed(1);
        let a = f.fit(xm, &y).unwrap();
        assert_eq!(
            a.predict(xm).unwrap(),
            f.fit(xm, &y).unwrap().predict(xm).unwrap()
        );
        // A noise-free smooth target with 300 points: a forest explains most of it
        // out of bag (a broken OOB mean, e.g. not divided by the trees that missed
        // a sample, gives R^2 far below 0).
        let oob = a.oob_score.unwrap();
        assert!(oob > 0.9 && oob < 1.0, "oob {oob}");
    }

    #[test]
    fn regressor_bad_input_gives_named_errors() {
        let x = [0.0f64, 1.0, 2.0, 3.0];
        let xm = MatRef::new(&x, 2, 2).unwrap();
        let y = [0.0f64, 1.0];
        let e = RandomForestRegressor::new(0).fit(xm, &y).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "n_estimators",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = RandomForestRegressor::new(2)
            .tree(DecisionTree::default())
            .fit(xm, &y)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "criterion",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = RandomForestRegressor::new(2)
            .fit(MatRef::new(&[] as &[f64], 0, 2).unwrap(), &[])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyData { .. }), "{e:?}");
        let e = RandomForestRegressor::new(2)
            .fit(xm, &[f64::NAN, 0.0])
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 0, col: 2 }), "{e:?}");
        let bad_x = [0.0f64, 1.0, f64::INFINITY, 3.0];
        let e = RandomForestRegressor::new(2)
            .fit(MatRef::new(&bad_x, 2, 2).unwrap(), &y)
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 1, col: 0 }), "{e:?}");
        let e = RandomForestRegressor::new(2)
            .oob_score(true)
            .bootstrap(false)
            .fit(xm, &y)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "oob_score",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn same_seed_same_forest_and_oob_is_reported() {
        let mut rng = Rng::seed_from_u64(9);
        let n = 200;
        let x: Vec<f64> = (0..n * 3).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y: Vec<usize> = x
            .chunks(3)
            .map(|r| (r[0] + 0.5 * r[1] > 0.0) as usize)
            .collect();
        let f = RandomForest::new(20).oob_score(true).seed(3);
        let a = f.fit(MatRef::new(&x, n, 3).unwrap(), &y).unwrap();
        let b = f.fit(MatRef::new(&x, n, 3).unwrap(), &y).unwrap();
        let pa = a.predict_proba(MatRef::new(&x, n, 3).unwrap()).unwrap();
        let pb = b.predict_proba(MatRef::new(&x, n, 3).unwrap()).unwrap();
        assert_eq!(pa, pb);
        let oob = a.oob_score.unwrap();
        assert!(oob > 0.85 && oob < 1.0, "oob {oob}");
    }
}
