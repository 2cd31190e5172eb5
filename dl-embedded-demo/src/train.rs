//! Training and batched inference on the device with the library's own layers,
//! autograd tape and optimizer (`dl-layers`, `dl-autograd`, `dl-optim` with `alloc`
//! only), on the fixed heap.
//!
//! One step is what the desktop Trainer does: record the forward pass on a graph
//! that reuses the previous step's tape, take the fused softmax cross-entropy,
//! backward, hand the tape back, let the optimizer update, zero the gradients.

use crate::data::{self, PIXELS};
use alloc::vec;
use alloc::vec::Vec;
use dl_autograd::{Graph, Param, ParamSet, Tape};
use dl_core::Rng;
use dl_layers::{Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::{Optimizer, Result, SgdConfig};

/// Settings of the on-device run.
#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    /// Hidden width of the MLP `64 -> hidden -> 10`.
    pub hidden: usize,
    /// SGD steps.
    pub steps: usize,
    /// Samples per step.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Momentum (PyTorch's convention).
    pub momentum: f64,
    /// Seed of the initial weights and the shuffles.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: 16,
            steps: 300,
            batch: 20,
            lr: 0.05,
            momentum: 0.9,
            seed: 1,
        }
    }
}

/// Trains a fresh `64 -> hidden -> 10` ReLU MLP on the on-device training subset
/// (`data::TRAIN_X`), calling `on_epoch(step, mean loss over the epoch)` after every
/// pass over the subset.
pub fn train(cfg: &TrainConfig, mut on_epoch: impl FnMut(usize, f32)) -> Result<Sequential<f32>> {
    let mut rng = Rng::seed_from_u64(cfg.seed);
    let mut model = Sequential::new()
        .push(LinearConfig::new(PIXELS, cfg.hidden).init(&mut rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(cfg.hidden, data::CLASSES).init(&mut rng)?);
    let mut opt = SgdConfig::new(cfg.lr)
        .momentum(cfg.momentum)
        .build::<f32>()?;

    let mut order: Vec<usize> = (0..data::N_TRAIN).collect();
    let (mut x, mut y) = (vec![0.0f32; cfg.batch * PIXELS], vec![0usize; cfg.batch]);
    let mut tape = Tape::new();
    let mut ctx = Ctx::train(cfg.seed);
    let (mut next, mut loss_sum, mut batches) = (data::N_TRAIN, 0.0f32, 0usize);
    for step in 1..=cfg.steps {
        if next + cfg.batch > data::N_TRAIN {
            rng.shuffle(&mut order);
            next = 0;
        }
        for (r, &i) in order[next..next + cfg.batch].iter().enumerate() {
            data::scaled_image(&data::TRAIN_X, i, &mut x[r * PIXELS..]);
            y[r] = data::TRAIN_Y[i] as usize;
        }
        next += cfg.batch;

        let mut g = Graph::from_tape(tape);
        let xv = g.input_slice(&x, &[cfg.batch, PIXELS])?;
        let logits = model.forward(&mut g, xv, &mut ctx)?;
        let loss = g.cross_entropy(logits, &y)?;
        loss_sum += g.value(loss)?.data()[0];
        batches += 1;
        g.backward(loss)?;
        tape = g.into_tape();
        opt.step(&mut model)?;
        model.for_each_param(&mut |p: &mut Param<f32>| p.zero_grad());

        if next + cfg.batch > data::N_TRAIN || step == cfg.steps {
            on_epoch(step, loss_sum / batches as f32);
            (loss_sum, batches) = (0.0, 0);
        }
    }
    Ok(model)
}

/// Predicted classes of the first `preds.len()` held-out images, `batch` at a time,
/// through the library's graph in no-grad mode (one tape reused across batches).
pub fn predict_test(model: &dyn Module<f32>, batch: usize, preds: &mut [u8]) -> Result<()> {
    let mut x = vec![0.0f32; batch * PIXELS];
    let mut tape = Tape::new();
    let mut ctx = Ctx::eval();
    for (b, out) in preds.chunks_mut(batch).enumerate() {
        let rows = out.len();
        for r in 0..rows {
            data::scaled_image(&data::TEST_X, b * batch + r, &mut x[r * PIXELS..]);
        }
        let mut g = Graph::from_tape(tape);
        g.set_grad_enabled(false);
        let xv = g.input_slice(&x[..rows * PIXELS], &[rows, PIXELS])?;
        let logits = model.forward(&mut g, xv, &mut ctx)?;
        for (o, row) in out
            .iter_mut()
            .zip(g.value(logits)?.data().chunks_exact(data::CLASSES))
        {
            *o = crate::engine::argmax(row) as u8;
        }
        tape = g.into_tape();
    }
    Ok(())
}
