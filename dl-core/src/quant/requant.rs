//! The output stage shared by dense and convolution layers ([`Requant`]), and the
//! folding of the input zero point into the bias ([`fold_input_offset`]).

use super::fixed::{
    check_activation, check_len, check_shift, check_zero_point,
    multiply_by_quantized_multiplier_fast,
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
    /// multiplier `>= 0`, every shift in `-31..=30`, the zero point in `-128..=127`, `act_min <= act_max`.
    /// Every kernel taking a `Requant` calls this first.
    pub fn validate(&self, channels: usize) -> Result<()> {
        const OP: &str = "Requant";
        let n = self.multiplier.len();
        if n != 1 {
            check_len(OP, "multiplier (per channel, or 1)", channels, n)?;
        }
        check_len(OP, "shift (as multiplier)", n, self.shift.len())?;
        // Branch-free scans: the kernels call this on every run, and a layer has
        // hundreds of channels.
        if !shifts_in_range(self.shift) {
            for &s in self.shift {
                check_shift(OP, "shift", i32::from(s))?;
            }
        }
        if self.multiplier.iter().fold(0, |acc, &m| acc | m) < 0 {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "multiplier",
                value: self.multiplier.iter().copied().min().unwrap_or(0) as f64,
                valid: "0..=2147483647 (TFLite's QuantizeMultiplier gives [2^30, 2^31) or 0)",
            });
        }
        check_zero_point(OP, "output_zero_point", self.output_zero_point)?;
        check_activation(OP, self.act_min, self.act_max)
    }

    /// The output stages of channels `ch0..ch0 + n` (inside the validated channels),
    /// for kernels that walk the channels in order.
    #[inline(always)]
    pub(crate) fn stages(&self, ch0: usize, n: usize) -> Stages<'_> {
        if self.multiplier.len() == 1 {
            Stages::PerTensor(self.channel(0))
        } else {
            Stages::PerChannel(&self.multiplier[ch0..ch0 + n], &self.shift[ch0..ch0 + n])
        }
    }

    /// The multiplier and shift of channel `o` (`o < channels` of
    /// [`validate`](Self::validate)).
    #[inline(always)]
    pub(crate) fn channel(&self, o: usize) -> (i32, i32) {
        let i = if self.multiplier.len() == 1 { 0 } else { o };
        (self.multiplier[i], i32::from(self.shift[i]))
    }

    /// The requantized output for accumulator `acc` with a channel's `(multiplier,
    /// shift)` from [`channel`](Self::channel) (after [`validate`](Self::validate)).
    #[inline(always)]
    pub(crate) fn finish(&self, (multiplier, shift): (i32, i32), acc: i32) -> i8 {
        let scaled = multiply_by_quantized_multiplier_fast(acc, multiplier, shift);
        // TFLM adds the offset in plain `int32_t` arithmetic: wrapping, as compiled.
        let out = scaled.wrapping_add(self.output_zero_point);
        // `max` then `min` (not `clamp`, whose `min <= max` assert validate has
        // already made).
        out.max(i32::from(self.act_min))
            .min(i32::from(self.act_max)) as i8
    }

    /// `y[i] = ` the requantized `acc[i]` of channel `ch0 + i` (channels inside the
    /// validated ones; `y` as long as `acc`): the output stage of a run of channels
    /// in one tight loop (a function of its own, so that the loop has every register).
    #[inline(never)]
    pub(crate) fn requantize(&self, ch0: usize, acc: &[i32], y: &mut [i8]) {
        // Layers without a fused clamp narrower than int8 (ReLU onto a zero point of
        // -128 included) saturate in one instruction (`SSAT` on Arm).
        if (self.act_min, self.act_max) == (i8::MIN, i8::MAX) {
            self.requantize_with(ch0, acc, y, |v| v.clamp(-128, 127) as i8)
        } else {
            let (lo, hi) = (i32::from(self.act_min), i32::from(self.act_max));
            self.requantize_with(ch0, acc, y, |v| v.max(lo).min(hi) as i8)
        }
    }

    /// [`requantize`](Self::requantize) with the output clamp `clamp`.
    #[inline(always)]
    fn requantize_with(&self, ch0: usize, acc: &[i32], y: &mut [i8], clamp: impl Fn(i32) -> i8) {
        let zp = self.output_zero_point;
        let scale = |a, m, s| multiply_by_quantized_multiplier_fast(a, m, s).wrapping_add(zp);
        match self.stages(ch0, acc.len()) {
            Stages::PerTensor((m, s)) => {
                for (out, &a) in y.iter_mut().zip(acc) {
                    *out = clamp(scale(a, m, s));
                }
            }
            Stages::PerChannel(m, s) => {
                for (((out, &a), &m), &s) in y.iter_mut().zip(acc).zip(m).zip(s) {
                    *out = clamp(scale(a, m, i32::from(s)));
                }
            }
        }
    }

    /// The requantized output of channel `o` for accumulator `acc` (after
    /// [`validate`](Self::validate)).
    #[inline]
    pub(crate) fn apply(&self, o: usize, acc: i32) -> i8 {
        self.finish(self.channel(o), acc)
    }
}

/// Whether every shift is in `-31..=30`, four at a time: a byte `s` is in range when
/// `(s + 31) mod 256 < 62`, and both steps work on the bytes of a word at once
/// (additions on 7 bits, so no carry crosses into the next byte).
fn shifts_in_range(shift: &[i8]) -> bool {
    const HIGH: u32 = 0x8080_8080;
    let words = shift.chunks_exact(4);
    let tail = words.remainder().iter().all(|s| (-31..=30).contains(s));
    let bad = words.fold(0, |bad, s| {
        let w = u32::from_le_bytes([s[0] as u8, s[1] as u8, s[2] as u8, s[3] as u8]);
        let t = ((w & !HIGH) + 0x1f1f_1f1f) ^ (w & HIGH); // every byte + 31
        bad | ((t & !HIGH) + 0x4242_4242) | t // high bit: byte >= 62
    });
    tail && bad & HIGH == 0
}

/// The multipliers and shifts of a run of channels ([`Requant::stages`]).
pub(crate) enum Stages<'a> {
    /// One `(multiplier, shift)` for every channel.
    PerTensor((i32, i32)),
    /// The channels' multipliers and shifts.
    PerChannel(&'a [i32], &'a [i8]),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time range check against the plain one, for every shift value
    /// in every position of a word and in the tail.
    #[test]
    fn shift_range_check_equals_plain_check() {
        for v in i8::MIN..=i8::MAX {
            for len in 1..=9 {
                for pos in 0..len {
                    let mut shift = [-31i8, 30, 0, -1, 5, -17, 29, -30, 1];
                    shift[pos] = v;
                    let s = &shift[..len];
                    assert_eq!(
                        shifts_in_range(s),
                        s.iter().all(|x| (-31..=30).contains(x)),
                        "{s:?}"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod validate_tests {
    use super::*;

    /// A negative multiplier (outside what TFLite's `QuantizeMultiplier` gives, and
    /// where the kernels' fast path would not equal TFLM's saturating arithmetic) is
    /// refused, naming itself and its range.
    #[test]
    fn negative_multiplier_is_refused_by_name() {
        let rq = Requant {
            multiplier: &[1 << 30, -5],
            shift: &[0, -3],
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        match rq.validate(2) {
            Err(Error::InvalidParameter { name, valid, .. }) => {
                assert_eq!(name, "multiplier");
                assert!(valid.starts_with("0..=2147483647"));
            }
            other => panic!("expected the multiplier refused, got {other:?}"),
        }
        let bad_shift = Requant {
            shift: &[0, 31],
            multiplier: &[1 << 30, 1 << 30],
            ..rq
        };
        assert!(matches!(
            bad_shift.validate(2),
            Err(Error::InvalidParameter { name: "shift", .. })
        ));
    }
}
