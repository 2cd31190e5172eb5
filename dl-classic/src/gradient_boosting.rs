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
//! Regression also takes absolute error (leaves: median residual), Huber loss
//! (robust to outliers) and the pinball loss of a quantile (prediction intervals);
//! see [`RegressionLoss`]. Early stopping on held-out rows, staged predictions and
//! impurity feature importances are as in scikit-learn.
//!
//! Not here: the histogram variant (`HistGradientBoosting`) and the exponential
//! (AdaBoost) loss.
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
    /// Seed of the subsamples, the validation split and the trees' feature orders.
    pub seed: u64,
    /// Stop adding stages when the loss on a held-out part of the training rows
    /// stops improving (`None`: always fit `n_estimators` stages).
    pub early_stopping: Option<EarlyStopping>,
}

/// Early stopping on held-out rows, as scikit-learn's `n_iter_no_change`,
/// `validation_fraction` and `tol`: after each stage, the validation loss must beat
/// one of the last `n_iter_no_change` recorded losses by more than `tol`, or
/// boosting stops (keeping that stage).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Stages without improvement before stopping (>= 1).
    pub n_iter_no_change: usize,
    /// Fraction of the rows held out, stratified by class for classifiers
    /// (0 < fraction < 1).
    pub validation_fraction: f64,
    /// Minimum improvement (>= 0).
    pub tol: f64,
}

impl Default for EarlyStopping {
    /// scikit-learn's defaults once `n_iter_no_change` is set: 10 stages, 10% held
    /// out, tolerance 1e-4.
    fn default() -> Self {
        EarlyStopping {
            n_iter_no_change: 10,
            validation_fraction: 0.1,
            tol: 1e-4,
        }
    }
}

impl EarlyStopping {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        param(
            self.n_iter_no_change >= 1,
            "early_stopping.n_iter_no_change",
            self.n_iter_no_change as f64,
            ">= 1",
        )?;
        param(
            self.validation_fraction > 0.0 && self.validation_fraction < 1.0,
            "early_stopping.validation_fraction",
            self.validation_fraction,
            "0 < fraction < 1",
        )?;
        param(
            self.tol >= 0.0 && self.tol.is_finite(),
            "early_stopping.tol",
            self.tol,
            ">= 0",
        )
    }
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
            early_stopping: None,
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
    /// Turns early stopping on (or off with `None`).
    pub fn early_stopping(mut self, e: Option<EarlyStopping>) -> Self {
        self.early_stopping = e;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        check_n_estimators(self.n_estimators)?;
        check_learning_rate(self.learning_rate)?;
        if let Some(e) = self.early_stopping {
            e.validate()?;
        }
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

    /// Fits one stage tree to `residual` on the rows with `w > 0`, gives its leaves
    /// the values of `update` (computed on those rows), and returns it with each
    /// row's leaf.
    fn stage(
        &self,
        x: &[f64],
        cols: &Columns,
        residual: &[f64],
        update: LeafUpdate<'_>,
        w: &[f64],
        seed: u64,
    ) -> (Tree, Vec<usize>) {
        let n = residual.len();
        let mut tree = self
            .tree
            .seed(seed)
            .fit_columns(cols, Target::Values(residual), w);
        let leaf: Vec<usize> = x.chunks_exact(cols.d).map(|r| tree.leaf_of(r)).collect();
        let leaves = tree.n_leaves();
        match update {
            LeafUpdate::Mean => {}
            LeafUpdate::Newton(hessian, factor) => {
                let (mut num, mut den) = (vec![0.0; leaves], vec![0.0; leaves]);
                for i in 0..n {
                    num[leaf[i]] += w[i] * residual[i];
                    den[leaf[i]] += w[i] * hessian[i];
                }
                for l in 0..leaves {
                    // A pure leaf has zero curvature: scikit-learn's safe divide
                    // gives 0.
                    let step = if den[l] == 0.0 {
                        0.0
                    } else {
                        factor * num[l] / den[l]
                    };
                    tree.set_leaf_value(l, step);
                }
            }
            LeafUpdate::Percentile(diff, rank) | LeafUpdate::Huber(diff, rank) => {
                let mut per_leaf: Vec<Vec<f64>> = vec![Vec::new(); leaves];
                for i in (0..n).filter(|&i| w[i] > 0.0) {
                    per_leaf[leaf[i]].push(diff[i]);
                }
                for (l, mut v) in per_leaf.into_iter().enumerate() {
                    let value = match update {
                        LeafUpdate::Huber(_, delta) => huber_location(&mut v, delta),
                        _ => percentile(&mut v, rank),
                    };
                    tree.set_leaf_value(l, value);
                }
            }
        }
        (tree, leaf)
    }
}

/// How a stage tree's leaves get their values, on the leaf's in-bag rows.
#[derive(Clone, Copy)]
enum LeafUpdate<'a> {
    /// The tree's own value, the mean residual (squared error).
    Mean,
    /// One Newton step `factor * sum r / sum h` (log loss; hessians given).
    Newton(&'a [f64], f64),
    /// The percentile `rank` of `y - raw` (absolute error: 50; quantile loss).
    Percentile(&'a [f64], f64),
    /// Huber's location step on `y - raw` with this `delta`.
    Huber(&'a [f64], f64),
}

/// scikit-learn's `_weighted_percentile` with unit weights (NumPy's
/// "inverted_cdf"): the smallest value whose share of the sorted values reaches
/// `rank` percent. Sorts `v`; `v` must not be empty.
fn percentile(v: &mut [f64], rank: f64) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let target = rank / 100.0 * v.len() as f64;
    // The first index whose cumulative count (index + 1) is >= target; a target of
    // 0 selects the first value.
    let i = (libm::ceil(target) as usize).saturating_sub(1);
    v[i.min(v.len() - 1)]
}

/// NumPy's default `percentile` (linear interpolation between the two closest
/// ranks), which scikit-learn's initial quantile estimate uses. Sorts `v`.
fn percentile_linear(v: &mut [f64], rank: f64) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    let at = (v.len() - 1) as f64 * (rank / 100.0);
    let lo = (libm::floor(at) as usize).min(v.len() - 1);
    let t = at - lo as f64;
    let (a, b) = (v[lo], v[(lo + 1).min(v.len() - 1)]);
    // NumPy's _lerp: from the nearer end, so t = 1 gives b exactly.
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

/// Huber loss's best constant for the values `v` (scikit-learn's
/// `HuberLoss.fit_intercept_only`): their median plus the mean of the deviations
/// from it clipped to `[-delta, delta]`.
fn huber_location(v: &mut [f64], delta: f64) -> f64 {
    let median = percentile(v, 50.0);
    let clipped: f64 = v
        .iter()
        .map(|&d| {
            let e = d - median;
            if e == 0.0 {
                0.0
            } else {
                e.signum() * e.abs().min(delta)
            }
        })
        .sum();
    median + clipped / v.len() as f64
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
    /// `train_score_` when `subsample` is 1; for two classes scikit-learn reports
    /// twice this, the binomial deviance).
    pub train_loss: Vec<f64>,
    /// Mean log loss on the held-out rows after each stage, with early stopping
    /// (empty without).
    pub validation_loss: Vec<f64>,
    pub(crate) n_features: usize,
    pub(crate) _t: core::marker::PhantomData<T>,
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
        const OP: &str = "GradientBoosting::predict_proba";
        check_predict(x, self.n_features, x.rows(), OP)?;
        Ok(self.proba(&self.decision_function(x)?))
    }

    /// Number of fitted stages (fewer than `n_estimators` after early stopping).
    pub fn n_stages(&self) -> usize {
        self.trees.len() / self.outputs()
    }

    /// The raw scores after each stage in turn (scikit-learn's
    /// `staged_decision_function`): item `m` is what [`Self::decision_function`]
    /// would give with the first `m + 1` stages.
    pub fn staged_decision_function<'a>(&'a self, x: MatRef<'a, T>) -> Result<Staged<'a, T>> {
        check_predict(
            x,
            self.n_features,
            x.rows(),
            "GradientBoosting::staged_decision_function",
        )?;
        Ok(Staged::new(&self.trees, &self.init, self.learning_rate, x))
    }

    /// Class probabilities after each stage in turn (scikit-learn's
    /// `staged_predict_proba`), e.g. for a test-loss curve over the stages.
    pub fn staged_predict_proba<'a>(
        &'a self,
        x: MatRef<'a, T>,
    ) -> Result<impl Iterator<Item = Vec<f64>> + 'a> {
        Ok(self
            .staged_decision_function(x)?
            .map(|raw| self.proba(&raw)))
    }

    /// Probabilities (`rows x n_classes`) from raw scores (`rows x outputs`).
    fn proba(&self, raw: &[f64]) -> Vec<f64> {
        let (k, c) = (self.outputs(), self.classes.len());
        let mut out = vec![0.0; raw.len() / k * c];
        for (r, o) in raw.chunks_exact(k).zip(out.chunks_exact_mut(c)) {
            if k == 1 {
                o[1] = sigmoid(r[0]);
                o[0] = 1.0 - o[1];
            } else {
                softmax(r, o);
            }
        }
        out
    }
}

/// The raw outputs of a boosted model after each stage in turn, for every row of
/// `x` (`rows x outputs`); see
/// [`FittedGradientBoostingClassifier::staged_decision_function`] and
/// [`FittedGradientBoostingRegressor::staged_predict`].
pub struct Staged<'a, T> {
    trees: &'a [Tree],
    outputs: usize,
    learning_rate: f64,
    x: MatRef<'a, T>,
    raw: Vec<f64>,
    stage: usize,
}

impl<'a, T: Scalar> Staged<'a, T> {
    fn new(trees: &'a [Tree], init: &[f64], learning_rate: f64, x: MatRef<'a, T>) -> Self {
        Staged {
            trees,
            outputs: init.len(),
            learning_rate,
            x,
            raw: (0..x.rows()).flat_map(|_| init.iter().copied()).collect(),
            stage: 0,
        }
    }
}

impl<T: Scalar> Iterator for Staged<'_, T> {
    type Item = Vec<f64>;

    fn next(&mut self) -> Option<Vec<f64>> {
        let k = self.outputs;
        let stage = self.trees.get(self.stage * k..(self.stage + 1) * k)?;
        for (j, t) in stage.iter().enumerate() {
            for (i, r) in self.x.iter_rows().enumerate() {
                self.raw[i * k + j] += self.learning_rate * t.leaf_values(r)[0];
            }
        }
        self.stage += 1;
        Some(self.raw.clone())
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
        self.validate()?;
        fit_classifier(self, x, y, "GradientBoosting::fit")
    }
}

/// A boosting loop: exact trees ([`GradientBoosting`]) or histogram trees
/// ([`crate::hist_gradient_boosting::HistGradientBoosting`]); the fits around it
/// are shared.
pub(crate) trait Booster {
    /// Fits to `loss` on the rows of `x` (`d` features, row-major), watching the
    /// loss on `val` when early stopping is on.
    fn boost(
        &self,
        x: &[f64],
        d: usize,
        loss: Loss<'_>,
        val: Option<(&[f64], Loss<'_>)>,
        op: &'static str,
    ) -> Result<Boosted>;
    /// Early stopping, the seed of its split, and the learning rate.
    fn settings(&self) -> (Option<EarlyStopping>, u64, f64);
}

/// Fits a classifier with log loss (hyper-parameters already validated).
pub(crate) fn fit_classifier<T: Scalar, B: Booster>(
    b: &B,
    x: MatRef<'_, T>,
    y: &[usize],
    op: &'static str,
) -> Result<FittedGradientBoostingClassifier<T>> {
    check_xy(x, y.len(), op)?;
    let (classes, yi) = encode_labels(y);
    let c = classes.len();
    if c < 2 {
        return Err(Error::SingleClass { op });
    }
    let (early, seed, learning_rate) = b.settings();
    let d = x.cols();
    let strata = Some((yi.as_slice(), c));
    let fit = with_validation(&to_f64(x), d, &yi, strata, early, seed, |x, y, val| {
        let val = val.map(|(xv, yv)| (xv, Loss::Log(yv, c)));
        b.boost(x, d, Loss::Log(y, c), val, op)
    })?;
    Ok(FittedGradientBoostingClassifier {
        trees: fit.trees,
        init: fit.init,
        learning_rate,
        classes,
        train_loss: fit.train_loss,
        validation_loss: fit.validation_loss,
        n_features: d,
        _t: core::marker::PhantomData,
    })
}

/// Fits a regressor with `kind` (hyper-parameters already validated).
pub(crate) fn fit_regressor<T: Scalar, B: Booster>(
    b: &B,
    kind: RegressionLoss,
    x: MatRef<'_, T>,
    y: &[T],
    op: &'static str,
) -> Result<FittedGradientBoostingRegressor<T>> {
    check_xy(x, y.len(), op)?;
    if let Some(row) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { row, col: x.cols() });
    }
    let (early, seed, learning_rate) = b.settings();
    let d = x.cols();
    let yf: Vec<f64> = y.iter().map(|v| v.to_f64_lossless()).collect();
    let fit = with_validation(&to_f64(x), d, &yf, None, early, seed, |x, y, val| {
        let val = val.map(|(xv, yv)| (xv, Loss::regression(kind, yv)));
        b.boost(x, d, Loss::regression(kind, y), val, op)
    })?;
    Ok(FittedGradientBoostingRegressor {
        trees: fit.trees,
        init: fit.init[0],
        learning_rate,
        train_loss: fit.train_loss,
        validation_loss: fit.validation_loss,
        n_features: d,
        _t: core::marker::PhantomData,
    })
}

/// What a booster minimizes, with its targets.
#[derive(Clone, Copy)]
pub(crate) enum Loss<'a> {
    /// Squared error on real targets (one output).
    Squared(&'a [f64]),
    /// Absolute error: the model estimates the median.
    Absolute(&'a [f64]),
    /// Huber loss: squared within `delta` of the target, absolute beyond, with
    /// `delta` the `alpha` quantile of the absolute errors, reset every stage.
    Huber {
        y: &'a [f64],
        alpha: f64,
        delta: f64,
    },
    /// Pinball loss: the model estimates the `alpha` quantile.
    Quantile(&'a [f64], f64),
    /// Log loss on class indices `0..k` (one output for two classes, `k` otherwise).
    Log(&'a [usize], usize),
}

impl<'a> Loss<'a> {
    /// The regression loss `kind` on targets `y`.
    fn regression(kind: RegressionLoss, y: &'a [f64]) -> Self {
        match kind {
            RegressionLoss::SquaredError => Loss::Squared(y),
            RegressionLoss::AbsoluteError => Loss::Absolute(y),
            RegressionLoss::Huber { alpha } => Loss::Huber {
                y,
                alpha,
                delta: 0.0,
            },
            RegressionLoss::Quantile { alpha } => Loss::Quantile(y, alpha),
        }
    }

    fn real_targets(&self) -> Option<&'a [f64]> {
        match *self {
            Loss::Squared(y) | Loss::Absolute(y) | Loss::Quantile(y, _) => Some(y),
            Loss::Huber { y, .. } => Some(y),
            Loss::Log(..) => None,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        match self {
            Loss::Log(y, _) => y.len(),
            _ => self.real_targets().map_or(0, |y| y.len()),
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        match *self {
            Loss::Log(_, c) if c > 2 => c,
            _ => 1,
        }
    }

    /// The best constant, as scikit-learn's initial estimator: the mean, the median
    /// (absolute, Huber), the `alpha` quantile, the log-odds of class 1 or the log
    /// priors.
    pub(crate) fn init(&self) -> Vec<f64> {
        match *self {
            Loss::Squared(y) => vec![y.iter().sum::<f64>() / y.len() as f64],
            Loss::Absolute(y) | Loss::Huber { y, .. } => {
                vec![percentile_linear(&mut y.to_vec(), 50.0)]
            }
            Loss::Quantile(y, alpha) => vec![percentile_linear(&mut y.to_vec(), alpha * 100.0)],
            Loss::Log(y, c) => {
                let mut prior = vec![0.0; c];
                y.iter().for_each(|&v| prior[v] += 1.0 / y.len() as f64);
                if c == 2 {
                    vec![libm::log(prior[1] / prior[0])]
                } else {
                    prior.iter().map(|&p| libm::log(p)).collect()
                }
            }
        }
    }

    /// Per-stage state: Huber's `delta`, the `alpha` quantile of `|y - raw|` over
    /// all rows.
    fn begin_stage(&mut self, raw: &[f64]) {
        if let Loss::Huber { y, alpha, delta } = self {
            let mut err: Vec<f64> = y.iter().zip(raw).map(|(t, p)| (t - p).abs()).collect();
            *delta = percentile(&mut err, *alpha * 100.0);
        }
    }

    /// `self` with the per-stage state of `other` (the validation loss uses the
    /// training rows' Huber delta).
    fn with_state_of(self, other: &Loss<'_>) -> Self {
        match (self, other) {
            (Loss::Huber { y, alpha, .. }, Loss::Huber { delta, .. }) => Loss::Huber {
                y,
                alpha,
                delta: *delta,
            },
            _ => self,
        }
    }

    /// How leaves get their values; `aux` is what [`Self::pseudo_residuals`] wrote
    /// beside the residuals (hessians, or `y - raw`).
    fn leaf_update<'b>(&self, aux: &'b [f64]) -> LeafUpdate<'b> {
        match *self {
            Loss::Squared(_) => LeafUpdate::Mean,
            Loss::Absolute(_) => LeafUpdate::Percentile(aux, 50.0),
            Loss::Quantile(_, alpha) => LeafUpdate::Percentile(aux, alpha * 100.0),
            Loss::Huber { delta, .. } => LeafUpdate::Huber(aux, delta),
            Loss::Log(..) => {
                let k = self.outputs();
                let factor = if k == 1 {
                    1.0
                } else {
                    (k - 1) as f64 / k as f64
                };
                LeafUpdate::Newton(aux, factor)
            }
        }
    }

    /// Negative gradients at `raw` (`rows x outputs`) into `res`, and beside them
    /// in `aux` the hessians (log loss) or `y - raw` (absolute, Huber, quantile);
    /// class-major: output `j` of row `i` at `[j * rows + i]`. `prob` is scratch.
    pub(crate) fn pseudo_residuals(
        &self,
        raw: &[f64],
        prob: &mut [f64],
        res: &mut [f64],
        aux: &mut [f64],
    ) {
        let (n, k) = (self.rows(), self.outputs());
        if let Loss::Log(y, _) = *self {
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
                    res[j * n + i] = (y[i] == target) as usize as f64 - p;
                    aux[j * n + i] = p * (1.0 - p);
                }
            }
            return;
        }
        let y = self.real_targets().unwrap_or(&[]);
        for i in 0..n {
            let (t, f) = (y[i], raw[i]);
            aux[i] = t - f;
            // scikit-learn's gradients, negated, ties included.
            res[i] = match *self {
                Loss::Absolute(_) => {
                    if f > t {
                        -1.0
                    } else {
                        1.0
                    }
                }
                Loss::Quantile(_, alpha) => {
                    if t >= f {
                        alpha
                    } else {
                        alpha - 1.0
                    }
                }
                Loss::Huber { delta, .. } => {
                    let e = f - t;
                    if e.abs() <= delta {
                        -e
                    } else if e >= 0.0 {
                        -delta
                    } else {
                        delta
                    }
                }
                _ => t - f,
            };
        }
    }

    /// Mean loss at `raw` (`scratch` holds `outputs` values).
    pub(crate) fn mean(&self, raw: &[f64], scratch: &mut [f64]) -> f64 {
        let total: f64 = match *self {
            Loss::Log(y, _) => {
                let k = self.outputs();
                raw.chunks_exact(k)
                    .zip(y)
                    .map(|(r, &t)| {
                        if k == 1 {
                            softplus(r[0]) - t as f64 * r[0]
                        } else {
                            softmax(r, &mut scratch[..k]) - r[t]
                        }
                    })
                    .sum()
            }
            _ => {
                let y = self.real_targets().unwrap_or(&[]);
                y.iter()
                    .zip(raw)
                    .map(|(&t, &f)| match *self {
                        Loss::Absolute(_) => (f - t).abs(),
                        Loss::Quantile(_, alpha) => {
                            if t >= f {
                                alpha * (t - f)
                            } else {
                                (1.0 - alpha) * (f - t)
                            }
                        }
                        Loss::Huber { delta, .. } => {
                            let e = (t - f).abs();
                            if e <= delta {
                                0.5 * e * e
                            } else {
                                delta * (e - 0.5 * delta)
                            }
                        }
                        _ => (t - f) * (t - f),
                    })
                    .sum()
            }
        };
        total / self.rows() as f64
    }
}

/// What a [`Booster`] fitted.
pub(crate) struct Boosted {
    pub(crate) trees: Vec<Tree>,
    pub(crate) init: Vec<f64>,
    pub(crate) train_loss: Vec<f64>,
    pub(crate) validation_loss: Vec<f64>,
}

/// Holds out `validation_fraction` of `n` rows (rounded, per class when `strata`
/// is given, each class keeping a training row); returns (training rows,
/// validation rows), both ascending. Errors when no row would be held out.
fn split_rows(
    n: usize,
    strata: Option<(&[usize], usize)>,
    e: EarlyStopping,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    // Its own stream, so turning early stopping on does not move the others.
    let mut rng = Rng::seed_from_u64(seed).fork(1);
    let groups: Vec<Vec<usize>> = match strata {
        Some((y, c)) => (0..c)
            .map(|k| (0..n).filter(|&i| y[i] == k).collect())
            .collect(),
        None => vec![(0..n).collect()],
    };
    let mut val = Vec::new();
    for mut g in groups {
        rng.shuffle(&mut g);
        let m = libm::round(e.validation_fraction * g.len() as f64) as usize;
        val.extend_from_slice(&g[..m.min(g.len().saturating_sub(1))]);
    }
    if val.is_empty() {
        // round(fraction * rows) >= 1 needs rows >= 0.5 / fraction.
        let k = libm::ceil(0.5 / e.validation_fraction) as usize;
        return Err(Error::TooFewSamples { k: k.max(2), n });
    }
    val.sort_unstable();
    let mut is_val = vec![false; n];
    val.iter().for_each(|&i| is_val[i] = true);
    Ok(((0..n).filter(|&i| !is_val[i]).collect(), val))
}

/// Runs `fit(x, y, None)` on all rows, or with early stopping `fit` on the rows
/// [`split_rows`] keeps for training, with the held-out ones as `Some((x, y))`.
pub(crate) fn with_validation<Y: Copy, R>(
    x: &[f64],
    d: usize,
    y: &[Y],
    strata: Option<(&[usize], usize)>,
    early: Option<EarlyStopping>,
    seed: u64,
    fit: impl FnOnce(&[f64], &[Y], Option<(&[f64], &[Y])>) -> Result<R>,
) -> Result<R> {
    match early {
        None => fit(x, y, None),
        Some(e) => {
            let (tr, va) = split_rows(y.len(), strata, e, seed)?;
            let (xt, xv) = (take_rows(x, d, &tr), take_rows(x, d, &va));
            let (yt, yv) = (take(y, &tr), take(y, &va));
            fit(&xt, &yt, Some((&xv, &yv)))
        }
    }
}

/// The held-out rows of early stopping: their raw predictions, stage by stage,
/// and scikit-learn's rule on their loss.
pub(crate) struct Validation<'a> {
    x: &'a [f64],
    d: usize,
    loss: Loss<'a>,
    raw: Vec<f64>,
    /// The last `n_iter_no_change` recorded losses (a ring).
    history: Vec<f64>,
    tol: f64,
    /// The held-out loss after each stage.
    pub(crate) losses: Vec<f64>,
}

impl<'a> Validation<'a> {
    /// Starts from the training rows' constant `init`.
    pub(crate) fn new(
        (x, loss): (&'a [f64], Loss<'a>),
        d: usize,
        init: &[f64],
        e: EarlyStopping,
    ) -> Self {
        Validation {
            x,
            d,
            loss,
            raw: (0..loss.rows())
                .flat_map(|_| init.iter().copied())
                .collect(),
            history: vec![f64::INFINITY; e.n_iter_no_change],
            tol: e.tol,
            losses: Vec::new(),
        }
    }

    /// Adds `learning_rate * tree` to output `j` of every held-out row.
    pub(crate) fn add_tree(&mut self, j: usize, tree: &Tree, learning_rate: f64) {
        let k = self.loss.outputs();
        for (i, r) in self.x.chunks_exact(self.d).enumerate() {
            self.raw[i * k + j] += learning_rate * tree.leaf_values(r)[0];
        }
    }

    /// Records the held-out loss after stage `m` (with the training loss's
    /// per-stage state); false when boosting should stop: the loss beats none of
    /// the last `n_iter_no_change` recorded ones by more than `tol`.
    pub(crate) fn keep_going(&mut self, m: usize, train: &Loss<'_>, scratch: &mut [f64]) -> bool {
        let v = self.loss.with_state_of(train).mean(&self.raw, scratch);
        self.losses.push(v);
        if self.history.iter().any(|&h| v + self.tol < h) {
            let len = self.history.len();
            self.history[m % len] = v;
            true
        } else {
            false
        }
    }
}

fn take<V: Copy>(v: &[V], rows: &[usize]) -> Vec<V> {
    rows.iter().map(|&i| v[i]).collect()
}

fn take_rows(x: &[f64], d: usize, rows: &[usize]) -> Vec<f64> {
    rows.iter()
        .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
        .collect()
}

impl Booster for GradientBoosting {
    fn settings(&self) -> (Option<EarlyStopping>, u64, f64) {
        (self.early_stopping, self.seed, self.learning_rate)
    }

    fn boost(
        &self,
        x: &[f64],
        d: usize,
        loss: Loss<'_>,
        val: Option<(&[f64], Loss<'_>)>,
        op: &'static str,
    ) -> Result<Boosted> {
        let n = loss.rows();
        // Every stage fits to the same rows: lay them out and sort them once.
        let cols = Columns::presorted(x, n, d);
        let mut w = vec![1.0; n];
        let mut order = Vec::new();
        let mut rng = Rng::seed_from_u64(self.seed);
        let (stages, early) = (self.n_estimators, self.early_stopping);
        drive(
            stages,
            self.learning_rate,
            d,
            loss,
            val,
            early,
            op,
            |loss, res, aux| {
                self.draw_rows(&mut rng, &mut w, &mut order);
                let seeds: Vec<u64> = (0..loss.outputs()).map(|_| rng.next_u64()).collect();
                let w = &w;
                per_output(loss.outputs(), |j| {
                    let update = loss.leaf_update(&aux[j * n..][..n]);
                    let (tree, leaf) =
                        self.stage(x, &cols, &res[j * n..][..n], update, w, seeds[j]);
                    let values = leaf.iter().map(|&l| tree.leaf_value(l)).collect();
                    (tree, values)
                })
            },
        )
    }
}

/// `f(j)` for every output `j < k`: a stage's trees are independent, so they are
/// fitted on rayon's threads (each from its own seed, so the result does not
/// depend on how many).
pub(crate) fn per_output<R: Send>(k: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "std")]
    if k > 1 {
        use rayon::prelude::*;
        return (0..k).into_par_iter().map(f).collect();
    }
    (0..k).map(f).collect()
}

/// The loop around the stages of every booster: keeps the raw predictions, the
/// training loss, the held-out rows and the stopping rule. Each stage,
/// `grow_stage(loss, residual, aux)` gets the negative gradients and what the
/// leaves need beside them (class-major, see [`Loss::pseudo_residuals`]) and
/// returns one tree per output with each training row's (unscaled) tree value.
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive<'a>(
    stages: usize,
    learning_rate: f64,
    d: usize,
    loss: Loss<'a>,
    val: Option<(&[f64], Loss<'_>)>,
    early: Option<EarlyStopping>,
    op: &'static str,
    mut grow_stage: impl FnMut(&Loss<'a>, &[f64], &[f64]) -> Vec<(Tree, Vec<f64>)>,
) -> Result<Boosted> {
    let (n, k) = (loss.rows(), loss.outputs());
    let init = loss.init();
    let mut raw: Vec<f64> = (0..n).flat_map(|_| init.iter().copied()).collect();
    let mut prob = vec![0.0; n * k];
    let (mut residual, mut aux) = (vec![0.0; n * k], vec![0.0; n * k]);
    let mut trees = Vec::with_capacity(stages * k);
    let mut train_loss = Vec::with_capacity(stages);
    let mut held = val.zip(early).map(|(v, e)| Validation::new(v, d, &init, e));
    let mut loss = loss;
    for m in 0..stages {
        loss.begin_stage(&raw);
        loss.pseudo_residuals(&raw, &mut prob, &mut residual, &mut aux);
        for (j, (tree, values)) in grow_stage(&loss, &residual, &aux).into_iter().enumerate() {
            for (i, v) in values.iter().enumerate() {
                raw[i * k + j] += learning_rate * v;
            }
            if let Some(h) = held.as_mut() {
                h.add_tree(j, &tree, learning_rate);
            }
            trees.push(tree);
        }
        let l = loss.mean(&raw, &mut prob);
        if !l.is_finite() {
            return Err(Error::Diverged { op, iteration: m });
        }
        train_loss.push(l);
        if let Some(h) = held.as_mut() {
            if !h.keep_going(m, &loss, &mut prob) {
                break;
            }
        }
    }
    Ok(Boosted {
        trees,
        init,
        train_loss,
        validation_loss: held.map_or(Vec::new(), |h| h.losses),
    })
}

/// Gradient boosting for real targets: [`GradientBoosting`] settings and a
/// [`RegressionLoss`] (a separate type because the classifier already implements
/// `Fit` with `usize` targets).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GradientBoostingRegressor {
    /// Stages, learning rate, subsampling, trees, seed, early stopping.
    pub boosting: GradientBoosting,
    /// What the stages minimize.
    pub loss: RegressionLoss,
}

/// The loss of a [`GradientBoostingRegressor`], as scikit-learn's `loss` and
/// `alpha`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum RegressionLoss {
    /// Squared error: the model estimates the conditional mean.
    #[default]
    SquaredError,
    /// Absolute error: the conditional median; leaves take the median residual.
    AbsoluteError,
    /// Huber: squared error within `delta` of the target and absolute error
    /// beyond, with `delta` the `alpha` quantile (0 < alpha < 1; scikit-learn's
    /// default 0.9) of the absolute errors at each stage's start: robust to
    /// outliers in `y`.
    Huber {
        /// Quantile of the absolute errors that sets `delta`.
        alpha: f64,
    },
    /// Pinball loss: the conditional `alpha` quantile (0 < alpha < 1), e.g. 0.05
    /// and 0.95 for a 90% prediction interval.
    Quantile {
        /// The quantile to estimate.
        alpha: f64,
    },
}

impl GradientBoostingRegressor {
    /// `boosting` with squared error.
    pub fn new(boosting: GradientBoosting) -> Self {
        GradientBoostingRegressor {
            boosting,
            loss: RegressionLoss::SquaredError,
        }
    }
    /// Sets the loss.
    pub fn loss(mut self, loss: RegressionLoss) -> Self {
        self.loss = loss;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.boosting.validate()?;
        if let RegressionLoss::Huber { alpha } | RegressionLoss::Quantile { alpha } = self.loss {
            param(
                alpha > 0.0 && alpha < 1.0,
                "loss.alpha",
                alpha,
                "0 < alpha < 1",
            )?;
        }
        Ok(())
    }
}

/// A fitted gradient-boosting regressor.
#[derive(Clone, Debug)]
pub struct FittedGradientBoostingRegressor<T> {
    /// The stage trees in order.
    pub trees: Vec<Tree>,
    /// The starting prediction `F_0`: the mean, median or `alpha` quantile of the
    /// targets.
    pub init: f64,
    /// The learning rate the trees were fitted with.
    pub learning_rate: f64,
    /// Mean loss (squared error, absolute error, Huber or pinball loss) on the
    /// training rows after each stage (scikit-learn's `train_score_` when
    /// `subsample` is 1).
    pub train_loss: Vec<f64>,
    /// Mean loss on the held-out rows after each stage, with early stopping (empty
    /// without).
    pub validation_loss: Vec<f64>,
    pub(crate) n_features: usize,
    pub(crate) _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, T> for GradientBoostingRegressor {
    type Fitted = FittedGradientBoostingRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        self.validate()?;
        fit_regressor(
            &self.boosting,
            self.loss,
            x,
            y,
            "GradientBoostingRegressor::fit",
        )
    }
}

impl<T: Scalar> FittedGradientBoostingRegressor<T> {
    /// Mean decrease in squared error per feature over all stage trees, summing
    /// to 1 (scikit-learn's `feature_importances_`).
    pub fn feature_importances(&self) -> Vec<f64> {
        ensemble_importances(&self.trees, self.n_features, false)
    }

    /// Number of fitted stages (fewer than `n_estimators` after early stopping).
    pub fn n_stages(&self) -> usize {
        self.trees.len()
    }

    /// The predictions (as f64) after each stage in turn (scikit-learn's
    /// `staged_predict`).
    pub fn staged_predict<'a>(&'a self, x: MatRef<'a, T>) -> Result<Staged<'a, T>> {
        check_predict(
            x,
            self.n_features,
            x.rows(),
            "GradientBoostingRegressor::staged_predict",
        )?;
        Ok(Staged::new(
            &self.trees,
            core::slice::from_ref(&self.init),
            self.learning_rate,
            x,
        ))
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
        let m = GradientBoostingRegressor::new(stumps(2, 0.5))
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
    fn staged_outputs_end_at_the_full_model_and_retrace_the_training_loss() {
        let x: Vec<f64> = (0..60).map(|i| ((i * 37) % 60) as f64 / 6.0).collect();
        let y: Vec<usize> = x
            .iter()
            .map(|&v| ((v * 1.3).sin() * 1.4 + 1.5) as usize)
            .collect();
        let mx = MatRef::new(&x, 60, 1).unwrap();
        let m = GradientBoosting::new(15)
            .max_depth(Some(2))
            .fit(mx, &y)
            .unwrap();
        assert_eq!((m.classes.len(), m.n_stages()), (3, 15));
        let staged: Vec<Vec<f64>> = m.staged_predict_proba(mx).unwrap().collect();
        assert_eq!(staged.len(), 15);
        assert_eq!(staged[14], m.predict_proba(mx).unwrap());
        for (p, want) in staged.iter().zip(&m.train_loss) {
            let ll = p.chunks(3).zip(&y).map(|(r, &c)| -r[c].ln()).sum::<f64>() / 60.0;
            assert!((ll - want).abs() < 1e-12, "{ll} vs {want}");
        }
        let r = GradientBoostingRegressor::new(GradientBoosting::new(5))
            .fit(mx, &x)
            .unwrap();
        let last = r.staged_predict(mx).unwrap().last().unwrap();
        assert_eq!(last, r.predict(mx).unwrap());
    }

    #[test]
    fn early_stopping_holds_out_rows_and_stops_when_the_loss_stalls() {
        // Pure noise: after a few stages the held-out loss only gets worse.
        let mut rng = Rng::seed_from_u64(1);
        let x: Vec<f64> = (0..400).map(|_| rng.next_f64()).collect();
        let y: Vec<f64> = (0..200).map(|_| rng.next_f64()).collect();
        let mx = MatRef::new(&x, 200, 2).unwrap();
        let es = EarlyStopping::default();
        let gb = GradientBoosting::new(500).early_stopping(Some(es));
        let m = GradientBoostingRegressor::new(gb).fit(mx, &y).unwrap();
        let stages = m.n_stages();
        assert!(stages < 100, "{stages}");
        assert_eq!(m.validation_loss.len(), stages);
        // The last stage failed to beat any of the 10 losses recorded before it.
        let v = &m.validation_loss;
        let best_before = v[stages - 1 - es.n_iter_no_change..stages - 1]
            .iter()
            .fold(f64::INFINITY, |a, &b| a.min(b));
        assert!(v[stages - 1] + es.tol >= best_before, "{v:?}");
        // 10% held out: the training loss covers the other 180 rows only, and the
        // split is stratified for classes (each class keeps training rows).
        let labels: Vec<usize> = (0..200).map(|i| i % 4).collect();
        let (tr, va) = split_rows(200, Some((&labels, 4)), es, 0).unwrap();
        assert_eq!((tr.len(), va.len()), (180, 20));
        for c in 0..4 {
            assert_eq!(va.iter().filter(|&&i| labels[i] == c).count(), 5);
        }
        // Too few rows to hold any out.
        let small =
            GradientBoostingRegressor::new(gb).fit(MatRef::new(&x[..8], 4, 2).unwrap(), &y[..4]);
        assert_eq!(small.err(), Some(Error::TooFewSamples { k: 5, n: 4 }));
        // Without early stopping every stage is fitted.
        let full = GradientBoostingRegressor::new(GradientBoosting::new(120))
            .fit(mx, &y)
            .unwrap();
        assert_eq!((full.n_stages(), full.validation_loss.len()), (120, 0));
    }

    #[test]
    fn quantile_loss_covers_its_quantile_on_fresh_data() {
        // y = x + uniform noise in [0, 2): the 0.9 quantile is x + 1.8.
        let mut rng = Rng::seed_from_u64(5);
        let mut draw = |n: usize| {
            let x: Vec<f64> = (0..n).map(|_| rng.next_f64() * 10.0).collect();
            let y: Vec<f64> = x.iter().map(|v| v + 2.0 * rng.next_f64()).collect();
            (x, y)
        };
        let (x, y) = draw(2000);
        let (xt, yt) = draw(2000);
        let loss = RegressionLoss::Quantile { alpha: 0.9 };
        let m = GradientBoostingRegressor::new(GradientBoosting::new(100))
            .loss(loss)
            .fit(MatRef::new(&x, 2000, 1).unwrap(), &y)
            .unwrap();
        let pred = m.predict(MatRef::new(&xt, 2000, 1).unwrap()).unwrap();
        let below = yt.iter().zip(&pred).filter(|(t, p)| t <= p).count();
        let coverage = below as f64 / 2000.0;
        assert!((coverage - 0.9).abs() < 0.03, "coverage {coverage}");
        // The predicted quantile tracks x + 1.8 (noise quantile), not the mean x + 1.
        let mid: Vec<f64> = (0..2000)
            .filter(|&i| xt[i] > 2.0 && xt[i] < 8.0)
            .map(|i| pred[i] - xt[i])
            .collect();
        let offset = mid.iter().sum::<f64>() / mid.len() as f64;
        assert!((offset - 1.8).abs() < 0.15, "offset {offset}");
    }

    #[test]
    fn huber_and_absolute_losses_shrug_off_outliers() {
        // y = 2x, with every tenth target thrown to +1000.
        let x: Vec<f64> = (0..200).map(|i| i as f64 / 20.0).collect();
        let clean: Vec<f64> = x.iter().map(|v| 2.0 * v).collect();
        let y: Vec<f64> = clean
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 10 == 3 { 1000.0 } else { v })
            .collect();
        let mx = MatRef::new(&x, 200, 1).unwrap();
        let err = |loss| {
            let m = GradientBoostingRegressor::new(GradientBoosting::new(100))
                .loss(loss)
                .fit(mx, &y)
                .unwrap();
            let p = m.predict(mx).unwrap();
            let sum: f64 = (0..200)
                .filter(|i| i % 10 != 3)
                .map(|i| (p[i] - clean[i]).abs())
                .sum();
            sum / 180.0
        };
        let squared = err(RegressionLoss::SquaredError);
        let huber = err(RegressionLoss::Huber { alpha: 0.8 });
        let absolute = err(RegressionLoss::AbsoluteError);
        // Squared error pulls the clean points towards the outliers' mean.
        assert!(squared > 10.0, "squared {squared}");
        assert!(
            huber < 1.0 && absolute < 1.0,
            "huber {huber} absolute {absolute}"
        );
    }

    #[test]
    fn subsampling_is_seeded() {
        let x: Vec<f64> = (0..40).map(|i| ((i * 37) % 40) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| (v * 0.3).sin()).collect();
        let mx = MatRef::new(&x, 40, 1).unwrap();
        let fit = |seed| {
            let gb = GradientBoosting::new(20).subsample(0.5).seed(seed);
            GradientBoostingRegressor::new(gb)
                .fit(mx, &y)
                .unwrap()
                .train_loss
        };
        assert_eq!(fit(3), fit(3));
        assert_ne!(fit(3), fit(4));
    }
}
