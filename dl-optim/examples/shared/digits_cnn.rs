//! The digits CNN exported to TensorFlow Lite, shared by
//! `examples/digits_cnn_tflite.rs` (which trains it and writes the reference files)
//! and `tests/tflite_roundtrip.rs` (which checks them); both include this file with
//! `#[path]`, it is not public API.
//!
//! Layers (input `[n, 1, 8, 8]`, pixels / 16), chosen to reach most of the operators
//! the exporter writes: conv 3x3 1->8 (padding 1) - ReLU - depthwise conv 3x3 8->8
//! (padding 1) - ReLU6 - max-pool 2 - conv 1x1 8->16 - ReLU - average-pool 2 -
//! flatten - linear 64->10. In TensorFlow Lite: QUANTIZE, CONV_2D (SAME),
//! DEPTHWISE_CONV_2D (SAME), MAX_POOL_2D, CONV_2D (VALID), AVERAGE_POOL_2D, RESHAPE,
//! FULLY_CONNECTED.

use dl_core::Rng;
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_deploy::{encode, quantize, Graph, QuantizeConfig};
use dl_layers::{export, Activation, Conv2dConfig, Flatten, LinearConfig, Pool2d, Sequential};
use std::path::PathBuf;

/// Pixels per image.
pub const IMAGE: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// The exported graph's input shape, PyTorch's `[n, c, h, w]`.
pub const INPUT_SHAPE: [usize; 4] = [1, 1, 8, 8];
/// Pixel values run 0..=16; the model sees them divided by this.
pub const PIXEL_MAX: f32 = 16.0;
/// Seed of the weight initialization and of the trainer's shuffles.
pub const SEED: u64 = 0;
/// Training epochs and Adam's learning rate.
pub const EPOCHS: usize = 30;
/// See [`EPOCHS`].
pub const LR: f64 = 3e-3;

/// The reference files' directory.
pub fn ref_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dl-deploy/tests/reference/tflite/roundtrip"
    ))
}

/// File names in [`ref_dir`].
pub const CHECKPOINT: &str = "digits_cnn.safetensors";
/// See [`CHECKPOINT`].
pub const INT8_TFLITE: &str = "digits_cnn_int8.tflite";
/// See [`CHECKPOINT`].
pub const F32_TFLITE: &str = "digits_cnn_f32.tflite";
/// The int8 model without its QUANTIZE: int8 in and out, as a firmware feeds it.
pub const INT8_IO_TFLITE: &str = "digits_cnn_int8_io.tflite";
/// The test images quantized with the int8 model's input scale and zero point.
pub const INPUTS_INT8: &str = "inputs_int8.bin";
/// TensorFlow Lite Micro's outputs on [`INPUTS_INT8`], tflref1.
pub const INT8_IO_OUT: &str = "tflm_int8_io_out.bin";
/// The test images, f32 (the models' input), tflref1.
pub const INPUTS: &str = "inputs.bin";
/// TensorFlow Lite Micro's outputs on [`INPUTS`], tflref1.
pub const INT8_OUT: &str = "tflm_int8_out.bin";
/// See [`INT8_OUT`].
pub const F32_OUT: &str = "tflm_f32_out.bin";

/// The CNN, initialized from `seed`.
pub fn digits_cnn(seed: u64) -> Result<Sequential<f32>, dl_layers::Error> {
    let mut rng = Rng::seed_from_u64(seed);
    Ok(Sequential::new()
        .push(Conv2dConfig::new(1, 8, 3).padding(1).init(&mut rng)?)
        .push(Activation::Relu)
        .push(
            Conv2dConfig::new(8, 8, 3)
                .padding(1)
                .with_groups(8)
                .init(&mut rng)?,
        )
        .push(Activation::Relu6)
        .push(Pool2d::max(2, 2)?)
        .push(Conv2dConfig::new(8, 16, 1).init(&mut rng)?)
        .push(Activation::Relu)
        .push(Pool2d::avg(2, 2)?)
        .push(Flatten)
        .push(LinearConfig::new(16 * 2 * 2, CLASSES).init(&mut rng)?))
}

/// Images and labels.
pub type Digits = Dataset<f32, usize>;

/// The digits set split 70/30 (stratified, seed 0) and scaled to `[0, 1]`:
/// `(train, test)`.
pub fn digits() -> Result<(Digits, Digits), dl_data::Error> {
    let all: Dataset<f32, usize> = dl_data::datasets::digits()?;
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())?;
    let scaled = |idx: &[usize]| -> Result<Dataset<f32, usize>, dl_data::Error> {
        let d = all.subset(idx)?;
        let x = d.features().iter().map(|v| v / PIXEL_MAX).collect();
        Dataset::new(x, d.targets().to_vec(), d.n_features())
    };
    Ok((scaled(&split.train)?, scaled(&split.test)?))
}

/// The f32 graph of `model` and its int8 form, calibrated on `train` (f32 input
/// quantized by the first op, int8 logits), and the int8 graph's blob.
pub fn deploy(
    model: &Sequential<f32>,
    train: &Dataset<f32, usize>,
) -> Result<(Graph, Graph, Vec<u8>), dl_deploy::Error> {
    let graph = export::export(model, &INPUT_SHAPE)?;
    let int8 = quantize(&graph, train.features(), QuantizeConfig::default())?;
    let (blob, _) = encode(&int8)?;
    Ok((graph, int8, blob))
}

/// `(dtype, per-tensor shape, count, body)` of a "tflref1" tensor file
/// (`dl-deploy/tests/reference/tflite/README.md`).
pub fn read_tflref1(bytes: &[u8]) -> Option<(String, Vec<usize>, usize, &[u8])> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..nl]).ok()?;
    let mut it = header.split(' ');
    if it.next()? != "tflref1" {
        return None;
    }
    let mut field = |key: &str| -> Option<String> {
        let f = it.next()?;
        Some(f.strip_prefix(key)?.strip_prefix('=')?.to_string())
    };
    let dtype = field("dtype")?;
    let shape = field("shape")?
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|d| d.parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    let count = field("count")?.parse().ok()?;
    Some((dtype, shape, count, &bytes[nl + 1..]))
}

/// `values` (count tensors of `shape`, f32) as a tflref1 file.
pub fn write_tflref1_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let per: usize = shape.iter().product();
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut out = format!(
        "tflref1 dtype=float32 shape={} count={}\n",
        shape.join(","),
        values.len() / per
    )
    .into_bytes();
    out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    out
}

/// The int8 graph `q` (from `quantize`) with its first op, the input's QUANTIZE,
/// removed: its input is the int8 tensor that op wrote.
pub fn int8_io(q: &Graph) -> Graph {
    let mut g = q.clone();
    let Some(dl_deploy::Node::Quantize { x, y }) = g.nodes.first().cloned() else {
        panic!("quantize puts a QUANTIZE first");
    };
    g.nodes.remove(0);
    g.input = y;
    // quantize appends the f32 input last; nothing reads it any more.
    assert_eq!(x, g.tensors.len() - 1);
    g.tensors.pop();
    g
}

/// TensorFlow Lite's quantization of the input: `round(x / scale) + zero_point`,
/// rounding half away from zero, clamped to int8.
pub fn quantize_input(q: dl_deploy::QParams, x: &[f32]) -> Vec<i8> {
    x.iter()
        .map(|&v| ((v / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8)
        .collect()
}

/// `values` (count tensors of `shape`, int8) as a tflref1 file.
pub fn write_tflref1_i8(shape: &[usize], values: &[i8]) -> Vec<u8> {
    let per: usize = shape.iter().product();
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut out = format!(
        "tflref1 dtype=int8 shape={} count={}\n",
        shape.join(","),
        values.len() / per
    )
    .into_bytes();
    out.extend(values.iter().map(|&v| v as u8));
    out
}
