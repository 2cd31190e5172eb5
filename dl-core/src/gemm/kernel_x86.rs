//! x86-64 micro-kernels: AVX-512F (`8 x 32` f32 / `8 x 16` f64 tiles: 16 of the 32
//! vector registers accumulate) and AVX2+FMA (`6 x 16` f32 / `6 x 8` f64: 12 of 16).
//!
//! Each kernel is a zero-sized token type that only `detect` can build, after checking
//! the CPU (`is_x86_feature_detected!` under std, the compile-time target features
//! without it). Holding a token is therefore the proof the intrinsics need, which keeps
//! every `unsafe` block down to one intrinsic call with its reason beside it.

use super::kernel::{micro_kernel, Kernel, Simd};
use super::pack::pack_panels;
use super::view::{MatMut, View};
use core::arch::x86_64::*;
use core::ops::Range;

#[cfg(feature = "std")]
macro_rules! has_feature {
    ($f:tt) => {
        std::is_x86_feature_detected!($f)
    };
}
#[cfg(not(feature = "std"))]
macro_rules! has_feature {
    ($f:tt) => {
        cfg!(target_feature = $f)
    };
}

macro_rules! x86_kernel {
    (
        $(#[$doc:meta])*
        $name:ident($t:ty, $v:ty, lanes $lanes:literal),
        features $features:literal = [$($feature:tt),+],
        tile $mr:literal x $nv:literal vectors,
        blocks (kc $kc:literal, nc $nc:literal),
        entry $entry:ident,
        ops($zero:ident, $splat:ident, $load:ident, $store:ident, $fma:ident, $mul:ident, $add:ident)
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub(in crate::gemm) struct $name(());

        impl Simd for $name {
            type T = $t;
            type V = $v;
            const LANES: usize = $lanes;

            #[inline(always)]
            fn zero(self) -> $v {
                // SAFETY: a token exists only once `detect` found the CPU features.
                unsafe { $zero() }
            }
            #[inline(always)]
            fn splat(self, x: $t) -> $v {
                // SAFETY: as in `zero`.
                unsafe { $splat(x) }
            }
            #[inline(always)]
            fn load(self, src: &[$t]) -> $v {
                let src = &src[..$lanes];
                // SAFETY: `src` holds exactly LANES elements (the slicing above checks
                // it); the load is unaligned; CPU features as in `zero`.
                unsafe { $load(src.as_ptr()) }
            }
            #[inline(always)]
            fn store(self, dst: &mut [$t], v: $v) {
                let dst = &mut dst[..$lanes];
                // SAFETY: `dst` holds exactly LANES elements and is a unique borrow;
                // the store is unaligned; CPU features as in `zero`.
                unsafe { $store(dst.as_mut_ptr(), v) }
            }
            #[inline(always)]
            fn mul_add(self, a: $v, b: $v, c: $v) -> $v {
                // SAFETY: as in `zero`.
                unsafe { $fma(a, b, c) }
            }
            #[inline(always)]
            fn mul(self, a: $v, b: $v) -> $v {
                // SAFETY: as in `zero`.
                unsafe { $mul(a, b) }
            }
            #[inline(always)]
            fn add(self, a: $v, b: $v) -> $v {
                // SAFETY: as in `zero`.
                unsafe { $add(a, b) }
            }
            #[inline(always)]
            fn prefetch(self, x: &$t) {
                // SAFETY: a prefetch is only a hint (it never faults), and SSE is part
                // of x86-64.
                unsafe { _mm_prefetch::<_MM_HINT_T0>((x as *const $t).cast::<i8>()) }
            }
        }

        /// The kernel compiled with the instruction set enabled, so that the
        /// always-inlined generic kernel and the intrinsics inline into one function.
        ///
        /// # Safety
        /// The CPU must support the features (a token proves it).
        #[target_feature(enable = $features)]
        unsafe fn $entry(s: $name, a: &[$t], b: &[$t], c: MatMut<'_, $t>, alpha: $t, beta: $t) {
            micro_kernel::<$name, $mr, $nv>(s, a, b, c, alpha, beta)
        }

        impl Kernel for $name {
            type T = $t;
            const MR: usize = $mr;
            const NR: usize = $nv * $lanes;
            const KC: usize = $kc;
            const NC: usize = $nc;

            fn detect() -> Option<Self> {
                if $(has_feature!($feature))&&+ {
                    Some(Self(()))
                } else {
                    None
                }
            }

            fn pack_a(dst: &mut [$t], a: View<'_, $t>, rows: Range<usize>, depth: Range<usize>) {
                pack_panels::<$t, $mr>(dst, a, rows, depth);
            }

            fn pack_b(dst: &mut [$t], b: View<'_, $t>, depth: Range<usize>, cols: Range<usize>) {
                pack_panels::<$t, { $nv * $lanes }>(dst, b.t(), cols, depth);
            }

            #[inline]
            fn run(self, a: &[$t], b: &[$t], c: MatMut<'_, $t>, alpha: $t, beta: $t) {
                // SAFETY: `self` proves the CPU features `$entry` is compiled for.
                unsafe { $entry(self, a, b, c, alpha, beta) }
            }
        }
    };
}

// Block sizes (Zen 4 here: 32 KiB L1d, 1 MiB L2 per core): a `KC x NR` B panel is
// 32 KiB of f32 and streams from L2, where the `KC x NC` block (512 KiB) stays; the
// `MR x KC` A panel (8 KiB) is reused from L1 across the whole block.

x86_kernel!(
    /// AVX-512F, f32: 8 x 32 tile.
    Avx512F32(f32, __m512, lanes 16),
    features "avx512f" = ["avx512f"],
    tile 8 x 2 vectors,
    blocks (kc 256, nc 512),
    entry avx512_f32,
    ops(_mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps,
        _mm512_fmadd_ps, _mm512_mul_ps, _mm512_add_ps)
);

x86_kernel!(
    /// AVX-512F, f64: 8 x 16 tile.
    Avx512F64(f64, __m512d, lanes 8),
    features "avx512f" = ["avx512f"],
    tile 8 x 2 vectors,
    blocks (kc 256, nc 256),
    entry avx512_f64,
    ops(_mm512_setzero_pd, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd,
        _mm512_fmadd_pd, _mm512_mul_pd, _mm512_add_pd)
);

x86_kernel!(
    /// AVX2 + FMA, f32: 6 x 16 tile.
    Avx2F32(f32, __m256, lanes 8),
    features "avx2,fma" = ["avx2", "fma"],
    tile 6 x 2 vectors,
    blocks (kc 256, nc 512),
    entry avx2_f32,
    ops(_mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps,
        _mm256_fmadd_ps, _mm256_mul_ps, _mm256_add_ps)
);

x86_kernel!(
    /// AVX2 + FMA, f64: 6 x 8 tile.
    Avx2F64(f64, __m256d, lanes 4),
    features "avx2,fma" = ["avx2", "fma"],
    tile 6 x 2 vectors,
    blocks (kc 256, nc 256),
    entry avx2_f64,
    ops(_mm256_setzero_pd, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd,
        _mm256_fmadd_pd, _mm256_mul_pd, _mm256_add_pd)
);
