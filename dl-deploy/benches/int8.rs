//! Int8 inference on the dl-deploy engine beside our own f32 inference
//! (`dl_layers::Module::infer`) on the same trained models, the ones
//! `dl-embedded-demo/model` commits: the digits MLP 64-32-10 (ReLU) and the MNIST CNN
//! (conv 3x3 1->8, max-pool, conv 3x3 8->16, max-pool, linear 784->10; batch norm and
//! ReLU folded into the convolutions by export), at batch 1 and batch 256.
//!
//! - `int8/{mlp,cnn}/b{1,256}`: the quantized blob (TensorFlow Lite's int8 spec), loaded
//!   once with `Model::from_bytes` and prepared once with `Prepared::from_model` (the
//!   desktop path: dense weights packed for the VNNI kernel, parameters checked once);
//!   each iteration is `Prepared::run`: the f32 input quantized in place, every int8 op
//!   (`PackedDense`, dl-core's `conv2d_s8` on the VNNI kernel where the CPU has it,
//!   pooling), the int8 logits written out.
//! - `int8_program/{mlp,cnn}/b{1,256}`: the same blob's ops decoded once into a
//!   `Program` (what a firmware compiles in); each iteration is `Program::run`: the f32
//!   input copied into the arena and quantized, every op's kernel (`dense_s8`,
//!   `conv2d_s8`, pooling) checking its parameters, the int8 logits copied out.
//! - `int8_model/{mlp,cnn}/b1`: the same through `Model::run`, which decodes and
//!   re-checks each op record on every call (the blob reader's per-call cost).
//! - `f32/{mlp,cnn}/b{1,256}`: `Module::infer` on the f32 checkpoint (output kept).
//!
//! The batch-1 blobs are rebuilt here from the checkpoints and must equal the committed
//! ones byte for byte; the batch-256 blobs are exported at batch 256 and quantized with
//! the same calibration inputs (padded with repeats of the first ones to whole batches,
//! which leaves every min/max range as it was), and must give each row the batch-1
//! blob's logits byte for byte. `xtask/peers/torch_int8_bench.py` times PyTorch's own
//! int8 (`torch.ao.quantization`, x86 backend) on the same shapes and weights.
//!
//! Run: `cargo bench -p dl-deploy --bench int8 -- --warm-up-time 1 --measurement-time 3`.

#[path = "../../dl-optim/examples/shared/mnist_cnn.rs"]
#[allow(dead_code)]
mod mnist_cnn;

use criterion::{criterion_group, criterion_main, Criterion};
use dl_core::{Rng, Tensor};
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_deploy::program::{Io, Op};
use dl_deploy::{
    encode, quantize, AlignedBlob, HeapArena, Model, Prepared, Program, QuantizeConfig,
};
use dl_layers::{checkpoint, export, Activation, LinearConfig, Module, Sequential};
use std::hint::black_box;
use std::path::PathBuf;

const BATCHES: [usize; 2] = [1, 256];
/// The digits MLP's layer widths and pixel scale (`dl-optim/examples/digits_export.rs`).
const MLP_WIDTHS: [usize; 3] = [64, 32, 10];
const PIXEL_MAX: f32 = 16.0;

fn model_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dl-embedded-demo/model"
    ))
}

/// One model: its f32 form, the calibration inputs of its committed int8 blob, and
/// inputs to time (at least 256 of them).
struct Workload {
    name: &'static str,
    model: Sequential<f32>,
    /// PyTorch's input shape at batch 1 (`[1, features]` or `[1, c, h, w]`).
    shape: Vec<usize>,
    calibration: Vec<f32>,
    inputs: Vec<f32>,
    committed_blob: &'static str,
}

impl Workload {
    fn input_len(&self) -> usize {
        self.shape[1..].iter().product()
    }

    fn shape_at(&self, batch: usize) -> Vec<usize> {
        let mut s = self.shape.clone();
        s[0] = batch;
        s
    }

    /// The int8 blob for `batch` inputs at a time, quantized as the committed one.
    fn int8_blob(&self, batch: usize) -> Vec<u8> {
        let graph = export::export(&self.model, &self.shape_at(batch)).expect("export");
        let per = self.input_len();
        let n = self.calibration.len() / per;
        // Whole batches: repeats of the first inputs change no min/max range.
        let extra = n.next_multiple_of(batch) - n;
        assert!(extra <= n, "calibration set smaller than a batch");
        let mut cal = self.calibration.clone();
        cal.extend_from_slice(&self.calibration[..extra * per]);
        let q = quantize(&graph, &cal, QuantizeConfig::default()).expect("quantize");
        encode(&q).expect("encode").0
    }
}

fn digits_mlp() -> Workload {
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(
            LinearConfig::new(MLP_WIDTHS[0], MLP_WIDTHS[1])
                .init(&mut rng)
                .unwrap(),
        )
        .push(Activation::Relu)
        .push(
            LinearConfig::new(MLP_WIDTHS[1], MLP_WIDTHS[2])
                .init(&mut rng)
                .unwrap(),
        );
    checkpoint::load(&mut model, model_dir().join("digits_mlp.safetensors")).unwrap();
    // The split and scaling of `digits_export`: calibration on the training part.
    let all: Dataset<f32, usize> = dl_data::datasets::digits().unwrap();
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())
    .unwrap();
    let scaled = |idx: &[usize]| -> Vec<f32> {
        let d = all.subset(idx).unwrap();
        d.features().iter().map(|v| v / PIXEL_MAX).collect()
    };
    Workload {
        name: "mlp",
        model,
        shape: vec![1, MLP_WIDTHS[0]],
        calibration: scaled(&split.train),
        inputs: scaled(&split.test),
        committed_blob: "digits_mlp_int8.dlm",
    }
}

fn mnist_cnn() -> Workload {
    let mut model = mnist_cnn::mnist_cnn(mnist_cnn::SEED).unwrap();
    checkpoint::load(&mut model, model_dir().join(mnist_cnn::CHECKPOINT)).unwrap();
    let data = mnist_cnn::load_mnist5k().expect("../shared/data/mnist5k");
    let n = mnist_cnn::CALIBRATION_IMAGES.min(data.train.len());
    Workload {
        name: "cnn",
        model,
        shape: mnist_cnn::INPUT_SHAPE.to_vec(),
        calibration: mnist_cnn::scaled(&data.train.pixels[..n * mnist_cnn::IMAGE]),
        inputs: mnist_cnn::scaled(&data.test.pixels),
        committed_blob: mnist_cnn::INT8_BLOB,
    }
}

/// A checked model with its ops decoded once (a [`Program`]'s parts), its prepared
/// form, and an arena.
struct Engine {
    model: Model<'static>,
    ops: Vec<Op<'static>>,
    prepared: Prepared<'static>,
    input: Io,
    output: Io,
    arena: HeapArena,
}

impl Engine {
    fn new(blob: &[u8]) -> Self {
        // Leaked: the engine borrows the blob for the whole (short-lived) bench process.
        let blob: &'static AlignedBlob = Box::leak(Box::new(AlignedBlob::new(blob)));
        let model: Model<'static> = Model::from_bytes(blob.bytes()).expect("blob");
        let ops = model.ops().collect::<Result<Vec<_>, _>>().expect("ops");
        Engine {
            model,
            ops,
            prepared: Prepared::from_model(&model).expect("prepare"),
            input: model.input_io(),
            output: model.output_io(),
            arena: HeapArena::new(model.arena_len()),
        }
    }

    /// `Prepared::run`: the desktop path.
    fn run(&mut self, x: &[f32], y: &mut [i8]) {
        self.prepared
            .run(self.arena.bytes(), x, y)
            .expect("prepared run");
    }

    /// `Program::run`: input copied in (f32, quantized by the first op), every op,
    /// int8 logits copied out.
    fn run_program(&mut self, x: &[f32], y: &mut [i8]) {
        let program: Program<'_> = Program {
            ops: &self.ops,
            arena_len: self.model.arena_len(),
            align: self.model.align(),
            input: self.input,
            output: self.output,
        };
        program.run(self.arena.bytes(), x, y).expect("run");
    }
}

fn bench_workload(c: &mut Criterion, w: &Workload) {
    let per = w.input_len();
    let classes = w.model_output_len();
    // Batch 1: the blob must be the committed one.
    let committed = std::fs::read(model_dir().join(w.committed_blob)).unwrap();
    let b1 = w.int8_blob(1);
    assert!(
        b1 == committed,
        "{}: quantizing the checkpoint no longer gives the committed {}",
        w.name,
        w.committed_blob
    );
    let mut one = Engine::new(&b1);
    let mut want = vec![0i8; 256 * classes];
    for (x, y) in w.inputs[..256 * per]
        .chunks_exact(per)
        .zip(want.chunks_exact_mut(classes))
    {
        one.run_program(x, y);
    }

    let mut engines: Vec<Engine> = BATCHES
        .iter()
        .map(|&batch| {
            let mut engine = if batch == 1 {
                Engine::new(&b1)
            } else {
                Engine::new(&w.int8_blob(batch))
            };
            let x = &w.inputs[..batch * per];
            let (mut y, mut z) = (vec![0i8; batch * classes], vec![0i8; batch * classes]);
            engine.run(x, &mut y);
            engine.run_program(x, &mut z);
            assert!(
                y == want[..batch * classes] && z == y,
                "{}: the batch-{batch} blob disagrees with the batch-1 blob",
                w.name
            );
            engine
        })
        .collect();
    for (group, prepared) in [("int8", true), ("int8_program", false)] {
        let mut group = c.benchmark_group(group);
        for (engine, batch) in engines.iter_mut().zip(BATCHES) {
            let x = &w.inputs[..batch * per];
            let mut y = vec![0i8; batch * classes];
            group.bench_function(format!("{}/b{batch}", w.name), |b| {
                b.iter(|| {
                    if prepared {
                        engine.run(black_box(x), &mut y);
                    } else {
                        engine.run_program(black_box(x), &mut y);
                    }
                    y[0]
                })
            });
        }
        group.finish();
    }

    if std::env::var_os("DL_BENCH_OPS").is_some() {
        bench_ops(c, w, &b1, &want);
    }

    let mut group = c.benchmark_group("int8_model");
    let model = one.model;
    let mut y = vec![0i8; classes];
    group.bench_function(format!("{}/b1", w.name), |b| {
        b.iter(|| {
            model
                .run(one.arena.bytes(), black_box(&w.inputs[..per]), &mut y)
                .unwrap();
            y[0]
        })
    });
    group.finish();

    let mut group = c.benchmark_group("f32");
    for batch in BATCHES {
        let x = Tensor::from_vec(w.inputs[..batch * per].to_vec(), &w.shape_at(batch)).unwrap();
        let mut out = Tensor::empty();
        group.bench_function(format!("{}/b{batch}", w.name), |b| {
            b.iter(|| {
                w.model.infer(black_box(&x), &mut out).unwrap();
                out.data()[0]
            })
        });
    }
    group.finish();
}

/// `int8_ops/{model}/b{batch}/{index}_{kind}`: each op of the `int8/*` programs timed
/// alone (`Program::invoke` of a one-op program on an arena that holds the previous
/// ops' results), to see where the time goes. Only with `DL_BENCH_OPS` set.
fn bench_ops(c: &mut Criterion, w: &Workload, b1: &[u8], want: &[i8]) {
    let per = w.input_len();
    let mut group = c.benchmark_group("int8_ops");
    for batch in BATCHES {
        let mut engine = if batch == 1 {
            Engine::new(b1)
        } else {
            Engine::new(&w.int8_blob(batch))
        };
        let mut y = vec![0i8; batch * w.model_output_len()];
        engine.run(&w.inputs[..batch * per], &mut y);
        assert!(y == want[..y.len()]);
        for i in 0..engine.ops.len() {
            let program: Program<'_> = Program {
                ops: &engine.ops[i..i + 1],
                arena_len: engine.model.arena_len(),
                align: engine.model.align(),
                input: engine.input,
                output: engine.output,
            };
            let arena = engine.arena.bytes();
            let name = format!("{}/b{batch}/{i}_{:?}", w.name, engine.ops[i].kind());
            group.bench_function(name, |b| b.iter(|| program.invoke(arena).unwrap()));
        }
    }
    group.finish();
}

impl Workload {
    /// Logits per input.
    fn model_output_len(&self) -> usize {
        match self.name {
            "mlp" => MLP_WIDTHS[2],
            _ => mnist_cnn::CLASSES,
        }
    }
}

fn int8(c: &mut Criterion) {
    bench_workload(c, &digits_mlp());
    bench_workload(c, &mnist_cnn());
}

criterion_group!(benches, int8);
criterion_main!(benches);
