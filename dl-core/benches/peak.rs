//! The machine's peak f32 FMA throughput, to put gemm's GFLOP/s in proportion:
//! independent fused multiply-add chains in registers (AVX-512 when present, else
//! AVX2+FMA), one per thread, counted as 2 flops per lane per FMA.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// FMAs per call and lane: `ITERS` rounds of `CHAINS` independent chains.
const ITERS: usize = 100_000;
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
fn lanes() -> usize {
    if is_x86_feature_detected!("avx512f") {
        16
    } else {
        8
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_avx512(seed: f32, iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(seed); CHAINS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_ps(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for r in acc {
        s = _mm512_add_ps(s, r);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(seed: f32, iters: usize) -> f32 {
    use std::arch::x86_64::*;
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(seed); CHAINS];
    for _ in 0..iters {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let mut s = _mm256_setzero_ps();
    for r in acc {
        s = _mm256_add_ps(s, r);
    }
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

#[cfg(target_arch = "x86_64")]
fn fma_loop(seed: f32, iters: usize) -> f32 {
    // SAFETY: each path runs only after its CPU feature was detected at run time.
    unsafe {
        if is_x86_feature_detected!("avx512f") {
            fma_avx512(seed, iters)
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            fma_avx2(seed, iters)
        } else {
            seed
        }
    }
}

/// Threads to measure on together: `DL_NUM_THREADS` if set (as the library's kernels
/// read it, so the report compares like with like), else the machine's parallelism.
#[cfg(target_arch = "x86_64")]
fn threads() -> usize {
    std::env::var("DL_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(target_arch = "x86_64")]
fn bench(c: &mut Criterion) {
    let threads = threads();
    let mut group = c.benchmark_group("peak");
    let flops = |iters: usize| (2 * lanes() * CHAINS * iters) as u64;
    group.throughput(Throughput::Elements(flops(ITERS)));
    group.bench_function("fma_f32/1thread", |b| {
        b.iter(|| fma_loop(std::hint::black_box(1.0), ITERS))
    });
    if threads > 1 {
        // Ten times the work per thread, so that starting the threads (tens of
        // microseconds) does not count against the peak.
        let iters = 10 * ITERS;
        group.throughput(Throughput::Elements(flops(iters) * threads as u64));
        group.bench_function(format!("fma_f32/{threads}threads"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| s.spawn(move || fma_loop(std::hint::black_box(t as f32), iters)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or(0.0))
                        .sum::<f32>()
                })
            })
        });
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench(_c: &mut Criterion) {}

criterion_group!(benches, bench);
criterion_main!(benches);
