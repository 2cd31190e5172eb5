//! Train a small CNN on the MNIST subset and export it for a Cortex-M: the f32
//! checkpoint, the model as an f32 and an int8 dl-deploy blob (TensorFlow Lite's
//! post-training quantization), and test images with the int8 outputs the device must
//! reproduce byte for byte.
//!
//! ```text
//! cargo run --release -p dl-optim --example mnist_cnn_export            # into dl-embedded-demo/model
//! cargo run --release -p dl-optim --example mnist_cnn_export -- out/dir
//! ```
//!
//! Data: `../shared/data/mnist5k` (4,000 training, 1,000 test 28x28 images), pixels
//! / 255. Model (`shared/mnist_cnn.rs`, shared with `tests/deploy_accuracy.rs`):
//! conv 3x3 1->8 - batch norm - ReLU - max-pool 2 - conv 3x3 8->16 - batch norm -
//! ReLU - max-pool 2 - linear 784->10, padding 1; export folds batch norm into the
//! convolutions and ReLU into their outputs. Training: the 4,000 images and their 8
//! shifts by one pixel (up, down, left, right and diagonally; 36,000 images), Adam
//! (lr 3e-3, cosine decay to 1e-5), batch 32, 4 epochs, seed 0; deterministic, so a
//! second run writes the same bytes. Quantization: per-channel symmetric int8 weights, per-tensor int8
//! activations calibrated on the first 1,000 training images; the int8 model takes
//! the f32 image (its first op quantizes it) and returns the int8 logits.
//!
//! Files written (atomically), all starting `mnist_cnn`:
//! - `mnist_cnn.safetensors`: the f32 checkpoint (`dl_layers::checkpoint`, with batch
//!   norm's running statistics);
//! - `mnist_cnn_f32.dlm`, `mnist_cnn_int8.dlm`: the blobs (`dl_deploy::encode`);
//! - `mnist_cnn_test_x.bin`: the first 100 test images, 784 raw bytes (0..=255) each,
//!   row by row; `mnist_cnn_test_y.bin`: their labels, one byte each;
//! - `mnist_cnn_int8_out.bin`: the host engine's int8 logits for those 100 images,
//!   10 bytes each.

#[path = "shared/mnist_cnn.rs"]
mod mnist_cnn;

use dl_data::io::ImageSet;
use dl_layers::checkpoint;
use dl_optim::trainer::{fit, LrPolicy, Progress, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay};
use mnist_cnn::{CHECKPOINT, CLASSES, DEVICE_IMAGES, F32_BLOB, IMAGE, INT8_BLOB, INT8_OUT, TEST_X};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const LR: f64 = 3e-3;
const EPOCHS: usize = 4;
const BATCH: usize = 32;
/// The one-pixel shifts `(dy, dx)` added to the training set.
const SHIFTS: [(isize, isize); 8] = [
    (-1, 0),
    (1, 0),
    (0, -1),
    (0, 1),
    (-1, -1),
    (-1, 1),
    (1, -1),
    (1, 1),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out_dir = match args.as_slice() {
        [] => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dl-embedded-demo/model"
        )),
        [dir] if !dir.starts_with('-') => PathBuf::from(dir),
        _ => {
            eprintln!(
                "usage: cargo run --release -p dl-optim --example mnist_cnn_export [-- out_dir]"
            );
            eprintln!("  out_dir defaults to dl-embedded-demo/model");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&out_dir)?;

    let data = mnist_cnn::load_mnist5k()?;
    let (train, test) = (&data.train, &data.test);
    println!(
        "mnist5k: {} training, {} test images",
        train.len(),
        test.len()
    );

    let mut model = mnist_cnn::mnist_cnn(mnist_cnn::SEED)?;
    let mut opt = AdamConfig::new(LR).build()?;
    let mut cfg = TrainerConfig {
        epochs: EPOCHS,
        batch_size: BATCH,
        sample_dims: vec![1, 28, 28],
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(LR, 1e-5, EPOCHS)?)),
        progress: Progress::Auto,
        ..Default::default()
    };
    let start = Instant::now();
    let train_set = Arc::new(with_shifts(train).to_dataset::<f32>(true)?);
    fit(&mut cfg, &mut model, &mut opt, train_set, None)?;
    let train_secs = start.elapsed().as_secs_f64();

    let f32_pred = mnist_cnn::f32_predictions(&mnist_cnn::f32_logits(&model, &test.pixels)?);
    let f32_acc = mnist_cnn::accuracy(&f32_pred, &test.labels);

    let deployed = mnist_cnn::deploy(&model, train)?;
    let int8_out = mnist_cnn::run_int8(&deployed.int8_blob, &test.pixels)?;
    let int8_acc = mnist_cnn::accuracy(&mnist_cnn::int8_predictions(&int8_out), &test.labels);

    let device = DEVICE_IMAGES.min(test.len());
    checkpoint::save(&model, out_dir.join(CHECKPOINT))?; // atomic: a temporary file renamed
    write_atomic(&out_dir.join(F32_BLOB), &deployed.f32_blob)?;
    write_atomic(&out_dir.join(INT8_BLOB), &deployed.int8_blob)?;
    write_atomic(&out_dir.join(TEST_X), &test.pixels[..device * IMAGE])?;
    write_atomic(
        &out_dir.join("mnist_cnn_test_y.bin"),
        &test.labels[..device],
    )?;
    let out_bytes: Vec<u8> = int8_out[..device * CLASSES]
        .iter()
        .map(|&v| v as u8)
        .collect();
    write_atomic(&out_dir.join(INT8_OUT), &out_bytes)?;

    println!(
        "trained in {train_secs:.1}s ({EPOCHS} epochs of {} images)",
        train.len() * (1 + SHIFTS.len())
    );
    println!(
        "test accuracy on {} images: f32 {f32_acc:.2}%, int8 {int8_acc:.2}% ({:+.2} points)",
        test.len(),
        int8_acc - f32_acc
    );
    println!(
        "{} parameters; blobs: f32 {} B, int8 {} B; arena: int8 {} B (peak live {} B), f32 {} B",
        deployed.params,
        deployed.f32_blob.len(),
        deployed.int8_blob.len(),
        deployed.plan.arena_len,
        deployed.plan.peak_live,
        deployed.f32_arena
    );
    println!(
        "wrote {} and {device} test images to {}",
        CHECKPOINT,
        out_dir.display()
    );
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file (`path` + `.tmp`) renamed into
/// place, so a reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// `set` followed by a copy of it for each of [`SHIFTS`]: image `p` moved by
/// `(dy, dx)` pixels, `q[y][x] = p[y - dy][x - dx]`, with zeros where nothing moves in.
fn with_shifts(set: &ImageSet) -> ImageSet {
    let (h, w) = (set.height, set.width);
    let mut out = set.clone();
    for (dy, dx) in SHIFTS {
        for i in 0..set.len() {
            let image = set.image(i);
            for y in 0..h {
                for x in 0..w {
                    let from = (y.checked_add_signed(-dy), x.checked_add_signed(-dx));
                    out.pixels.push(match from {
                        (Some(sy), Some(sx)) if sy < h && sx < w => image[sy * w + sx],
                        _ => 0,
                    });
                }
            }
        }
        out.labels.extend_from_slice(&set.labels);
    }
    out
}
