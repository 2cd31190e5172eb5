//! Seeded methods give the same result on every run and for any thread count.

mod common;

use dl_classic::forest::RandomForest;
use dl_classic::kmeans::KMeans;
use dl_core::{Fit, MatRef};

#[test]
fn forest_is_identical_on_one_and_two_threads() {
    let (tr, te) = common::train_test("digits");
    let x = MatRef::new(&tr.x, tr.rows, tr.cols).unwrap();
    let xt = MatRef::new(&te.x, te.rows, te.cols).unwrap();
    let fit_in = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let m = RandomForest::new(30)
                .oob_score(true)
                .seed(11)
                .fit(x, &tr.y)
                .unwrap();
            (m.predict_proba(xt).unwrap(), m.oob_score)
        })
    };
    let (p1, o1) = fit_in(1);
    let (p2, o2) = fit_in(2);
    assert_eq!(p1, p2);
    assert_eq!(o1, o2);
    // A different seed gives a different forest.
    let other = RandomForest::new(30).seed(12).fit(x, &tr.y).unwrap();
    assert_ne!(other.predict_proba(xt).unwrap(), p1);
}

#[test]
fn gradient_boosting_is_identical_on_one_and_two_threads() {
    use dl_classic::gradient_boosting::GradientBoosting;
    let (tr, te) = common::train_test("iris");
    let x = MatRef::new(&tr.x, tr.rows, tr.cols).unwrap();
    let xt = MatRef::new(&te.x, te.rows, te.cols).unwrap();
    let fit_in = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let gb = GradientBoosting::new(20).subsample(0.7).seed(seed);
            gb.fit(x, &tr.y).unwrap().predict_proba(xt).unwrap()
        })
    };
    let p1 = fit_in(1, 5);
    assert_eq!(p1, fit_in(2, 5));
    assert_ne!(p1, fit_in(2, 6));
}

#[test]
fn kmeans_is_reproducible_per_seed() {
    let d = common::load("iris");
    let x = MatRef::new(&d.x, d.rows, d.cols).unwrap();
    let a = KMeans::new(3).seed(5).fit(x, &[]).unwrap();
    let b = KMeans::new(3).seed(5).fit(x, &[]).unwrap();
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.centroids, b.centroids);
}
