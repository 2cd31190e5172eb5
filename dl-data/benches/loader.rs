//! DataLoader throughput: batches per second over one shuffled epoch.
//!
//! - `loader/mnist60k/{prefetch,inline}`: 60,000 x 784 synthetic f32 rows (MNIST
//!   size), batch 64, shuffled; throughput is reported in batches/s (criterion's
//!   "elements"). The target is >= 20,000 batches/s (10x an MLP step rate).
//! - `loader/cifar10k_augment/prefetch`: 10,000 x 3x32x32 rows with random crop
//!   (padding 4) and horizontal flip.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dl_core::Rng;
use dl_data::augment::Augment;
use dl_data::loader::{DataLoader, LoaderConfig};
use dl_data::Dataset;

fn synthetic(n: usize, cols: usize) -> Arc<Dataset<f32, usize>> {
    let mut r = Rng::seed_from_u64(0);
    let x: Vec<f32> = (0..n * cols).map(|_| r.uniform(0.0, 1.0)).collect();
    let y: Vec<usize> = (0..n).map(|_| r.below(10)).collect();
    Arc::new(Dataset::new(x, y, cols).unwrap())
}

/// One full epoch; returns a checksum so the work is not optimized away.
fn run_epoch(loader: &mut DataLoader<f32, usize>) -> f32 {
    let mut acc = 0.0;
    let mut e = loader.epoch();
    while let Some(b) = e.next_batch() {
        acc += b.x[0] + b.x[b.x.len() - 1];
    }
    acc
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("loader");
    g.sample_size(20);
    let mnist = synthetic(60_000, 784);
    for prefetch in [true, false] {
        let cfg = LoaderConfig {
            batch_size: 64,
            shuffle: true,
            prefetch,
            ..Default::default()
        };
        let mut loader = DataLoader::new(Arc::clone(&mnist), cfg).unwrap();
        g.throughput(Throughput::Elements(loader.n_batches() as u64));
        let name = if prefetch { "prefetch" } else { "inline" };
        g.bench_function(BenchmarkId::new("mnist60k", name), |b| {
            b.iter(|| run_epoch(&mut loader))
        });
    }
    drop(mnist);
    let cifar = synthetic(10_000, 3 * 32 * 32);
    let cfg = LoaderConfig {
        batch_size: 64,
        augment: Some(Augment::cifar10()),
        ..Default::default()
    };
    let mut loader = DataLoader::new(cifar, cfg).unwrap();
    g.throughput(Throughput::Elements(loader.n_batches() as u64));
    g.bench_function(BenchmarkId::new("cifar10k_augment", "prefetch"), |b| {
        b.iter(|| run_epoch(&mut loader))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
