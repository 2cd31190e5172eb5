//! Int8 softmax (int8 in, int8 out with scale 1/256 and zero point -128), exactly as
//! TFLM: parameters from `micro/kernels/softmax_common.cc` (`CalculateSoftmaxParams`,
//! with `PreprocessSoftmaxScaling` and `CalculateInputRadius` from
//! `kernels/internal/quantization_util.cc`), evaluation from
//! `kernels/internal/reference/softmax.h` (the gemmlowp fixed-point path).
//!
//! The fixed-point helpers below are gemmlowp's (`fixedpoint/fixedpoint.h`) for the
//! formats this kernel uses, written on raw `i32`s: `exp` of a Q5.26 input into Q0.31,
//! sums in Q12.19, and `1 / (1 + x)` by Newton-Raphson in Q2.29. gemmlowp's plain
//! `+`/`-` on raw values wrap (as compiled), hence `wrapping_*`.

use super::fixed::{
    as_tflite_scale, check_len, quantize_multiplier, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul as srdhm,
};
use crate::error::{Error, Result};

/// Parameters of the int8 softmax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftmaxParams {
    /// Fixed-point multiplier of `beta * input_scale * 2^26`.
    pub input_multiplier: i32,
    /// Its left shift (`0..=31`).
    pub input_left_shift: i32,
    /// Differences `x - max` below this are taken as `exp = 0` (`<= 0`).
    pub diff_min: i32,
}

/// Integer bits of the scaled input differences (Q5.26), TFLite's
/// `kScaledDiffIntegerBits`.
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19), `kAccumulationIntegerBits`.
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// TFLM's `CalculateSoftmaxParams` for int8 input and int8 output:
/// `PreprocessSoftmaxScaling(beta, input_scale, 5)` (`real = min(beta * input_scale *
/// 2^26, 2^31 - 1)` through `QuantizeMultiplierGreaterThanOne`) and `diff_min =
/// -floor(31 * 2^26 / 2^input_left_shift)` (`CalculateInputRadius(5, shift, 31)`).
/// `input_scale` and `beta` are rounded to `f32` first (TFLite stores both as `float`).
///
/// The output must be quantized with scale 1/256 and zero point -128, as TFLM requires.
///
/// Errors: `InvalidParameter` if `input_scale` or `beta` is not finite and positive, or
/// if `beta * input_scale * 2^26 <= 1` (TFLM's `TFLITE_CHECK_GT(double_multiplier,
/// 1.)` would abort).
pub fn softmax_params(input_scale: f64, beta: f64) -> Result<SoftmaxParams> {
    const OP: &str = "softmax_params";
    let (scale, beta) = (as_tflite_scale(input_scale), as_tflite_scale(beta));
    for (name, v) in [("input_scale", scale), ("beta", beta)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::InvalidParameter {
                op: OP,
                name,
                value: v,
                valid: "finite and > 0",
            });
        }
    }
    // TFLM's PreprocessSoftmaxScaling, double-rounding build.
    let max_real_multiplier = ((1i64 << 31) - 1) as f64;
    let real = (beta * scale * f64::from(1i32 << (31 - SCALED_DIFF_INTEGER_BITS)))
        .min(max_real_multiplier);
    if real <= 1.0 {
        return Err(Error::InvalidParameter {
            op: OP,
            name: "beta * input_scale",
            value: beta * scale,
            valid: "> 2^-26 (TFLite's QuantizeMultiplierGreaterThanOne)",
        });
    }
    let (input_multiplier, input_left_shift) = quantize_multiplier(real)?;
    // CalculateInputRadius(5, input_left_shift, 31); the shift is in 1..=31 here.
    let max_input_rescaled = f64::from((1i32 << SCALED_DIFF_INTEGER_BITS) - 1)
        * (1i64 << (31 - SCALED_DIFF_INTEGER_BITS)) as f64
        / (1i64 << input_left_shift) as f64;
    let diff_min = -(libm::floor(max_input_rescaled) as i32);
    let p = SoftmaxParams {
        input_multiplier,
        input_left_shift,
        diff_min,
    };
    p.validate()?;
    Ok(p)
}

impl SoftmaxParams {
    /// Errors unless `input_left_shift` is in `0..=31` and `diff_min <= 0` (so the row's
    /// maximum always counts and the sum of exponentials is positive).
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "SoftmaxParams";
        if !(0..=31).contains(&self.input_left_shift) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "input_left_shift",
                value: self.input_left_shift as f64,
                valid: "0..=31",
            });
        }
        if self.diff_min > 0 {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "diff_min",
                value: self.diff_min as f64,
                valid: "<= 0",
            });
        }
        Ok(())
    }

    /// `MultiplyByQuantizedMultiplierGreaterThanOne(diff, multiplier, left_shift)`:
    /// the difference in Q5.26.
    #[inline]
    fn scale_diff(&self, diff: i32) -> i32 {
        srdhm(
            diff.wrapping_mul(1i32.wrapping_shl(self.input_left_shift as u32)),
            self.input_multiplier,
        )
    }
}

/// Softmax over each row of `row_len` values, TFLM's `reference_ops::Softmax<int8_t,
/// int8_t>`: for `diff = x - max(row) >= diff_min`, `exp(diff * beta * scale)` in
/// gemmlowp fixed point, summed in Q12.19, the sum's reciprocal by `GetReciprocal`,
/// and `y = clamp(RoundingDivideByPOT(reciprocal * exp, bits) - 128, -128, 127)`;
/// smaller differences give -128. The output means `(y + 128) / 256`.
///
/// Errors: `InvalidParameter` for `row_len == 0`, `LengthMismatch` if `x.len() !=
/// y.len()` or is not a multiple of `row_len`, [`SoftmaxParams::validate`]'s, and
/// `Overflow` for a row whose sum of exponentials reaches 512 (e.g. 512 equal values),
/// where TFLM's `TFLITE_CHECK(0 <= exponent && exponent <= 31)` aborts; the rows
/// before it are written.
pub fn softmax_s8(p: &SoftmaxParams, x: &[i8], row_len: usize, y: &mut [i8]) -> Result<()> {
    const OP: &str = "softmax_s8";
    p.validate()?;
    if row_len == 0 {
        return Err(Error::InvalidParameter {
            op: OP,
            name: "row_len",
            value: 0.0,
            valid: ">= 1",
        });
    }
    check_len(OP, "output", x.len(), y.len())?;
    check_len(
        OP,
        "input (a multiple of row_len)",
        x.len() / row_len * row_len,
        x.len(),
    )?;
    for (row, out) in x.chunks_exact(row_len).zip(y.chunks_exact_mut(row_len)) {
        let max = row.iter().copied().max().unwrap_or(i8::MIN);
        let mut sum_of_exps = 0i32;
        for &v in row {
            let diff = i32::from(v) - i32::from(max);
            if diff >= p.diff_min {
                let e = exp_on_negative_values_q5(p.scale_diff(diff));
                // Rescale<kAccumulationIntegerBits>: Q0.31 to Q12.19.
                sum_of_exps =
                    sum_of_exps.wrapping_add(rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS));
            }
        }
        let (shifted_scale, num_bits_over_unit) =
            reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS).ok_or(Error::Overflow { op: OP })?;
        let exponent = num_bits_over_unit + 31 - 8;
        if !(0..=31).contains(&exponent) {
            return Err(Error::Overflow { op: OP });
        }
        for (&v, o) in row.iter().zip(out.iter_mut()) {
            let diff = i32::from(v) - i32::from(max);
            *o = if diff >= p.diff_min {
                let e = exp_on_negative_values_q5(p.scale_diff(diff));
                let unsat = rounding_divide_by_pot(srdhm(shifted_scale, e), exponent);
                unsat.wrapping_add(-128).clamp(-128, 127) as i8
            } else {
                i8::MIN
            };
        }
    }
    Ok(())
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT<E>` for `E > 0`: `x * 2^E`, saturating.
#[inline]
fn saturating_shl(x: i32, e: u32) -> i32 {
    let threshold = (1i32 << (31 - e)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << e
    }
}

/// gemmlowp's `exp_on_interval_between_negative_one_quarter_and_0_excl` (Q0.31 in and
/// out): a Taylor expansion around -1/8.
#[inline]
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const CONSTANT_1_OVER_3: i32 = 715_827_883;
    let x = a.wrapping_add(1 << 28); // + ConstantPOT<-3>, 1/8
    let x2 = srdhm(x, x);
    let x3 = srdhm(x2, x);
    let x4 = srdhm(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let poly = rounding_divide_by_pot(
        srdhm(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2),
        1,
    );
    CONSTANT_TERM.wrapping_add(srdhm(CONSTANT_TERM, x.wrapping_add(poly)))
}

/// gemmlowp's `exp_on_negative_values` for a Q5.26 input `a <= 0`, result in Q0.31.
fn exp_on_negative_values_q5(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 31 - SCALED_DIFF_INTEGER_BITS;
    const ONE_QUARTER: i32 = 1 << (FRACTIONAL_BITS - 2);
    let mask = ONE_QUARTER - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(ONE_QUARTER);
    // Rescale<0> of a Q5.26 value: multiply by 2^5, saturating.
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_shl(
        a_mod_quarter_minus_one_quarter,
        SCALED_DIFF_INTEGER_BITS as u32,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // The barrel shifter: exp(-2^e) for each set bit of the remainder, e = -2..=4
    // (every e < kIntegerBits = 5).
    const BARREL: [(i32, i32); 7] = [
        (-2, 1_672_461_947), // exp(-1/4)
        (-1, 1_302_514_674), // exp(-1/2)
        (0, 790_015_084),    // exp(-1)
        (1, 290_630_308),    // exp(-2)
        (2, 39_332_535),     // exp(-4)
        (3, 720_401),        // exp(-8)
        (4, 242),            // exp(-16)
    ];
    for (exponent, multiplier) in BARREL {
        if remainder & (1 << (FRACTIONAL_BITS + exponent)) != 0 {
            result = srdhm(result, multiplier);
        }
    }
    // kIntegerBits = 5 is not > 5: no clamp below -32. exp(0) is exactly One.
    if a == 0 {
        i32::MAX
    } else {
        result
    }
}

/// gemmlowp's `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out).
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const CONSTANT_48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2.29
    const ONE_Q2: i32 = 1 << 29;
    // RoundingHalfSum(a, One) with One = i32::MAX in Q0.31.
    let sum = i64::from(a) + i64::from(i32::MAX);
    let half_denominator = ((sum + if sum >= 0 { 1 } else { -1 }) / 2) as i32;
    let mut x = CONSTANT_48_OVER_17.wrapping_add(srdhm(half_denominator, CONSTANT_NEG_32_OVER_17));
    for _ in 0..3 {
        let half_denominator_times_x = srdhm(half_denominator, x);
        let one_minus_half_denominator_times_x = ONE_Q2.wrapping_sub(half_denominator_times_x);
        // Q2 * Q2 = Q4, Rescale<2>: times 4, saturating.
        x = x.wrapping_add(saturating_shl(
            srdhm(x, one_minus_half_denominator_times_x),
            2,
        ));
    }
    // ExactMulByPot<-1> (Q2 to Q1, same raw), then Rescale<0>: times 2, saturating.
    saturating_shl(x, 1)
}

/// TFLite's `GetReciprocal(x, x_integer_digits, &num_bits_over_unit)` (common.h):
/// the reciprocal of `x` (a positive fixed-point value with `x_integer_digits` integer
/// bits) in Q0.31, scaled by `2^-num_bits_over_unit`. `None` for `x == 0`, where
/// TFLite shifts by 32 (undefined).
fn reciprocal(x: i32, x_integer_digits: i32) -> Option<(i32, i32)> {
    let headroom_plus_one = (x as u32).leading_zeros();
    let num_bits_over_unit = x_integer_digits - headroom_plus_one as i32;
    let shifted = (x as u32).checked_shl(headroom_plus_one)?;
    let shifted_sum_minus_one = shifted.wrapping_sub(1 << 31) as i32;
    Some((
        one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
        num_bits_over_unit,
    ))
}
