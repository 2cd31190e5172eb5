//! GANs on a 2-D mixture of 8 Gaussians, shared by `examples/gan.rs` and the
//! release-mode test in `tests/accuracy.rs` (both include this file with `#[path]`; it
//! is not public API). See `examples/gan.rs` for the three losses.
//!
//! Data: 8 modes on a circle of radius 2, std 0.02. Generator 2 -> 128 -> 128 -> 2
//! (ReLU), discriminator 2 -> 128 -> 128 -> 1 (leaky ReLU 0.2), batch 256, Adam (lr
//! 1e-3, betas 0.5, 0.999) for minimax and non-saturating; RMSprop lr 5e-4, weight
//! clipping to `[-0.1, 0.1]` and 5 critic steps per generator step for the Wasserstein
//! GAN. A sample is of high quality when it lies within 3 std of a mode's mean, and a
//! mode is covered when at least 1% of the samples are of high quality for it.

use dl_autograd::{Graph, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::{predict, Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::{AdamConfig, Optimizer, RmspropConfig};
use std::f64::consts::PI;

/// Standard deviation of each mode.
const STD: f64 = 0.02;
const BATCH: usize = 256;
/// RMSprop's learning rate for the Wasserstein critic and generator.
const WGAN_LR: f64 = 5e-4;
/// The critic's weights are clipped to `[-WGAN_CLIP, WGAN_CLIP]`.
const WGAN_CLIP: f32 = 0.1;
/// Generated points [`train`] returns.
pub const SAMPLES: usize = 2000;

/// The GAN objective.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Loss {
    /// `G` minimizes `log(1 - D(G(z)))`.
    // Only the example trains it.
    #[allow(dead_code)]
    Minimax,
    /// `G` maximizes `log D(G(z))`.
    NonSaturating,
    /// A clipped critic; `G` minimizes `-mean C(G(z))`.
    Wasserstein,
}

/// The mean of mode `k` (of 8).
fn mode(k: usize) -> (f64, f64) {
    let a = 2.0 * PI * k as f64 / 8.0;
    (2.0 * a.cos(), 2.0 * a.sin())
}

/// `n` real points `[n, 2]`: a uniformly chosen mode plus Gaussian noise of std [`STD`].
pub fn real(n: usize, rng: &mut Rng) -> Tensor<f32> {
    Tensor::from_fn(&[n, 2], |_| 0.0)
        .map(|mut t| {
            for row in t.data_mut().chunks_mut(2) {
                let (mx, my) = mode(rng.below(8));
                row[0] = (mx + rng.normal(0.0, STD)) as f32;
                row[1] = (my + rng.normal(0.0, STD)) as f32;
            }
            t
        })
        .expect("sized")
}

/// The generator's input: `[n, 2]` standard normal noise.
fn noise(n: usize, rng: &mut Rng) -> Tensor<f32> {
    Tensor::rand_normal(&[n, 2], 0.0, 1.0, rng).expect("sized")
}

/// `2 -> 128 -> 128 -> out` with `act` between the layers.
fn mlp(out: usize, act: Activation, rng: &mut Rng) -> dl_layers::Result<Sequential<f32>> {
    Ok(Sequential::new()
        .push(LinearConfig::new(2, 128).init(rng)?)
        .push(act)
        .push(LinearConfig::new(128, 128).init(rng)?)
        .push(act)
        .push(LinearConfig::new(128, out).init(rng)?))
}

/// `(modes covered, share of high-quality samples)` of `points` (rows of 2).
pub fn score(points: &[f32]) -> (usize, f64) {
    let mut counts = [0usize; 8];
    let mut good = 0;
    for p in points.chunks(2) {
        let (k, d) = (0..8)
            .map(|k| {
                let (mx, my) = mode(k);
                (
                    k,
                    ((p[0] as f64 - mx).powi(2) + (p[1] as f64 - my).powi(2)).sqrt(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY));
        if d <= 3.0 * STD {
            counts[k] += 1;
            good += 1;
        }
    }
    let n = points.len() / 2;
    let covered = counts.iter().filter(|&&c| c * 100 >= n).count();
    (covered, good as f64 / n as f64)
}

/// Trains a GAN with `loss` for `steps` generator steps (networks initialized from
/// `seed`, training data drawn from `seed + 1`) and returns [`SAMPLES`] generated
/// points (rows of 2) from noise seeded by 2024.
pub fn train(loss: Loss, steps: usize, seed: u64) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut gen = mlp(2, Activation::Relu, &mut rng)?;
    let mut disc = mlp(1, Activation::LeakyRelu(0.2), &mut rng)?;
    let wgan = loss == Loss::Wasserstein;
    let (mut g_opt, mut d_opt): (Box<dyn Optimizer<f32>>, Box<dyn Optimizer<f32>>) = if wgan {
        (
            Box::new(RmspropConfig::new(WGAN_LR).build()?),
            Box::new(RmspropConfig::new(WGAN_LR).build()?),
        )
    } else {
        (
            Box::new(AdamConfig::new(1e-3).betas(0.5, 0.999).build()?),
            Box::new(AdamConfig::new(1e-3).betas(0.5, 0.999).build()?),
        )
    };
    let critic_steps = if wgan { 5 } else { 1 };
    let ones = Tensor::full(&[BATCH, 1], 1.0f32)?;
    let zeros = Tensor::zeros(&[BATCH, 1])?;
    let mut data = Rng::seed_from_u64(seed + 1);
    for _ in 0..steps {
        for _ in 0..critic_steps {
            // Discriminator / critic step on real points and detached fakes.
            let fake = predict(&gen, &noise(BATCH, &mut data))?;
            let x = real(BATCH, &mut data);
            let mut g = Graph::new();
            let (xr, xf) = (g.input(&x), g.input(&fake));
            let dr = disc.forward(&mut g, xr, &mut Ctx::train(0))?;
            let df = disc.forward(&mut g, xf, &mut Ctx::train(0))?;
            let l = if wgan {
                let mr = g.mean_all(dr)?;
                let mf = g.mean_all(df)?;
                g.sub(mf, mr)?
            } else {
                let (o, z) = (g.input(&ones), g.input(&zeros));
                let lr = g.bce_with_logits(dr, o)?;
                let lf = g.bce_with_logits(df, z)?;
                g.add(lr, lf)?
            };
            g.backward(l)?;
            drop(g);
            d_opt.step(&mut disc)?;
            disc.for_each_param(&mut |p| p.zero_grad());
            if wgan {
                disc.for_each_param(&mut |p| {
                    p.value_mut()
                        .iter_mut()
                        .for_each(|w| *w = w.clamp(-WGAN_CLIP, WGAN_CLIP))
                });
            }
        }
        // Generator step through the (fixed) discriminator.
        let z = noise(BATCH, &mut data);
        let mut g = Graph::new();
        let zv = g.input(&z);
        let xf = gen.forward(&mut g, zv, &mut Ctx::train(0))?;
        let df = disc.forward(&mut g, xf, &mut Ctx::train(0))?;
        let l = match loss {
            // log(1 - sigmoid(l)) = -bce(l, 0).
            Loss::Minimax => {
                let z = g.input(&zeros);
                let b = g.bce_with_logits(df, z)?;
                g.neg(b)?
            }
            // -log sigmoid(l) = bce(l, 1).
            Loss::NonSaturating => {
                let o = g.input(&ones);
                g.bce_with_logits(df, o)?
            }
            Loss::Wasserstein => {
                let m = g.mean_all(df)?;
                g.neg(m)?
            }
        };
        g.backward(l)?;
        drop(g);
        g_opt.step(&mut gen)?;
        gen.for_each_param(&mut |p| p.zero_grad());
        // The generator's backward also filled the discriminator's gradients.
        disc.for_each_param(&mut |p| p.zero_grad());
    }
    let samples = predict(&gen, &noise(SAMPLES, &mut Rng::seed_from_u64(2024)))?;
    Ok(samples.into_vec())
}
