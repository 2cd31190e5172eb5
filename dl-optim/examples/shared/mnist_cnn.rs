//! The small MNIST CNN deployed to a microcontroller, shared by
//! `examples/mnist_cnn_export.rs` (which trains and exports it) and the release-mode
//! test `tests/deploy_accuracy.rs` (which checks the committed files); both include
//! this file with `#[path]`, it is not public API.
//!
//! Layers (input `[n, 1, 28, 28]`, pixels / 255):
//! conv 3x3 1->8 (padding 1) - batch norm - ReLU - max-pool 2 -
//! conv 3x3 8->16 (padding 1) - batch norm - ReLU - max-pool 2 - flatten - linear 784->10.
//! The convolutions have no bias of their own: batch norm's shift is theirs once
//! export folds it in.

use dl_core::Rng;
use dl_data::io::ImageSet;
use dl_deploy::{encode, quantize, AlignedBlob, HeapArena, Model, Plan, QuantizeConfig};
use dl_layers::{
    export, Activation, BatchNorm, Conv2dConfig, Flatten, LinearConfig, Module, Pool2d, Sequential,
};

/// Pixels per image (28 x 28, one channel: NCHW and NHWC are the same bytes).
pub const IMAGE: usize = 28 * 28;
/// Classes (digits 0..=9).
pub const CLASSES: usize = 10;
/// The exported graph's input shape, PyTorch's `[n, c, h, w]`.
pub const INPUT_SHAPE: [usize; 4] = [1, 1, 28, 28];
/// Training images the int8 ranges are calibrated on: the first ones of the
/// training set.
pub const CALIBRATION_IMAGES: usize = 1000;
/// Test images whose int8 outputs are committed for the device to reproduce.
pub const DEVICE_IMAGES: usize = 100;
/// Seed of the weight initialization (the trainer's shuffles use seed 0).
pub const SEED: u64 = 0;
/// The model's file names in `dl-embedded-demo/model`.
pub const CHECKPOINT: &str = "mnist_cnn.safetensors";
/// See [`CHECKPOINT`].
pub const F32_BLOB: &str = "mnist_cnn_f32.dlm";
/// See [`CHECKPOINT`].
pub const INT8_BLOB: &str = "mnist_cnn_int8.dlm";
/// See [`CHECKPOINT`].
pub const INT8_OUT: &str = "mnist_cnn_int8_out.bin";
/// See [`CHECKPOINT`].
pub const TEST_X: &str = "mnist_cnn_test_x.bin";

/// The CNN, initialized from `seed`.
pub fn mnist_cnn(seed: u64) -> Result<Sequential<f32>, dl_layers::Error> {
    let mut rng = Rng::seed_from_u64(seed);
    Ok(Sequential::new()
        .push(
            Conv2dConfig::new(1, 8, 3)
                .padding(1)
                .bias(false)
                .init(&mut rng)?,
        )
        .push(BatchNorm::new(8)?)
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2)?)
        .push(
            Conv2dConfig::new(8, 16, 3)
                .padding(1)
                .bias(false)
                .init(&mut rng)?,
        )
        .push(BatchNorm::new(16)?)
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2)?)
        .push(Flatten)
        .push(LinearConfig::new(16 * 7 * 7, CLASSES).init(&mut rng)?))
}

/// Where the MNIST subset lives: `../shared/data/mnist5k` beside the repository.
pub const MNIST5K: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist5k");

/// The MNIST subset in [`MNIST5K`] (4,000 training, 1,000 test images).
pub fn load_mnist5k() -> Result<dl_data::io::TrainTest, dl_data::Error> {
    dl_data::io::mnist(MNIST5K)
}

/// The model's input for raw pixels: `p / 255` (dl-data's scaling, correctly rounded).
pub fn scaled(pixels: &[u8]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&p| (f64::from(p) / 255.0) as f32)
        .collect()
}

/// The deployment of a trained model: both blobs and the int8 blob's arena plan.
pub struct Deployed {
    /// The f32 graph as a blob.
    pub f32_blob: Vec<u8>,
    /// The int8 graph as a blob (f32 input, int8 logits).
    pub int8_blob: Vec<u8>,
    /// The int8 blob's arena plan.
    pub plan: Plan,
    /// Arena bytes the f32 blob needs.
    pub f32_arena: usize,
    /// Weights and biases.
    pub params: usize,
}

/// Exports `model`, quantizes it with ranges calibrated on the first
/// [`CALIBRATION_IMAGES`] of `train`, and encodes both graphs.
pub fn deploy(model: &dyn Module<f32>, train: &ImageSet) -> Result<Deployed, dl_deploy::Error> {
    let graph = export::export(model, &INPUT_SHAPE)?;
    let (f32_blob, f32_plan) = encode(&graph)?;
    let n = CALIBRATION_IMAGES.min(train.len());
    let calibration = scaled(&train.pixels[..n * IMAGE]);
    let int8 = quantize(&graph, &calibration, QuantizeConfig::default())?;
    let (int8_blob, plan) = encode(&int8)?;
    Ok(Deployed {
        f32_blob,
        int8_blob,
        plan,
        f32_arena: f32_plan.arena_len,
        params: graph.num_params(),
    })
}

/// The int8 logits of the engine running `blob` on every image of `pixels` (raw
/// bytes, [`IMAGE`] per image), [`CLASSES`] per image.
pub fn run_int8(blob: &[u8], pixels: &[u8]) -> Result<Vec<i8>, dl_deploy::Error> {
    let aligned = AlignedBlob::new(blob);
    let engine: Model = Model::from_bytes(aligned.bytes())?;
    let mut arena = HeapArena::new(engine.arena_len());
    let mut out = vec![0i8; pixels.len() / IMAGE * CLASSES];
    for (x, y) in pixels
        .chunks_exact(IMAGE)
        .zip(out.chunks_exact_mut(CLASSES))
    {
        engine.run(arena.bytes(), &scaled(x), y)?;
    }
    Ok(out)
}

/// The predicted class of each row of `CLASSES` int8 logits (first index on ties).
pub fn int8_predictions(logits: &[i8]) -> Vec<usize> {
    logits
        .chunks_exact(CLASSES)
        .map(dl_core::quant::argmax_s8)
        .collect()
}

/// The predicted class of each row of `CLASSES` f32 logits (first index on ties).
pub fn f32_predictions(logits: &[f32]) -> Vec<usize> {
    logits
        .chunks_exact(CLASSES)
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// The f32 model's logits on every image of `pixels`, through `dl_layers::predict`.
pub fn f32_logits(model: &dyn Module<f32>, pixels: &[u8]) -> Result<Vec<f32>, dl_layers::Error> {
    let n = pixels.len() / IMAGE;
    let x = dl_core::Tensor::from_vec(scaled(pixels), &[n, 1, 28, 28])?;
    Ok(dl_layers::predict(model, &x)?.data().to_vec())
}

/// Accuracy in percent of `predictions` against `labels`.
pub fn accuracy(predictions: &[usize], labels: &[u8]) -> f64 {
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(&p, &y)| p == usize::from(y))
        .count();
    100.0 * correct as f64 / labels.len() as f64
}
