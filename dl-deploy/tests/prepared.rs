//! `Prepared::run` against `Program::run`, byte for byte: the committed int8 models
//! (batch 1, and re-exported from their checkpoints at batch 256) and random int8
//! graphs, on random inputs (extremes included), with the input read in place or
//! copied and the output written directly or copied.

#[path = "../../dl-optim/examples/shared/mnist_cnn.rs"]
#[allow(dead_code)]
mod mnist_cnn;

use dl_core::Rng;
use dl_deploy::op::Unary;
use dl_deploy::program::Op;
use dl_deploy::{
    encode, quantize, AlignedBlob, Error, Graph, HeapArena, Model, Prepared, Program,
    QuantizeConfig,
};
use dl_layers::{checkpoint, export, Activation, LinearConfig, Sequential};
use std::path::PathBuf;

fn model_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dl-embedded-demo/model"
    ))
}

/// Inputs in `[lo, hi)`, with a few extremes (zero, ties of the usual scales,
/// infinities, NaN) mixed in.
fn inputs(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let special = [
        0.0,
        0.5,
        -0.5,
        1.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1e30,
    ];
    (0..n)
        .map(|i| {
            if i % 29 == 7 {
                special[i / 29 % special.len()]
            } else {
                lo + (hi - lo) * (rng.next_u32() >> 8) as f32 / (1 << 24) as f32
            }
        })
        .collect()
}

/// Runs `blob` on `x` through `Program::run` and through `Prepared` (built from the
/// model and from the program), checks they agree, and returns the output.
fn check_blob(blob: &[u8], x: &[f32]) -> Vec<i8> {
    let blob = AlignedBlob::new(blob);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let ops: Vec<Op> = model.ops().collect::<Result<_, _>>().unwrap();
    let program: Program = Program {
        ops: &ops,
        arena_len: model.arena_len(),
        align: model.align(),
        input: model.input_io(),
        output: model.output_io(),
    };
    let mut arena = HeapArena::new(model.arena_len());
    let mut want = vec![0i8; model.output().numel()];
    program.run(arena.bytes(), x, &mut want).unwrap();
    for prepared in [
        Prepared::from_model(&model).unwrap(),
        Prepared::from_program(&program).unwrap(),
    ] {
        // A fresh arena and a used one: nothing may depend on what the arena held.
        for mut arena in [HeapArena::new(prepared.arena_len()), arena.clone()] {
            let mut got = vec![0i8; want.len()];
            prepared.run(arena.bytes(), x, &mut got).unwrap();
            assert_eq!(got, want);
        }
    }
    want
}

fn digits_mlp() -> Sequential<f32> {
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(LinearConfig::new(64, 32).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(32, 10).init(&mut rng).unwrap());
    checkpoint::load(&mut model, model_dir().join("digits_mlp.safetensors")).unwrap();
    model
}

fn cnn() -> Sequential<f32> {
    let mut model = mnist_cnn::mnist_cnn(mnist_cnn::SEED).unwrap();
    checkpoint::load(&mut model, model_dir().join(mnist_cnn::CHECKPOINT)).unwrap();
    model
}

#[test]
fn committed_models_at_batch_1_and_256() {
    let mut rng = Rng::seed_from_u64(5);
    for (blob, model, per) in [
        ("digits_mlp_int8.dlm", digits_mlp(), 64),
        ("mnist_cnn_int8.dlm", cnn(), mnist_cnn::IMAGE),
    ] {
        let committed = std::fs::read(model_dir().join(blob)).unwrap();
        let x = inputs(&mut rng, 256 * per, 0.0, 1.0);
        // Batch 1: the committed blob, input by input.
        let mut one = Vec::new();
        for row in x.chunks_exact(per) {
            one.extend(check_blob(&committed, row));
        }
        // Batch 256: the checkpoint exported at batch 256, calibrated on inputs in
        // the committed model's range; its rows equal the batch-1 runs only if the
        // calibration matched, so only the two engines are compared here.
        let mut shape = if per == 64 {
            vec![1, 64]
        } else {
            mnist_cnn::INPUT_SHAPE.to_vec()
        };
        shape[0] = 256;
        let graph = export::export(&model, &shape).unwrap();
        let calibration = inputs(&mut rng, 256 * per, 0.0, 1.0)
            .into_iter()
            .map(|v| {
                if v.is_finite() {
                    v.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect::<Vec<_>>();
        let q = quantize(&graph, &calibration, QuantizeConfig::default()).unwrap();
        let many = check_blob(&encode(&q).unwrap().0, &x);
        assert_eq!(many.len(), one.len());
    }
}

/// Random int8 multilayer perceptrons: widths that are and are not multiples of 16
/// and 4, batches that take the single-column kernel, the tiles and the threaded
/// split; some end in a softmax (the output copied, not written directly), some add
/// the input back (the input read twice, so copied into the arena).
#[test]
fn random_int8_graphs() {
    let mut rng = Rng::seed_from_u64(9);
    for case in 0..24 {
        let batch = [1, 2, 7, 256, 300][case % 5];
        let n_in = 1 + rng.next_u32() as usize % 90;
        let mut g = Graph::new(&[batch, n_in]).unwrap();
        let mut h = g.input;
        let mut width = n_in;
        for layer in 0..1 + case % 3 {
            let out = if case % 4 == 3 && layer == 0 {
                n_in
            } else {
                1 + rng.next_u32() as usize % 70
            };
            let w: Vec<f32> = inputs(&mut rng, out * width, -1.0, 1.0)
                .into_iter()
                .map(|v| {
                    if v.is_finite() {
                        v.clamp(-2.0, 2.0)
                    } else {
                        0.3
                    }
                })
                .collect();
            let b: Vec<f32> = (0..out).map(|i| i as f32 * 0.01 - 0.2).collect();
            h = g.dense(h, &w, Some(&b), out).unwrap();
            if case % 4 == 3 && layer == 0 {
                h = g.add(h, g.input).unwrap();
            }
            if case % 2 == 0 {
                h = g.unary(h, Unary::Relu).unwrap();
            }
            width = out;
        }
        if case % 5 == 1 {
            h = g.softmax(h).unwrap();
        }
        g.set_output(h).unwrap();
        let calibration = inputs(&mut rng, 2 * batch * n_in, -3.0, 3.0)
            .into_iter()
            .map(|v| {
                if v.is_finite() {
                    v.clamp(-3.0, 3.0)
                } else {
                    0.0
                }
            })
            .collect::<Vec<_>>();
        let q = quantize(&g, &calibration, QuantizeConfig::default()).unwrap();
        let x = inputs(&mut rng, batch * n_in, -4.0, 4.0);
        check_blob(&encode(&q).unwrap().0, &x);
    }
}

#[test]
fn bad_buffers_are_errors() {
    let committed = std::fs::read(model_dir().join("digits_mlp_int8.dlm")).unwrap();
    let blob = AlignedBlob::new(&committed);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let prepared = Prepared::from_model(&model).unwrap();
    let mut arena = HeapArena::new(prepared.arena_len());
    let mut y = [0i8; 10];
    let x = [0.5f32; 64];
    prepared.run(arena.bytes(), &x, &mut y).unwrap();
    let err = prepared.run(arena.bytes(), &x[..63], &mut y).unwrap_err();
    assert!(matches!(err, Error::Buffer { what: "input", .. }), "{err}");
    let err = prepared.run(arena.bytes(), &x, &mut [0i8; 9]).unwrap_err();
    assert!(matches!(err, Error::Buffer { what: "output", .. }), "{err}");
    let err = prepared
        .run(arena.bytes(), &x, &mut [0.0f32; 10])
        .unwrap_err();
    assert!(matches!(err, Error::Buffer { what: "output", .. }), "{err}");
    let mut small = HeapArena::new(prepared.arena_len() - 1);
    let err = prepared.run(small.bytes(), &x, &mut y).unwrap_err();
    assert!(matches!(err, Error::ArenaTooSmall { .. }), "{err}");
}
