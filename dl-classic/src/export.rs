//! Fitted models to the microcontroller, as emlearn does for scikit-learn: a fitted
//! estimator lowers itself to a [`dl_deploy::Graph`], which `dl_deploy::encode`
//! writes as a blob that the heapless engine runs in place from flash.
//!
//! | fitted type | graph | output |
//! |---|---|---|
//! | [`FittedTreeClassifier`], [`FittedForest`] (forests and bagging) | `trees` | i32 `[1, 1]`: position in `classes` |
//! | [`FittedNaiveBayes`] (Gaussian only) | `gaussian_nb` | i32 `[1, 1]`: position in `classes` |
//! | [`FittedLogisticRegression`], [`FittedLinearClassifier`] | `dense` | f32 `[1, n_classes]`: class scores |
//! | [`LinearMap`] (linear regression) | `dense` | f32 `[1, n_outputs]`: `x W + b` |
//!
//! Every graph takes one f32 row `[1, n_features]`. For the classifiers the label
//! is `classes[pos]`, with `pos` the op's output or the first largest score. On f32
//! input the device predicts what `predict` predicts, row for row:
//! - trees: the split `x[f] <= t` (`t` in f64) is stored as `x[f] <= t32` with
//!   `t32 = dl_deploy::classic::threshold_f32(t)`, the same test for every f32
//!   `x`; leaf probabilities stay f64 and are summed over the trees and divided by
//!   their number in `predict`'s order. This holds for models fitted in f64 too.
//! - Gaussian naive Bayes and linear models run `predict`'s own f32 arithmetic in
//!   its order (for naive Bayes, `ln(2 pi var)` is computed here by the very
//!   expression `predict` uses). Bit for bit when fitted with `T = f32`; a model
//!   fitted in f64 has its parameters rounded to f32 and agrees up to that rounding.
//!
//! Not exported: multinomial and Bernoulli naive Bayes (refused with
//! [`Error::UnsupportedLayer`]), and regression trees, whose single-value leaves
//! would fit the trees' table but whose op answers with an argmax, not a value
//! ([`FittedTreeRegressor`](crate::tree::FittedTreeRegressor) does not implement
//! [`Export`]).
//!
//! ```
//! use dl_classic::export::Export;
//! use dl_classic::tree::DecisionTree;
//! use dl_core::{Fit, MatRef, Predict};
//! use dl_deploy::{encode, AlignedBlob, HeapArena, Model};
//! // Two features; the label is 7 when x0 > 1.5, else 3.
//! let x = [0.0f32, 1.0, 1.0, 0.0, 2.0, 1.0, 3.0, 0.0];
//! let tree = DecisionTree::default().fit(MatRef::new(&x, 4, 2).unwrap(), &[3, 3, 7, 7]).unwrap();
//! let (bytes, plan) = encode(&tree.export()?)?;
//! let blob = AlignedBlob::new(&bytes);
//! let model: Model = Model::from_bytes(blob.bytes())?;
//! let mut pos = [0i32];
//! model.run(HeapArena::new(plan.arena_len).bytes(), &[2.5f32, 0.0], &mut pos)?;
//! assert_eq!(tree.classes[pos[0] as usize], 7);
//! assert_eq!(tree.predict(MatRef::new(&[2.5, 0.0], 1, 2).unwrap()).unwrap(), [7]);
//! # Ok::<(), dl_deploy::Error>(())
//! ```

use crate::forest::FittedForest;
use crate::linear::{FittedLinearClassifier, LinearMap};
use crate::logistic::FittedLogisticRegression;
use crate::naive_bayes::{FittedNaiveBayes, Kind};
use crate::tree::{FittedTreeClassifier, Node, Tree};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::Scalar;
use dl_deploy::classic::{threshold_f32, LEAF};
use dl_deploy::{Error, Graph, Result};

/// A fitted model that lowers itself to a deployable [`Graph`] with an f32 input
/// `[1, n_features]` (see the [module doc](self) for each model's output).
pub trait Export {
    /// The model as a graph, ready for `dl_deploy::encode`.
    fn export(&self) -> Result<Graph>;
}

fn graph_err(op: &'static str, why: &'static str) -> Error {
    Error::Graph { op, why }
}

fn to_f32<T: Scalar>(v: T) -> f32 {
    v.to_f64_lossless() as f32
}

/// Trees in the layout of `Graph::trees` (see `dl_deploy::classic`): nodes in
/// preorder, two words each, and one table of leaf rows shared by every tree.
#[derive(Default)]
struct TreeLayout {
    roots: Vec<u32>,
    nodes: Vec<u32>,
    table: Vec<f64>,
    /// Each distinct leaf row (by its bits) and its row in `table`.
    rows: BTreeMap<Vec<u64>, u32>,
}

impl TreeLayout {
    /// Lays out `trees`, each with `n_classes` values per leaf.
    fn new(trees: &[Tree], n_classes: usize, layer: &'static str) -> Result<Self> {
        let mut t = TreeLayout::default();
        for (index, tree) in trees.iter().enumerate() {
            t.roots.push((t.nodes.len() / 2) as u32);
            t.push_tree(tree, index, n_classes, layer)?;
        }
        t.roots.push((t.nodes.len() / 2) as u32);
        Ok(t)
    }

    /// Appends one tree in preorder: the left child right after its parent, the
    /// right child `right` nodes after it, patched in once it is placed.
    fn push_tree(
        &mut self,
        tree: &Tree,
        index: usize,
        n_classes: usize,
        layer: &'static str,
    ) -> Result<()> {
        let unsupported = |why| Error::UnsupportedLayer { index, layer, why };
        // (node of `tree`, position of the parent whose right child it is)
        let mut stack = vec![(0usize, None::<usize>)];
        while let Some((i, parent)) = stack.pop() {
            let at = self.nodes.len() / 2;
            if let Some(p) = parent {
                let right = at - p;
                if right > 0xFFFF {
                    return Err(unsupported(
                        "a left subtree of 65535 nodes or more (the right-child offset has 16 bits)",
                    ));
                }
                self.nodes[2 * p] |= (right as u32) << 16;
            }
            match tree.nodes()[i] {
                Node::Leaf { value } => {
                    let row = tree.leaf_row(value);
                    if row.len() != n_classes {
                        return Err(unsupported("a leaf without one probability per class"));
                    }
                    let row = self.row(row);
                    self.nodes.extend([LEAF, row]);
                }
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    if feature >= LEAF as usize {
                        return Err(unsupported(
                            "a split on feature 65535 or above (the node format has 16 bits)",
                        ));
                    }
                    self.nodes
                        .extend([feature as u32, threshold_f32(threshold).to_bits()]);
                    stack.push((right, Some(at)));
                    stack.push((left, None));
                }
            }
        }
        Ok(())
    }

    /// The table row holding `values`, added if no leaf had it yet.
    fn row(&mut self, values: &[f64]) -> u32 {
        let key: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
        let next = self.rows.len() as u32;
        *self.rows.entry(key).or_insert_with(|| {
            self.table.extend_from_slice(values);
            next
        })
    }
}

/// The graph of trees voting by mean leaf probability over `n_classes` classes.
fn trees_graph(trees: &[Tree], n_classes: usize, layer: &'static str) -> Result<Graph> {
    let Some(n_features) = trees.first().map(Tree::n_features) else {
        return Err(graph_err(layer, "a forest with no trees"));
    };
    if trees.iter().any(|t| t.n_features() != n_features) {
        return Err(graph_err(
            layer,
            "trees fitted on different numbers of features",
        ));
    }
    let t = TreeLayout::new(trees, n_classes, layer)?;
    let mut g = Graph::new(&[1, n_features])?;
    g.trees(g.input, t.roots, t.nodes, t.table, n_classes)?;
    Ok(g)
}

impl<T: Scalar> Export for FittedTreeClassifier<T> {
    /// The tree, to the position of the predicted class in `classes` (i32).
    fn export(&self) -> Result<Graph> {
        trees_graph(
            core::slice::from_ref(&self.tree),
            self.classes.len(),
            "DecisionTree",
        )
    }
}

impl<T: Scalar> Export for FittedForest<T> {
    /// The trees, sharing one table of leaf rows (a forest of pure leaves stores
    /// one row per class), to the position of the predicted class in `classes`
    /// (i32).
    fn export(&self) -> Result<Graph> {
        trees_graph(&self.trees, self.classes.len(), "RandomForest")
    }
}

impl<T: Scalar> Export for FittedNaiveBayes<T> {
    /// Gaussian naive Bayes, to the position of the predicted class in `classes`
    /// (i32); the multinomial and Bernoulli kinds are refused.
    fn export(&self) -> Result<Graph> {
        let refuse = |layer| Error::UnsupportedLayer {
            index: 0,
            layer,
            why: "the device runs Gaussian naive Bayes only",
        };
        match self.kind() {
            Kind::Gaussian => {}
            Kind::Multinomial => return Err(refuse("MultinomialNb")),
            Kind::Bernoulli { .. } => return Err(refuse("BernoulliNb")),
        }
        let kd = self.classes.len() * self.n_features();
        if self.class_log_prior.len() != self.classes.len()
            || self.theta.len() != kd
            || self.aux.len() != kd
        {
            return Err(graph_err(
                "GaussianNb",
                "a prior per class and classes x features means and variances",
            ));
        }
        // `jll_row`'s own expression, in T, so the device adds the same f32 terms.
        let two_pi = T::from_f64_lossy(core::f64::consts::TAU);
        let log_term = self
            .aux
            .iter()
            .map(|&v| to_f32((two_pi * v).ln()))
            .collect();
        let f32s = |v: &[T]| v.iter().map(|&x| to_f32(x)).collect::<Vec<f32>>();
        let mut g = Graph::new(&[1, self.n_features()])?;
        g.gaussian_nb(
            g.input,
            f32s(&self.class_log_prior),
            f32s(&self.theta),
            f32s(&self.aux),
            log_term,
        )?;
        Ok(g)
    }
}

impl<T: Scalar> Export for LinearMap<T> {
    /// `x W + b` as a dense layer: f32 `[1, n_outputs]`. The engine's dense op
    /// computes `b_o + x_0 w_0o + x_1 w_1o + ...` in that order, as
    /// [`LinearMap::apply`] does.
    fn export(&self) -> Result<Graph> {
        let (d, k) = (self.n_features, self.n_outputs);
        if k == 0 || self.weights.len() != d * k || self.intercept.len() != k {
            return Err(graph_err(
                "LinearMap",
                "weights [n_features x n_outputs] and one intercept per output",
            ));
        }
        // Ours is `[in, out]`; the graph takes PyTorch's `[out, in]`.
        let mut w = vec![0.0f32; d * k];
        for (j, row) in self.weights.chunks_exact(k).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                w[o * d + j] = to_f32(v);
            }
        }
        let b: Vec<f32> = self.intercept.iter().map(|&v| to_f32(v)).collect();
        let mut g = Graph::new(&[1, d])?;
        g.dense(g.input, &w, Some(&b), k)?;
        Ok(g)
    }
}

impl<T: Scalar> Export for FittedLinearClassifier<T> {
    /// The class scores (f32 `[1, n_classes]`); the first largest is the
    /// prediction.
    fn export(&self) -> Result<Graph> {
        self.map.export()
    }
}

impl<T: Scalar> Export for FittedLogisticRegression<T> {
    /// The class scores (logits, f32 `[1, n_classes]`; `(0, w.x + b)` for two
    /// classes); the first largest is the prediction. Append `Graph::softmax` for
    /// probabilities, but take the argmax from the scores: two close logits can
    /// round to one probability.
    fn export(&self) -> Result<Graph> {
        self.linear.export()
    }
}
