//! The output stage shared by dense and convolution layers ([`Requant`]), and the
//! folding of the input zero point into the bias ([`fold_input_offset`]).

use super::fixed::{
    check_activation, check_len, check_shift, check_zero_point, multiply_by_quantized_multiplier,
};
use crate::error::{Error, Result};

/// Output requantization of an int8 layer, per output channel (slices of length
/// `c_out`) or per tensor (length 1): TFLM's
/// `acc = MultiplyByQuantizedMultiplier(acc, multiplier[o], shift[o]) + output_offset`
/// then `clamp(acc, act_min, act_max)`, as in `reference_integer_ops::ConvPerChannel`
/// and `FullyConnectedPerChannel`.
///
/// `multiplier`/`shift` come from [`super::quantize_multiplier`] of
/// `input_scale * weight_scale[o] / output_scale`. `act_min`/`act_max` are the fused
/// activation's range in the output's quantized domain (`-128, 127` for none;
/// `max(-128, zp), 127` for ReLU).
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    /// Fixed-point multipliers in `[2^30, 2^31)` (or 0), one per channel or one.
    pub multiplier: &'a [i32],
    /// Their shifts (`-31..=30`); positive shifts left.
    pub shift: &'a [i8],
    /// The output's zero point (`-128..=127`).
    pub output_zero_point: i32,
    /// Lower clamp of the output, in its quantized domain.
    pub act_min: i8,
    /// Upper clamp of the output (`>= act_min`).
    pub act_max: i8,
}

impl Requant<'_> {
    /// Errors unless the parameters fit a layer of `channels` outputs:
    /// `multiplier` and `shift` both of length `channels` or both of length 1, every
    /// shift in `-31..=30`, the zero point in `-128..=127`, `act_min <= act_max`.
    /// Every kernel taking a `Requant` calls this first.
    pub fn validate(&self, channels: usize) -> Result<()> {
        const OP: &str = "Requant";
        let n = self.multiplier.len();
        if n != 1 {
            check_len(OP, "multiplier (per channel, or 1)", channels, n)?;
        }
        check_len(OP, "shift (as multiplier)", n, self.shift.len())?;
        for &s in self.shift {
            check_shift(OP, "shift", i32::from(s))?;
        }
        check_zero_point(OP, "output_zero_point", self.output_zero_point)?;
        check_activation(OP, self.act_min, self.act_max)
    }

    /// The requantized output of channel `o` for accumulator `acc` (after
    /// [`validate`](Self::validate)).
    #[inline]
    pub(crate) fn apply(&self, o: usize, acc: i32) -> i8 {
        let i = if self.multiplier.len() == 1 { 0 } else { o };
        let scaled =
            multiply_by_quantized_multiplier(acc, self.multiplier[i], i32::from(self.shift[i]));
        // TFLM adds the offset in plain `int32_t` arithmetic: wrapping, as compiled.
        let out = scaled.wrapping_add(self.output_zero_point);
        out.clamp(i32::from(self.act_min), i32::from(self.act_max)) as i8
    }
}

/// Folds the input zero point into the bias: `out[o] = bias[o] - input_zero_point *
/// sum_k w[o, k]` for weights `w` of shape `[rows, cols]` (row-major; `[c_out, kh *
/// kw * c_in / groups]` for a convolution). A missing bias counts as zeros.
///
/// TFLM computes `bias[o] + sum_k w[o, k] * (x[k] + input_offset)` with
/// `input_offset = -input_zero_point`; with the folded bias the inner loops multiply
/// raw int8 inputs by int8 weights, as CMSIS-NN does, and get the same 32-bit sum.
/// Padded convolution taps then read `input_zero_point` itself and add nothing, as
/// TFLM's skipped taps do. Compute it once when the model is loaded.
///
/// Errors: `LengthMismatch` for `w`, `bias` or `out`; `Overflow` if a folded bias
/// does not fit in `i32`.
pub fn fold_input_offset(
    w: &[i8],
    rows: usize,
    cols: usize,
    bias: Option<&[i32]>,
    input_zero_point: i32,
    out: &mut [i32],
) -> Result<()> {
    const OP: &str = "fold_input_offset";
    let len = rows.checked_mul(cols).ok_or(Error::Overflow { op: OP })?;
    check_len(OP, "weights", len, w.len())?;
    if let Some(b) = bias {
        check_len(OP, "bias", rows, b.len())?;
    }
    check_len(OP, "output", rows, out.len())?;
    if cols == 0 {
        for (o, slot) in out.iter_mut().enumerate() {
            *slot = bias.map_or(0, |b| b[o]);
        }
        return Ok(());
    }
    for (o, (row, slot)) in w.chunks_exact(cols).zip(out.iter_mut()).enumerate() {
        // |sum| <= 128 * cols fits in i64 for any slice a machine can hold.
        let sum: i64 = row.iter().map(|&v| i64::from(v)).sum();
        let folded = i64::from(input_zero_point)
            .checked_mul(sum)
            .and_then(|p| i64::from(bias.map_or(0, |b| b[o])).checked_sub(p))
            .and_then(|v| i32::try_from(v).ok())
            .ok_or(Error::Overflow { op: OP })?;
        *slot = folded;
    }
    Ok(())
}
