//! Gradient boosting against scikit-learn 1.9.1 on 1-D data with distinct values,
//! where no two candidate splits tie, so both libraries grow the same trees and must
//! agree to rounding. `tests/reference/gradient_boosting_reference.py` printed the
//! pinned figures.

use dl_classic::gradient_boosting::{GradientBoosting, GradientBoostingRegressor, RegressionLoss};
use dl_classic::hist_gradient_boosting::{HistGradientBoosting, HistGradientBoostingRegressor};
use dl_core::{Fit, MatRef, Predict};

const QUERY: [f64; 8] = [-1.0, 0.5, 3.2, 7.7, 12.1, 19.5, 24.4, 40.0];

fn xs() -> Vec<f64> {
    (0..30).map(|i| i as f64).collect()
}

/// A wiggle on a slope: the regression target of every test here.
fn wave(x: &[f64]) -> Vec<f64> {
    x.iter().map(|&v| 3.0 * (0.7 * v).sin() + 0.1 * v).collect()
}

/// The sign of an irregular wave.
fn two_classes(x: &[f64]) -> Vec<usize> {
    x.iter()
        .map(|&v| ((0.9 * v).sin() + 0.3 * (2.3 * v).cos() > 0.0) as usize)
        .collect()
}

/// Three levels of another wave (8, 12 and 10 rows of 0..30).
fn three_classes(x: &[f64]) -> Vec<usize> {
    x.iter()
        .map(|&v| {
            ((0.5 * v).sin() + 0.4 * (1.7 * v).cos() + 1.5)
                .floor()
                .clamp(0.0, 2.0) as usize
        })
        .collect()
}

fn close(ours: &[f64], sklearn: &[f64], what: &str) {
    close_to(ours, sklearn, 1e-9, what);
}

fn close_to(ours: &[f64], sklearn: &[f64], tol: f64, what: &str) {
    assert_eq!(ours.len(), sklearn.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(sklearn).enumerate() {
        assert!((a - b).abs() < tol, "{what}[{i}]: ours {a} sklearn {b}");
    }
}

fn boost(n: usize, depth: usize, lr: f64) -> GradientBoosting {
    GradientBoosting::new(n)
        .max_depth(Some(depth))
        .learning_rate(lr)
}

#[test]
fn regressor_matches_sklearn() {
    let x = xs();
    let y: Vec<f64> = wave(&x);
    let m = GradientBoostingRegressor::new(boost(10, 2, 0.3))
        .fit(MatRef::new(&x, 30, 1).unwrap(), &y)
        .unwrap();
    let pred = m.predict(MatRef::new(&QUERY, 8, 1).unwrap()).unwrap();
    #[rustfmt::skip]
    let sk = [1.0696526010269012, 1.0696526010269012, 1.8775156361894088, -0.14157124522341918,
        2.392142326265991, 3.4652728257089627, 0.9089447636011648, 4.729802919789772];
    close(&pred, &sk, "regression predict");
    #[rustfmt::skip]
    let sk_train = [4.199943020545142, 3.797356888701332, 3.213044805111589, 2.909780369941032,
        2.2327704272266784, 1.8880377667005594, 1.7354096395550411, 1.3509944836725387,
        1.172169436744993, 1.060751233636397];
    close(&m.train_loss, &sk_train, "regression train_score_");
}

#[test]
fn binary_classifier_matches_sklearn() {
    let x = xs();
    let y: Vec<usize> = two_classes(&x);
    let m = boost(10, 2, 0.5)
        .fit(MatRef::new(&x, 30, 1).unwrap(), &y)
        .unwrap();
    let p = m.predict_proba(MatRef::new(&QUERY, 8, 1).unwrap()).unwrap();
    let p1: Vec<f64> = p.chunks(2).map(|r| r[1]).collect();
    #[rustfmt::skip]
    let sk = [0.9039855845187275, 0.9039855845187275, 0.9039855845187275, 0.8440827395881395,
        0.1560218161426197, 0.16525116481695368, 0.8877279777666344, 0.9375106395147011];
    close(&p1, &sk, "binary predict_proba[:, 1]");
    // scikit-learn's train_score_ for two classes is the binomial deviance, twice
    // the mean log loss.
    #[rustfmt::skip]
    let sk_train = [1.1773209977368944, 1.0431638328472306, 0.966397543965017, 0.7431860234435261,
        0.5890907487016993, 0.4888173500847526, 0.41196437069929576, 0.3734145599124729,
        0.31648834138256393, 0.26988008757270554];
    let deviance: Vec<f64> = m.train_loss.iter().map(|l| 2.0 * l).collect();
    close(&deviance, &sk_train, "binary train_score_");
}

#[test]
fn three_class_classifier_matches_sklearn() {
    let x = xs();
    let y: Vec<usize> = three_classes(&x);
    let counts = (0..3).map(|c| y.iter().filter(|&&v| v == c).count());
    assert_eq!(counts.collect::<Vec<_>>(), vec![8, 12, 10]);
    let m = boost(10, 2, 0.5)
        .fit(MatRef::new(&x, 30, 1).unwrap(), &y)
        .unwrap();
    let p = m.predict_proba(MatRef::new(&QUERY, 8, 1).unwrap()).unwrap();
    #[rustfmt::skip]
    let sk = [0.00578985987188116, 0.9482451196374524, 0.04596502049066636, 0.00578985987188116,
        0.9482451196374524, 0.04596502049066636, 0.030066268291816165, 0.07483164896908483,
        0.895102082739099, 0.9235555239405251, 0.061516788901391076, 0.014927687158083788,
        0.02661808961560951, 0.9198216283856079, 0.053560281998782454, 0.06593437077855305,
        0.7755170597342536, 0.15854856948719354, 0.9259500055343115, 0.05773011412109856,
        0.01631988034459006, 0.004374794791390665, 0.03791917068229156, 0.9577060345263178];
    close(&p, &sk, "three-class predict_proba");
    #[rustfmt::skip]
    let sk_train = [0.7491903473548268, 0.5206463014166232, 0.4061637341965579, 0.3225921598848184,
        0.2631672236144781, 0.2237079629603261, 0.18053455922642717, 0.1485268801344583,
        0.12674671976289273, 0.10645498865899285];
    close(&m.train_loss, &sk_train, "three-class train_score_");
    let pred = m.predict(MatRef::new(&QUERY, 8, 1).unwrap()).unwrap();
    assert_eq!(pred, vec![1, 1, 2, 0, 1, 1, 0, 2]);
}

/// Absolute and quantile losses fit trees to two-valued pseudo-residuals, where
/// split gains can tie exactly; the quantile 0.9 has no tie over these stages (the
/// reference script says which do).
#[test]
fn robust_and_quantile_regressors_match_sklearn() {
    let x = xs();
    let y: Vec<f64> = wave(&x);
    #[rustfmt::skip]
    let cases = [
        (RegressionLoss::AbsoluteError,
         [2.0346475938171538, 2.0346475938171538, 2.0346475938171538, 0.9534760361334108,
          2.172903949065411, 2.708867223484449, 0.016392541559502545, 4.498086895633014],
         [1.7592178431256889, 1.600313136306518, 1.5166777356914265, 1.419004714343293,
          1.2532152089906414, 1.1884606519369116, 1.1454759606829608, 1.1115403249910052,
          1.089774135859382, 1.0656462820272368]),
        (RegressionLoss::Huber { alpha: 0.9 },
         [1.135893869647656, 1.135893869647656, 1.9437569048101635, -0.03778082540279841,
          2.540277541444408, 3.49616924160435, 0.9135606575381892, 4.665236795636313],
         [2.0109956901045876, 1.7858025381926124, 1.6174636644708769, 1.365073341646158,
          1.0479945897246452, 0.9545220607865965, 0.8165714068158126, 0.6349522747233743,
          0.5768294036112597, 0.49897467060373446]),
        (RegressionLoss::Quantile { alpha: 0.9 },
         [3.145115096315403, 3.145115096315403, 3.1005580661580927, 3.1005580661580927,
          4.001441596640216, 4.001441596640216, 4.919420054648956, 5.843831765940028],
         [0.32664889768920174, 0.306221752600907, 0.29192275103910087, 0.28477959771529004,
          0.2709090692988262, 0.26119969940730153, 0.2544031404832342, 0.24964554923638713,
          0.24685019220406937, 0.24549984994698137]),
    ];
    for (loss, sk_pred, sk_train) in cases {
        let m = GradientBoostingRegressor::new(boost(10, 2, 0.3))
            .loss(loss)
            .fit(MatRef::new(&x, 30, 1).unwrap(), &y)
            .unwrap();
        let pred = m.predict(MatRef::new(&QUERY, 8, 1).unwrap()).unwrap();
        close(&pred, &sk_pred, &format!("{loss:?} predict"));
        close(&m.train_loss, &sk_train, &format!("{loss:?} train_score_"));
    }
}

/// 30 distinct values: one bin each, so the histogram trees see what exact trees
/// see and, split for split, must match scikit-learn's. scikit-learn keeps
/// gradients and hessians in f32 (we keep f64), so the values agree to ~1e-7, not
/// to rounding.
#[test]
fn histogram_boosting_matches_sklearn() {
    let x = xs();
    let xm = MatRef::new(&x, 30, 1).unwrap();
    let qm = MatRef::new(&QUERY, 8, 1).unwrap();
    let hist = |lr| {
        HistGradientBoosting::new(10)
            .learning_rate(lr)
            .max_leaf_nodes(4)
            .min_samples_leaf(3)
    };
    let y: Vec<f64> = wave(&x);
    let m = HistGradientBoostingRegressor(hist(0.3))
        .fit(xm, &y)
        .unwrap();
    #[rustfmt::skip]
    let sk = [1.689287871372667, 1.689287871372667, 1.689287871372667, -0.8265009033412065,
        2.6006185765083627, 3.7643988165972253, 0.4518190875617287, 4.1950742685021245];
    close_to(
        &m.predict(qm).unwrap(),
        &sk,
        1e-6,
        "hist regression predict",
    );

    let yb: Vec<usize> = two_classes(&x);
    let m = hist(0.5).fit(xm, &yb).unwrap();
    let p1: Vec<f64> = m
        .predict_proba(qm)
        .unwrap()
        .chunks(2)
        .map(|r| r[1])
        .collect();
    #[rustfmt::skip]
    let sk = [0.9614013795672142, 0.9614013795672142, 0.9614013795672142, 0.8796009755961379,
        0.1450638673499951, 0.0785066942119896, 0.833207499915641, 0.5353137819719862];
    close_to(&p1, &sk, 1e-6, "hist binary predict_proba[:, 1]");

    let ym: Vec<usize> = three_classes(&x);
    let m = hist(0.5).fit(xm, &ym).unwrap();
    #[rustfmt::skip]
    let sk = [0.0007822807023563926, 0.9825411664275596, 0.016676552870083933, 0.0007822807023563926,
        0.9825411664275596, 0.016676552870083933, 0.0026045842019020698, 0.030828289293621018,
        0.9665671265044768, 0.9827554928106605, 0.01593937209102877, 0.001305135098310781,
        0.0030822784094927977, 0.9887603524699364, 0.008157369120570714, 0.013494959392326034,
        0.8903992296846931, 0.09610581092298065, 0.9932419205441917, 0.0059165050166173445,
        0.0008415744391909917, 0.0004138481584137864, 0.005069176612385331, 0.9945169752292009];
    close_to(
        &m.predict_proba(qm).unwrap(),
        &sk,
        1e-6,
        "hist three-class predict_proba",
    );
}
