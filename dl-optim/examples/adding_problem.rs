//! The adding problem (Hochreiter & Schmidhuber, 1997): each step of a length-50
//! sequence carries a number in [0, 1] and a marker; exactly two steps are marked (one
//! in each half) and the target is the sum of their numbers. Predicting the mean sum
//! (1.0) scores MSE ~0.167; solving it needs memory across up to 50 steps.
//!
//! Trains a vanilla tanh RNN, an LSTM and a GRU (one layer of 32 units, many-to-one:
//! a linear head on the final state) with Adam (lr 3e-3, gradient norm clipped to
//! 1), batch 64, fixed seeds; prints the test MSE on 1000 fresh sequences as a table
//! and writes `adding_problem.svg` with the training curves.
//!
//! ```text
//! cargo run --release -p dl-optim --example adding_problem [-- steps]
//! ```

use dl_autograd::{clip_grad_norm, Graph, Param, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::{
    Ctx, Linear, LinearConfig, Module, Recurrent, RecurrentConfig, SeqOptions, SequenceLayer,
};
use dl_optim::svg::{document, panel, Series};
use dl_optim::{AdamConfig, Optimizer};
use std::time::Instant;

const T: usize = 50;
const HIDDEN: usize = 32;
const BATCH: usize = 64;

/// `(x: [n, T, 2], y: [n, 1])`.
fn batch(n: usize, rng: &mut Rng) -> (Tensor<f32>, Tensor<f32>) {
    let mut x = vec![0.0f32; n * T * 2];
    let mut y = vec![0.0f32; n];
    for i in 0..n {
        let a = rng.below(T / 2);
        let b = T / 2 + rng.below(T / 2);
        for t in 0..T {
            let v = rng.uniform(0.0f32, 1.0);
            x[(i * T + t) * 2] = v;
            if t == a || t == b {
                x[(i * T + t) * 2 + 1] = 1.0;
                y[i] += v;
            }
        }
    }
    (
        Tensor::from_vec(x, &[n, T, 2]).expect("sized"),
        Tensor::from_vec(y, &[n, 1]).expect("sized"),
    )
}

/// Recurrent layer + linear head on the last state.
struct Model {
    rnn: Recurrent<f32>,
    head: Linear<f32>,
}

impl ParamSet<f32> for Model {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<f32>)) {
        self.rnn.for_each_param(f);
        self.head.for_each_param(f);
    }
}

impl Model {
    fn predict<'p>(
        &'p self,
        g: &mut Graph<'p, f32>,
        x: dl_autograd::Var,
    ) -> dl_layers::Result<dl_autograd::Var> {
        let out = self.rnn.run(g, x, &SeqOptions::default())?;
        let last = out.last(g)?;
        self.head.forward(g, last, &mut Ctx::eval())
    }
}

fn mse(model: &Model, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<f64, Box<dyn std::error::Error>> {
    let mut g = Graph::new_no_grad();
    let xv = g.input(x);
    let p = model.predict(&mut g, xv)?;
    let t = g.input(y);
    let l = g.mse(p, t)?;
    Ok(g.value(l)?.data()[0] as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3000);
    let (x_test, y_test) = batch(1000, &mut Rng::seed_from_u64(12345));
    let cells = [
        (
            "vanilla RNN (tanh)",
            RecurrentConfig::rnn(2, HIDDEN),
            "#d62728",
        ),
        ("LSTM", RecurrentConfig::lstm(2, HIDDEN), "#1f77b4"),
        ("GRU", RecurrentConfig::gru(2, HIDDEN), "#2ca02c"),
    ];
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for (name, cfg, color) in cells {
        let mut rng = Rng::seed_from_u64(0);
        let mut model = Model {
            rnn: cfg.init(&mut rng)?,
            head: LinearConfig::new(HIDDEN, 1).init(&mut rng)?,
        };
        let mut opt = AdamConfig::new(3e-3).build()?;
        let mut data_rng = Rng::seed_from_u64(1);
        let start = Instant::now();
        let (mut curve, mut acc, mut solved_at) = (Vec::new(), 0.0, None);
        for step in 1..=steps {
            let (x, y) = batch(BATCH, &mut data_rng);
            let mut g = Graph::new();
            let xv = g.input(&x);
            let p = model.predict(&mut g, xv)?;
            let t = g.input(&y);
            let loss = g.mse(p, t)?;
            acc += g.value(loss)?.data()[0] as f64;
            g.backward(loss)?;
            drop(g);
            clip(&mut model)?;
            opt.step(&mut model)?;
            model.for_each_param(&mut |p| p.zero_grad());
            if step % 50 == 0 {
                curve.push(acc / 50.0);
                acc = 0.0;
                if solved_at.is_none() && step % 250 == 0 && mse(&model, &x_test, &y_test)? < 0.01 {
                    solved_at = Some(step);
                }
            }
        }
        let test = mse(&model, &x_test, &y_test)?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<20} test MSE {test:.5}  first below 0.01 at step {}  ({secs:.1} s)",
            solved_at.map_or("-".to_string(), |s| s.to_string())
        );
        rows.push((name, test, solved_at, secs));
        curves.push((name, curve, color));
    }
    println!("\n| cell | test MSE (1000 seqs, T = {T}) | steps to MSE < 0.01 | time (s) |");
    println!("|---|---|---|---|");
    for (name, test, solved, secs) in &rows {
        println!(
            "| {name} | {test:.5} | {} | {secs:.1} |",
            solved.map_or("not reached".to_string(), |s| s.to_string())
        );
    }
    let series: Vec<Series<'_>> = curves
        .iter()
        .map(|(label, values, color)| Series {
            label,
            values,
            color,
        })
        .collect();
    let svg = document(&[panel(
        "Adding problem (T = 50): training MSE per 50 steps",
        "x 50 steps",
        &series,
        0.0,
    )]);
    std::fs::write("adding_problem.svg", svg)?;
    println!("wrote adding_problem.svg");
    Ok(())
}

/// Clips the global gradient norm to 1 (recurrent nets' exploding gradients).
fn clip(model: &mut Model) -> Result<(), Box<dyn std::error::Error>> {
    let mut params: Vec<&mut Param<f32>> = Vec::new();
    for l in &mut model.rnn.layers {
        params.push(&mut l.weight_ih);
        params.push(&mut l.weight_hh);
        if let Some(b) = &mut l.bias_ih {
            params.push(b);
        }
        if let Some(b) = &mut l.bias_hh {
            params.push(b);
        }
    }
    params.push(&mut model.head.weight);
    if let Some(b) = &mut model.head.bias {
        params.push(b);
    }
    clip_grad_norm(&mut params, 1.0)?;
    Ok(())
}
