//! Micro-kernels: the `MR x NR` register tile `C[0..MR, 0..NR] = alpha * A_panel B_panel
//! + beta * C` that does all of the arithmetic of the packed gemm.
//!
//! One generic kernel ([`micro_kernel`]) is written once against a tiny vector
//! interface ([`Simd`]) and instantiated per instruction set: AVX-512F and AVX2+FMA on
//! x86-64 (in `kernel_x86.rs`, chosen at run time) and a portable one built on plain
//! arrays that the compiler vectorizes as well as it can for the target.
//!
//! Packed operand layout (see `pack.rs`): an A panel stores, for each `p` in `0..kc`,
//! the `MR` values `A[0..MR, p]`; a B panel stores, for each `p`, the `NR` values
//! `B[p, 0..NR]`; both are zero-padded at the matrix edges. So step `p` of the kernel
//! loads `NR / LANES` vectors of B, broadcasts each of the `MR` values of A, and does
//! `MR * NR / LANES` fused multiply-adds into accumulators that never leave registers.

use super::pack::pack_panels;
use super::view::{MatMut, View};
use crate::scalar::Scalar;
use core::ops::Range;

/// The element types the packed gemm runs on (f32 and f64), with what each needs:
/// its kernels per instruction set and, under std, its thread-local packing buffers.
pub(super) trait Element: Scalar {
    /// The AVX-512F kernel for this type.
    #[cfg(target_arch = "x86_64")]
    type Avx512: Kernel<T = Self>;
    /// The AVX2+FMA kernel for this type.
    #[cfg(target_arch = "x86_64")]
    type Avx2: Kernel<T = Self>;

    /// Runs `f` on this thread's two packing buffers (for A and for B). They live as
    /// long as the thread, so once they have grown to a product's size no later
    /// product of that size allocates.
    #[cfg(feature = "std")]
    fn with_buffers<R>(
        f: impl FnOnce(&mut alloc::vec::Vec<Self>, &mut alloc::vec::Vec<Self>) -> R,
    ) -> R;

    /// Runs `f` on the packing buffers of part `part` of a threaded product. These
    /// belong to the part, not to a thread: whichever thread claims a part (see
    /// `pool.rs`), the buffers have already grown to that part's size the last time
    /// the product was done, so the product allocates nothing either. `part` must be
    /// below `pool::MAX_THREADS`.
    #[cfg(feature = "std")]
    fn with_part_buffers<R>(
        part: usize,
        f: impl FnOnce(&mut alloc::vec::Vec<Self>, &mut alloc::vec::Vec<Self>) -> R,
    ) -> R;
}

/// A micro-kernel with its blocking parameters. A value exists only where the
/// instructions it uses are available (x86 kernels are built by a `detect` function).
pub(super) trait Kernel: Copy + Send + Sync {
    /// Element type.
    type T: Element;
    /// Rows of C per register tile.
    const MR: usize;
    /// Columns of C per register tile.
    const NR: usize;
    /// Largest depth per packed block: a `KC x NR` B panel and a `MR x KC` A panel.
    const KC: usize;
    /// Columns of B packed at a time (a multiple of `NR`): the `KC x NC` block is the
    /// one kept in L2 while the A panels stream past it.
    const NC: usize;

    /// The kernel, if its instructions are available on this CPU.
    // Only the x86 kernels need asking; the portable one always runs.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    fn detect() -> Option<Self>;

    /// Packs rows `rows` x columns `depth` of A into `MR`-row panels
    /// ([`pack_panels`] with `W = MR`).
    fn pack_a(dst: &mut [Self::T], a: View<'_, Self::T>, rows: Range<usize>, depth: Range<usize>);

    /// Packs rows `depth` x columns `cols` of B into `NR`-column panels
    /// ([`pack_panels`] of B's transpose with `W = NR`).
    fn pack_b(dst: &mut [Self::T], b: View<'_, Self::T>, depth: Range<usize>, cols: Range<usize>);

    /// `C = alpha * A_panel B_panel + beta * C` on an `mr x nr` tile of C
    /// (`mr <= MR`, `nr <= NR`), where `a` is a packed `MR x kc` panel and `b` a packed
    /// `kc x NR` panel (same `kc`). `beta == 0` writes C without reading it.
    fn run(
        self,
        a: &[Self::T],
        b: &[Self::T],
        c: MatMut<'_, Self::T>,
        alpha: Self::T,
        beta: Self::T,
    );
}

/// The vector operations [`micro_kernel`] needs. A value of an implementing type is a
/// proof that its instructions can run (see `kernel_x86.rs`), which is what lets these
/// methods be safe.
pub(super) trait Simd: Copy {
    /// Element type.
    type T: Element;
    /// A vector of `LANES` elements.
    type V: Copy;
    /// Elements per vector.
    const LANES: usize;
    /// All lanes zero.
    fn zero(self) -> Self::V;
    /// All lanes `x`.
    fn splat(self, x: Self::T) -> Self::V;
    /// The first `LANES` elements of `src` (which must hold at least that many).
    fn load(self, src: &[Self::T]) -> Self::V;
    /// Writes the vector to the first `LANES` elements of `dst`.
    fn store(self, dst: &mut [Self::T], v: Self::V);
    /// `a * b + c`, fused where the instruction set has it.
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a * b`, rounded.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a + b`, rounded.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// Hints that the cache line holding `x` will be needed soon.
    fn prefetch(self, _x: &Self::T) {}
}

/// Largest `MR * NR` of any kernel: the size of the spill tile for edge tiles.
const MAX_TILE: usize = 512;

/// The micro-kernel for an `MR x (NV * LANES)` tile (see [`Kernel::run`]).
///
/// Every element of C gets one accumulator, summed over `p` in order, then
/// `alpha * acc + beta * c` with a separate multiply and add in both the vector store
/// (full tiles) and the scalar one (edge tiles). So an element's value does not depend
/// on where the tile boundaries fall, and with them on how work is split over threads.
#[inline(always)]
pub(super) fn micro_kernel<S: Simd, const MR: usize, const NV: usize>(
    s: S,
    a: &[S::T],
    b: &[S::T],
    mut c: MatMut<'_, S::T>,
    alpha: S::T,
    beta: S::T,
) {
    let (mr, nr) = (c.rows(), c.cols());
    let lanes = S::LANES;
    let nr_full = NV * lanes;
    debug_assert!(MR * nr_full <= MAX_TILE && mr <= MR && nr <= nr_full);
    debug_assert_eq!(a.len() / MR, b.len() / nr_full);
    // The tile of C is read or written only after the whole depth loop; start
    // fetching its lines now (C rows are far apart, often a whole page).
    for i in 0..mr {
        let row = c.row(i);
        for x in row.iter().step_by(64 / core::mem::size_of::<S::T>()) {
            s.prefetch(x);
        }
    }
    let mut acc = [[s.zero(); NV]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(nr_full)) {
        let bv: [S::V; NV] = core::array::from_fn(|v| s.load(&bp[v * lanes..]));
        for (acc_row, &aip) in acc.iter_mut().zip(ap) {
            let ai = s.splat(aip);
            for (acc_v, &b_v) in acc_row.iter_mut().zip(&bv) {
                *acc_v = s.mul_add(ai, b_v, *acc_v);
            }
        }
    }

    let zero_beta = beta == S::T::ZERO;
    if mr == MR && nr == nr_full {
        let (va, vb) = (s.splat(alpha), s.splat(beta));
        for (i, acc_row) in acc.iter().enumerate() {
            let row = c.row(i);
            for (dst, &acc_v) in row.chunks_exact_mut(lanes).zip(acc_row) {
                let scaled = s.mul(va, acc_v);
                let out = if zero_beta {
                    scaled
                } else {
                    s.add(scaled, s.mul(vb, s.load(dst)))
                };
                s.store(dst, out);
            }
        }
    } else {
        let mut tile = [S::T::ZERO; MAX_TILE];
        for (i, acc_row) in acc.iter().enumerate() {
            for (v, &acc_v) in acc_row.iter().enumerate() {
                s.store(&mut tile[i * nr_full + v * lanes..], acc_v);
            }
        }
        for i in 0..mr {
            let row = c.row(i);
            for (dst, &t) in row.iter_mut().zip(&tile[i * nr_full..]) {
                let scaled = alpha * t;
                *dst = if zero_beta {
                    scaled
                } else {
                    scaled + beta * *dst
                };
            }
        }
    }
}

/// Eight-lane arrays of plain arithmetic: the kernel for targets without a hand-picked
/// instruction set (the compiler vectorizes the lane loops where it can). It multiplies
/// and adds separately, since a fused multiply-add is a slow library call on targets
/// without one in hardware.
#[derive(Clone, Copy)]
pub(super) struct Portable<T>(core::marker::PhantomData<T>);

impl<T> Portable<T> {
    pub(super) fn new() -> Self {
        Self(core::marker::PhantomData)
    }
}

const PORTABLE_LANES: usize = 8;

impl<T: Element> Simd for Portable<T> {
    type T = T;
    type V = [T; PORTABLE_LANES];
    const LANES: usize = PORTABLE_LANES;
    #[inline(always)]
    fn zero(self) -> Self::V {
        [T::ZERO; PORTABLE_LANES]
    }
    #[inline(always)]
    fn splat(self, x: T) -> Self::V {
        [x; PORTABLE_LANES]
    }
    #[inline(always)]
    fn load(self, src: &[T]) -> Self::V {
        core::array::from_fn(|l| src[l])
    }
    #[inline(always)]
    fn store(self, dst: &mut [T], v: Self::V) {
        dst[..PORTABLE_LANES].copy_from_slice(&v);
    }
    #[inline(always)]
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        core::array::from_fn(|l| a[l] * b[l] + c[l])
    }
    #[inline(always)]
    fn mul(self, a: Self::V, b: Self::V) -> Self::V {
        core::array::from_fn(|l| a[l] * b[l])
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        core::array::from_fn(|l| a[l] + b[l])
    }
}

impl<T: Element> Kernel for Portable<T> {
    type T = T;
    const MR: usize = 4;
    const NR: usize = PORTABLE_LANES;
    const KC: usize = 256;
    const NC: usize = 512;

    fn detect() -> Option<Self> {
        Some(Self::new())
    }

    fn pack_a(dst: &mut [T], a: View<'_, T>, rows: Range<usize>, depth: Range<usize>) {
        pack_panels::<T, 4>(dst, a, rows, depth);
    }

    fn pack_b(dst: &mut [T], b: View<'_, T>, depth: Range<usize>, cols: Range<usize>) {
        pack_panels::<T, PORTABLE_LANES>(dst, b.t(), cols, depth);
    }

    #[inline]
    fn run(self, a: &[T], b: &[T], c: MatMut<'_, T>, alpha: T, beta: T) {
        micro_kernel::<Self, 4, 1>(self, a, b, c, alpha, beta);
    }
}

#[cfg(feature = "std")]
macro_rules! buffers {
    ($t:ty) => {
        fn with_buffers<R>(
            f: impl FnOnce(&mut alloc::vec::Vec<$t>, &mut alloc::vec::Vec<$t>) -> R,
        ) -> R {
            type Pair = (alloc::vec::Vec<$t>, alloc::vec::Vec<$t>);
            std::thread_local! {
                static BUFFERS: core::cell::RefCell<Pair> =
                    const { core::cell::RefCell::new((alloc::vec::Vec::new(), alloc::vec::Vec::new())) };
            }
            BUFFERS.with(|cell| {
                let (a, b) = &mut *cell.borrow_mut();
                f(a, b)
            })
        }

        fn with_part_buffers<R>(
            part: usize,
            f: impl FnOnce(&mut alloc::vec::Vec<$t>, &mut alloc::vec::Vec<$t>) -> R,
        ) -> R {
            use std::sync::{Mutex, PoisonError};
            type Pair = (alloc::vec::Vec<$t>, alloc::vec::Vec<$t>);
            static PARTS: [Mutex<Pair>; super::pool::MAX_THREADS] =
                [const { Mutex::new((alloc::vec::Vec::new(), alloc::vec::Vec::new())) };
                    super::pool::MAX_THREADS];
            // Only one product runs on the pool at a time, so this lock is normally
            // free; a caller that found the pool busy may wait here for a part.
            let mut pair = PARTS[part].lock().unwrap_or_else(PoisonError::into_inner);
            let (a, b) = &mut *pair;
            f(a, b)
        }
    };
}

impl Element for f32 {
    #[cfg(target_arch = "x86_64")]
    type Avx512 = super::kernel_x86::Avx512F32;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = super::kernel_x86::Avx2F32;
    #[cfg(feature = "std")]
    buffers!(f32);
}

impl Element for f64 {
    #[cfg(target_arch = "x86_64")]
    type Avx512 = super::kernel_x86::Avx512F64;
    #[cfg(target_arch = "x86_64")]
    type Avx2 = super::kernel_x86::Avx2F64;
    #[cfg(feature = "std")]
    buffers!(f64);
}
