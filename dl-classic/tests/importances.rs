//! Feature importances (mean decrease in impurity) against scikit-learn 1.9.1's
//! `feature_importances_`, on data where both libraries grow the same trees:
//! features exact in both languages and distinct within each feature, targets
//! polynomials of them. `tests/reference/importances_reference.py` printed the
//! figures. The forest draws different bootstraps from scikit-learn's, so it is
//! compared loosely; every other model to 1e-9.

use dl_classic::adaboost::AdaBoost;
use dl_classic::forest::RandomForest;
use dl_classic::gradient_boosting::{GradientBoosting, GradientBoostingRegressor};
use dl_classic::tree::DecisionTree;
use dl_core::{Fit, MatRef};

const N: usize = 200;
const D: usize = 4;
/// Minimum rows per leaf: no node isolates one or two rows, where several features
/// split equally well and the libraries would break the tie differently.
const LEAF: usize = 3;

/// Row i, feature j: frac(i * MULT[j] / 2^32 + j / 8), as the Python script.
fn data() -> (Vec<f64>, Vec<usize>, Vec<f64>) {
    const MULT: [u64; D] = [2654435761, 2246822519, 3266489917, 668265263];
    let mut x = Vec::with_capacity(N * D);
    for i in 0..N as u64 {
        for (j, m) in MULT.iter().enumerate() {
            let v = (i * m + j as u64 * 536870912) % (1 << 32);
            x.push(v as f64 / 4294967296.0);
        }
    }
    let row = |i: usize| &x[i * D..(i + 1) * D];
    let yc = (0..N)
        .map(|i| {
            let r = row(i);
            (r[0] + 0.5 * r[1] > 0.9) as usize + (r[2] > 0.7) as usize
        })
        .collect();
    let yr = (0..N)
        .map(|i| {
            let r = row(i);
            2.0 * r[0] + r[1] * r[1] - 0.5 * r[2] * r[1]
        })
        .collect();
    (x, yc, yr)
}

fn close(ours: &[f64], sklearn: &[f64], tol: f64, what: &str) {
    assert_eq!(ours.len(), sklearn.len(), "{what}");
    let sum: f64 = ours.iter().sum();
    assert!((sum - 1.0).abs() < 1e-12, "{what}: sums to {sum}");
    for (f, (a, b)) in ours.iter().zip(sklearn).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "{what} feature {f}: ours {a} sklearn {b} ({ours:?})"
        );
    }
}

#[test]
fn single_trees_match_sklearn() {
    let (x, yc, yr) = data();
    let xm = MatRef::new(&x, N, D).unwrap();
    let counts: Vec<usize> = (0..3)
        .map(|c| yc.iter().filter(|&&v| v == c).count())
        .collect();
    assert_eq!(counts, vec![84, 102, 14]);
    let clf = DecisionTree::default()
        .max_depth(Some(4))
        .min_samples_leaf(LEAF);
    let m = Fit::<f64, usize>::fit(&clf, xm, &yc).unwrap();
    #[rustfmt::skip]
    let sk = [0.6077416505410219, 0.17480797161800604, 0.21745037784097201, 0.0];
    close(&m.feature_importances(), &sk, 1e-9, "tree classifier");
    let reg = DecisionTree::regressor()
        .max_depth(Some(4))
        .min_samples_leaf(LEAF);
    let m = reg.fit(xm, &yr).unwrap();
    #[rustfmt::skip]
    let sk = [0.840747151129484, 0.09135289750994255, 0.06789995136057342, 0.0];
    close(&m.feature_importances(), &sk, 1e-9, "tree regressor");
}

#[test]
fn boosted_ensembles_match_sklearn() {
    let (x, yc, yr) = data();
    let xm = MatRef::new(&x, N, D).unwrap();
    let stage_tree = DecisionTree::regressor().0.max_depth(Some(2));
    let gb = GradientBoosting::new(20).tree(stage_tree.min_samples_leaf(LEAF));
    let m = gb.fit(xm, &yc).unwrap();
    #[rustfmt::skip]
    let sk = [0.39794993470934975, 0.13673254419564687, 0.46531752109500346, 0.0];
    close(
        &m.feature_importances(),
        &sk,
        1e-9,
        "gradient boosting classifier",
    );
    let m = GradientBoostingRegressor::new(gb).fit(xm, &yr).unwrap();
    #[rustfmt::skip]
    let sk = [0.8661706249053036, 0.13001255166163736, 0.003816823433059057, 0.0];
    close(
        &m.feature_importances(),
        &sk,
        1e-9,
        "gradient boosting regressor",
    );
    let weak = DecisionTree::default().max_depth(Some(2));
    let ada = AdaBoost::new(10).tree(weak.min_samples_leaf(LEAF));
    let m = ada.fit(xm, &yc).unwrap();
    #[rustfmt::skip]
    let sk = [0.34234251651490905, 0.21979989403345282, 0.43785758945163816, 0.0];
    close(&m.feature_importances(), &sk, 1e-9, "AdaBoost");
}

#[test]
fn forest_importances_agree_with_sklearn_and_rank_the_noise_last() {
    let (x, yc, _) = data();
    let xm = MatRef::new(&x, N, D).unwrap();
    let m = RandomForest::new(200).seed(0).fit(xm, &yc).unwrap();
    let imp = m.feature_importances();
    #[rustfmt::skip]
    let sk = [0.46374947871545147, 0.17114007364977235, 0.3260576849464425, 0.039052762688333804];
    close(&imp, &sk, 0.03, "random forest");
    // Feature 3 never enters the target.
    assert!(imp[3] < imp[0].min(imp[1]).min(imp[2]), "{imp:?}");
}

#[test]
fn permutation_importance_agrees_with_impurity_importance_on_a_boosted_model() {
    use dl_core::Predict;
    use dl_data::inspection::permutation_importance;
    let (x, _, yr) = data();
    let xm = MatRef::new(&x, N, D).unwrap();
    // The boosted regressor of `boosted_ensembles_match_sklearn`, which (like
    // scikit-learn's) never splits on feature 3.
    let stage_tree = DecisionTree::regressor().0.max_depth(Some(2));
    let gb = GradientBoosting::new(20).tree(stage_tree.min_samples_leaf(LEAF));
    let m = GradientBoostingRegressor::new(gb).fit(xm, &yr).unwrap();
    // R^2, higher is better.
    let r2 = |t: &[f64], p: &[f64]| -> dl_data::Result<f64> {
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let ss_res: f64 = t.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
        let ss_tot: f64 = t.iter().map(|a| (a - mean) * (a - mean)).sum();
        Ok(1.0 - ss_res / ss_tot)
    };
    let baseline = r2(&yr, &m.predict(xm).unwrap()).unwrap();
    let perm = permutation_importance(&m, xm, &yr, r2, 10, 0).unwrap();
    assert_eq!(perm.baseline, baseline);
    let mdi = m.feature_importances();
    println!("permutation {:?}\nimpurity    {mdi:?}", perm.mean);
    // Feature 3 is never split on: shuffling it changes nothing.
    assert_eq!((mdi[3], perm.mean[3]), (0.0, 0.0));
    // Both rank x0 (coefficient 2) first and x2 (coefficient -x1/2) below x1.
    for imp in [&perm.mean, &mdi] {
        assert!(
            imp[0] > imp[1] && imp[1] > imp[2] && imp[2] > 0.0,
            "{imp:?}"
        );
    }
}
