//! Sequence-model training steps (forward, backward through time, Adam update), f32,
//! reported as sequences/s, with the shapes of the benchmark issue and of
//! `xtask/peers/torch_bench.py`:
//!
//! - LSTM input 32, hidden 128, 50 steps, batch 32, a `Linear(128, 1)` head on the
//!   last step, MSE against a fixed target;
//! - one pre-norm transformer encoder block (d_model 64, 4 heads, feed-forward 256,
//!   no dropout) on 32 tokens, batch 32, MSE against its own input.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dl_autograd::{Graph, Param, ParamSet, Tape, Var};
use dl_core::{Rng, Tensor};
use dl_layers::{
    Ctx, EncoderBlock, Linear, LinearConfig, Module, Recurrent, RecurrentConfig, SeqOptions,
    SequenceLayer, TransformerConfig,
};
use dl_optim::{AdamConfig, Optimizer};

struct LstmRegressor {
    lstm: Recurrent<f32>,
    head: Linear<f32>,
}

impl ParamSet<f32> for LstmRegressor {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<f32>)) {
        self.lstm.for_each_param(f);
        self.head.for_each_param(f);
    }
}

/// Runs one step: `loss(g, model)` builds the loss on a graph made from the tape.
fn step<M: ParamSet<f32>>(
    model: &mut M,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Option<Tape<f32>>,
    loss: impl for<'p> FnOnce(&mut Graph<'p, f32>, &'p M) -> Var,
) {
    let mut g = Graph::from_tape(tape.take().unwrap_or_default());
    let l = loss(&mut g, model);
    g.backward(l).unwrap();
    *tape = Some(g.into_tape());
    opt.step(model).unwrap();
    model.for_each_param(&mut |p: &mut Param<f32>| p.zero_grad());
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    let mut rng = Rng::seed_from_u64(0);

    group.throughput(Throughput::Elements(32));
    let x = Tensor::rand_normal(&[32, 50, 32], 0.0, 1.0, &mut rng).unwrap();
    let t = Tensor::rand_normal(&[32, 1], 0.0, 1.0, &mut rng).unwrap();
    let mut model = LstmRegressor {
        lstm: RecurrentConfig::lstm(32, 128).init(&mut rng).unwrap(),
        head: LinearConfig::new(128, 1).init(&mut rng).unwrap(),
    };
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let mut tape = None;
    group.bench_function("lstm_i32_h128_s50/b32", |b| {
        b.iter(|| {
            step(&mut model, &mut opt, &mut tape, |g, m| {
                let xv = g.input(&x);
                let out = m.lstm.run(g, xv, &SeqOptions::default()).unwrap();
                let last = out.last(g).unwrap();
                let y = m.head.forward(g, last, &mut Ctx::train(0)).unwrap();
                let tv = g.input(&t);
                g.mse(y, tv).unwrap()
            })
        })
    });

    let x = Tensor::rand_normal(&[32, 32, 64], 0.0, 1.0, &mut rng).unwrap();
    let cfg = TransformerConfig::new(64, 4, 256, 1);
    let mut block = EncoderBlock::<f32>::new(&cfg, &mut rng).unwrap();
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let mut tape = None;
    group.bench_function("transformer_block_d64_h4_ff256_s32/b32", |b| {
        b.iter(|| {
            step(&mut block, &mut opt, &mut tape, |g, m| {
                let xv = g.input(&x);
                let y = m.forward(g, xv, &mut Ctx::train(0)).unwrap();
                g.mse(y, xv).unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
