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

/// A dense int8 layer prepared once for repeated calls: its parameters checked (the
/// lengths and [`Requant::validate`]) and copied when it is built, and on x86-64 with
/// AVX-512 VNNI its weights packed into the kernel's order with `bias - 128 *
/// sum(w)` and the output stage's vectors precomputed. Each [`PackedDense::run`] then
/// checks only its buffers' lengths. The results are [`dense_s8`]'s, bit for bit
/// (tested against [`Kernel::Portable`]).
///
/// For a layer run many times on a desktop (a deployed model's dense layers, at
/// batch 1 in particular, where packing and validating would be a good part of each
/// call); a microcontroller keeps its weights in flash and calls [`dense_s8`].
///
/// ```
/// use dl_core::quant::{dense_s8, quantize_multiplier, PackedDense, Requant};
/// let w: Vec<i8> = (0..6).map(|i| i * 10 - 25).collect(); // 2 outputs, 3 inputs
/// let bias = [100, -50];
/// let (m, s) = quantize_multiplier(0.01).unwrap();
/// let rq = Requant { multiplier: &[m], shift: &[s as i8], output_zero_point: 3,
///                    act_min: -128, act_max: 127 };
/// let layer = PackedDense::new(&w, &bias, &rq, 3, 2).unwrap();
/// let x = [1i8, -2, 3, 4, 5, -6]; // batch 2
/// let (mut y, mut want) = ([0i8; 4], [0i8; 4]);
/// layer.run(&x, 2, &mut y).unwrap();
/// dense_s8(&x, &w, &bias, &rq, 2, 3, 2, &mut want).unwrap();
/// assert_eq!(y, want);
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, Debug)]
pub struct PackedDense {
    kernel: Kernel,
    in_features: usize,
    out_features: usize,
    w: Vec<i8>,
    bias: Vec<i32>,
    multiplier: Vec<i32>,
    shift: Vec<i8>,
    output_zero_point: i32,
    act_min: i8,
    act_max: i8,
    /// The packed form, where the kernel is VNNI (and the layer fits a panel).
    #[cfg(target_arch = "x86_64")]
    vnni: Option<super::x86::PackedVnni>,
}

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
impl PackedDense {
    /// The layer `[out_features, in_features]` of weights `w`, `bias_eff` and `rq` as
    /// [`dense_s8`] takes them, for [`Kernel::best`]. Errors as [`dense_s8`] would
    /// for these parameters (`LengthMismatch`, `Overflow`, [`Requant::validate`]'s).
    pub fn new(
        w: &[i8],
        bias_eff: &[i32],
        rq: &Requant,
        in_features: usize,
        out_features: usize,
    ) -> Result<Self> {
        Self::with_kernel(Kernel::best(), w, bias_eff, rq, in_features, out_features)
    }

    /// [`PackedDense::new`] for a given [`Kernel`]; `InvalidParameter` if it cannot
    /// run here.
    pub fn with_kernel(
        kernel: Kernel,
        w: &[i8],
        bias_eff: &[i32],
        rq: &Requant,
        in_features: usize,
        out_features: usize,
    ) -> Result<Self> {
        const OP: &str = "PackedDense";
        kernel.check(OP)?;
        check_len(OP, "weights", mul(OP, out_features, in_features)?, w.len())?;
        check_len(OP, "bias_eff", out_features, bias_eff.len())?;
        rq.validate(out_features)?;
        #[cfg(target_arch = "x86_64")]
        let vnni = if kernel == Kernel::Avx512Vnni {
            super::x86::PackedVnni::new(w, out_features, in_features, bias_eff, rq)
        } else {
            None
        };
        Ok(PackedDense {
            kernel,
            in_features,
            out_features,
            w: w.to_vec(),
            bias: bias_eff.to_vec(),
            multiplier: rq.multiplier.to_vec(),
            shift: rq.shift.to_vec(),
            output_zero_point: rq.output_zero_point,
            act_min: rq.act_min,
            act_max: rq.act_max,
            #[cfg(target_arch = "x86_64")]
            vnni,
        })
    }

    /// Inputs per row.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Outputs per row.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// `y = dense_s8(x, ...)` for `batch` rows: `x` is `[batch, in_features]`, `y`
    /// `[batch, out_features]`. Large batches split over the gemm's threads (the same
    /// bits at any thread count). Errors: `LengthMismatch`, `Overflow`.
    pub fn run(&self, x: &[i8], batch: usize, y: &mut [i8]) -> Result<()> {
        const OP: &str = "PackedDense";
        check_len(OP, "input", mul(OP, batch, self.in_features)?, x.len())?;
        check_len(OP, "output", mul(OP, batch, self.out_features)?, y.len())?;
        if batch == 0 || self.out_features == 0 {
            return Ok(());
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = &self.vnni {
            p.run(x, batch, y);
            return Ok(());
        }
        // Validated at construction, and the kernel checked there.
        let rq = Requant {
            multiplier: &self.multiplier,
            shift: &self.shift,
            output_zero_point: self.output_zero_point,
            act_min: self.act_min,
            act_max: self.act_max,
        };
        let mut out = Out {
            rq: &rq,
            ch0: 0,
            y,
            ldy: self.out_features,
        };
        mat_mul(
            self.kernel,
            &self.w,
            self.out_features,
            self.in_features,
            x,
            batch,
            &self.bias,
            &mut out,
        );
        Ok(())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::Rng;

    fn bytes(rng: &mut Rng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.next_u32() as i8).collect()
    }

    /// Every multiplier and shift `Requant::validate` accepts, the extremes included.
    fn stage(rng: &mut Rng, n: usize) -> (Vec<i32>, Vec<i8>) {
        (0..n)
            .map(|i| {
                let m = match i % 5 {
                    0 => i32::MAX,
                    1 => (rng.next_u32() >> 1) as i32,
                    2 => 0,
                    _ => (1 << 30) + (rng.next_u32() >> 2) as i32,
                };
                let s = match i % 7 {
                    0 => -31,
                    1 => 30,
                    _ => (rng.next_u32() % 62) as i8 - 31,
                };
                (m, s)
            })
            .unzip()
    }

    /// Every kernel's prepared layer equals the portable `dense_s8`, at batch sizes
    /// that take the single-column tile, the full tiles, several panels, and the
    /// threaded split (the 32 x 64 layer at batch 256 and more).
    #[test]
    fn packed_dense_is_the_portable_kernel() {
        let mut rng = Rng::seed_from_u64(11);
        let shapes = [
            (1, 64, 32),
            (1, 32, 10),
            (2, 5, 3),
            (3, 200, 17),
            (9, 1, 33),
            (6, 0, 5),
            (13, 64, 32),
            (256, 64, 32),
            (256, 32, 10),
            (300, 66, 31),
            (1000, 64, 32),
            (2100, 64, 32), // split over threads
            (8, 3000, 20),
            (3, 17000, 2), // longer than a panel column: the unpacked kernel
        ];
        for (case, &(batch, inf, outf)) in shapes.iter().enumerate() {
            let x = bytes(&mut rng, batch * inf);
            let w = bytes(&mut rng, outf * inf);
            let bias: Vec<i32> = (0..outf).map(|_| rng.next_u32() as i32 >> 8).collect();
            for per_channel in [false, true] {
                let (m, s) = stage(&mut rng, if per_channel { outf } else { 1 });
                let act = [(-128, 127), (-5, 90), (3, 3)][case % 3];
                let rq = Requant {
                    multiplier: &m,
                    shift: &s,
                    output_zero_point: (rng.next_u32() % 256) as i32 - 128,
                    act_min: act.0,
                    act_max: act.1,
                };
                let mut want = vec![0i8; batch * outf];
                dense_s8_with(
                    Kernel::Portable,
                    &x,
                    &w,
                    &bias,
                    &rq,
                    batch,
                    inf,
                    outf,
                    &mut want,
                )
                .unwrap();
                for kernel in Kernel::ALL.into_iter().filter(|k| k.is_available()) {
                    let layer =
                        PackedDense::with_kernel(kernel, &w, &bias, &rq, inf, outf).unwrap();
                    let mut got = vec![0i8; batch * outf];
                    layer.run(&x, batch, &mut got).unwrap();
                    assert_eq!(got, want, "{kernel:?} batch {batch}, {inf} -> {outf}");
                }
            }
        }
    }

    #[test]
    fn packed_dense_refuses_bad_buffers_and_parameters() {
        let (m, s) = ([1 << 30], [-3i8]);
        let rq = Requant {
            multiplier: &m,
            shift: &s,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        let w = [1i8; 6];
        assert!(PackedDense::new(&w, &[0; 2], &rq, 3, 2).is_ok());
        assert!(PackedDense::new(&w[..5], &[0; 2], &rq, 3, 2).is_err());
        assert!(PackedDense::new(&w, &[0; 3], &rq, 3, 2).is_err());
        assert!(PackedDense::new(&w, &[0; 2], &rq, usize::MAX, 2).is_err());
        let bad = Requant {
            act_min: 5,
            act_max: 4,
            ..rq
        };
        assert!(PackedDense::new(&w, &[0; 2], &bad, 3, 2).is_err());
        let layer = PackedDense::new(&w, &[0; 2], &rq, 3, 2).unwrap();
        let mut y = [0i8; 4];
        assert!(layer.run(&[0; 5], 2, &mut y).is_err());
        assert!(layer.run(&[0; 6], 2, &mut y[..3]).is_err());
        assert!(layer.run(&[0; 6], usize::MAX, &mut y).is_err());
        assert!(layer.run(&[0; 6], 2, &mut y).is_ok());
    }
}
