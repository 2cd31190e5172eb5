//! The fused dense layer `y = x W^T + b`, with `x: [N, in]`, `W: [out, in]` (PyTorch's
//! layout), `b: [out]`: one gemm with `W` read transposed through strides (no copy of
//! the weights), the bias added in the same pass over `y`.
//!
//! Backward: `dx = dy W`, `dW = dy^T x`, `db = sum over rows of dy`.

use crate::error::{shape_mismatch, Result};
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::gemm::gemm;
use dl_core::{Scalar, Shape, Tensor};

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
        let bias = b.map(|b| self.val(b).data());
        kernel(
            (n, i, o),
            self.val(x).data(),
            self.val(w).data(),
            bias,
            node.value.data_mut(),
        )?;
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

/// `y = x W^T + b` on plain tensors, without a graph: the kernel (and so the bits) of
/// [`Graph::linear`], for inference. `y` is resized to `[N, out]`, reusing its
/// buffer. Errors name `linear` and the shapes.
///
/// ```
/// use dl_autograd::linear_into;
/// use dl_core::Tensor;
/// let x = Tensor::from_rows([[1.0f32, 2.0]]);
/// let w = Tensor::from_rows([[1.0f32, 0.0], [1.0, 1.0], [0.0, -1.0]]);
/// let b = Tensor::from_array([0.5f32, 0.0, 0.0]);
/// let mut y = Tensor::empty();
/// linear_into(&x, &w, Some(&b), &mut y).unwrap();
/// assert_eq!((y.dims(), y.data()), (&[1, 3][..], &[1.5, 3.0, -2.0][..]));
/// let w_bad = Tensor::from_rows([[1.0f32, 2.0, 3.0]]);
/// assert!(linear_into(&x, &w_bad, None, &mut y).unwrap_err().to_string().contains("linear"));
/// ```
pub fn linear_into<T: Scalar>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    y: &mut Tensor<T>,
) -> Result<()> {
    let (n, i, o) = dims(*x.shape(), *w.shape(), b.map(|b| *b.shape()))?;
    y.resize_to(Shape::new(&[n, o])?);
    kernel(
        (n, i, o),
        x.data(),
        w.data(),
        b.map(|b| b.data()),
        y.data_mut(),
    )
}

/// `y = x W^T + b` on checked buffers: one gemm reading `W` transposed, then the bias
/// added row by row.
fn kernel<T: Scalar>(
    (n, i, o): (usize, usize, usize),
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    y: &mut [T],
) -> Result<()> {
    gemm(false, true, n, o, i, T::ONE, x, w, T::ZERO, y)?;
    if let Some(bias) = b {
        for row in y.chunks_exact_mut(o.max(1)) {
            for (v, &bv) in row.iter_mut().zip(bias) {
                *v = *v + bv;
            }
        }
    }
    Ok(())
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
