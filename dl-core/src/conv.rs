//! 2-D convolution (cross-correlation, as PyTorch's `conv2d`) on NCHW slices, as
//! im2col + gemm, with its two backward passes.
//!
//! Shapes: input `[n, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`, bias `[c_out]`,
//! output `[n, c_out, out_h, out_w]` with
//! `out_h = (h + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1` (likewise `out_w`).
//!
//! `y[b, o, i, j] = bias[o] + sum_{c, u, v} w[o, c, u, v] * x[b, c, i*s_h + u*d_h - p_h, j*s_w + v*d_w - p_w]`
//! (padding reads as zero).
//!
//! Per image, [`im2col`] lays the receptive fields out as a `[c_in*kh*kw, out_h*out_w]`
//! matrix `X_col`, so that `Y = W X_col` (with `W` viewed as `[c_out, c_in*kh*kw]`):
//! - forward: `Y = W X_col + bias`;
//! - input gradient: `dX = col2im(W^T dY)`;
//! - weight gradient: `dW = sum_b dY_b X_col_b^T`, `dbias = sum_{b, i, j} dY`.
//!
//! The kernels allocate nothing: the caller passes a workspace of
//! [`Conv2dGeometry::workspace_len`] elements (one image's `X_col`; zero for a 1x1
//! convolution with stride 1 and no padding, whose `X_col` is the image itself).
//! Under `std`, the `*_par` variants split the work over rayon's threads (allocating a
//! scratch buffer per task) and give bit-identical results.
//!
//! ```
//! use dl_core::conv::{conv2d, Conv2dGeometry, Conv2dParams};
//! use dl_core::Shape;
//! // A 1x1x3x3 image and a 2x2 kernel of ones: each output sums a 2x2 window.
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
//! let w = [1.0f32; 4];
//! let g = Conv2dGeometry::new(
//!     Shape::from([1, 1, 3, 3]),
//!     Shape::from([1, 1, 2, 2]),
//!     Conv2dParams::default(),
//! )
//! .unwrap();
//! assert_eq!(g.output_shape().dims(), &[1, 1, 2, 2]);
//! let mut y = [0.0f32; 4];
//! let mut ws = vec![0.0f32; g.workspace_len()];
//! conv2d(&g, &x, &w, Some(&[0.5]), &mut y, &mut ws).unwrap();
//! assert_eq!(y, [12.5, 16.5, 24.5, 28.5]);
//! ```

use crate::error::{Error, Result};
use crate::gemm::gemm;
use crate::scalar::Scalar;
use crate::shape::Shape;

const OP: &str = "conv2d";

/// Hyper-parameters of a 2-D convolution, each as `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between neighbouring windows; `>= 1`.
    pub stride: (usize, usize),
    /// Zeros added on each side of the input.
    pub padding: (usize, usize),
    /// Spacing between kernel taps (1 = a dense kernel); `>= 1`.
    pub dilation: (usize, usize),
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, no dilation (PyTorch's defaults).
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
        }
    }
}

impl Conv2dParams {
    /// The same parameters with stride `(sh, sw)`.
    pub fn with_stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }

    /// The same parameters with padding `(ph, pw)`.
    pub fn with_padding(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }

    /// The same parameters with dilation `(dh, dw)`.
    pub fn with_dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }

    /// Errors (naming the parameter) unless stride and dilation are `>= 1`.
    pub fn validate(&self) -> Result<()> {
        for (name, (a, b)) in [("stride", self.stride), ("dilation", self.dilation)] {
            for v in [a, b] {
                if v == 0 {
                    return Err(Error::InvalidParameter {
                        op: "Conv2dParams",
                        name,
                        value: 0.0,
                        valid: ">= 1",
                    });
                }
            }
        }
        Ok(())
    }
}

/// Every size a convolution needs, checked once: build it with
/// [`Conv2dGeometry::new`] and pass it to the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Stride, padding and dilation.
    pub params: Conv2dParams,
}

/// Output length along one axis: `(size + 2 pad - dil (k - 1) - 1) / stride + 1`, or
/// `None` when the dilated kernel does not fit in the padded input.
fn conv_out_len(size: usize, k: usize, stride: usize, pad: usize, dil: usize) -> Option<usize> {
    let padded = size.checked_add(pad.checked_mul(2)?)?;
    let span = dil.checked_mul(k - 1)?.checked_add(1)?;
    if padded < span {
        None
    } else {
        Some((padded - span) / stride + 1)
    }
}

impl Conv2dGeometry {
    /// Checks an NCHW `input` shape against a `[c_out, c_in, kh, kw]` `weight` shape
    /// and `params`, and works out the output size. Errors name `conv2d` and both
    /// shapes: wrong ranks, disagreeing channel counts, an empty kernel or channel
    /// dimension, or a (dilated) kernel larger than the padded input. A batch of 0
    /// images is allowed (the kernels then have nothing to do).
    pub fn new(input: Shape, weight: Shape, params: Conv2dParams) -> Result<Self> {
        params.validate()?;
        input.check_rank(4, OP, "4 (NCHW input)")?;
        weight.check_rank(4, OP, "4 ([c_out, c_in, kh, kw] weight)")?;
        let (i, k) = (input.dims(), weight.dims());
        let mismatch = |why| Error::ShapeMismatch {
            op: OP,
            lhs: input,
            rhs: weight,
            why,
        };
        if i[1] != k[1] {
            return Err(mismatch("input channels (dim 1) must equal weight dim 1"));
        }
        if k.contains(&0) {
            return Err(mismatch("weight dimensions must be non-zero"));
        }
        if i[2] == 0 || i[3] == 0 {
            return Err(mismatch("input height and width must be non-zero"));
        }
        let (ph, pw) = params.padding;
        let (sh, sw) = params.stride;
        let (dh, dw) = params.dilation;
        let out_h = conv_out_len(i[2], k[2], sh, ph, dh);
        let out_w = conv_out_len(i[3], k[3], sw, pw, dw);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(mismatch(
                "the dilated kernel is larger than the padded input: empty output",
            ));
        };
        let g = Conv2dGeometry {
            n: i[0],
            c_in: i[1],
            h: i[2],
            w: i[3],
            c_out: k[0],
            kh: k[2],
            kw: k[3],
            out_h,
            out_w,
            params,
        };
        // After these two checks every product the kernels form fits in usize.
        let overflow = Error::Overflow { op: OP };
        Shape::new(&[g.n, g.c_out, out_h, out_w]).map_err(|_| overflow)?;
        Shape::new(&[g.c_in, g.kh, g.kw, out_h, out_w]).map_err(|_| overflow)?;
        Ok(g)
    }

    /// `[n, c_in, h, w]`.
    pub fn input_shape(&self) -> Shape {
        Shape::from([self.n, self.c_in, self.h, self.w])
    }

    /// `[c_out, c_in, kh, kw]`.
    pub fn weight_shape(&self) -> Shape {
        Shape::from([self.c_out, self.c_in, self.kh, self.kw])
    }

    /// `[n, c_out, out_h, out_w]`.
    pub fn output_shape(&self) -> Shape {
        Shape::from([self.n, self.c_out, self.out_h, self.out_w])
    }

    /// Rows of one image's `X_col`: `c_in * kh * kw` (the gemm's inner dimension).
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Columns of one image's `X_col`: `out_h * out_w`.
    pub fn col_cols(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Elements of scratch the kernels need: one image's `X_col`
    /// (`c_in*kh*kw * out_h*out_w`), or 0 for a pointwise convolution (see
    /// [`Conv2dGeometry::is_pointwise`]).
    pub fn workspace_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.col_rows() * self.col_cols()
        }
    }

    /// A 1x1 kernel with stride 1 and no padding: `X_col` is the image itself, so the
    /// kernels skip im2col and need no workspace.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.params.stride == (1, 1)
            && self.params.padding == (0, 0)
    }

    fn image_len(&self) -> usize {
        self.c_in * self.h * self.w
    }

    fn out_image_len(&self) -> usize {
        self.c_out * self.col_cols()
    }
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op: OP,
            what,
            expected,
            actual,
        })
    }
}

/// The workspace prefix the kernels use; errors if the buffer is too short.
fn workspace_prefix<'a, T>(g: &Conv2dGeometry, ws: &'a mut [T]) -> Result<&'a mut [T]> {
    let need = g.workspace_len();
    if ws.len() < need {
        return Err(Error::LengthMismatch {
            op: OP,
            what: "workspace (at least)",
            expected: need,
            actual: ws.len(),
        });
    }
    Ok(&mut ws[..need])
}

/// The range of output positions `o` whose input position
/// `o * stride + offset - pad` falls inside `[0, size)`, as `(first, end)`.
fn valid_outputs(
    out: usize,
    stride: usize,
    offset: usize,
    pad: usize,
    size: usize,
) -> (usize, usize) {
    let first = if pad > offset {
        (pad - offset).div_ceil(stride).min(out)
    } else {
        0
    };
    let end = if size + pad <= offset {
        0
    } else {
        ((size - 1 + pad - offset) / stride + 1).min(out)
    };
    (first, end.max(first))
}

/// Walks one image's `X_col` segment by segment (a segment is the `out_w` entries of
/// one `X_col` row for one output row, in memory order) and hands `visit` the segment
/// index, the flat input index its first valid entry reads (`None` when the whole
/// segment lies in the padding), the valid output range `(first, end)` within the
/// segment, and the input step between neighbouring entries. One skeleton for
/// [`im2col`] and [`col2im`], so the index arithmetic exists once.
fn for_each_col_segment(
    g: &Conv2dGeometry,
    mut visit: impl FnMut(usize, Option<usize>, (usize, usize), usize),
) {
    let (sh, sw) = g.params.stride;
    let (ph, pw) = g.params.padding;
    let (dh, dw) = g.params.dilation;
    let mut segment = 0;
    for c in 0..g.c_in {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let range = valid_outputs(g.out_w, sw, kx * dw, pw, g.w);
                // Input column of the first valid output; only used when the range is
                // non-empty, where the subtraction cannot underflow.
                let ix0 = (range.0 * sw + kx * dw).saturating_sub(pw);
                for oy in 0..g.out_h {
                    // A segment with no valid column reads nothing: report it as
                    // padding (its start index could lie past the image).
                    let iy = (oy * sh + ky * dh)
                        .checked_sub(ph)
                        .filter(|&iy| iy < g.h && range.0 < range.1);
                    visit(segment, iy.map(|iy| (c * g.h + iy) * g.w + ix0), range, sw);
                    segment += 1;
                }
            }
        }
    }
}

/// Lays one image `[c_in, h, w]` out as `X_col` `[c_in*kh*kw, out_h*out_w]`:
/// row `(c, u, v)`, column `(i, j)` holds `x[c, i*s_h + u*d_h - p_h, j*s_w + v*d_w - p_w]`,
/// or 0 in the padding. Overwrites `col`.
pub fn im2col<T: Scalar>(g: &Conv2dGeometry, image: &[T], col: &mut [T]) -> Result<()> {
    check_len("image", g.image_len(), image.len())?;
    check_len("col", g.col_rows() * g.col_cols(), col.len())?;
    let out_w = g.out_w;
    for_each_col_segment(g, |s, start, (first, end), step| {
        let seg = &mut col[s * out_w..(s + 1) * out_w];
        let Some(start) = start else {
            seg.fill(T::ZERO);
            return;
        };
        seg[..first].fill(T::ZERO);
        seg[end..].fill(T::ZERO);
        let dst = &mut seg[first..end];
        if step == 1 {
            dst.copy_from_slice(&image[start..start + dst.len()]);
        } else {
            for (t, d) in dst.iter_mut().enumerate() {
                *d = image[start + t * step];
            }
        }
    });
    Ok(())
}

/// The adjoint of [`im2col`]: overwrites `image` `[c_in, h, w]` so each pixel holds
/// the sum of the `X_col` entries that read it (entries in the padding are dropped).
pub fn col2im<T: Scalar>(g: &Conv2dGeometry, col: &[T], image: &mut [T]) -> Result<()> {
    check_len("image", g.image_len(), image.len())?;
    check_len("col", g.col_rows() * g.col_cols(), col.len())?;
    image.fill(T::ZERO);
    let out_w = g.out_w;
    for_each_col_segment(g, |s, start, (first, end), step| {
        if let Some(start) = start {
            let seg = &col[s * out_w + first..s * out_w + end];
            if step == 1 {
                let dst = &mut image[start..start + seg.len()];
                for (px, &v) in dst.iter_mut().zip(seg) {
                    *px = *px + v;
                }
            } else {
                for (t, &v) in seg.iter().enumerate() {
                    let px = &mut image[start + t * step];
                    *px = *px + v;
                }
            }
        }
    });
    Ok(())
}

/// Checks the buffers of a forward pass (also used by its parallel twin).
fn check_forward<T>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &[T],
) -> Result<()> {
    check_len("input", g.n * g.image_len(), input.len())?;
    check_len("weight", g.c_out * g.col_rows(), weight.len())?;
    if let Some(b) = bias {
        check_len("bias", g.c_out, b.len())?;
    }
    check_len("output", g.n * g.out_image_len(), out.len())
}

/// Forward convolution: `out = conv(input, weight) + bias` (see the module docs for
/// the formula and shapes). Overwrites `out`; `workspace` must hold at least
/// [`Conv2dGeometry::workspace_len`] elements. Allocates nothing.
pub fn conv2d<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    workspace: &mut [T],
) -> Result<()> {
    check_forward(g, input, weight, bias, out)?;
    let ws = workspace_prefix(g, workspace)?;
    forward_images(g, input, weight, bias, out, ws)
}

/// The forward pass over however many images `input` holds (`g.n` is not used, so the
/// parallel path can hand each task a run of images). Lengths are checked by callers.
fn forward_images<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    ws: &mut [T],
) -> Result<()> {
    let p = g.col_cols();
    let images = input.chunks_exact(g.image_len());
    for (x, y) in images.zip(out.chunks_exact_mut(g.out_image_len())) {
        let col: &[T] = if g.is_pointwise() {
            x
        } else {
            im2col(g, x, ws)?;
            ws
        };
        // Starting C from the bias and using beta = 1 adds it in the gemm's own pass.
        let beta = match bias {
            Some(b) => {
                for (row, &bo) in y.chunks_exact_mut(p).zip(b) {
                    row.fill(bo);
                }
                T::ONE
            }
            None => T::ZERO,
        };
        gemm(
            false,
            false,
            g.c_out,
            p,
            g.col_rows(),
            T::ONE,
            weight,
            col,
            beta,
            y,
        )?;
    }
    Ok(())
}

fn check_backward_input<T>(
    g: &Conv2dGeometry,
    grad_out: &[T],
    weight: &[T],
    grad_input: &[T],
) -> Result<()> {
    check_len("grad_out", g.n * g.out_image_len(), grad_out.len())?;
    check_len("weight", g.c_out * g.col_rows(), weight.len())?;
    check_len("grad_input", g.n * g.image_len(), grad_input.len())
}

/// Gradient with respect to the input: `grad_input = col2im(W^T grad_out)` per image.
/// Overwrites `grad_input` (`[n, c_in, h, w]`); `grad_out` is `[n, c_out, out_h,
/// out_w]`. Allocates nothing.
pub fn conv2d_backward_input<T: Scalar>(
    g: &Conv2dGeometry,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) -> Result<()> {
    check_backward_input(g, grad_out, weight, grad_input)?;
    let ws = workspace_prefix(g, workspace)?;
    backward_input_images(g, grad_out, weight, grad_input, ws)
}

fn backward_input_images<T: Scalar>(
    g: &Conv2dGeometry,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
    ws: &mut [T],
) -> Result<()> {
    let (p, r) = (g.col_cols(), g.col_rows());
    let gys = grad_out.chunks_exact(g.out_image_len());
    for (gy, gx) in gys.zip(grad_input.chunks_exact_mut(g.image_len())) {
        if g.is_pointwise() {
            gemm(true, false, r, p, g.c_out, T::ONE, weight, gy, T::ZERO, gx)?;
        } else {
            gemm(true, false, r, p, g.c_out, T::ONE, weight, gy, T::ZERO, ws)?;
            col2im(g, ws, gx)?;
        }
    }
    Ok(())
}

fn check_backward_weight<T>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_out: &[T],
    grad_weight: &[T],
    grad_bias: Option<&[T]>,
) -> Result<()> {
    check_len("input", g.n * g.image_len(), input.len())?;
    check_len("grad_out", g.n * g.out_image_len(), grad_out.len())?;
    check_len("grad_weight", g.c_out * g.col_rows(), grad_weight.len())?;
    if let Some(gb) = grad_bias {
        check_len("grad_bias", g.c_out, gb.len())?;
    }
    Ok(())
}

/// Gradients with respect to the weight, `sum_b grad_out_b X_col_b^T`, and (if asked)
/// the bias, `sum_{b, i, j} grad_out[b, :, i, j]`. Overwrites both. Allocates nothing.
pub fn conv2d_backward_weight<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
    workspace: &mut [T],
) -> Result<()> {
    check_backward_weight(g, input, grad_out, grad_weight, grad_bias.as_deref())?;
    let ws = workspace_prefix(g, workspace)?;
    weight_grad_channels(g, 0..g.c_in, input, grad_out, grad_weight, ws)?;
    if let Some(gb) = grad_bias {
        bias_grad(g, grad_out, gb);
    }
    Ok(())
}

/// `dbias[o] = sum over images and positions of grad_out[b, o, :, :]`.
fn bias_grad<T: Scalar>(g: &Conv2dGeometry, grad_out: &[T], grad_bias: &mut [T]) {
    grad_bias.fill(T::ZERO);
    for gy in grad_out.chunks_exact(g.out_image_len()) {
        for (gb, row) in grad_bias.iter_mut().zip(gy.chunks_exact(g.col_cols())) {
            *gb = *gb + row.iter().copied().sum::<T>();
        }
    }
}

/// The weight gradient restricted to input channels `channels`: the column block
/// `[c_out, channels.len()*kh*kw]` of `dW` viewed as `[c_out, c_in*kh*kw]`, written to
/// `grad_block` (contiguous). The serial path asks for all channels at once; the
/// parallel path gives each task a run of channels, so every task does the same
/// arithmetic per element as the serial path (results are bit-identical) and no
/// cross-task sum is needed. `ws` holds `channels.len()*kh*kw * out_h*out_w` elements
/// (or none when pointwise).
fn weight_grad_channels<T: Scalar>(
    g: &Conv2dGeometry,
    channels: core::ops::Range<usize>,
    input: &[T],
    grad_out: &[T],
    grad_block: &mut [T],
    ws: &mut [T],
) -> Result<()> {
    let sub = Conv2dGeometry {
        c_in: channels.len(),
        ..*g
    };
    let (p, r) = (g.col_cols(), sub.col_rows());
    if g.n == 0 {
        grad_block.fill(T::ZERO);
        return Ok(());
    }
    let plane = g.h * g.w;
    let images = input.chunks_exact(g.image_len());
    for (b, (x, gy)) in images
        .zip(grad_out.chunks_exact(g.out_image_len()))
        .enumerate()
    {
        let x = &x[channels.start * plane..channels.end * plane];
        let col: &[T] = if g.is_pointwise() {
            x
        } else {
            im2col(&sub, x, ws)?;
            ws
        };
        let beta = if b == 0 { T::ZERO } else { T::ONE };
        gemm(
            false,
            true,
            g.c_out,
            r,
            p,
            T::ONE,
            gy,
            col,
            beta,
            grad_block,
        )?;
    }
    Ok(())
}

/// Batch- and channel-parallel twins of the kernels (rayon; `std` only). Each task
/// allocates its own scratch; results are bit-identical to the serial kernels, for
/// any number of threads (including `RAYON_NUM_THREADS=1`).
#[cfg(feature = "std")]
mod parallel {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use rayon::prelude::*;

    /// How many tasks to split `units` of work into: one per rayon thread.
    fn tasks(units: usize) -> usize {
        rayon::current_num_threads().min(units).max(1)
    }

    /// [`conv2d`] with the batch split over rayon's threads (each task allocates one
    /// image's workspace). Same checks and results as [`conv2d`].
    pub fn conv2d_par<T: Scalar>(
        g: &Conv2dGeometry,
        input: &[T],
        weight: &[T],
        bias: Option<&[T]>,
        out: &mut [T],
    ) -> Result<()> {
        check_forward(g, input, weight, bias, out)?;
        if g.n == 0 {
            return Ok(());
        }
        let per = g.n.div_ceil(tasks(g.n));
        input
            .par_chunks(per * g.image_len())
            .zip(out.par_chunks_mut(per * g.out_image_len()))
            .try_for_each(|(x, y)| {
                let mut ws = vec![T::ZERO; g.workspace_len()];
                forward_images(g, x, weight, bias, y, &mut ws)
            })
    }

    /// [`conv2d_backward_input`] with the batch split over rayon's threads. Same
    /// checks and results.
    pub fn conv2d_backward_input_par<T: Scalar>(
        g: &Conv2dGeometry,
        grad_out: &[T],
        weight: &[T],
        grad_input: &mut [T],
    ) -> Result<()> {
        check_backward_input(g, grad_out, weight, grad_input)?;
        if g.n == 0 {
            return Ok(());
        }
        let per = g.n.div_ceil(tasks(g.n));
        grad_out
            .par_chunks(per * g.out_image_len())
            .zip(grad_input.par_chunks_mut(per * g.image_len()))
            .try_for_each(|(gy, gx)| {
                let mut ws = vec![T::ZERO; g.workspace_len()];
                backward_input_images(g, gy, weight, gx, &mut ws)
            })
    }

    /// [`conv2d_backward_weight`] split over rayon's threads by runs of input
    /// channels (not by images: a split over images would need a cross-task sum whose
    /// rounding depended on the thread count). Same checks and results.
    pub fn conv2d_backward_weight_par<T: Scalar>(
        g: &Conv2dGeometry,
        input: &[T],
        grad_out: &[T],
        grad_weight: &mut [T],
        grad_bias: Option<&mut [T]>,
    ) -> Result<()> {
        check_backward_weight(g, input, grad_out, grad_weight, grad_bias.as_deref())?;
        let per = g.c_in.div_ceil(tasks(g.c_in));
        let kk = g.kh * g.kw;
        let p = g.col_cols();
        let blocks = (0..g.c_in)
            .step_by(per)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|c0| {
                let channels = c0..(c0 + per).min(g.c_in);
                let width = channels.len() * kk;
                let mut block = vec![T::ZERO; g.c_out * width];
                let ws_len = if g.is_pointwise() { 0 } else { width * p };
                let mut ws = vec![T::ZERO; ws_len];
                weight_grad_channels(g, channels, input, grad_out, &mut block, &mut ws)?;
                Ok((c0, block))
            })
            .collect::<Result<Vec<_>>>()?;
        let row = g.col_rows();
        for (c0, block) in blocks {
            let width = block.len() / g.c_out;
            for (o, src) in block.chunks_exact(width).enumerate() {
                let dst = o * row + c0 * kk;
                grad_weight[dst..dst + width].copy_from_slice(src);
            }
        }
        if let Some(gb) = grad_bias {
            bias_grad(g, grad_out, gb);
        }
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use parallel::{conv2d_backward_input_par, conv2d_backward_weight_par, conv2d_par};

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;
    use alloc::vec;

    impl<T: Scalar> Tensor<T> {
        /// 2-D convolution of an NCHW tensor with a `[c_out, c_in, kh, kw]` weight and
        /// an optional `[c_out]` bias (see [`crate::conv`] for the formula); under
        /// `std` the batch is split over rayon's threads.
        ///
        /// ```
        /// use dl_core::{conv::Conv2dParams, Tensor};
        /// let x = Tensor::<f32>::ones(&[1, 1, 4, 4]).unwrap();
        /// let w = Tensor::<f32>::ones(&[2, 1, 3, 3]).unwrap();
        /// let y = x.conv2d(&w, None, Conv2dParams::default().with_padding(1, 1)).unwrap();
        /// assert_eq!(y.dims(), &[1, 2, 4, 4]);
        /// assert_eq!(y.get(&[0, 1, 0, 0]).unwrap(), 4.0); // a corner sees 2x2 ones
        /// ```
        pub fn conv2d(
            &self,
            weight: &Tensor<T>,
            bias: Option<&Tensor<T>>,
            params: Conv2dParams,
        ) -> Result<Tensor<T>> {
            let g = Conv2dGeometry::new(*self.shape(), *weight.shape(), params)?;
            if let Some(b) = bias {
                if b.dims() != [g.c_out] {
                    return Err(Error::ShapeMismatch {
                        op: OP,
                        lhs: *weight.shape(),
                        rhs: *b.shape(),
                        why: "bias must be [c_out], c_out = weight dim 0",
                    });
                }
            }
            let out_shape = g.output_shape();
            let mut out = vec![T::ZERO; out_shape.numel()];
            let (x, w, b) = (self.data(), weight.data(), bias.map(|b| b.data()));
            #[cfg(feature = "std")]
            conv2d_par(&g, x, w, b, &mut out)?;
            #[cfg(not(feature = "std"))]
            conv2d(&g, x, w, b, &mut out, &mut vec![T::ZERO; g.workspace_len()])?;
            Tensor::from_shape_vec(out_shape, out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_length_formula() {
        // (5 + 2*1 - 1*(3-1) - 1) / 2 + 1 = 3
        assert_eq!(conv_out_len(5, 3, 2, 1, 1), Some(3));
        // Dilation 2 makes a 3-tap kernel span 5 > 4: no output.
        assert_eq!(conv_out_len(4, 3, 1, 0, 2), None);
        assert_eq!(conv_out_len(4, 3, 1, 1, 2), Some(2));
    }

    #[test]
    fn valid_output_ranges() {
        // 4 outputs, stride 1, tap offset 0, pad 1, width 4: output 0 reads column -1.
        assert_eq!(valid_outputs(4, 1, 0, 1, 4), (1, 4));
        // Tap offset 2 with pad 1 reads columns o + 1: the last output falls off.
        assert_eq!(valid_outputs(4, 1, 2, 1, 4), (0, 3));
        // Stride 2, pad 2, offset 0: columns 2o - 2, valid for o = 1, 2 (width 3).
        assert_eq!(valid_outputs(3, 2, 0, 2, 3), (1, 3));
        // A tap entirely in the right padding reads nothing.
        assert_eq!(valid_outputs(1, 1, 4, 2, 1), (0, 0));
    }
}
