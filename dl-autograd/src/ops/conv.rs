//! 2-D convolution (dl-core's direct kernels for stride-1 convolutions, threaded under
//! std; im2col + gemm otherwise) and max / average pooling, NCHW.
//!
//! The dl-core backward kernels overwrite their output, so each backward here
//! writes into a scratch buffer and adds it into the gradient (or writes straight
//! into a fresh gradient).

use crate::error::Result;
use crate::graph::{sized, zeroed, BackwardCtx, GradMut, Grads, Graph, Scratch, Var};
use crate::op::Op;
use dl_core::conv::{self as ckern, Conv2dGeometry, Conv2dParams};
use dl_core::pool::{self as pkern, Pool2dParams};
use dl_core::Scalar;

/// Adds a kernel's overwritten result: `run` overwrites a buffer, which is then
/// added into `g` (or `run` writes straight into `g` when it is fresh).
fn add_overwritten<T: Scalar>(
    g: GradMut<'_, T>,
    tmp: &mut alloc::vec::Vec<T>,
    run: impl FnOnce(&mut [T]) -> Result<()>,
) -> Result<()> {
    if g.fresh {
        // Every kernel passed here overwrites all of its output: no zeroing first.
        run(g.data)
    } else {
        let buf = sized(tmp, g.data.len());
        run(buf)?;
        for (d, &v) in g.data.iter_mut().zip(buf.iter()) {
            *d = *d + v;
        }
        Ok(())
    }
}

impl<T: Scalar> Graph<'_, T> {
    /// 2-D convolution: input `[N, C_in, H, W]`, weight `[C_out, C_in / groups, kh,
    /// kw]` (`params.groups` channel groups, as PyTorch's; 1 for a dense convolution),
    /// optional bias `[C_out]`; output `[N, C_out, H_out, W_out]` with
    /// `H_out = (H + 2 pad - dil (kh - 1) - 1) / stride + 1`. Errors name `conv2d`.
    pub fn conv2d(&mut self, x: Var, w: Var, b: Option<Var>, params: Conv2dParams) -> Result<Var> {
        const OP: &str = "conv2d";
        let xs = self.shape_of(x, OP)?;
        let ws = self.shape_of(w, OP)?;
        if let Some(b) = b {
            self.check(b, OP)?;
        }
        let geom = Conv2dGeometry::new(xs, ws, params)?;
        let mut node = self.begin(geom.output_shape());
        let mut workspace = core::mem::take(&mut self.scratch.a);
        let result = ckern::conv2d_direct(
            &geom,
            self.val(x).data(),
            self.val(w).data(),
            b.map(|b| self.val(b).data()),
            node.value.data_mut(),
            sized(&mut workspace, geom.direct_workspace_len()),
        );
        self.scratch.a = workspace;
        result?;
        let needs = self.needs_grad(&[x, w]) || b.is_some_and(|b| self.needs_grad(&[b]));
        Ok(self.finish(Op::Conv2d { x, w, b, params }, node, needs))
    }

    /// 2-D max pooling (NCHW); the gradient goes to each window's (first) maximum.
    pub fn max_pool2d(&mut self, x: Var, params: Pool2dParams) -> Result<Var> {
        let xs = self.shape_of(x, "max_pool2d")?;
        let out_shape = params.output_shape(xs)?;
        let mut node = self.begin(out_shape);
        node.saved_idx.resize(out_shape.numel(), 0);
        pkern::max_pool2d(
            xs,
            self.val(x).data(),
            params,
            node.value.data_mut(),
            &mut node.saved_idx,
        )?;
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::MaxPool2d { x, params }, node, needs))
    }

    /// 2-D average pooling (NCHW; padding counts as zeros, divisor `kh * kw`).
    pub fn avg_pool2d(&mut self, x: Var, params: Pool2dParams) -> Result<Var> {
        let xs = self.shape_of(x, "avg_pool2d")?;
        let out_shape = params.output_shape(xs)?;
        let mut node = self.begin(out_shape);
        pkern::avg_pool2d(xs, self.val(x).data(), params, node.value.data_mut())?;
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::AvgPool2d { x, params }, node, needs))
    }
}

/// `dx = conv_transpose(dy, w)`, `dw = dy (*) x`, `db = sum(dy)` over N, H, W.
pub(crate) fn conv2d_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    w: Var,
    b: Option<Var>,
    params: Conv2dParams,
) -> Result<()> {
    let (xv, wv) = (ctx.vals.get(x), ctx.vals.get(w));
    let geom = Conv2dGeometry::new(*xv.shape(), *wv.shape(), params)?;
    let Scratch {
        a: ws,
        b: tmp,
        c: tmp_bias,
        ..
    } = scratch;
    sized(ws, geom.direct_workspace_len());
    if let Some(dx) = grads.get(x) {
        add_overwritten(dx, tmp, |out| {
            Ok(ckern::conv2d_backward_input_direct(
                &geom,
                ctx.dy,
                wv.data(),
                out,
                ws,
            )?)
        })?;
    }
    let bias_grad = b.filter(|&b| grads.needs(b));
    if let Some(dw) = grads.get(w) {
        // The bias gradient comes out of the same kernel call when it is needed.
        let db = zeroed(tmp_bias, if bias_grad.is_some() { geom.c_out } else { 0 });
        let db = bias_grad.map(|_| &mut db[..]);
        add_overwritten(dw, tmp, |out| {
            Ok(ckern::conv2d_backward_weight_direct(
                &geom,
                xv.data(),
                ctx.dy,
                out,
                db,
                ws,
            )?)
        })?;
    } else if bias_grad.is_some() {
        let db = zeroed(tmp_bias, geom.c_out);
        let plane = geom.out_h * geom.out_w;
        for image in ctx.dy.chunks_exact(geom.c_out * plane) {
            for (d, row) in db.iter_mut().zip(image.chunks_exact(plane.max(1))) {
                *d = *d + row.iter().copied().sum::<T>();
            }
        }
    }
    if let Some(b) = bias_grad {
        if let Some(db) = grads.get(b) {
            db.add(&tmp_bias[..geom.c_out]);
        }
    }
    Ok(())
}

/// Adds each `dy` to the input position that won its window.
pub(crate) fn max_pool2d_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    params: Pool2dParams,
) -> Result<()> {
    let xs = *ctx.vals.get(x).shape();
    if let Some(dx) = grads.get(x) {
        add_overwritten(dx, &mut scratch.b, |out| {
            let idx = &ctx.node.saved_idx;
            if params == Pool2dParams::new(2, 2) {
                // Non-overlapping windows: one pass writes every cell.
                Ok(pkern::max_pool2d_2x2_backward(xs, ctx.dy, idx, out)?)
            } else {
                Ok(pkern::max_pool2d_backward(ctx.dy, idx, out)?)
            }
        })?;
    }
    Ok(())
}

/// Spreads each `dy / (kh * kw)` over its window.
pub(crate) fn avg_pool2d_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    params: Pool2dParams,
) -> Result<()> {
    let xs = *ctx.vals.get(x).shape();
    if let Some(dx) = grads.get(x) {
        add_overwritten(dx, &mut scratch.b, |out| {
            Ok(pkern::avg_pool2d_backward(xs, ctx.dy, params, out)?)
        })?;
    }
    Ok(())
}
