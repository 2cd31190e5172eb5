//! Trains the digits CNN (`shared/digits_cnn.rs`) from a fixed seed, quantizes it,
//! and writes what `tests/tflite_roundtrip.rs` checks into
//! `dl-deploy/tests/reference/tflite/roundtrip/`: the checkpoint, the int8 and f32
//! models as `.tflite` (dl-deploy's exporter) and the test images; then
//! `regen.sh` there runs both models through TensorFlow Lite Micro.
//!
//! Run: `cargo run --release -p dl-optim --example digits_cnn_tflite`.

#[path = "shared/digits_cnn.rs"]
#[allow(dead_code)]
mod digits_cnn;

use digits_cnn::*;
use dl_deploy::tflite;
use dl_layers::checkpoint;
use dl_optim::trainer::{evaluate, fit, LrPolicy, Progress, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = ref_dir();
    std::fs::create_dir_all(&dir)?;
    let (train, test) = digits()?;
    let mut model = digits_cnn(SEED)?;
    let mut opt = AdamConfig::new(LR).build()?;
    let mut cfg = TrainerConfig {
        epochs: EPOCHS,
        batch_size: 32,
        seed: SEED,
        sample_dims: vec![1, 8, 8],
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(LR, 1e-5, EPOCHS)?)),
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
    let (_, acc) = evaluate(&model, &test, &[1, 8, 8], 256)?;
    println!(
        "digits CNN: test accuracy {:.2}% ({} images)",
        100.0 * acc,
        test.n_samples()
    );
    checkpoint::save(&model, dir.join(CHECKPOINT))?;
    let (graph, int8, _) = deploy(&model, &train)?;
    std::fs::write(dir.join(INT8_TFLITE), tflite::export(&int8)?)?;
    std::fs::write(dir.join(F32_TFLITE), tflite::export(&graph)?)?;
    let io = int8_io(&int8);
    std::fs::write(dir.join(INT8_IO_TFLITE), tflite::export(&io)?)?;
    let q = io.tensors[io.input].quant.ok_or("an int8 input")?;
    std::fs::write(
        dir.join(INPUTS_INT8),
        write_tflref1_i8(&[1, 8, 8, 1], &quantize_input(q, test.features())),
    )?;
    std::fs::write(
        dir.join(INPUTS),
        write_tflref1_f32(&[1, 8, 8, 1], test.features()),
    )?;
    println!("wrote {}; now run regen.sh there", dir.display());
    Ok(())
}
