//! Forward + backward of an MLP 784-128-64-10 (ReLU, softmax cross-entropy) at batch
//! 64 in f32, twice: through the autograd tape, and written directly with dl-core's
//! kernels into preallocated buffers. The ratio of the two is the tape's overhead.
//!
//! Run: `cargo bench -p dl-autograd --bench mlp`.

use criterion::{criterion_group, criterion_main, Criterion};
use dl_autograd::{Graph, Param, Tape};
use dl_core::elementwise::{self, Binary, Unary};
use dl_core::gemm::gemm;
use dl_core::reduce::sum_to_shape;
use dl_core::softmax::softmax_cross_entropy;
use dl_core::{init, Rng, Shape, Tensor};
use std::hint::black_box;

const BATCH: usize = 64;
const SIZES: [usize; 4] = [784, 128, 64, 10];

struct Data {
    x: Tensor<f32>,
    labels: Vec<usize>,
    weights: Vec<(Tensor<f32>, Tensor<f32>)>,
}

fn data() -> Data {
    let mut rng = Rng::seed_from_u64(42);
    let x = Tensor::rand_uniform(&[BATCH, SIZES[0]], 0.0, 1.0, &mut rng).unwrap();
    let labels = (0..BATCH).map(|_| rng.below(10)).collect();
    let weights = SIZES
        .windows(2)
        .map(|io| {
            let mut w = Tensor::zeros(&[io[0], io[1]]).unwrap();
            init::kaiming_uniform(w.data_mut(), io[0], init::leaky_relu_gain(0.0), &mut rng);
            (w, Tensor::zeros(&[io[1]]).unwrap())
        })
        .collect();
    Data { x, labels, weights }
}

/// One training step's forward + backward on the tape (params' grads zeroed first).
fn autograd_step(tape: Tape<f32>, params: &mut [Param<f32>], d: &Data) -> (Tape<f32>, f32) {
    for p in params.iter_mut() {
        p.zero_grad();
    }
    let mut g = Graph::from_tape(tape);
    let mut h = g.input_ref(&d.x);
    for (layer, pair) in params.chunks(2).enumerate() {
        let (w, b) = (g.param(&pair[0]), g.param(&pair[1]));
        let z = g.matmul(h, w).unwrap();
        let z = g.add(z, b).unwrap();
        h = if layer < 2 { g.relu(z).unwrap() } else { z };
    }
    let loss = g.cross_entropy(h, &d.labels).unwrap();
    g.backward(loss).unwrap();
    let l = g.value(loss).unwrap().data()[0];
    (g.into_tape(), l)
}

/// The same step with kernels only, into buffers allocated once.
struct Manual {
    t: Vec<Vec<f32>>,  // h W per layer
    z: Vec<Vec<f32>>,  // pre-activations (h W + b) per layer
    a: Vec<Vec<f32>>,  // activations per layer (a[0] unused: the input)
    dz: Vec<Vec<f32>>, // gradient w.r.t. each pre-activation
    da: Vec<Vec<f32>>, // gradient w.r.t. each hidden activation
    dw: Vec<Vec<f32>>,
    db: Vec<Vec<f32>>,
}

impl Manual {
    fn new() -> Self {
        let per_layer = |f: &dyn Fn(usize, usize) -> usize| -> Vec<Vec<f32>> {
            SIZES
                .windows(2)
                .map(|io| vec![0.0; f(io[0], io[1])])
                .collect()
        };
        Manual {
            t: per_layer(&|_, o| BATCH * o),
            z: per_layer(&|_, o| BATCH * o),
            a: per_layer(&|_, o| BATCH * o),
            dz: per_layer(&|_, o| BATCH * o),
            da: per_layer(&|_, o| BATCH * o),
            dw: per_layer(&|i, o| i * o),
            db: per_layer(&|_, o| o),
        }
    }

    fn step(&mut self, d: &Data) -> f32 {
        // Forward: z = h W + b, a = relu(z) for the hidden layers.
        for l in 0..3 {
            let (i, o) = (SIZES[l], SIZES[l + 1]);
            let (w, b) = &d.weights[l];
            let h: &[f32] = if l == 0 { d.x.data() } else { &self.a[l - 1] };
            gemm(
                false,
                false,
                BATCH,
                o,
                i,
                1.0,
                h,
                w.data(),
                0.0,
                &mut self.t[l],
            )
            .unwrap();
            let ts = Shape::from([BATCH, o]);
            elementwise::binary(
                Binary::Add,
                &self.t[l],
                &ts,
                b.data(),
                b.shape(),
                &mut self.z[l],
            )
            .unwrap();
            if l < 2 {
                elementwise::unary(Unary::Relu, &self.z[l], &mut self.a[l]).unwrap();
            }
        }
        let loss =
            softmax_cross_entropy(&self.z[2], BATCH, 10, &d.labels, Some(&mut self.dz[2])).unwrap();
        // Backward.
        for l in (0..3).rev() {
            let (i, o) = (SIZES[l], SIZES[l + 1]);
            if l < 2 {
                self.dz[l].fill(0.0);
                elementwise::unary_backward(
                    Unary::Relu,
                    &self.z[l],
                    &self.a[l],
                    &self.da[l],
                    &mut self.dz[l],
                )
                .unwrap();
            }
            let h: &[f32] = if l == 0 { d.x.data() } else { &self.a[l - 1] };
            gemm(
                true,
                false,
                i,
                o,
                BATCH,
                1.0,
                h,
                &self.dz[l],
                0.0,
                &mut self.dw[l],
            )
            .unwrap();
            sum_to_shape(
                &self.dz[l],
                &Shape::from([BATCH, o]),
                &Shape::from([o]),
                &mut self.db[l],
            )
            .unwrap();
            if l > 0 {
                let w = &d.weights[l].0;
                gemm(
                    false,
                    true,
                    BATCH,
                    i,
                    o,
                    1.0,
                    &self.dz[l],
                    w.data(),
                    0.0,
                    &mut self.da[l - 1],
                )
                .unwrap();
            }
        }
        loss
    }
}

fn bench(c: &mut Criterion) {
    let d = data();
    let mut params: Vec<Param<f32>> = d
        .weights
        .iter()
        .flat_map(|(w, b)| [Param::new(w.clone()), Param::new(b.clone())])
        .collect();
    let mut tape = Tape::new();
    // Both versions compute the same loss (a check that they do the same work).
    let (t, l1) = autograd_step(tape, &mut params, &d);
    tape = t;
    let mut manual = Manual::new();
    let l2 = manual.step(&d);
    assert!((l1 - l2).abs() < 1e-4, "{l1} vs {l2}");

    c.bench_function("autograd/mlp_784_128_64_10/b64", |b| {
        b.iter(|| {
            let (t, l) = autograd_step(std::mem::take(&mut tape), &mut params, &d);
            tape = t;
            black_box(l)
        })
    });
    c.bench_function("kernels/mlp_784_128_64_10/b64", |b| {
        b.iter(|| black_box(manual.step(&d)))
    });
}

criterion_group!(mlp, bench);
criterion_main!(mlp);
