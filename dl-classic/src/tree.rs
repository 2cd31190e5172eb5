//! CART decision trees (Breiman et al.): binary splits `x_j <= t` chosen greedily to
//! maximize the weighted impurity decrease
//! `N_t / N * (I(t) - N_L / N_t * I(L) - N_R / N_t * I(R))`.
//!
//! - Classification impurities: Gini `1 - sum_k p_k^2`, entropy `-sum_k p_k log2 p_k`;
//!   regression: MSE (the weighted variance). Leaves hold class probabilities / the
//!   weighted mean.
//! - Stopping: `max_depth`, `min_samples_split`, `min_samples_leaf`,
//!   `min_impurity_decrease` (scikit-learn's meanings).
//! - Thresholds are midpoints between consecutive distinct values; at each node a
//!   seeded random subset of `max_features` features is tried, in random order (so
//!   ties between equally good splits depend on the seed, as in scikit-learn).
//! - Sample weights are supported (bootstrap counts in forests, AdaBoost weights).

use crate::error::{check_predict, check_xy, param, Error, Result};
use crate::knn::{argmax, encode_labels};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// Split quality measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Criterion {
    /// Gini impurity (classification).
    #[default]
    Gini,
    /// Shannon entropy in bits (classification).
    Entropy,
    /// Mean squared error (regression).
    Mse,
}

/// How many features each split considers.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum MaxFeatures {
    /// All `d`.
    #[default]
    All,
    /// `max(1, floor(sqrt(d)))` (random forests' classification default).
    Sqrt,
    /// `max(1, floor(log2(d)))`.
    Log2,
    /// A fixed count (clamped to `d`).
    Count(usize),
    /// A fraction of `d` in `(0, 1]`.
    Fraction(f64),
}

impl MaxFeatures {
    pub(crate) fn resolve(self, d: usize) -> usize {
        let k = match self {
            MaxFeatures::All => d,
            MaxFeatures::Sqrt => libm::sqrt(d as f64) as usize,
            MaxFeatures::Log2 => libm::log2(d as f64) as usize,
            MaxFeatures::Count(k) => k,
            MaxFeatures::Fraction(f) => (f * d as f64) as usize,
        };
        k.clamp(1, d.max(1))
    }

    fn validate(self) -> Result<()> {
        match self {
            MaxFeatures::Count(k) => param(k >= 1, "max_features", k as f64, ">= 1"),
            MaxFeatures::Fraction(f) => param(f > 0.0 && f <= 1.0, "max_features", f, "(0, 1]"),
            _ => Ok(()),
        }
    }
}

/// Decision tree hyper-parameters (classifier with Gini/entropy, regressor with MSE).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionTree {
    /// Impurity.
    pub criterion: Criterion,
    /// Maximum depth (`None` = grow until pure or another rule stops).
    pub max_depth: Option<usize>,
    /// A node needs at least this many samples to be split (>= 2).
    pub min_samples_split: usize,
    /// Each child needs at least this many samples (>= 1).
    pub min_samples_leaf: usize,
    /// A split must decrease the weighted impurity by at least this (>= 0).
    pub min_impurity_decrease: f64,
    /// Features tried per split.
    pub max_features: MaxFeatures,
    /// Seed of the feature order/subsets.
    pub seed: u64,
}

impl Default for DecisionTree {
    fn default() -> Self {
        DecisionTree {
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            min_impurity_decrease: 0.0,
            max_features: MaxFeatures::All,
            seed: 0,
        }
    }
}

impl DecisionTree {
    /// A regression tree (MSE).
    pub fn regressor() -> DecisionTreeRegressor {
        DecisionTreeRegressor(DecisionTree {
            criterion: Criterion::Mse,
            ..Default::default()
        })
    }
    /// Sets the criterion.
    pub fn criterion(mut self, c: Criterion) -> Self {
        self.criterion = c;
        self
    }
    /// Sets the maximum depth.
    pub fn max_depth(mut self, d: Option<usize>) -> Self {
        self.max_depth = d;
        self
    }
    /// Sets the minimum samples to split.
    pub fn min_samples_split(mut self, v: usize) -> Self {
        self.min_samples_split = v;
        self
    }
    /// Sets the minimum samples per leaf.
    pub fn min_samples_leaf(mut self, v: usize) -> Self {
        self.min_samples_leaf = v;
        self
    }
    /// Sets the minimum impurity decrease.
    pub fn min_impurity_decrease(mut self, v: f64) -> Self {
        self.min_impurity_decrease = v;
        self
    }
    /// Sets the features tried per split.
    pub fn max_features(mut self, m: MaxFeatures) -> Self {
        self.max_features = m;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = self.max_depth {
            param(d >= 1, "max_depth", d as f64, ">= 1 (or None)")?;
        }
        param(
            self.min_samples_split >= 2,
            "min_samples_split",
            self.min_samples_split as f64,
            ">= 2",
        )?;
        param(
            self.min_samples_leaf >= 1,
            "min_samples_leaf",
            self.min_samples_leaf as f64,
            ">= 1",
        )?;
        param(
            self.min_impurity_decrease >= 0.0 && self.min_impurity_decrease.is_finite(),
            "min_impurity_decrease",
            self.min_impurity_decrease,
            ">= 0",
        )?;
        self.max_features.validate()
    }

    /// Fits a tree with per-sample weights (rows with weight 0 are left out).
    /// `target` holds class indices `0..n_classes` or real values.
    pub(crate) fn fit_weighted(
        &self,
        x: &[f64],
        n: usize,
        d: usize,
        target: Target<'_>,
        weights: &[f64],
    ) -> Tree {
        self.fit_columns(&Columns::new(x, n, d), target, weights)
    }

    /// [`Self::fit_weighted`] on rows already laid out by [`Columns`], which
    /// ensembles build once and share between their trees.
    pub(crate) fn fit_columns(&self, cols: &Columns, target: Target<'_>, weights: &[f64]) -> Tree {
        let (n, d) = (cols.n, cols.d);
        let mut b = Builder {
            p: self,
            xt: &cols.xt,
            sorted: &cols.sorted,
            n_rows: n,
            d,
            target,
            w: weights,
            rng: Rng::seed_from_u64(self.seed),
            tree: Tree {
                nodes: Vec::new(),
                values: Vec::new(),
                n_values: target.n_values(),
                n_features: d,
                importance: vec![0.0; d],
            },
            max_features: self.max_features.resolve(d),
            total_weight: weights.iter().sum(),
            feats: Vec::new(),
            order: Vec::new(),
            mark: vec![0; if cols.sorted.is_empty() { 0 } else { n }],
            stamp: 0,
        };
        let mut idx: Vec<usize> = (0..n).filter(|&i| weights[i] > 0.0).collect();
        b.build(&mut idx, 0);
        let root = b.total_weight;
        if root > 0.0 {
            b.tree.importance.iter_mut().for_each(|v| *v /= root);
        }
        b.tree
    }
}

/// Training rows feature-major (a node reads one feature of its samples at a time,
/// and those values then sit close together in memory), optionally with every
/// feature's rows presorted: boosting fits hundreds of trees to the same rows, and
/// filtering a presorted list at a node is much cheaper than sorting it again.
pub(crate) struct Columns {
    /// Feature `f` of row `i` is `xt[f * n + i]`.
    xt: Vec<f64>,
    /// Empty, or for each feature the rows in the order of [`sort_key`] then row
    /// index: `sorted[f * n..][..n]`.
    sorted: Vec<u32>,
    /// Rows.
    pub(crate) n: usize,
    /// Features.
    pub(crate) d: usize,
}

impl Columns {
    /// The feature-major copy of the row-major `x` (`n x d`).
    pub(crate) fn new(x: &[f64], n: usize, d: usize) -> Self {
        let mut xt = vec![0.0; n * d];
        for (i, row) in x.chunks_exact(d).enumerate().take(n) {
            for (j, &v) in row.iter().enumerate() {
                xt[j * n + i] = v;
            }
        }
        Columns {
            xt,
            sorted: Vec::new(),
            n,
            d,
        }
    }

    /// [`Self::new`] plus every feature's sorted row order.
    pub(crate) fn presorted(x: &[f64], n: usize, d: usize) -> Self {
        let mut c = Self::new(x, n, d);
        if n > u32::MAX as usize {
            return c; // row indices would not fit; nodes sort instead
        }
        let mut pairs: Vec<(u64, u32)> = Vec::with_capacity(n);
        c.sorted.reserve(n * d);
        for f in 0..d {
            pairs.clear();
            let col = &c.xt[f * n..(f + 1) * n];
            pairs.extend(
                col.iter()
                    .enumerate()
                    .map(|(i, &v)| (sort_key(v), i as u32)),
            );
            pairs.sort_unstable();
            c.sorted.extend(pairs.iter().map(|&(_, i)| i));
        }
        c
    }
}

/// What a tree predicts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// Class indices and the number of classes.
    Classes(&'a [usize], usize),
    /// Real values.
    Values(&'a [f64]),
}

impl Target<'_> {
    fn n_values(&self) -> usize {
        match self {
            Target::Classes(_, k) => *k,
            Target::Values(_) => 1,
        }
    }
}

/// A grown tree: flat nodes; leaves point into `values`.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
    /// `n_values` per leaf: class probabilities or the mean.
    values: Vec<f64>,
    n_values: usize,
    n_features: usize,
    /// Per feature, the weighted impurity decrease of the splits on it over the
    /// root's weight (scikit-learn's unnormalized `compute_feature_importances`).
    importance: Vec<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Node {
    Leaf {
        value: usize,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
    },
}

/// One node of a grown [`Tree`], as [`Tree::node`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NodeView<'a> {
    /// Rows with `x[feature] <= threshold` go to node `left`, the others to `right`.
    Split {
        /// Feature tested.
        feature: usize,
        /// Midpoint between the two consecutive values it separates.
        threshold: f64,
        /// Node index of the `<=` side.
        left: usize,
        /// Node index of the `>` side.
        right: usize,
    },
    /// A leaf's values: class probabilities, or `[mean]` for regression.
    Leaf(&'a [f64]),
}

impl Tree {
    /// The leaf values for `row`: class probabilities or `[mean]`.
    pub fn leaf_values<T: Scalar>(&self, row: &[T]) -> &[f64] {
        self.leaf_row(self.leaf_of(row))
    }

    /// Which leaf `row` falls in, numbered `0..n_leaves()` in the order leaves were
    /// grown.
    pub fn leaf_of<T: Scalar>(&self, row: &[T]) -> usize {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf { value } => return value,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if row[feature].to_f64_lossless() <= threshold {
                        left
                    } else {
                        right
                    }
                }
            }
        }
    }

    /// Node `i` (`0..node_count()`, the root first, then each split's left subtree
    /// before its right: scikit-learn's depth-first numbering of `tree_`), or
    /// `None` past the end.
    pub fn node(&self, i: usize) -> Option<NodeView<'_>> {
        Some(match *self.nodes.get(i)? {
            Node::Leaf { value } => NodeView::Leaf(self.leaf_row(value)),
            Node::Split {
                feature,
                threshold,
                left,
                right,
            } => NodeView::Split {
                feature,
                threshold,
                left,
                right,
            },
        })
    }

    /// The nodes, the root first; a split's children are indices into the same list.
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The values of leaf number `leaf` (its `value` field): class probabilities or
    /// `[mean]`.
    pub(crate) fn leaf_row(&self, leaf: usize) -> &[f64] {
        &self.values[leaf * self.n_values..(leaf + 1) * self.n_values]
    }

    /// Number of input features.
    pub(crate) fn n_features(&self) -> usize {
        self.n_features
    }

    /// A single-valued tree of one leaf, for boosters that grow their own trees.
    pub(crate) fn leaf_only(n_features: usize, value: f64) -> Tree {
        Tree {
            nodes: vec![Node::Leaf { value: 0 }],
            values: vec![value],
            n_values: 1,
            n_features,
            importance: vec![0.0; n_features],
        }
    }

    /// Splits leaf node `node` of a single-valued tree on `x[feature] <=
    /// threshold`, crediting `decrease` to the feature's importance; returns the
    /// left and right child nodes. The left child keeps the leaf's number, so
    /// leaves stay numbered `0..n_leaves()`.
    pub(crate) fn split_leaf(
        &mut self,
        node: usize,
        feature: usize,
        threshold: f64,
        (left_value, right_value): (f64, f64),
        decrease: f64,
    ) -> (usize, usize) {
        let Node::Leaf { value } = self.nodes[node] else {
            unreachable!("split_leaf on a split node");
        };
        self.values[value] = left_value;
        self.values.push(right_value);
        let (left, right) = (self.nodes.len(), self.nodes.len() + 1);
        self.nodes.push(Node::Leaf { value });
        self.nodes.push(Node::Leaf {
            value: self.values.len() - 1,
        });
        self.nodes[node] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        self.importance[feature] += decrease;
        (left, right)
    }

    /// The leaf number of leaf node `node`.
    pub(crate) fn leaf_number(&self, node: usize) -> usize {
        match self.nodes[node] {
            Node::Leaf { value } => value,
            Node::Split { .. } => unreachable!("leaf_number of a split node"),
        }
    }

    /// Replaces the value of leaf `leaf` of a single-valued (regression) tree:
    /// gradient boosting swaps the mean residual for a Newton step.
    pub(crate) fn set_leaf_value(&mut self, leaf: usize, v: f64) {
        debug_assert_eq!(self.n_values, 1);
        self.values[leaf] = v;
    }

    /// The value of leaf `leaf` of a single-valued (regression) tree.
    pub(crate) fn leaf_value(&self, leaf: usize) -> f64 {
        debug_assert_eq!(self.n_values, 1);
        self.values[leaf]
    }

    /// Mean decrease in impurity per feature, summing to 1 (all 0 for a single
    /// leaf): scikit-learn's `feature_importances_`.
    pub fn feature_importances(&self) -> Vec<f64> {
        normalized(self.importance.clone())
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Depth (a single leaf has depth 0).
    pub fn depth(&self) -> usize {
        fn go(t: &Tree, i: usize) -> usize {
            match t.nodes[i] {
                Node::Leaf { .. } => 0,
                Node::Split { left, right, .. } => 1 + go(t, left).max(go(t, right)),
            }
        }
        go(self, 0)
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }
}

struct Builder<'a> {
    p: &'a DecisionTree,
    /// The samples feature-major: feature `f` of sample `i` is `xt[f * n_rows + i]`.
    xt: &'a [f64],
    /// [`Columns::sorted`]: empty, or each feature's rows in sorted order.
    sorted: &'a [u32],
    n_rows: usize,
    d: usize,
    target: Target<'a>,
    w: &'a [f64],
    rng: Rng,
    tree: Tree,
    max_features: usize,
    total_weight: f64,
    /// Scratch reused by every node: the feature order and the sorted
    /// `(value, sample)` pairs.
    feats: Vec<usize>,
    order: Vec<(u64, usize)>,
    /// `mark[i] == stamp` while row `i` belongs to the node being split (only with
    /// presorted columns).
    mark: Vec<u32>,
    stamp: u32,
}

/// Feature importances of an ensemble, as scikit-learn's forests and gradient
/// boosting compute them: the sum over the trees that split at least once of each
/// tree's importances (normalized per tree when `per_tree_normalized`, else raw),
/// scaled to sum to 1; zeros when no tree splits.
pub(crate) fn ensemble_importances<'a>(
    trees: impl IntoIterator<Item = &'a Tree>,
    n_features: usize,
    per_tree_normalized: bool,
) -> Vec<f64> {
    let mut sum = vec![0.0; n_features];
    for t in trees.into_iter().filter(|t| t.node_count() > 1) {
        let imp = if per_tree_normalized {
            t.feature_importances()
        } else {
            t.importance.clone()
        };
        sum.iter_mut().zip(&imp).for_each(|(s, v)| *s += v);
    }
    normalized(sum)
}

/// `v` scaled to sum to 1, or left as is (zeros) when it sums to 0.
pub(crate) fn normalized(mut v: Vec<f64>) -> Vec<f64> {
    let s: f64 = v.iter().sum();
    if s > 0.0 {
        v.iter_mut().for_each(|x| *x /= s);
    }
    v
}

/// An integer with the order of `f64::total_cmp` (sign bit flipped for positives,
/// all bits for negatives), so sorting keys sorts values.
#[inline]
fn sort_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | 1 << 63
    }
}

/// The value of a [`sort_key`].
#[inline]
fn from_key(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// Impurity of a class histogram (`counts` weighted, `total` their sum).
fn class_impurity(c: Criterion, counts: &[f64], total: f64) -> f64 {
    if total <= 0.0 {
        return 0.0;
    }
    match c {
        Criterion::Entropy => -counts
            .iter()
            .filter(|&&v| v > 0.0)
            .map(|&v| {
                let p = v / total;
                p * libm::log2(p)
            })
            .sum::<f64>(),
        _ => {
            1.0 - counts
                .iter()
                .map(|&v| (v / total) * (v / total))
                .sum::<f64>()
        }
    }
}

/// Accumulated statistics of a set of samples: class histogram or (sum, sum of
/// squares), plus the weight and the count.
#[derive(Clone)]
struct Stats {
    counts: Vec<f64>,
    weight: f64,
    n: usize,
}

impl Stats {
    fn new(k: usize) -> Self {
        Stats {
            counts: vec![0.0; k],
            weight: 0.0,
            n: 0,
        }
    }

    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|v| *v = 0.0);
        self.weight = 0.0;
        self.n = 0;
    }

    fn copy_from(&mut self, other: &Stats) {
        self.counts.copy_from_slice(&other.counts);
        self.weight = other.weight;
        self.n = other.n;
    }
}

impl Builder<'_> {
    #[inline(always)]
    fn add(&self, s: &mut Stats, i: usize, sign: f64) {
        let w = self.w[i] * sign;
        match self.target {
            Target::Classes(y, _) => s.counts[y[i]] += w,
            Target::Values(y) => {
                s.counts[0] += w * y[i];
                s.counts[1] += w * y[i] * y[i];
            }
        }
        s.weight += w;
        if sign > 0.0 {
            s.n += 1;
        } else {
            s.n -= 1;
        }
    }

    fn stats_k(&self) -> usize {
        match self.target {
            Target::Classes(_, k) => k,
            Target::Values(_) => 2,
        }
    }

    #[inline]
    fn impurity(&self, s: &Stats) -> f64 {
        match self.target {
            Target::Classes(..) => class_impurity(self.p.criterion, &s.counts, s.weight),
            Target::Values(_) => {
                if s.weight <= 0.0 {
                    return 0.0;
                }
                let m = s.counts[0] / s.weight;
                (s.counts[1] / s.weight - m * m).max(0.0)
            }
        }
    }

    fn leaf(&mut self, s: &Stats) -> usize {
        let id = self.tree.values.len() / self.tree.n_values;
        match self.target {
            Target::Classes(..) => {
                let t = s.weight.max(f64::MIN_POSITIVE);
                self.tree.values.extend(s.counts.iter().map(|c| c / t));
            }
            Target::Values(_) => self
                .tree
                .values
                .push(s.counts[0] / s.weight.max(f64::MIN_POSITIVE)),
        }
        let node = self.tree.nodes.len();
        self.tree.nodes.push(Node::Leaf { value: id });
        node
    }

    fn build(&mut self, idx: &mut [usize], depth: usize) -> usize {
        let mut total = Stats::new(self.stats_k());
        for &i in idx.iter() {
            self.add(&mut total, i, 1.0);
        }
        let imp = self.impurity(&total);
        let n = idx.len();
        let stop = self.p.max_depth.is_some_and(|m| depth >= m)
            || n < self.p.min_samples_split
            || n < 2 * self.p.min_samples_leaf
            || imp <= 1e-12;
        if stop {
            return self.leaf(&total);
        }
        // Features in a random order; the first `max_features` are tried (more if
        // all of those are constant here, as scikit-learn does).
        let mut feats = core::mem::take(&mut self.feats);
        feats.clear();
        feats.extend(0..self.d);
        self.rng.shuffle(&mut feats);
        let mut best: Option<(f64, usize, f64)> = None; // (proxy gain, feature, threshold)
        let mut tried = 0;
        // (value key, sample) pairs, sorted by value then sample: contiguous integer
        // keys sort much faster than indices into `x`, and the total order makes
        // the permutation (hence every floating-point sum over it) unique.
        let mut order = core::mem::take(&mut self.order);
        let mut left = Stats::new(self.stats_k());
        let mut right = Stats::new(self.stats_k());
        // Filtering a presorted list costs one pass over all rows; sorting costs
        // n log n of the node's: filter unless the node is a small part of the rows.
        let presorted = !self.sorted.is_empty() && n * 16 >= self.n_rows;
        if presorted {
            self.stamp += 1;
            for &i in idx.iter() {
                self.mark[i] = self.stamp;
            }
        }
        for &f in &feats {
            if tried >= self.max_features {
                break;
            }
            let col = &self.xt[f * self.n_rows..(f + 1) * self.n_rows];
            order.clear();
            let (first, last) = if presorted {
                let rows = &self.sorted[f * self.n_rows..(f + 1) * self.n_rows];
                let (mark, stamp) = (&self.mark, self.stamp);
                // Branch-free: write every row, advance only past the node's own
                // (membership is close to random, so a branch would mispredict).
                order.resize(n + 1, (0, 0));
                let mut k = 0;
                for &r in rows {
                    let i = r as usize;
                    order[k] = (sort_key(col[i]), i);
                    k += (mark[i] == stamp) as usize;
                }
                order.truncate(n);
                (order[0].0, order[n - 1].0)
            } else {
                order.extend(idx.iter().map(|&i| (sort_key(col[i]), i)));
                order
                    .iter()
                    .fold((u64::MAX, 0), |(lo, hi), &(v, _)| (lo.min(v), hi.max(v)))
            };
            if from_key(last) <= from_key(first) {
                continue; // constant here: does not count towards max_features
            }
            tried += 1;
            if !presorted {
                order.sort_unstable();
            }
            left.reset();
            right.copy_from(&total);
            for pos in 0..n - 1 {
                let (v, i) = (from_key(order[pos].0), order[pos].1);
                self.add(&mut left, i, 1.0);
                self.add(&mut right, i, -1.0);
                let v_next = from_key(order[pos + 1].0);
                if v_next <= v {
                    continue;
                }
                if left.n < self.p.min_samples_leaf || right.n < self.p.min_samples_leaf {
                    continue;
                }
                let child = (left.weight * self.impurity(&left)
                    + right.weight * self.impurity(&right))
                    / total.weight;
                let gain = imp - child;
                if best.is_none_or(|(g, _, _)| gain > g + 1e-12) {
                    let mut t = v + (v_next - v) / 2.0;
                    if t >= v_next {
                        t = v;
                    }
                    best = Some((gain, f, t));
                }
            }
        }
        self.feats = feats;
        self.order = order;
        let Some((gain, feature, threshold)) = best else {
            return self.leaf(&total);
        };
        let decrease = total.weight / self.total_weight * gain;
        // A zero-gain split is still taken (as in scikit-learn): XOR needs one.
        if decrease + f64::EPSILON < self.p.min_impurity_decrease {
            return self.leaf(&total);
        }
        // gain = imp - (w_l imp_l + w_r imp_r) / w, so this is scikit-learn's
        // w imp - w_l imp_l - w_r imp_r.
        self.tree.importance[feature] += total.weight * gain;
        let col = &self.xt[feature * self.n_rows..(feature + 1) * self.n_rows];
        let mut mid = 0;
        for j in 0..n {
            if col[idx[j]] <= threshold {
                idx.swap(mid, j);
                mid += 1;
            }
        }
        let node = self.tree.nodes.len();
        self.tree.nodes.push(Node::Leaf { value: 0 }); // placeholder until children exist
        let (l, r) = idx.split_at_mut(mid);
        let left = self.build(l, depth + 1);
        let right = self.build(r, depth + 1);
        self.tree.nodes[node] = Node::Split {
            feature,
            threshold,
            left,
            right,
        };
        node
    }
}

/// A fitted classification tree.
#[derive(Clone, Debug)]
pub struct FittedTreeClassifier<T> {
    /// The grown tree (leaf values are class probabilities).
    pub tree: Tree,
    /// Labels in probability order.
    pub classes: Vec<usize>,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedTreeClassifier<T> {
    pub(crate) fn new(tree: Tree, classes: Vec<usize>) -> Self {
        FittedTreeClassifier {
            tree,
            classes,
            _t: core::marker::PhantomData,
        }
    }

    /// Mean decrease in impurity per feature, summing to 1.
    pub fn feature_importances(&self) -> Vec<f64> {
        self.tree.feature_importances()
    }

    /// Class probabilities (leaf class frequencies), `rows x n_classes`.
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(
            x,
            self.tree.n_features,
            x.rows(),
            "DecisionTree::predict_proba",
        )?;
        Ok(x.iter_rows()
            .flat_map(|r| self.tree.leaf_values(r).iter().copied())
            .collect())
    }
}

impl<T: Scalar> Predict<T, usize> for FittedTreeClassifier<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.tree.n_features, out.len(), "DecisionTree::predict")?;
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            *o = self.classes[argmax(self.tree.leaf_values(r))];
        }
        Ok(())
    }
}

pub(crate) fn to_f64<T: Scalar>(x: MatRef<'_, T>) -> Vec<f64> {
    x.data().iter().map(|v| v.to_f64_lossless()).collect()
}

impl<T: Scalar> Fit<T, usize> for DecisionTree {
    type Fitted = FittedTreeClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        param(
            self.criterion != Criterion::Mse,
            "criterion",
            2.0,
            "Gini or Entropy for classification",
        )?;
        check_xy(x, y.len(), "DecisionTree::fit")?;
        let (classes, yi) = encode_labels(y);
        let w = vec![1.0; x.rows()];
        let tree = self.fit_weighted(
            &to_f64(x),
            x.rows(),
            x.cols(),
            Target::Classes(&yi, classes.len()),
            &w,
        );
        Ok(FittedTreeClassifier::new(tree, classes))
    }
}

/// A fitted regression tree.
#[derive(Clone, Debug)]
pub struct FittedTreeRegressor<T> {
    /// The grown tree (leaf values are means).
    pub tree: Tree,
    _t: core::marker::PhantomData<T>,
}

/// A regression tree: [`DecisionTree`] settings with the MSE criterion (a separate
/// type because the classifier already implements `Fit` with `usize` targets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecisionTreeRegressor(pub DecisionTree);

impl DecisionTreeRegressor {
    /// Sets the maximum depth.
    pub fn max_depth(self, d: Option<usize>) -> Self {
        DecisionTreeRegressor(self.0.max_depth(d))
    }
    /// Sets the minimum samples per leaf.
    pub fn min_samples_leaf(self, v: usize) -> Self {
        DecisionTreeRegressor(self.0.min_samples_leaf(v))
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.0.validate()?;
        param(
            self.0.criterion == Criterion::Mse,
            "criterion",
            0.0,
            "Mse for regression",
        )
    }
}

impl<T: Scalar> Fit<T, T> for DecisionTreeRegressor {
    type Fitted = FittedTreeRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "DecisionTree::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        let yf: Vec<f64> = y.iter().map(|v| v.to_f64_lossless()).collect();
        let w = vec![1.0; x.rows()];
        let tree = self
            .0
            .fit_weighted(&to_f64(x), x.rows(), x.cols(), Target::Values(&yf), &w);
        Ok(FittedTreeRegressor {
            tree,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T> FittedTreeRegressor<T> {
    /// Mean decrease in impurity (variance) per feature, summing to 1.
    pub fn feature_importances(&self) -> Vec<f64> {
        self.tree.feature_importances()
    }
}

impl<T: Scalar> Predict<T, T> for FittedTreeRegressor<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(x, self.tree.n_features, out.len(), "DecisionTree::predict")?;
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            *o = T::from_f64_lossy(self.tree.leaf_values(r)[0]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_needs_depth_two_and_stumps_pick_the_best_gini_split() {
        let x = [0.0f64, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let y = [0usize, 1, 1, 0];
        let m: FittedTreeClassifier<f64> = DecisionTree::default()
            .fit(MatRef::new(&x, 4, 2).unwrap(), &y)
            .unwrap();
        assert_eq!(
            m.predict(MatRef::new(&x, 4, 2).unwrap()).unwrap(),
            y.to_vec()
        );
        assert_eq!(m.tree.depth(), 2);
        // 1-D: y = [0,0,0,1,1,0]; the best Gini split is at 2.5 (left pure).
        let x1 = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let y1 = [0usize, 0, 0, 1, 1, 0];
        let s: FittedTreeClassifier<f64> = DecisionTree::default()
            .max_depth(Some(1))
            .fit(MatRef::new(&x1, 6, 1).unwrap(), &y1)
            .unwrap();
        match s.tree.nodes[0] {
            Node::Split { threshold, .. } => assert_eq!(threshold, 2.5),
            _ => panic!("expected a split"),
        }
        // Right leaf: {1, 1, 0} -> p(1) = 2/3.
        let p = s.predict_proba(MatRef::new(&[4.0], 1, 1).unwrap()).unwrap();
        assert!((p[1] - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn min_impurity_decrease_and_min_samples_split_stop_growth() {
        // Root Gini 16/36; the best split (at 2.5) leaves 0 and 4/9 on halves of
        // equal size, a decrease of 16/36 - 2/9 = 2/9 ~ 0.222.
        let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [0usize, 0, 0, 1, 1, 0];
        let mx = MatRef::new(&x, 6, 1).unwrap();
        let leaves = |t: DecisionTree| {
            let m: FittedTreeClassifier<f64> = t.max_depth(Some(1)).fit(mx, &y).unwrap();
            m.tree.n_leaves()
        };
        assert_eq!(
            leaves(DecisionTree::default().min_impurity_decrease(0.23)),
            1
        );
        assert_eq!(
            leaves(DecisionTree::default().min_impurity_decrease(0.22)),
            2
        );
        assert_eq!(leaves(DecisionTree::default().min_samples_split(7)), 1);
        assert_eq!(leaves(DecisionTree::default().min_samples_split(6)), 2);
    }

    #[test]
    fn presorted_columns_grow_the_same_trees_as_sorting_at_every_node() {
        // Few distinct values (many ties), weights with zeros, 3 classes and values.
        let (n, d) = (300, 5);
        let mut rng = Rng::seed_from_u64(9);
        let x: Vec<f64> = (0..n * d).map(|_| rng.below(7) as f64).collect();
        let y: Vec<usize> = (0..n).map(|i| (i * 7 + i / 13) % 3).collect();
        let v: Vec<f64> = (0..n).map(|i| ((i * 31) % 17) as f64 * 0.25).collect();
        let w: Vec<f64> = (0..n).map(|i| (i % 5 != 0) as usize as f64 * 1.5).collect();
        let (plain, sorted) = (Columns::new(&x, n, d), Columns::presorted(&x, n, d));
        for t in [
            DecisionTree::default(),
            DecisionTree::default()
                .max_features(MaxFeatures::Sqrt)
                .seed(4),
        ] {
            for target in [Target::Classes(&y, 3), Target::Values(&v)] {
                let a = t.fit_columns(&plain, target, &w);
                let b = t.fit_columns(&sorted, target, &w);
                assert!(a.node_count() > 20, "{}", a.node_count());
                assert_eq!(a.nodes, b.nodes);
                assert_eq!(a.values, b.values);
            }
        }
    }

    #[test]
    fn regression_tree_fits_a_step_and_min_samples_leaf_holds() {
        let x = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [1.0f64, 1.0, 1.0, 5.0, 5.0, 5.0];
        let m: FittedTreeRegressor<f64> = DecisionTree::regressor()
            .fit(MatRef::new(&x, 6, 1).unwrap(), &y)
            .unwrap();
        assert_eq!(m.tree.n_leaves(), 2);
        assert_eq!(
            m.predict(MatRef::new(&[2.4, 2.6], 2, 1).unwrap()).unwrap(),
            vec![1.0, 5.0]
        );
        let leafy: FittedTreeRegressor<f64> = DecisionTree::regressor()
            .min_samples_leaf(4)
            .fit(MatRef::new(&x, 6, 1).unwrap(), &y)
            .unwrap();
        assert_eq!(leafy.tree.n_leaves(), 1);
    }
}
