//! 2-D convolution (cross-correlation, as PyTorch's `conv2d`) on NCHW slices, as
//! im2col + gemm, with its two backward passes.
//!
//! Shapes: input `[n, c_in, h, w]`, weight `[c_out, c_in / groups, kh, kw]`, bias
//! `[c_out]`, output `[n, c_out, out_h, out_w]` with
//! `out_h = (h + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1` (likewise `out_w`).
//!
//! `y[b, o, i, j] = bias[o] + sum_{c, u, v} w[o, c, u, v] * x[b, c, i*s_h + u*d_h - p_h, j*s_w + v*d_w - p_w]`
//! (padding reads as zero). With `groups` channel groups ([`Conv2dParams::groups`],
//! PyTorch's), output channel `o` lies in group `k = o / (c_out / groups)`, `c` runs
//! over `0..c_in / groups` only, and `x[b, c, ..]` reads input channel
//! `k * c_in / groups + c`. One group is a dense convolution; `groups == c_in` a
//! depthwise one.
//!
//! Per image, [`im2col`] lays the receptive fields out as a `[c_in*kh*kw, out_h*out_w]`
//! matrix `X_col`, so that `Y = W X_col` (with `W` viewed as `[c_out, c_in*kh*kw]`):
//! - forward: `Y = W X_col + bias`;
//! - input gradient: `dX = col2im(W^T dY)`;
//! - weight gradient: `dW = sum_b dY_b X_col_b^T`, `dbias = sum_{b, i, j} dY`.
//!
//! With groups the same three products run once per group `k`, on its contiguous
//! blocks: its weight rows `W_k` (`[c_out/groups, c_in/groups*kh*kw]`), its run of
//! `X_col` rows and its output channels `Y_k` (NCHW keeps each image's channels of
//! a group together), e.g. `Y_k = W_k X_col_k + bias_k`.
//!
//! The kernels allocate nothing: the caller passes a workspace of
//! [`Conv2dGeometry::workspace_len`] elements (one image's `X_col`; zero for a 1x1
//! convolution with stride 1 and no padding, whose `X_col` is the image itself).
//! Under `std`, the `*_par` variants split the work over rayon's threads (allocating a
//! scratch buffer per task) and give bit-identical results.
//!
//! The `*_direct` kernels ([`conv2d_direct`], [`conv2d_backward_input_direct`],
//! [`conv2d_backward_weight_direct`]) are the fast path for stride-1, dilation-1
//! convolutions ([`Conv2dGeometry::is_direct`]; other geometries fall back to the
//! kernels above): no `X_col` at all (groups run one after another on each padded
//! image). Each tap's row of `X_col` is a contiguous slice of the zero-padded image
//! (at offset `c*hp*wp + u*wp + v` from the output's place `i*wp + j`), so register
//! tiles read the padded image directly; the input gradient
//! is the same correlation of the padded `grad_out` with the flipped kernel; the
//! weight gradient is dot products of `grad_out` rows with those slices. For f32 on
//! AVX-512 the inner kernels are written with intrinsics (LLVM does not find the
//! register tiling in the generic code, which the other types and CPUs run). Under
//! `std` the work is split over dl-core's thread pool (the gemm's) in parts whose results never depend
//! on the split, and the workspace ([`Conv2dGeometry::direct_workspace_len`]) holds
//! every part's buffers, so nothing is allocated. Used by dl-autograd's `conv2d`.
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

/// Hyper-parameters of a 2-D convolution: stride, padding and dilation as
/// `(height, width)`, and the number of channel groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between neighbouring windows; `>= 1`.
    pub stride: (usize, usize),
    /// Zeros added on each side of the input.
    pub padding: (usize, usize),
    /// Spacing between kernel taps (1 = a dense kernel); `>= 1`.
    pub dilation: (usize, usize),
    /// Channel groups (PyTorch's `groups`); `>= 1`, dividing both channel counts
    /// (checked by [`Conv2dGeometry::new`]). Input and output channels are cut into
    /// `groups` equal runs, and output run `k` sees only input run `k`: the weight is
    /// `[c_out, c_in / groups, kh, kw]`. 1 is a dense convolution; `groups == c_in`
    /// a depthwise one.
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, no dilation, one group (PyTorch's defaults).
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
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

    /// The same parameters with `groups` channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Errors (naming the parameter) unless stride, dilation and groups are `>= 1`.
    pub fn validate(&self) -> Result<()> {
        let (s, d) = (self.stride, self.dilation);
        let settings = [
            ("stride", s.0),
            ("stride", s.1),
            ("dilation", d.0),
            ("dilation", d.1),
            ("groups", self.groups),
        ];
        match settings.into_iter().find(|&(_, v)| v == 0) {
            Some((name, _)) => Err(Error::InvalidParameter {
                op: "Conv2dParams",
                name,
                value: 0.0,
                valid: ">= 1",
            }),
            None => Ok(()),
        }
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
    /// Stride, padding, dilation and groups.
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
    /// Checks an NCHW `input` shape against a `[c_out, c_in / groups, kh, kw]`
    /// `weight` shape and `params`, and works out the output size. Errors name
    /// `conv2d` and both shapes: wrong ranks, disagreeing channel counts (input
    /// channels must be `groups` times weight dim 1, output channels a multiple of
    /// `groups`), an empty kernel or channel dimension, or a (dilated) kernel larger
    /// than the padded input. A batch of 0 images is allowed (the kernels then have
    /// nothing to do).
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
        let groups = params.groups;
        if groups == 1 && i[1] != k[1] {
            return Err(mismatch("input channels (dim 1) must equal weight dim 1"));
        }
        if k[1].checked_mul(groups) != Some(i[1]) {
            return Err(mismatch(
                "input channels (dim 1) must equal weight dim 1 times groups",
            ));
        }
        if k.contains(&0) {
            return Err(mismatch("weight dimensions must be non-zero"));
        }
        if !k[0].is_multiple_of(groups) {
            return Err(mismatch(
                "output channels (weight dim 0) must be a multiple of groups",
            ));
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

    /// `[c_out, c_in / groups, kh, kw]`.
    pub fn weight_shape(&self) -> Shape {
        Shape::from([self.c_out, self.group_in(), self.kh, self.kw])
    }

    /// `[n, c_out, out_h, out_w]`.
    pub fn output_shape(&self) -> Shape {
        Shape::from([self.n, self.c_out, self.out_h, self.out_w])
    }

    /// Rows of one image's `X_col`: `c_in * kh * kw`. With groups, the rows of group
    /// `k` are the `k`-th run of [`Conv2dGeometry::group_col_rows`].
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Rows of one group's block of `X_col`, `c_in / groups * kh * kw`: the gemm's
    /// inner dimension and the length of a weight row (`col_rows()` with one group).
    pub fn group_col_rows(&self) -> usize {
        self.group_in() * self.kh * self.kw
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

    /// Input channels per group. (`new` checked `groups >= 1`; `max(1)` keeps a
    /// geometry built by hand with 0 from dividing by zero, and the division from
    /// needing a panic path, which changed how the one-group kernels compiled.)
    fn group_in(&self) -> usize {
        self.c_in / self.params.groups.max(1)
    }

    /// Output channels per group.
    fn group_out(&self) -> usize {
        self.c_out / self.params.groups.max(1)
    }

    /// Elements of the weight: `c_out * c_in / groups * kh * kw`.
    fn weight_len(&self) -> usize {
        self.c_out * self.group_col_rows()
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
/// or 0 in the padding. Overwrites `col`. Groups do not change it: group `k`'s
/// `X_col` is the `k`-th run of [`Conv2dGeometry::group_col_rows`] rows.
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
    check_len("weight", g.weight_len(), weight.len())?;
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
    let (p, r, c_out) = (g.col_cols(), g.group_col_rows(), g.group_out());
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
        // Group k: its weight rows times its run of X_col rows give its output
        // channels (one product over everything when there is one group).
        let groups = weight
            .chunks_exact(c_out * r)
            .zip(col.chunks_exact(r * p))
            .zip(y.chunks_exact_mut(c_out * p));
        for ((w, col), y) in groups {
            gemm(false, false, c_out, p, r, T::ONE, w, col, beta, y)?;
        }
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
    check_len("weight", g.weight_len(), weight.len())?;
    check_len("grad_input", g.n * g.image_len(), grad_input.len())
}

/// Gradient with respect to the input: `grad_input = col2im(W^T grad_out)` per image
/// (per group: `W_k^T grad_out_k` fills group `k`'s rows of the column matrix).
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
    let (p, r, c_out) = (g.col_cols(), g.group_col_rows(), g.group_out());
    let gys = grad_out.chunks_exact(g.out_image_len());
    for (gy, gx) in gys.zip(grad_input.chunks_exact_mut(g.image_len())) {
        // A pointwise convolution's X_col is the image itself.
        let col: &mut [T] = if g.is_pointwise() { &mut *gx } else { &mut *ws };
        let groups = weight
            .chunks_exact(c_out * r)
            .zip(gy.chunks_exact(c_out * p))
            .zip(col.chunks_exact_mut(r * p));
        for ((w, gy), col) in groups {
            gemm(true, false, r, p, c_out, T::ONE, w, gy, T::ZERO, col)?;
        }
        if !g.is_pointwise() {
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
    check_len("grad_weight", g.weight_len(), grad_weight.len())?;
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
    weight_grad_groups(g, input, grad_out, grad_weight, ws)?;
    if let Some(gb) = grad_bias {
        bias_grad(g, grad_out, gb);
    }
    Ok(())
}

/// The whole weight gradient, group by group (each group's rows of `dW` are
/// contiguous); `ws` holds one image's `X_col`.
fn weight_grad_groups<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    ws: &mut [T],
) -> Result<()> {
    let rows = g.group_out() * g.group_col_rows();
    for (k, block) in grad_weight.chunks_exact_mut(rows).enumerate() {
        weight_grad_channels(g, k, 0..g.group_in(), input, grad_out, block, ws)?;
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

/// The weight gradient of group `group` restricted to its input channels `channels`
/// (counted within the group): the column block `[c_out/groups, channels.len()*kh*kw]`
/// of the group's rows of `dW` (viewed as `[c_out/groups, c_in/groups*kh*kw]`),
/// written to `grad_block` (contiguous). The serial path asks for all of a group's
/// channels at once; the parallel path gives each task a run of channels (one group)
/// or of whole groups, so every task does the same arithmetic per element as the
/// serial path (results are bit-identical) and no cross-task sum is needed. `ws`
/// holds at least `channels.len()*kh*kw * out_h*out_w` elements (none when pointwise).
fn weight_grad_channels<T: Scalar>(
    g: &Conv2dGeometry,
    group: usize,
    channels: core::ops::Range<usize>,
    input: &[T],
    grad_out: &[T],
    grad_block: &mut [T],
    ws: &mut [T],
) -> Result<()> {
    // The group's channel run as a one-group geometry, for im2col.
    let sub = Conv2dGeometry {
        c_in: channels.len(),
        c_out: g.group_out(),
        params: Conv2dParams {
            groups: 1,
            ..g.params
        },
        ..*g
    };
    let (p, r) = (g.col_cols(), sub.col_rows());
    if g.n == 0 {
        grad_block.fill(T::ZERO);
        return Ok(());
    }
    let ws = &mut ws[..sub.workspace_len()];
    let plane = g.h * g.w;
    let first = group * g.group_in();
    let out_rows = group * sub.c_out * p..(group + 1) * sub.c_out * p;
    let images = input.chunks_exact(g.image_len());
    for (b, (x, gy)) in images
        .zip(grad_out.chunks_exact(g.out_image_len()))
        .enumerate()
    {
        let x = &x[(first + channels.start) * plane..(first + channels.end) * plane];
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
            sub.c_out,
            r,
            p,
            T::ONE,
            &gy[out_rows.clone()],
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
    /// channels, or of whole groups when there are several (not by images: a split
    /// over images would need a cross-task sum whose rounding depended on the thread
    /// count). Same checks and results.
    pub fn conv2d_backward_weight_par<T: Scalar>(
        g: &Conv2dGeometry,
        input: &[T],
        grad_out: &[T],
        grad_weight: &mut [T],
        grad_bias: Option<&mut [T]>,
    ) -> Result<()> {
        check_backward_weight(g, input, grad_out, grad_weight, grad_bias.as_deref())?;
        if g.params.groups > 1 {
            weight_grad_by_group_runs(g, input, grad_out, grad_weight)?;
        } else {
            weight_grad_by_channel_runs(g, input, grad_out, grad_weight)?;
        }
        if let Some(gb) = grad_bias {
            bias_grad(g, grad_out, gb);
        }
        Ok(())
    }

    /// A grouped weight gradient, each task writing the rows of a run of whole groups
    /// in place.
    fn weight_grad_by_group_runs<T: Scalar>(
        g: &Conv2dGeometry,
        input: &[T],
        grad_out: &[T],
        grad_weight: &mut [T],
    ) -> Result<()> {
        let groups = g.params.groups;
        let per = groups.div_ceil(tasks(groups));
        let rows = g.group_out() * g.group_col_rows();
        let ws_len = if g.is_pointwise() {
            0
        } else {
            g.group_col_rows() * g.col_cols()
        };
        grad_weight
            .par_chunks_mut(per * rows)
            .enumerate()
            .try_for_each(|(task, blocks)| {
                let mut ws = vec![T::ZERO; ws_len];
                for (j, block) in blocks.chunks_exact_mut(rows).enumerate() {
                    let k = task * per + j;
                    weight_grad_channels(g, k, 0..g.group_in(), input, grad_out, block, &mut ws)?;
                }
                Ok(())
            })
    }

    /// A one-group weight gradient, each task computing the columns of a run of
    /// input channels, copied into place at the end.
    fn weight_grad_by_channel_runs<T: Scalar>(
        g: &Conv2dGeometry,
        input: &[T],
        grad_out: &[T],
        grad_weight: &mut [T],
    ) -> Result<()> {
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
                weight_grad_channels(g, 0, channels, input, grad_out, &mut block, &mut ws)?;
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
        Ok(())
    }
}

#[cfg(feature = "std")]
pub use parallel::{conv2d_backward_input_par, conv2d_backward_weight_par, conv2d_par};

// ---------------------------------------------------------------------------------
// Direct kernels: stride 1, dilation 1, no im2col.

/// Most parts a direct kernel splits a pass into, and keeps workspace for.
#[cfg(feature = "std")]
const MAX_PARTS: usize = 8;
/// Without std the direct kernels run on the calling thread: one part.
#[cfg(not(feature = "std"))]
const MAX_PARTS: usize = 1;

/// Lanes of the widest vector (64 bytes): the most the weight gradient's lane-wise
/// accumulators use, so workspace sized with it fits every instruction set.
fn max_lanes<T>() -> usize {
    (64 / core::mem::size_of::<T>()).max(1)
}

/// The instruction set the direct kernels run with, picked at run time (under std).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn isa() -> Isa {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    {
        let fma = std::is_x86_feature_detected!("fma");
        if fma && std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if fma && std::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    #[cfg(all(target_arch = "x86_64", not(feature = "std")))]
    {
        if cfg!(all(target_feature = "fma", target_feature = "avx512f")) {
            return Isa::Avx512;
        }
        if cfg!(all(target_feature = "fma", target_feature = "avx2")) {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// Output rows per register tile of the correlation kernel for `rows` output
/// channels of `T` (the weight packing follows it). The AVX-512 f32 kernel comes in
/// 8, 6 and 4 rows: whichever pads `rows` least (6 channels, as LeNet's first layer,
/// would waste a quarter of an 8-row tile).
fn wide_mr<T: 'static>(isa: Isa, rows: usize) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>() => {
            let padded = |mr: usize| rows.div_ceil(mr) * mr;
            [8, 6, 4]
                .into_iter()
                .min_by_key(|&mr| padded(mr))
                .unwrap_or(8)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => 8,
        _ => {
            let _ = rows; // one tile height off x86-64
            4
        }
    }
}

/// Lanes and output-channel rows per tile of the weight-gradient kernel.
fn dot_shape<T>(isa: Isa) -> (usize, usize) {
    let bytes = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => 64,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => 32,
        _ => 16,
    };
    let mo = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => 4,
        _ => 2,
    };
    ((bytes / core::mem::size_of::<T>()).max(1), mo)
}

/// The sizes the direct kernels work with. The input is copied into a zero-padded
/// `[c_in, hp, wp]` image; with stride 1, output `(i, j)` then reads tap `(c, u, v)`
/// at `c*hp*wp + u*wp + v + q` with `q = i*wp + j`, so each tap's row of the
/// implicit `X_col` is a contiguous slice of the padded image. The kernels compute
/// this "wide" output for every `q < qw` (the `wp - out_w` columns past each row's
/// end are thrown away) and never materialize `X_col`.
#[derive(Clone, Copy, Debug)]
struct Direct {
    hp: usize,
    wp: usize,
    /// `c_in * hp * wp`.
    xpad: usize,
    /// `(out_h - 1) * wp + out_w`: wide positions up to the last real output.
    qw: usize,
    /// The input gradient is the same correlation run on `grad_out` padded by
    /// `k - 1 - pad` into `[c_out, hq, wq]`, with the kernel flipped.
    hq: usize,
    wq: usize,
    /// `c_out * hq * wq`.
    dypad: usize,
    /// `(h - 1) * wq + w`.
    qx: usize,
}

impl Conv2dGeometry {
    /// Whether the direct kernels apply: stride 1, dilation 1, padding below the kernel
    /// size, and not pointwise (which needs no im2col anyway).
    pub fn is_direct(&self) -> bool {
        self.params.stride == (1, 1)
            && self.params.dilation == (1, 1)
            && self.params.padding.0 < self.kh
            && self.params.padding.1 < self.kw
            && !self.is_pointwise()
    }

    fn direct(&self) -> Direct {
        let (ph, pw) = self.params.padding;
        let (hp, wp) = (self.h + 2 * ph, self.w + 2 * pw);
        let (hq, wq) = (self.h + self.kh - 1, self.w + self.kw - 1);
        Direct {
            hp,
            wp,
            xpad: self.c_in * hp * wp,
            qw: (self.out_h - 1) * wp + self.out_w,
            hq,
            wq,
            dypad: self.c_out * hq * wq,
            qx: (self.h - 1) * wq + self.w,
        }
    }

    /// Elements of scratch the `*_direct` kernels need: for a geometry where they
    /// apply ([`Conv2dGeometry::is_direct`]), packed weights and per-part padded
    /// images and wide outputs (a few images' worth under std, one without); otherwise
    /// [`Conv2dGeometry::workspace_len`], as they fall back to im2col + gemm.
    pub fn direct_workspace_len(&self) -> usize {
        if !self.is_direct() {
            return self.workspace_len();
        }
        let d = self.direct();
        let r = self.group_col_rows();
        let (groups, c_in, c_out) = (self.params.groups, self.group_in(), self.group_out());
        // The most lanes any kernel uses (f32 in 64-byte vectors); the others divide it.
        let lanes = 16;
        let round = |len: usize, to: usize| len.div_ceil(to) * to;
        // Weights packed per group; per part a padded image and one group's wide result.
        let forward = groups * round(c_out, 8) * r + MAX_PARTS * (d.xpad + c_out * d.qw);
        let backward_input = groups * round(c_in, 8) * c_out * self.kh * self.kw
            + MAX_PARTS * (d.dypad + c_in * d.qx);
        let backward_weight = self.c_out * r * lanes
            + MAX_PARTS * (d.xpad + lanes + round(self.c_out, 8) * round(d.qw, lanes));
        forward.max(backward_input).max(backward_weight)
    }
}

/// `a * b + c`, fused when the kernel is compiled with FMA (the same choice for every
/// element of a call, so results do not depend on how the work is tiled).
#[inline(always)]
fn fmadd<T: Scalar, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The first `N` elements of `s` as an array (the callers size every slice).
#[inline(always)]
fn arr<T, const N: usize>(s: &[T]) -> &[T; N] {
    s.first_chunk::<N>()
        .expect("direct conv kernel: slice sized by its caller")
}

/// One wide correlation: `dst[o, q] = sum_{c,u,v} w[o, (c*kh + u)*kw + v] *
/// src[c*plane + u*row + v + q]` for `o < c_dst`, `q < len`.
#[derive(Clone, Copy)]
struct Wide {
    c_src: usize,
    c_dst: usize,
    kh: usize,
    kw: usize,
    plane: usize,
    row: usize,
    len: usize,
    /// Rows of each `src` plane outside this range are all padding (zeros): taps
    /// that would only read them can be skipped (the AVX-512 kernels do).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    data_rows: (usize, usize),
}

/// Packs `w` (`rows x r`, row-major) in blocks of `mr` rows, tap-major within a block
/// (`dst[(b*r + k)*mr + i] = w[b*mr + i, k]`), repeating the last row to fill the
/// final block; `at(row, k)` reads the weight.
fn pack_rows<T: Scalar>(
    rows: usize,
    r: usize,
    mr: usize,
    dst: &mut [T],
    at: impl Fn(usize, usize) -> T,
) {
    for (b, block) in dst
        .chunks_exact_mut(r * mr)
        .take(rows.div_ceil(mr))
        .enumerate()
    {
        for (k, taps) in block.chunks_exact_mut(mr).enumerate() {
            for (i, t) in taps.iter_mut().enumerate() {
                *t = at((b * mr + i).min(rows - 1), k);
            }
        }
    }
}

/// `[rows, r]` to `[r, rows]` (the weight of the channels-in-lanes kernel: one vector
/// of 16 channels per tap). Not inlined, so that it compiles the same way in every
/// caller.
#[inline(never)]
fn transpose_rows<T: Scalar>(w: &[T], r: usize, rows: usize, dst: &mut [T]) {
    for (k, taps) in dst.chunks_exact_mut(rows).take(r).enumerate() {
        for (o, t) in taps.iter_mut().enumerate() {
            *t = w[o * r + k];
        }
    }
}

/// Packs one group's kernel for the input gradient as [`pack_rows`] packs
/// `W'[c, (o, u', v')] = W[o, c, kh-1-u', kw-1-v']` (`c_in` rows of `c_out*kk` taps):
/// the flipped tap `(kh-1-u')*kw + kw-1-v'` is `kk-1-t` for `t = u'*kw + v'`, so
/// the loops need no division. `weight` is the group's `[c_out, c_in*kk]` rows.
fn pack_flipped<T: Scalar>(
    weight: &[T],
    (c_in, c_out, kk): (usize, usize, usize),
    mr: usize,
    dst: &mut [T],
) {
    let (r, rt) = (c_in * kk, c_out * kk);
    for (b, block) in dst
        .chunks_exact_mut(rt * mr)
        .take(c_in.div_ceil(mr))
        .enumerate()
    {
        for (o, w) in weight.chunks_exact(r).take(c_out).enumerate() {
            for t in 0..kk {
                let taps = &mut block[(o * kk + t) * mr..][..mr];
                for (i, tap) in taps.iter_mut().enumerate() {
                    let c = (b * mr + i).min(c_in - 1);
                    *tap = w[c * kk + kk - 1 - t];
                }
            }
        }
    }
}

/// The wide correlation over column tiles of `NR` positions from `q0` on, while a
/// whole tile fits; returns where it stopped. The accumulators of an `MR x NR` tile
/// stay in registers over all taps; each tap reads one contiguous `NR` slice of
/// `src` and `MR` packed weights.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // indexed loops over fixed sizes vectorize as planned
fn wide_cols<T: Scalar, const FMA: bool, const MR: usize, const NR: usize>(
    d: &Wide,
    wpack: &[T],
    src: &[T],
    dst: &mut [T],
    mut q0: usize,
) -> usize {
    let r = d.c_src * d.kh * d.kw;
    while q0 + NR <= d.len {
        for (ob, wblock) in wpack
            .chunks_exact(r * MR)
            .take(d.c_dst.div_ceil(MR))
            .enumerate()
        {
            let mut acc = [[T::ZERO; NR]; MR];
            let mut taps = wblock.chunks_exact(MR);
            for c in 0..d.c_src {
                for u in 0..d.kh {
                    let base = c * d.plane + u * d.row + q0;
                    let seg = &src[base..base + d.kw - 1 + NR];
                    for v in 0..d.kw {
                        let b: &[T; NR] = arr(&seg[v..]);
                        let a: &[T; MR] = arr(taps.next().unwrap_or(&[]));
                        for i in 0..MR {
                            for j in 0..NR {
                                acc[i][j] = fmadd::<T, FMA>(a[i], b[j], acc[i][j]);
                            }
                        }
                    }
                }
            }
            let o0 = ob * MR;
            for (i, row) in acc.iter().enumerate().take(d.c_dst - o0) {
                dst[(o0 + i) * d.len + q0..][..NR].copy_from_slice(row);
            }
        }
        q0 += NR;
    }
    q0
}

/// The whole wide correlation: tiles of `NR`, then narrower ones for the tail.
#[inline(always)]
fn wide_all<T: Scalar, const FMA: bool, const MR: usize, const NR: usize>(
    d: &Wide,
    wpack: &[T],
    src: &[T],
    dst: &mut [T],
) {
    let q = wide_cols::<T, FMA, MR, NR>(d, wpack, src, dst, 0);
    let q = wide_cols::<T, FMA, MR, 16>(d, wpack, src, dst, q);
    let q = wide_cols::<T, FMA, MR, 8>(d, wpack, src, dst, q);
    let q = wide_cols::<T, FMA, MR, 4>(d, wpack, src, dst, q);
    wide_cols::<T, FMA, MR, 1>(d, wpack, src, dst, q);
}

/// The weight gradient of output rows `0..rows` (of this part) against every tap:
/// `acc[o, k, l] += sum_{q = l mod L} dy[o, q] * x[off(k) + q]`, lane-wise over
/// `qpad` positions (a multiple of `L`), `MO x NK` rows and taps per register tile.
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
fn dot_rows<T: Scalar, const FMA: bool, const L: usize, const MO: usize, const NK: usize>(
    rows: usize,
    taps: (usize, usize, usize),
    plane: usize,
    row: usize,
    qpad: usize,
    dy: &[T],
    x: &[T],
    acc: &mut [T],
) {
    let (c_in, kh, kw) = taps;
    let r = c_in * kh * kw;
    for o0 in (0..rows).step_by(MO) {
        let orow: [usize; MO] = core::array::from_fn(|i| (o0 + i).min(rows - 1));
        for k0 in (0..r).step_by(NK) {
            let kcol: [usize; NK] = core::array::from_fn(|j| (k0 + j).min(r - 1));
            let off: [usize; NK] = core::array::from_fn(|j| {
                let (c, t) = (kcol[j] / (kh * kw), kcol[j] % (kh * kw));
                c * plane + (t / kw) * row + t % kw
            });
            let mut a = [[[T::ZERO; L]; NK]; MO];
            for i in 0..MO {
                for j in 0..NK {
                    a[i][j] = *arr(&acc[(orow[i] * r + kcol[j]) * L..]);
                }
            }
            for q in (0..qpad).step_by(L) {
                let yv: [&[T; L]; MO] = core::array::from_fn(|i| arr(&dy[orow[i] * qpad + q..]));
                let xv: [&[T; L]; NK] = core::array::from_fn(|j| arr(&x[off[j] + q..]));
                for i in 0..MO {
                    for j in 0..NK {
                        for l in 0..L {
                            a[i][j][l] = fmadd::<T, FMA>(yv[i][l], xv[j][l], a[i][j][l]);
                        }
                    }
                }
            }
            for (i, ai) in a.iter().enumerate().take(rows - o0) {
                for (j, aij) in ai.iter().enumerate().take(r - k0) {
                    acc[(orow[i] * r + kcol[j]) * L..][..L].copy_from_slice(aij);
                }
            }
        }
    }
}

/// Instantiations of the kernels per instruction set: the generic bodies inline into
/// functions compiled with the features (where LLVM vectorizes them, if not always
/// well), and f32 with AVX-512 goes to the intrinsics of [`avx512`].
mod isa_kernels {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    /// `x` as `&[U]` when `T` is `U`.
    pub(super) fn cast<T: 'static, U: 'static>(x: &[T]) -> Option<&[U]> {
        (core::any::TypeId::of::<T>() == core::any::TypeId::of::<U>()).then(|| {
            // SAFETY: `T` and `U` are the same type.
            unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<U>(), x.len()) }
        })
    }

    #[cfg(target_arch = "x86_64")]
    /// `x` as `&mut [U]` when `T` is `U`.
    pub(super) fn cast_mut<T: 'static, U: 'static>(x: &mut [T]) -> Option<&mut [U]> {
        (core::any::TypeId::of::<T>() == core::any::TypeId::of::<U>()).then(|| {
            // SAFETY: `T` and `U` are the same type; the unique borrow moves into the result.
            unsafe { core::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<U>(), x.len()) }
        })
    }

    /// The correlation `d` written compactly to `out` (`[c_dst, oh, ow]`, plus
    /// `bias[channel]` if given): straight from the register tiles for f32 with
    /// AVX-512, else through the wide buffer `wbuf` (`[c_dst, d.len]`) and [`compact`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn correlate<T: Scalar>(
        isa: Isa,
        d: &Wide,
        wpack: &[T],
        src: &[T],
        wbuf: &mut [T],
        out: &mut [T],
        (oh, ow): (usize, usize),
        bias: Option<&[T]>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 {
            if let (Some(w), Some(s), Some(o)) = (cast(wpack), cast(src), cast_mut(out)) {
                use super::avx512::rows_f32;
                let b = bias.and_then(cast::<T, f32>);
                let dims = (oh, ow);
                // SAFETY: `isa()` detected AVX-512F; `wpack` is packed with
                // `wide_mr(isa, d.c_dst)` rows, the tile height picked here.
                return unsafe {
                    match wide_mr::<f32>(isa, d.c_dst) {
                        6 => rows_f32::<6>(d, w, s, o, dims, b),
                        4 => rows_f32::<4>(d, w, s, o, dims, b),
                        _ => rows_f32::<8>(d, w, s, o, dims, b),
                    }
                };
            }
        }
        wide(isa, d, wpack, src, wbuf);
        compact(wbuf, d.len, d.row, (oh, ow), bias, out);
    }

    /// [`correlate`] with the channels-in-lanes kernel (only called when
    /// [`forward_by_channels`] holds: f32, AVX-512). `wt` is `[r, c_dst]`.
    pub(super) fn correlate_by_channels<T: Scalar>(
        d: &Wide,
        wt: &[T],
        src: &[T],
        out: &mut [T],
        (oh, ow): (usize, usize),
        bias: Option<&[T]>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(w), Some(s), Some(o)) = (cast(wt), cast(src), cast_mut(out)) {
            use super::avx512::by_channels_fwd_f32 as k;
            let b = bias.and_then(cast::<T, f32>);
            let dims = (oh, ow);
            // Positions per tile: whichever of these pads a row of `ow` least.
            let pt = [16, 14, 12, 10, 8, 6, 4]
                .into_iter()
                .min_by_key(|&pt| ow.div_ceil(pt) * pt)
                .unwrap_or(8);
            // SAFETY: `forward_by_channels` checked AVX-512F; the slices are sized by
            // the caller.
            unsafe {
                match pt {
                    16 => k::<16>(d, w, s, o, dims, b),
                    14 => k::<14>(d, w, s, o, dims, b),
                    12 => k::<12>(d, w, s, o, dims, b),
                    10 => k::<10>(d, w, s, o, dims, b),
                    6 => k::<6>(d, w, s, o, dims, b),
                    4 => k::<4>(d, w, s, o, dims, b),
                    _ => k::<8>(d, w, s, o, dims, b),
                }
            }
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (d, wt, src, out, (oh, ow), bias);
        unreachable!("correlate_by_channels runs only for f32 with AVX-512")
    }

    fn wide<T: Scalar>(isa: Isa, d: &Wide, wpack: &[T], src: &[T], dst: &mut [T]) {
        let f32 = core::mem::size_of::<T>() == 4;
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected the features these functions are compiled for.
            Isa::Avx512 => unsafe { wide_avx512(f32, d, wpack, src, dst) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { wide_avx2(f32, d, wpack, src, dst) },
            Isa::Portable if f32 => wide_all::<T, false, 4, 8>(d, wpack, src, dst),
            Isa::Portable => wide_all::<T, false, 4, 4>(d, wpack, src, dst),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn wide_avx512<T: Scalar>(f32: bool, d: &Wide, wpack: &[T], src: &[T], dst: &mut [T]) {
        if f32 {
            wide_all::<T, true, 8, 32>(d, wpack, src, dst)
        } else {
            wide_all::<T, true, 8, 16>(d, wpack, src, dst)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn wide_avx2<T: Scalar>(f32: bool, d: &Wide, wpack: &[T], src: &[T], dst: &mut [T]) {
        if f32 {
            wide_all::<T, true, 4, 16>(d, wpack, src, dst)
        } else {
            wide_all::<T, true, 4, 8>(d, wpack, src, dst)
        }
    }

    /// [`dot_rows`] with the lanes and rows of [`dot_shape`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dot<T: Scalar>(
        isa: Isa,
        rows: usize,
        taps: (usize, usize, usize),
        plane: usize,
        row: usize,
        qpad: usize,
        dy: &[T],
        x: &[T],
        acc: &mut [T],
    ) {
        let f32 = core::mem::size_of::<T>() == 4;
        #[cfg(target_arch = "x86_64")]
        if isa == Isa::Avx512 {
            if let (Some(y), Some(xs), Some(a)) = (cast(dy), cast(x), cast_mut(acc)) {
                // SAFETY: `isa()` detected AVX-512F.
                return unsafe { super::avx512::dot_f32(rows, taps, plane, row, qpad, y, xs, a) };
            }
        }
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected the features these functions are compiled for.
            Isa::Avx512 => unsafe { dot_avx512(f32, rows, taps, plane, row, qpad, dy, x, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2 => unsafe { dot_avx2(f32, rows, taps, plane, row, qpad, dy, x, acc) },
            Isa::Portable if f32 => {
                dot_rows::<T, false, 4, 2, 4>(rows, taps, plane, row, qpad, dy, x, acc)
            }
            Isa::Portable => {
                dot_rows::<T, false, 2, 2, 4>(rows, taps, plane, row, qpad, dy, x, acc)
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dot_avx512<T: Scalar>(
        f32: bool,
        rows: usize,
        taps: (usize, usize, usize),
        plane: usize,
        row: usize,
        qpad: usize,
        dy: &[T],
        x: &[T],
        acc: &mut [T],
    ) {
        if f32 {
            dot_rows::<T, true, 16, 4, 4>(rows, taps, plane, row, qpad, dy, x, acc)
        } else {
            dot_rows::<T, true, 8, 4, 4>(rows, taps, plane, row, qpad, dy, x, acc)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dot_avx2<T: Scalar>(
        f32: bool,
        rows: usize,
        taps: (usize, usize, usize),
        plane: usize,
        row: usize,
        qpad: usize,
        dy: &[T],
        x: &[T],
        acc: &mut [T],
    ) {
        if f32 {
            dot_rows::<T, true, 8, 2, 4>(rows, taps, plane, row, qpad, dy, x, acc)
        } else {
            dot_rows::<T, true, 4, 2, 4>(rows, taps, plane, row, qpad, dy, x, acc)
        }
    }
}

/// The two kernels for f32 with AVX-512F intrinsics: the generic versions leave LLVM
/// to find the register tiling, which it does not for the wide tile. Each element gets
/// the same fused multiply-adds in the same order as in the generic kernels; row tails
/// use masked loads and stores rather than narrower tiles.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Wide;
    use core::arch::x86_64::*;

    /// Mask of the first `n` of 16 lanes.
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            0xffff
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// The correlation of `d` for f32, written straight into the compact output
    /// `out` (`[c_dst, oh, ow]`) with `bias` added: the outputs are cut into segments
    /// of at most 16 columns of one output row, and a register tile is `MR` channels
    /// by two segments (masked loads and stores for short ones), so no column past a
    /// row's end is computed beyond the mask.
    ///
    /// # Safety
    /// The CPU must support AVX-512F. `wpack` is packed in blocks of `MR` rows, `src`
    /// holds `c_src` planes that the taps and outputs stay inside (as for
    /// [`super::wide_all`] with `d.len = (oh - 1) * d.row + ow`).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_f32<const MR: usize>(
        d: &Wide,
        wpack: &[f32],
        src: &[f32],
        out: &mut [f32],
        (oh, ow): (usize, usize),
        bias: Option<&[f32]>,
    ) {
        let r = d.c_src * d.kh * d.kw;
        let blocks = d.c_dst.div_ceil(MR);
        assert!(wpack.len() >= blocks * MR * r && out.len() >= d.c_dst * oh * ow);
        assert!(oh >= 1 && ow >= 1 && (oh - 1) * d.row + ow <= d.len);
        assert!(src.len() >= (d.c_src - 1) * d.plane + (d.kh - 1) * d.row + d.kw - 1 + d.len);
        assert!(bias.is_none_or(|b| b.len() >= d.c_dst));
        let (sp, op) = (src.as_ptr(), out.as_mut_ptr());
        let per_row = ow.div_ceil(16);
        let segments = oh * per_row;
        // Segment `s`: output row, first column, and mask of its columns.
        let segment = |s: usize| {
            if s >= segments {
                return (0, 0, 0 as __mmask16);
            }
            let (i, j0) = (s / per_row, (s % per_row) * 16);
            (i, j0, lanes(ow - j0))
        };
        for s0 in (0..segments).step_by(2) {
            let (i0, j0, m0) = segment(s0);
            let (i1, j1, m1) = segment(s0 + 1);
            let (q0, q1) = (i0 * d.row + j0, i1 * d.row + j1);
            for ob in 0..blocks {
                let mut lo = [_mm512_setzero_ps(); MR];
                let mut hi = [_mm512_setzero_ps(); MR];
                if let Some(b) = bias {
                    for i in 0..MR.min(d.c_dst - ob * MR) {
                        lo[i] = _mm512_set1_ps(b[ob * MR + i]);
                        hi[i] = lo[i];
                    }
                }
                // Kernel rows whose source rows are padding for both segments add
                // zeros: skip them (a tile's rows are i0 <= i1).
                let (rows_lo, rows_hi) = d.data_rows;
                let i_last = if m1 == 0 { i0 } else { i1 };
                let u_lo = rows_lo.saturating_sub(i_last);
                let u_hi = d.kh.min(rows_hi.saturating_sub(i0));
                for c in 0..d.c_src {
                    for u in u_lo..u_hi {
                        let mut a = wpack.as_ptr().add((ob * r + (c * d.kh + u) * d.kw) * MR);
                        let tap = sp.wrapping_add(c * d.plane + u * d.row);
                        for v in 0..d.kw {
                            // Masked lanes are not read: short segments stay in bounds.
                            let b0 = _mm512_maskz_loadu_ps(m0, tap.wrapping_add(q0 + v));
                            let b1 = _mm512_maskz_loadu_ps(m1, tap.wrapping_add(q1 + v));
                            for i in 0..MR {
                                let ai = _mm512_set1_ps(*a.add(i));
                                lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
                                hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
                            }
                            a = a.add(MR);
                        }
                    }
                }
                for i in 0..MR.min(d.c_dst - ob * MR) {
                    let plane = op.wrapping_add((ob * MR + i) * oh * ow);
                    _mm512_mask_storeu_ps(plane.wrapping_add(i0 * ow + j0), m0, lo[i]);
                    _mm512_mask_storeu_ps(plane.wrapping_add(i1 * ow + j1), m1, hi[i]);
                }
            }
        }
    }

    /// The forward correlation with 16 output channels in the lanes: a tile is `PT`
    /// neighbouring positions of one output row by 16 channels; per tap one load of
    /// `wt[k, ob..ob + 16]` and `PT` broadcasts of the source. Every lane is a real
    /// output however short the rows; the results are scattered into the channel
    /// planes of `out` (`[c_dst, oh, ow]`). Kernel rows over source rows of padding
    /// are skipped, as in [`rows_f32`].
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `d.c_dst` is a multiple of 16, `wt` is
    /// `[r, c_dst]`, `src` holds the padded image, `c_dst * oh * ow < 2^31`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn by_channels_fwd_f32<const PT: usize>(
        d: &Wide,
        wt: &[f32],
        src: &[f32],
        out: &mut [f32],
        (oh, ow): (usize, usize),
        bias: Option<&[f32]>,
    ) {
        let (r, c_out) = (d.c_src * d.kh * d.kw, d.c_dst);
        assert!(c_out.is_multiple_of(16) && wt.len() >= r * c_out);
        assert!(out.len() >= c_out * oh * ow && c_out * oh * ow < (1 << 31));
        assert!(oh >= 1 && ow >= 1 && (oh - 1) * d.row + ow <= d.len);
        assert!(src.len() >= (d.c_src - 1) * d.plane + (d.kh - 1) * d.row + d.kw - 1 + d.len);
        assert!(bias.is_none_or(|b| b.len() >= c_out));
        let plane_out = (oh * ow) as i32;
        let lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        let scatter = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(plane_out));
        let (wp, sp, op) = (wt.as_ptr(), src.as_ptr(), out.as_mut_ptr());
        for i in 0..oh {
            let (rows_lo, rows_hi) = d.data_rows;
            let u_lo = rows_lo.saturating_sub(i);
            let u_hi = d.kh.min(rows_hi.saturating_sub(i));
            for j0 in (0..ow).step_by(PT) {
                let js: [usize; PT] = core::array::from_fn(|t| (j0 + t).min(ow - 1));
                for ob in (0..c_out).step_by(16) {
                    let init = match bias {
                        Some(b) => _mm512_loadu_ps(b.as_ptr().add(ob)),
                        None => _mm512_setzero_ps(),
                    };
                    let mut acc = [init; PT];
                    for c in 0..d.c_src {
                        for u in u_lo..u_hi {
                            let k0 = (c * d.kh + u) * d.kw;
                            let row = sp.add(c * d.plane + (u + i) * d.row);
                            for v in 0..d.kw {
                                let wv = _mm512_loadu_ps(wp.add((k0 + v) * c_out + ob));
                                let at = row.add(v);
                                for (t, a) in acc.iter_mut().enumerate() {
                                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*at.add(js[t])), wv, *a);
                                }
                            }
                        }
                    }
                    let first = op.add(ob * oh * ow + i * ow + j0);
                    for (t, &a) in acc.iter().enumerate().take(ow - j0) {
                        _mm512_i32scatter_ps::<4>(first.add(t).cast(), scatter, a);
                    }
                }
            }
        }
    }

    /// The widest kernel [`by_channels_f32`] is instantiated for.
    pub(super) const BY_CHANNELS_MAX_KW: usize = 8;

    /// `acc[k, o] += sum_p x[off(k) + q(p)] * dyt[p, o]` for this part's taps: the
    /// `KW` taps of each kernel row `(c, u)` from `row_first` on (`acc` holds
    /// `rows * KW * c_out`), with `off(c, u, v) = c*plane + u*row + v` and
    /// `q(p) = i*row + j` for output `p = (i, j)`; `c_out` a multiple of 16. A
    /// register tile is one kernel row by 16 channels: per output position one load
    /// of `dyt` and `KW` broadcasts from one pointer. Images accumulate in call order.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `x` holds the padded image, `dyt` is
    /// `[oh*ow, c_out]`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn by_channels_f32<const KW: usize>(
        (row_first, kh, (plane, row), (oh, ow), c_out): (
            usize,
            usize,
            (usize, usize),
            (usize, usize),
            usize,
        ),
        dyt: &[f32],
        x: &[f32],
        acc: &mut [f32],
    ) {
        let rows = acc.len() / (KW * c_out);
        assert!(c_out.is_multiple_of(16) && dyt.len() >= oh * ow * c_out);
        let last = (row_first + rows).saturating_sub(1);
        assert!(
            rows == 0
                || (last / kh) * plane + (last % kh) * row + (oh - 1) * row + ow + KW - 1
                    <= x.len()
        );
        let (yp, xp, ap) = (dyt.as_ptr(), x.as_ptr(), acc.as_mut_ptr());
        for kr in 0..rows {
            let (c, u) = ((row_first + kr) / kh, (row_first + kr) % kh);
            let base = c * plane + u * row;
            for ob in (0..c_out).step_by(16) {
                let slot = |v: usize| (kr * KW + v) * c_out + ob;
                let mut a: [__m512; KW] =
                    core::array::from_fn(|v| _mm512_loadu_ps(ap.add(slot(v))));
                for i in 0..oh {
                    let yrow = yp.add(i * ow * c_out + ob);
                    let xrow = xp.add(base + i * row);
                    for j in 0..ow {
                        let yv = _mm512_loadu_ps(yrow.add(j * c_out));
                        for (v, av) in a.iter_mut().enumerate() {
                            let xv = _mm512_set1_ps(*xrow.add(j + v));
                            *av = _mm512_fmadd_ps(xv, yv, *av);
                        }
                    }
                }
                for (v, &av) in a.iter().enumerate() {
                    _mm512_storeu_ps(ap.add(slot(v)), av);
                }
            }
        }
    }

    /// [`super::dot_rows`] for f32 with 16 lanes and 4 x 4 tiles.
    ///
    /// # Safety
    /// The CPU must support AVX-512F. Slices are sized as for [`super::dot_rows`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn dot_f32(
        rows: usize,
        (c_in, kh, kw): (usize, usize, usize),
        plane: usize,
        row: usize,
        qpad: usize,
        dy: &[f32],
        x: &[f32],
        acc: &mut [f32],
    ) {
        const L: usize = 16;
        const MO: usize = 4;
        const NK: usize = 4;
        let r = c_in * kh * kw;
        assert!(qpad.is_multiple_of(L) && dy.len() >= rows * qpad && acc.len() >= rows * r * L);
        let off_max = (c_in - 1) * plane + (kh - 1) * row + kw - 1;
        assert!(x.len() >= off_max + qpad);
        let (yp, xp, ap) = (dy.as_ptr(), x.as_ptr(), acc.as_mut_ptr());
        for o0 in (0..rows).step_by(MO) {
            let orow: [usize; MO] = core::array::from_fn(|i| (o0 + i).min(rows - 1));
            for k0 in (0..r).step_by(NK) {
                let kcol: [usize; NK] = core::array::from_fn(|j| (k0 + j).min(r - 1));
                let off: [usize; NK] = core::array::from_fn(|j| {
                    let (c, t) = (kcol[j] / (kh * kw), kcol[j] % (kh * kw));
                    c * plane + (t / kw) * row + t % kw
                });
                let slot = |i: usize, j: usize| (orow[i] * r + kcol[j]) * L;
                let mut a = [_mm512_setzero_ps(); MO * NK];
                for i in 0..MO {
                    for j in 0..NK {
                        a[i * NK + j] = _mm512_loadu_ps(ap.add(slot(i, j)));
                    }
                }
                for q in (0..qpad).step_by(L) {
                    let yv: [__m512; MO] =
                        core::array::from_fn(|i| _mm512_loadu_ps(yp.add(orow[i] * qpad + q)));
                    let xv: [__m512; NK] =
                        core::array::from_fn(|j| _mm512_loadu_ps(xp.add(off[j] + q)));
                    for i in 0..MO {
                        for j in 0..NK {
                            a[i * NK + j] = _mm512_fmadd_ps(yv[i], xv[j], a[i * NK + j]);
                        }
                    }
                }
                for i in 0..MO.min(rows - o0) {
                    for j in 0..NK.min(r - k0) {
                        _mm512_storeu_ps(ap.add(slot(i, j)), a[i * NK + j]);
                    }
                }
            }
        }
    }
}

/// Copies `planes` planes of `h x w` from `src` into `dst` as `hp x wp` planes with
/// `top` zero rows and `left` zero columns before each. With `zero`, every other
/// element of `dst` (padding, and anything past the planes) is zeroed first; without,
/// it must still be zero from an earlier call with the same sizes (only the data is
/// written, so a part zeroes its buffer for its first image only).
#[allow(clippy::too_many_arguments)]
fn pad_planes<T: Scalar>(
    src: &[T],
    planes: usize,
    (h, w): (usize, usize),
    (hp, wp): (usize, usize),
    (top, left): (usize, usize),
    dst: &mut [T],
    zero: bool,
) {
    if zero {
        dst.fill(T::ZERO);
    }
    for p in 0..planes {
        for y in 0..h {
            let s = &src[(p * h + y) * w..][..w];
            dst[(p * hp + top + y) * wp + left..][..w].copy_from_slice(s);
        }
    }
}

/// Copies the real outputs out of a wide `[channels, len]` result (row stride `row`)
/// into `[channels, oh, ow]`, adding `bias[channel]` if given.
fn compact<T: Scalar>(
    wide: &[T],
    len: usize,
    row: usize,
    (oh, ow): (usize, usize),
    bias: Option<&[T]>,
    out: &mut [T],
) {
    for (ch, dst) in out.chunks_exact_mut(oh * ow).enumerate() {
        let src = &wide[ch * len..];
        for (i, d) in dst.chunks_exact_mut(ow).enumerate() {
            let s = &src[i * row..][..ow];
            match bias {
                Some(b) => {
                    for (d, &s) in d.iter_mut().zip(s) {
                        *d = s + b[ch];
                    }
                }
                None => d.copy_from_slice(s),
            }
        }
    }
}

/// How many parts to split `units` of work into: one per thread, at most
/// [`MAX_PARTS`]. Results never depend on it. For work whose parts each repeat some
/// preparation (the weight gradients).
fn parts_for(units: usize) -> usize {
    threads().min(MAX_PARTS).min(units).max(1)
}

/// Parts for work that splits with no repeated preparation (runs of images): as many
/// as [`MAX_PARTS`] allows once there is more than one thread, so that the pool can
/// balance them when a thread is slowed (a core shared with another process); one
/// on a single thread, which then runs it inline.
fn image_parts(images: usize) -> usize {
    let parts = if threads() > 1 { MAX_PARTS } else { 1 };
    parts.min(images).max(1)
}

/// The threads of dl-core's pool (the gemm's), which the direct kernels share.
fn threads() -> usize {
    crate::gemm::num_threads()
}

/// Runs `f(item)` for each of at most [`MAX_PARTS`] items, as parts on dl-core's
/// thread pool under std (the gemm's: one set of threads for every kernel, and
/// allocation-free); the first error wins.
fn for_parts<I, F>(items: I, f: F) -> Result<()>
where
    I: IntoIterator,
    I::Item: Send,
    F: Fn(I::Item) -> Result<()> + Sync + Send,
{
    #[cfg(feature = "std")]
    {
        let mut it = items.into_iter();
        let mut slots: [(Option<I::Item>, Result<()>); MAX_PARTS] =
            core::array::from_fn(|_| (it.next(), Ok(())));
        debug_assert!(it.next().is_none(), "more than MAX_PARTS parts");
        let used = slots.iter().filter(|(item, _)| item.is_some()).count();
        crate::gemm::for_each_mut(&mut slots[..used], &|_, (item, result)| {
            if let Some(item) = item.take() {
                *result = f(item);
            }
        });
        slots.into_iter().try_for_each(|(_, r)| r)
    }
    #[cfg(not(feature = "std"))]
    {
        items.into_iter().try_for_each(f)
    }
}

/// Direct forward convolution (stride 1, dilation 1, padding below the kernel size;
/// see [`Conv2dGeometry::is_direct`]): the same result as [`conv2d`] up to rounding,
/// without im2col. Under std the batch is split over dl-core's threads; the result is
/// bit-identical for any thread count. Other geometries run [`conv2d`].
/// `workspace` needs [`Conv2dGeometry::direct_workspace_len`] elements. Allocates
/// nothing.
pub fn conv2d_direct<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    workspace: &mut [T],
) -> Result<()> {
    check_forward(g, input, weight, bias, out)?;
    if !g.is_direct() {
        let ws = workspace_prefix(g, workspace)?;
        return forward_images(g, input, weight, bias, out, ws);
    }
    let ws = direct_prefix(g, workspace)?;
    if g.n == 0 {
        return Ok(());
    }
    let (d, isa, r) = (g.direct(), isa(), g.group_col_rows());
    // Per group: `c_in` input and `c_out` output channels.
    let (c_in, c_out) = (g.group_in(), g.group_out());
    let mr = wide_mr::<T>(isa, c_out);
    let pack_len = c_out.div_ceil(mr) * mr * r;
    let (wpack, rest) = ws.split_at_mut(g.params.groups * pack_len);
    let by_channels = forward_by_channels::<T>(isa, g);
    let groups = weight.chunks_exact(c_out * r);
    for (weight, wpack) in groups.zip(wpack.chunks_exact_mut(pack_len)) {
        if by_channels {
            transpose_rows(weight, r, c_out, wpack);
        } else {
            pack_rows(c_out, r, mr, wpack, |o, k| weight[o * r + k]);
        }
    }
    let wpack = &*wpack;
    let wide = Wide {
        c_src: c_in,
        c_dst: c_out,
        kh: g.kh,
        kw: g.kw,
        plane: d.hp * d.wp,
        row: d.wp,
        len: d.qw,
        data_rows: (g.params.padding.0, g.params.padding.0 + g.h),
    };
    let part_len = d.xpad + c_out * d.qw;
    let per = g.n.div_ceil(image_parts(g.n));
    let items = input
        .chunks(per * g.image_len())
        .zip(out.chunks_mut(per * g.out_image_len()))
        .zip(rest.chunks_exact_mut(part_len));
    for_parts(items, |((x, y), ws)| {
        let (xpad, wbuf) = ws.split_at_mut(d.xpad);
        for (b, (x, y)) in x
            .chunks_exact(g.image_len())
            .zip(y.chunks_exact_mut(g.out_image_len()))
            .enumerate()
        {
            let pads = g.params.padding;
            // Without padding the image is its own padded copy.
            let src = if pads == (0, 0) {
                x
            } else {
                pad_planes(x, g.c_in, (g.h, g.w), (d.hp, d.wp), pads, xpad, b == 0);
                &*xpad
            };
            let dims = (g.out_h, g.out_w);
            // Group k reads its run of input planes and writes its output channels.
            for (k, y) in y.chunks_exact_mut(c_out * g.col_cols()).enumerate() {
                let src = &src[k * c_in * wide.plane..];
                let wpack = &wpack[k * pack_len..][..pack_len];
                let bias = bias.map(|b| &b[k * c_out..][..c_out]);
                if by_channels {
                    isa_kernels::correlate_by_channels(&wide, wpack, src, y, dims, bias);
                } else {
                    isa_kernels::correlate(isa, &wide, wpack, src, wbuf, y, dims, bias);
                }
            }
        }
        Ok(())
    })
}

/// Whether the forward pass runs the channels-in-lanes kernel: f32 with AVX-512 and
/// each group's output channels in whole vectors of 16 (the row-segment kernel then
/// wastes the lanes past short output rows, e.g. LeNet's second layer, 10 columns in
/// 16).
fn forward_by_channels<T: 'static>(isa: Isa, g: &Conv2dGeometry) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa == Isa::Avx512
            && core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
            && g.group_out().is_multiple_of(16)
            && g.out_image_len() < (1 << 31)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, g);
        false
    }
}

/// The direct workspace prefix; errors if the buffer is too short.
fn direct_prefix<'a, T>(g: &Conv2dGeometry, ws: &'a mut [T]) -> Result<&'a mut [T]> {
    let need = g.direct_workspace_len();
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

/// Direct input gradient (see [`conv2d_direct`] for when it applies, threads and
/// workspace): `grad_out` padded by `k - 1 - pad` correlated with the flipped kernel,
/// channels swapped. Overwrites `grad_input`; same result as
/// [`conv2d_backward_input`] up to rounding.
pub fn conv2d_backward_input_direct<T: Scalar>(
    g: &Conv2dGeometry,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
    workspace: &mut [T],
) -> Result<()> {
    check_backward_input(g, grad_out, weight, grad_input)?;
    if !g.is_direct() {
        let ws = workspace_prefix(g, workspace)?;
        return backward_input_images(g, grad_out, weight, grad_input, ws);
    }
    let ws = direct_prefix(g, workspace)?;
    if g.n == 0 {
        return Ok(());
    }
    let (d, isa, r) = (g.direct(), isa(), g.group_col_rows());
    // Per group: `c_in` input and `c_out` output channels.
    let (c_in, c_out) = (g.group_in(), g.group_out());
    let (kh, kw, kk) = (g.kh, g.kw, g.kh * g.kw);
    let rt = c_out * kk; // taps of the transposed kernel
    let mr = wide_mr::<T>(isa, c_in);
    let pack_len = c_in.div_ceil(mr) * mr * rt;
    let (wpack, rest) = ws.split_at_mut(g.params.groups * pack_len);
    let groups = weight.chunks_exact(c_out * r);
    for (weight, wpack) in groups.zip(wpack.chunks_exact_mut(pack_len)) {
        pack_flipped(weight, (c_in, c_out, kk), mr, wpack);
    }
    let wpack = &*wpack;
    let wide = Wide {
        c_src: c_out,
        c_dst: c_in,
        kh,
        kw,
        plane: d.hq * d.wq,
        row: d.wq,
        len: d.qx,
        data_rows: (
            kh - 1 - g.params.padding.0,
            kh - 1 - g.params.padding.0 + g.out_h,
        ),
    };
    let (ph, pw) = g.params.padding;
    let pads = (kh - 1 - ph, kw - 1 - pw);
    let part_len = d.dypad + c_in * d.qx;
    let per = g.n.div_ceil(image_parts(g.n));
    let items = grad_out
        .chunks(per * g.out_image_len())
        .zip(grad_input.chunks_mut(per * g.image_len()))
        .zip(rest.chunks_exact_mut(part_len));
    for_parts(items, |((gy, gx), ws)| {
        let (dypad, wbuf) = ws.split_at_mut(d.dypad);
        for (b, (gy, gx)) in gy
            .chunks_exact(g.out_image_len())
            .zip(gx.chunks_exact_mut(g.image_len()))
            .enumerate()
        {
            let dims = (g.out_h, g.out_w);
            pad_planes(gy, g.c_out, dims, (d.hq, d.wq), pads, dypad, b == 0);
            let dims = (g.h, g.w);
            // Group k reads its run of grad_out planes and writes its input channels.
            for (k, gx) in gx.chunks_exact_mut(c_in * g.h * g.w).enumerate() {
                let src = &dypad[k * c_out * wide.plane..];
                let wpack = &wpack[k * pack_len..][..pack_len];
                isa_kernels::correlate(isa, &wide, wpack, src, wbuf, gx, dims, None);
            }
        }
        Ok(())
    })
}

/// Direct weight (and bias) gradient (see [`conv2d_direct`] for when it applies,
/// threads and workspace). Each output-channel row of `dW` is a set of dot products
/// of `grad_out` rows with shifted slices of the padded input, summed lane-wise over
/// the batch in order; under std the rows are split over the threads, so the result
/// is bit-identical for any thread count. Overwrites both gradients; same result as
/// [`conv2d_backward_weight`] up to rounding.
pub fn conv2d_backward_weight_direct<T: Scalar>(
    g: &Conv2dGeometry,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
    workspace: &mut [T],
) -> Result<()> {
    check_backward_weight(g, input, grad_out, grad_weight, grad_bias.as_deref())?;
    if !g.is_direct() {
        let ws = workspace_prefix(g, workspace)?;
        weight_grad_groups(g, input, grad_out, grad_weight, ws)?;
        if let Some(gb) = grad_bias {
            bias_grad(g, grad_out, gb);
        }
        return Ok(());
    }
    let ws = direct_prefix(g, workspace)?;
    let (d, isa, r) = (g.direct(), isa(), g.group_col_rows());
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512
        && g.params.groups == 1
        && g.c_out.is_multiple_of(16)
        && g.kw <= avx512::BY_CHANNELS_MAX_KW
    {
        use isa_kernels::{cast, cast_mut};
        let (x, gy) = (cast::<T, f32>(input), cast::<T, f32>(grad_out));
        if let (Some(x), Some(gy), Some(gw)) = (x, gy, cast_mut::<T, f32>(grad_weight)) {
            let ws = cast_mut::<T, f32>(ws).unwrap_or_default();
            weight_grad_by_channels(g, &d, x, gy, gw, ws)?;
            if let Some(gb) = grad_bias {
                bias_grad_lanes(g, grad_out, gb);
            }
            return Ok(());
        }
    }
    let (lanes, mo) = dot_shape::<T>(isa);
    let qpad = d.qw.div_ceil(lanes) * lanes;
    let (acc, rest) = ws.split_at_mut(g.c_out * r * lanes);
    acc.fill(T::ZERO);
    // Rows per part in whole register tiles, so parts tile exactly as one part would.
    let rows_per = g
        .c_out
        .div_ceil(parts_for(g.c_out.div_ceil(mo)))
        .div_ceil(mo)
        * mo;
    let part_len = d.xpad + max_lanes::<T>() + rows_per * qpad;
    let items = acc
        .chunks_mut(rows_per * r * lanes)
        .zip(grad_weight.chunks_mut(rows_per * r))
        .zip(rest.chunks_exact_mut(part_len))
        .enumerate();
    let (ph, pw) = g.params.padding;
    for_parts(items, |(part, ((acc, gw), ws))| {
        let rows = gw.len() / r;
        let o_first = part * rows_per;
        let (xpad, dyw) = ws.split_at_mut(d.xpad + max_lanes::<T>());
        let dyw = &mut dyw[..rows * qpad];
        for b in 0..g.n {
            let x = &input[b * g.image_len()..][..g.image_len()];
            pad_planes(x, g.c_in, (g.h, g.w), (d.hp, d.wp), (ph, pw), xpad, b == 0);
            // This part's rows of grad_out, laid out wide (zeros past each row's end,
            // written for the first image and never overwritten).
            let gy = &grad_out[(b * g.c_out + o_first) * g.col_cols()..][..rows * g.col_cols()];
            if b == 0 {
                dyw.fill(T::ZERO);
            }
            for (o, dst) in dyw.chunks_exact_mut(qpad).enumerate() {
                for i in 0..g.out_h {
                    let s = &gy[(o * g.out_h + i) * g.out_w..][..g.out_w];
                    dst[i * d.wp..][..g.out_w].copy_from_slice(s);
                }
            }
            // Each run of this part's rows within one group reads that group's
            // input planes (one run, all rows, when there is one group).
            let (taps, plane) = ((g.group_in(), g.kh, g.kw), d.hp * d.wp);
            for (k, lo, hi) in group_runs(o_first, rows, g.group_out()) {
                let x = &xpad[k * g.group_in() * plane..];
                let dy = &dyw[lo * qpad..hi * qpad];
                let acc = &mut acc[lo * r * lanes..hi * r * lanes];
                isa_kernels::dot(isa, hi - lo, taps, plane, d.wp, qpad, dy, x, acc);
            }
        }
        for (w, lanes_of) in gw.iter_mut().zip(acc.chunks_exact(lanes)) {
            *w = lanes_of.iter().fold(T::ZERO, |s, &v| s + v);
        }
        Ok(())
    })?;
    if let Some(gb) = grad_bias {
        bias_grad_lanes(g, grad_out, gb);
    }
    Ok(())
}

/// Cuts the output channels `first..first + len` where a group (of `per` channels)
/// ends: `(group, start, end)` per run, `start..end` counted from `first`.
fn group_runs(first: usize, len: usize, per: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let mut o = first;
    core::iter::from_fn(move || {
        (o < first + len).then(|| {
            let k = o / per;
            let end = ((k + 1) * per).min(first + len);
            let run = (k, o - first, end - first);
            o = end;
            run
        })
    })
}

/// The weight gradient for f32 with AVX-512 when `c_out` is a multiple of 16: the
/// output channels fill the vector lanes (no wide-row waste, no lane sums), so
/// `dW^T[k, :] += x[off(k) + q] * grad_out[:, p]` over the real output positions `p`
/// (with `q` their place in the padded image), `grad_out` transposed per image to
/// `[p, c_out]`. Taps are split over the parts; every element gets the same sum in
/// the same order whatever the split.
#[cfg(target_arch = "x86_64")]
fn weight_grad_by_channels(
    g: &Conv2dGeometry,
    d: &Direct,
    input: &[f32],
    grad_out: &[f32],
    grad_weight: &mut [f32],
    ws: &mut [f32],
) -> Result<()> {
    let (r, p, c_out, kw) = (g.col_rows(), g.col_cols(), g.c_out, g.kw);
    let (acc, rest) = ws.split_at_mut(r * c_out);
    acc.fill(0.0);
    // Parts take runs of kernel rows `(c, u)`, each `kw` taps.
    let kernel_rows = g.c_in * g.kh;
    let per = kernel_rows.div_ceil(parts_for(kernel_rows));
    let part_len = d.xpad + p * c_out;
    let items = acc
        .chunks_mut(per * kw * c_out)
        .zip(rest.chunks_exact_mut(part_len))
        .enumerate();
    let (ph, pw) = g.params.padding;
    for_parts(items, |(part, (acc, ws))| {
        let (xpad, dyt) = ws.split_at_mut(d.xpad);
        for b in 0..g.n {
            let x = &input[b * g.image_len()..][..g.image_len()];
            // Without padding the image is its own padded copy.
            let x = if (ph, pw) == (0, 0) {
                x
            } else {
                pad_planes(x, g.c_in, (g.h, g.w), (d.hp, d.wp), (ph, pw), xpad, b == 0);
                &*xpad
            };
            let gy = &grad_out[b * g.out_image_len()..][..g.out_image_len()];
            // Position-major writes (contiguous), channel-strided reads: the stores
            // are what stalls when strided.
            for (q, dst) in dyt.chunks_exact_mut(c_out).take(p).enumerate() {
                for (o, d) in dst.iter_mut().enumerate() {
                    *d = gy[o * p + q];
                }
            }
            let args = (
                part * per,
                g.kh,
                (d.hp * d.wp, d.wp),
                (g.out_h, g.out_w),
                c_out,
            );
            // SAFETY: the caller checked AVX-512F and `kw <= BY_CHANNELS_MAX_KW`;
            // the slices are sized above.
            unsafe {
                use avx512::by_channels_f32 as k;
                match kw {
                    1 => k::<1>(args, dyt, x, acc),
                    2 => k::<2>(args, dyt, x, acc),
                    3 => k::<3>(args, dyt, x, acc),
                    4 => k::<4>(args, dyt, x, acc),
                    5 => k::<5>(args, dyt, x, acc),
                    6 => k::<6>(args, dyt, x, acc),
                    7 => k::<7>(args, dyt, x, acc),
                    _ => k::<8>(args, dyt, x, acc),
                }
            };
        }
        Ok(())
    })?;
    for (o, gw) in grad_weight.chunks_exact_mut(r).enumerate() {
        for (k, w) in gw.iter_mut().enumerate() {
            *w = acc[k * c_out + o];
        }
    }
    Ok(())
}

/// The bias gradient with 8 running sums per channel (lane `l` takes the positions
/// `= l mod 8` of every row, images in order), added up at the end: a fixed order
/// that vectorizes, unlike one running sum.
fn bias_grad_lanes<T: Scalar>(g: &Conv2dGeometry, grad_out: &[T], grad_bias: &mut [T]) {
    let p = g.col_cols();
    for (o, gb) in grad_bias.iter_mut().enumerate() {
        let mut acc = [T::ZERO; 8];
        for b in 0..g.n {
            let row = &grad_out[(b * g.c_out + o) * p..][..p];
            let mut chunks = row.chunks_exact(8);
            for c in &mut chunks {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a = *a + v;
                }
            }
            for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
                *a = *a + v;
            }
        }
        *gb = acc.iter().fold(T::ZERO, |s, &v| s + v);
    }
}

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

    use crate::rng::Rng;
    use alloc::vec;
    use alloc::vec::Vec;

    fn random<T: Scalar>(len: usize, rng: &mut Rng) -> Vec<T> {
        (0..len).map(|_| rng.uniform(-T::ONE, T::ONE)).collect()
    }

    /// The convolution by its definition (f64), padding read as zero.
    fn naive(g: &Conv2dGeometry, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
        let (ph, pw) = g.params.padding;
        let mut y = vec![0.0; g.output_shape().numel()];
        for b in 0..g.n {
            for o in 0..g.c_out {
                for i in 0..g.out_h {
                    for j in 0..g.out_w {
                        let mut s = bias.map_or(0.0, |bv| bv[o]);
                        for c in 0..g.c_in {
                            for u in 0..g.kh {
                                for v in 0..g.kw {
                                    let iy = (i + u) as isize - ph as isize;
                                    let ix = (j + v) as isize - pw as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi =
                                        ((b * g.c_in + c) * g.h + iy as usize) * g.w + ix as usize;
                                    s += x[xi] * w[((o * g.c_in + c) * g.kh + u) * g.kw + v];
                                }
                            }
                        }
                        y[((b * g.c_out + o) * g.out_h + i) * g.out_w + j] = s;
                    }
                }
            }
        }
        y
    }

    fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    /// A random stride-1 geometry the direct kernels take.
    fn direct_geometry(rng: &mut Rng) -> Conv2dGeometry {
        loop {
            let (kh, kw) = (1 + rng.below(5), 1 + rng.below(5));
            let input = [
                rng.below(4),
                1 + rng.below(4),
                1 + rng.below(11),
                1 + rng.below(11),
            ];
            let weight = [1 + rng.below(19), input[1], kh, kw];
            let params = Conv2dParams::default().with_padding(rng.below(kh), rng.below(kw));
            if let Ok(g) = Conv2dGeometry::new(Shape::from(input), Shape::from(weight), params) {
                if g.is_direct() {
                    return g;
                }
            }
        }
    }

    /// The direct kernels match the definition (forward) and the im2col + gemm
    /// kernels (both backward passes) on random geometries, f64.
    #[test]
    fn direct_kernels_match_definition_and_im2col() {
        let mut rng = Rng::seed_from_u64(7);
        for _ in 0..150 {
            let g = direct_geometry(&mut rng);
            let x = random::<f64>(g.input_shape().numel(), &mut rng);
            let w = random::<f64>(g.weight_shape().numel(), &mut rng);
            let b = random::<f64>(g.c_out, &mut rng);
            let gy = random::<f64>(g.output_shape().numel(), &mut rng);
            let mut ws = vec![f64::NAN; g.direct_workspace_len()];
            let mut y = vec![f64::NAN; gy.len()];
            conv2d_direct(&g, &x, &w, Some(&b), &mut y, &mut ws).unwrap();
            close(&y, &naive(&g, &x, &w, Some(&b)), 1e-12, "forward");

            let mut ws_old = vec![f64::NAN; g.workspace_len()];
            let (mut gx, mut gx_old) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
            conv2d_backward_input_direct(&g, &gy, &w, &mut gx, &mut ws).unwrap();
            conv2d_backward_input(&g, &gy, &w, &mut gx_old, &mut ws_old).unwrap();
            close(&gx, &gx_old, 1e-12, "input gradient");

            let (mut gw, mut gw_old) = (vec![f64::NAN; w.len()], vec![f64::NAN; w.len()]);
            let (mut gb, mut gb_old) = (vec![f64::NAN; g.c_out], vec![f64::NAN; g.c_out]);
            conv2d_backward_weight_direct(&g, &x, &gy, &mut gw, Some(&mut gb), &mut ws).unwrap();
            conv2d_backward_weight(&g, &x, &gy, &mut gw_old, Some(&mut gb_old), &mut ws_old)
                .unwrap();
            close(&gw, &gw_old, 1e-11, "weight gradient");
            close(&gb, &gb_old, 1e-12, "bias gradient");
        }
    }

    /// The f32 kernels (AVX-512 intrinsics where the CPU has them: every tile height
    /// and masked tail) on random geometries against the definition and im2col.
    #[test]
    fn direct_kernels_f32_random_geometries() {
        let mut rng = Rng::seed_from_u64(5);
        let wide = |v: &[f32]| v.iter().map(|&t| t as f64).collect::<Vec<_>>();
        for _ in 0..150 {
            let g = direct_geometry(&mut rng);
            let x = random::<f32>(g.input_shape().numel(), &mut rng);
            let w = random::<f32>(g.weight_shape().numel(), &mut rng);
            let b = random::<f32>(g.c_out, &mut rng);
            let gy = random::<f32>(g.output_shape().numel(), &mut rng);
            let mut ws = vec![f32::NAN; g.direct_workspace_len()];
            let mut ws_old = vec![f32::NAN; g.workspace_len()];
            let mut y = vec![f32::NAN; gy.len()];
            conv2d_direct(&g, &x, &w, Some(&b), &mut y, &mut ws).unwrap();
            let want = naive(&g, &wide(&x), &wide(&w), Some(&wide(&b)));
            close(&wide(&y), &want, 1e-5, "forward f32");
            let (mut gx, mut gx_old) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            conv2d_backward_input_direct(&g, &gy, &w, &mut gx, &mut ws).unwrap();
            conv2d_backward_input(&g, &gy, &w, &mut gx_old, &mut ws_old).unwrap();
            close(&wide(&gx), &wide(&gx_old), 1e-5, "input gradient f32");
            let (mut gw, mut gw_old) = (vec![f32::NAN; w.len()], vec![f32::NAN; w.len()]);
            let (mut gb, mut gb_old) = (vec![f32::NAN; g.c_out], vec![f32::NAN; g.c_out]);
            conv2d_backward_weight_direct(&g, &x, &gy, &mut gw, Some(&mut gb), &mut ws).unwrap();
            conv2d_backward_weight(&g, &x, &gy, &mut gw_old, Some(&mut gb_old), &mut ws_old)
                .unwrap();
            close(&wide(&gw), &wide(&gw_old), 1e-4, "weight gradient f32");
            close(&wide(&gb), &wide(&gb_old), 1e-4, "bias gradient f32");
        }
    }

    /// LeNet-5's two convolutions at batch 8 in f32 against the im2col kernels.
    #[test]
    fn direct_kernels_f32_lenet_shapes() {
        let mut rng = Rng::seed_from_u64(3);
        for (input, weight, pad) in [
            ([8, 1, 28, 28], [6, 1, 5, 5], 2),
            ([8, 6, 14, 14], [16, 6, 5, 5], 0),
        ] {
            let params = Conv2dParams::default().with_padding(pad, pad);
            let g = Conv2dGeometry::new(Shape::from(input), Shape::from(weight), params).unwrap();
            assert!(g.is_direct());
            let x = random::<f32>(g.input_shape().numel(), &mut rng);
            let w = random::<f32>(g.weight_shape().numel(), &mut rng);
            let b = random::<f32>(g.c_out, &mut rng);
            let gy = random::<f32>(g.output_shape().numel(), &mut rng);
            let (mut ws, mut ws_old) = (
                vec![0.0; g.direct_workspace_len()],
                vec![0.0; g.workspace_len()],
            );
            let wide = |v: &[f32]| v.iter().map(|&t| t as f64).collect::<Vec<_>>();
            let (mut y, mut y_old) = (vec![0.0f32; gy.len()], vec![0.0f32; gy.len()]);
            conv2d_direct(&g, &x, &w, Some(&b), &mut y, &mut ws).unwrap();
            conv2d(&g, &x, &w, Some(&b), &mut y_old, &mut ws_old).unwrap();
            close(&wide(&y), &wide(&y_old), 1e-5, "forward f32");
            let (mut gx, mut gx_old) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
            conv2d_backward_input_direct(&g, &gy, &w, &mut gx, &mut ws).unwrap();
            conv2d_backward_input(&g, &gy, &w, &mut gx_old, &mut ws_old).unwrap();
            close(&wide(&gx), &wide(&gx_old), 1e-5, "input gradient f32");
            let (mut gw, mut gw_old) = (vec![0.0f32; w.len()], vec![0.0f32; w.len()]);
            conv2d_backward_weight_direct(&g, &x, &gy, &mut gw, None, &mut ws).unwrap();
            conv2d_backward_weight(&g, &x, &gy, &mut gw_old, None, &mut ws_old).unwrap();
            close(&wide(&gw), &wide(&gw_old), 1e-4, "weight gradient f32");
        }
    }

    /// Set in the child processes of
    /// [`direct_kernels_do_not_depend_on_thread_count`].
    #[cfg(feature = "std")]
    const THREADS_CHILD: &str = "DL_CORE_THREADS_CHILD";

    /// The threaded direct kernels give the same bits on 1, 2 and 3 threads.
    ///
    /// dl-core's pool reads `DL_NUM_THREADS` once per process, so the only honest
    /// way to vary the thread count is to run this test again as a child process per
    /// count: each child prints the thread count it ran with and a digest of every
    /// output bit, and the parent compares them. (Switching rayon pools, as this test
    /// once did, left the kernels on the same pool every time.)
    #[cfg(feature = "std")]
    #[test]
    fn direct_kernels_do_not_depend_on_thread_count() {
        if std::env::var_os(THREADS_CHILD).is_some() {
            std::println!(
                "THREADS {} DIGEST {:016x}",
                crate::gemm::num_threads(),
                direct_kernels_digest()
            );
            return;
        }
        let run = |threads: usize| -> (usize, u64) {
            let text = crate::gemm::rerun_test_with_threads(
                "conv::tests::direct_kernels_do_not_depend_on_thread_count",
                threads,
                &[(THREADS_CHILD, "1")],
            );
            // The harness prints the test's name on the same line, before it.
            let line = text
                .lines()
                .find_map(|l| l.find("THREADS ").map(|at| &l[at..]))
                .unwrap_or_else(|| panic!("no digest from the child: {text}"));
            let parts: Vec<&str> = line.split_whitespace().collect();
            (
                parts[1].parse().unwrap(),
                u64::from_str_radix(parts[3], 16).unwrap(),
            )
        };
        let (t1, one) = run(1);
        assert_eq!(t1, 1, "the child ran with DL_NUM_THREADS=1");
        for threads in [2, 3] {
            let (t, digest) = run(threads);
            // The children really differ in thread count, so the comparison can fail.
            assert_eq!(t, threads, "the child ran with DL_NUM_THREADS={threads}");
            assert_eq!(
                digest, one,
                "outputs differ between 1 and {threads} threads"
            );
        }
    }

    /// FNV-1a over the bits of the direct kernels' outputs (forward, input and weight
    /// gradients) on LeNet's second convolution and 19 random geometries.
    #[cfg(feature = "std")]
    fn direct_kernels_digest() -> u64 {
        let mut rng = Rng::seed_from_u64(11);
        let lenet = Conv2dGeometry::new(
            Shape::from([9, 6, 14, 14]),
            Shape::from([16, 6, 5, 5]),
            Conv2dParams::default(),
        )
        .unwrap();
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for case in 0..20 {
            let g = if case == 0 {
                lenet
            } else {
                direct_geometry(&mut rng)
            };
            let x = random::<f32>(g.input_shape().numel(), &mut rng);
            let w = random::<f32>(g.weight_shape().numel(), &mut rng);
            let gy = random::<f32>(g.output_shape().numel(), &mut rng);
            let mut ws = vec![f32::NAN; g.direct_workspace_len()];
            let mut y = vec![f32::NAN; gy.len()];
            conv2d_direct(&g, &x, &w, None, &mut y, &mut ws).unwrap();
            let mut gx = vec![f32::NAN; x.len()];
            conv2d_backward_input_direct(&g, &gy, &w, &mut gx, &mut ws).unwrap();
            let mut gw = vec![f32::NAN; w.len()];
            conv2d_backward_weight_direct(&g, &x, &gy, &mut gw, None, &mut ws).unwrap();
            for v in y.iter().chain(&gx).chain(&gw) {
                h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }

    #[test]
    fn direct_workspace_too_short_is_an_error() {
        let g = Conv2dGeometry::new(
            Shape::from([2, 3, 5, 5]),
            Shape::from([4, 3, 3, 3]),
            Conv2dParams::default().with_padding(1, 1),
        )
        .unwrap();
        let need = g.direct_workspace_len();
        let mut ws = vec![0.0f32; need - 1];
        let err = conv2d_direct(&g, &[0.0; 150], &[0.0; 108], None, &mut [0.0; 200], &mut ws);
        assert_eq!(
            err.unwrap_err().to_string(),
            alloc::format!(
                "conv2d: workspace (at least) has {} elements, expected {need}",
                need - 1
            )
        );
        // Strided geometries fall back to im2col + gemm, with its workspace.
        let g = Conv2dGeometry::new(
            Shape::from([2, 3, 5, 5]),
            Shape::from([4, 3, 3, 3]),
            Conv2dParams::default().with_stride(2, 2),
        )
        .unwrap();
        assert!(!g.is_direct());
        assert_eq!(g.direct_workspace_len(), g.workspace_len());
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
