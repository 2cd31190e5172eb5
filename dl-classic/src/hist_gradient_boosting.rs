//! Histogram gradient boosting (LightGBM's scheme, Ke et al. 2017; scikit-learn's
//! `HistGradientBoostingClassifier` and `HistGradientBoostingRegressor`): features
//! are bucketed once into at most 255 bins, and each tree is grown leaf by leaf from
//! per-bin sums of gradients and hessians, so finding a split costs the number of
//! bins, not a sort of the rows.
//!
//! Per iteration: gradients `g` and hessians `h` of the loss at the current raw
//! prediction (squared error: `g = F - y`, `h = 1`; log loss: `g = p - y`,
//! `h = p (1 - p)`, one tree per class beyond two). A tree starts as one leaf; the
//! leaf whose best split gains most is split next (best first), until
//! `max_leaf_nodes` leaves or no split gains. A split on bin `b` of a feature sends
//! bins `<= b` left, its gain is `G_L^2 / (H_L + l2) + G_R^2 / (H_R + l2) -
//! G^2 / (H + l2)`, and each child needs `min_samples_leaf` rows. A child's histogram
//! is built from its rows only for the smaller child; the larger one's is the
//! parent's minus the smaller's. Leaves take the Newton value `-G / (H + l2)`,
//! scaled by the learning rate.
//!
//! The fitted models are the gradient-boosting ones
//! ([`FittedGradientBoostingClassifier`], [`FittedGradientBoostingRegressor`]):
//! trees on the raw feature values (a bin split becomes `x <= threshold`), with
//! probabilities, staged predictions and importances.
//!
//! Bin thresholds come from all rows (scikit-learn subsamples 200,000 rows first);
//! early stopping is opt-in, with gradient boosting's rule; there is no
//! missing-value bin (inputs with NaN are rejected), no categorical features and no
//! monotonic constraints.
//!
//! ```
//! use dl_classic::hist_gradient_boosting::HistGradientBoosting;
//! use dl_core::{Fit, MatRef, Predict};
//! let x: Vec<f64> = (0..200).map(|v| v as f64 / 20.0).collect();
//! let y: Vec<usize> = x.iter().map(|&v| (v > 3.0 && v < 7.0) as usize).collect();
//! let xm = MatRef::new(&x, 200, 1).unwrap();
//! let m = HistGradientBoosting::default().fit(xm, &y).unwrap();
//! assert_eq!(m.predict(xm).unwrap(), y);
//! ```

use crate::error::{check_learning_rate, param, Error, Result};
use crate::gradient_boosting::{
    drive, fit_classifier, fit_regressor, per_output, Boosted, Booster, EarlyStopping,
    FittedGradientBoostingClassifier, FittedGradientBoostingRegressor, Loss, RegressionLoss,
};
use crate::tree::Tree;
use alloc::collections::BinaryHeap;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Scalar};

/// Histogram gradient-boosting hyper-parameters (scikit-learn's defaults); fits a
/// classifier ([`Fit`] with `usize` labels). [`HistGradientBoostingRegressor`]
/// wraps the same settings for squared error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistGradientBoosting {
    /// Boosting iterations (>= 1); each fits one tree per class beyond two.
    pub max_iter: usize,
    /// Shrinks each tree's values (> 0).
    pub learning_rate: f64,
    /// Leaves per tree (>= 2).
    pub max_leaf_nodes: usize,
    /// Maximum depth (`None`: only `max_leaf_nodes` limits the trees; >= 1).
    pub max_depth: Option<usize>,
    /// Rows a leaf must keep (>= 1).
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values (>= 0).
    pub l2_regularization: f64,
    /// Bins per feature (2..=255).
    pub max_bins: usize,
    /// Stop adding iterations when the loss on a held-out part of the training
    /// rows stops improving (`None`: always fit `max_iter`). The rule is gradient
    /// boosting's (scikit-learn's `GradientBoosting*` one); scikit-learn's
    /// histogram models turn it on by default above 10,000 rows, this does not.
    pub early_stopping: Option<EarlyStopping>,
    /// Seed of the held-out split (nothing else here is random).
    pub seed: u64,
}

impl Default for HistGradientBoosting {
    /// scikit-learn's defaults: 100 iterations, learning rate 0.1, 31 leaves, no
    /// depth limit, 20 rows per leaf, no L2 penalty, 255 bins.
    fn default() -> Self {
        HistGradientBoosting {
            max_iter: 100,
            learning_rate: 0.1,
            max_leaf_nodes: 31,
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping: None,
            seed: 0,
        }
    }
}

impl HistGradientBoosting {
    /// Defaults with `n` iterations.
    pub fn new(n: usize) -> Self {
        HistGradientBoosting {
            max_iter: n,
            ..Default::default()
        }
    }
    /// Sets the learning rate.
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.learning_rate = v;
        self
    }
    /// Sets the leaves per tree.
    pub fn max_leaf_nodes(mut self, v: usize) -> Self {
        self.max_leaf_nodes = v;
        self
    }
    /// Sets the maximum depth.
    pub fn max_depth(mut self, d: Option<usize>) -> Self {
        self.max_depth = d;
        self
    }
    /// Sets the rows a leaf must keep.
    pub fn min_samples_leaf(mut self, v: usize) -> Self {
        self.min_samples_leaf = v;
        self
    }
    /// Sets the L2 penalty.
    pub fn l2_regularization(mut self, v: f64) -> Self {
        self.l2_regularization = v;
        self
    }
    /// Sets the bins per feature.
    pub fn max_bins(mut self, v: usize) -> Self {
        self.max_bins = v;
        self
    }
    /// Turns early stopping on (or off with `None`).
    pub fn early_stopping(mut self, e: Option<EarlyStopping>) -> Self {
        self.early_stopping = e;
        self
    }
    /// Sets the seed of the held-out split.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")?;
        check_learning_rate(self.learning_rate)?;
        param(
            self.max_leaf_nodes >= 2,
            "max_leaf_nodes",
            self.max_leaf_nodes as f64,
            ">= 2",
        )?;
        if let Some(d) = self.max_depth {
            param(d >= 1, "max_depth", d as f64, ">= 1")?;
        }
        param(
            self.min_samples_leaf >= 1,
            "min_samples_leaf",
            self.min_samples_leaf as f64,
            ">= 1",
        )?;
        param(
            self.l2_regularization >= 0.0 && self.l2_regularization.is_finite(),
            "l2_regularization",
            self.l2_regularization,
            ">= 0",
        )?;
        param(
            (2..=255).contains(&self.max_bins),
            "max_bins",
            self.max_bins as f64,
            "2..=255",
        )?;
        if let Some(e) = self.early_stopping {
            e.validate()?;
        }
        Ok(())
    }

    /// Grows one tree best first on the negative gradients `r` and hessians `h`;
    /// returns it with the rows of each leaf (by leaf number).
    fn grow(&self, bins: &Binned, r: &[f64], h: &[f64]) -> (Tree, Vec<Vec<u32>>) {
        let n = r.len();
        let rows: Vec<u32> = (0..n as u32).collect();
        let hist = bins.histogram(&rows, r, h);
        let root = Leaf::new(self, bins, rows, hist, 0, 0);
        let mut tree = Tree::leaf_only(bins.d, root.value);
        let mut heap = BinaryHeap::new();
        let mut done = Vec::new();
        if root.split.is_some() {
            heap.push(root);
        } else {
            done.push(root);
        }
        let mut leaves = 1;
        while leaves < self.max_leaf_nodes {
            let Some(leaf) = heap.pop() else { break };
            let Some(s) = leaf.split else { continue };
            let col = bins.column(s.feature);
            let (l_rows, r_rows): (Vec<u32>, Vec<u32>) = leaf
                .rows
                .iter()
                .copied()
                .partition(|&i| col[i as usize] <= s.bin);
            // Histogram subtraction: build the smaller child, derive the larger.
            let small_left = l_rows.len() <= r_rows.len();
            let small = bins.histogram(if small_left { &l_rows } else { &r_rows }, r, h);
            let large: Vec<Sums> = leaf
                .hist
                .iter()
                .zip(&small)
                .map(|(p, c)| p.minus(c))
                .collect();
            let (l_hist, r_hist) = if small_left {
                (small, large)
            } else {
                (large, small)
            };
            let depth = leaf.depth + 1;
            let threshold = bins.thresholds[s.feature][s.bin as usize];
            let (l_node, r_node) = tree.split_leaf(
                leaf.node,
                s.feature,
                threshold,
                (s.left_value, s.right_value),
                s.gain,
            );
            leaves += 1;
            for (node, rows, hist) in [(l_node, l_rows, l_hist), (r_node, r_rows, r_hist)] {
                let child = Leaf::new(self, bins, rows, hist, node, depth);
                if child.split.is_some() {
                    heap.push(child);
                } else {
                    done.push(child);
                }
            }
        }
        done.extend(heap);
        let mut rows_by_leaf = vec![Vec::new(); leaves];
        for leaf in done {
            rows_by_leaf[tree.leaf_number(leaf.node)] = leaf.rows;
        }
        (tree, rows_by_leaf)
    }
}

impl Booster for HistGradientBoosting {
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
        let bins = Binned::new(x, n, d, self.max_bins);
        // Squared error's hessian is 1; log loss's comes beside the residuals.
        let ones = if matches!(loss, Loss::Squared(_)) {
            vec![1.0; n]
        } else {
            Vec::new()
        };
        let (lr, early) = (self.learning_rate, self.early_stopping);
        drive(
            self.max_iter,
            lr,
            d,
            loss,
            val,
            early,
            op,
            |loss, res, aux| {
                per_output(loss.outputs(), |j| {
                    let h = if ones.is_empty() {
                        &aux[j * n..][..n]
                    } else {
                        &ones
                    };
                    let (tree, rows) = self.grow(&bins, &res[j * n..][..n], h);
                    let mut values = vec![0.0; n];
                    for (leaf, members) in rows.iter().enumerate() {
                        for &i in members {
                            values[i as usize] = tree.leaf_value(leaf);
                        }
                    }
                    (tree, values)
                })
            },
        )
    }
}

/// Sums of negative gradients (`r = -g`, what the loss hands out), hessians and
/// rows in one bin (or node).
#[derive(Clone, Copy, Default)]
struct Sums {
    r: f64,
    h: f64,
    n: u32,
}

impl Sums {
    fn plus(&self, o: &Sums) -> Sums {
        Sums {
            r: self.r + o.r,
            h: self.h + o.h,
            n: self.n + o.n,
        }
    }

    fn minus(&self, o: &Sums) -> Sums {
        Sums {
            r: self.r - o.r,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// The features bucketed: `bins[f * n + i]` is row `i`'s bin of feature `f`; a
/// row is in bin `b` when `thresholds[f][b - 1] < x <= thresholds[f][b]`.
struct Binned {
    bins: Vec<u8>,
    thresholds: Vec<Vec<f64>>,
    /// Histogram stride: the most bins any feature has.
    stride: usize,
    n: usize,
    d: usize,
}

impl Binned {
    fn new(x: &[f64], n: usize, d: usize, max_bins: usize) -> Self {
        let mut thresholds = Vec::with_capacity(d);
        let mut bins = vec![0u8; n * d];
        let mut col = Vec::with_capacity(n);
        for f in 0..d {
            col.clear();
            col.extend(x.chunks_exact(d).map(|r| r[f]));
            let t = bin_thresholds(&mut col.clone(), max_bins);
            for (b, r) in bins[f * n..(f + 1) * n].iter_mut().zip(&col) {
                *b = t.partition_point(|&v| v < *r) as u8;
            }
            thresholds.push(t);
        }
        let stride = thresholds.iter().map(|t| t.len() + 1).max().unwrap_or(1);
        Binned {
            bins,
            thresholds,
            stride,
            n,
            d,
        }
    }

    fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n..(f + 1) * self.n]
    }

    /// Per-feature, per-bin sums over `rows`: `hist[f * stride + b]`.
    fn histogram(&self, rows: &[u32], r: &[f64], h: &[f64]) -> Vec<Sums> {
        let mut hist = vec![Sums::default(); self.d * self.stride];
        for f in 0..self.d {
            let col = self.column(f);
            let hf = &mut hist[f * self.stride..(f + 1) * self.stride];
            for &i in rows {
                let i = i as usize;
                let s = &mut hf[col[i] as usize];
                s.r += r[i];
                s.h += h[i];
                s.n += 1;
            }
        }
        hist
    }
}

/// scikit-learn's `_find_binning_thresholds`: with at most `max_bins` distinct
/// values, the midpoints between consecutive ones; otherwise the `max_bins - 1`
/// inner percentiles (NumPy's "midpoint" method), without repeats.
fn bin_thresholds(col: &mut [f64], max_bins: usize) -> Vec<f64> {
    col.sort_unstable_by(f64::total_cmp);
    let mut distinct = col.to_vec();
    distinct.dedup();
    let mut t: Vec<f64> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| (w[0] + w[1]) * 0.5).collect()
    } else {
        let last = (col.len() - 1) as f64;
        (1..max_bins)
            .map(|q| {
                let at = last * (q as f64 * 100.0 / max_bins as f64 / 100.0);
                let lo = libm::floor(at) as usize;
                if at == lo as f64 {
                    col[lo]
                } else {
                    (col[lo] + col[lo + 1]) * 0.5
                }
            })
            .collect()
    };
    t.dedup();
    t
}

/// The best split of a leaf.
#[derive(Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    /// Bins `<= bin` go left.
    bin: u8,
    left_value: f64,
    right_value: f64,
}

/// A leaf of the growing tree, ordered by the gain of its best split.
struct Leaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    hist: Vec<Sums>,
    value: f64,
    split: Option<Split>,
}

impl Leaf {
    fn new(
        p: &HistGradientBoosting,
        bins: &Binned,
        rows: Vec<u32>,
        hist: Vec<Sums>,
        node: usize,
        depth: usize,
    ) -> Leaf {
        let l2 = p.l2_regularization;
        // Every feature's bins add up to the node's totals; take feature 0's.
        let total = hist[..bins.stride]
            .iter()
            .fold(Sums::default(), |a, s| a.plus(s));
        let value = newton(total, l2);
        let can_split =
            p.max_depth.is_none_or(|m| depth < m) && total.n as usize >= 2 * p.min_samples_leaf;
        let split = if can_split {
            best_split(p, bins, &hist, total)
        } else {
            None
        };
        Leaf {
            node,
            depth,
            rows,
            // Only a leaf that will be split needs its histogram (for its children's
            // subtraction): a finished leaf frees it.
            hist: if split.is_some() { hist } else { Vec::new() },
            value,
            split,
        }
    }
}

/// The leaf value `-G / (H + l2)` = `R / (H + l2)` (scikit-learn adds 1e-15
/// against H = 0).
fn newton(s: Sums, l2: f64) -> f64 {
    s.r / (s.h + l2 + 1e-15)
}

/// The split of largest positive gain over every feature and bin, if any.
fn best_split(
    p: &HistGradientBoosting,
    bins: &Binned,
    hist: &[Sums],
    total: Sums,
) -> Option<Split> {
    // scikit-learn's min_hessian_to_split.
    const MIN_HESSIAN: f64 = 1e-3;
    let l2 = p.l2_regularization;
    let score = |s: Sums| s.r * s.r / (s.h + l2);
    let parent = score(total);
    let min_leaf = p.min_samples_leaf as u32;
    let mut best: Option<Split> = None;
    for f in 0..bins.d {
        let nb = bins.thresholds[f].len() + 1;
        let hf = &hist[f * bins.stride..f * bins.stride + nb];
        let mut left = Sums::default();
        for (b, s) in hf.iter().enumerate().take(nb - 1) {
            left = left.plus(s);
            let right = total.minus(&left);
            if left.n < min_leaf || right.n < min_leaf {
                continue;
            }
            if left.h < MIN_HESSIAN || right.h < MIN_HESSIAN {
                continue;
            }
            let gain = score(left) + score(right) - parent;
            if gain > 0.0 && best.is_none_or(|s| gain > s.gain) {
                best = Some(Split {
                    gain,
                    feature: f,
                    bin: b as u8,
                    left_value: newton(left, l2),
                    right_value: newton(right, l2),
                });
            }
        }
    }
    best
}

impl PartialEq for Leaf {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == core::cmp::Ordering::Equal
    }
}
impl Eq for Leaf {}
impl PartialOrd for Leaf {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Leaf {
    /// By gain, then the older node first (a total order, so growth is
    /// deterministic).
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        let gain = |l: &Leaf| l.split.map_or(f64::NEG_INFINITY, |s| s.gain);
        gain(self)
            .total_cmp(&gain(o))
            .then_with(|| o.node.cmp(&self.node))
    }
}

impl<T: Scalar> Fit<T, usize> for HistGradientBoosting {
    type Fitted = FittedGradientBoostingClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        self.validate()?;
        fit_classifier(self, x, y, "HistGradientBoosting::fit")
    }
}

/// Histogram gradient boosting for real targets with squared error:
/// [`HistGradientBoosting`] settings (a separate type because the classifier
/// already implements `Fit` with `usize` targets).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HistGradientBoostingRegressor(pub HistGradientBoosting);

impl<T: Scalar> Fit<T, T> for HistGradientBoostingRegressor {
    type Fitted = FittedGradientBoostingRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        self.0.validate()?;
        let op = "HistGradientBoostingRegressor::fit";
        fit_regressor(&self.0, RegressionLoss::SquaredError, x, y, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient_boosting::EarlyStopping;
    use dl_core::{Predict, Rng};

    #[test]
    fn bin_thresholds_are_midpoints_or_midpoint_percentiles() {
        // Few distinct values: midpoints between them.
        let mut few = [3.0, 1.0, 2.0, 1.0, 3.0];
        assert_eq!(bin_thresholds(&mut few, 255), vec![1.5, 2.5]);
        // Many: NumPy's percentile(arange(1000), [25, 50, 75], method="midpoint").
        let mut many: Vec<f64> = (0..1000).rev().map(|v| v as f64).collect();
        assert_eq!(bin_thresholds(&mut many, 4), vec![249.5, 499.5, 749.5]);
        // Bins: x <= t[b] and x > t[b - 1].
        let x = [1.0, 1.5, 1.6, 2.5, 3.0];
        let b = Binned::new(&x, 5, 1, 255);
        assert_eq!(b.thresholds[0], vec![1.25, 1.55, 2.05, 2.75]);
        assert_eq!(b.column(0), &[0, 1, 2, 3, 4]);
    }

    #[test]
    fn early_stopping_ends_boosting_on_noise() {
        let mut rng = Rng::seed_from_u64(8);
        let x: Vec<f64> = (0..1000).map(|_| rng.next_f64()).collect();
        let y: Vec<f64> = (0..500).map(|_| rng.next_f64()).collect();
        let xm = MatRef::new(&x, 500, 2).unwrap();
        let es = EarlyStopping::default();
        let p = HistGradientBoosting::new(300).early_stopping(Some(es));
        let m = HistGradientBoostingRegressor(p).fit(xm, &y).unwrap();
        assert!(m.n_stages() < 100, "{}", m.n_stages());
        assert_eq!(m.validation_loss.len(), m.n_stages());
        // Without it, all 300 iterations.
        let full = HistGradientBoostingRegressor(HistGradientBoosting::new(300))
            .fit(xm, &y)
            .unwrap();
        assert_eq!((full.n_stages(), full.validation_loss.len()), (300, 0));
        // Classes: the held-out split is stratified and seeded.
        let yc: Vec<usize> = y.iter().map(|&v| (v * 3.0) as usize).collect();
        let fit = |seed| p.seed(seed).fit(xm, &yc).unwrap().validation_loss;
        assert_eq!(fit(1), fit(1));
        assert_ne!(fit(1), fit(2));
    }

    #[test]
    fn constant_features_and_targets_give_leaves_not_panics() {
        // Feature 0 constant, feature 1 informative, f32 input.
        let x: Vec<f32> = (0..100).flat_map(|i| [7.0, i as f32]).collect();
        let xm = MatRef::new(&x, 100, 2).unwrap();
        let y: Vec<usize> = (0..100).map(|i| (i >= 50) as usize).collect();
        let m = HistGradientBoosting::new(10).fit(xm, &y).unwrap();
        assert_eq!(m.predict(xm).unwrap(), y);
        assert_eq!(m.feature_importances()[0], 0.0);
        // A constant target: every tree is one leaf predicting the mean.
        let flat = vec![2.5f32; 100];
        let r = HistGradientBoostingRegressor::default()
            .fit(xm, &flat)
            .unwrap();
        assert!(r.trees.iter().all(|t| t.n_leaves() == 1));
        assert!(r
            .predict(xm)
            .unwrap()
            .iter()
            .all(|&v| (v - 2.5).abs() < 1e-6));
    }

    #[test]
    fn trees_respect_leaf_count_depth_and_leaf_size() {
        let mut rng = Rng::seed_from_u64(4);
        let x: Vec<f64> = (0..3000).map(|_| rng.next_f64()).collect();
        let y: Vec<f64> = x
            .chunks(3)
            .map(|r| (6.0 * r[0]).sin() + r[1] * r[2] + 0.1 * rng.next_f64())
            .collect();
        let xm = MatRef::new(&x, 1000, 3).unwrap();
        for (leaves, depth, min_leaf) in [(31, None, 20), (8, Some(2), 5), (64, Some(5), 50)] {
            let p = HistGradientBoosting::new(5)
                .max_leaf_nodes(leaves)
                .max_depth(depth)
                .min_samples_leaf(min_leaf);
            let m = HistGradientBoostingRegressor(p).fit(xm, &y).unwrap();
            for t in &m.trees {
                assert!(t.n_leaves() <= leaves, "{} leaves", t.n_leaves());
                assert!(depth.is_none_or(|d| t.depth() <= d), "depth {}", t.depth());
            }
            // Every leaf of the first tree holds at least min_leaf rows.
            let mut count = vec![0usize; m.trees[0].n_leaves()];
            for r in x.chunks(3) {
                count[m.trees[0].leaf_of(r)] += 1;
            }
            assert!(count.iter().all(|&c| c >= min_leaf), "{count:?}");
        }
        // Defaults grow full 31-leaf trees here, and the fit improves every step.
        let m = HistGradientBoostingRegressor::default()
            .fit(xm, &y)
            .unwrap();
        assert_eq!(m.trees[0].n_leaves(), 31);
        assert!(m.train_loss.windows(2).all(|w| w[1] < w[0]));
        let pred = m.predict(xm).unwrap();
        let mse = pred
            .iter()
            .zip(&y)
            .map(|(p, t)| (p - t) * (p - t))
            .sum::<f64>()
            / 1000.0;
        assert!(mse < 0.01, "training MSE {mse}");
    }
}
