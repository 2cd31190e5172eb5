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
//!   the shuffled training split), for the firmware's on-device training;
//! - `digits_mlp_f32.dlm`: the model as a dl-deploy blob in f32 (what the firmware
//!   runs from flash), lowered with `dl_layers::export`;
//! - `digits_mlp_int8.dlm`: the same model quantized to int8 (TensorFlow Lite's spec:
//!   per-channel symmetric weights, per-tensor activations calibrated on the training
//!   split), its input still f32 and its output the int8 logits;
//! - `digits_mlp_int8_out.bin`: the host's int8 logits for every test sample (`n * 10`
//!   bytes), which the device must reproduce byte for byte.

use dl_core::Rng;
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_deploy::{encode, quantize, AlignedBlob, HeapArena, Model, QuantizeConfig};
use dl_layers::{checkpoint, export, predict, Activation, LinearConfig, Sequential};
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
    let train = Arc::new(train);
    fit(
        &mut cfg,
        &mut model,
        &mut opt,
        Arc::clone(&train),
        Some(&test),
    )?;
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

    // Deployment: the f32 blob, the int8 blob calibrated on the training inputs, and
    // the host engine's int8 logits for every test sample.
    let graph = export::export(&model, &[1, WIDTHS[0]])?;
    let (f32_blob, _) = encode(&graph)?;
    let int8 = quantize(&graph, train.features(), QuantizeConfig::default())?;
    let (int8_blob, plan) = encode(&int8)?;
    let aligned = AlignedBlob::new(&int8_blob);
    let engine: Model = Model::from_bytes(aligned.bytes())?;
    let mut arena = HeapArena::new(plan.arena_len);
    let mut int8_out = vec![0i8; test.n_samples() * WIDTHS[2]];
    for (x, y) in test
        .features()
        .chunks_exact(WIDTHS[0])
        .zip(int8_out.chunks_exact_mut(WIDTHS[2]))
    {
        engine.run(arena.bytes(), x, y)?;
    }
    let same_argmax = int8_out
        .chunks_exact(WIDTHS[2])
        .zip(&preds)
        .filter(|(row, &p)| dl_core::quant::argmax_s8(row) == p as usize)
        .count();
    write_atomic(&out_dir.join("digits_mlp_f32.dlm"), &f32_blob)?;
    write_atomic(&out_dir.join("digits_mlp_int8.dlm"), &int8_blob)?;
    let out_bytes: Vec<u8> = int8_out.iter().map(|&v| v as u8).collect();
    write_atomic(&out_dir.join("digits_mlp_int8_out.bin"), &out_bytes)?;
    println!(
        "deployment blobs: f32 {} B, int8 {} B ({} parameters; arena {} B); int8 argmax equals f32 on {same_argmax}/{}",
        f32_blob.len(),
        int8_blob.len(),
        graph.num_params(),
        plan.arena_len,
        test.n_samples()
    );

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

/// Writes `bytes` to `path` through a temporary file renamed into place, so a
/// reader never sees half a file.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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
