//! GANs on a 2-D mixture of 8 Gaussians (means on a circle of radius 2, std 0.02),
//! with three losses:
//!
//! - **minimax** (Goodfellow et al.): `D` maximizes `log D(x) + log(1 - D(G(z)))`,
//!   `G` minimizes `log(1 - D(G(z)))` (saturates when `D` wins early);
//! - **non-saturating**: `G` maximizes `log D(G(z))` instead;
//! - **Wasserstein** (Arjovsky et al.): a critic `C` maximizes
//!   `mean C(x) - mean C(G(z))` under weight clipping to `[-0.1, 0.1]` (5 critic
//!   steps per generator step, RMSprop lr 5e-4, twice the generator steps of the
//!   others), `G` minimizes `-mean C(G(z))`. The gradient-penalty
//!   variant (WGAN-GP) needs the gradient of a gradient norm, i.e. double backward,
//!   which dl-autograd does not support, so it is not offered.
//!
//! Generator 2 -> 128 -> 128 -> 2 (ReLU), discriminator 2 -> 128 -> 128 -> 1 (leaky
//! ReLU 0.2), batch 256, Adam (lr 1e-3, betas 0.5, 0.999) for the first two, 5000
//! generator steps by default, fixed seeds. Reports, for 2000 generated points, the modes
//! covered (a mode counts when at least 1% of the samples lie within 3 std of its
//! mean) and the share of high-quality samples (within 3 std of any mean); writes
//! `gan.svg` with real and generated points for each loss.
//!
//! ```text
//! cargo run --release -p dl-optim --example gan [-- steps]
//! ```

use dl_autograd::{Graph, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::{predict, Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::{AdamConfig, Optimizer, RmspropConfig};
use std::f64::consts::PI;
use std::fmt::Write;

const STD: f64 = 0.02;
const BATCH: usize = 256;
/// RMSprop's learning rate for the Wasserstein critic and generator.
const WGAN_LR: f64 = 5e-4;
/// The critic's weights are clipped to `[-WGAN_CLIP, WGAN_CLIP]`.
const WGAN_CLIP: f32 = 0.1;

#[derive(Clone, Copy, PartialEq)]
enum Loss {
    Minimax,
    NonSaturating,
    Wasserstein,
}

fn mode(k: usize) -> (f64, f64) {
    let a = 2.0 * PI * k as f64 / 8.0;
    (2.0 * a.cos(), 2.0 * a.sin())
}

fn real(n: usize, rng: &mut Rng) -> Tensor<f32> {
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

fn noise(n: usize, rng: &mut Rng) -> Tensor<f32> {
    Tensor::rand_normal(&[n, 2], 0.0, 1.0, rng).expect("sized")
}

fn mlp(out: usize, act: Activation, rng: &mut Rng) -> dl_layers::Result<Sequential<f32>> {
    Ok(Sequential::new()
        .push(LinearConfig::new(2, 128).init(rng)?)
        .push(act)
        .push(LinearConfig::new(128, 128).init(rng)?)
        .push(act)
        .push(LinearConfig::new(128, out).init(rng)?))
}

/// `(modes covered, share of high-quality samples)`.
fn score(points: &[f32]) -> (usize, f64) {
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

fn train(loss: Loss, steps: usize) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed_from_u64(0);
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
    let mut data = Rng::seed_from_u64(1);
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
    let samples = predict(&gen, &noise(2000, &mut Rng::seed_from_u64(2024)))?;
    Ok(samples.into_vec())
}

fn scatter(title: &str, real: &[f32], fake: &[f32], x_offset: f64) -> String {
    let (w, pad) = (320.0, 20.0);
    let map = |v: f32| pad + (v as f64 + 3.0) / 6.0 * (w - 2.0 * pad);
    let mut s = format!("<g transform=\"translate({x_offset},0)\">\n");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">{title}</text>",
        w / 2.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{pad}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#ccc\"/>",
        pad + 10.0,
        w - 2.0 * pad,
        w - 2.0 * pad
    );
    for (pts, color) in [(real, "#999"), (fake, "#1f77b4")] {
        for p in pts.chunks(2) {
            let (x, y) = (map(p[0]), 10.0 + w - map(p[1]));
            if (pad..=w - pad).contains(&x) && (pad + 10.0..=w - pad + 10.0).contains(&y) {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"1.2\" fill=\"{color}\" fill-opacity=\"0.5\"/>"
                );
            }
        }
    }
    s + "</g>\n"
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5000);
    let only = std::env::args().nth(2);
    let real_pts = real(1000, &mut Rng::seed_from_u64(5)).into_vec();
    let mut panels = Vec::new();
    println!("| loss | modes covered (of 8) | high-quality samples |");
    println!("|---|---|---|");
    for (name, loss) in [
        ("minimax", Loss::Minimax),
        ("non-saturating", Loss::NonSaturating),
        ("Wasserstein (clipping)", Loss::Wasserstein),
    ] {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        // The clipped critic learns slowly: the Wasserstein GAN gets twice the
        // generator steps (and five critic steps per generator step).
        let pts = train(
            loss,
            if loss == Loss::Wasserstein {
                2 * steps
            } else {
                steps
            },
        )?;
        let (covered, quality) = score(&pts);
        println!("| {name} | {covered} | {:.1}% |", 100.0 * quality);
        panels.push(scatter(
            &format!("{name}: {covered}/8 modes, {:.0}% HQ", 100.0 * quality),
            &real_pts,
            &pts,
            320.0 * panels.len() as f64,
        ));
    }
    let width = 320.0 * panels.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"340\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for p in &panels {
        svg += p;
    }
    svg += "</svg>\n";
    std::fs::write("gan.svg", svg)?;
    println!("wrote gan.svg (grey: real, blue: generated)");
    Ok(())
}
