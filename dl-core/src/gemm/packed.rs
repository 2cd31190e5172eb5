//! A right-hand operand packed once and multiplied many times.
//!
//! A recurrent layer multiplies the same `W_hh^T` by a new state at every time step.
//! With the batch as `m` (tens of rows), packing B (`k x n`, hundreds by hundreds) is a
//! sizeable share of each small product, and it is the same panels every time.
//! [`PackedB`] keeps them: one `pack`, then any number of products on the calling
//! thread, each packing only its A. The loop order also suits short A: all of A's
//! rows for a depth block are packed first (they fit in L1/L2), then each B panel is
//! read once and used against every A panel while it is in L1.
//!
//! Every element of C is summed by the same micro-kernel over the same depth blocks
//! as [`super::gemm`], so the two give identical results.

use super::driver::{aligned, cast, cast_mut, depth_block};
use super::kernel::{Element, Kernel, Portable};
use super::view::{MatMut, View};
use super::{check_len, fallback_unchecked, scale_by_beta};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use alloc::vec::Vec;

const OP: &str = "gemm_packed";

/// Which micro-kernel the panels were laid out for (the layout depends on its tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
    /// Not an f32/f64 type: B is kept as the `k x n` row-major matrix and multiplied
    /// by the plain loop.
    Plain,
}

/// The right-hand operand `B` (`k x n`) of `C = alpha * op(A) B + beta * C`, packed
/// once into the micro-kernel's panel layout so that many products with different
/// `A` skip packing it (see the module doc).
///
/// ```
/// use dl_core::gemm::{gemm, PackedB};
/// // W is 3x2; multiply two different 2-row A by W^T (2x3) and compare with gemm.
/// let w = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut packed = PackedB::new();
/// packed.pack(true, 2, 3, &w).unwrap();
/// for a in [[1.0f32, 0.0, 0.0, 1.0], [0.5, -1.0, 2.0, 0.25]] {
///     let (mut c, mut want) = ([0.0f32; 6], [0.0f32; 6]);
///     packed.gemm(false, 2, 1.0, &a, 0.0, &mut c).unwrap();
///     gemm(false, true, 2, 3, 2, 1.0, &a, &w, 0.0, &mut want).unwrap();
///     assert_eq!(c, want);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct PackedB<T> {
    data: Vec<T>,
    k: usize,
    n: usize,
    layout: Layout,
}

impl<T> Default for PackedB<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PackedB<T> {
    /// An empty operand (`0 x 0`); [`PackedB::pack`] fills it.
    pub const fn new() -> Self {
        Self {
            data: Vec::new(),
            k: 0,
            n: 0,
            layout: Layout::Plain,
        }
    }
}

impl<T: Scalar> PackedB<T> {
    /// Depth `k` (rows of B) of the packed operand.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n` of the packed operand.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Packs `op(B)` (`k x n`), stored as `k x n` row-major, or as `n x k` when
    /// `trans_b`. Reuses this value's buffer, so packing again at the same size
    /// allocates nothing. Errors if `b` is not `k * n` long.
    pub fn pack(&mut self, trans_b: bool, k: usize, n: usize, b: &[T]) -> Result<()> {
        let len = k.checked_mul(n).ok_or(Error::Overflow { op: OP })?;
        check_len(OP, "b", len, b.len())?;
        let (rs, cs) = if trans_b { (1, k) } else { (n, 1) };
        self.k = k;
        self.n = n;
        self.layout = if let Some(b) = cast::<T, f32>(b) {
            pack_typed::<f32>(&mut self.data, View { data: b, rs, cs }, k, n)
        } else if let Some(b) = cast::<T, f64>(b) {
            pack_typed::<f64>(&mut self.data, View { data: b, rs, cs }, k, n)
        } else {
            self.data.clear();
            self.data.resize(len, T::ZERO);
            for i in 0..k {
                for j in 0..n {
                    self.data[i * n + j] = b[i * rs + j * cs];
                }
            }
            Layout::Plain
        };
        Ok(())
    }

    /// `C = alpha * op(A) B + beta * C` with the packed `B`, on the calling thread
    /// (callers that want threads split the rows of A and C themselves). `op(A)` is
    /// `m x k`, stored as `m x k` (or `k x m` when `trans_a`); `C` is `m x n`. As in
    /// [`super::gemm`], `beta == 0` overwrites C. Errors name `gemm_packed` and the
    /// buffer whose length does not match.
    pub fn gemm(
        &self,
        trans_a: bool,
        m: usize,
        alpha: T,
        a: &[T],
        beta: T,
        c: &mut [T],
    ) -> Result<()> {
        let (k, n) = (self.k, self.n);
        let overflow = Error::Overflow { op: OP };
        check_len(OP, "a", m.checked_mul(k).ok_or(overflow)?, a.len())?;
        check_len(OP, "c", m.checked_mul(n).ok_or(overflow)?, c.len())?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        if k == 0 || alpha == T::ZERO {
            scale_by_beta(c, beta);
            return Ok(());
        }
        if self.layout == Layout::Plain {
            fallback_unchecked(trans_a, false, m, n, k, alpha, a, &self.data, beta, c);
            return Ok(());
        }
        let (rs, cs) = if trans_a { (1, m) } else { (k, 1) };
        if let (Some(a), Some(b), Some(c)) = (
            cast::<T, f32>(a),
            cast::<T, f32>(&self.data),
            cast_mut::<T, f32>(c),
        ) {
            let ab = [alpha, beta];
            let s = cast::<T, f32>(&ab).unwrap_or(&[1.0, 0.0]);
            let a = View { data: a, rs, cs };
            gemm_typed::<f32>(self.layout, b, k, n, m, s[0], a, s[1], c);
        } else if let (Some(a), Some(b), Some(c)) = (
            cast::<T, f64>(a),
            cast::<T, f64>(&self.data),
            cast_mut::<T, f64>(c),
        ) {
            let ab = [alpha, beta];
            let s = cast::<T, f64>(&ab).unwrap_or(&[1.0, 0.0]);
            let a = View { data: a, rs, cs };
            gemm_typed::<f64>(self.layout, b, k, n, m, s[0], a, s[1], c);
        }
        Ok(())
    }
}

/// Packs with the best kernel this CPU runs and says which.
fn pack_typed<E: Element>(
    data: &mut Vec<impl Scalar>,
    b: View<'_, E>,
    k: usize,
    n: usize,
) -> Layout {
    #[cfg(target_arch = "x86_64")]
    {
        if E::Avx512::detect().is_some() {
            pack_with::<E::Avx512, _>(data, b, k, n);
            return Layout::Avx512;
        }
        if E::Avx2::detect().is_some() {
            pack_with::<E::Avx2, _>(data, b, k, n);
            return Layout::Avx2;
        }
    }
    pack_with::<Portable<E>, _>(data, b, k, n);
    Layout::Portable
}

/// The layout: for each depth block (as [`depth_block`] cuts `k`), all of B's columns
/// as consecutive `kc x NR` panels, so the block starting at depth `pc` starts at
/// `pc * n_pad` and its panel `q` holds columns `q * NR ..`.
fn pack_with<K: Kernel, S: Scalar>(data: &mut Vec<S>, b: View<'_, K::T>, k: usize, n: usize) {
    let n_pad = n.next_multiple_of(K::NR);
    data.clear();
    data.resize(k * n_pad, S::ZERO);
    let Some(dst) = cast_mut::<S, K::T>(data) else {
        return;
    };
    let kc_max = depth_block::<K>(k).max(1);
    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        K::pack_b(&mut dst[pc * n_pad..][..kc * n_pad], b, pc..pc + kc, 0..n);
    }
}

/// Dispatches to the kernel the panels were packed for.
#[allow(clippy::too_many_arguments)]
fn gemm_typed<E: Element>(
    layout: Layout,
    packed: &[E],
    k: usize,
    n: usize,
    m: usize,
    alpha: E,
    a: View<'_, E>,
    beta: E,
    c: &mut [E],
) {
    match layout {
        #[cfg(target_arch = "x86_64")]
        Layout::Avx512 => {
            // The CPU had the instructions when B was packed; features do not vanish.
            if let Some(kernel) = E::Avx512::detect() {
                with_a_buffer(|abuf| gemm_with(kernel, packed, k, n, m, alpha, a, beta, c, abuf));
            }
        }
        #[cfg(target_arch = "x86_64")]
        Layout::Avx2 => {
            if let Some(kernel) = E::Avx2::detect() {
                with_a_buffer(|abuf| gemm_with(kernel, packed, k, n, m, alpha, a, beta, c, abuf));
            }
        }
        Layout::Portable => {
            let kernel = Portable::<E>::new();
            with_a_buffer(|abuf| gemm_with(kernel, packed, k, n, m, alpha, a, beta, c, abuf));
        }
        Layout::Plain => {}
    }
}

/// This thread's A packing buffer under std (kept, so warm products allocate
/// nothing); a fresh one otherwise.
fn with_a_buffer<E: Element>(f: impl FnOnce(&mut Vec<E>)) {
    #[cfg(feature = "std")]
    E::with_buffers(|abuf, _| f(abuf));
    #[cfg(not(feature = "std"))]
    f(&mut Vec::new());
}

/// Rows of A packed per block: enough to reuse each B panel across several A panels
/// from L1, few enough that the packed rows stay in L2.
const MC: usize = 96;

/// The product on the calling thread: per depth block, per block of rows of A (packed
/// once), each B panel against every A panel.
#[allow(clippy::too_many_arguments)]
fn gemm_with<K: Kernel>(
    kernel: K,
    packed: &[K::T],
    k: usize,
    n: usize,
    m: usize,
    alpha: K::T,
    a: View<'_, K::T>,
    beta: K::T,
    c: &mut [K::T],
    abuf: &mut Vec<K::T>,
) {
    let kc_max = depth_block::<K>(k);
    let n_pad = n.next_multiple_of(K::NR);
    let mc_max = MC.next_multiple_of(K::MR);
    let mut c = MatMut::new(c, m, n);
    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        let beta = if pc == 0 { beta } else { K::T::ONE };
        let block = &packed[pc * n_pad..][..kc * n_pad];
        for ic in (0..m).step_by(mc_max) {
            let mc = mc_max.min(m - ic);
            let a_block = aligned(abuf, mc.next_multiple_of(K::MR) * kc);
            K::pack_a(a_block, a, ic..ic + mc, pc..pc + kc);
            let b_panels = block.chunks_exact(K::NR * kc);
            for (jr, b_panel) in (0..n).step_by(K::NR).zip(b_panels) {
                let nr = K::NR.min(n - jr);
                let a_panels = a_block.chunks_exact(K::MR * kc);
                for (ir, a_panel) in (ic..ic + mc).step_by(K::MR).zip(a_panels) {
                    let mr = K::MR.min(ic + mc - ir);
                    kernel.run(a_panel, b_panel, c.block(ir, jr, mr, nr), alpha, beta);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random<T: Scalar>(len: usize, rng: &mut Rng) -> Vec<T> {
        (0..len).map(|_| rng.uniform(-T::ONE, T::ONE)).collect()
    }

    /// Bit-identical to `gemm` on the calling thread, for every transpose mode, edge
    /// sizes across the tile and depth-block boundaries, and repacking at a new size.
    fn check<T: Scalar>() {
        let mut rng = Rng::seed_from_u64(5);
        let mut packed = PackedB::<T>::new();
        for (m, n, k) in [
            (32, 512, 128),
            (16, 128, 512),
            (7, 33, 300),
            (1, 5, 3),
            (130, 70, 257),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = random::<T>(m * k, &mut rng);
                let b = random::<T>(k * n, &mut rng);
                let c0 = random::<T>(m * n, &mut rng);
                packed.pack(tb, k, n, &b).unwrap();
                assert_eq!((packed.k(), packed.n()), (k, n));
                for (alpha, beta) in [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.5)] {
                    let (alpha, beta) = (T::from_f64_lossy(alpha), T::from_f64_lossy(beta));
                    let (mut got, mut want) = (c0.clone(), c0.clone());
                    packed.gemm(ta, m, alpha, &a, beta, &mut got).unwrap();
                    // One thread, so gemm runs the same kernel serially (m > 1).
                    crate::gemm::gemm(ta, tb, m, n, k, alpha, &a, &b, beta, &mut want).unwrap();
                    if m > 1 {
                        assert!(
                            got == want,
                            "m={m} n={n} k={k} ta={ta} tb={tb}: differs from gemm"
                        );
                    }
                    // Against the definition, for every shape.
                    for i in 0..m {
                        for j in 0..n {
                            let mut s = 0.0f64;
                            for p in 0..k {
                                let x = if ta { a[p * m + i] } else { a[i * k + p] };
                                let y = if tb { b[j * k + p] } else { b[p * n + j] };
                                s += x.to_f64_lossless() * y.to_f64_lossless();
                            }
                            let w = alpha.to_f64_lossless() * s
                                + beta.to_f64_lossless() * c0[i * n + j].to_f64_lossless();
                            let g = got[i * n + j].to_f64_lossless();
                            assert!(
                                (g - w).abs() <= 1e-5 * (k as f64 + 1.0),
                                "m={m} n={n} k={k}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_product_matches_gemm_f32() {
        check::<f32>();
    }

    #[test]
    fn packed_product_matches_gemm_f64() {
        check::<f64>();
    }

    #[test]
    fn wrong_lengths_are_named_errors() {
        let mut p = PackedB::<f32>::new();
        let e = p.pack(false, 2, 3, &[0.0; 5]).unwrap_err();
        assert!(matches!(
            e,
            Error::LengthMismatch {
                op: "gemm_packed",
                what: "b",
                expected: 6,
                actual: 5
            }
        ));
        p.pack(false, 2, 3, &[0.0; 6]).unwrap();
        let e = p
            .gemm(false, 2, 1.0, &[0.0; 3], 0.0, &mut [0.0; 6])
            .unwrap_err();
        assert!(matches!(e, Error::LengthMismatch { what: "a", .. }));
        let e = p
            .gemm(false, 2, 1.0, &[0.0; 4], 0.0, &mut [0.0; 5])
            .unwrap_err();
        assert!(matches!(e, Error::LengthMismatch { what: "c", .. }));
    }

    #[test]
    fn beta_zero_overwrites_nan() {
        let mut p = PackedB::<f32>::new();
        p.pack(false, 1, 2, &[1.0, 2.0]).unwrap();
        let mut c = [f32::NAN; 4];
        p.gemm(false, 2, 1.0, &[3.0, 4.0], 0.0, &mut c).unwrap();
        assert_eq!(c, [3.0, 6.0, 4.0, 8.0]);
    }
}
