//! Criterion benches of the classic methods on the workloads that dominate their
//! cost, named so they line up with the scikit-learn peer script
//! (`benches/peers/sklearn_classic.py`, same sizes, same data generators in spirit):
//!
//! - `classic/knn_brute/50000x784_q1000`: predict 1,000 queries with a 5-NN
//!   classifier (brute force, L2) over 50,000 x 784 uniform `[0, 1)` f32 rows
//!   (MNIST-sized); fit only copies the data, so it is outside the timing.
//! - `classic/kmeans/100000x32_k8`: k-means++ then at most 20 Lloyd iterations
//!   (`tol = 0`, one init) on 100,000 x 32 uniform `[0, 1)` f64 rows (no cluster
//!   structure, so no run converges early: both libraries do all 20 iterations).
//! - `classic/random_forest/digits_100`: fit 100 trees (sqrt(d) features, Gini,
//!   bootstrap) on the 1,797 x 64 bundled digits.
//! - `classic/svm_rbf/digits`: fit a one-vs-one RBF SVM (`C = 1`, `gamma = "scale"`)
//!   on the digits.
//! - `classic/gradient_boosting/digits_100`: fit scikit-learn's default gradient
//!   boosting (100 stages of depth-3 regression trees, one per class, learning rate
//!   0.1) on the digits.
//! - `classic/hist_gradient_boosting/digits_100`: fit scikit-learn's default
//!   histogram gradient boosting (100 iterations of 31-leaf trees, one per class,
//!   255 bins) on the digits.
//!
//! Threads: rayon's pool (set `RAYON_NUM_THREADS=2` to match the peer script's
//! 2-thread figures on a larger machine).
//!
//! Run: `cargo bench -p dl-classic --bench classic -- --warm-up-time 1 --measurement-time 5`;
//! `-- --test` runs each once (what CI does).

use criterion::{criterion_group, criterion_main, Criterion};
use dl_classic::forest::RandomForest;
use dl_classic::gradient_boosting::GradientBoosting;
use dl_classic::hist_gradient_boosting::HistGradientBoosting;
use dl_classic::kmeans::KMeans;
use dl_classic::knn::{Algorithm, KNeighborsClassifier};
use dl_classic::svm::KernelSvm;
use dl_core::{Fit, MatRef, Predict, Rng};
use std::hint::black_box;
use std::time::Duration;

fn uniform_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.uniform(0.0f32, 1.0)).collect()
}

fn bench_knn(c: &mut Criterion) {
    let (n, d, q) = (50_000, 784, 1_000);
    let x = uniform_f32(n * d, 1);
    let y: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let queries = uniform_f32(q * d, 2);
    let model = KNeighborsClassifier::new(5)
        .algorithm(Algorithm::Brute)
        .fit(MatRef::new(&x, n, d).unwrap(), &y)
        .unwrap();
    let qm = MatRef::new(&queries, q, d).unwrap();
    let mut out = vec![0usize; q];
    let mut g = c.benchmark_group("classic/knn_brute");
    g.sample_size(10);
    g.bench_function("50000x784_q1000", |b| {
        b.iter(|| model.predict_into(black_box(qm), &mut out).unwrap())
    });
    g.finish();
}

fn bench_kmeans(c: &mut Criterion) {
    let (n, d, k) = (100_000, 32, 8);
    let x: Vec<f64> = uniform_f32(n * d, 3)
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let xm = MatRef::new(&x, n, d).unwrap();
    let est = KMeans::new(k).n_init(1).max_iter(20).tol(0.0).seed(0);
    let mut g = c.benchmark_group("classic/kmeans");
    g.sample_size(10);
    g.bench_function("100000x32_k8", |b| {
        b.iter(|| black_box(est.fit(black_box(xm), &[]).unwrap().inertia))
    });
    g.finish();
}

fn digits() -> (Vec<f64>, Vec<usize>) {
    let ds = dl_data::datasets::digits::<f64>().unwrap();
    (ds.features().to_vec(), ds.targets().to_vec())
}

fn bench_forest_and_svm(c: &mut Criterion) {
    let (x, y) = digits();
    let xm = MatRef::new(&x, y.len(), 64).unwrap();
    let mut g = c.benchmark_group("classic/random_forest");
    g.sample_size(10);
    let rf = RandomForest::new(100).seed(0);
    g.bench_function("digits_100", |b| {
        b.iter(|| black_box(rf.fit(black_box(xm), &y).unwrap().trees.len()))
    });
    g.finish();
    let mut g = c.benchmark_group("classic/svm_rbf");
    g.sample_size(10);
    let svm = KernelSvm::default();
    g.bench_function("digits", |b| {
        b.iter(|| black_box(svm.fit(black_box(xm), &y).unwrap().n_support()))
    });
    g.finish();
    let mut g = c.benchmark_group("classic/gradient_boosting");
    g.sample_size(10);
    let gb = GradientBoosting::default();
    g.bench_function("digits_100", |b| {
        b.iter(|| black_box(gb.fit(black_box(xm), &y).unwrap().trees.len()))
    });
    g.finish();
    let mut g = c.benchmark_group("classic/hist_gradient_boosting");
    g.sample_size(10);
    let hgb = HistGradientBoosting::default();
    g.bench_function("digits_100", |b| {
        b.iter(|| black_box(hgb.fit(black_box(xm), &y).unwrap().trees.len()))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_knn, bench_kmeans, bench_forest_and_svm
}
criterion_main!(benches);
