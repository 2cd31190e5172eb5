//! A causal character-level language model (decoder-only transformer) on a small
//! public-domain text, `examples/data/text.txt` (Shakespeare's sonnets 1, 2, 18,
//! 29, 30, 55, 60, 73, 116 and 130, 1609, and Lincoln's Gettysburg Address, 1863),
//! then samples from it.
//!
//! Model: [`CausalTransformer`] with width 64, 4 heads, 2 blocks, feed-forward 128,
//! context 64 characters, dropout 0.2. Trained on random windows (next-character
//! cross-entropy at every position), Adam lr 2e-3, batch 32, fixed seeds; every
//! 10th block of 256 characters is held out. Prints train / held-out loss in bits per character, then
//! samples at temperature 0.8 from a few prompts.
//!
//! ```text
//! cargo run --release -p dl-optim --example char_model [-- steps]
//! ```

use dl_autograd::{Graph, ParamSet, Tape};
use dl_core::Rng;
use dl_layers::{CausalTransformer, Ctx, TransformerConfig};
use dl_optim::{AdamConfig, Optimizer};
use std::time::Instant;

const CONTEXT: usize = 64;
const BATCH: usize = 32;

/// `(inputs, targets)` of `BATCH` random windows from `ids`.
fn windows(ids: &[usize], rng: &mut Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..BATCH {
        let s = rng.below(ids.len() - CONTEXT - 1);
        x.extend_from_slice(&ids[s..s + CONTEXT]);
        y.extend_from_slice(&ids[s + 1..s + CONTEXT + 1]);
    }
    (x, y)
}

/// Mean next-character loss in bits over consecutive windows of `ids`.
fn bits_per_char(
    lm: &CausalTransformer<f32>,
    ids: &[usize],
    vocab: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let (mut total, mut n) = (0.0, 0);
    for s in (0..ids.len() - CONTEXT - 1).step_by(CONTEXT) {
        let mut g = Graph::new_no_grad();
        let logits = lm.logits(&mut g, &ids[s..s + CONTEXT], 1, CONTEXT, &mut Ctx::eval())?;
        let logits = g.reshape(logits, &[CONTEXT, vocab])?;
        let loss = g.cross_entropy(logits, &ids[s + 1..s + CONTEXT + 1])?;
        total += g.value(loss)?.data()[0] as f64;
        n += 1;
    }
    Ok(total / n as f64 / std::f64::consts::LN_2)
}

fn sample(
    lm: &CausalTransformer<f32>,
    prompt: &[usize],
    len: usize,
    vocab: usize,
    rng: &mut Rng,
) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    let mut ids = prompt.to_vec();
    for _ in 0..len {
        let ctx = &ids[ids.len().saturating_sub(CONTEXT)..];
        let mut g = Graph::new_no_grad();
        let logits = lm.logits(&mut g, ctx, 1, ctx.len(), &mut Ctx::eval())?;
        let row = &g.value(logits)?.data()[(ctx.len() - 1) * vocab..];
        // Softmax at temperature 0.8, then one draw.
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let p: Vec<f64> = row
            .iter()
            .map(|&l| (((l - max) / 0.8) as f64).exp())
            .collect();
        let mut u = rng.next_f64() * p.iter().sum::<f64>();
        let mut next = vocab - 1;
        for (i, &pi) in p.iter().enumerate() {
            if u < pi {
                next = i;
                break;
            }
            u -= pi;
        }
        ids.push(next);
    }
    Ok(ids)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let text = include_str!("data/text.txt");
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let vocab = chars.len();
    let encode = |s: &str| -> Vec<usize> {
        s.chars()
            .map(|c| chars.binary_search(&c).unwrap_or(0))
            .collect()
    };
    let ids = encode(text);
    // Every 10th block of 256 characters is held out, so both parts mix sonnets
    // and prose.
    let (mut train_ids, mut held_out) = (Vec::new(), Vec::new());
    for (i, block) in ids.chunks(256).enumerate() {
        if i % 10 == 9 {
            held_out.extend_from_slice(block);
        } else {
            train_ids.extend_from_slice(block);
        }
    }
    let (train_ids, held_out) = (&train_ids[..], &held_out[..]);
    println!(
        "{} characters, vocabulary {vocab}; {} for training, {} held out",
        ids.len(),
        train_ids.len(),
        held_out.len()
    );

    let mut rng = Rng::seed_from_u64(0);
    let cfg = TransformerConfig::new(64, 4, 128, 2).dropout(0.2);
    let mut lm = CausalTransformer::new(cfg, vocab, CONTEXT, &mut rng)?;
    let mut opt = AdamConfig::new(2e-3).build()?;
    let mut data = Rng::seed_from_u64(1);
    let start = Instant::now();
    // One tape reused across steps: its buffers keep their sizes, so a step does
    // not allocate (or page-fault) its activations again.
    let mut tape = Tape::new();
    for step in 1..=steps {
        let (x, y) = windows(train_ids, &mut data);
        let mut g = Graph::from_tape(tape);
        let logits = lm.logits(&mut g, &x, BATCH, CONTEXT, &mut Ctx::train(step as u64))?;
        let logits = g.reshape(logits, &[BATCH * CONTEXT, vocab])?;
        let loss = g.cross_entropy(logits, &y)?;
        g.backward(loss)?;
        tape = g.into_tape();
        opt.step(&mut lm)?;
        lm.for_each_param(&mut |p| p.zero_grad());
        if step % 500 == 0 || step == steps {
            println!(
                "step {step:>5}: train {:.3} bits/char, held-out {:.3} bits/char ({:.0} s)",
                bits_per_char(&lm, train_ids, vocab)?,
                bits_per_char(&lm, held_out, vocab)?,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let mut rng = Rng::seed_from_u64(42);
    for prompt in ["Shall I ", "When ", "Love "] {
        let out = sample(&lm, &encode(prompt), 160, vocab, &mut rng)?;
        let s: String = out.iter().map(|&i| chars[i]).collect();
        println!("\n--- prompt {prompt:?} ---\n{s}");
    }
    Ok(())
}
