//! Reductions: sum, mean and max along one axis, and sum / mean of everything.
//!
//! Along an axis of size `n` (shape viewed as `[outer, n, inner]`):
//! sum: `dx[o, j, i] = dy[o, i]`; mean: `dy[o, i] / n`; max: `dy[o, i]` at the
//! first maximum `j = argmax`, 0 elsewhere.

use crate::error::Result;
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::{Op, ReduceOp};
use dl_core::reduce::{self as kern, Reduce};
use dl_core::{Scalar, Shape};

/// `(outer, n, inner)` of `shape` around `axis`.
pub(crate) fn split_at_axis(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let d = shape.dims();
    let outer = d[..axis].iter().product();
    let inner = d[axis + 1..].iter().product();
    (outer, d[axis], inner)
}

impl<T: Scalar> Graph<'_, T> {
    /// Reduces along `axis` (removed from the shape) with `op`.
    pub fn reduce(&mut self, op: ReduceOp, x: Var, axis: usize) -> Result<Var> {
        let name = Op::Reduce { op, x, axis }.name();
        let shape = self.shape_of(x, name)?;
        let out_shape = shape.remove_axis(axis, name)?;
        if op == ReduceOp::Max && shape.dims()[axis] == 0 {
            return Err(crate::error::invalid_parameter(
                name,
                "axis length",
                0.0,
                ">= 1",
            ));
        }
        let mut b = self.begin(out_shape);
        let kop = match op {
            ReduceOp::Sum => Reduce::Sum,
            ReduceOp::Mean => Reduce::Mean,
            ReduceOp::Max => Reduce::Max,
        };
        kern::reduce_axis(kop, self.val(x).data(), &shape, axis, b.value.data_mut())?;
        let needs = self.needs_grad(&[x]);
        if op == ReduceOp::Max && needs {
            b.saved_idx.resize(out_shape.numel(), 0);
            kern::argmax_axis(self.val(x).data(), &shape, axis, &mut b.saved_idx)?;
        }
        Ok(self.finish(Op::Reduce { op, x, axis }, b, needs))
    }

    /// Sum along `axis` (removed from the shape).
    pub fn sum(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(ReduceOp::Sum, x, axis)
    }

    /// Mean along `axis` (removed from the shape).
    pub fn mean(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(ReduceOp::Mean, x, axis)
    }

    /// Maximum along `axis` (removed from the shape); the gradient goes to the first
    /// maximum of each lane. Errors on an empty axis.
    pub fn max(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(ReduceOp::Max, x, axis)
    }

    /// Sum of all elements (a rank-0 scalar).
    pub fn sum_all(&mut self, x: Var) -> Result<Var> {
        self.check(x, "sum_all")?;
        let mut b = self.begin(Shape::scalar());
        b.value.data_mut()[0] = kern::sum_all(self.val(x).data());
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::SumAll { x }, b, needs))
    }

    /// Mean of all elements (a rank-0 scalar; NaN for an empty tensor).
    pub fn mean_all(&mut self, x: Var) -> Result<Var> {
        self.check(x, "mean_all")?;
        let mut b = self.begin(Shape::scalar());
        b.value.data_mut()[0] = kern::mean_all(self.val(x).data());
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::MeanAll { x }, b, needs))
    }
}

/// Spreads `dy` back over the reduced axis (see the module doc).
pub(crate) fn reduce_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    op: ReduceOp,
    x: Var,
    axis: usize,
) -> Result<()> {
    let (outer, n, inner) = split_at_axis(ctx.vals.get(x).shape(), axis);
    let Some(dx) = grads.get(x) else {
        return Ok(());
    };
    let dx = dx.zeroed();
    let dy = ctx.dy;
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let s = if op == ReduceOp::Mean {
                T::ONE / T::from_usize_lossy(n)
            } else {
                T::ONE
            };
            for o in 0..outer {
                let g = &dy[o * inner..(o + 1) * inner];
                for j in 0..n {
                    let row = &mut dx[(o * n + j) * inner..(o * n + j + 1) * inner];
                    for (d, &v) in row.iter_mut().zip(g) {
                        *d = *d + v * s;
                    }
                }
            }
        }
        ReduceOp::Max => {
            let argmax = &ctx.node.saved_idx;
            for o in 0..outer {
                for i in 0..inner {
                    let k = o * inner + i;
                    let at = (o * n + argmax[k]) * inner + i;
                    dx[at] = dx[at] + dy[k];
                }
            }
        }
    }
    Ok(())
}

/// `dx += dy` (sum) or `dy / numel` (mean) on every element.
pub(crate) fn sum_all_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
    mean: bool,
) -> Result<()> {
    let n = ctx.vals.get(x).numel();
    let Some(dx) = grads.get(x) else {
        return Ok(());
    };
    let g = if mean {
        ctx.dy[0] / T::from_usize_lossy(n)
    } else {
        ctx.dy[0]
    };
    if dx.fresh {
        dx.data.fill(g);
    } else {
        dx.data.iter_mut().for_each(|d| *d = *d + g);
    }
    Ok(())
}
