//! Softmax and log-softmax over the last axis (every other axis is a batch of rows).
//!
//! `y = softmax(x)`: `dx = y * (dy - sum(dy * y))`;
//! `y = log_softmax(x)`: `dx = dy - softmax(x) * sum(dy)`, with `softmax = e^y`.

use crate::error::Result;
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::softmax as kern;
use dl_core::{Scalar, Shape};

/// `(rows, cols)` of a tensor seen as rows over its last axis.
pub(crate) fn rows_cols(shape: &Shape, op: &'static str) -> Result<(usize, usize)> {
    if shape.rank() == 0 {
        return Err(dl_core::Error::RankMismatch {
            op,
            expected: ">= 1",
            shape: *shape,
        }
        .into());
    }
    let cols = shape.dims()[shape.rank() - 1];
    Ok((shape.numel() / cols.max(1), cols))
}

impl<T: Scalar> Graph<'_, T> {
    fn softmax_like(&mut self, x: Var, log: bool) -> Result<Var> {
        let op = if log { "log_softmax" } else { "softmax" };
        let shape = self.shape_of(x, op)?;
        let (rows, cols) = rows_cols(&shape, op)?;
        let mut b = self.begin(shape);
        let xv = self.val(x).data();
        if log {
            kern::log_softmax(xv, rows, cols, b.value.data_mut())?;
        } else {
            kern::softmax(xv, rows, cols, b.value.data_mut())?;
        }
        let needs = self.needs_grad(&[x]);
        let op = if log {
            Op::LogSoftmax { x }
        } else {
            Op::Softmax { x }
        };
        Ok(self.finish(op, b, needs))
    }

    /// Softmax over the last axis: `y_j = e^(x_j) / sum_k e^(x_k)` (stable).
    pub fn softmax(&mut self, x: Var) -> Result<Var> {
        self.softmax_like(x, false)
    }

    /// Log-softmax over the last axis: `y_j = x_j - log sum_k e^(x_k)` (stable).
    pub fn log_softmax(&mut self, x: Var) -> Result<Var> {
        self.softmax_like(x, true)
    }
}

/// See the module doc; both kernels accumulate into `dx`.
pub(crate) fn softmax_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
    log: bool,
) -> Result<()> {
    let y = &ctx.node.value;
    let (rows, cols) = rows_cols(y.shape(), "softmax_backward")?;
    if let Some(dx) = grads.get(x) {
        let dx = dx.zeroed();
        if log {
            kern::log_softmax_backward(y.data(), ctx.dy, rows, cols, dx)?;
        } else {
            kern::softmax_backward(y.data(), ctx.dy, rows, cols, dx)?;
        }
    }
    Ok(())
}
