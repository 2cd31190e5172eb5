//! Fully connected int8 layer (TFLM's `reference_integer_ops::FullyConnectedPerChannel`,
//! and `FullyConnected` with a per-tensor `Requant`).

use super::fixed::{check_len, mul};
use super::kernel::{mat_mul, Kernel, Out};
use super::requant::Requant;
use crate::error::Result;

/// `y[b, o] = clamp(MultiplyByQuantizedMultiplier(bias_eff[o] + sum_k x[b, k] * w[o,
/// k], multiplier[o], shift[o]) + zp_out, act_min, act_max)`.
///
/// Shapes: `x` is `[batch, in_features]`, `w` `[out_features, in_features]`,
/// `bias_eff` `[out_features]` (the bias with the input zero point folded in by
/// [`super::fold_input_offset`]), `y` `[batch, out_features]`. Mirrors TFLM's
/// `reference_integer_ops::FullyConnectedPerChannel` (per-channel `rq`) and
/// `FullyConnected` (per-tensor `rq`, weights' zero point 0 as TFLite's int8 spec
/// requires): the same 32-bit sums (wrapping where TFLM's would overflow) and the
/// same output stage ([`Requant`]). Runs on [`Kernel::best`].
///
/// Errors: `LengthMismatch` for a buffer of the wrong length, `Overflow` if a size
/// product overflows, and [`Requant::validate`]'s errors.
///
/// ```
/// use dl_core::quant::{dense_s8, fold_input_offset, quantize_multiplier, Requant};
/// // One output, weights [1, 2], input zero point 3: x = [5, 7] means (2, 4).
/// let w = [1i8, 2];
/// let mut bias = [0i32];
/// fold_input_offset(&w, 1, 2, Some(&[10]), 3, &mut bias).unwrap(); // 10 - 3 * 3
/// let (m, s) = quantize_multiplier(0.5).unwrap();
/// let rq = Requant { multiplier: &[m], shift: &[s as i8], output_zero_point: -1,
///                    act_min: -128, act_max: 127 };
/// let mut y = [0i8];
/// dense_s8(&[5, 7], &w, &bias, &rq, 1, 2, 1, &mut y).unwrap();
/// assert_eq!(y, [(10 + 2 + 2 * 4) / 2 - 1]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn dense_s8(
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    rq: &Requant,
    batch: usize,
    in_features: usize,
    out_features: usize,
    y: &mut [i8],
) -> Result<()> {
    dense_s8_with(
        Kernel::best(),
        x,
        w,
        bias_eff,
        rq,
        batch,
        in_features,
        out_features,
        y,
    )
}

/// [`dense_s8`] on a given [`Kernel`]; `InvalidParameter` if it cannot run here.
#[allow(clippy::too_many_arguments)]
pub fn dense_s8_with(
    kernel: Kernel,
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    rq: &Requant,
    batch: usize,
    in_features: usize,
    out_features: usize,
    y: &mut [i8],
) -> Result<()> {
    const OP: &str = "dense_s8";
    kernel.check(OP)?;
    check_len(OP, "input", mul(OP, batch, in_features)?, x.len())?;
    check_len(OP, "weights", mul(OP, out_features, in_features)?, w.len())?;
    check_len(OP, "bias_eff", out_features, bias_eff.len())?;
    check_len(OP, "output", mul(OP, batch, out_features)?, y.len())?;
    rq.validate(out_features)?;
    dense_s8_validated_with(
        kernel,
        x,
        w,
        bias_eff,
        rq,
        batch,
        in_features,
        out_features,
        y,
    )
}

/// [`dense_s8`] for an output stage that has passed [`Requant::validate`] for
/// `out_features` channels, as every int8 layer of a deployment program has when its
/// model was loaded: the lengths are still checked, the per-channel parameters are
/// not, so a call costs the same few checks for any width (TFLM checks its layers in
/// `Prepare`, not in `Eval`, for the same reason). Out-of-contract parameters give
/// unspecified outputs, never a panic or an out-of-bounds access.
#[allow(clippy::too_many_arguments)]
pub fn dense_s8_validated(
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    rq: &Requant,
    batch: usize,
    in_features: usize,
    out_features: usize,
    y: &mut [i8],
) -> Result<()> {
    let kernel = Kernel::best();
    dense_s8_validated_with(
        kernel,
        x,
        w,
        bias_eff,
        rq,
        batch,
        in_features,
        out_features,
        y,
    )
}

#[allow(clippy::too_many_arguments)]
fn dense_s8_validated_with(
    kernel: Kernel,
    x: &[i8],
    w: &[i8],
    bias_eff: &[i32],
    rq: &Requant,
    batch: usize,
    in_features: usize,
    out_features: usize,
    y: &mut [i8],
) -> Result<()> {
    const OP: &str = "dense_s8";
    check_len(OP, "input", mul(OP, batch, in_features)?, x.len())?;
    check_len(OP, "weights", mul(OP, out_features, in_features)?, w.len())?;
    check_len(OP, "bias_eff", out_features, bias_eff.len())?;
    check_len(OP, "output", mul(OP, batch, out_features)?, y.len())?;
    // The kernels index the multipliers and shifts by channel: their lengths are
    // part of what must hold, whatever the caller validated.
    if rq.multiplier.len() != 1 {
        check_len(
            OP,
            "multiplier (per channel, or 1)",
            out_features,
            rq.multiplier.len(),
        )?;
    }
    check_len(
        OP,
        "shift (as multiplier)",
        rq.multiplier.len(),
        rq.shift.len(),
    )?;
    let mut out = Out {
        rq,
        ch0: 0,
        y,
        ldy: out_features,
    };
    mat_mul(
        kernel,
        w,
        out_features,
        in_features,
        x,
        batch,
        bias_eff,
        &mut out,
    );
    Ok(())
}
