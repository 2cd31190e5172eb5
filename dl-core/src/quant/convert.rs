//! Conversions between f32 and int8 (TFLM's `QUANTIZE` and `DEQUANTIZE`), table
//! lookups and argmax.

use super::fixed::{check_len, check_zero_point};
use super::kernel::Kernel;
use crate::error::{Error, Result};

fn check_f32_scale(op: &'static str, scale: f32) -> Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            op,
            name: "scale",
            value: f64::from(scale),
            valid: "finite and > 0",
        })
    }
}

/// `y = clamp(round(x / scale) + zero_point, -128, 127)`, TFLM's
/// `reference_ops::AffineQuantize` (`kernels/internal/reference/quantize.h`, run by
/// `micro/kernels/quantize_common.cc` for float input): the division in `f32`
/// (`val / static_cast<float>(scale)`), `TfLiteRound` = `roundf` (half away from
/// zero).
///
/// Where TFLM's `static_cast<int32_t>` of the rounded float is undefined (NaN,
/// infinities, beyond `i32`), the cast saturates (NaN to 0), so infinities clamp to
/// -128/127 and NaN gives the zero point.
///
/// Errors: `LengthMismatch`; `InvalidParameter` for a scale that is not finite and
/// positive or a zero point outside `-128..=127`.
///
/// ```
/// use dl_core::quant::quantize_f32_s8;
/// let mut y = [0i8; 4];
/// quantize_f32_s8(&[0.25, -0.25, 100.0, 0.3], 0.5, 1, &mut y).unwrap();
/// assert_eq!(y, [2, 0, 127, 2]); // 0.5 and -0.5 round away from zero
/// ```
///
/// On x86-64 the loop runs on the vector unit of [`Kernel::best`] (AVX-512F or AVX2;
/// the same bits); see [`quantize_f32_s8_with`].
pub fn quantize_f32_s8(x: &[f32], scale: f32, zero_point: i32, y: &mut [i8]) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    return quantize_f32_s8_with(Kernel::best(), x, scale, zero_point, y);
    #[cfg(not(target_arch = "x86_64"))]
    {
        check_quantize(x, scale, zero_point, y)?;
        quantize_portable(x, scale, zero_point, y);
        Ok(())
    }
}

/// [`quantize_f32_s8`] on a given [`Kernel`]'s vector unit: `Avx512Vnni` runs sixteen
/// values at a time with AVX-512F, `Avx2` eight with AVX2, the others the portable
/// loop. All give the same bits (the same IEEE division; see the module
/// `quant::x86::vector` for why the rest is exact). `InvalidParameter` if the kernel
/// cannot run here; otherwise as [`quantize_f32_s8`].
pub fn quantize_f32_s8_with(
    kernel: Kernel,
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
) -> Result<()> {
    kernel.check("quantize_f32_s8")?;
    check_quantize(x, scale, zero_point, y)?;
    #[cfg(target_arch = "x86_64")]
    if super::x86::quantize_f32_s8(kernel, x, scale, zero_point, y, |v| {
        quantize_one(v, scale, zero_point)
    }) {
        return Ok(());
    }
    quantize_portable(x, scale, zero_point, y);
    Ok(())
}

/// [`quantize_f32_s8`] for a scale and zero point already checked (finite and
/// positive; `-128..=127`), as a deployment program's are when its model is loaded:
/// only the lengths are checked here. Out-of-contract parameters give unspecified
/// outputs, never a panic.
pub fn quantize_f32_s8_validated(
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
) -> Result<()> {
    check_len("quantize_f32_s8", "output", x.len(), y.len())?;
    // A no-op inside the contract; it tells the compiler the range, so the loop
    // adds the zero point without saturating.
    let zero_point = zero_point.clamp(-128, 127);
    #[cfg(target_arch = "x86_64")]
    if super::x86::quantize_f32_s8(Kernel::best(), x, scale, zero_point, y, |v| {
        quantize_one(v, scale, zero_point)
    }) {
        return Ok(());
    }
    quantize_portable(x, scale, zero_point, y);
    Ok(())
}

fn check_quantize(x: &[f32], scale: f32, zero_point: i32, y: &[i8]) -> Result<()> {
    const OP: &str = "quantize_f32_s8";
    check_f32_scale(OP, scale)?;
    check_zero_point(OP, "zero_point", zero_point)?;
    check_len(OP, "output", x.len(), y.len())
}

fn quantize_portable(x: &[f32], scale: f32, zero_point: i32, y: &mut [i8]) {
    // Dividing by `scale / 2` gives `2 * (v / scale)` with one rounding, exactly as
    // the doubled quotient: halving a normal scale is exact and scaling by 2
    // commutes with rounding (the quotients that differ are below 2^-125, which
    // round to 0 either way). A subnormal scale takes the plain division.
    let half = scale * 0.5;
    if scale >= f32::MIN_POSITIVE {
        for (&v, o) in x.iter().zip(y.iter_mut()) {
            *o = affine_s8(round_half_away(v / half), zero_point);
        }
    } else {
        for (&v, o) in x.iter().zip(y.iter_mut()) {
            *o = quantize_one(v, scale, zero_point);
        }
    }
}

/// One value of [`quantize_f32_s8`], the reference every vector loop equals.
#[inline]
fn quantize_one(v: f32, scale: f32, zero_point: i32) -> i8 {
    affine_s8(round_half_away(v / scale * 2.0), zero_point)
}

/// `clamp(q + zero_point, -128, 127)`.
#[inline(always)]
fn affine_s8(q: i32, zero_point: i32) -> i8 {
    q.saturating_add(zero_point).clamp(-128, 127) as i8
}

/// `roundf(q) as i32` (half away from zero; saturating; NaN to 0) given `twice =
/// 2 * q`, in integer steps after one float-to-int conversion: `t = trunc(2q)` (`as`
/// saturates, NaN to 0), then `(t + 1) >> 1` for `t >= 0` (`floor(q + 1/2)`) and
/// `t >> 1` below zero (`ceil(q - 1/2)`), i.e. `(t + 1 + (t >> 31)) >> 1`. No
/// library `roundf`, no float comparisons: on a Cortex-M4F a third of the
/// instructions.
#[inline(always)]
fn round_half_away(twice: f32) -> i32 {
    let t = twice as i32;
    t.saturating_add(1 + (t >> 31)) >> 1
}

/// `y = (f32)((double)scale * (x - zero_point))`, TFLM's `reference_ops::Dequantize`
/// (`kernels/internal/reference/dequantize.h`; the scale is widened to `double`, the
/// product rounded once to `f32`).
///
/// Errors: `LengthMismatch`; `InvalidParameter` for a scale that is not finite and
/// positive or a zero point outside `-128..=127`.
///
/// ```
/// use dl_core::quant::dequantize_s8_f32;
/// let mut y = [0.0f32; 2];
/// dequantize_s8_f32(&[3, -128], 0.5, 1, &mut y).unwrap();
/// assert_eq!(y, [1.0, -64.5]);
/// ```
pub fn dequantize_s8_f32(x: &[i8], scale: f32, zero_point: i32, y: &mut [f32]) -> Result<()> {
    const OP: &str = "dequantize_s8_f32";
    check_f32_scale(OP, scale)?;
    check_zero_point(OP, "zero_point", zero_point)?;
    check_len(OP, "output", x.len(), y.len())?;
    let scale = f64::from(scale);
    for (&v, o) in x.iter().zip(y.iter_mut()) {
        *o = (scale * f64::from(i32::from(v) - zero_point)) as f32;
    }
    Ok(())
}

/// Element-wise `y[i] = table[x[i] as u8]`: any int8 -> int8 function as a 256-entry
/// table indexed by the input's bit pattern, as TFLM's `LUTLookup` for int8 (its
/// `LUTPopulate` fills such tables for LOGISTIC, TANH, HARD_SWISH and friends; the
/// table is built once, at load time).
///
/// Errors: `LengthMismatch` if `x.len() != y.len()`.
///
/// ```
/// use dl_core::quant::lut_s8;
/// let mut table = [0i8; 256];
/// for v in -128i32..=127 {
///     table[v as u8 as usize] = v.max(0) as i8; // ReLU with zero point 0
/// }
/// let mut y = [0i8; 3];
/// lut_s8(&table, &[-5, 0, 7], &mut y).unwrap();
/// assert_eq!(y, [0, 0, 7]);
/// ```
pub fn lut_s8(table: &[i8; 256], x: &[i8], y: &mut [i8]) -> Result<()> {
    check_len("lut_s8", "output", x.len(), y.len())?;
    for (&v, o) in x.iter().zip(y.iter_mut()) {
        *o = table[usize::from(v as u8)];
    }
    Ok(())
}

/// Index of the largest value, the first one on ties (TFLite's `ARG_MAX` keeps the
/// first maximum too); 0 for an empty slice. On int8 outputs that share one
/// quantization this is the argmax of the real values.
///
/// ```
/// use dl_core::quant::argmax_s8;
/// assert_eq!(argmax_s8(&[3, -1, 7, 7, 2]), 2);
/// ```
pub fn argmax_s8(x: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// TFLM's arithmetic, literally: `roundf(v / scale) + zero_point`, clamped.
    fn reference(v: f32, scale: f32, zero_point: i32) -> i8 {
        (libm::roundf(v / scale) as i32)
            .saturating_add(zero_point)
            .clamp(-128, 127) as i8
    }

    fn check(v: f32, scale: f32, zero_point: i32) -> std::result::Result<(), TestCaseError> {
        let mut y = [0i8];
        quantize_f32_s8(&[v], scale, zero_point, &mut y).unwrap();
        prop_assert_eq!(
            y[0],
            reference(v, scale, zero_point),
            "v {} scale {}",
            v,
            scale
        );
        Ok(())
    }

    #[test]
    fn quantize_equals_roundf_on_edges() {
        let scales = [
            1.0,
            0.5,
            0.1,
            1.0 / 255.0,
            3e-39,
            1e-45,
            1e30,
            f32::MIN_POSITIVE,
        ];
        let mut values = vec![0.0, -0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        for k in -300..300 {
            // Ties, and the floats on either side of them.
            let tie = k as f32 + 0.5;
            values.extend([
                tie,
                f32::from_bits(tie.to_bits() + 1),
                f32::from_bits(tie.to_bits() - 1),
            ]);
        }
        values.extend([
            f32::MAX,
            f32::MIN,
            1e-40,
            -1e-40,
            2.0e9,
            -2.0e9,
            0.49999997,
            -0.49999997,
        ]);
        for &scale in &scales {
            for &v in &values {
                for zp in [-128, -5, 0, 127] {
                    // Values as multiples of the scale, so the ties are ties after division.
                    check(v * scale, scale, zp).unwrap();
                    check(v, scale, zp).unwrap();
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn quantize_equals_roundf(bits in any::<u32>(), scale_bits in 1u32..0x7f80_0000, zp in -128i32..=127) {
            check(f32::from_bits(bits), f32::from_bits(scale_bits), zp)?;
        }

        #[test]
        fn quantize_equals_roundf_near_ties(k in -400i32..400, ulps in -2i32..=2, scale in 1e-6f32..10.0, zp in -128i32..=127) {
            let v = f32::from_bits(((k as f32 + 0.5) * scale).to_bits().wrapping_add_signed(ulps));
            check(v, scale, zp)?;
        }
    }
}
