//! Int8 pooling on NHWC activations: max and average (TFLM's
//! `reference_integer_ops::MaxPool` / `AveragePool`) and the global mean over height
//! and width (TFLM's `MEAN`, `reference_ops::QuantizedMeanOrSum`).

use super::conv::{check_reach, out_size, positive};
use super::fixed::{
    as_tflite_scale, check_activation, check_len, check_scale, check_shift, check_zero_point, mul,
    multiply_by_quantized_multiplier, quantize_multiplier,
};
use super::kernel::Kernel;
use crate::error::{Error, Result};

/// Sizes of a 2-D pooling: input `[n, h, w, c]` (NHWC), output `[n, out_h, out_w, c]`;
/// window `kh x kw` at `(i * stride.0 - pad.0, j * stride.1 - pad.1)`.
///
/// [`PoolGeometry::new`] takes PyTorch's rules (`pad <= k / 2`, `out = (size + 2 * pad
/// - k) / stride + 1`); [`PoolGeometry::with_output_size`] takes TFLite's sizes
/// (`SAME`, `VALID`). Either way every window must overlap the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Batch size (may be 0).
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Stride `(rows, columns)`.
    pub stride: (usize, usize),
    /// Padding `(top, left)`.
    pub pad: (usize, usize),
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl PoolGeometry {
    /// The geometry with PyTorch's output size (`ceil_mode = False`), validated; also
    /// errors if `pad > k / 2` (PyTorch's rule).
    ///
    /// ```
    /// use dl_core::quant::PoolGeometry;
    /// let g = PoolGeometry::new(1, 28, 28, 8, 2, 2, (2, 2), (0, 0)).unwrap();
    /// assert_eq!((g.out_h, g.out_w), (14, 14));
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        n: usize,
        h: usize,
        w: usize,
        c: usize,
        kh: usize,
        kw: usize,
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Result<Self> {
        const OP: &str = "PoolGeometry";
        for (p, k) in [(pad.0, kh), (pad.1, kw)] {
            if p > k / 2 {
                return Err(Error::InvalidParameter {
                    op: OP,
                    name: "pad",
                    value: p as f64,
                    valid: "<= kernel / 2",
                });
            }
        }
        let out_h = out_size(OP, h, kh, stride.0, pad.0, 1)?;
        let out_w = out_size(OP, w, kw, stride.1, pad.1, 1)?;
        let g = PoolGeometry {
            n,
            h,
            w,
            c,
            kh,
            kw,
            stride,
            pad,
            out_h,
            out_w,
        };
        g.validate()?;
        Ok(g)
    }

    /// The same geometry with the output size given (TFLite: `SAME` has `out =
    /// ceil(size / stride)` and `pad = max((out - 1) * stride + k - size, 0) / 2`;
    /// `VALID` has `pad = 0`, `out = (size - k) / stride + 1`).
    pub fn with_output_size(mut self, out_h: usize, out_w: usize) -> Result<Self> {
        self.out_h = out_h;
        self.out_w = out_w;
        self.validate()?;
        Ok(self)
    }

    /// Errors unless every size except `n` is `>= 1`, every window overlaps the input
    /// (`pad < k` and `(out - 1) * stride <= size - 1 + pad`), a window has at most
    /// `i32::MAX` taps, and the buffer lengths fit in `usize`.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "PoolGeometry";
        for (name, v) in [
            ("h", self.h),
            ("w", self.w),
            ("c", self.c),
            ("kh", self.kh),
            ("kw", self.kw),
            ("stride", self.stride.0.min(self.stride.1)),
            ("out_h", self.out_h),
            ("out_w", self.out_w),
        ] {
            positive(OP, name, v)?;
        }
        check_reach(OP, self.out_h, self.stride.0, self.kh, 1, self.pad.0)?;
        check_reach(OP, self.out_w, self.stride.1, self.kw, 1, self.pad.1)?;
        for (size, k, stride, pad, out) in [
            (self.h, self.kh, self.stride.0, self.pad.0, self.out_h),
            (self.w, self.kw, self.stride.1, self.pad.1, self.out_w),
        ] {
            // check_reach bounded (out - 1) * stride.
            if pad >= k || (out - 1) * stride > (size - 1).saturating_add(pad) {
                return Err(Error::InvalidParameter {
                    op: OP,
                    name: "pad",
                    value: pad as f64,
                    valid: "< kernel, with every window overlapping the input",
                });
            }
        }
        match self.kh.checked_mul(self.kw) {
            Some(t) if t <= i32::MAX as usize => {}
            _ => return Err(Error::Overflow { op: OP }),
        }
        self.checked_len(self.h, self.w)
            .ok_or(Error::Overflow { op: OP })?;
        self.checked_len(self.out_h, self.out_w)
            .ok_or(Error::Overflow { op: OP })?;
        Ok(())
    }

    fn checked_len(&self, h: usize, w: usize) -> Option<usize> {
        self.n.checked_mul(h)?.checked_mul(w)?.checked_mul(self.c)
    }

    /// `n * h * w * c` (saturating, for an invalid geometry).
    pub fn input_len(&self) -> usize {
        self.checked_len(self.h, self.w).unwrap_or(usize::MAX)
    }

    /// `n * out_h * out_w * c` (saturating).
    pub fn output_len(&self) -> usize {
        self.checked_len(self.out_h, self.out_w)
            .unwrap_or(usize::MAX)
    }

    /// The in-bounds part of output pixel `(i, j)`'s window: input rows and columns.
    fn window(&self, i: usize, j: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
        let span = |o: usize, stride: usize, pad: usize, k: usize, size: usize| {
            // validate: o * stride <= size - 1 + pad, and pad < k.
            let start = o * stride;
            (start.max(pad) - pad)..((start + k).min(size + pad) - pad)
        };
        (
            span(i, self.stride.0, self.pad.0, self.kh, self.h),
            span(j, self.stride.1, self.pad.1, self.kw, self.w),
        )
    }

    /// Runs `f(output index, input window rows, columns, input base of the image)`
    /// for every output pixel.
    fn for_each_window(
        &self,
        mut f: impl FnMut(usize, &core::ops::Range<usize>, &core::ops::Range<usize>, usize),
    ) {
        for b in 0..self.n {
            for i in 0..self.out_h {
                for j in 0..self.out_w {
                    let (rows, cols) = self.window(i, j);
                    let out = ((b * self.out_h + i) * self.out_w + j) * self.c;
                    f(out, &rows, &cols, b * self.h * self.w * self.c);
                }
            }
        }
    }
}

fn check_pool(
    op: &'static str,
    g: &PoolGeometry,
    x: &[i8],
    y: &[i8],
    act_min: i8,
    act_max: i8,
) -> Result<()> {
    g.validate()?;
    check_len(op, "input", g.input_len(), x.len())?;
    check_len(op, "output", g.output_len(), y.len())?;
    check_activation(op, act_min, act_max)
}

/// Max pooling, TFLM's `reference_integer_ops::MaxPool`: the maximum over the
/// window's in-bounds taps (padding never wins), clamped to `[act_min, act_max]`.
/// Input and output share their quantization (TFLM requires it).
///
/// On x86-64 a 2x2 stride-2 unpadded window runs on AVX-512BW where
/// [`Kernel::best`] is `Avx512Vnni` (the same bits; see [`max_pool_s8_with`]).
///
/// Errors: the geometry's, `LengthMismatch` for `x` or `y`, `act_min > act_max`.
pub fn max_pool_s8(
    g: &PoolGeometry,
    x: &[i8],
    act_min: i8,
    act_max: i8,
    y: &mut [i8],
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    return max_pool_s8_with(Kernel::best(), g, x, act_min, act_max, y);
    #[cfg(not(target_arch = "x86_64"))]
    {
        check_pool("max_pool_s8", g, x, y, act_min, act_max)?;
        max_pool_portable(g, x, act_min, act_max, y);
        Ok(())
    }
}

/// [`max_pool_s8`] on a given [`Kernel`]: `Avx512Vnni` takes a 2x2 window with
/// stride 2, no padding and every window inside the input sixteen to sixty-four bytes
/// at a time (`vpmaxsb`); every other geometry and kernel runs the portable loop. The
/// same bits either way (a maximum does not depend on the order it is taken in).
/// `InvalidParameter` if the kernel cannot run here; otherwise as [`max_pool_s8`].
pub fn max_pool_s8_with(
    kernel: Kernel,
    g: &PoolGeometry,
    x: &[i8],
    act_min: i8,
    act_max: i8,
    y: &mut [i8],
) -> Result<()> {
    kernel.check("max_pool_s8")?;
    check_pool("max_pool_s8", g, x, y, act_min, act_max)?;
    #[cfg(target_arch = "x86_64")]
    if super::x86::max_pool_s8(kernel, g, x, act_min, act_max, y) {
        return Ok(());
    }
    max_pool_portable(g, x, act_min, act_max, y);
    Ok(())
}

/// TFLM's loop, any geometry (checked by the caller).
fn max_pool_portable(g: &PoolGeometry, x: &[i8], act_min: i8, act_max: i8, y: &mut [i8]) {
    let (w, c) = (g.w, g.c);
    g.for_each_window(|out, rows, cols, base| {
        for ch in 0..c {
            let mut m = i8::MIN;
            for r in rows.clone() {
                for col in cols.clone() {
                    m = m.max(x[base + (r * w + col) * c + ch]);
                }
            }
            y[out + ch] = m.clamp(act_min, act_max);
        }
    });
}

/// Average pooling with TFLM's rounding: `acc > 0 ? (acc + n / 2) / n : (acc - n / 2)
/// / n` (C's truncating division, so halves round away from zero), clamped to
/// `[act_min, act_max]`. Input and output share their quantization.
///
/// - `count_include_pad = false` is TFLM's `reference_integer_ops::AveragePool`: the
///   sum and the count `n` run over the in-bounds taps only.
/// - `count_include_pad = true` is PyTorch's `AvgPool2d` default: taps off the input
///   read `input_zero_point` (real 0) and `n = kh * kw`.
///
/// Errors: as [`max_pool_s8`].
pub fn avg_pool_s8(
    g: &PoolGeometry,
    x: &[i8],
    input_zero_point: i8,
    count_include_pad: bool,
    act_min: i8,
    act_max: i8,
    y: &mut [i8],
) -> Result<()> {
    check_pool("avg_pool_s8", g, x, y, act_min, act_max)?;
    let (w, c) = (g.w, g.c);
    // validate: kh * kw <= i32::MAX.
    let taps = (g.kh * g.kw) as i32;
    g.for_each_window(|out, rows, cols, base| {
        // At least one tap: validate made every window overlap the input.
        let inside = (rows.len() * cols.len()) as i32;
        let count = if count_include_pad { taps } else { inside };
        let padding = (taps - inside).wrapping_mul(i32::from(input_zero_point));
        for ch in 0..c {
            // TFLM sums in int32 (wrapping, as compiled, for absurd windows).
            let mut acc = 0i32;
            for r in rows.clone() {
                for col in cols.clone() {
                    acc = acc.wrapping_add(i32::from(x[base + (r * w + col) * c + ch]));
                }
            }
            if count_include_pad {
                acc = acc.wrapping_add(padding);
            }
            let avg = if acc > 0 {
                acc.wrapping_add(count / 2) / count
            } else {
                acc.wrapping_sub(count / 2) / count
            };
            y[out + ch] = avg.clamp(i32::from(act_min), i32::from(act_max)) as i8;
        }
    });
    Ok(())
}

/// Requantization of TFLite's int8 `MEAN` (see [`mean_params`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeanParams {
    /// The input's zero point (`-128..=127`).
    pub input_zero_point: i32,
    /// `QuantizeMultiplier(input_scale / output_scale)`: multiplier (`>= 0`).
    pub multiplier: i32,
    /// Its shift (`-31..=30`).
    pub shift: i32,
    /// The output's zero point (`-128..=127`).
    pub output_zero_point: i32,
}

/// TFLM's `PrepareMeanOrSumHelper` / `PrepareSimple` (`micro/kernels/reduce_common.cc`)
/// for int8: `QuantizeMultiplier((double)input_scale / (double)output_scale)`. Scales
/// are rounded to `f32` first (TFLite stores them as `float`).
///
/// Errors: `InvalidParameter` for a scale that is not finite and positive, a zero point
/// outside `-128..=127`, or a ratio of scales needing a shift above 30 (`>= 2^30`).
pub fn mean_params(
    input_scale: f64,
    input_zero_point: i32,
    output_scale: f64,
    output_zero_point: i32,
) -> Result<MeanParams> {
    const OP: &str = "mean_params";
    check_scale(OP, "input_scale", input_scale)?;
    check_scale(OP, "output_scale", output_scale)?;
    let real = as_tflite_scale(input_scale) / as_tflite_scale(output_scale);
    let (multiplier, shift) = quantize_multiplier(real)?;
    let p = MeanParams {
        input_zero_point,
        multiplier,
        shift,
        output_zero_point,
    };
    p.validate()?;
    Ok(p)
}

impl MeanParams {
    /// Errors unless both zero points are in `-128..=127`, `multiplier >= 0` and
    /// `shift` is in `-31..=30`.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "MeanParams";
        check_zero_point(OP, "input_zero_point", self.input_zero_point)?;
        check_zero_point(OP, "output_zero_point", self.output_zero_point)?;
        check_shift(OP, "shift", self.shift)?;
        if self.multiplier < 0 {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "multiplier",
                value: self.multiplier as f64,
                valid: ">= 0",
            });
        }
        Ok(())
    }
}

/// Global average over height and width, TFLite's `MEAN` over axes 1 and 2 with
/// `keep_dims` for int8, exactly as TFLM's `reference_ops::QuantizedMeanOrSum`
/// (`kernels/internal/reference/reduce.h`, which TFLM uses for every int8 `MEAN` since
/// 2023, equal or different input and output quantization alike):
///
/// - `sum` of the `num = h * w` inputs in int32;
/// - the `1 / num` factor folded into the multiplier: `s = min(floor(log2(num)), 32,
///   31 + shift)`, `multiplier' = (multiplier << s) / num`, `shift' = shift - s`;
/// - `y = clamp(MultiplyByQuantizedMultiplier(sum - input_zero_point * num,
///   multiplier', shift') + output_zero_point, -128, 127)`.
///
/// Shapes: `x` `[n, h, w, c]`, `y` `[n, 1, 1, c]`. With `h * w == 0` the output is all
/// zeros (TFLM returns early after zeroing it). Errors: `LengthMismatch`, `Overflow`,
/// and [`MeanParams::validate`]'s.
#[allow(clippy::too_many_arguments)]
pub fn mean_hw_s8(
    p: &MeanParams,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    x: &[i8],
    y: &mut [i8],
) -> Result<()> {
    const OP: &str = "mean_hw_s8";
    p.validate()?;
    let num = mul(OP, h, w)?;
    let per_image = mul(OP, num, c)?;
    check_len(OP, "input", mul(OP, n, per_image)?, x.len())?;
    check_len(OP, "output", mul(OP, n, c)?, y.len())?;
    if num == 0 || c == 0 {
        y.fill(0);
        return Ok(());
    }
    let num64 = i64::try_from(num).map_err(|_| Error::Overflow { op: OP })?;
    // floor(log2(num)): TFLM's `63 - CountLeadingZeros(uint64_t(num))`.
    let mut s = 63 - num64.leading_zeros() as i32;
    s = s.min(32).min(31 + p.shift);
    let multiplier = ((i64::from(p.multiplier) << s) / num64) as i32;
    let shift = p.shift - s;
    for (image, out) in x.chunks_exact(per_image).zip(y.chunks_exact_mut(c)) {
        for (ch, slot) in out.iter_mut().enumerate() {
            let sum = image[ch..]
                .iter()
                .step_by(c)
                .fold(0i32, |a, &v| a.wrapping_add(i32::from(v)));
            // `temp_sum - input_zero_point * num` in int64, then cast to int32.
            let shifted = i64::from(sum)
                .wrapping_sub(i64::from(p.input_zero_point).wrapping_mul(num64))
                as i32;
            let out = multiply_by_quantized_multiplier(shifted, multiplier, shift)
                .wrapping_add(p.output_zero_point);
            *slot = out.clamp(-128, 127) as i8;
        }
    }
    Ok(())
}
