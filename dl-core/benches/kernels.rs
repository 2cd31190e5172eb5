//! Criterion benches of the heavy kernels. Throughput is counted in floating-point
//! operations, so criterion's "elem/s" reads as FLOP/s (e.g. `Gelem/s` = GFLOP/s).
//!
//! - `gemm/f32/{64,256,1024}`: square sgemm through `dl_core::gemm::gemm` (2 n^3
//!   flops), and `gemm/f32/mlp_*`: an MLP layer at batch 64 (784 -> 128) forward and
//!   its two backward products; each next to `gemm/matrixmultiply_sgemm/*`, the same
//!   product through matrixmultiply, and `gemm/fallback_f32/256`, the allocation-free
//!   loop used without `alloc`. `gemm/f32/linear_wt_*`: a Linear layer's forward
//!   `x W^T` with W stored `[out, in]` = `[128, 784]`, at batch 64 and 256, where B is
//!   packed from its transpose. `benches/peak.rs` measures the FMA peak they compare to.
//! - `conv2d/f32/*`: input `[64, 32, 32, 32]`, weight `[64, 32, 3, 3]`, padding 1
//!   (2 N C_out OH OW C_in kh kw flops for each pass), serial and rayon-parallel.
//!
//! - `elementwise/f32/*`, `softmax/f32/*`, `reduce/f32/*`: the memory-bound kernels on
//!   1M elements or 1024 x 1024 (relu, tanh, sigmoid, exp; a broadcast add of a row;
//!   row softmax and fused softmax cross-entropy on 256 x 1000 logits; a column sum and
//!   a full sum), throughput counted in elements.
//!
//! Run: `cargo bench -p dl-core --bench kernels -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dl_core::conv::{
    conv2d, conv2d_backward_input, conv2d_backward_input_par, conv2d_backward_weight,
    conv2d_backward_weight_par, conv2d_par, Conv2dGeometry, Conv2dParams,
};
use dl_core::gemm::{gemm, gemm_fallback};
use dl_core::{Rng, Shape};
use std::hint::black_box;

fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.uniform(-1.0f32, 1.0)).collect()
}

/// Square and MLP-shaped products through our gemm, each next to the same product
/// through matrixmultiply (called directly, transposes as strides), in one group so
/// they run interleaved in the same session on the same (shared, noisy) machine.
fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(20);
    // (label, trans_a, trans_b, m, n, k): squares, then an MLP 784-128 layer at batch
    // 64: forward X W, and the backward passes dW = X^T dY and dX = dY W^T; then the
    // same layer's forward with the weight stored [out, in] (X W^T) at batch 64 and 256.
    let shapes: [(&str, bool, bool, usize, usize, usize); 8] = [
        ("64", false, false, 64, 64, 64),
        ("256", false, false, 256, 256, 256),
        ("1024", false, false, 1024, 1024, 1024),
        ("mlp_64x784x128", false, false, 64, 128, 784),
        ("mlp_dw_784x64x128", true, false, 784, 128, 64),
        ("mlp_dx_64x128x784", false, true, 64, 784, 128),
        ("linear_wt_64x784x128", false, true, 64, 128, 784),
        ("linear_wt_256x784x128", false, true, 256, 128, 784),
    ];
    for (label, ta, tb, m, n, k) in shapes {
        let (a, b) = (random(m * k, 1), random(k * n, 2));
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        group.bench_function(BenchmarkId::new("f32", label), |bench| {
            bench.iter(|| {
                gemm(
                    ta,
                    tb,
                    m,
                    n,
                    k,
                    1.0,
                    black_box(&a),
                    black_box(&b),
                    0.0,
                    &mut out,
                )
                .unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("matrixmultiply_sgemm", label), |bench| {
            let (rsa, csa) = if ta { (1, m) } else { (k, 1) };
            let (rsb, csb) = if tb { (1, k) } else { (n, 1) };
            bench.iter(|| {
                let (a, b) = (black_box(&a), black_box(&b));
                // SAFETY: a holds m * k and b k * n elements, addressed through the
                // strides of their (possibly transposed) row-major layouts; out holds
                // m * n elements with row stride n and does not alias a or b.
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rsa as isize,
                        csa as isize,
                        b.as_ptr(),
                        rsb as isize,
                        csb as isize,
                        0.0,
                        out.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            })
        });
        if label == "256" {
            group.bench_function(BenchmarkId::new("fallback_f32", label), |bench| {
                bench.iter(|| {
                    gemm_fallback(
                        ta,
                        tb,
                        m,
                        n,
                        k,
                        1.0,
                        black_box(&a),
                        black_box(&b),
                        0.0,
                        &mut out,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

fn bench_conv(c: &mut Criterion) {
    let g = Conv2dGeometry::new(
        Shape::from([64, 32, 32, 32]),
        Shape::from([64, 32, 3, 3]),
        Conv2dParams::default().with_padding(1, 1),
    )
    .unwrap();
    let flops = 2 * (g.n * g.c_out * g.out_h * g.out_w * g.c_in * g.kh * g.kw) as u64;
    let x = random(g.input_shape().numel(), 3);
    let w = random(g.weight_shape().numel(), 4);
    let bias = random(g.c_out, 5);
    let gy = random(g.output_shape().numel(), 6);
    let mut y = vec![0.0f32; g.output_shape().numel()];
    let mut gx = vec![0.0f32; x.len()];
    let mut gw = vec![0.0f32; w.len()];
    let mut gb = vec![0.0f32; g.c_out];
    let mut ws = vec![0.0f32; g.workspace_len()];

    let mut group = c.benchmark_group("conv2d");
    group.sample_size(10);
    group.throughput(Throughput::Elements(flops));
    group.bench_function("f32/forward", |bench| {
        bench.iter(|| conv2d(&g, black_box(&x), &w, Some(&bias), &mut y, &mut ws).unwrap())
    });
    group.bench_function("f32/forward_par", |bench| {
        bench.iter(|| conv2d_par(&g, black_box(&x), &w, Some(&bias), &mut y).unwrap())
    });
    group.bench_function("f32/backward_input", |bench| {
        bench.iter(|| conv2d_backward_input(&g, black_box(&gy), &w, &mut gx, &mut ws).unwrap())
    });
    group.bench_function("f32/backward_input_par", |bench| {
        bench.iter(|| conv2d_backward_input_par(&g, black_box(&gy), &w, &mut gx).unwrap())
    });
    group.bench_function("f32/backward_weight", |bench| {
        bench.iter(|| {
            conv2d_backward_weight(&g, black_box(&x), &gy, &mut gw, Some(&mut gb), &mut ws).unwrap()
        })
    });
    group.bench_function("f32/backward_weight_par", |bench| {
        bench.iter(|| {
            conv2d_backward_weight_par(&g, black_box(&x), &gy, &mut gw, Some(&mut gb)).unwrap()
        })
    });
    group.finish();
}

/// Elementwise ops, softmax and reductions: memory-bound kernels every training step
/// runs, with the same shapes as the PyTorch peer script's.
fn bench_memory_bound(c: &mut Criterion) {
    use dl_core::elementwise::{binary, unary, Binary, Unary};
    use dl_core::reduce::{reduce_axis, sum_all, Reduce};
    use dl_core::softmax::{softmax, softmax_cross_entropy};
    const N: usize = 1 << 20;
    let x = random(N, 7);
    let mut out = vec![0.0f32; N];
    let mut group = c.benchmark_group("elementwise");
    group.throughput(Throughput::Elements(N as u64));
    for (name, op) in [
        ("relu_1m", Unary::Relu),
        ("tanh_1m", Unary::Tanh),
        ("sigmoid_1m", Unary::Sigmoid),
        ("exp_1m", Unary::Exp),
    ] {
        group.bench_function(format!("f32/{name}"), |b| {
            b.iter(|| unary(op, black_box(&x), &mut out).unwrap())
        });
    }
    let (sa, sb) = (
        Shape::new(&[1024, 1024]).unwrap(),
        Shape::new(&[1024]).unwrap(),
    );
    let row = random(1024, 8);
    group.bench_function("f32/add_row_1024x1024", |b| {
        b.iter(|| binary(Binary::Add, black_box(&x), &sa, &row, &sb, &mut out).unwrap())
    });
    group.finish();

    let (rows, cols) = (256, 1000);
    let logits = random(rows * cols, 9);
    let targets: Vec<usize> = (0..rows).map(|r| (r * 7) % cols).collect();
    let mut probs = vec![0.0f32; rows * cols];
    let mut group = c.benchmark_group("softmax");
    group.throughput(Throughput::Elements((rows * cols) as u64));
    group.bench_function("f32/rows_256x1000", |b| {
        b.iter(|| softmax(black_box(&logits), rows, cols, &mut probs).unwrap())
    });
    group.bench_function("f32/cross_entropy_256x1000", |b| {
        b.iter(|| {
            softmax_cross_entropy(black_box(&logits), rows, cols, &targets, Some(&mut probs))
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("reduce");
    group.throughput(Throughput::Elements(N as u64));
    let mut col = vec![0.0f32; 1024];
    group.bench_function("f32/sum_axis0_1024x1024", |b| {
        b.iter(|| reduce_axis(Reduce::Sum, black_box(&x), &sa, 0, &mut col).unwrap())
    });
    group.bench_function("f32/sum_all_1m", |b| b.iter(|| sum_all(black_box(&x))));
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_conv, bench_memory_bound);
criterion_main!(benches);
