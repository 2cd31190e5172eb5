//! A sequence-tagging task that needs the future, shared by `examples/bidirectional.rs`
//! and the release-mode test in `tests/accuracy.rs` (both include this file with
//! `#[path]`; it is not public API).
//!
//! Bits `x_1 .. x_T` in, and at every step the label `y_t = x_{t-1} + x_{t+1}` (0, 1
//! or 2; bits outside the sequence count as 0). Sequences have random lengths
//! 10..=20 in one padded batch: the layers take `lengths` and the loss counts valid
//! steps only. Vanilla tanh RNNs, unidirectional with 32 units or bidirectional with
//! 16 + 16, a linear head to 3 classes; Adam lr 1e-2, 600 steps of batch 32.

use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{Rng, Tensor};
use dl_layers::{
    per_position, Bidirectional, Ctx, Linear, LinearConfig, Recurrent, RecurrentConfig, SeqOptions,
    SequenceLayer,
};
use dl_optim::{AdamConfig, Optimizer};

/// Padded sequence length (the longest sequence).
const T: usize = 20;
/// Training steps (batches of [`BATCH`]).
const STEPS: usize = 600;
/// Sequences per training batch.
const BATCH: usize = 32;
/// Sequences in the test set.
const TEST: usize = 1000;

/// A padded batch of sequences with their per-step labels.
struct Batch {
    /// Bits, `[n, T, 1]`, zero past each sequence's end.
    x: Tensor<f32>,
    /// Each sequence's length.
    lengths: Vec<usize>,
    /// Flat indices `b * T + t` of the valid steps, and their labels.
    valid: Vec<usize>,
    labels: Vec<usize>,
}

/// `n` random sequences of lengths 10..=20 and their labels `x_{t-1} + x_{t+1}`.
fn batch(n: usize, rng: &mut Rng) -> Batch {
    let mut x = vec![0.0f32; n * T];
    let (mut lengths, mut valid, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for b in 0..n {
        let len = 10 + rng.below(11);
        lengths.push(len);
        for t in 0..len {
            x[b * T + t] = rng.below(2) as f32;
        }
        for t in 0..len {
            let before = if t > 0 { x[b * T + t - 1] } else { 0.0 };
            let after = if t + 1 < len { x[b * T + t + 1] } else { 0.0 };
            valid.push(b * T + t);
            labels.push((before + after) as usize);
        }
    }
    Batch {
        x: Tensor::from_vec(x, &[n, T, 1]).expect("sized"),
        lengths,
        valid,
        labels,
    }
}

/// A sequence layer followed by a per-step linear head to the 3 classes.
pub struct Tagger<L> {
    rnn: L,
    head: Linear<f32>,
}

impl<L: ParamSet<f32>> ParamSet<f32> for Tagger<L> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<f32>)) {
        self.rnn.for_each_param(f);
        self.head.for_each_param(f);
    }
}

impl<L: SequenceLayer<f32>> Tagger<L> {
    /// Logits of the valid steps, `[valid, 3]`.
    fn logits<'p>(&'p self, g: &mut Graph<'p, f32>, b: &Batch) -> dl_layers::Result<Var> {
        let x = g.input(&b.x);
        let opts = SeqOptions {
            lengths: Some(&b.lengths),
            ..Default::default()
        };
        let out = self.rnn.run(g, x, &opts)?;
        let y = per_position(&self.head, g, out.output, &mut Ctx::eval())?;
        let n = b.lengths.len();
        let flat = g.reshape(y, &[n * T, 3])?;
        Ok(g.index_select(flat, 0, &b.valid)?)
    }
}

/// A left-to-right tanh RNN with 32 units and its head, initialized from `seed`.
pub fn unidirectional(seed: u64) -> dl_layers::Result<Tagger<Recurrent<f32>>> {
    let mut rng = Rng::seed_from_u64(seed);
    let rnn = RecurrentConfig::rnn(1, 32).init(&mut rng)?;
    Ok(Tagger {
        rnn,
        head: LinearConfig::new(32, 3).init(&mut rng)?,
    })
}

/// A bidirectional tanh RNN with 16 + 16 units (`y_t = f([h_fwd_t; h_bwd_t])`, the
/// backward half starting at each sequence's own end) and its head, initialized from
/// `seed`.
pub fn bidirectional(seed: u64) -> dl_layers::Result<Tagger<Bidirectional<Recurrent<f32>>>> {
    let mut rng = Rng::seed_from_u64(seed);
    let cfg = RecurrentConfig::rnn(1, 16);
    let rnn = Bidirectional::new(cfg.init::<f32>(&mut rng)?, cfg.init(&mut rng)?);
    Ok(Tagger {
        rnn,
        head: LinearConfig::new(32, 3).init(&mut rng)?,
    })
}

/// What a trained tagger achieves on the test set.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The model's parameter count.
    pub params: usize,
    /// Valid test steps tagged correctly.
    pub correct: usize,
    /// Valid test steps.
    pub test_steps: usize,
}

impl Report {
    /// Per-step test accuracy in `[0, 1]`.
    // Only the test asks for it; the example prints `correct / test_steps` itself.
    #[allow(dead_code)]
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.test_steps as f64
    }
}

/// Trains `model` with cross-entropy (Adam lr 1e-2, 600 batches of 32 drawn from
/// `seed + 1`) and tags a fixed test set of 1000 sequences (seed 99).
pub fn train<L: SequenceLayer<f32>>(
    mut model: Tagger<L>,
    seed: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let mut opt = AdamConfig::new(1e-2).build()?;
    let mut rng = Rng::seed_from_u64(seed + 1);
    for _ in 0..STEPS {
        let b = batch(BATCH, &mut rng);
        let mut g = Graph::new();
        let logits = model.logits(&mut g, &b)?;
        let loss = g.cross_entropy(logits, &b.labels)?;
        g.backward(loss)?;
        drop(g);
        opt.step(&mut model)?;
        model.for_each_param(&mut |p| p.zero_grad());
    }
    let test = batch(TEST, &mut Rng::seed_from_u64(99));
    let mut g = Graph::new_no_grad();
    let logits = model.logits(&mut g, &test)?;
    let l = g.value(logits)?;
    let correct = l
        .data()
        .chunks(3)
        .zip(&test.labels)
        .filter(|(row, &y)| {
            let best = (0..3)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            best == y
        })
        .count();
    let params = {
        let mut n = 0;
        model.for_each_param(&mut |p| n += p.numel());
        n
    };
    Ok(Report {
        params,
        correct,
        test_steps: test.labels.len(),
    })
}
