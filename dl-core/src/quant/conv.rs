//! Int8 2-D convolution on NHWC activations with OHWI weights, grouped and depthwise
//! included (TFLM's `reference_integer_ops::ConvPerChannel` and
//! `DepthwiseConvPerChannel`).

use super::dense::dense_s8_with;
use super::fixed::check_len;
use super::kernel::{mat_mul, Kernel};
use super::requant::Requant;
use crate::error::{Error, Result};

/// Sizes of an int8 convolution: input `[n, h, w, c_in]` (NHWC), weights `[c_out, kh,
/// kw, c_in / groups]` (OHWI), output `[n, out_h, out_w, c_out]`.
///
/// Output pixel `(i, j)` reads input rows `i * stride.0 + u * dilation.0 - pad.0` and
/// columns `j * stride.1 + v * dilation.1 - pad.1`; `pad` is the top and left padding.
/// [`ConvGeometry::new`] sizes the output by PyTorch's formula with the same padding
/// at the bottom and right; [`ConvGeometry::with_output_size`] takes TFLite's sizes
/// (its `SAME` padding puts an odd extra row or column at the bottom or right).
///
/// Output channel `o` belongs to group `o / (c_out / groups)` and reads that group's
/// `c_in / groups` input channels. `groups == c_in` is a depthwise convolution (TFLite
/// `DEPTHWISE_CONV_2D` with depth multiplier `c_out / c_in`; its `[1, kh, kw, c_out]`
/// filter is this layout's `[c_out, kh, kw, 1]` transposed).
///
/// Fields are public; the kernels re-check them ([`ConvGeometry::validate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size (may be 0).
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `(rows, columns)`.
    pub stride: (usize, usize),
    /// Padding `(top, left)`.
    pub pad: (usize, usize),
    /// Dilation `(rows, columns)`.
    pub dilation: (usize, usize),
    /// Channel groups; divides `c_in` and `c_out`.
    pub groups: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

/// `out = (size + 2 * pad - dilation * (k - 1) - 1) / stride + 1` (PyTorch), or an
/// error when the dilated kernel does not fit in the padded input.
pub(crate) fn out_size(
    op: &'static str,
    size: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
) -> Result<usize> {
    let padded = pad
        .checked_mul(2)
        .and_then(|p| p.checked_add(size))
        .ok_or(Error::Overflow { op })?;
    let span = k
        .checked_sub(1)
        .and_then(|k1| k1.checked_mul(dilation))
        .and_then(|s| s.checked_add(1))
        .ok_or(Error::InvalidParameter {
            op,
            name: "kernel",
            value: k as f64,
            valid: ">= 1 (and dilation * (kernel - 1) must not overflow)",
        })?;
    if stride == 0 {
        return Err(Error::InvalidParameter {
            op,
            name: "stride",
            value: 0.0,
            valid: ">= 1",
        });
    }
    if span > padded {
        return Err(Error::InvalidParameter {
            op,
            name: "kernel",
            value: k as f64,
            valid: "dilation * (kernel - 1) + 1 <= size + 2 * pad",
        });
    }
    Ok((padded - span) / stride + 1)
}

/// `InvalidParameter` unless `value >= 1`.
pub(crate) fn positive(op: &'static str, name: &'static str, value: usize) -> Result<()> {
    if value == 0 {
        Err(Error::InvalidParameter {
            op,
            name,
            value: 0.0,
            valid: ">= 1",
        })
    } else {
        Ok(())
    }
}

/// Errors unless `(out - 1) * stride + (k - 1) * dilation` (the farthest tap from the
/// padded origin) and `pad` fit in `isize`, so that tap coordinates never overflow.
pub(crate) fn check_reach(
    op: &'static str,
    out: usize,
    stride: usize,
    k: usize,
    dilation: usize,
    pad: usize,
) -> Result<()> {
    let reach = (out.saturating_sub(1)).checked_mul(stride).and_then(|a| {
        k.saturating_sub(1)
            .checked_mul(dilation)
            .and_then(|b| a.checked_add(b))
    });
    match reach {
        Some(r) if r <= isize::MAX as usize && pad <= isize::MAX as usize => Ok(()),
        _ => Err(Error::Overflow { op }),
    }
}

impl ConvGeometry {
    /// The geometry with PyTorch's output size, `out = (size + 2 * pad - dilation *
    /// (k - 1) - 1) / stride + 1`, validated.
    ///
    /// ```
    /// use dl_core::quant::ConvGeometry;
    /// let g = ConvGeometry::new(1, 28, 28, 1, 8, 3, 3, (1, 1), (1, 1), (1, 1), 1).unwrap();
    /// assert_eq!((g.out_h, g.out_w, g.scratch_len()), (28, 28, 9));
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        h: usize,
        w: usize,
        c_in: usize,
        c_out: usize,
        kh: usize,
        kw: usize,
        stride: (usize, usize),
        pad: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
    ) -> Result<Self> {
        const OP: &str = "ConvGeometry";
        positive(OP, "dilation", dilation.0.min(dilation.1))?;
        let out_h = out_size(OP, h, kh, stride.0, pad.0, dilation.0)?;
        let out_w = out_size(OP, w, kw, stride.1, pad.1, dilation.1)?;
        let g = ConvGeometry {
            n,
            h,
            w,
            c_in,
            c_out,
            kh,
            kw,
            stride,
            pad,
            dilation,
            groups,
            out_h,
            out_w,
        };
        g.validate()?;
        Ok(g)
    }

    /// The same geometry with the output size given, e.g. TFLite's: `SAME` padding has
    /// `out = ceil(size / stride)` and `pad = max((out - 1) * stride + dilation * (k -
    /// 1) + 1 - size, 0) / 2` at the top/left (the odd remainder goes to the bottom/
    /// right, which the kernels see as taps past the edge); `VALID` has `pad = 0` and
    /// `out = (size - dilation * (k - 1) - 1) / stride + 1`.
    pub fn with_output_size(mut self, out_h: usize, out_w: usize) -> Result<Self> {
        self.out_h = out_h;
        self.out_w = out_w;
        self.validate()?;
        Ok(self)
    }

    /// Errors (naming the field) unless every size except `n` is `>= 1`, `groups`
    /// divides `c_in` and `c_out`, tap coordinates fit in `isize`, and the buffer
    /// lengths fit in `usize`.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "ConvGeometry";
        for (name, v) in [
            ("h", self.h),
            ("w", self.w),
            ("c_in", self.c_in),
            ("c_out", self.c_out),
            ("kh", self.kh),
            ("kw", self.kw),
            ("stride", self.stride.0.min(self.stride.1)),
            ("dilation", self.dilation.0.min(self.dilation.1)),
            ("groups", self.groups),
            ("out_h", self.out_h),
            ("out_w", self.out_w),
        ] {
            positive(OP, name, v)?;
        }
        if !self.c_in.is_multiple_of(self.groups) || !self.c_out.is_multiple_of(self.groups) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "groups",
                value: self.groups as f64,
                valid: "divides c_in and c_out",
            });
        }
        check_reach(
            OP,
            self.out_h,
            self.stride.0,
            self.kh,
            self.dilation.0,
            self.pad.0,
        )?;
        check_reach(
            OP,
            self.out_w,
            self.stride.1,
            self.kw,
            self.dilation.1,
            self.pad.1,
        )?;
        for len in [
            self.checked_input_len(),
            self.checked_output_len(),
            self.checked_weight_len(),
        ] {
            len.ok_or(Error::Overflow { op: OP })?;
        }
        Ok(())
    }

    fn checked_input_len(&self) -> Option<usize> {
        self.n
            .checked_mul(self.h)?
            .checked_mul(self.w)?
            .checked_mul(self.c_in)
    }

    fn checked_output_len(&self) -> Option<usize> {
        self.n
            .checked_mul(self.out_h)?
            .checked_mul(self.out_w)?
            .checked_mul(self.c_out)
    }

    fn checked_weight_len(&self) -> Option<usize> {
        self.c_out.checked_mul(self.patch_len()?)
    }

    /// `kh * kw * c_in / groups`: one output channel's weights, one group's patch.
    fn patch_len(&self) -> Option<usize> {
        self.kh
            .checked_mul(self.kw)?
            .checked_mul(self.c_in.checked_div(self.groups)?)
    }

    /// `n * h * w * c_in` (saturating, for an invalid geometry).
    pub fn input_len(&self) -> usize {
        self.checked_input_len().unwrap_or(usize::MAX)
    }

    /// `n * out_h * out_w * c_out` (saturating).
    pub fn output_len(&self) -> usize {
        self.checked_output_len().unwrap_or(usize::MAX)
    }

    /// `c_out * kh * kw * c_in / groups` (saturating).
    pub fn weight_len(&self) -> usize {
        self.checked_weight_len().unwrap_or(usize::MAX)
    }

    /// Bytes of scratch [`conv2d_s8`] needs: one group's receptive field, `kh * kw *
    /// c_in / groups` (saturating), or 0 for a 1x1 stride-1 unpadded ungrouped
    /// convolution, which reads its input in place. The same on every target and
    /// kernel.
    pub fn scratch_len(&self) -> usize {
        if self.is_pointwise() {
            return 0;
        }
        self.patch_len().unwrap_or(usize::MAX)
    }

    /// A 1x1, stride-1, unpadded, ungrouped convolution with the input's size is a
    /// dense layer over the `n * h * w` pixels (no patch copy).
    fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == (1, 1)
            && self.pad == (0, 0)
            && self.groups == 1
            && (self.out_h, self.out_w) == (self.h, self.w)
    }
}

/// Grouped int8 convolution:
/// `y[b, i, j, o] = clamp(MultiplyByQuantizedMultiplier(bias_eff[o] + sum_{u, v, c}
/// w[o, u, v, c] * x[b, i*s0 + u*d0 - p0, j*s1 + v*d1 - p1, g*cg + c], ...) + zp_out)`
/// with `g = o / (c_out / groups)`, `cg = c_in / groups`.
///
/// Mirrors TFLM's `reference_integer_ops::ConvPerChannel` (and, for `groups == c_in`,
/// `DepthwiseConvPerChannel`): `bias_eff` is the bias with the input zero point
/// folded in ([`super::fold_input_offset`] over `[c_out, kh * kw * c_in / groups]`),
/// and taps outside the input read `input_zero_point`, so they add exactly nothing,
/// as TFLM's skipped taps. The output stage is [`Requant`]'s.
///
/// Each output pixel copies one group's receptive field into `scratch` (at least
/// [`ConvGeometry::scratch_len`] bytes) and runs the shared multiply-accumulate core
/// on [`Kernel::best`]; a 1x1 stride-1 unpadded ungrouped convolution needs no scratch
/// and runs as [`super::dense_s8`] over the pixels.
///
/// Errors: the geometry's own, `LengthMismatch` for `x`, `w`, `bias_eff`, `y` or a
/// short `scratch`, and [`Requant::validate`]'s.
///
/// ```
/// use dl_core::quant::{conv2d_s8, fold_input_offset, ConvGeometry, Requant};
/// // A 2x2 box filter over a 2x2 image with padding 1: corner windows see one
/// // pixel, edge windows two, the middle one all four (input zero point 10).
/// let g = ConvGeometry::new(1, 2, 2, 1, 1, 2, 2, (1, 1), (1, 1), (1, 1), 1).unwrap();
/// assert_eq!((g.out_h, g.out_w), (3, 3));
/// let (x, w) = ([11i8, 12, 13, 14], [1i8; 4]); // real values 1, 2, 3, 4
/// let mut bias = [0];
/// fold_input_offset(&w, 1, 4, None, 10, &mut bias).unwrap();
/// let rq = Requant { multiplier: &[1 << 30], shift: &[1], output_zero_point: 0,
///                    act_min: -128, act_max: 127 }; // scale 1.0
/// let mut y = [0i8; 9];
/// conv2d_s8(&g, &x, &w, &bias, 10, &rq, &mut [0; 4], &mut y).unwrap();
/// assert_eq!(y, [1, 3, 2, 4, 10, 6, 3, 7, 4]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(
    g: &ConvGeometry,
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    input_zero_point: i8,
    rq: &Requant,
    scratch: &mut [i8],
    y: &mut [i8],
) -> Result<()> {
    conv2d_s8_with(
        Kernel::best(),
        g,
        x,
        w,
        bias_eff,
        input_zero_point,
        rq,
        scratch,
        y,
    )
}

/// [`conv2d_s8`] on a given [`Kernel`]; `InvalidParameter` if it cannot run here.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_with(
    kernel: Kernel,
    g: &ConvGeometry,
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    input_zero_point: i8,
    rq: &Requant,
    scratch: &mut [i8],
    y: &mut [i8],
) -> Result<()> {
    const OP: &str = "conv2d_s8";
    kernel.check(OP)?;
    g.validate()?;
    check_len(OP, "input", g.input_len(), x.len())?;
    check_len(OP, "weights", g.weight_len(), w.len())?;
    check_len(OP, "bias_eff", g.c_out, bias_eff.len())?;
    check_len(OP, "output", g.output_len(), y.len())?;
    let patch = g.scratch_len();
    if scratch.len() < patch {
        return Err(Error::LengthMismatch {
            op: OP,
            what: "scratch (at least)",
            expected: patch,
            actual: scratch.len(),
        });
    }
    rq.validate(g.c_out)?;
    if g.n == 0 {
        return Ok(());
    }
    // From here on n >= 1, so every size product is bounded by a checked buffer length.
    if g.is_pointwise() {
        return dense_s8_with(
            kernel,
            x,
            w,
            bias_eff,
            rq,
            g.n * g.h * g.w,
            g.c_in,
            g.c_out,
            y,
        );
    }

    let cg = g.c_in / g.groups;
    let og = g.c_out / g.groups;
    let scratch = &mut scratch[..patch];
    for (b, image) in x.chunks_exact(g.h * g.w * g.c_in).enumerate() {
        for i in 0..g.out_h {
            for j in 0..g.out_w {
                let pixel = (b * g.out_h + i) * g.out_w + j;
                let y_px = &mut y[pixel * g.c_out..(pixel + 1) * g.c_out];
                for grp in 0..g.groups {
                    gather_patch(g, image, i, j, grp * cg, cg, input_zero_point, scratch);
                    let rows = grp * og..(grp + 1) * og;
                    mat_mul(
                        kernel,
                        &w[rows.start * patch..rows.end * patch],
                        og,
                        patch,
                        scratch,
                        1,
                        &bias_eff[rows.clone()],
                        &mut |_, r, acc| {
                            let o = rows.start + r;
                            y_px[o] = rq.apply(o, acc);
                        },
                    );
                }
            }
        }
    }
    Ok(())
}

/// Copies the receptive field of output pixel `(i, j)` over channels `c0..c0 + cg` of
/// one image into `patch`, in the weights' `(u, v, c)` order; taps off the image read
/// `zero_point`.
#[allow(clippy::too_many_arguments)]
fn gather_patch(
    g: &ConvGeometry,
    image: &[i8],
    i: usize,
    j: usize,
    c0: usize,
    cg: usize,
    zero_point: i8,
    patch: &mut [i8],
) {
    // Coordinates fit in isize: `validate` checked the farthest tap.
    let top = (i * g.stride.0) as isize - g.pad.0 as isize;
    let left = (j * g.stride.1) as isize - g.pad.1 as isize;
    let mut taps = patch.chunks_exact_mut(cg);
    for u in 0..g.kh {
        let r = top + (u * g.dilation.0) as isize;
        for v in 0..g.kw {
            let c = left + (v * g.dilation.1) as isize;
            let Some(dst) = taps.next() else { return };
            if (0..g.h as isize).contains(&r) && (0..g.w as isize).contains(&c) {
                let at = (r as usize * g.w + c as usize) * g.c_in + c0;
                dst.copy_from_slice(&image[at..at + cg]);
            } else {
                dst.fill(zero_point);
            }
        }
    }
}
