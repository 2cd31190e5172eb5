//! kNN, tree and random-forest regressors against scikit-learn on the diabetes set
//! (442 rows, 10 features; `tests/reference/regressors.py` wrote `diabetes.csv`,
//! first 331 rows = training set, and scikit-learn's outputs in `regressors.csv`).
//! Each tolerance sits beside its comparison with the reason it cannot be tighter.

use dl_classic::forest::RandomForestRegressor;
use dl_classic::knn::{Algorithm, KNeighborsRegressor, Metric, Weights};
use dl_classic::tree::{DecisionTree, MaxFeatures};
use dl_core::{Fit, MatRef, Predict};
use std::collections::HashMap;

const N_TRAIN: usize = 331;

fn reference_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/reference")
        .join(name)
}

/// Training and test features (row-major, 10 columns) and targets.
struct Diabetes {
    xtr: Vec<f64>,
    ytr: Vec<f64>,
    xte: Vec<f64>,
    yte: Vec<f64>,
}

const D: usize = 10;

fn diabetes() -> Diabetes {
    let text = std::fs::read_to_string(reference_path("diabetes.csv")).expect("diabetes.csv");
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.parse().expect("number"))
            .collect();
        assert_eq!(v.len(), D + 1);
        x.extend_from_slice(&v[..D]);
        y.push(v[D]);
    }
    assert_eq!(y.len(), 442);
    let xte = x.split_off(N_TRAIN * D);
    let yte = y.split_off(N_TRAIN);
    Diabetes {
        xtr: x,
        ytr: y,
        xte,
        yte,
    }
}

fn reference() -> HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(reference_path("regressors.csv")).expect("regressors.csv");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut f = line.split(',');
            let key = f.next().unwrap().to_string();
            (key, f.map(|s| s.parse().expect("number")).collect())
        })
        .collect()
}

/// `|got - want| <= rtol * |want|` element-wise, naming the worst element.
fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs(),
            "{what}[{i}]: got {g}, scikit-learn {w} (|diff| {:e})",
            (g - w).abs()
        );
    }
}

fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    1.0 - ss_res / ss_tot
}

#[test]
fn knn_regressor_matches_sklearn_on_diabetes() {
    let (data, r) = (diabetes(), reference());
    let xtr = MatRef::new(&data.xtr, N_TRAIN, D).unwrap();
    for k in [1usize, 5, 10] {
        for (tag, metric) in [("l2", Metric::L2), ("l1", Metric::L1)] {
            let keep: Vec<usize> = r[&format!("knn_{tag}_k{k}_keep")]
                .iter()
                .map(|&v| v as usize)
                .collect();
            let q: Vec<f64> = keep
                .iter()
                .flat_map(|&i| data.xte[i * D..(i + 1) * D].iter().copied())
                .collect();
            let qm = MatRef::new(&q, keep.len(), D).unwrap();
            for (wtag, weights) in [
                ("uniform", Weights::Uniform),
                ("distance", Weights::Distance),
            ] {
                let want = &r[&format!("knn_{tag}_k{k}_{wtag}")];
                for algorithm in [Algorithm::Brute, Algorithm::KdTree] {
                    let m = KNeighborsRegressor::new(k)
                        .metric(metric)
                        .weights(weights)
                        .algorithm(algorithm)
                        .fit(xtr, &data.ytr)
                        .unwrap();
                    let got = m.predict(qm).unwrap();
                    // The script kept only queries whose k-th and (k+1)-th distances
                    // differ by > 1e-9 relative, so both pick the same neighbours;
                    // the mean of the same k targets (or their 1/d-weighted mean,
                    // with distances summed in another order, ~1e-15 relative) can
                    // differ only by rounding: a few ulps, bounded by 1e-12.
                    assert_close(
                        &format!("knn {tag} k={k} {wtag} {algorithm:?}"),
                        &got,
                        want,
                        1e-12,
                    );
                }
            }
        }
    }
}

#[test]
fn cart_and_unbootstrapped_forest_regressors_match_sklearn_tree() {
    let (data, r) = (diabetes(), reference());
    let xtr = MatRef::new(&data.xtr, N_TRAIN, D).unwrap();
    let xte = MatRef::new(&data.xte, data.yte.len(), D).unwrap();
    let p = &r["cart_params"];
    let (depth, leaf) = (p[0] as usize, p[1] as usize);
    let tree = DecisionTree::regressor()
        .max_depth(Some(depth))
        .min_samples_leaf(leaf)
        .fit(xtr, &data.ytr)
        .unwrap();
    let tree_pred = tree.predict(xte).unwrap();
    // The script proved every split scikit-learn chose beats the runner-up by a
    // relative margin >= 5e-4, and the features are float32 values (its trees'
    // precision), so the trees are the same; leaf means of the same targets,
    // summed in another order, differ by a few ulps: 1e-12 relative.
    assert_close("cart", &tree_pred, &r["cart_pred"], 1e-12);

    // Without bootstrap and with every feature tried, each tree of the forest is
    // that same CART tree, whatever the seed.
    let forest = RandomForestRegressor::new(10)
        .bootstrap(false)
        .max_features(MaxFeatures::All)
        .max_depth(Some(depth))
        .min_samples_leaf(leaf)
        .seed(7)
        .fit(xtr, &data.ytr)
        .unwrap();
    let forest_pred = forest.predict(xte).unwrap();
    // The mean of 10 equal values: 10 additions and a division, each rounding by
    // at most 1/2 ulp, so within 8 eps relative.
    assert_close(
        "forest vs own cart",
        &forest_pred,
        &tree_pred,
        8.0 * f64::EPSILON,
    );
    // scikit-learn's own forest under the same settings: the same trees (its
    // per-tree feature order cannot matter without ties); 1e-12 as for the tree.
    assert_close(
        "forest without bootstrap",
        &forest_pred,
        &r["forest_nobootstrap_pred"],
        1e-12,
    );
}

#[test]
fn bootstrap_forest_regressor_r2_is_within_002_of_sklearn() {
    let (data, r) = (diabetes(), reference());
    let xtr = MatRef::new(&data.xtr, N_TRAIN, D).unwrap();
    let xte = MatRef::new(&data.xte, data.yte.len(), D).unwrap();
    let p = &r["forest_params"];
    // Our mean over seeds 0..5, against scikit-learn's over seeds 0..9: means are
    // steadier than one run.
    let seeds = 0..5u64;
    let ours = seeds
        .clone()
        .map(|seed| {
            let forest = RandomForestRegressor::new(p[0] as usize)
                .max_features(MaxFeatures::Fraction(1.0 / 3.0))
                .min_samples_leaf(p[1] as usize)
                .seed(seed)
                .fit(xtr, &data.ytr)
                .unwrap();
            r2(&data.yte, &forest.predict(xte).unwrap())
        })
        .sum::<f64>()
        / seeds.count() as f64;
    let sk = &r["forest_r2"];
    let sk_mean = sk.iter().sum::<f64>() / sk.len() as f64;
    eprintln!("test R^2: ours (mean of 5 seeds) {ours:.4}, scikit-learn (mean of 10) {sk_mean:.4}");
    // Bootstrap samples and feature subsets come from different random streams,
    // so only the distribution of R^2 can match: scikit-learn's own R^2 spans
    // 0.017 over seeds 0..9 on this split (0.399 to 0.417), so 0.02 below its mean
    // is about that spread. This checks the forest is as good as scikit-learn's,
    // not that it grows the same trees (that is checked without bootstrap above);
    // on this small noisy set even other settings (all features per split, or
    // leaves of one sample) reach 0.38 to 0.41, so it catches broken averaging or
    // leaf values, not a wrong max_features.
    assert!(
        ours >= sk_mean - 0.02,
        "R^2 {ours} is more than 0.02 below scikit-learn's {sk_mean}"
    );
}
