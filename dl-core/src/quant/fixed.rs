//! TFLite's fixed-point requantization primitives (gemmlowp's scalar arithmetic and
//! TFLM's double-rounding `MultiplyByQuantizedMultiplier`), bit for bit.
//!
//! Where TFLM's C++ lets an `int32_t` overflow (undefined behaviour that its kernels
//! mark `TFLITE_NO_SANITIZE_INTEGER_OVERFLOW` and that compiles to plain wrapping
//! machine arithmetic), these functions wrap explicitly, so they are total: no input
//! panics, and every input inside TFLM's contract gives TFLM's answer.

use crate::error::{Error, Result};

/// TFLite's `QuantizeMultiplier` (`tensorflow/lite/kernels/internal/quantization_util.cc`,
/// the default build without `TFLITE_EMULATE_FLOAT` or `TFLITE_SINGLE_ROUNDING`):
/// `real ~= multiplier * 2^(shift - 31)` with `multiplier` in `[2^30, 2^31)`.
///
/// - `0.0` gives `(0, 0)`.
/// - `frexp` then `round(q * 2^31)` (half away from zero, as `std::round`); a
///   mantissa that rounds up to `2^31` is halved and the shift incremented.
/// - A shift below `-31` (roughly `real < 2^-32`) flushes to `(0, 0)`, as TFLite
///   does ("flush denormals to zero").
/// - A shift above 30 (`real >= 2^30`) is returned unchanged, as TFLite's
///   double-rounding build does; [`multiply_by_quantized_multiplier`] is undefined for
///   it in C++, and the kernels of this module reject it (`Requant` and friends
///   check `-31 <= shift <= 30`). Convert the shift with `i8::try_from`, never `as`.
///
/// Errors with `InvalidParameter` for a negative or non-finite `real` (TFLite would
/// silently produce a negative multiplier or garbage).
///
/// ```
/// use dl_core::quant::quantize_multiplier;
/// assert_eq!(quantize_multiplier(1.0).unwrap(), (1 << 30, 1));
/// assert_eq!(quantize_multiplier(0.5).unwrap(), (1 << 30, 0));
/// assert_eq!(quantize_multiplier(0.0).unwrap(), (0, 0));
/// ```
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32)> {
    if !real.is_finite() || real < 0.0 {
        return Err(Error::InvalidParameter {
            op: "quantize_multiplier",
            name: "real",
            value: real,
            valid: "finite and >= 0",
        });
    }
    if real == 0.0 {
        return Ok((0, 0));
    }
    let (q, mut shift) = libm::frexp(real);
    // `q` is in [0.5, 1), so the product is at most 2^31 and the cast is exact.
    let mut q_fixed = libm::round(q * (1i64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        return Ok((0, 0));
    }
    Ok((q_fixed as i32, shift))
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` for `int32_t`: the high 32 bits of
/// `2 * a * b`, i.e. `a * b / 2^31`, rounded to nearest with ties upwards (`0.5 -> 1`
/// but `-0.5 -> 0`); the one overflowing case, `a == b == i32::MIN`, saturates to
/// `i32::MAX`. Arm's `SQRDMULH`.
///
/// ```
/// use dl_core::quant::saturating_rounding_doubling_high_mul as srdhm;
/// assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
/// assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29); // 0.5 * 0.5 = 0.25 in Q0.31
/// assert_eq!((srdhm(1, 1 << 30), srdhm(-1, 1 << 30)), (1, 0)); // +-0.5
/// ```
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Truncating division, as C++'s `/` (not an arithmetic shift): with the
    // sign-dependent nudge (2^30, or 1 - 2^30 below zero) it rounds ties upwards.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away
/// from zero.
///
/// gemmlowp asserts `0 <= exponent <= 31`. Outside it this function stays total: a
/// negative exponent is taken as 0, and an exponent above 31 gives the correctly
/// rounded quotient (0, except `-1` for `x == i32::MIN` at exactly 32, the one tie).
///
/// ```
/// use dl_core::quant::rounding_divide_by_pot as rdbpot;
/// assert_eq!((rdbpot(5, 1), rdbpot(-5, 1)), (3, -3)); // +-2.5: ties away from zero
/// assert_eq!((rdbpot(6, 2), rdbpot(-6, 2)), (2, -2)); // +-1.5
/// ```
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return x;
    }
    if exponent > 31 {
        return if exponent == 32 && x == i32::MIN {
            -1
        } else {
            0
        };
    }
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLM's `MultiplyByQuantizedMultiplier(int32_t x, int32_t quantized_multiplier, int
/// shift)` (`tensorflow/lite/kernels/internal/common.cc`, the default
/// double-rounding build): `x * multiplier * 2^(shift - 31)` as
/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0),
/// multiplier), max(-shift, 0))`.
///
/// The left shift multiplies in wrapping 32-bit arithmetic as TFLM's compiled code
/// does (its C++ overflow is undefined; a shift of 32 or more wraps to 0). TFLM's
/// contract is `-31 <= shift <= 30`.
///
/// ```
/// use dl_core::quant::{multiply_by_quantized_multiplier as mbqm, quantize_multiplier};
/// let (m, s) = quantize_multiplier(0.25).unwrap();
/// assert_eq!((mbqm(100, m, s), mbqm(-6, m, s), mbqm(-5, m, s)), (25, -2, -1));
/// ```
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = shift.max(0);
    let right_shift = shift.saturating_neg().max(0);
    let scaled = if left_shift < 32 {
        x.wrapping_mul(1i32.wrapping_shl(left_shift as u32))
    } else {
        0
    };
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(scaled, multiplier),
        right_shift,
    )
}

/// [`multiply_by_quantized_multiplier`] inside TFLM's contract (`multiplier >= 0`,
/// `-31 <= shift <= 30`, which [`super::Requant::validate`] checks), in a third of the
/// instructions and without branches: the per-output step of every dense and
/// convolution layer.
///
/// Both roundings are folded into one 64-bit sum, starting from
/// `p = (x << max(shift, 0)) * multiplier + 2^30` and `e = max(-shift, 0)`:
/// - With `multiplier >= 0` the doubling high multiply cannot saturate (only
///   `i32::MIN * i32::MIN` does), and its rounding, `trunc((ab + nudge) / 2^31)` with
///   a sign-dependent nudge, is `h = floor(p / 2^31)`: for `ab < 0`,
///   `trunc((ab + 1 - 2^30) / 2^31) = -floor((2^31 - 1 - p) / 2^31) = floor(p / 2^31)`
///   (CMSIS-NN's `arm_nn_doubling_high_mult_no_sat`).
/// - `RoundingDivideByPOT(h, e)` (ties away from zero) is `h` for `e = 0`, else
///   `floor((h + 2^(e-1) - [h < 0]) / 2^e)`, and `h < 0` exactly when `p < 0`.
/// - `floor(floor(y / 2^31) / 2^e) = floor(y / 2^(31+e))`, so for `e >= 1` the result
///   is the high word of `p + (2^(e-1) - [p < 0]) * 2^31`, shifted right by `e - 1`:
///   no overflow, as `|p| < 2^62 + 2^30`.
///
/// Outside the contract the result is unspecified, but the function stays total.
#[inline(always)]
pub(crate) fn multiply_by_quantized_multiplier_fast(x: i32, multiplier: i32, shift: i32) -> i32 {
    if shift < 0 {
        // A right shift (a real multiplier below 0.5: every layer in practice), by
        // `e = -shift`; `e - 1 = !shift`.
        let e1 = (!shift) as u32 & 31;
        let p = i64::from(x) * i64::from(multiplier) + (1 << 30);
        // `high >> 31` is -1 below zero: an arithmetic form of `- [p < 0]` that
        // compiles to one shifted add, where a comparison would redo the product.
        let high = (p >> 32) as i32;
        // `round` is never negative (`2^e1 - 1 >= 0` below zero); as `u32` its high
        // bits stay clear without a sign extension.
        let round = (1i32 << e1).wrapping_add(high >> 31) as u32;
        return (((p + (i64::from(round) << 31)) >> 32) as i32) >> e1;
    }
    let p = i64::from(x.wrapping_shl(shift as u32)) * i64::from(multiplier) + (1 << 30);
    (p >> 31) as i32
}

/// Errors unless `shift` is inside TFLM's contract for
/// [`multiply_by_quantized_multiplier`], `-31..=30`.
pub(crate) fn check_shift(op: &'static str, name: &'static str, shift: i32) -> Result<()> {
    if (-31..=30).contains(&shift) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name,
            value: shift as f64,
            valid: "-31..=30",
        })
    }
}

/// Errors unless `zero_point` is a valid int8 zero point (TFLite's quantization spec:
/// `-128..=127`).
pub(crate) fn check_zero_point(
    op: &'static str,
    name: &'static str,
    zero_point: i32,
) -> Result<()> {
    if (-128..=127).contains(&zero_point) {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name,
            value: zero_point as f64,
            valid: "-128..=127",
        })
    }
}

/// Errors unless `min <= max` (TFLite DCHECKs `quantized_activation_min <= max`).
pub(crate) fn check_activation(op: &'static str, min: i8, max: i8) -> Result<()> {
    if min <= max {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name: "act_min",
            value: min as f64,
            valid: "<= act_max",
        })
    }
}

/// Errors unless `scale` is a usable quantization scale: finite and `> 0`.
pub(crate) fn check_scale(op: &'static str, name: &'static str, scale: f64) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name,
            value: scale,
            valid: "finite and > 0",
        })
    }
}

/// A `LengthMismatch` error unless `actual == expected`.
pub(crate) fn check_len(
    op: &'static str,
    what: &'static str,
    expected: usize,
    actual: usize,
) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op,
            what,
            expected,
            actual,
        })
    }
}

/// `a * b`, or `Overflow` naming `op`.
pub(crate) fn mul(op: &'static str, a: usize, b: usize) -> Result<usize> {
    a.checked_mul(b).ok_or(Error::Overflow { op })
}

/// TFLite stores scales as `float`: rounding through `f32` first makes the `double`
/// arithmetic of TFLM's prepare functions see exactly what it sees in a model.
pub(crate) fn as_tflite_scale(scale: f64) -> f64 {
    f64::from(scale as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The fast path against the reference on the edges: saturating products, ties,
    /// every shift, the largest and smallest accumulators.
    #[test]
    fn fast_multiply_equals_reference_on_edges() {
        let xs = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30),
            -3,
            -2,
            -1,
            0,
            1,
            2,
            3,
            1 << 30,
            i32::MAX - 1,
            i32::MAX,
        ];
        let ms = [0, 1, 1 << 30, (1 << 30) + 1, i32::MAX - 1, i32::MAX];
        for shift in -31..=30 {
            for &m in &ms {
                for &x in &xs {
                    assert_eq!(
                        multiply_by_quantized_multiplier_fast(x, m, shift),
                        multiply_by_quantized_multiplier(x, m, shift),
                        "x {x} multiplier {m} shift {shift}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn fast_multiply_equals_reference(
            x in any::<i32>(),
            m in 0..=i32::MAX,
            shift in -31i32..=30,
            small in -(1i32 << 12)..(1 << 12),
        ) {
            prop_assert_eq!(
                multiply_by_quantized_multiplier_fast(x, m, shift),
                multiply_by_quantized_multiplier(x, m, shift)
            );
            // Accumulators near a rounding tie (small values, typical multipliers).
            let m = m | (1 << 30);
            prop_assert_eq!(
                multiply_by_quantized_multiplier_fast(small, m, shift),
                multiply_by_quantized_multiplier(small, m, shift)
            );
        }
    }
}
