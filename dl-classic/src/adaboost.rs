//! AdaBoost, multi-class SAMME (Zhu, Zou, Rosset & Hastie 2009): trees fitted in
//! turn on reweighted samples.
//!
//! For `m = 1..M`: fit a tree with sample weights `w`; its weighted error
//! `err = sum_i w_i [h(x_i) != y_i] / sum_i w_i`; its say
//! `alpha = lr * (ln((1 - err) / err) + ln(K - 1))`; then
//! `w_i *= exp(alpha [h(x_i) != y_i])`, renormalized. Prediction:
//! `argmax_k sum_m alpha_m [h_m(x) = k]`.
//! A perfect tree (`err = 0`) ends boosting with that tree alone having a say; a
//! tree no better than chance (`err >= 1 - 1/K`) ends it and is discarded.

use crate::error::{
    check_learning_rate, check_n_estimators, check_predict, check_xy, Error, Result,
};
use crate::knn::{argmax, encode_labels};
use crate::tree::{to_f64, Columns, DecisionTree, Target, Tree};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// AdaBoost (SAMME) hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaBoost {
    /// Maximum number of boosting rounds (>= 1).
    pub n_estimators: usize,
    /// Shrinks each tree's say (> 0).
    pub learning_rate: f64,
    /// The weak learner (a stump by default).
    pub tree: DecisionTree,
    /// Seed of the trees' feature orders.
    pub seed: u64,
}

impl Default for AdaBoost {
    /// scikit-learn's defaults: 50 stumps, learning rate 1.
    fn default() -> Self {
        AdaBoost {
            n_estimators: 50,
            learning_rate: 1.0,
            tree: DecisionTree::default().max_depth(Some(1)),
            seed: 0,
        }
    }
}

impl AdaBoost {
    /// Defaults with `n` rounds.
    pub fn new(n: usize) -> Self {
        AdaBoost {
            n_estimators: n,
            ..Default::default()
        }
    }
    /// Sets the weak learner.
    pub fn tree(mut self, t: DecisionTree) -> Self {
        self.tree = t;
        self
    }
    /// Sets the learning rate.
    pub fn learning_rate(mut self, v: f64) -> Self {
        self.learning_rate = v;
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
        self.tree.validate()
    }
}

/// A fitted AdaBoost ensemble.
#[derive(Clone, Debug)]
pub struct FittedAdaBoost<T> {
    /// The weak learners.
    pub trees: Vec<Tree>,
    /// Each tree's say.
    pub alphas: Vec<f64>,
    /// Labels in class-index order.
    pub classes: Vec<usize>,
    n_features: usize,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> FittedAdaBoost<T> {
    /// Summed says per class, `rows x n_classes`.
    pub fn decision_function(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.n_features, x.rows(), "AdaBoost::decision_function")?;
        let k = self.classes.len();
        let mut out = vec![0.0; x.rows() * k];
        for (r, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            self.votes(r, o);
        }
        Ok(out)
    }

    /// The trees' importances weighted by their say (scikit-learn's
    /// `feature_importances_`), summing to 1.
    pub fn feature_importances(&self) -> Vec<f64> {
        let mut sum = vec![0.0; self.n_features];
        for (t, a) in self.trees.iter().zip(&self.alphas) {
            let imp = t.feature_importances();
            sum.iter_mut().zip(&imp).for_each(|(s, v)| *s += a * v);
        }
        let norm: f64 = self.alphas.iter().sum();
        sum.iter_mut().for_each(|s| *s /= norm);
        sum
    }

    fn votes(&self, r: &[T], o: &mut [f64]) {
        o.iter_mut().for_each(|v| *v = 0.0);
        for (t, a) in self.trees.iter().zip(&self.alphas) {
            o[argmax(t.leaf_values(r))] += a;
        }
    }
}

impl<T: Scalar> Predict<T, usize> for FittedAdaBoost<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "AdaBoost::predict")?;
        let mut v = vec![0.0; self.classes.len()];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            self.votes(r, &mut v);
            *o = self.classes[argmax(&v)];
        }
        Ok(())
    }
}

impl<T: Scalar> Fit<T, usize> for AdaBoost {
    type Fitted = FittedAdaBoost<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<FittedAdaBoost<T>> {
        self.validate()?;
        check_xy(x, y.len(), "AdaBoost::fit")?;
        let (classes, yi) = encode_labels(y);
        let (n, d, k) = (x.rows(), x.cols(), classes.len());
        if k < 2 {
            return Err(Error::SingleClass {
                op: "AdaBoost::fit",
            });
        }
        let xf = to_f64(x);
        // Every round fits to the same rows: lay them out and sort them once.
        let cols = Columns::presorted(&xf, n, d);
        let mut w = vec![1.0 / n as f64; n];
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut trees = Vec::new();
        let mut alphas = Vec::new();
        let chance = 1.0 - 1.0 / k as f64;
        for m in 0..self.n_estimators {
            let tree =
                self.tree
                    .seed(rng.next_u64())
                    .fit_columns(&cols, Target::Classes(&yi, k), &w);
            let wrong: Vec<bool> = (0..n)
                .map(|i| argmax(tree.leaf_values(&xf[i * d..(i + 1) * d])) != yi[i])
                .collect();
            let total: f64 = w.iter().sum();
            let err = w
                .iter()
                .zip(&wrong)
                .filter(|(_, &b)| b)
                .map(|(v, _)| v)
                .sum::<f64>()
                / total;
            if err <= 0.0 {
                trees.push(tree);
                alphas.push(1.0);
                break;
            }
            if err >= chance {
                if m == 0 {
                    return Err(Error::InvalidParameter {
                        name: "tree",
                        value: err,
                        valid: "a weak learner better than chance on the first round",
                    });
                }
                break;
            }
            let alpha =
                self.learning_rate * (libm::log((1.0 - err) / err) + libm::log((k - 1) as f64));
            trees.push(tree);
            alphas.push(alpha);
            let factor = libm::exp(alpha);
            for (wi, &bad) in w.iter_mut().zip(&wrong) {
                if bad {
                    *wi *= factor;
                }
            }
            let s: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= s);
        }
        Ok(FittedAdaBoost {
            trees,
            alphas,
            classes,
            n_features: d,
            _t: core::marker::PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boosted_stumps_fit_an_interval_a_single_stump_cannot() {
        // y = 1 inside (2, 5): no single threshold separates it; boosting does.
        let x: Vec<f64> = (0..8).map(|v| v as f64).collect();
        let y: Vec<usize> = x.iter().map(|&v| (v > 2.0 && v < 5.0) as usize).collect();
        let m = AdaBoost::new(20)
            .fit(MatRef::new(&x, 8, 1).unwrap(), &y)
            .unwrap();
        assert_eq!(m.predict(MatRef::new(&x, 8, 1).unwrap()).unwrap(), y);
        // First round: the best stump misclassifies 2 of 8 (err 1/4), so
        // alpha_1 = ln(3) + ln(1) for two classes.
        assert!((m.alphas[0] - 3f64.ln()).abs() < 1e-12, "{:?}", m.alphas);
    }
}
