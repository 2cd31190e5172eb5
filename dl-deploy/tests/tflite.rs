//! Importing TensorFlow Lite models nobody on this project trained (TensorFlow Lite
//! Micro's "hello world" sine regressor and micro_speech keyword model, copied into
//! `tests/reference/tflite/models/` with their provenance) and running them on the
//! engine, against the
//! outputs TensorFlow Lite Micro gives (the published points MicroFlow's tests pin);
//! small int8 models of every imported op against TFLM's outputs
//! (`tests/reference/tflite_ops/`); then damaged files, which must give named errors,
//! never panics. (Unsupported operators, types and shapes: `src/tflite/tests.rs`.)

use dl_deploy::graph::Node;
use dl_deploy::{encode, tflite, AlignedBlob, Error, Graph, HeapArena, Model, Prepared, QParams};
use std::path::PathBuf;

fn model_bytes(name: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/tflite/models"
    ))
    .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn quant(g: &Graph, t: usize) -> QParams {
    g.tensors[t].quant.expect("an int8 tensor")
}

/// TensorFlow Lite's quantization of one input value.
fn quantize(q: QParams, x: f32) -> i8 {
    ((x / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8
}

fn dequantize(q: QParams, v: i8) -> f32 {
    q.scale * (v as i32 - q.zero_point) as f32
}

/// Imports `name`, runs it on the int8 `input` with [`Model::run`] and with
/// [`Prepared::run`] (which must agree byte for byte), and returns the dequantized
/// output.
fn run(name: &str, input: impl Fn(QParams, usize) -> Vec<i8>) -> (Graph, Vec<f32>) {
    let g = tflite::import(&model_bytes(name)).expect("the model imports");
    let (bytes, plan) = encode(&g).expect("the imported graph encodes");
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).expect("the blob loads");
    let x = input(quant(&g, g.input), model.input().numel());
    let mut y = vec![0i8; model.output().numel()];
    let mut arena = HeapArena::new(plan.arena_len);
    model
        .run(arena.bytes(), &x, &mut y)
        .expect("the model runs");
    let prepared = Prepared::from_model(&model).expect("the model prepares");
    let mut y2 = vec![0i8; y.len()];
    prepared
        .run(arena.bytes(), &x, &mut y2)
        .expect("prepared runs");
    assert_eq!(y, y2, "Prepared::run and Model::run disagree");
    let qy = quant(&g, g.output);
    let out = y.iter().map(|&v| dequantize(qy, v)).collect();
    (g, out)
}

#[test]
fn sine_at_one_half_matches_tflite_micro() {
    let (g, y) = run("sine.tflite", |q, n| vec![quantize(q, 0.5); n]);
    println!("sine(0.5) = {y:?}");
    // Three FULLY_CONNECTED layers (ReLU fused in the first two), int8 in and out.
    assert_eq!(g.nodes.len(), 3);
    assert!(g.nodes.iter().all(|n| matches!(n, Node::Dense { .. })));
    // The published value is the int8 output dequantized in f32 as here,
    // `scale * (q - zero_point)`, printed to f32's shortest round-trip digits: exact.
    assert_eq!(y, [0.413_483_44]);
}

#[test]
fn speech_on_constant_input_matches_tflite_micro() {
    let (g, y) = run("speech.tflite", |q, n| vec![quantize(q, 0.5); n]);
    println!("speech(0.5) = {y:?}");
    // RESHAPE is a view, so the ops are DEPTHWISE_CONV_2D, FULLY_CONNECTED, SOFTMAX.
    assert!(matches!(
        g.nodes.as_slice(),
        [
            Node::Conv2d { .. },
            Node::Dense { .. },
            Node::Softmax { .. }
        ]
    ));
    // Softmax outputs are multiples of 1/256: the published floats are exact.
    assert_eq!(y, [0.15625, 0.2734375, 0.2734375, 0.296875]);
}

/// Every prefix of both files is rejected as corrupt (naming a position in the
/// file: the field that points past the cut, or the root's target), and nothing
/// panics.
#[test]
fn truncated_files_are_corrupt() {
    for name in ["sine.tflite", "speech.tflite"] {
        let bytes = model_bytes(name);
        for len in 0..bytes.len() {
            match tflite::import(&bytes[..len]) {
                Err(Error::Corrupt { offset, .. }) => assert!(
                    offset < bytes.len(),
                    "{name} cut at {len}: offset {offset} outside the prefix"
                ),
                other => panic!("{name} cut at {len} bytes: {other:?}"),
            }
        }
    }
}

/// Each byte of both files flipped in turn (all 8 bits): the import either fails
/// with an error or gives a graph that encodes (or fails to) and runs (or fails to),
/// with no panic anywhere; prints how many flips the import rejected and how many
/// models ran.
#[test]
fn flipped_bytes_never_panic() {
    for name in ["sine.tflite", "speech.tflite"] {
        let bytes = model_bytes(name);
        let (mut rejected, mut ran) = (0, 0);
        for at in 0..bytes.len() {
            let mut b = bytes.clone();
            b[at] ^= 0xff;
            let Ok(g) = tflite::import(&b) else {
                rejected += 1;
                continue;
            };
            let Ok((blob, plan)) = encode(&g) else {
                continue;
            };
            let blob = AlignedBlob::new(&blob);
            let Ok::<Model, _>(model) = Model::from_bytes(blob.bytes()) else {
                continue;
            };
            let x = vec![0i8; model.input().numel()];
            let mut y = vec![0i8; model.output().numel()];
            let mut arena = HeapArena::new(plan.arena_len);
            if model.run(arena.bytes(), &x, &mut y).is_ok() {
                ran += 1;
            }
        }
        println!(
            "{name}: {} bytes flipped, {rejected} rejected at import, {ran} ran",
            bytes.len()
        );
        // Most bytes are weights, which any value is valid for; at least the
        // header's root offset and identifier must be caught.
        assert!(rejected >= 8, "{name}: only {rejected} flips rejected");
    }
}

/// Small int8 models written by the builder in `src/tflite/tests.rs` (LOGISTIC,
/// TANH, RELU, RELU6 on all 256 int8 values; CONV_2D and DEPTHWISE_CONV_2D with
/// SAME padding's odd split, FULLY_CONNECTED, both pools, MEAN, SOFTMAX, ADD), run
/// on the input `((i * 37 + 11) mod 256) - 128`, against TensorFlow Lite Micro's
/// outputs (`tests/reference/tflite_ops/make_reference.py`): equal, value for value
/// (TFLM's int8 arithmetic is integer and deterministic, and so is the engine's).
#[test]
fn small_int8_models_match_tflite_micro() {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/tflite_ops"
    ));
    let reference = std::fs::read_to_string(dir.join("tflm_outputs.txt")).expect("reference");
    let mut checked = 0;
    for line in reference.lines() {
        let (name, values) = line.split_once(": ").expect("NAME: values");
        let want: Vec<i8> = values
            .split(',')
            .map(|v| v.parse().expect("an int8"))
            .collect();
        let bytes = std::fs::read(dir.join(format!("{name}.tflite"))).expect("model");
        let g = tflite::import(&bytes).expect("the model imports");
        let (blob, plan) = encode(&g).expect("encodes");
        let blob = AlignedBlob::new(&blob);
        let model: Model = Model::from_bytes(blob.bytes()).expect("loads");
        let x: Vec<i8> = (0..model.input().numel())
            .map(|i| ((i * 37 + 11) % 256) as i32 - 128)
            .map(|v| v as i8)
            .collect();
        let mut y = vec![0i8; model.output().numel()];
        let mut arena = HeapArena::new(plan.arena_len);
        model.run(arena.bytes(), &x, &mut y).expect("runs");
        assert_eq!(y, want, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 15);
}
