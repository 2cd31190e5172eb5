//! The digits the firmware classifies and trains on, and the desktop's answers, all
//! stored in flash (the `.samples` section, so size reports can leave them out).
//!
//! Written by `cargo run --release -p dl-optim --example digits_export` into
//! `model/`: raw bytes, one per pixel (0..=16, an 8x8 image row by row) or per label
//! (0..=9). The held-out set is the 30% test part of a stratified split (seed 0) of
//! the bundled digits; the desktop never trained on it.

use crate::engine::models::{TFLITE_SINE_CASES, TFLITE_SPEECH_CASES};

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Held-out test samples.
pub const N_TEST: usize = 544;
/// Training samples for on-device training (20 per class).
pub const N_TRAIN: usize = 200;

/// Pixel intensities run 0..=16; inputs are `pixel / 16` (exact in f32), as on the
/// desktop.
pub const PIXEL_SCALE: f32 = 1.0 / 16.0;

macro_rules! model_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("DL_MODEL_DIR_RESOLVED"), "/", $name))
    };
}

/// Held-out images, `N_TEST` rows of `PIXELS` bytes.
#[link_section = ".samples.test_x"]
pub static TEST_X: [u8; N_TEST * PIXELS] = *model_file!("test_x.bin");
/// Held-out labels.
#[link_section = ".samples.test_y"]
pub static TEST_Y: [u8; N_TEST] = *model_file!("test_y.bin");
/// What the desktop model predicted for each held-out image.
#[link_section = ".samples.test_pred"]
pub static DESKTOP_PRED: [u8; N_TEST] = *model_file!("test_pred.bin");
/// The host engine's int8 logits of the int8 digits MLP for each held-out image,
/// `N_TEST` rows of `CLASSES` bytes: the device must reproduce them exactly.
#[link_section = ".samples.mlp_int8_out"]
pub static MLP_INT8_OUT: [u8; N_TEST * CLASSES] = *model_file!("digits_mlp_int8_out.bin");
/// The desktop forest's prediction (class position) for each held-out digit.
#[link_section = ".samples.forest_pred"]
pub static FOREST_PRED: [u8; N_TEST] = *model_file!("digits_forest_pred.bin");

/// MNIST test images the CNN classifies on the device.
pub const N_MNIST: usize = 100;
/// Pixels of one MNIST image (28 x 28, one channel).
pub const MNIST_PIXELS: usize = 28 * 28;
/// The first `N_MNIST` images of the MNIST subset's test split, raw bytes 0..=255.
#[link_section = ".samples.mnist_x"]
pub static MNIST_X: [u8; N_MNIST * MNIST_PIXELS] = *model_file!("mnist_cnn_test_x.bin");
/// Their labels.
#[link_section = ".samples.mnist_y"]
pub static MNIST_Y: [u8; N_MNIST] = *model_file!("mnist_cnn_test_y.bin");
/// The host engine's int8 logits of the CNN for each of them (`N_MNIST` rows of
/// `CLASSES` bytes).
#[link_section = ".samples.cnn_int8_out"]
pub static CNN_INT8_OUT: [u8; N_MNIST * CLASSES] = *model_file!("mnist_cnn_int8_out.bin");
/// Training images for on-device training, `N_TRAIN` rows of `PIXELS` bytes.
#[link_section = ".samples.train_x"]
pub static TRAIN_X: [u8; N_TRAIN * PIXELS] = *model_file!("train_x.bin");
/// Training labels.
#[link_section = ".samples.train_y"]
pub static TRAIN_Y: [u8; N_TRAIN] = *model_file!("train_y.bin");

/// Image `i` of `images` (rows of [`PIXELS`] bytes) scaled into `out` (its first
/// [`PIXELS`] values).
pub fn scaled_image(images: &[u8], i: usize, out: &mut [f32]) {
    let row = &images[i * PIXELS..(i + 1) * PIXELS];
    for (o, &p) in out.iter_mut().zip(row) {
        *o = p as f32 * PIXEL_SCALE;
    }
}

/// Test cases of TensorFlow Lite Micro's example models, picked by build.rs from the
/// reference data committed in dl-deploy (`tests/reference/tflite/`): raw int8
/// inputs, case after case, and TFLM's int8 outputs for them.
macro_rules! tflite_cases {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $file))
    };
}

/// Bytes of one sine input (one int8 value) and of one output.
pub const SINE_IN: usize = 1;
/// See [`SINE_IN`].
pub const SINE_OUT: usize = 1;
/// The sine model's inputs: all 1,026 committed cases (every int8 value and more).
#[link_section = ".samples.sine_x"]
pub static SINE_X: [u8; TFLITE_SINE_CASES * SINE_IN] = *tflite_cases!("sine_x.bin");
/// TFLM's outputs for them.
#[link_section = ".samples.sine_y"]
pub static SINE_Y: [u8; TFLITE_SINE_CASES * SINE_OUT] = *tflite_cases!("sine_y.bin");

/// Bytes of one speech input (49 x 40 int8 filterbank features) and of one output
/// (four int8 class scores).
pub const SPEECH_IN: usize = 1960;
/// See [`SPEECH_IN`].
pub const SPEECH_OUT: usize = 4;
/// The speech model's inputs: every 64th committed case.
#[link_section = ".samples.speech_x"]
pub static SPEECH_X: [u8; TFLITE_SPEECH_CASES * SPEECH_IN] = *tflite_cases!("speech_x.bin");
/// TFLM's outputs for them.
#[link_section = ".samples.speech_y"]
pub static SPEECH_Y: [u8; TFLITE_SPEECH_CASES * SPEECH_OUT] = *tflite_cases!("speech_y.bin");
