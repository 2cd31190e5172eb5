//! Classic models on the device, as emlearn runs scikit-learn's: decision trees and
//! forests, and Gaussian naive Bayes, predicting from flash with no heap.
//!
//! Both compute exactly what dl-classic computes on the desktop, so predictions
//! agree one for one:
//! - a tree's split `x[f] <= t` (t in f64) is stored as `x[f] <= t32` with `t32` the
//!   largest f32 not above `t`, which is the same test for every f32 input; leaf
//!   class probabilities stay f64 and are summed over the trees, then divided by the
//!   number of trees, in dl-classic's order;
//! - naive Bayes runs dl-classic's f32 formula with `ln(2 pi var)` computed at export
//!   by the same function.
//!
//! Tree nodes are laid out in preorder, two words each: `feature | right << 16`, then
//! the threshold's bits, or for a leaf (`feature == 0xFFFF`) the row of its class
//! probabilities in a table shared by every tree (a forest of pure leaves needs one
//! row per class). The left child is the next node; `right` is the distance to the
//! right child, so every walk moves forward and ends inside its tree.

use crate::error::{Error, Result};

/// The feature value that marks a leaf.
pub const LEAF: u32 = 0xFFFF;

/// A forest (or one tree) borrowed from a blob, checked by [`Forest::check`].
#[derive(Clone, Copy, Debug)]
pub struct Forest<'a> {
    /// `n_trees + 1` node indices: tree `t` is nodes `roots[t]..roots[t + 1]`.
    pub roots: &'a [u32],
    /// Two words per node (see the module doc).
    pub nodes: &'a [u32],
    /// Class probability rows, each `n_classes` f64 as (low, high) word pairs.
    pub table: &'a [u32],
    /// Number of classes.
    pub n_classes: usize,
    /// Number of input features.
    pub n_features: usize,
}

impl Forest<'_> {
    /// Checks that every walk stays inside its tree and ends on a leaf with a row of
    /// the table; `at` is the blob offset to name in errors.
    pub fn check(&self, at: usize) -> Result<()> {
        let bad = |expected| Error::Corrupt {
            offset: at,
            expected,
        };
        let n_nodes = self.nodes.len() / 2;
        let rows = self.table.len() / (2 * self.n_classes.max(1));
        if self.roots.len() < 2
            || self.roots[0] != 0
            || self.roots.last() != Some(&(n_nodes as u32))
        {
            return Err(bad("tree roots from 0 to the number of nodes"));
        }
        for w in self.roots.windows(2) {
            let (start, end) = (w[0] as usize, w[1] as usize);
            if start >= end || end > n_nodes {
                return Err(bad(
                    "every tree with at least one node, inside the node array",
                ));
            }
            for i in start..end {
                let (head, value) = (self.nodes[2 * i], self.nodes[2 * i + 1]);
                let (feature, right) = (head & 0xFFFF, (head >> 16) as usize);
                if feature == LEAF {
                    if value as usize >= rows {
                        return Err(bad("a leaf whose row is in the probability table"));
                    }
                } else if feature as usize >= self.n_features
                    || i + 1 >= end
                    || right < 2
                    || i + right >= end
                {
                    return Err(bad(
                        "a split on a known feature with both children in its tree",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The position of the most probable class for `row` (the first on ties), with
    /// `proba` (`n_classes` long) as scratch.
    pub fn predict(&self, row: &[f32], proba: &mut [f64]) -> usize {
        proba.fill(0.0);
        let k = self.n_classes;
        for w in self.roots.windows(2) {
            let mut i = w[0] as usize;
            let leaf = loop {
                let (head, value) = (self.nodes[2 * i], self.nodes[2 * i + 1]);
                let feature = (head & 0xFFFF) as usize;
                if feature == LEAF as usize {
                    break value as usize;
                }
                i += if row[feature] <= f32::from_bits(value) {
                    1
                } else {
                    (head >> 16) as usize
                };
            };
            let cells = &self.table[2 * k * leaf..2 * k * (leaf + 1)];
            for (p, c) in proba.iter_mut().zip(cells.chunks_exact(2)) {
                *p += f64::from_bits(c[0] as u64 | (c[1] as u64) << 32);
            }
        }
        let m = (self.roots.len() - 1) as f64;
        let mut best = 0;
        for c in 0..k {
            proba[c] /= m;
            if proba[c] > proba[best] {
                best = c;
            }
        }
        best
    }
}

/// The largest f32 not above `t`: for every f32 `x`, `x as f64 <= t` exactly when
/// `x <= threshold_f32(t)`.
pub fn threshold_f32(t: f64) -> f32 {
    let r = t as f32;
    if (r as f64) <= t || r.is_nan() || r == f32::NEG_INFINITY {
        r
    } else if r == 0.0 {
        -f32::from_bits(1)
    } else if r > 0.0 {
        f32::from_bits(r.to_bits() - 1)
    } else {
        f32::from_bits(r.to_bits() + 1)
    }
}

/// Gaussian naive Bayes borrowed from a blob: per class `c` and feature `j`,
/// `jll_c = prior_c - sum_j 0.5 * (log_term_cj + (x_j - theta_cj)^2 / var_cj)`.
#[derive(Clone, Copy, Debug)]
pub struct GaussianNb<'a> {
    /// `log pi_c`.
    pub prior: &'a [f32],
    /// Means, `classes x features`.
    pub theta: &'a [f32],
    /// Variances, `classes x features`.
    pub var: &'a [f32],
    /// `ln(2 pi var)`, `classes x features`.
    pub log_term: &'a [f32],
}

impl GaussianNb<'_> {
    /// The position of the class with the largest joint log-likelihood (the first
    /// on ties).
    pub fn predict(&self, row: &[f32]) -> usize {
        let d = row.len();
        let (mut best, mut best_s) = (0, f32::NEG_INFINITY);
        for (c, &prior) in self.prior.iter().enumerate() {
            let mut s = prior;
            let th = &self.theta[c * d..(c + 1) * d];
            let va = &self.var[c * d..(c + 1) * d];
            let lt = &self.log_term[c * d..(c + 1) * d];
            for j in 0..d {
                let diff = row[j] - th[j];
                s -= 0.5 * (lt[j] + diff * diff / va[j]);
            }
            if c == 0 || s > best_s {
                best = c;
                best_s = s;
            }
        }
        best
    }
}
