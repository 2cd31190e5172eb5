//! Train the digits MLP the firmware runs (64-32-10, ReLU, f32) and export what
//! `dl-embedded-demo` bakes into flash.
//!
//! ```text
//! cargo run --release -p dl-optim --example digits_export            # into dl-embedded-demo/model
//! cargo run --release -p dl-optim --example digits_export -- out/dir
//! ```
//!
//! Data: the bundled 8x8 digits, a stratified 70/30 split (seed 0), pixels scaled by
//! 1/16 (0..=16 becomes 0..=1; exact in f32, so the firmware can keep the samples as
//! bytes and scale them the same way). Training: Adam (lr 3e-3, cosine decay to 1e-5),
//! batch 32, 60 epochs, seed 0.
//!
//! Files written (raw little-endian bytes, one byte per pixel or label):
//! - `digits_mlp.safetensors`: the checkpoint (`0.weight [32, 64]`, `0.bias [32]`,
//!   `2.weight [10, 32]`, `2.bias [10]`), through `dl_layers::checkpoint`;
//! - `test_x.bin` (`n * 64` pixels 0..=16), `test_y.bin` (`n` labels), `test_pred.bin`
//!   (`n` desktop predictions, the argmax of the logits of `dl_layers::predict`);
//! - `train_x.bin`, `train_y.bin`: 20 training samples per class (the first ones of
//!   the shuffled training split), for the firmware's on-device training.

use dl_core::Rng;
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_layers::{checkpoint, predict, Activation, LinearConfig, Sequential};
use dl_optim::trainer::{evaluate, fit, LrPolicy, Progress, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay};
use std::path::PathBuf;
use std::sync::Arc;

/// Layer widths of the exported MLP.
const WIDTHS: [usize; 3] = [64, 32, 10];
/// Training samples per class exported for on-device training.
const TRAIN_PER_CLASS: usize = 20;
/// Pixel scale: the digits' intensities are 0..=16.
const PIXEL_MAX: f32 = 16.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::env::args().nth(1).map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../dl-embedded-demo/model"
            ))
        },
        PathBuf::from,
    );
    std::fs::create_dir_all(&out_dir)?;

    let all: Dataset<f32, usize> = dl_data::datasets::digits()?;
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())?;
    let (train_raw, test_raw) = (all.subset(&split.train)?, all.subset(&split.test)?);
    let scaled = |d: &Dataset<f32, usize>| -> Result<Dataset<f32, usize>, dl_data::Error> {
        let x = d.features().iter().map(|v| v / PIXEL_MAX).collect();
        Dataset::new(x, d.targets().to_vec(), d.n_features())
    };
    let (train, test) = (scaled(&train_raw)?, scaled(&test_raw)?);

    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(LinearConfig::new(WIDTHS[0], WIDTHS[1]).init(&mut rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(WIDTHS[1], WIDTHS[2]).init(&mut rng)?);
    let (lr, epochs) = (3e-3, 60);
    let mut opt = AdamConfig::new(lr).build()?;
    let mut cfg = TrainerConfig {
        epochs,
        batch_size: 32,
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(lr, 1e-5, epochs)?)),
        progress: Progress::Quiet,
        ..Default::default()
    };
    fit(&mut cfg, &mut model, &mut opt, Arc::new(train), Some(&test))?;
    let (_, acc) = evaluate(&model, &test, &[], 256)?;

    // Desktop predictions through the library's inference path.
    let x = dl_core::Tensor::from_vec(test.features().to_vec(), &[test.n_samples(), 64])?;
    let logits = predict(&model, &x)?;
    let preds: Vec<u8> = logits.data().chunks_exact(WIDTHS[2]).map(argmax).collect();
    let correct = preds
        .iter()
        .zip(test.targets())
        .filter(|(&p, &y)| p as usize == y)
        .count();

    checkpoint::save(&model, out_dir.join("digits_mlp.safetensors"))?;
    let bytes =
        |d: &Dataset<f32, usize>| -> Vec<u8> { d.features().iter().map(|&v| v as u8).collect() };
    let labels =
        |d: &Dataset<f32, usize>| -> Vec<u8> { d.targets().iter().map(|&y| y as u8).collect() };
    std::fs::write(out_dir.join("test_x.bin"), bytes(&test_raw))?;
    std::fs::write(out_dir.join("test_y.bin"), labels(&test_raw))?;
    std::fs::write(out_dir.join("test_pred.bin"), &preds)?;

    let mut per_class = [0usize; 10];
    let mut pick = Vec::new();
    for (i, &y) in train_raw.targets().iter().enumerate() {
        if per_class[y] < TRAIN_PER_CLASS {
            per_class[y] += 1;
            pick.push(i);
        }
    }
    let subset = train_raw.subset(&pick)?;
    std::fs::write(out_dir.join("train_x.bin"), bytes(&subset))?;
    std::fs::write(out_dir.join("train_y.bin"), labels(&subset))?;

    println!(
        "digits MLP {WIDTHS:?}: test accuracy {:.2}% ({correct}/{} by argmax; evaluate: {:.2}%); \
         wrote {} test and {} training samples to {}",
        100.0 * correct as f64 / test.n_samples() as f64,
        test.n_samples(),
        100.0 * acc,
        test.n_samples(),
        subset.n_samples(),
        out_dir.display()
    );
    Ok(())
}

/// Index of the largest logit (the first on ties, as the firmware does).
fn argmax(row: &[f32]) -> u8 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u8
}
