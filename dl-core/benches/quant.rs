//! Criterion benches of the int8 kernels (`dl_core::quant`), on every kernel this
//! machine runs. Throughput is counted in multiply-accumulates, so criterion's
//! "elem/s" reads as MAC/s (`Gelem/s` = GMAC/s; one MAC is the f32 gemm benches' 2
//! flops).
//!
//! - `quant/dense/<kernel>/mlp_b{1,64}`: the MLP layer of the f32 benches, 784 -> 128,
//!   at batch 1 and 64 (including requantization of every output).
//! - `quant/conv3x3/<kernel>`: input `[1, 32, 32, 32]` NHWC, 32 filters 3x3, padding 1.
//!
//! Run: `cargo bench -p dl-core --bench quant -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dl_core::quant::{
    conv2d_s8_with, dense_s8_with, fold_input_offset, quantize_multiplier, ConvGeometry, Kernel,
    Requant,
};
use dl_core::Rng;
use std::hint::black_box;

fn bytes(len: usize, seed: u64) -> Vec<i8> {
    let mut rng = Rng::seed_from_u64(seed);
    (0..len).map(|_| rng.next_u32() as i8).collect()
}

fn kernels() -> impl Iterator<Item = Kernel> {
    Kernel::ALL.into_iter().filter(|k| k.is_available())
}

fn bench_dense(c: &mut Criterion) {
    let mut group = c.benchmark_group("quant/dense");
    group.sample_size(20);
    let (inf, outf) = (784, 128);
    let w = bytes(outf * inf, 1);
    let mut bias = vec![0; outf];
    fold_input_offset(&w, outf, inf, None, -3, &mut bias).unwrap();
    let (m, s) = quantize_multiplier(1.0 / 4096.0).unwrap();
    let (m, s) = ([m], [s as i8]);
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    for batch in [1usize, 64] {
        let x = bytes(batch * inf, 2);
        let mut y = vec![0i8; batch * outf];
        group.throughput(Throughput::Elements((batch * inf * outf) as u64));
        for k in kernels() {
            group.bench_function(
                BenchmarkId::new(format!("{k:?}"), format!("mlp_b{batch}")),
                |b| {
                    b.iter(|| {
                        dense_s8_with(k, black_box(&x), &w, &bias, &rq, batch, inf, outf, &mut y)
                            .unwrap()
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("quant/conv3x3");
    group.sample_size(10);
    let g = ConvGeometry::new(1, 32, 32, 32, 32, 3, 3, (1, 1), (1, 1), (1, 1), 1).unwrap();
    let x = bytes(g.input_len(), 3);
    let w = bytes(g.weight_len(), 4);
    let mut bias = vec![0; g.c_out];
    fold_input_offset(&w, g.c_out, g.weight_len() / g.c_out, None, 5, &mut bias).unwrap();
    let (m, s) = quantize_multiplier(1.0 / 8192.0).unwrap();
    let (m, s) = ([m], [s as i8]);
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    let mut scratch = vec![0i8; g.scratch_len()];
    let mut y = vec![0i8; g.output_len()];
    group.throughput(Throughput::Elements(
        (g.output_len() * g.weight_len() / g.c_out) as u64,
    ));
    for k in kernels() {
        group.bench_function(BenchmarkId::from_parameter(format!("{k:?}")), |b| {
            b.iter(|| {
                conv2d_s8_with(
                    k,
                    &g,
                    black_box(&x),
                    &w,
                    &bias,
                    5,
                    &rq,
                    &mut scratch,
                    &mut y,
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dense, bench_conv);
criterion_main!(benches);
