//! A GAN on the bundled 8x8 digits (scikit-learn's 1,797 images): an MLP generator
//! and discriminator with the non-saturating loss (see `shared/digits_gan.rs` for the
//! architecture and why it is not a DCGAN), trained on 80% of the digits with fixed
//! seeds.
//!
//! Quality is measured by models that only ever saw real digits: an MLP classifier
//! trained on the same 80% (its accuracy on the held-out 20% is printed) classifies 1000
//! generated images, and each image's distance to the nearest real training digit is
//! measured (and the share of near-copies, distance < 1, which would mean the
//! generator memorized its training set). The same figures for the held-out real
//! digits, the untrained generator and uniform noise frame them. Writes
//! `digits_gan.svg` (or the `.svg` path given): 64 generated digits beside 64 held-out
//! real ones. 10,000 steps take about 20-45 s in release on this (shared) machine.
//!
//! ```text
//! cargo run --release -p dl-optim --example digits_gan [-- steps] [out.svg]
//! ```

#[path = "shared/digits_gan.rs"]
mod digits_gan;

use digits_gan::{Quality, PIXELS};
use std::fmt::Write;
use std::time::Instant;

const SIDE: usize = 8;

/// An 8x8 grid of images (black ink on white) at `x_offset`, with a title.
fn grid(title: &str, images: &[f32], x_offset: f64) -> String {
    let (px, gap, top) = (4.0, 4.0, 24.0);
    let cell = SIDE as f64 * px + gap;
    let mut s = format!("<g transform=\"translate({x_offset},0)\">\n");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" font-size=\"12\">{title}</text>",
        cell * 4.0
    );
    for (k, img) in images.chunks(PIXELS).take(64).enumerate() {
        let (ox, oy) = ((k % 8) as f64 * cell, top + (k / 8) as f64 * cell);
        for (p, &v) in img.iter().enumerate() {
            let ink = ((v.clamp(-1.0, 1.0) + 1.0) / 2.0) as f64;
            let grey = (255.0 * (1.0 - ink)).round() as u8;
            let _ = writeln!(
                s,
                "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"{px}\" height=\"{px}\" fill=\"rgb({grey},{grey},{grey})\"/>",
                ox + (p % SIDE) as f64 * px,
                oy + (p / SIDE) as f64 * px
            );
        }
    }
    s + "</g>\n"
}

fn row(name: &str, q: &Quality) {
    println!(
        "| {name} | {} | {} | {:.3} | {:.1}% | {:.2} | {:.1}% | {:?} |",
        q.class_counts.iter().filter(|&&c| c > 0).count(),
        q.classes_with(0.02),
        q.mean_confidence,
        100.0 * q.confident_share,
        q.mean_nn_distance,
        100.0 * q.copy_share,
        q.class_counts
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut steps = 10_000usize;
    let mut out = "digits_gan.svg".to_string();
    for a in std::env::args().skip(1) {
        match a.parse() {
            Ok(s) => steps = s,
            Err(_) => out = a,
        }
    }
    let (x, y) = digits_gan::real_digits()?;
    let [(train_x, train_y), (held_x, held_y)] = digits_gan::split_every(&x, &y, 5);
    println!(
        "digits: {} training images, {} held out",
        train_y.len(),
        held_y.len()
    );

    let start = Instant::now();
    let classifier = digits_gan::train_classifier(&train_x, &train_y, 30)?;
    let probs = digits_gan::probabilities(&classifier, &held_x)?;
    let correct = probs
        .chunks(10)
        .zip(&held_y)
        .filter(|(p, &t)| (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])) == Some(t))
        .count();
    println!(
        "judge: MLP classifier on real digits, held-out accuracy {:.1}% ({:.1} s)",
        100.0 * correct as f64 / held_y.len() as f64,
        start.elapsed().as_secs_f64()
    );

    let start = Instant::now();
    let (mut d_acc, mut g_acc) = (0.0, 0.0);
    let gen = digits_gan::train(&train_x, steps, 0, |step, d, g| {
        d_acc += d as f64;
        g_acc += g as f64;
        if (step + 1) % 1000 == 0 {
            println!(
                "step {:>6}: D loss {:.3}, G loss {:.3} (means over 1000 steps)",
                step + 1,
                d_acc / 1000.0,
                g_acc / 1000.0
            );
            (d_acc, g_acc) = (0.0, 0.0);
        }
    })?;
    println!(
        "GAN: {steps} steps in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let fake = digits_gan::sample(&gen, 1000, 2024)?;
    let noise = digits_gan::uniform_noise(1000, 99);
    let untrained = digits_gan::train(&train_x, 0, 0, |_, _, _| {})?;
    let untrained = digits_gan::sample(&untrained, 1000, 2024)?;
    let q_untrained = digits_gan::quality(&classifier, &train_x, &untrained)?;
    let q_fake = digits_gan::quality(&classifier, &train_x, &fake)?;
    let q_real = digits_gan::quality(&classifier, &train_x, &held_x)?;
    let q_noise = digits_gan::quality(&classifier, &train_x, &noise)?;
    println!(
        "\n| images | classes predicted | classes with >= 2% | mean max-probability | \
         share with p >= 0.9 | mean distance to nearest real training digit | \
         near-copies (distance < {}) | class counts |",
        digits_gan::COPY_DISTANCE
    );
    println!("|---|---|---|---|---|---|---|---|");
    row("generated (1000)", &q_fake);
    row(&format!("held-out real ({})", held_y.len()), &q_real);
    row("untrained generator (1000)", &q_untrained);
    row("uniform noise (1000)", &q_noise);

    let mut svg = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"316\" font-family=\"sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
    );
    svg += &grid(
        &format!(
            "generated ({steps} steps), confidence {:.2}",
            q_fake.mean_confidence
        ),
        &fake,
        8.0,
    );
    svg += &grid("real (held out)", &held_x, 308.0);
    svg += "</svg>\n";
    std::fs::write(&out, svg)?;
    println!("wrote {out} (left: generated, right: real)");
    Ok(())
}
