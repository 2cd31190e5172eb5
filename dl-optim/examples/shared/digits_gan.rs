//! A GAN on the bundled 8x8 digits, shared by `examples/digits_gan.rs` and the
//! release-mode test in `tests/accuracy.rs` (both include this file with `#[path]`; it
//! is not public API).
//!
//! An MLP GAN: dl-layers has `Conv2d` but no transposed convolution or upsampling
//! layer, so a DCGAN generator cannot be built from its layers; on 8x8 images an MLP
//! generator is enough. Generator `LATENT -> 128 -> 256 -> 64` (ReLU, tanh output in
//! `[-1, 1]`), discriminator `64 -> 256 -> 128 -> 1` (leaky ReLU 0.2), the
//! non-saturating generator loss (`G` maximizes `log D(G(z))`), one-sided label
//! smoothing (real digits labelled 0.9), Adam (lr 1e-3, betas 0.5, 0.999) for both,
//! batch 64, one discriminator step per generator step, fixed seeds. (At lr 2e-4 and
//! without the smoothing, 5000 steps left the 2s and 6s out and the confidence at
//! 0.84; with both changes all ten classes appear.)
//!
//! Quality is judged by models trained on the real digits only: an MLP classifier
//! (64-128-10) gives each generated image a class and a confidence, and the Euclidean
//! distance to the nearest real training digit says how digit-like (small) and how
//! novel (not zero) a sample is.

use dl_autograd::{Graph, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::{predict, Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::{AdamConfig, Optimizer};

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Size of the generator's input noise.
pub const LATENT: usize = 32;
const BATCH: usize = 64;
/// The discriminator's target for real digits (one-sided label smoothing).
const REAL_LABEL: f32 = 0.9;

/// Real digits as rows of 64 pixels scaled from `0..=16` to `[-1, 1]`, with labels.
pub fn real_digits() -> Result<(Vec<f32>, Vec<usize>), Box<dyn std::error::Error>> {
    let d = dl_data::datasets::digits::<f32>()?;
    let x = d.features().iter().map(|&v| v / 8.0 - 1.0).collect();
    Ok((x, d.targets().to_vec()))
}

/// Splits rows (every `k`-th row into the second part): the classifier's held-out set.
pub fn split_every(x: &[f32], y: &[usize], k: usize) -> [(Vec<f32>, Vec<usize>); 2] {
    let mut parts = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for (i, (row, &label)) in x.chunks(PIXELS).zip(y).enumerate() {
        let p = &mut parts[usize::from(i % k == k - 1)];
        p.0.extend_from_slice(row);
        p.1.push(label);
    }
    parts
}

fn gather(x: &[f32], idx: &[usize]) -> Tensor<f32> {
    let mut out = Vec::with_capacity(idx.len() * PIXELS);
    for &i in idx {
        out.extend_from_slice(&x[i * PIXELS..(i + 1) * PIXELS]);
    }
    Tensor::from_vec(out, &[idx.len(), PIXELS]).expect("sized")
}

fn noise(n: usize, rng: &mut Rng) -> Tensor<f32> {
    Tensor::rand_normal(&[n, LATENT], 0.0, 1.0, rng).expect("sized")
}

fn generator(rng: &mut Rng) -> dl_layers::Result<Sequential<f32>> {
    Ok(Sequential::new()
        .push(LinearConfig::new(LATENT, 128).init(rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(128, 256).init(rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(256, PIXELS).init(rng)?)
        .push(Activation::Tanh))
}

fn discriminator(rng: &mut Rng) -> dl_layers::Result<Sequential<f32>> {
    Ok(Sequential::new()
        .push(LinearConfig::new(PIXELS, 256).init(rng)?)
        .push(Activation::LeakyRelu(0.2))
        .push(LinearConfig::new(256, 128).init(rng)?)
        .push(Activation::LeakyRelu(0.2))
        .push(LinearConfig::new(128, 1).init(rng)?))
}

/// Trains a GAN on `real` (rows of 64 pixels in `[-1, 1]`) for `steps` generator steps
/// (one discriminator step each) and returns the generator. `on_step(step, d_loss,
/// g_loss)` sees the losses.
pub fn train(
    real: &[f32],
    steps: usize,
    seed: u64,
    mut on_step: impl FnMut(usize, f32, f32),
) -> Result<Sequential<f32>, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut gen = generator(&mut rng)?;
    let mut disc = discriminator(&mut rng)?;
    let mut g_opt = AdamConfig::new(1e-3).betas(0.5, 0.999).build()?;
    let mut d_opt = AdamConfig::new(1e-3).betas(0.5, 0.999).build()?;
    let ones = Tensor::full(&[BATCH, 1], 1.0f32)?;
    // One-sided label smoothing (Salimans et al. 2016): real digits are labelled 0.9
    // so the discriminator does not grow over-confident; fakes stay at 0.
    let real_target = Tensor::full(&[BATCH, 1], REAL_LABEL)?;
    let zeros = Tensor::zeros(&[BATCH, 1])?;
    let n = real.len() / PIXELS;
    let mut data = rng.fork(1);
    let mut idx = vec![0usize; BATCH];
    for step in 0..steps {
        // Discriminator step: real digits -> 1, detached fakes -> 0.
        let fake = predict(&gen, &noise(BATCH, &mut data))?;
        idx.iter_mut().for_each(|i| *i = data.below(n));
        let x = gather(real, &idx);
        let mut g = Graph::new();
        let (xr, xf) = (g.input(&x), g.input(&fake));
        let dr = disc.forward(&mut g, xr, &mut Ctx::train(0))?;
        let df = disc.forward(&mut g, xf, &mut Ctx::train(0))?;
        let (o, z) = (g.input(&real_target), g.input(&zeros));
        let lr = g.bce_with_logits(dr, o)?;
        let lf = g.bce_with_logits(df, z)?;
        let l = g.add(lr, lf)?;
        let d_loss = g.value(l)?.data()[0];
        g.backward(l)?;
        drop(g);
        d_opt.step(&mut disc)?;
        disc.for_each_param(&mut |p| p.zero_grad());

        // Generator step, non-saturating: -log sigmoid(D(G(z))) = bce(D(G(z)), 1).
        let z = noise(BATCH, &mut data);
        let mut g = Graph::new();
        let zv = g.input(&z);
        let xf = gen.forward(&mut g, zv, &mut Ctx::train(0))?;
        let df = disc.forward(&mut g, xf, &mut Ctx::train(0))?;
        let o = g.input(&ones);
        let l = g.bce_with_logits(df, o)?;
        let g_loss = g.value(l)?.data()[0];
        g.backward(l)?;
        drop(g);
        g_opt.step(&mut gen)?;
        gen.for_each_param(&mut |p| p.zero_grad());
        // The generator's backward also filled the discriminator's gradients.
        disc.for_each_param(&mut |p| p.zero_grad());
        on_step(step, d_loss, g_loss);
    }
    Ok(gen)
}

/// `n` generated images (rows of 64 pixels in `[-1, 1]`) from noise seeded by `seed`.
pub fn sample(gen: &Sequential<f32>, n: usize, seed: u64) -> dl_layers::Result<Vec<f32>> {
    Ok(predict(gen, &noise(n, &mut Rng::seed_from_u64(seed)))?.into_vec())
}

/// A digit classifier trained on real digits only: 64-128-10 (ReLU), cross-entropy,
/// Adam lr 1e-3, batch 64, `epochs` epochs.
pub fn train_classifier(
    x: &[f32],
    y: &[usize],
    epochs: usize,
) -> Result<Sequential<f32>, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed_from_u64(7);
    let mut net = Sequential::new()
        .push(LinearConfig::new(PIXELS, 128).init(&mut rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(128, 10).init(&mut rng)?);
    let mut opt = AdamConfig::new(1e-3).build()?;
    let mut order: Vec<usize> = (0..y.len()).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for idx in order.chunks(BATCH) {
            let xb = gather(x, idx);
            let yb: Vec<usize> = idx.iter().map(|&i| y[i]).collect();
            let mut g = Graph::new();
            let xv = g.input(&xb);
            let logits = net.forward(&mut g, xv, &mut Ctx::train(0))?;
            let l = g.cross_entropy(logits, &yb)?;
            g.backward(l)?;
            drop(g);
            opt.step(&mut net)?;
            net.for_each_param(&mut |p| p.zero_grad());
        }
    }
    Ok(net)
}

/// Class probabilities (rows of 10) of `x` under `net`.
pub fn probabilities(
    net: &Sequential<f32>,
    x: &[f32],
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let t = Tensor::from_vec(x.to_vec(), &[x.len() / PIXELS, PIXELS])?;
    let logits = predict(net, &t)?;
    let mut g = Graph::new_no_grad();
    let v = g.input(&logits);
    let p = g.softmax(v)?;
    Ok(g.value(p)?.data().to_vec())
}

/// What a set of images looks like to the models trained on real digits.
#[derive(Debug, Clone)]
pub struct Quality {
    /// How many images the classifier puts in each class.
    pub class_counts: [usize; 10],
    /// Mean of the classifier's largest class probability.
    pub mean_confidence: f64,
    /// Share of images classified with probability >= 0.9.
    pub confident_share: f64,
    /// Mean Euclidean distance (in `[-1, 1]` pixel units) to the nearest real digit of
    /// the reference set.
    pub mean_nn_distance: f64,
    /// Share of images closer than [`COPY_DISTANCE`] to a real digit of the reference
    /// set: near-copies, the sign of a generator that memorized its training set.
    pub copy_share: f64,
}

/// Below this distance to a real digit an image counts as a near-copy: an RMS pixel
/// difference of 1/8 of the pixel range `[-1, 1]` (1 of 16 grey levels).
pub const COPY_DISTANCE: f64 = 1.0;

impl Quality {
    /// Classes holding at least `min_share` of the images.
    pub fn classes_with(&self, min_share: f64) -> usize {
        let n: usize = self.class_counts.iter().sum();
        self.class_counts
            .iter()
            .filter(|&&c| c as f64 >= min_share * n as f64)
            .count()
    }
}

/// Scores `x` with `classifier` and the nearest-neighbour distance to `reference`.
pub fn quality(
    classifier: &Sequential<f32>,
    reference: &[f32],
    x: &[f32],
) -> Result<Quality, Box<dyn std::error::Error>> {
    let probs = probabilities(classifier, x)?;
    let mut class_counts = [0usize; 10];
    let (mut conf, mut confident) = (0.0, 0usize);
    for row in probs.chunks(10) {
        let (k, p) = row
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        class_counts[k] += 1;
        conf += p as f64;
        confident += usize::from(p >= 0.9);
    }
    let n = probs.len() / 10;
    let (mut dist, mut copies) = (0.0, 0usize);
    for a in x.chunks(PIXELS) {
        let best = reference
            .chunks(PIXELS)
            .map(|b| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f32>())
            .fold(f32::INFINITY, f32::min);
        dist += (best as f64).sqrt();
        copies += usize::from((best as f64).sqrt() < COPY_DISTANCE);
    }
    Ok(Quality {
        class_counts,
        mean_confidence: conf / n as f64,
        confident_share: confident as f64 / n as f64,
        mean_nn_distance: dist / n as f64,
        copy_share: copies as f64 / n as f64,
    })
}

/// `n` images of independent uniform pixels in `[-1, 1]`: the no-skill baseline.
pub fn uniform_noise(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..n * PIXELS).map(|_| rng.uniform(-1.0f32, 1.0)).collect()
}
