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
//! ReLU 0.2), batch 256, Adam (lr 1e-3, betas 0.5, 0.999) for the first two, 8000
//! generator steps by default, fixed seeds. Reports, for 2000 generated points, the modes
//! covered (a mode counts when at least 1% of the samples lie within 3 std of its
//! mean) and the share of high-quality samples (within 3 std of any mean); writes
//! `gan.svg` with real and generated points for each loss. The models and training
//! live in `shared/gan8.rs`, shared with the release-mode test in `tests/accuracy.rs`.
//!
//! ```text
//! cargo run --release -p dl-optim --example gan [-- steps]
//! ```

#[path = "shared/gan8.rs"]
mod gan8;

use dl_core::Rng;
use gan8::{real, score, train, Loss};
use std::fmt::Write;

/// An SVG panel at `x_offset`: `real` (grey) and `fake` (blue) points, with a title.
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
        .unwrap_or(8000);
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
            0,
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
