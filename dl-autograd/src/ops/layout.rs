//! Layout ops: reshape, permute / transpose, concat, slice and index-select. None
//! changes a value, only where it sits, so each backward moves the gradient back:
//! reshape copies it, permute applies the inverse permutation, concat splits it,
//! slice pads it with zeros, index-select scatters it (adding where an index repeats).

use crate::error::{shape_mismatch, Result};
use crate::graph::{sized, BackwardCtx, Grads, Graph, Scratch, Var};
use crate::op::Op;
use crate::ops::reduce::split_at_axis;
use dl_core::layout as kern;
use dl_core::{Error, Scalar, Shape, MAX_RANK};

impl<'p, T: Scalar> Graph<'p, T> {
    /// The same elements with shape `dims` (equal element count).
    pub fn reshape(&mut self, x: Var, dims: &[usize]) -> Result<Var> {
        let shape = self.shape_of(x, "reshape")?;
        let target = Shape::new(dims)?;
        if target.numel() != shape.numel() {
            return Err(shape_mismatch(
                "reshape",
                shape,
                target,
                "element counts differ",
            ));
        }
        let mut b = self.begin(target);
        b.value.data_mut().copy_from_slice(self.val(x).data());
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::Reshape { x }, b, needs))
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`. Errors unless
    /// `axes` is a permutation of `0..rank`.
    pub fn permute(&mut self, x: Var, axes: &[usize]) -> Result<Var> {
        const OP: &str = "permute";
        let shape = self.shape_of(x, OP)?;
        let rank = shape.rank();
        let bad = |value: usize| {
            crate::error::invalid_parameter(OP, "axes", value as f64, "a permutation of 0..rank")
        };
        if axes.len() != rank {
            return Err(bad(axes.len()));
        }
        let mut seen = [false; MAX_RANK];
        let mut perm = [0usize; MAX_RANK];
        let mut out_dims = [0usize; MAX_RANK];
        for (i, &a) in axes.iter().enumerate() {
            if a >= rank || seen[a] {
                return Err(bad(a));
            }
            seen[a] = true;
            perm[i] = a;
            out_dims[i] = shape.dims()[a];
        }
        let out_shape = Shape::new(&out_dims[..rank])?;
        let mut b = self.begin(out_shape);
        kern::permute(self.val(x).data(), &shape, axes, b.value.data_mut())?;
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::Permute { x, axes: perm }, b, needs))
    }

    /// Swaps two axes.
    pub fn transpose(&mut self, x: Var, a0: usize, a1: usize) -> Result<Var> {
        let shape = self.shape_of(x, "transpose")?;
        shape.check_axis(a0, "transpose")?;
        shape.check_axis(a1, "transpose")?;
        let mut axes = [0usize, 1, 2, 3, 4, 5];
        axes.swap(a0, a1);
        self.permute(x, &axes[..shape.rank()])
    }

    /// Joins `xs` along `axis`; all other dimensions must agree. Errors name
    /// `concat` and the first pair of shapes that disagree.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        const OP: &str = "concat";
        let Some(&first) = xs.first() else {
            return Err(crate::error::invalid_parameter(OP, "inputs", 0.0, ">= 1"));
        };
        let s0 = self.shape_of(first, OP)?;
        s0.check_axis(axis, OP)?;
        let mut total = 0;
        for &x in xs {
            let s = self.shape_of(x, OP)?;
            let same_rest = s.rank() == s0.rank()
                && s.dims()
                    .iter()
                    .zip(s0.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b);
            if !same_rest {
                return Err(shape_mismatch(
                    OP,
                    s0,
                    s,
                    "sizes must match except along the axis",
                ));
            }
            total += s.dims()[axis];
        }
        let out_shape = s0.with_dim(axis, total, OP)?;
        let (outer, _, inner) = split_at_axis(&out_shape, axis);
        let mut b = self.begin(out_shape);
        let out = b.value.data_mut();
        let mut offset = 0;
        for &x in xs {
            let xv = self.val(x);
            let chunk = xv.dims()[axis] * inner;
            for o in 0..outer {
                let dst = o * total * inner + offset;
                out[dst..dst + chunk].copy_from_slice(&xv.data()[o * chunk..(o + 1) * chunk]);
            }
            offset += chunk;
        }
        b.saved_idx.clear();
        b.saved_idx.extend(xs.iter().map(|v| v.index()));
        let needs = self.needs_grad(xs);
        Ok(self.finish(
            Op::Concat {
                axis,
                count: xs.len(),
            },
            b,
            needs,
        ))
    }

    /// `x[.., start..end, ..]` along `axis`. Errors unless
    /// `start <= end <= dim(axis)`.
    pub fn slice(&mut self, x: Var, axis: usize, start: usize, end: usize) -> Result<Var> {
        const OP: &str = "slice";
        let shape = self.shape_of(x, OP)?;
        let n = shape.dim(axis, OP)?;
        if end > n {
            return Err(Error::IndexOutOfRange {
                op: OP,
                index: end,
                bound: n + 1,
            }
            .into());
        }
        if start > end {
            return Err(Error::IndexOutOfRange {
                op: OP,
                index: start,
                bound: end + 1,
            }
            .into());
        }
        let out_shape = shape.with_dim(axis, end - start, OP)?;
        let mut b = self.begin(out_shape);
        kern::slice_axis(
            self.val(x).data(),
            &shape,
            axis,
            start,
            end,
            b.value.data_mut(),
        )?;
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(
            Op::Slice {
                x,
                axis,
                start,
                end,
            },
            b,
            needs,
        ))
    }

    /// The entries of `x` at `indices` along `axis` (repeats allowed): an embedding
    /// lookup is `index_select(table, 0, token_ids)`, one time step of `[B, T, F]` is
    /// `index_select(x, 1, &[t])`. Errors on an index past the axis.
    pub fn index_select(&mut self, x: Var, axis: usize, indices: &[usize]) -> Result<Var> {
        const OP: &str = "index_select";
        let shape = self.shape_of(x, OP)?;
        let n = shape.dim(axis, OP)?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::IndexOutOfRange {
                op: OP,
                index: bad,
                bound: n,
            }
            .into());
        }
        let out_shape = shape.with_dim(axis, indices.len(), OP)?;
        let (outer, _, inner) = split_at_axis(&shape, axis);
        let mut b = self.begin(out_shape);
        let out = b.value.data_mut();
        let xv = self.val(x).data();
        let k = indices.len();
        for o in 0..outer {
            for (j, &i) in indices.iter().enumerate() {
                let src = (o * n + i) * inner;
                let dst = (o * k + j) * inner;
                out[dst..dst + inner].copy_from_slice(&xv[src..src + inner]);
            }
        }
        b.saved_idx.clear();
        b.saved_idx.extend_from_slice(indices);
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::IndexSelect { x, axis }, b, needs))
    }
}

/// `dx += dy` (same elements, other shape).
pub(crate) fn reshape_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
) -> Result<()> {
    if let Some(dx) = grads.get(x) {
        dx.add(ctx.dy);
    }
    Ok(())
}

/// `dx += permute(dy, inverse(axes))` (straight into a fresh gradient, else
/// through a scratch buffer, since the kernel overwrites).
pub(crate) fn permute_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    axes: [usize; MAX_RANK],
) -> Result<()> {
    let rank = ctx.vals.get(x).rank();
    let mut inverse = [0usize; MAX_RANK];
    for (i, &a) in axes[..rank].iter().enumerate() {
        inverse[a] = i;
    }
    let y_shape = *ctx.node.value.shape();
    if let Some(dx) = grads.get(x) {
        if dx.fresh {
            kern::permute(ctx.dy, &y_shape, &inverse[..rank], dx.data)?;
        } else {
            let tmp = sized(&mut scratch.a, ctx.dy.len());
            kern::permute(ctx.dy, &y_shape, &inverse[..rank], tmp)?;
            dx.add(tmp);
        }
    }
    Ok(())
}

/// Splits `dy` along the axis and adds each part into its input's gradient.
pub(crate) fn concat_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    axis: usize,
) -> Result<()> {
    let y_shape = ctx.node.value.shape();
    let (outer, total, inner) = split_at_axis(y_shape, axis);
    let mut offset = 0;
    for &i in &ctx.node.saved_idx {
        let x = Var::from_parts(i, 0);
        let chunk = ctx.vals.get(x).dims()[axis] * inner;
        if let Some(dx) = grads.get(x) {
            let dx = dx.zeroed();
            for o in 0..outer {
                let src = &ctx.dy[o * total * inner + offset..][..chunk];
                for (d, &g) in dx[o * chunk..(o + 1) * chunk].iter_mut().zip(src) {
                    *d = *d + g;
                }
            }
        }
        offset += chunk;
    }
    Ok(())
}

/// Adds `dy` into the sliced window of `dx`.
pub(crate) fn slice_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<()> {
    let x_shape = *ctx.vals.get(x).shape();
    if let Some(dx) = grads.get(x) {
        kern::slice_axis_backward(ctx.dy, &x_shape, axis, start, end, dx.zeroed())?;
    }
    Ok(())
}

/// Scatters `dy` back to the selected entries, adding where an index repeats.
pub(crate) fn index_select_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
    axis: usize,
) -> Result<()> {
    let (outer, n, inner) = split_at_axis(ctx.vals.get(x).shape(), axis);
    let indices = &ctx.node.saved_idx;
    let k = indices.len();
    if let Some(dx) = grads.get(x) {
        let dx = dx.zeroed();
        for o in 0..outer {
            for (j, &i) in indices.iter().enumerate() {
                let src = &ctx.dy[(o * k + j) * inner..][..inner];
                let dst = &mut dx[(o * n + i) * inner..][..inner];
                for (d, &g) in dst.iter_mut().zip(src) {
                    *d = *d + g;
                }
            }
        }
    }
    Ok(())
}
