//! Gradient boosting (Friedman 2001, "Greedy function approximation"): an additive
//! model of small regression trees, each fitted to the negative gradient of the loss
//! at the current prediction, as scikit-learn's `GradientBoostingClassifier` and
//! `GradientBoostingRegressor` do.
//!
//! Start from the best constant `F_0` (the mean for squared error, the log-odds or
//! log class priors for log loss). For `m = 1..M`: on a subsample of the rows (all of
//! them by default), fit a regression tree to the pseudo-residuals `r_i = y_i - p_i`
//! (`p = F` for regression; `p = sigmoid(F)` or `softmax(F)_k` for classification,
//! one tree per class when there are more than two); give each leaf `R` a Newton
//! step `sum_R r / sum_R p (1 - p)` (times `(K - 1) / K` for `K > 2` classes,
//! Friedman's factor kept by scikit-learn), or the mean residual for squared error;
//! then `F += learning_rate * tree(x)` for every row.
//!
//! Not here: the histogram variant (`HistGradientBoosting`), losses other than squared
//! error and log loss, and early stopping on a validation fraction.
//!
//! ```
//! use dl_classic::gradient_boosting::{GradientBoosting, GradientBoostingRegressor};
//! use dl_core::{Fit, MatRef, Predict};
//! // y = 1 inside (2, 5): no single stump separates it, a few boosted stumps do.
//! let x: Vec<f64> = (0..8).map(|v| v as f64).collect();
//! let y: Vec<usize> = x.iter().map(|&v| (v > 2.0 && v < 5.0) as usize).collect();
//! let xm = MatRef::new(&x, 8, 1).unwrap();
//! let clf = GradientBoosting::new(50).max_depth(Some(1)).fit(xm, &y).unwrap();
//! assert_eq!(clf.predict(xm).unwrap(), y);
//! // Regression: the training error falls stage by stage.
//! let t: Vec<f64> = x.iter().map(|v| v * v).collect();
//! let reg = GradientBoostingRegressor::default().fit(xm, &t).unwrap();
//! assert!(reg.train_loss[99] < 1e-3 * reg.train_loss[0]);
//! ```

use crate::error::{
    check_learning_rate, check_n_estimators, check_predict, check_xy, param, Error, Result,
};
use crate::knn::{argmax, encode_labels};
use crate::tree::{ensemble_importances, to_f64, Columns, Criterion, DecisionTree, Target, Tree};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// Gradient-boosting hyper-parameters; fits a classifier ([`Fit`] with `usize`
/// labels). [`GradientBoostingRegressor`] wraps the same settings for real targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientBoosting {
    /// Boosting stages (>= 1); a stage fits one tree per class (one for two
    /// classes or for regression).
    pub n_estimators: usize,
    /// Shrinks each tree's contribution (> 0).
    pub learning_rate: f64,
    /// Fraction of the rows each stage's tree sees, drawn without replacement
    /// (0 < subsample <= 1; below 1 is stochastic gradient boosting).
    pub subsample: f64,
    /// The regression tree of every stage (criterion [`Criterion::Mse`]).
    pub tree: DecisionTree,
    /// Seed of the subsamples and the trees' feature orders.
    pub seed: u64,
}

impl Default for GradientBoosting {
    /// scikit-learn's defaults: 100 stages of depth-3 trees, learning rate 0.1, no
    /// subsampling.
    fn default() -> Self {
        GradientBoosting {
            n_estimators: 100,
            learning_rate: 0.1,
            subsample: 1.0,
            tree: DecisionTree::regressor().0.max_depth(Some(3)),
            seed: 0,
        }
    }
}

impl GradientBoosting {
    /// Defaults with `n` stages.
    pub fn new(n: usize) -> Self {
        GradientBoosting {
            n_estimators: n,
            ..Default::default()
        }
    }
    /// Sets the learning rate.
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.learning_rate = v;
        self
    }
    /// Sets the row fraction per stage.
    pub fn subsample(mut self, v: f64) -> Self {
        self.subsample = v;
        self
    }
    /// Sets the maximum depth of every tree.
    pub fn max_depth(mut self, d: Option<usize>) -> Self {
        self.tree = self.tree.max_depth(d);
        self
    }
    /// Sets the stage tree (its criterion must be [`Criterion::Mse`]).
    pub fn tree(mut self, t: DecisionTree) -> Self {
        self.tree = t;
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
        check_learning_rate(self.learning_rate)?;
        param(
            self.subsample > 0.0 && self.subsample <= 1.0,
            "subsample",
            self.subsample,
            "0 < subsample <= 1",
        )?;
        self.tree.validate()?;
        param(
            self.tree.criterion == Criterion::Mse,
            "tree.criterion",
            0.0,
            "Mse (stage trees are regression trees on pseudo-residuals)",
        )
    }

    /// This stage's rows as 0/1 weights.
    fn draw_rows(&self, rng: &mut Rng, w: &mut [f64], order: &mut Vec<usize>) {
        if self.subsample >= 1.0 {
            w.fill(1.0);
            return;
        }
        let n = w.len();
        let m = ((self.subsample * n as f64) as usize).max(1);
        order.clear();
        order.extend(0..n);
        rng.shuffle(order);
        w.fill(0.0);
        for &i in &order[..m] {
            w[i] = 1.0;
        }
    }

    /// Fits one stage tree to `residual` on the rows with `w > 0`; with a
    /// `hessian`, each leaf gets the Newton step `factor * sum r / sum h` over its
    /// rows instead of the mean residual. Returns the tree and each row's leaf.
    fn stage(
        &self,
        x: &[f64],
        cols: &Columns,
        residual: &[f64],
        newton: Option<(&[f64], f64)>,
        w: &[f64],
        seed: u64,
    ) -> (Tree, Vec<usize>) {
        let n = residual.len();
        let mut tree = self
            .tree
            .seed(seed)
            .fit_columns(cols, Target::Values(residual), w);
        let leaf: Vec<usize> = x.chunks_exact(cols.d).map(|r| tree.leaf_of(r)).collect();
        if let Some((hessian, factor)) = newton {
            let leaves = tree.n_leaves();
            let (mut num, mut den) = (vec![0.0; leaves], vec![0.0; leaves]);
            for i in 0..n {
                num[leaf[i]] += w[i] * residual[i];
                den[leaf[i]] += w[i] * hessian[i];
            }
            for l in 0..leaves {
                // A pure leaf has zero curvature: scikit-learn's safe divide gives 0.
                let step = if den[l] == 0.0 {
                    0.0
                } else {
                    factor * num[l] / den[l]
                };
                tree.set_leaf_value(l, step);
            }
        }
        (tree, leaf)
    }
}

/// `ln(1 + e^v)` without overflow.
fn softplus(v: f64) -> f64 {
    if v > 0.0 {
        v + libm::log1p(libm::exp(-v))
    } else {
        libm::log1p(libm::exp(v))
    }
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + libm::exp(-v))
    } else {
        let e = libm::exp(v);
        e / (1.0 + e)
    }
}

/// Softmax of `raw` into `out`; returns `ln sum exp(raw)`.
fn softmax(raw: &[f64], out: &mut [f64]) -> f64 {
    let m = raw.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0;
    for (o, &r) in out.iter_mut().zip(raw) {
        *o = libm::exp(r - m);
        s += *o;
    }
    out.iter_mut().for_each(|o| *o /= s);
    m + libm::log(s)
}

/// A fitted gradient-boosting classifier.
#[derive(Clone, Debug)]
pub struct FittedGradientBoostingClassifier<T> {
    /// The stage trees, stage-major: `trees[m * outputs + k]` is stage `m`'s tree
    /// for output `k` (one output for two classes, `K` otherwise).
    pub trees: Vec<Tree>,
    /// The starting raw scores `F_0`, one per output.
    pub init: Vec<f64>,
    /// The learning rate the trees were fitted with.
    pub learning_rate: f64,
    /// Labels in class-index order.
    pub classes: Vec<usize>,
    /// Mean log loss on the training rows after each stage (scikit-learn's
    /// `train_score_` when `subsample` is 1).
    pub train_loss: Vec<f64>,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedGradientBoostingClassifier<T> {
    /// Raw scores per output (rows x 1 log-odds of the second class for two classes,
    /// rows x K otherwise).
    fn raw_row(&self, r: &[T], out: &mut [f64]) {
        out.copy_from_slice(&self.init);
        let k = out.len();
        for (j, t) in self.trees.iter().enumerate() {
            out[j % k] += self.learning_rate * t.leaf_values(r)[0];
        }
    }

    /// Mean decrease in impurity (squared error on the pseudo-residuals) per
    /// feature over all stage trees, summing to 1 (scikit-learn's
    /// `feature_importances_`).
    pub fn feature_importances(&self) -> Vec<f64> {
        ensemble_importances(&self.trees, self.n_features, false)
    }

    fn outputs(&self) -> usize {
        self.init.len()
    }

    /// Raw scores, `rows x outputs` (scikit-learn's `decision_function`): the
    /// log-odds of the second class for two classes, one score per class otherwise.
    pub fn decision_function(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(
            x,
            self.n_features,
            x.rows(),
            "GradientBoosting::decision_function",
        )?;
        let k = self.outputs();
        let mut out = vec![0.0; x.rows() * k];
        for (r, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.raw_row(r, o);
        }
        Ok(out)
    }

    /// Class probabilities, `rows x n_classes`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(
            x,
            self.n_features,
            x.rows(),
            "GradientBoosting::predict_proba",
        )?;
        let (k, c) = (self.outputs(), self.classes.len());
        let mut raw = vec![0.0; k];
        let mut out = vec![0.0; x.rows() * c];
        for (r, o) in x.iter_rows().zip(out.chunks_exact_mut(c)) {
            self.raw_row(r, &mut raw);
            if k == 1 {
                o[1] = sigmoid(raw[0]);
                o[0] = 1.0 - o[1];
            } else {
                softmax(&raw, o);
            }
        }
        Ok(out)
    }
}

impl<T: Scalar> Predict<T, usize> for FittedGradientBoostingClassifier<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "GradientBoosting::predict")?;
        let mut raw = vec![0.0; self.outputs()];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            self.raw_row(r, &mut raw);
            let c = if raw.len() == 1 {
                (raw[0] > 0.0) as usize
            } else {
                argmax(&raw)
            };
            *o = self.classes[c];
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, usize> for GradientBoosting {
    type Fitted = FittedGradientBoostingClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        const OP: &str = "GradientBoosting::fit";
        self.validate()?;
        check_xy(x, y.len(), OP)?;
        let (classes, yi) = encode_labels(y);
        let (n, d, c) = (x.rows(), x.cols(), classes.len());
        if c < 2 {
            return Err(Error::SingleClass { op: OP });
        }
        let k = if c == 2 { 1 } else { c };
        let mut prior = vec![0.0; c];
        yi.iter().for_each(|&v| prior[v] += 1.0 / n as f64);
        let init: Vec<f64> = if k == 1 {
            vec![libm::log(prior[1] / prior[0])]
        } else {
            prior.iter().map(|&p| libm::log(p)).collect()
        };
        let xf = to_f64(x);
        // Every stage fits to the same rows: lay them out and sort them once.
        let cols = Columns::presorted(&xf, n, d);
        let mut raw: Vec<f64> = (0..n).flat_map(|_| init.iter().copied()).collect();
        let mut prob = vec![0.0; n * k];
        // Class-major: column j of the pseudo-residuals is residual[j * n..][..n].
        let (mut residual, mut hessian) = (vec![0.0; n * k], vec![0.0; n * k]);
        let mut w = vec![1.0; n];
        let mut order = Vec::new();
        let mut rng = Rng::seed_from_u64(self.seed);
        let factor = if k == 1 {
            1.0
        } else {
            (k - 1) as f64 / k as f64
        };
        let mut trees = Vec::with_capacity(self.n_estimators * k);
        let mut train_loss = Vec::with_capacity(self.n_estimators);
        for m in 0..self.n_estimators {
            self.draw_rows(&mut rng, &mut w, &mut order);
            // Every tree of a stage sees the probabilities from the stage's start.
            for (p, r) in prob.chunks_exact_mut(k).zip(raw.chunks_exact(k)) {
                if k == 1 {
                    p[0] = sigmoid(r[0]);
                } else {
                    softmax(r, p);
                }
            }
            for j in 0..k {
                let target = if k == 1 { 1 } else { j };
                for i in 0..n {
                    let p = prob[i * k + j];
                    residual[j * n + i] = (yi[i] == target) as usize as f64 - p;
                    hessian[j * n + i] = p * (1.0 - p);
                }
            }
            let seeds: Vec<u64> = (0..k).map(|_| rng.next_u64()).collect();
            // The K trees of a stage are independent: fit them on rayon's threads
            // (each from its own seed, so the result does not depend on how many).
            let grow = |j: usize| {
                let (r, h) = (&residual[j * n..][..n], &hessian[j * n..][..n]);
                self.stage(&xf, &cols, r, Some((h, factor)), &w, seeds[j])
            };
            #[cfg(feature = "std")]
            let grown: Vec<(Tree, Vec<usize>)> = {
                use rayon::prelude::*;
                (0..k).into_par_iter().map(grow).collect()
            };
            #[cfg(not(feature = "std"))]
            let grown: Vec<(Tree, Vec<usize>)> = (0..k).map(grow).collect();
            for (j, (tree, leaf)) in grown.into_iter().enumerate() {
                for (i, &l) in leaf.iter().enumerate() {
                    raw[i * k + j] += self.learning_rate * tree.leaf_value(l);
                }
                trees.push(tree);
            }
            let loss = raw
                .chunks_exact(k)
                .zip(&yi)
                .map(|(r, &t)| {
                    if k == 1 {
                        softplus(r[0]) - t as f64 * r[0]
                    } else {
                        softmax(r, &mut prob[..k]) - r[t]
                    }
                })
                .sum::<f64>()
                / n as f64;
            if !loss.is_finite() {
                return Err(Error::Diverged {
                    op: OP,
                    iteration: m,
                });
            }
            train_loss.push(loss);
        }
        Ok(FittedGradientBoostingClassifier {
            trees,
            init,
            learning_rate: self.learning_rate,
            classes,
            train_loss,
            n_features: d,
            _t: core::marker::PhantomData,
        })
    }
}

/// Gradient boosting for real targets with squared error: [`GradientBoosting`]
/// settings, a separate type because the classifier already implements `Fit` with
/// `usize` targets.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradientBoostingRegressor(pub GradientBoosting);

impl GradientBoostingRegressor {
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.0.validate()
    }
}

/// A fitted gradient-boosting regressor.
#[derive(Clone, Debug)]
pub struct FittedGradientBoostingRegressor<T> {
    /// The stage trees in order.
    pub trees: Vec<Tree>,
    /// The starting prediction `F_0`, the mean target.
    pub init: f64,
    /// The learning rate the trees were fitted with.
    pub learning_rate: f64,
    /// Mean squared error on the training rows after each stage (scikit-learn's
    /// `train_score_` when `subsample` is 1).
    pub train_loss: Vec<f64>,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, T> for GradientBoostingRegressor {
    type Fitted = FittedGradientBoostingRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        const OP: &str = "GradientBoostingRegressor::fit";
        let gb = &self.0;
        self.validate()?;
        check_xy(x, y.len(), OP)?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        let (n, d) = (x.rows(), x.cols());
        let yf: Vec<f64> = y.iter().map(|v| v.to_f64_lossless()).collect();
        let init = yf.iter().sum::<f64>() / n as f64;
        let xf = to_f64(x);
        // Every stage fits to the same rows: lay them out and sort them once.
        let cols = Columns::presorted(&xf, n, d);
        let mut raw = vec![init; n];
        let mut residual = vec![0.0; n];
        let mut w = vec![1.0; n];
        let mut order = Vec::new();
        let mut rng = Rng::seed_from_u64(gb.seed);
        let mut trees = Vec::with_capacity(gb.n_estimators);
        let mut train_loss = Vec::with_capacity(gb.n_estimators);
        for m in 0..gb.n_estimators {
            gb.draw_rows(&mut rng, &mut w, &mut order);
            for i in 0..n {
                residual[i] = yf[i] - raw[i];
            }
            let (tree, leaf) = gb.stage(&xf, &cols, &residual, None, &w, rng.next_u64());
            for (f, &l) in raw.iter_mut().zip(&leaf) {
                *f += gb.learning_rate * tree.leaf_value(l);
            }
            trees.push(tree);
            let mse = yf
                .iter()
                .zip(&raw)
                .map(|(t, p)| (t - p) * (t - p))
                .sum::<f64>()
                / n as f64;
            if !mse.is_finite() {
                return Err(Error::Diverged {
                    op: OP,
                    iteration: m,
                });
            }
            train_loss.push(mse);
        }
        Ok(FittedGradientBoostingRegressor {
            trees,
            init,
            learning_rate: gb.learning_rate,
            train_loss,
            n_features: d,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T> FittedGradientBoostingRegressor<T> {
    /// Mean decrease in squared error per feature over all stage trees, summing
    /// to 1 (scikit-learn's `feature_importances_`).
    pub fn feature_importances(&self) -> Vec<f64> {
        ensemble_importances(&self.trees, self.n_features, false)
    }
}

impl<T: Scalar> Predict<T, T> for FittedGradientBoostingRegressor<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(
            x,
            self.n_features,
            out.len(),
            "GradientBoostingRegressor::predict",
        )?;
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            let f = self.trees.iter().fold(self.init, |f, t| {
                f + self.learning_rate * t.leaf_values(r)[0]
            });
            *o = T::from_f64_lossy(f);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stumps(n: usize, lr: f64) -> GradientBoosting {
        GradientBoosting::new(n)
            .learning_rate(lr)
            .max_depth(Some(1))
    }

    #[test]
    fn squared_error_stages_halve_the_residual_by_hand() {
        // F0 = mean = 2; residuals -2,-2,2,2 split at 1.5 into leaf means -2 and 2;
        // with learning rate 0.5: F1 = 1,1,3,3 (MSE 1), F2 = 0.5,0.5,3.5,3.5 (MSE 1/4).
        let x = [0.0f64, 1.0, 2.0, 3.0];
        let y = [0.0f64, 0.0, 4.0, 4.0];
        let mx = MatRef::new(&x, 4, 1).unwrap();
        let m = GradientBoostingRegressor(stumps(2, 0.5))
            .fit(mx, &y)
            .unwrap();
        assert_eq!(m.init, 2.0);
        assert_eq!(m.train_loss, vec![1.0, 0.25]);
        assert_eq!(m.predict(mx).unwrap(), vec![0.5, 0.5, 3.5, 3.5]);
    }

    #[test]
    fn log_loss_leaves_take_the_newton_step_by_hand() {
        // F0 = ln(2/2) = 0, p = 1/2: residuals -1/2,-1/2,1/2,1/2, hessians 1/4; the
        // left leaf's step is (-1) / (1/2) = -2, the right one's 2.
        let x = [0.0f64, 1.0, 2.0, 3.0];
        let y = [0usize, 0, 1, 1];
        let mx = MatRef::new(&x, 4, 1).unwrap();
        let m = stumps(1, 1.0).fit(mx, &y).unwrap();
        assert_eq!(m.decision_function(mx).unwrap(), vec![-2.0, -2.0, 2.0, 2.0]);
        let p = m.predict_proba(mx).unwrap();
        let s2 = 1.0 / (1.0 + (-2.0f64).exp());
        assert!(
            (p[7] - s2).abs() < 1e-15 && (p[0] - s2).abs() < 1e-15,
            "{p:?}"
        );
        let loss = (1.0 + (-2.0f64).exp()).ln();
        assert!((m.train_loss[0] - loss).abs() < 1e-15);
        assert_eq!(m.predict(mx).unwrap(), y.to_vec());
    }

    #[test]
    fn subsampling_is_seeded() {
        let x: Vec<f64> = (0..40).map(|i| ((i * 37) % 40) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| (v * 0.3).sin()).collect();
        let mx = MatRef::new(&x, 40, 1).unwrap();
        let fit = |seed| {
            let gb = GradientBoosting::new(20).subsample(0.5).seed(seed);
            GradientBoostingRegressor(gb)
                .fit(mx, &y)
                .unwrap()
                .train_loss
        };
        assert_eq!(fit(3), fit(3));
        assert_ne!(fit(3), fit(4));
    }
}
