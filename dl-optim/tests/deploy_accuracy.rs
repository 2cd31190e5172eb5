//! The committed microcontroller models (`dl-embedded-demo/model`) against their
//! checkpoints: int8 accuracy close to f32, the int8 blob exactly what quantizing the
//! checkpoint gives today, and the host engine's committed int8 outputs (which the
//! device must reproduce byte for byte) still what it computes. The tests that export
//! and calibrate are ignored unless asked for, and need a release build:
//! `cargo test --release -p dl-optim --test deploy_accuracy -- --include-ignored`
//! (which `cargo xtask test` runs). The MNIST CNN's also need `../shared/data/mnist5k`
//! (skipped with a message without it; `DL_REQUIRE_DATA=1` makes that a failure).
//!
//! Regenerate the files with `cargo run --release -p dl-optim --example
//! mnist_cnn_export` and `--example digits_export`.

#[path = "../examples/shared/mnist_cnn.rs"]
mod mnist_cnn;

use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_deploy::{encode, quantize, AlignedBlob, HeapArena, Model, QuantizeConfig};
use dl_layers::{checkpoint, export, predict, Activation, LinearConfig, Sequential};
use mnist_cnn::{CHECKPOINT, CLASSES, DEVICE_IMAGES, F32_BLOB, IMAGE, INT8_BLOB, INT8_OUT, TEST_X};
use std::path::PathBuf;

/// The most int8 accuracy may fall below f32, in percentage points.
const MAX_INT8_DROP: f64 = 0.5;
/// The CNN's budget on a Cortex-M0 with 16 KiB of RAM and 256 KiB of flash: the
/// int8 arena and the int8 blob.
const MAX_ARENA: usize = 8 * 1024;
const MAX_INT8_BLOB: usize = 20 * 1024;

fn model_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dl-embedded-demo/model"
    ))
}

/// A committed file, with a message naming how to make it when it is missing.
fn read(name: &str, example: &str) -> Vec<u8> {
    let path = model_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run --release -p dl-optim --example {example}`",
            path.display()
        )
    })
}

fn as_i8(bytes: &[u8]) -> Vec<i8> {
    bytes.iter().map(|&b| b as i8).collect()
}

/// The CNN with the committed weights and the MNIST subset, or `None` (skipped)
/// without the subset.
fn mnist_cnn_and_data() -> Option<(Sequential<f32>, dl_data::io::TrainTest)> {
    dl_data::io::data_dir_or_skip(mnist_cnn::MNIST5K).expect("DL_REQUIRE_DATA=1")?;
    let mut model = mnist_cnn::mnist_cnn(mnist_cnn::SEED).unwrap();
    checkpoint::load(&mut model, model_dir().join(CHECKPOINT)).unwrap();
    Some((model, mnist_cnn::load_mnist5k().unwrap()))
}

#[test]
#[ignore = "needs --release and ../shared/data/mnist5k"]
fn mnist_cnn_int8_accuracy_is_within_half_a_point_of_f32() {
    let Some((model, data)) = mnist_cnn_and_data() else {
        return;
    };
    let test = &data.test;
    let f32_pred =
        mnist_cnn::f32_predictions(&mnist_cnn::f32_logits(&model, &test.pixels).unwrap());
    let f32_acc = mnist_cnn::accuracy(&f32_pred, &test.labels);
    let deployed = mnist_cnn::deploy(&model, &data.train).unwrap();
    let int8_out = mnist_cnn::run_int8(&deployed.int8_blob, &test.pixels).unwrap();
    let int8_acc = mnist_cnn::accuracy(&mnist_cnn::int8_predictions(&int8_out), &test.labels);
    println!(
        "MNIST CNN on {} test images: f32 {f32_acc:.2}%, int8 {int8_acc:.2}%",
        test.len()
    );
    assert!(f32_acc >= 96.0, "f32 accuracy {f32_acc:.2}% below 96%");
    assert!(
        int8_acc >= f32_acc - MAX_INT8_DROP,
        "int8 accuracy {int8_acc:.2}% is more than {MAX_INT8_DROP} points below f32 {f32_acc:.2}%"
    );
}

#[test]
#[ignore = "needs --release and ../shared/data/mnist5k"]
fn mnist_cnn_committed_blobs_are_what_exporting_gives_and_fit_the_budget() {
    let Some((model, data)) = mnist_cnn_and_data() else {
        return;
    };
    let deployed = mnist_cnn::deploy(&model, &data.train).unwrap();
    for (name, fresh) in [
        (INT8_BLOB, &deployed.int8_blob),
        (F32_BLOB, &deployed.f32_blob),
    ] {
        let committed = read(name, "mnist_cnn_export");
        assert!(
            committed == *fresh,
            "{name} ({} B) differs from the blob made from {CHECKPOINT} ({} B)",
            committed.len(),
            fresh.len()
        );
    }
    let plan = &deployed.plan;
    println!(
        "MNIST CNN: {} parameters, int8 blob {} B, arena {} B (peak live {} B; f32 arena {} B)",
        deployed.params,
        deployed.int8_blob.len(),
        plan.arena_len,
        plan.peak_live,
        deployed.f32_arena
    );
    assert!(
        plan.arena_len <= MAX_ARENA,
        "arena {} B over {MAX_ARENA} B",
        plan.arena_len
    );
    assert!(
        deployed.int8_blob.len() <= MAX_INT8_BLOB,
        "int8 blob {} B over {MAX_INT8_BLOB} B",
        deployed.int8_blob.len()
    );
    // The committed images and labels are the first test images'.
    let (x, y) = (
        read(TEST_X, "mnist_cnn_export"),
        read("mnist_cnn_test_y.bin", "mnist_cnn_export"),
    );
    assert!(
        x == data.test.pixels[..DEVICE_IMAGES * IMAGE],
        "{TEST_X} is not the first {DEVICE_IMAGES} test images"
    );
    assert!(
        y == data.test.labels[..DEVICE_IMAGES],
        "mnist_cnn_test_y.bin is not their labels"
    );
}

/// Integer arithmetic only, so this runs in debug builds too.
#[test]
fn mnist_cnn_engine_reproduces_the_committed_int8_outputs() {
    let x = read(TEST_X, "mnist_cnn_export");
    let want = as_i8(&read(INT8_OUT, "mnist_cnn_export"));
    assert_eq!(x.len(), DEVICE_IMAGES * IMAGE);
    assert_eq!(want.len(), DEVICE_IMAGES * CLASSES);
    let got = mnist_cnn::run_int8(&read(INT8_BLOB, "mnist_cnn_export"), &x).unwrap();
    for (i, (g, w)) in got
        .chunks_exact(CLASSES)
        .zip(want.chunks_exact(CLASSES))
        .enumerate()
    {
        assert_eq!(g, w, "image {i}");
    }
}

/// The digits MLP of `examples/digits_export.rs`: 64-32-10, input `pixel / 16`.
mod digits {
    use super::*;

    pub const FEATURES: usize = 64;
    pub const PIXEL_MAX: f32 = 16.0;

    /// The committed checkpoint in its architecture.
    pub fn model() -> Sequential<f32> {
        let mut rng = dl_core::Rng::seed_from_u64(0);
        let mut model = Sequential::new()
            .push(LinearConfig::new(FEATURES, 32).init(&mut rng).unwrap())
            .push(Activation::Relu)
            .push(LinearConfig::new(32, CLASSES).init(&mut rng).unwrap());
        checkpoint::load(&mut model, model_dir().join("digits_mlp.safetensors")).unwrap();
        model
    }

    /// The calibration inputs of `digits_export`: the 70% training part of the
    /// stratified split (seed 0) of the bundled digits, pixels / 16.
    pub fn calibration() -> Vec<f32> {
        let all: Dataset<f32, usize> = dl_data::datasets::digits().unwrap();
        let split = SplitConfig {
            validation: 0.0,
            test: 0.3,
            shuffle_seed: Some(0),
        }
        .split_stratified(all.targets())
        .unwrap();
        let train = all.subset(&split.train).unwrap();
        train.features().iter().map(|v| v / PIXEL_MAX).collect()
    }

    /// The committed test inputs, scaled.
    pub fn test_x() -> Vec<f32> {
        read("test_x.bin", "digits_export")
            .iter()
            .map(|&p| f32::from(p) / PIXEL_MAX)
            .collect()
    }
}

#[test]
#[ignore = "needs --release"]
fn digits_mlp_int8_agrees_with_f32_and_the_committed_files() {
    let model = digits::model();
    let x = digits::test_x();
    let n = x.len() / digits::FEATURES;
    let f32_pred = read("test_pred.bin", "digits_export");
    assert_eq!(f32_pred.len(), n);
    let logits = predict(
        &model,
        &dl_core::Tensor::from_vec(x.clone(), &[n, digits::FEATURES]).unwrap(),
    )
    .unwrap();
    let pred: Vec<u8> = mnist_cnn::f32_predictions(logits.data())
        .iter()
        .map(|&p| p as u8)
        .collect();
    assert!(
        pred == f32_pred,
        "the checkpoint's predictions differ from test_pred.bin"
    );

    let graph = export::export(&model, &[1, digits::FEATURES]).unwrap();
    let int8 = quantize(&graph, &digits::calibration(), QuantizeConfig::default()).unwrap();
    let (blob, _) = encode(&int8).unwrap();
    assert!(
        blob == read("digits_mlp_int8.dlm", "digits_export"),
        "digits_mlp_int8.dlm differs from the blob quantized from digits_mlp.safetensors"
    );

    let aligned = AlignedBlob::new(&blob);
    let engine: Model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut arena = HeapArena::new(engine.arena_len());
    let mut out = vec![0i8; n * CLASSES];
    for (x, y) in x
        .chunks_exact(digits::FEATURES)
        .zip(out.chunks_exact_mut(CLASSES))
    {
        engine.run(arena.bytes(), x, y).unwrap();
    }
    assert!(
        out == as_i8(&read("digits_mlp_int8_out.bin", "digits_export")),
        "int8 outputs differ from digits_mlp_int8_out.bin"
    );
    let same = mnist_cnn::int8_predictions(&out)
        .iter()
        .zip(&f32_pred)
        .filter(|(&a, &b)| a == usize::from(b))
        .count();
    println!("digits MLP: int8 argmax equals the f32 prediction on {same}/{n}");
    // At most one disagreement (543 of the 544 test digits).
    assert!(
        same + 1 >= n,
        "int8 argmax equals f32 on only {same} of {n}"
    );
}
