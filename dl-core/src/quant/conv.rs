//! Int8 2-D convolution on NHWC activations with OHWI weights, grouped and depthwise
//! included (TFLM's `reference_integer_ops::ConvPerChannel` and
//! `DepthwiseConvPerChannel`).

use super::dense::dense_s8_with;
use super::fixed::check_len;
use super::kernel::{mat_mul, Kernel, Out};
use super::requant::Requant;
#[cfg(target_arch = "x86_64")]
use super::x86;
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
/// and runs as [`super::dense_s8`] over the pixels. On [`Kernel::Avx512Vnni`] an
/// ungrouped convolution gathers the fields of many pixels at once into the kernel's
/// own panel on the stack (`scratch` unused) against weights packed once per call,
/// and large calls split their pixels over threads; the bytes are the same.
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

    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx512Vnni
        && g.groups == 1
        && conv_vnni(g, x, w, bias_eff, input_zero_point, rq, y)
    {
        return Ok(());
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
                    let mut out = Out {
                        rq,
                        ch0: rows.start,
                        y: &mut y_px[rows.start..],
                        ldy: og,
                    };
                    mat_mul(
                        kernel,
                        &w[rows.start * patch..rows.end * patch],
                        og,
                        patch,
                        scratch,
                        1,
                        &bias_eff[rows],
                        &mut out,
                    );
                }
            }
        }
    }
    Ok(())
}

/// An ungrouped convolution on the VNNI kernel: the patches of many output pixels at
/// once, gathered sign-flipped straight into the kernel's panel (no caller scratch),
/// against weights packed once per call. `false`, having done nothing, for weights
/// too large to pack on the stack.
///
/// Where the image fits padded on the stack ([`PADDED`]) and taps in a row are
/// adjacent, each image is first copied once, sign-flipped, into a buffer with its
/// padding written out (`padded_image`); every row of taps of every pixel is then one
/// plain copy of `kw * c_in` bytes rounded up to whole groups of four (the extra
/// bytes meet zero weights: the weights are packed per row of taps, each padded to
/// whole groups), with no bounds to test. Otherwise each patch is gathered with its
/// bounds ([`gather_flipped`], [`gather_rows`]).
#[cfg(target_arch = "x86_64")]
fn conv_vnni(
    g: &ConvGeometry,
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    input_zero_point: i8,
    rq: &Requant,
    y: &mut [i8],
) -> bool {
    if x86::conv_direct(g, x, w, bias_eff, input_zero_point, rq, y) {
        return true;
    }
    let pad = input_zero_point as u8 ^ 0x80;
    let per_image = g.out_h * g.out_w;
    let image_len = g.h * g.w * g.c_in;
    let mut out = Out {
        rq,
        ch0: 0,
        y,
        ldy: g.c_out,
    };
    if let Some(p) = Padded::new(g) {
        let seg = x86::Segments {
            count: g.kh,
            len: g.kw * g.c_in,
        };
        let (stride, len4) = (seg.stride(), seg.len4());
        let fill = |p0: usize, n: usize, panel: &mut [u8]| {
            let mut space = core::mem::MaybeUninit::<[u8; PADDED]>::uninit();
            let len = p.len(g);
            // SAFETY: `len <= PADDED` (`Padded::new`), and the bytes are written
            // (all set to `pad`) before the slice is made.
            let buf = unsafe {
                let at = space.as_mut_ptr().cast::<u8>();
                at.write_bytes(pad, len);
                core::slice::from_raw_parts_mut(at, len)
            };
            let pixels = Pixels {
                x,
                image_len,
                per_image,
                stride,
                len4,
            };
            match len4 {
                4 => pixels.copy::<4>(g, p, p0, n, buf, panel),
                8 => pixels.copy::<8>(g, p, p0, n, buf, panel),
                12 => pixels.copy::<12>(g, p, p0, n, buf, panel),
                16 => pixels.copy::<16>(g, p, p0, n, buf, panel),
                24 => pixels.copy::<24>(g, p, p0, n, buf, panel),
                32 => pixels.copy::<32>(g, p, p0, n, buf, panel),
                _ => pixels.copy::<0>(g, p, p0, n, buf, panel),
            }
        };
        return x86::mat_mul_vnni_filled(
            w,
            g.c_out,
            seg,
            g.n * per_image,
            bias_eff,
            &mut out,
            &fill,
        );
    }
    let patch = g.kh * g.kw * g.c_in;
    let seg = x86::Segments::one(patch);
    let stride = seg.stride();
    let (j_lo, j_hi) = interior_columns(g);
    let fill = |p0: usize, n: usize, panel: &mut [u8]| {
        // Pixels p0..p0 + n, one output row (or the part of it in the panel) at a
        // time: the columns whose taps all lie inside the image's width by rows of
        // taps (`gather_rows`), the others pixel by pixel.
        let mut p = p0;
        while p < p0 + n {
            let (b, at) = (p / per_image, p % per_image);
            let (i, j) = (at / g.out_w, at % g.out_w);
            let image = &x[b * image_len..(b + 1) * image_len];
            let end = (p + g.out_w - j).min(p0 + n);
            let j_end = j + (end - p);
            let a = j.max(j_lo).min(j_end);
            let z = j_hi.min(j_end).max(a);
            let offset = |col: usize| (p - p0 + col - j) * stride;
            for col in (j..a).chain(z..j_end) {
                gather_flipped(g, image, i, col, pad, panel, offset(col));
            }
            if a < z {
                gather_rows(g, image, i, a, z - a, pad, panel, offset(a), stride);
            }
            p = end;
        }
    };
    x86::mat_mul_vnni_filled(w, g.c_out, seg, g.n * per_image, bias_eff, &mut out, &fill)
}

/// What [`conv_vnni`]'s padded path needs to fill its panel.
#[cfg(target_arch = "x86_64")]
struct Pixels<'x> {
    x: &'x [i8],
    image_len: usize,
    per_image: usize,
    /// Bytes per pixel in the panel.
    stride: usize,
    /// Bytes per row of taps, rounded up to whole groups of four.
    len4: usize,
}

#[cfg(target_arch = "x86_64")]
impl Pixels<'_> {
    /// The patches of pixels `p0..p0 + n` into `panel`, copied row of taps by row of
    /// taps from the padded image in `buf` (refreshed when the image changes); `L`
    /// is `len4` as a constant, so the copies compile to fixed moves (0: any).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn copy<const L: usize>(
        &self,
        g: &ConvGeometry,
        p: Padded,
        p0: usize,
        n: usize,
        buf: &mut [u8],
        panel: &mut [u8],
    ) {
        let len = if L == 0 { self.len4 } else { L };
        let row_step = g.dilation.0 * p.w * g.c_in;
        let mut image_in_buf = usize::MAX;
        let (mut b, at) = (p0 / self.per_image, p0 % self.per_image);
        let (mut i, mut j) = (at / g.out_w, at % g.out_w);
        for t in 0..n {
            if b != image_in_buf {
                let image = &self.x[b * self.image_len..(b + 1) * self.image_len];
                p.copy_image(g, image, buf);
                image_in_buf = b;
            }
            let src = (i * g.stride.0 * p.w + j * g.stride.1) * g.c_in;
            for u in 0..g.kh {
                let (s, d) = (src + u * row_step, t * self.stride + u * len);
                panel[d..d + len].copy_from_slice(&buf[s..s + len]);
            }
            j += 1;
            if j == g.out_w {
                j = 0;
                i += 1;
                if i == g.out_h {
                    i = 0;
                    b += 1;
                }
            }
        }
    }
}

/// Bytes of the padded, sign-flipped image copy [`conv_vnni`] keeps on the stack.
#[cfg(target_arch = "x86_64")]
const PADDED: usize = 16 * 1024;

/// The padded image of a convolution: `h` rows of `w` pixels, every tap of every
/// output pixel inside, plus a few bytes after the last row for the copies rounded
/// up to whole groups of four.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Padded {
    h: usize,
    w: usize,
}

#[cfg(target_arch = "x86_64")]
impl Padded {
    /// The padded size, if taps in a row are adjacent and it fits in [`PADDED`].
    fn new(g: &ConvGeometry) -> Option<Self> {
        if g.dilation.1 != 1 {
            return None;
        }
        // The farthest taps, from the padded origin.
        let h = ((g.out_h - 1) * g.stride.0 + (g.kh - 1) * g.dilation.0 + 1).max(g.pad.0 + g.h);
        let w = ((g.out_w - 1) * g.stride.1 + g.kw).max(g.pad.1 + g.w);
        let bytes = h.checked_mul(w)?.checked_mul(g.c_in)?.checked_add(4)?;
        (bytes <= PADDED).then_some(Padded { h, w })
    }

    /// Bytes of the padded image, with the slack after its last row.
    fn len(&self, g: &ConvGeometry) -> usize {
        self.h * self.w * g.c_in + 4
    }

    /// Writes `image` sign-flipped into its padded place in `buf` (whose padding
    /// already holds the flipped zero point, and keeps it from image to image).
    fn copy_image(&self, g: &ConvGeometry, image: &[i8], buf: &mut [u8]) {
        let c = g.c_in;
        for r in 0..g.h {
            let at = ((g.pad.0 + r) * self.w + g.pad.1) * c;
            x86::flip_into(
                &image[r * g.w * c..(r + 1) * g.w * c],
                &mut buf[at..at + g.w * c],
            );
        }
    }
}

/// The output columns `j_lo..j_hi` whose taps all lie inside the image's width, for
/// a convolution whose taps in a row are adjacent (`dilation.1 == 1`; none else).
#[cfg(target_arch = "x86_64")]
fn interior_columns(g: &ConvGeometry) -> (usize, usize) {
    if g.dilation.1 != 1 || g.w + g.pad.1 < g.kw {
        return (0, 0);
    }
    // left = j * s - pad >= 0 and left + kw <= w.
    let lo = g.pad.1.div_ceil(g.stride.1);
    let hi = ((g.w + g.pad.1 - g.kw) / g.stride.1 + 1).min(g.out_w);
    (lo.min(hi), hi)
}

/// [`gather_flipped`] for `count` adjacent output columns from `j`, all inside the
/// image's width (`interior_columns`), row of taps by row of taps: each row of taps
/// is `kw * c_in` adjacent input bytes, `stride.1 * c_in` further for each pixel, and
/// goes `step` further in the panel. Common row lengths are copied by fixed-size
/// code.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn gather_rows(
    g: &ConvGeometry,
    image: &[i8],
    i: usize,
    j: usize,
    count: usize,
    pad: u8,
    panel: &mut [u8],
    at: usize,
    step: usize,
) {
    let c = g.c_in;
    let row_len = g.kw * c;
    let top = (i * g.stride.0) as isize - g.pad.0 as isize;
    let left = j * g.stride.1 - g.pad.1;
    let src_step = g.stride.1 * c;
    for u in 0..g.kh {
        let d = at + u * row_len;
        let r = top + (u * g.dilation.0) as isize;
        if r < 0 || r >= g.h as isize {
            for t in 0..count {
                x86::fill_bytes(&mut panel[d + t * step..d + t * step + row_len], pad);
            }
            continue;
        }
        let src = (r as usize * g.w + left) * c;
        let run = Run {
            src,
            src_step,
            dst: d,
            dst_step: step,
            count,
        };
        match row_len {
            3 => run.copy::<3>(image, panel),
            9 => run.copy::<9>(image, panel),
            24 => run.copy::<24>(image, panel),
            _ => run.copy_len(row_len, image, panel),
        }
    }
}

/// `count` flipped copies from `image[src + t * src_step..]` to `panel[dst + t *
/// dst_step..]`.
#[cfg(target_arch = "x86_64")]
struct Run {
    src: usize,
    src_step: usize,
    dst: usize,
    dst_step: usize,
    count: usize,
}

#[cfg(target_arch = "x86_64")]
impl Run {
    /// Copies of `L` bytes (a constant, so [`x86::flip_into`] unrolls to exact words).
    #[inline]
    fn copy<const L: usize>(&self, image: &[i8], panel: &mut [u8]) {
        self.copy_len(L, image, panel);
    }

    #[inline(always)]
    fn copy_len(&self, len: usize, image: &[i8], panel: &mut [u8]) {
        for t in 0..self.count {
            let (s, d) = (self.src + t * self.src_step, self.dst + t * self.dst_step);
            x86::flip_into(&image[s..s + len], &mut panel[d..d + len]);
        }
    }
}

/// [`gather_patch`] for an ungrouped convolution, sign-flipped for the VNNI kernel
/// (taps off the image read `pad`, the flipped zero point), into `panel[at..at +
/// patch]`. A row of taps inside the image is copied as whole 8-byte words: the
/// last word may spill into the bytes after the row, which the next row of taps (or
/// the next pixel, or the panel's padding, which meets zero weights) overwrites
/// since pixels are gathered in order; where a word would read or write past a
/// slice, bytes are copied exactly. Runs once per output pixel, so it slices by
/// offsets (no `chunks`, whose division costs as much as a short copy).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn gather_flipped(
    g: &ConvGeometry,
    image: &[i8],
    i: usize,
    j: usize,
    pad: u8,
    panel: &mut [u8],
    at: usize,
) {
    const FLIP: u64 = 0x8080_8080_8080_8080;
    // Coordinates fit in isize: `validate` checked the farthest tap.
    let top = (i * g.stride.0) as isize - g.pad.0 as isize;
    let left = (j * g.stride.1) as isize - g.pad.1 as isize;
    let c = g.c_in;
    let row_len = g.kw * c;
    let span = row_len.next_multiple_of(8);
    let inside = g.dilation.1 == 1 && left >= 0 && left as usize + g.kw <= g.w;
    // SAFETY: i8 and u8 have the same size and alignment; the bytes are read only.
    let bytes = unsafe { core::slice::from_raw_parts(image.as_ptr().cast::<u8>(), image.len()) };
    for u in 0..g.kh {
        let d = at + u * row_len;
        let r = top + (u * g.dilation.0) as isize;
        if r < 0 || r >= g.h as isize {
            x86::fill_bytes(&mut panel[d..d + row_len], pad);
            continue;
        }
        let row = r as usize * g.w * c;
        if inside {
            let src = row + left as usize * c;
            if src + span <= image.len() && d + span <= panel.len() {
                let (from, to) = (&bytes[src..src + span], &mut panel[d..d + span]);
                for (s, t) in from.chunks_exact(8).zip(to.chunks_exact_mut(8)) {
                    let word = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
                    t.copy_from_slice(&(word ^ FLIP).to_le_bytes());
                }
            } else {
                x86::flip_into(&image[src..src + row_len], &mut panel[d..d + row_len]);
            }
            continue;
        }
        for v in 0..g.kw {
            let tap = &mut panel[d + v * c..d + (v + 1) * c];
            let col = left + (v * g.dilation.1) as isize;
            if col >= 0 && col < g.w as isize {
                let src = row + col as usize * c;
                x86::flip_into(&image[src..src + c], tap);
            } else {
                x86::fill_bytes(tap, pad);
            }
        }
    }
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
