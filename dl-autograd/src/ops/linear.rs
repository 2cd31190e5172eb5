//! The fused dense layer `y = x W^T + b`, with `x: [N, in]`, `W: [out, in]` (PyTorch's
//! layout), `b: [out]`: one gemm with `W` read transposed through strides (no copy of
//! the weights), the bias added in the same pass over `y`.
//!
//! Backward: `dx = dy W`, `dW = dy^T x`, `db = sum over rows of dy`.

use crate::error::{shape_mismatch, Result};
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::gemm::gemm;
use dl_core::{Scalar, Shape};

const OP: &str = "linear";

/// `(n, in, out)` after checking `x: [N, in]`, `w: [out, in]`, `b: [out]`.
fn dims(x: Shape, w: Shape, b: Option<Shape>) -> Result<(usize, usize, usize)> {
    let (n, i) = match *x.dims() {
        [n, i] => (n, i),
        _ => return Err(shape_mismatch(OP, x, w, "input must be [N, in]")),
    };
    let o = match *w.dims() {
        [o, i2] if i2 == i => o,
        [_, _] => {
            return Err(shape_mismatch(
                OP,
                x,
                w,
                "weight must be [out, in] with in = input features",
            ))
        }
        _ => return Err(shape_mismatch(OP, x, w, "weight must be [out, in]")),
    };
    if let Some(b) = b {
        if b.dims() != [o] {
            return Err(shape_mismatch(OP, w, b, "bias must be [out]"));
        }
    }
    Ok((n, i, o))
}

impl<T: Scalar> Graph<'_, T> {
    /// `y = x W^T + b` (see the module doc). Errors name `linear` and the shapes.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        let sx = self.shape_of(x, OP)?;
        let sw = self.shape_of(w, OP)?;
        let sb = match b {
            Some(b) => Some(self.shape_of(b, OP)?),
            None => None,
        };
        let (n, i, o) = dims(sx, sw, sb)?;
        let mut node = self.begin(Shape::new(&[n, o])?);
        let y = node.value.data_mut();
        gemm(
            false,
            true,
            n,
            o,
            i,
            T::ONE,
            self.val(x).data(),
            self.val(w).data(),
            T::ZERO,
            y,
        )?;
        if let Some(b) = b {
            let bias = self.val(b).data();
            for row in y.chunks_exact_mut(o.max(1)) {
                for (v, &bv) in row.iter_mut().zip(bias) {
                    *v = *v + bv;
                }
            }
        }
        let mut inputs = [x, w, w];
        let count = if let Some(b) = b {
            inputs[2] = b;
            3
        } else {
            2
        };
        let needs = self.needs_grad(&inputs[..count]);
        Ok(self.finish(Op::Linear { x, w, b }, node, needs))
    }
}

/// Backward of [`Graph::linear`].
pub(crate) fn linear_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
    w: Var,
    b: Option<Var>,
) -> Result<()> {
    let (xv, wv) = (ctx.vals.get(x), ctx.vals.get(w));
    let (n, i, o) = dims(*xv.shape(), *wv.shape(), None)?;
    let dy = ctx.dy;
    if let Some(dx) = grads.get(x) {
        let beta = dx.beta();
        gemm(false, false, n, i, o, T::ONE, dy, wv.data(), beta, dx.data)?;
    }
    if let Some(dw) = grads.get(w) {
        let beta = dw.beta();
        gemm(true, false, o, i, n, T::ONE, dy, xv.data(), beta, dw.data)?;
    }
    if let Some(b) = b {
        if let Some(db) = grads.get(b) {
            let db = db.zeroed();
            for row in dy.chunks_exact(o.max(1)) {
                for (d, &g) in db.iter_mut().zip(row) {
                    *d = *d + g;
                }
            }
        }
    }
    Ok(())
}
