//! End-to-end training steps (forward, backward, Adam update) at batch 64, f32,
//! reported as samples/s: the MLP 784-128-64-10 and LeNet-5 of the benchmark issue;
//! and MLP inference latency (batch 1) and throughput (batch 256).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dl_autograd::{Graph, Param, ParamSet, Tape};
use dl_core::{Rng, Tensor};
use dl_layers::{Activation, Conv2dConfig, Ctx, Flatten, LinearConfig, Module, Pool2d, Sequential};
use dl_optim::{AdamConfig, Optimizer};

fn mlp(rng: &mut Rng) -> Sequential<f32> {
    Sequential::new()
        .push(LinearConfig::new(784, 128).init(rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(128, 64).init(rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(64, 10).init(rng).unwrap())
}

fn lenet5(rng: &mut Rng) -> Sequential<f32> {
    Sequential::new()
        .push(Conv2dConfig::new(1, 6, 5).padding(2).init(rng).unwrap())
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(Conv2dConfig::new(6, 16, 5).init(rng).unwrap())
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(Flatten)
        .push(LinearConfig::new(400, 120).init(rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(120, 84).init(rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(84, 10).init(rng).unwrap())
}

/// One training step on a fixed batch, reusing the tape.
fn step(
    model: &mut Sequential<f32>,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Option<Tape<f32>>,
    x: &Tensor<f32>,
    y: &[usize],
    ctx: &mut Ctx,
) {
    let mut g = Graph::from_tape(tape.take().unwrap_or_default());
    let xv = g.input(x);
    let logits = model.forward(&mut g, xv, ctx).unwrap();
    let loss = g.cross_entropy(logits, y).unwrap();
    g.backward(loss).unwrap();
    *tape = Some(g.into_tape());
    opt.step(model).unwrap();
    model.for_each_param(&mut |p: &mut Param<f32>| p.zero_grad());
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    group.throughput(Throughput::Elements(64));
    let mut rng = Rng::seed_from_u64(0);
    let y: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let mut ctx = Ctx::train(0);

    let x = Tensor::rand_uniform(&[64, 784], 0.0, 1.0, &mut rng).unwrap();
    let mut model = mlp(&mut rng);
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let mut tape = None;
    group.bench_function("mlp_784_128_64_10/b64", |b| {
        b.iter(|| step(&mut model, &mut opt, &mut tape, &x, &y, &mut ctx))
    });

    let x = Tensor::rand_uniform(&[64, 1, 28, 28], 0.0, 1.0, &mut rng).unwrap();
    let mut model = lenet5(&mut rng);
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let mut tape = None;
    group.bench_function("lenet5/b64", |b| {
        b.iter(|| step(&mut model, &mut opt, &mut tape, &x, &y, &mut ctx))
    });
    group.finish();
}

/// Inference of the MLP 784-128-64-10 through `Module::infer` (eval mode, no graph,
/// the output buffer kept across calls): latency at batch 1 and throughput at batch
/// 256.
fn infer(c: &mut Criterion) {
    let mut rng = Rng::seed_from_u64(1);
    let model = mlp(&mut rng);
    let mut group = c.benchmark_group("infer");
    for batch in [1usize, 256] {
        let x = Tensor::rand_uniform(&[batch, 784], 0.0, 1.0, &mut rng).unwrap();
        let mut out = Tensor::empty();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("mlp_784_128_64_10/b{batch}"), |b| {
            b.iter(|| {
                model.infer(&x, &mut out).unwrap();
                out.data()[0]
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, infer);
criterion_main!(benches);
