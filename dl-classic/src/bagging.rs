//! Bagging (bootstrap aggregating, Breiman 1996): trees grown on bootstrap samples,
//! each trying *all* features at every split, averaged by their class
//! probabilities. It is a random forest without feature subsampling and shares its
//! fitted type ([`FittedForest`]), out-of-bag score and seeding rules.

use crate::error::{Error, Result};
use crate::forest::{fit_forest, FittedForest, RandomForest};
use crate::tree::{DecisionTree, MaxFeatures};
use dl_core::{Fit, MatRef, Scalar};

/// Bagged decision trees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bagging {
    /// Number of trees (>= 1).
    pub n_estimators: usize,
    /// The base tree (its `max_features` is forced to all, its seed set per tree).
    pub tree: DecisionTree,
    /// Bootstrap size as a fraction of `n`, in `(0, 1]`.
    pub max_samples: f64,
    /// Compute the out-of-bag accuracy.
    pub oob_score: bool,
    /// Seed of the ensemble.
    pub seed: u64,
}

impl Default for Bagging {
    /// scikit-learn's `BaggingClassifier` defaults: 10 fully grown trees.
    fn default() -> Self {
        Bagging {
            n_estimators: 10,
            tree: DecisionTree::default(),
            max_samples: 1.0,
            oob_score: false,
            seed: 0,
        }
    }
}

impl Bagging {
    /// Defaults with `n` trees.
    pub fn new(n: usize) -> Self {
        Bagging {
            n_estimators: n,
            ..Default::default()
        }
    }
    /// Sets the base tree.
    pub fn tree(mut self, t: DecisionTree) -> Self {
        self.tree = t;
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

    fn as_forest(&self) -> RandomForest {
        RandomForest {
            n_estimators: self.n_estimators,
            tree: self.tree.max_features(MaxFeatures::All),
            bootstrap: true,
            max_samples: self.max_samples,
            oob_score: self.oob_score,
            seed: self.seed,
        }
    }

    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.as_forest().validate()
    }
}

impl<T: Scalar> Fit<T, usize> for Bagging {
    type Fitted = FittedForest<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<FittedForest<T>> {
        fit_forest(&self.as_forest(), x, y, "Bagging::fit")
    }
}
