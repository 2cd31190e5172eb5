//! Matrix product, 2-D and batched 3-D, through dl-core's gemm (transposes passed as
//! flags, never copied).
//!
//! `C = A B`: `dA = dC B^T`, `dB = A^T dC`. A 2-D operand shared across a 3-D batch
//! gets the sum of the per-batch gradients.

use crate::error::{shape_mismatch, Result};
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::gemm::gemm;
use dl_core::{Scalar, Shape};

const OP: &str = "matmul";

/// The sizes of one product: `batch` products of `[m, k] x [k, n]`; `a_batched` /
/// `b_batched` say whether each operand has its own matrix per batch entry.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a_batched: bool,
    b_batched: bool,
}

impl Dims {
    fn new(sa: Shape, sb: Shape) -> Result<(Self, Shape)> {
        let mismatch = |why| shape_mismatch(OP, sa, sb, why);
        let (ab, m, k) = match *sa.dims() {
            [m, k] => (None, m, k),
            [b, m, k] => (Some(b), m, k),
            _ => return Err(mismatch("operands must be 2-D or 3-D (batched)")),
        };
        let (bb, k2, n) = match *sb.dims() {
            [k, n] => (None, k, n),
            [b, k, n] => (Some(b), k, n),
            _ => return Err(mismatch("operands must be 2-D or 3-D (batched)")),
        };
        if k != k2 {
            return Err(mismatch("inner dimensions differ"));
        }
        let batch = match (ab, bb) {
            (Some(x), Some(y)) if x != y => return Err(mismatch("batch sizes differ")),
            (Some(x), _) | (None, Some(x)) => Some(x),
            (None, None) => None,
        };
        let out = match batch {
            Some(bs) => Shape::new(&[bs, m, n])?,
            None => Shape::new(&[m, n])?,
        };
        let dims = Dims {
            batch: batch.unwrap_or(1),
            m,
            k,
            n,
            a_batched: ab.is_some(),
            b_batched: bb.is_some(),
        };
        Ok((dims, out))
    }
}

impl<T: Scalar> Graph<'_, T> {
    /// Matrix product: `[m, k] x [k, n] -> [m, n]`, or batched
    /// `[B, m, k] x [B, k, n] -> [B, m, n]`, where either operand may instead be 2-D
    /// and shared by every batch entry. Errors name `matmul` and both shapes.
    ///
    /// ```
    /// use dl_autograd::Graph;
    /// use dl_core::Tensor;
    /// let mut g = Graph::<f32>::new();
    /// let a = g.input(&Tensor::from_rows([[1.0, 2.0], [3.0, 4.0]]));
    /// let b = g.input(&Tensor::from_rows([[5.0, 6.0], [7.0, 8.0]]));
    /// let c = g.matmul(a, b).unwrap();
    /// assert_eq!(g.value(c).unwrap().data(), &[19.0, 22.0, 43.0, 50.0]);
    /// let bad = g.input(&Tensor::from_rows([[1.0, 2.0, 3.0]]));
    /// assert_eq!(
    ///     g.matmul(a, bad).unwrap_err().to_string(),
    ///     "matmul: shapes [2, 2] and [1, 3] are incompatible (inner dimensions differ)"
    /// );
    /// ```
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let sa = self.shape_of(a, OP)?;
        let sb = self.shape_of(b, OP)?;
        let (d, out_shape) = Dims::new(sa, sb)?;
        let mut node = self.begin(out_shape);
        let (av, bv) = (self.val(a).data(), self.val(b).data());
        let c = node.value.data_mut();
        if d.a_batched && !d.b_batched {
            // A shared B: one gemm over all B*m rows.
            gemm(
                false,
                false,
                d.batch * d.m,
                d.n,
                d.k,
                T::ONE,
                av,
                bv,
                T::ZERO,
                c,
            )?;
        } else {
            for i in 0..d.batch {
                gemm(
                    false,
                    false,
                    d.m,
                    d.n,
                    d.k,
                    T::ONE,
                    a_block(av, d, i),
                    b_block(bv, d, i),
                    T::ZERO,
                    &mut c[i * d.m * d.n..(i + 1) * d.m * d.n],
                )?;
            }
        }
        let needs = self.needs_grad(&[a, b]);
        Ok(self.finish(Op::MatMul { a, b }, node, needs))
    }
}

fn a_block<T>(a: &[T], d: Dims, i: usize) -> &[T] {
    let len = d.m * d.k;
    if d.a_batched {
        &a[i * len..(i + 1) * len]
    } else {
        a
    }
}

fn b_block<T>(b: &[T], d: Dims, i: usize) -> &[T] {
    let len = d.k * d.n;
    if d.b_batched {
        &b[i * len..(i + 1) * len]
    } else {
        b
    }
}

/// `dA += dC B^T`, `dB += A^T dC` (per batch entry; summed over the batch for a
/// shared operand). `x * x`-style reuse of one node goes through two passes.
pub(crate) fn matmul_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    a: Var,
    b: Var,
) -> Result<()> {
    let (av, bv) = (ctx.vals.get(a), ctx.vals.get(b));
    let (d, _) = Dims::new(*av.shape(), *bv.shape())?;
    let (av, bv, dc) = (av.data(), bv.data(), ctx.dy);
    let (mn, mk, kn) = (d.m * d.n, d.m * d.k, d.k * d.n);
    if let Some(ga) = grads.get(a) {
        let beta0 = ga.beta();
        let ga = ga.data;
        if d.batch == 0 {
            ga.fill(T::ZERO);
        } else if d.a_batched && !d.b_batched {
            gemm(
                false,
                true,
                d.batch * d.m,
                d.k,
                d.n,
                T::ONE,
                dc,
                bv,
                beta0,
                ga,
            )?;
        } else {
            for i in 0..d.batch {
                let dci = &dc[i * mn..(i + 1) * mn];
                let (gai, beta) = if d.a_batched {
                    (&mut ga[i * mk..(i + 1) * mk], beta0)
                } else {
                    // Shared A: the first batch entry sets (or adds to) it, the rest add.
                    (&mut ga[..], if i == 0 { beta0 } else { T::ONE })
                };
                gemm(
                    false,
                    true,
                    d.m,
                    d.k,
                    d.n,
                    T::ONE,
                    dci,
                    b_block(bv, d, i),
                    beta,
                    gai,
                )?;
            }
        }
    }
    if let Some(gb) = grads.get(b) {
        let beta0 = gb.beta();
        let gb = gb.data;
        if d.batch == 0 {
            gb.fill(T::ZERO);
        } else if d.a_batched && !d.b_batched {
            gemm(
                true,
                false,
                d.k,
                d.n,
                d.batch * d.m,
                T::ONE,
                av,
                dc,
                beta0,
                gb,
            )?;
        } else {
            for i in 0..d.batch {
                let dci = &dc[i * mn..(i + 1) * mn];
                let (gbi, beta) = if d.b_batched {
                    (&mut gb[i * kn..(i + 1) * kn], beta0)
                } else {
                    (&mut gb[..], if i == 0 { beta0 } else { T::ONE })
                };
                gemm(
                    true,
                    false,
                    d.k,
                    d.n,
                    d.m,
                    T::ONE,
                    a_block(av, d, i),
                    dci,
                    beta,
                    gbi,
                )?;
            }
        }
    }
    Ok(())
}
