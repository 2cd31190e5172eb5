//! Int8 element-wise addition with rescaling (TFLM's `ADD`:
//! `micro/kernels/add_common.cc` prepares, `reference_integer_ops::AddFunc` runs).

use super::fixed::{
    as_tflite_scale, check_activation, check_scale, check_shift, check_zero_point,
    multiply_by_quantized_multiplier, quantize_multiplier,
};
use crate::error::{Error, Result};

/// TFLite's `ArithmeticParams` for int8 `ADD`: both inputs are brought to a common
/// scale (`2 * max(scale1, scale2)`) with `left_shift` bits of headroom, added, and
/// the sum rescaled to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddParams {
    /// Headroom shift applied to both inputs (TFLM: 20 for int8).
    pub left_shift: i32,
    /// `-zero_point` of input 1.
    pub input1_offset: i32,
    /// Fixed-point multiplier of `scale1 / (2 * max_scale)`.
    pub input1_multiplier: i32,
    /// Its shift (`-31..=0`).
    pub input1_shift: i32,
    /// `-zero_point` of input 2.
    pub input2_offset: i32,
    /// Fixed-point multiplier of `scale2 / (2 * max_scale)`.
    pub input2_multiplier: i32,
    /// Its shift (`-31..=0`).
    pub input2_shift: i32,
    /// Fixed-point multiplier of `2 * max_scale / (2^left_shift * scale_out)`.
    pub output_multiplier: i32,
    /// Its shift (`-31..=0`).
    pub output_shift: i32,
    /// The output's zero point.
    pub output_offset: i32,
    /// Lower clamp of the output (fused activation).
    pub act_min: i8,
    /// Upper clamp of the output.
    pub act_max: i8,
}

/// The parameters exactly as TFLM's `CalculateOpDataAdd` (`add_common.cc`) computes
/// them for int8: `twice_max = 2 * (double)max(scale1, scale2)` (the max taken in
/// `float`), `real1 = (double)scale1 / twice_max`, `real2` likewise, `real_out =
/// twice_max / ((1 << 20) * (double)scale_out)`, each through
/// `QuantizeMultiplierSmallerThanOneExp`. Scales are rounded to `f32` first, since
/// TFLite stores them as `float`.
///
/// Errors: `InvalidParameter` for a scale that is not finite and positive, a zero point
/// outside `-128..=127`, `act_min > act_max`, or `real_out >= 1` (TFLM's
/// `TFLITE_CHECK_LT(double_multiplier, 1.)` would abort; it needs `scale_out >
/// 2 * max(scale1, scale2) / 2^20`).
#[allow(clippy::too_many_arguments)]
pub fn add_params(
    scale1: f64,
    zp1: i32,
    scale2: f64,
    zp2: i32,
    scale_out: f64,
    zp_out: i32,
    act_min: i8,
    act_max: i8,
) -> Result<AddParams> {
    const OP: &str = "add_params";
    for (name, s) in [
        ("scale1", scale1),
        ("scale2", scale2),
        ("scale_out", scale_out),
    ] {
        check_scale(OP, name, s)?;
    }
    for (name, z) in [("zp1", zp1), ("zp2", zp2), ("zp_out", zp_out)] {
        check_zero_point(OP, name, z)?;
    }
    check_activation(OP, act_min, act_max)?;
    let left_shift = 20;
    let (s1, s2, so) = (scale1 as f32, scale2 as f32, as_tflite_scale(scale_out));
    let twice_max_input_scale = 2.0 * f64::from(s1.max(s2));
    let real1 = f64::from(s1) / twice_max_input_scale;
    let real2 = f64::from(s2) / twice_max_input_scale;
    let real_out = twice_max_input_scale / (f64::from(1i32 << left_shift) * so);
    let smaller_than_one = |name, real: f64| -> Result<(i32, i32)> {
        // TFLM's QuantizeMultiplierSmallerThanOneExp: CHECK 0 < real < 1, shift <= 0.
        if !(real > 0.0 && real < 1.0) {
            return Err(Error::InvalidParameter {
                op: OP,
                name,
                value: real,
                valid: "0 < multiplier < 1 (TFLite's QuantizeMultiplierSmallerThanOneExp)",
            });
        }
        quantize_multiplier(real)
    };
    let (input1_multiplier, input1_shift) = smaller_than_one("scale1 / (2 * max scale)", real1)?;
    let (input2_multiplier, input2_shift) = smaller_than_one("scale2 / (2 * max scale)", real2)?;
    let (output_multiplier, output_shift) =
        smaller_than_one("2 * max scale / (2^20 * scale_out)", real_out)?;
    let p = AddParams {
        left_shift,
        input1_offset: -zp1,
        input1_multiplier,
        input1_shift,
        input2_offset: -zp2,
        input2_multiplier,
        input2_shift,
        output_multiplier,
        output_shift,
        output_offset: zp_out,
        act_min,
        act_max,
    };
    p.validate()?;
    Ok(p)
}

impl AddParams {
    /// Errors unless `left_shift` is in `0..=22` (so a shifted int8 difference fits in
    /// 32 bits), the offsets negate int8 zero points (TFLM's `CheckArithmeticParams`),
    /// every shift is in `-31..=0` (`MultiplyByQuantizedMultiplierSmallerThanOneExp`),
    /// the output offset is in `-128..=127`, and `act_min <= act_max`.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "AddParams";
        if !(0..=22).contains(&self.left_shift) {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "left_shift",
                value: self.left_shift as f64,
                valid: "0..=22",
            });
        }
        check_zero_point(OP, "-input1_offset", self.input1_offset.saturating_neg())?;
        check_zero_point(OP, "-input2_offset", self.input2_offset.saturating_neg())?;
        check_zero_point(OP, "output_offset", self.output_offset)?;
        for (name, s) in [
            ("input1_shift", self.input1_shift),
            ("input2_shift", self.input2_shift),
            ("output_shift", self.output_shift),
        ] {
            check_shift(OP, name, s)?;
            if s > 0 {
                return Err(Error::InvalidParameter {
                    op: OP,
                    name,
                    value: s as f64,
                    valid: "-31..=0",
                });
            }
        }
        check_activation(OP, self.act_min, self.act_max)
    }

    /// TFLM's `AddFunc` for one pair.
    #[inline]
    fn add(&self, a: i8, b: i8) -> i8 {
        let a = (self.input1_offset + i32::from(a)) << self.left_shift;
        let b = (self.input2_offset + i32::from(b)) << self.left_shift;
        let a = multiply_by_quantized_multiplier(a, self.input1_multiplier, self.input1_shift);
        let b = multiply_by_quantized_multiplier(b, self.input2_multiplier, self.input2_shift);
        let sum = a.wrapping_add(b);
        let out = multiply_by_quantized_multiplier(sum, self.output_multiplier, self.output_shift)
            .wrapping_add(self.output_offset);
        out.clamp(i32::from(self.act_min), i32::from(self.act_max)) as i8
    }
}

/// Element-wise `y = a + b` of int8 tensors with different quantizations, as TFLM's
/// `reference_integer_ops::Add` / `AddFunc`: each input `(q + offset) << left_shift`
/// rescaled by its multiplier (`MultiplyByQuantizedMultiplierSmallerThanOneExp`), the
/// two added, the sum rescaled to the output, plus its zero point, clamped.
///
/// `a` and `b` have `y`'s length, or one of them has length 1 and is broadcast
/// (TFLM's `BroadcastInput1` / `BroadcastInput2`).
///
/// Errors: `LengthMismatch`, and [`AddParams::validate`]'s.
///
/// ```
/// use dl_core::quant::{add_params, add_s8};
/// // 0.5 * (q - 0) + 0.25 * (q - 4) into scale 0.5, zero point -1.
/// let p = add_params(0.5, 0, 0.25, 4, 0.5, -1, -128, 127).unwrap();
/// let mut y = [0i8; 2];
/// add_s8(&p, &[10, -6], &[8, 0], &mut y).unwrap();
/// assert_eq!(y, [11, -9]); // 5 + 1 = 6 -> 12 - 1; -3 - 1 = -4 -> -8 - 1
/// ```
pub fn add_s8(p: &AddParams, a: &[i8], b: &[i8], y: &mut [i8]) -> Result<()> {
    const OP: &str = "add_s8";
    p.validate()?;
    let n = y.len();
    let mismatch = |what, actual| Error::LengthMismatch {
        op: OP,
        what,
        expected: n,
        actual,
    };
    match (a.len(), b.len()) {
        (la, lb) if la == n && lb == n => {
            for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
                *o = p.add(u, v);
            }
        }
        (1, lb) if lb == n => {
            for (o, &v) in y.iter_mut().zip(b) {
                *o = p.add(a[0], v);
            }
        }
        (la, 1) if la == n => {
            for (o, &u) in y.iter_mut().zip(a) {
                *o = p.add(u, b[0]);
            }
        }
        (la, _) if la != n && la != 1 => return Err(mismatch("a (or 1 to broadcast)", la)),
        (_, lb) => return Err(mismatch("b (or 1 to broadcast)", lb)),
    }
    Ok(())
}
