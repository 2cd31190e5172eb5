//! k-fold cross-validation and grid search on the bundled digits with a brute-force
//! kNN, against scikit-learn's `StratifiedKFold(5)` folds, `cross_val_score` and
//! `GridSearchCV` for k in {1, 3, 5, 7} (references: tests/fixtures/gen_knn_cv.py).
//!
//! The kNN lives here because dl-classic is written separately; it breaks distance
//! ties exactly as scikit-learn's single-threaded brute-force search does (see the
//! script's docstring): a max-heap of the k best fed in training order with
//! scikit-learn's `heap_push`, then a majority vote with ties to the smallest label.

mod common;

use common::Fixture;
use dl_core::{Fit, MatRef, Predict};
use dl_data::selection::{cross_val_score, grid_search, Cv, Domain, ParamSpace};
use dl_data::split::StratifiedKFold;
use dl_data::{datasets, metrics, Error};

const FIXTURE: &str = include_str!("fixtures/knn_cv.txt");

/// Brute-force k-nearest-neighbours classifier (L2, uniform votes).
struct Knn {
    k: usize,
}

struct FittedKnn {
    x: Vec<f64>,
    y: Vec<usize>,
    cols: usize,
    k: usize,
    n_classes: usize,
}

impl Fit<f64, usize> for Knn {
    type Fitted = FittedKnn;
    type Error = Error;
    fn fit(&self, x: MatRef<'_, f64>, y: &[usize]) -> Result<FittedKnn, Error> {
        if self.k == 0 || self.k > x.rows() {
            return Err(Error::InvalidParameter {
                op: "Knn",
                name: "k",
                value: self.k as f64,
                valid: "1..=n_samples",
            });
        }
        Ok(FittedKnn {
            x: x.data().to_vec(),
            y: y.to_vec(),
            cols: x.cols(),
            k: self.k,
            n_classes: y.iter().max().map_or(0, |m| m + 1),
        })
    }
}

/// scikit-learn's `heap_push` (sklearn/utils/_heap.pyx): a fixed-size max-heap whose
/// root holds the largest kept distance; a new value enters only if strictly smaller
/// than the root and sifts down, preferring the left child when the children tie.
/// Transcribed branch for branch (two branches coincide), so it can be checked
/// against the Cython line by line.
#[allow(clippy::if_same_then_else)]
fn heap_push(values: &mut [f64], indices: &mut [usize], val: f64, idx: usize) {
    let size = values.len();
    if val >= values[0] {
        return;
    }
    let mut cur = 0;
    loop {
        let left = 2 * cur + 1;
        let right = left + 1;
        let swap = if left >= size {
            break;
        } else if right >= size {
            if values[left] > val {
                left
            } else {
                break;
            }
        } else if values[left] >= values[right] {
            if val < values[left] {
                left
            } else {
                break;
            }
        } else if val < values[right] {
            right
        } else {
            break;
        };
        values[cur] = values[swap];
        indices[cur] = indices[swap];
        cur = swap;
    }
    values[cur] = val;
    indices[cur] = idx;
}

impl Predict<f64, usize> for FittedKnn {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, f64>, out: &mut [usize]) -> Result<(), Error> {
        let mut values = vec![0.0; self.k];
        let mut indices = vec![0; self.k];
        let mut votes = vec![0usize; self.n_classes];
        for (q, o) in x.iter_rows().zip(out.iter_mut()) {
            values.fill(f64::INFINITY);
            for (j, t) in self.x.chunks_exact(self.cols).enumerate() {
                // Squared distances of integer pixels are exact in f64.
                let d: f64 = q.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
                heap_push(&mut values, &mut indices, d, j);
            }
            votes.fill(0);
            for &j in &indices {
                votes[self.y[j]] += 1;
            }
            // First maximum: ties go to the smallest label, as numpy's argmax.
            let mut best = 0;
            for (c, &v) in votes.iter().enumerate() {
                if v > votes[best] {
                    best = c;
                }
            }
            *o = best;
        }
        Ok(())
    }
}

#[test]
fn stratified_folds_scores_and_grid_search_match_sklearn() {
    let fx = Fixture::parse(FIXTURE);
    let digits = datasets::digits::<f64>().unwrap();
    let skf = StratifiedKFold::new(5);
    assert_eq!(
        skf.test_folds(digits.targets()).unwrap(),
        fx.usizes("test_fold"),
        "fold assignment"
    );
    let folds = skf.split(digits.targets()).unwrap();
    let cv = Cv::new(digits.x(), digits.targets(), &folds).unwrap();
    for k in [1usize, 3, 5, 7] {
        let got = cross_val_score(&Knn { k }, &cv, metrics::accuracy).unwrap();
        let want = fx.f64s(&format!("scores_k{k}"));
        for (fold, (g, w)) in got.scores.iter().zip(&want).enumerate() {
            // Same hit count on every fold: equal to rounding.
            assert!(
                (g - w).abs() < 1e-12,
                "k={k} fold {fold}: {g} vs sklearn {w}"
            );
        }
        println!(
            "k={k}: mean {:.6} std {:.6} (sklearn per-fold {want:?})",
            got.mean, got.std
        );
    }
    let space = ParamSpace::new().add("k", Domain::Values(vec![1.0, 3.0, 5.0, 7.0]));
    let res = grid_search(
        &space,
        |p| {
            Ok(Knn {
                k: p.get_usize("k")?,
            })
        },
        &cv,
        metrics::accuracy,
    )
    .unwrap();
    let (means, stds) = (fx.f64s("grid_mean"), fx.f64s("grid_std"));
    for (i, t) in res.results.iter().enumerate() {
        assert!(
            (t.score.mean - means[i]).abs() < 1e-12,
            "{}: {} vs {}",
            t.params,
            t.score.mean,
            means[i]
        );
        assert!(
            (t.score.std - stds[i]).abs() < 1e-12,
            "{}: std {} vs {}",
            t.params,
            t.score.std,
            stds[i]
        );
    }
    assert_eq!(
        res.best_params().get_usize("k").unwrap(),
        fx.usizes("grid_best_k")[0]
    );
    println!("{}", res.table());
}

#[test]
fn heap_keeps_the_k_smallest_with_sklearn_tie_order() {
    // k = 3, distances 2, 2, 1, 1 pushed in index order (root first in each state):
    // [inf, inf, inf] -> 2(0) sifts left: [inf, 2(0), inf]; 2(1) sifts right (left 2
    // < right inf): [inf, 2(0), 2(1)]; 1(2): children tie, goes left, 2(0) rises to
    // the root: [2(0), 1(2), 2(1)]; 1(3) evicts the root 2(0): left 1 < right 2, so
    // it goes right and 2(1) rises: [2(1), 1(2), 1(3)]. Index 1 survives, not index
    // 0, where a stable sort by (distance, index) would keep {0, 2, 3}.
    let (mut v, mut i) = ([f64::INFINITY; 3], [0usize; 3]);
    for (idx, val) in [2.0, 2.0, 1.0, 1.0].into_iter().enumerate() {
        heap_push(&mut v, &mut i, val, idx);
    }
    assert_eq!(i, [1, 2, 3]);
    assert_eq!(v, [2.0, 1.0, 1.0]);
}

#[test]
fn random_and_bayesian_search_over_k_on_iris() {
    use dl_data::bayes::{bayes_search, BayesOpt};
    use dl_data::selection::random_search;
    let iris = datasets::iris::<f64>().unwrap();
    let folds = StratifiedKFold::new(5).split(iris.targets()).unwrap();
    let cv = Cv::new(iris.x(), iris.targets(), &folds).unwrap();
    let space = ParamSpace::new().add("k", Domain::IntRange { lo: 1, hi: 40 });
    let build = |p: &dl_data::selection::Params| {
        Ok(Knn {
            k: p.get_usize("k")?,
        })
    };
    let rs = random_search(&space, 8, 3, build, &cv, metrics::accuracy).unwrap();
    let opt = BayesOpt {
        n_evaluations: 8,
        n_initial: 3,
        seed: 3,
        ..Default::default()
    };
    let bo = bayes_search(&space, &opt, build, &cv, metrics::accuracy).unwrap();
    for res in [&rs, &bo] {
        assert_eq!(res.results.len(), 8);
        // Every row of the table is a real cross-validation of its parameters.
        for t in &res.results {
            let k = t.params.get_usize("k").unwrap();
            assert!((1..=40).contains(&k));
            let again = cross_val_score(&Knn { k }, &cv, metrics::accuracy).unwrap();
            assert_eq!(again, t.score);
        }
        let best = res.best_score().mean;
        assert!(res.results.iter().all(|t| t.score.mean <= best));
        // kNN on iris scores about 0.95-0.98 for moderate k.
        assert!(best > 0.95, "{}", res.table());
    }
    println!(
        "random search:\n{}\nBayesian search:\n{}",
        rs.table(),
        bo.table()
    );
}
