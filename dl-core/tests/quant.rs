//! int8 kernels (`dl_core::quant`): requantization edge cases computed by hand, every
//! instruction-set kernel against the portable one and all against naive references
//! written here from TFLite's formulas (property tests), softmax by hand and by its
//! invariants, the other ops against their float formulas, and the errors.
//!
//! Values marked "TFLM" were printed by TFLite Micro's own reference kernels through
//! the harness in `tests/quant_tflm.rs`.

use dl_core::quant::*;
use dl_core::{Error, Rng};
use proptest::prelude::*;

fn bytes(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.next_u32() as i8).collect()
}

/// A requantization multiplier for `2^-e`-ish scales, `e` in `[0, 20)` plus jitter.
fn multiplier(rng: &mut Rng) -> (i32, i8) {
    let real = 2f64.powf(-rng.uniform(0.0f64, 20.0));
    let (m, s) = quantize_multiplier(real).unwrap();
    (m, i8::try_from(s).unwrap())
}

fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_available())
        .collect()
}

// ---------------------------------------------------------------------------------
// Requantization primitives, by hand
// ---------------------------------------------------------------------------------

#[test]
fn srdhm_saturates_and_rounds_ties_up() {
    let f = saturating_rounding_doubling_high_mul;
    // The only overflow: (-1) * (-1) = 1 is not representable in Q0.31.
    assert_eq!(f(i32::MIN, i32::MIN), i32::MAX);
    // -1 * (1 - 2^-31) = -(2^31 - 1) / 2^31 exactly: no rounding.
    assert_eq!(f(i32::MIN, i32::MAX), -i32::MAX);
    assert_eq!(f(i32::MAX, i32::MAX), i32::MAX - 1);
    // a * b / 2^31 with b = 2^30 is a / 2: ties (odd a) go up.
    assert_eq!((f(1, 1 << 30), f(-1, 1 << 30)), (1, 0)); // 0.5 -> 1, -0.5 -> 0
    assert_eq!((f(3, 1 << 30), f(-3, 1 << 30)), (2, -1)); // 1.5 -> 2, -1.5 -> -1
    assert_eq!(f(5, 1 << 29), 1); // 1.25 -> 1
    assert_eq!(f(-7, 1 << 29), -2); // -1.75 -> -2
    assert_eq!(f(0, i32::MIN), 0);
}

#[test]
fn rounding_divide_by_pot_rounds_half_away_from_zero() {
    let f = rounding_divide_by_pot;
    assert_eq!((f(1, 1), f(-1, 1)), (1, -1)); // +-0.5
    assert_eq!((f(5, 1), f(-5, 1)), (3, -3)); // +-2.5
    assert_eq!((f(2, 2), f(-2, 2)), (1, -1)); // +-0.5
    assert_eq!((f(6, 2), f(-6, 2)), (2, -2)); // +-1.5
    assert_eq!((f(5, 2), f(-5, 2)), (1, -1)); // +-1.25
    assert_eq!((f(7, 2), f(-7, 2)), (2, -2)); // +-1.75
    assert_eq!(f(12345, 0), 12345);
    // Exponent 31, gemmlowp's largest.
    assert_eq!(f(i32::MIN, 31), -1);
    assert_eq!((f(1 << 30, 31), f(-(1 << 30), 31)), (1, -1)); // +-0.5
    assert_eq!((f((1 << 30) - 1, 31), f(i32::MAX, 31)), (0, 1));
    // Outside gemmlowp's contract: still the correctly rounded quotient.
    assert_eq!(
        (f(i32::MIN, 32), f(i32::MAX, 32), f(i32::MIN + 1, 32)),
        (-1, 0, 0)
    );
    assert_eq!((f(i32::MIN, 40), f(77, -3)), (0, 77));
}

#[test]
fn multiply_by_quantized_multiplier_edge_cases() {
    let f = multiply_by_quantized_multiplier;
    let half = 1 << 30; // 0.5 in Q0.31
                        // Right shifts: 100 * 0.5 * 2^-1.
    assert_eq!(f(100, half, -1), 25);
    // Double rounding (TFLM's default): 1 * 0.5 rounds to 1, then 1 / 2 rounds to 1,
    // where the exact 0.25 would give 0.
    assert_eq!(f(1, half, -1), 1);
    assert_eq!(f(-1, half, -1), 0); // -0.5 -> 0, then 0
    assert_eq!(f(-6, 1_288_490_189, -1), -2); // -6 * 0.6 / 2 = -1.8: -3.6 -> -4, -2
                                              // Shift -31, the largest right shift: 2^31 * 2^-31 * (1 - 2^-31).
    assert_eq!(f(i32::MAX, i32::MAX, -31), 1);
    assert_eq!(f(i32::MIN, i32::MAX, -31), -1);
    // Left shifts: x * 2^s first (wrapping, as TFLM's compiled code), then * 0.5.
    assert_eq!(f(1, half, 30), 1 << 29);
    assert_eq!(f(3, half, 29), 3 << 28);
    assert_eq!(f(2, half, 30), -(1 << 30)); // 2 * 2^30 wraps to -2^31
    assert_eq!(f(-2, half, 30), -(1 << 30)); // -2^31 exactly: no wrap
                                             // Multiplier 0 always gives 0.
    for x in [i32::MIN, -1, 0, 1, i32::MAX] {
        for s in [-31, -5, 0, 7, 30] {
            assert_eq!(f(x, 0, s), 0);
        }
    }
    // Values TFLM printed (MultiplyByQuantizedMultiplier(int32_t, ...)).
    assert_eq!(f(-7, 1_288_490_189, -1), -2);
    assert_eq!(f(3, half, 30), -(1 << 29));
}

#[test]
fn quantize_multiplier_matches_tflite() {
    let q = |r: f64| quantize_multiplier(r).unwrap();
    assert_eq!(q(1.0), (1 << 30, 1));
    assert_eq!(q(0.5), (1 << 30, 0));
    assert_eq!(q(0.75), (1_610_612_736, 0)); // 0.75 * 2^31
    assert_eq!(q(3.0), (1_610_612_736, 2));
    assert_eq!(q(0.1), (1_717_986_918, -3)); // round(0.8 * 2^31) = round(..918.4)
    assert_eq!(q(0.0), (0, 0));
    // A mantissa that rounds up to 2^31 is halved and the shift incremented.
    assert_eq!(q(1.0 - 2f64.powi(-40)), (1 << 30, 1));
    // Tiny values: 2^-32 = 0.5 * 2^-31 is the smallest kept...
    assert_eq!(q(2f64.powi(-32)), (1 << 30, -31));
    assert_eq!(q(2f64.powi(-31)), (1 << 30, -30));
    // ...below it the shift would be < -31: flushed to zero, as TFLite does.
    assert_eq!(q(0.75 * 2f64.powi(-32)), (0, 0));
    assert_eq!(q(2f64.powi(-33)), (0, 0));
    assert_eq!(q(1e-300), (0, 0));
    assert_eq!(q(f64::from_bits(1)), (0, 0)); // the smallest subnormal
                                              // Shift > 31: returned as is (TFLite's double-rounding build), for the kernels'
                                              // validation to refuse.
    assert_eq!(q(2f64.powi(31)), (1 << 30, 32));
    assert_eq!(q(2f64.powi(40)), (1 << 30, 41));
    // Errors where TFLite would compute nonsense.
    for bad in [-1.0, -1e-9, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            quantize_multiplier(bad),
            Err(Error::InvalidParameter { name: "real", .. })
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// m * 2^(s - 31) reproduces the real multiplier to 2^-31 relative precision.
    #[test]
    fn quantize_multiplier_represents_the_value(e in -31i32..30, frac in 0.5f64..1.0) {
        let real = frac * 2f64.powi(e);
        let (m, s) = quantize_multiplier(real).unwrap();
        prop_assert!((1 << 30..=i32::MAX).contains(&m));
        let back = f64::from(m) * 2f64.powi(s - 31);
        prop_assert!((back - real).abs() <= real * 2f64.powi(-30), "{real} -> {m} {s}");
    }

    /// The primitives against their definitions in exact (i128 / f64) arithmetic.
    #[test]
    fn primitives_match_their_definitions(a in any::<i32>(), b in any::<i32>(), e in 0i32..32) {
        let exact = i128::from(a) * i128::from(b);
        let srdhm = saturating_rounding_doubling_high_mul(a, b);
        if a == i32::MIN && b == i32::MIN {
            prop_assert_eq!(srdhm, i32::MAX);
        } else {
            // floor(ab / 2^31 + 1/2): round to nearest, ties up.
            let want = (exact + (1 << 30)).div_euclid(1 << 31);
            prop_assert_eq!(i128::from(srdhm), want);
        }
        let q = f64::from(a) / 2f64.powi(e);
        let want = if q >= 0.0 { (q + 0.5).floor() } else { (q - 0.5).ceil() };
        prop_assert_eq!(f64::from(rounding_divide_by_pot(a, e)), want);
    }

    /// Never panics, whatever the arguments.
    #[test]
    fn mbqm_is_total(x in any::<i32>(), m in any::<i32>(), s in any::<i32>()) {
        let _ = multiply_by_quantized_multiplier(x, m, s);
        let _ = rounding_divide_by_pot(x, s);
    }
}

// ---------------------------------------------------------------------------------
// The DSP instruction models
// ---------------------------------------------------------------------------------

#[test]
fn dsp_instruction_models_follow_the_arm_arm() {
    // SXTB16: bytes 0 and 2 to the two halfwords, sign-extended.
    assert_eq!(sxtb16(0x0080_007F), 0xFF80_007F);
    assert_eq!(sxtb16(0xAABB_CCDD), 0xFFBB_FFDD);
    // ROR #8 first: bytes 1 and 3.
    assert_eq!(sxtb16_ror8(0x8000_7F00), 0xFF80_007F);
    assert_eq!(sxtb16_ror8(0xAABB_CCDD), 0xFFAA_FFCC);
    // SMLAD: Ra + lo*lo + hi*hi, exact then wrapped; Q on overflow.
    assert_eq!(
        smlad(0xFFFF_0002, 0x0003_0004, 100),
        (100 + 2 * 4 - 3, false)
    );
    assert_eq!(
        smlad(0x7FFF_7FFF, 0x7FFF_7FFF, i32::MAX - 2 * 32767 * 32767),
        (i32::MAX, false)
    );
    assert_eq!(
        smlad(0x7FFF_7FFF, 0x7FFF_7FFF, i32::MAX - 2 * 32767 * 32767 + 1),
        (i32::MIN, true)
    );
    // The products alone overflow (2^31), and adding -1 brings the sum back in range:
    // the ARM ARM checks the final sum only, so Q stays clear.
    assert_eq!(smlad(0x8000_8000, 0x8000_8000, -1), (i32::MAX, false));
    assert_eq!(smlad(0x8000_8000, 0x8000_8000, 0), (i32::MIN, true));
    assert_eq!(smlad(0, 0, i32::MIN), (i32::MIN, false));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Expanding four weights and four inputs the same way and SMLAD-ing the halves
    /// is the four-term dot product (what the DSP loop relies on).
    #[test]
    fn sxtb16_pairs_then_smlad_is_a_dot_product(w in any::<u32>(), x in any::<u32>(), acc in any::<i32>()) {
        let (a, _) = smlad(sxtb16(w), sxtb16(x), acc);
        let (b, q) = smlad(sxtb16_ror8(w), sxtb16_ror8(x), a);
        let dot: i32 = w.to_le_bytes().iter().zip(x.to_le_bytes())
            .map(|(&u, v)| i32::from(u as i8) * i32::from(v as i8)).sum();
        prop_assert_eq!(b, acc.wrapping_add(dot));
        // Q is set exactly when the second step's exact sum leaves i32.
        let exact = i64::from(a) + i64::from(dot_odd(w, x));
        prop_assert_eq!(q, exact != i64::from(b));
    }
}

/// Products of bytes 1 and 3: what the second SMLAD adds.
fn dot_odd(w: u32, x: u32) -> i32 {
    let (w, x) = (w.to_le_bytes(), x.to_le_bytes());
    [1, 3]
        .iter()
        .map(|&i| i32::from(w[i] as i8) * i32::from(x[i] as i8))
        .sum()
}

// ---------------------------------------------------------------------------------
// Dense and convolution: naive references from TFLite's formulas
// ---------------------------------------------------------------------------------

/// TFLite's output stage on an exact accumulator (which must fit in i32).
fn requant(acc: i64, m: i32, s: i8, zp: i32, lo: i8, hi: i8) -> i8 {
    let acc = i32::try_from(acc).expect("test sizes keep the accumulator in i32");
    (multiply_by_quantized_multiplier(acc, m, i32::from(s)) + zp)
        .clamp(i32::from(lo), i32::from(hi)) as i8
}

/// `FullyConnectedPerChannel` as written in TFLite: `(x + input_offset) * w`, no
/// folding, accumulated in i64.
#[allow(clippy::too_many_arguments)]
fn naive_dense(
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    izp: i32,
    rq: &Requant,
    batch: usize,
    inf: usize,
    outf: usize,
) -> Vec<i8> {
    let mut y = vec![0; batch * outf];
    for b in 0..batch {
        for o in 0..outf {
            let mut acc = i64::from(bias[o]);
            for k in 0..inf {
                acc += i64::from(w[o * inf + k]) * (i64::from(x[b * inf + k]) - i64::from(izp));
            }
            let i = if rq.multiplier.len() == 1 { 0 } else { o };
            y[b * outf + o] = requant(
                acc,
                rq.multiplier[i],
                rq.shift[i],
                rq.output_zero_point,
                rq.act_min,
                rq.act_max,
            );
        }
    }
    y
}

/// `ConvPerChannel` as written in TFLite: taps outside the image are skipped, the
/// input offset is added per tap.
fn naive_conv(
    g: &ConvGeometry,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    izp: i32,
    rq: &Requant,
) -> Vec<i8> {
    let cg = g.c_in / g.groups;
    let og = g.c_out / g.groups;
    let mut y = vec![0; g.output_len()];
    for b in 0..g.n {
        for i in 0..g.out_h {
            for j in 0..g.out_w {
                for o in 0..g.c_out {
                    let grp = o / og;
                    let mut acc = i64::from(bias[o]);
                    for u in 0..g.kh {
                        for v in 0..g.kw {
                            let r = (i * g.stride.0 + u * g.dilation.0) as i64 - g.pad.0 as i64;
                            let c = (j * g.stride.1 + v * g.dilation.1) as i64 - g.pad.1 as i64;
                            if r < 0 || c < 0 || r >= g.h as i64 || c >= g.w as i64 {
                                continue;
                            }
                            for ci in 0..cg {
                                let xv = x[((b * g.h + r as usize) * g.w + c as usize) * g.c_in
                                    + grp * cg
                                    + ci];
                                let wv = w[((o * g.kh + u) * g.kw + v) * cg + ci];
                                acc += i64::from(wv) * (i64::from(xv) - i64::from(izp));
                            }
                        }
                    }
                    let k = if rq.multiplier.len() == 1 { 0 } else { o };
                    y[((b * g.out_h + i) * g.out_w + j) * g.c_out + o] = requant(
                        acc,
                        rq.multiplier[k],
                        rq.shift[k],
                        rq.output_zero_point,
                        rq.act_min,
                        rq.act_max,
                    );
                }
            }
        }
    }
    y
}

/// Per-channel (or per-tensor) requantization for `c` channels.
fn random_requant(rng: &mut Rng, c: usize, per_channel: bool) -> (Vec<i32>, Vec<i8>) {
    (0..if per_channel { c } else { 1 })
        .map(|_| multiplier(rng))
        .unzip()
}

fn act_range(a: i8, b: i8) -> (i8, i8) {
    (a.min(b), a.max(b))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// dense_s8 on every kernel = the naive TFLite loop, for shapes crossing every
    /// kernel's block sizes (8-byte DSP passes, 16/64-byte SIMD steps, 4x4 tiles).
    #[test]
    fn dense_matches_tflite_formula_on_every_kernel(
        batch in 1usize..7, inf in 0usize..150, outf in 1usize..11,
        izp in -128i32..128, ozp in -128i32..128, per_channel in any::<bool>(),
        act in (any::<i8>(), any::<i8>()), seed in any::<u64>(),
    ) {
        let mut rng = Rng::seed_from_u64(seed);
        let x = bytes(&mut rng, batch * inf);
        let w = bytes(&mut rng, outf * inf);
        let bias: Vec<i32> = (0..outf).map(|_| rng.next_u32() as i32 >> 10).collect();
        let (m, s) = random_requant(&mut rng, outf, per_channel);
        let (act_min, act_max) = act_range(act.0, act.1);
        let rq = Requant { multiplier: &m, shift: &s, output_zero_point: ozp, act_min, act_max };
        let want = naive_dense(&x, &w, &bias, izp, &rq, batch, inf, outf);
        let mut folded = vec![0; outf];
        fold_input_offset(&w, outf, inf, Some(&bias), izp, &mut folded).unwrap();
        for k in kernels() {
            let mut y = vec![0i8; batch * outf];
            dense_s8_with(k, &x, &w, &folded, &rq, batch, inf, outf, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "kernel {:?}", k);
        }
        let mut y = vec![0i8; batch * outf];
        dense_s8(&x, &w, &folded, &rq, batch, inf, outf, &mut y).unwrap();
        prop_assert_eq!(&y, &want);
    }

    /// conv2d_s8 on every kernel = the naive TFLite loop, with stride, padding,
    /// dilation, groups (depthwise with multipliers included), TFLite-sized outputs.
    #[test]
    fn conv_matches_tflite_formula_on_every_kernel(
        n in 1usize..3, h in 1usize..8, w in 1usize..8,
        (kh, kw) in (1usize..4, 1usize..4), (sh, sw) in (1usize..3, 1usize..3),
        (dh, dw) in (1usize..3, 1usize..3), (ph, pw) in (0usize..4, 0usize..4),
        (groups, cg, og) in (1usize..4, 1usize..5, 1usize..5), depthwise in any::<bool>(),
        grow in (0usize..2, 0usize..2),
        izp in -128i32..128, ozp in -128i32..128, per_channel in any::<bool>(), seed in any::<u64>(),
    ) {
        let (c_in, c_out) = if depthwise { (groups, groups * og) } else { (groups * cg, groups * og) };
        let Ok(g) = ConvGeometry::new(n, h, w, c_in, c_out, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups) else {
            return Ok(()); // kernel larger than the padded input
        };
        // One more output row/column than PyTorch's, as TFLite's SAME can have.
        let g = g.with_output_size(g.out_h + grow.0, g.out_w + grow.1).unwrap();
        let mut rng = Rng::seed_from_u64(seed);
        let x = bytes(&mut rng, g.input_len());
        let wt = bytes(&mut rng, g.weight_len());
        let bias: Vec<i32> = (0..c_out).map(|_| rng.next_u32() as i32 >> 12).collect();
        let (m, s) = random_requant(&mut rng, c_out, per_channel);
        let rq = Requant { multiplier: &m, shift: &s, output_zero_point: ozp, act_min: -128, act_max: 127 };
        let want = naive_conv(&g, &x, &wt, &bias, izp, &rq);
        let mut folded = vec![0; c_out];
        fold_input_offset(&wt, c_out, g.weight_len() / c_out, Some(&bias), izp, &mut folded).unwrap();
        let mut scratch = vec![0i8; g.scratch_len()];
        for k in kernels() {
            let mut y = vec![0i8; g.output_len()];
            conv2d_s8_with(k, &g, &x, &wt, &folded, izp as i8, &rq, &mut scratch, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "kernel {:?}, {:?}", k, g);
        }
    }

    /// A 1x1 convolution (the dense shortcut) = the naive loop too.
    #[test]
    fn pointwise_conv_matches_tflite_formula(
        n in 1usize..3, h in 1usize..6, w in 1usize..6, c_in in 1usize..70, c_out in 1usize..9,
        izp in -128i32..128, seed in any::<u64>(),
    ) {
        let g = ConvGeometry::new(n, h, w, c_in, c_out, 1, 1, (1, 1), (0, 0), (1, 1), 1).unwrap();
        let mut rng = Rng::seed_from_u64(seed);
        let x = bytes(&mut rng, g.input_len());
        let wt = bytes(&mut rng, g.weight_len());
        let bias: Vec<i32> = (0..c_out).map(|_| rng.next_u32() as i32 >> 12).collect();
        let (m, s) = random_requant(&mut rng, c_out, true);
        let rq = Requant { multiplier: &m, shift: &s, output_zero_point: 3, act_min: -100, act_max: 100 };
        let mut folded = vec![0; c_out];
        fold_input_offset(&wt, c_out, c_in, Some(&bias), izp, &mut folded).unwrap();
        prop_assert_eq!(g.scratch_len(), 0); // read in place
        let mut y = vec![0i8; g.output_len()];
        conv2d_s8(&g, &x, &wt, &folded, izp as i8, &rq, &mut [], &mut y).unwrap();
        prop_assert_eq!(y, naive_conv(&g, &x, &wt, &bias, izp, &rq));
    }
}

#[test]
fn every_kernel_agrees_on_large_accumulators_that_wrap() {
    // 2^17 products of -128 * -128 = 2^14 reach 2^31: the sum overflows i32, as does
    // a bias of i32::MAX plus anything. TFLM's int32 accumulator wraps (as compiled),
    // and every kernel wraps the same way.
    let k = (1 << 17) + 61;
    let x = vec![-128i8; 2 * k];
    let w = vec![-128i8; 3 * k];
    let bias = [i32::MAX, 0, i32::MIN];
    let m = [1 << 30];
    let s = [-20i8];
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    let mut want = vec![0i8; 6];
    dense_s8_with(Kernel::Portable, &x, &w, &bias, &rq, 2, k, 3, &mut want).unwrap();
    let acc = |b: i32| b.wrapping_add((k as i32).wrapping_mul(1 << 14));
    for (o, b) in bias.iter().enumerate() {
        let expect = multiply_by_quantized_multiplier(acc(*b), 1 << 30, -20).clamp(-128, 127) as i8;
        assert_eq!((want[o], want[3 + o]), (expect, expect));
    }
    for kernel in kernels() {
        let mut y = vec![0i8; 6];
        dense_s8_with(kernel, &x, &w, &bias, &rq, 2, k, 3, &mut y).unwrap();
        assert_eq!(y, want, "{kernel:?}");
    }
}

#[test]
fn padded_taps_contribute_nothing_with_the_folded_bias() {
    // 3x3 kernel of ones on a 1x1 image with padding 1: TFLM sees one tap. With the
    // folded bias (bias - zp * 9) the eight padded taps read zp and cancel exactly.
    let g = ConvGeometry::new(1, 1, 1, 1, 1, 3, 3, (1, 1), (1, 1), (1, 1), 1).unwrap();
    let (x, w, zp) = ([50i8], [1i8; 9], -20i8);
    let mut folded = [0];
    fold_input_offset(&w, 1, 9, Some(&[5]), i32::from(zp), &mut folded).unwrap();
    assert_eq!(folded, [5 + 20 * 9]);
    let rq = Requant {
        multiplier: &[1 << 30],
        shift: &[1],
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    let mut y = [0i8];
    conv2d_s8(&g, &x, &w, &folded, zp, &rq, &mut [0; 9], &mut y).unwrap();
    assert_eq!(y, [5 + (50 + 20)]); // bias + 1 * (x - zp), times 1.0
}

#[test]
fn dense_and_conv_by_hand() {
    // Two outputs, per-channel scales 0.5 and 0.25, output zero point 10, ReLU6-ish
    // clamp [10, 30].
    let x = [3i8, -1, 4]; // input zero point 1: values 2, -2, 3
    let w = [1i8, 2, 3, -1, 0, 5];
    let bias = [4, -8];
    let mut folded = [0; 2];
    fold_input_offset(&w, 2, 3, Some(&bias), 1, &mut folded).unwrap();
    assert_eq!(folded, [4 - 6, -8 - 4]);
    let (m0, s0) = quantize_multiplier(0.5).unwrap();
    let (m1, s1) = quantize_multiplier(0.25).unwrap();
    let m = [m0, m1];
    let s = [s0 as i8, s1 as i8];
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: 10,
        act_min: 10,
        act_max: 30,
    };
    let mut y = [0i8; 2];
    dense_s8(&x, &w, &folded, &rq, 1, 3, 2, &mut y).unwrap();
    // acc0 = 4 + 2 - 4 + 9 = 11 -> 5.5 -> 6, + 10 = 16.
    // acc1 = -8 - 2 + 15 = 5 -> 1.25 -> 2, by TFLM's double rounding: 5 * 0.5 = 2.5
    // rounds to 3, then 3 / 2 = 1.5 rounds to 2.
    assert_eq!(y, [16, 12]);
}

// ---------------------------------------------------------------------------------
// Pooling and mean
// ---------------------------------------------------------------------------------

/// TFLite's pooling loops, with PyTorch's count_include_pad as an option.
fn naive_pool(
    g: &PoolGeometry,
    x: &[i8],
    zp: i8,
    include_pad: bool,
    avg: bool,
    lo: i8,
    hi: i8,
) -> Vec<i8> {
    let mut y = vec![0; g.output_len()];
    for b in 0..g.n {
        for i in 0..g.out_h {
            for j in 0..g.out_w {
                for ch in 0..g.c {
                    let (mut sum, mut count, mut max) = (0i32, 0i32, i8::MIN);
                    for u in 0..g.kh {
                        for v in 0..g.kw {
                            let r = (i * g.stride.0 + u) as i64 - g.pad.0 as i64;
                            let c = (j * g.stride.1 + v) as i64 - g.pad.1 as i64;
                            if r < 0 || c < 0 || r >= g.h as i64 || c >= g.w as i64 {
                                if include_pad {
                                    sum += i32::from(zp);
                                    count += 1;
                                }
                                continue;
                            }
                            let xv = x[((b * g.h + r as usize) * g.w + c as usize) * g.c + ch];
                            sum += i32::from(xv);
                            count += 1;
                            max = max.max(xv);
                        }
                    }
                    let out = if avg {
                        let q = if sum > 0 {
                            (sum + count / 2) / count
                        } else {
                            (sum - count / 2) / count
                        };
                        q.clamp(i32::from(lo), i32::from(hi)) as i8
                    } else {
                        max.clamp(lo, hi)
                    };
                    y[((b * g.out_h + i) * g.out_w + j) * g.c + ch] = out;
                }
            }
        }
    }
    y
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn pooling_matches_tflite_loops(
        n in 1usize..3, h in 1usize..9, w in 1usize..9, c in 1usize..5,
        (kh, kw) in (1usize..5, 1usize..5), (sh, sw) in (1usize..4, 1usize..4),
        (ph, pw) in (0usize..3, 0usize..3), grow in (0usize..2, 0usize..2),
        zp in any::<i8>(), act in (any::<i8>(), any::<i8>()), seed in any::<u64>(),
    ) {
        let Ok(g) = PoolGeometry::new(n, h, w, c, kh, kw, (sh, sw), (ph.min(kh / 2), pw.min(kw / 2))) else {
            return Ok(());
        };
        let g = g.with_output_size(g.out_h + grow.0, g.out_w + grow.1).unwrap_or(g);
        let (lo, hi) = act_range(act.0, act.1);
        let x = bytes(&mut Rng::seed_from_u64(seed), g.input_len());
        let mut y = vec![0i8; g.output_len()];
        max_pool_s8(&g, &x, lo, hi, &mut y).unwrap();
        prop_assert_eq!(&y, &naive_pool(&g, &x, zp, false, false, lo, hi));
        for include_pad in [false, true] {
            avg_pool_s8(&g, &x, zp, include_pad, lo, hi, &mut y).unwrap();
            prop_assert_eq!(&y, &naive_pool(&g, &x, zp, include_pad, true, lo, hi), "pad {}", include_pad);
        }
    }

    /// The global mean against the float formula: within one step of
    /// `round(s_in / s_out * (mean(x) - z_in)) + z_out` (TFLM folds 1/num into a
    /// fixed-point multiplier).
    #[test]
    fn mean_is_the_requantized_average(
        n in 1usize..3, h in 1usize..12, w in 1usize..12, c in 1usize..4,
        e_in in 0.0f64..8.0, e_out in 0.0f64..8.0, zin in -128i32..128, zout in -128i32..128,
        same in any::<bool>(), seed in any::<u64>(),
    ) {
        let (s_in, s_out) = (2f64.powf(-e_in) as f32, 2f64.powf(-if same { e_in } else { e_out }) as f32);
        let zout = if same { zin } else { zout };
        let p = mean_params(f64::from(s_in), zin, f64::from(s_out), zout).unwrap();
        let x = bytes(&mut Rng::seed_from_u64(seed), n * h * w * c);
        let mut y = vec![0i8; n * c];
        mean_hw_s8(&p, n, h, w, c, &x, &mut y).unwrap();
        for b in 0..n {
            for ch in 0..c {
                let sum: f64 = (0..h * w).map(|t| f64::from(x[(b * h * w + t) * c + ch])).sum();
                let real = f64::from(s_in) * (sum / (h * w) as f64 - f64::from(zin));
                let want = ((real / f64::from(s_out)).round() + f64::from(zout)).clamp(-128.0, 127.0);
                prop_assert!((f64::from(y[b * c + ch]) - want).abs() <= 1.0, "{} vs {}", y[b * c + ch], want);
            }
        }
    }
}

#[test]
fn pooling_by_hand() {
    // 1x3x3x1 input, 2x2 windows, stride 2, TFLite SAME (out 2x2, no top/left pad):
    // windows {1,2,4,5}, {3,6}, {7,8}, {9}.
    let x = [1i8, 2, 3, 4, 5, 6, 7, 8, 9];
    let g = PoolGeometry::new(1, 3, 3, 1, 2, 2, (2, 2), (0, 0)).unwrap();
    assert_eq!((g.out_h, g.out_w), (1, 1));
    let g = g.with_output_size(2, 2).unwrap();
    let mut y = [0i8; 4];
    max_pool_s8(&g, &x, -128, 127, &mut y).unwrap();
    assert_eq!(y, [5, 6, 8, 9]);
    avg_pool_s8(&g, &x, 0, false, -128, 127, &mut y).unwrap();
    assert_eq!(y, [3, 5, 8, 9]); // 12/4 = 3, 9/2 = 4.5 -> 5, 15/2 -> 8, 9
    avg_pool_s8(&g, &x, 0, true, -128, 127, &mut y).unwrap();
    assert_eq!(y, [3, 2, 4, 2]); // /4: 3, 2.25, 3.75, 2.25
                                 // Negative halves round away from zero: (-3 - 2) / 2 -> -2.5 -> -3.
    let g = PoolGeometry::new(1, 1, 2, 1, 1, 2, (1, 1), (0, 0)).unwrap();
    avg_pool_s8(&g, &[-3, -2], 0, false, -128, 127, &mut y[..1]).unwrap();
    assert_eq!(y[0], -3);
    max_pool_s8(&g, &[-3, -2], -1, 127, &mut y[..1]).unwrap();
    assert_eq!(y[0], -1); // clamped to act_min
}

#[test]
fn mean_by_hand_and_tflm() {
    // Same quantization: the mean of [1, 2, 3, 4] is 2.5 -> 3 (TFLM).
    let p = mean_params(0.5, 0, 0.5, 0).unwrap();
    let mut y = [0i8; 2];
    mean_hw_s8(&p, 1, 2, 2, 2, &[1, -1, 2, -2, 3, -3, 4, -4], &mut y).unwrap();
    assert_eq!(y, [3, -3]);
    // Different quantization: zero point 10 in, scale 0.25 -> 0.5, zero point -5 out:
    // mean(q) - 10 = 20 -> 10.0 real... 20 * 0.25 / 0.5 = 10, + -5 = 5.
    let p = mean_params(0.25, 10, 0.5, -5).unwrap();
    mean_hw_s8(&p, 1, 1, 3, 1, &[25, 30, 35], &mut y[..1]).unwrap();
    assert_eq!(y[0], 5);
    // TFLM returns early, all zeros, for an empty reduction.
    mean_hw_s8(&p, 1, 0, 3, 2, &[], &mut y).unwrap();
    assert_eq!(y, [0, 0]);
}

// ---------------------------------------------------------------------------------
// Add
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// add_s8 against the float formula: within one step of
    /// `round((s1 (a - z1) + s2 (b - z2)) / s_out) + z_out`, clamped.
    #[test]
    fn add_is_the_requantized_real_sum(
        e1 in 0.0f64..10.0, e2 in 0.0f64..10.0, eo in -1.0f64..10.0,
        z1 in -128i32..128, z2 in -128i32..128, zo in -128i32..128,
        a in proptest::collection::vec(any::<i8>(), 1..40), seed in any::<u64>(), broadcast in 0u8..3,
    ) {
        let (s1, s2, so) = (2f64.powf(-e1) as f32, 2f64.powf(-e2) as f32, 2f64.powf(-eo) as f32);
        let p = add_params(f64::from(s1), z1, f64::from(s2), z2, f64::from(so), zo, -128, 127).unwrap();
        let b = bytes(&mut Rng::seed_from_u64(seed), a.len());
        let (a, b): (Vec<i8>, Vec<i8>) = match broadcast {
            0 => (a.clone(), b),
            1 => (a[..1].to_vec(), b),
            _ => (a.clone(), b[..1].to_vec()),
        };
        let len = a.len().max(b.len());
        let mut y = vec![0i8; len];
        add_s8(&p, &a, &b, &mut y).unwrap();
        for i in 0..len {
            let (u, v) = (a[if a.len() == 1 { 0 } else { i }], b[if b.len() == 1 { 0 } else { i }]);
            let real = f64::from(s1) * f64::from(i32::from(u) - z1) + f64::from(s2) * f64::from(i32::from(v) - z2);
            let want = ((real / f64::from(so)).round() + f64::from(zo)).clamp(-128.0, 127.0);
            prop_assert!((f64::from(y[i]) - want).abs() <= 1.0, "{} vs {}", y[i], want);
        }
    }
}

#[test]
fn add_params_match_tflm() {
    // TFLM's CalculateOpDataAdd on these scales (printed by the harness).
    let p = add_params(0.5, 0, 0.25, 4, 0.5, -1, -128, 127).unwrap();
    assert_eq!(
        (
            p.left_shift,
            p.input1_multiplier,
            p.input1_shift,
            p.input2_multiplier,
            p.input2_shift
        ),
        (20, 1 << 30, 0, 1 << 30, -1)
    );
    assert_eq!(
        (
            p.output_multiplier,
            p.output_shift,
            p.input1_offset,
            p.input2_offset
        ),
        (1 << 30, -18, 0, -4)
    );
    let p = add_params(0.1, 3, 0.07, -2, 0.15, 1, -128, 127).unwrap();
    assert_eq!(
        (
            p.input1_multiplier,
            p.input1_shift,
            p.input2_multiplier,
            p.input2_shift,
            p.output_multiplier,
            p.output_shift
        ),
        (1_073_741_824, 0, 1_503_238_538, -1, 1_431_655_730, -19)
    );
    let mut y = [0i8; 4];
    add_s8(&p, &[3, 13, -128, 127], &[-2, 8, -128, 127], &mut y).unwrap();
    // TFLM's output: 0 + 0 -> 1; 1.0 + 0.7 = 1.7 -> 11.33 + 1 -> 12; then the clamps.
    assert_eq!(y, [1, 12, -128, 127]);
}

// ---------------------------------------------------------------------------------
// Softmax
// ---------------------------------------------------------------------------------

#[test]
fn softmax_by_hand() {
    let p = softmax_params(0.1, 1.0).unwrap();
    let mut y = [0i8; 8];
    // Equal values share 1/len exactly: 256 / len - 128.
    softmax_s8(&p, &[5, 5, 5, 5, -3, -3], 2, &mut y[..6]).unwrap();
    assert_eq!(&y[..6], &[0, 0, 0, 0, 0, 0]); // 1/2 -> 128 - 128
    softmax_s8(&p, &[7; 8], 8, &mut y).unwrap();
    assert_eq!(y, [-96; 8]); // 1/8 -> 32 - 128
                             // A lone value is 1.0: 256 - 128, saturated to 127.
    softmax_s8(&p, &[-100], 1, &mut y[..1]).unwrap();
    assert_eq!(y[0], 127);
    // Differences below diff_min (-248 for scale 0.1) count as exp = 0: 0 -> -128.
    assert_eq!(p.diff_min, -248);
    let big = softmax_params(1.0, 1.0).unwrap(); // exp(-255) vanishes, and so on
    softmax_s8(&big, &[127, -128, -128], 3, &mut y[..3]).unwrap();
    assert_eq!(&y[..3], &[127, -128, -128]);
    // ln 3 apart: 1/4 and 3/4 -> -64 and 64 (0.1 * 11 = 1.1 ~ ln 3 = 1.0986).
    softmax_s8(&p, &[0, 11], 2, &mut y[..2]).unwrap();
    assert_eq!(&y[..2], &[-64, 64]);
    // TFLM's own output for scale 0.1 and [1, 2, 3, 4] (floats: 0.2138 0.2363 0.2612
    // 0.2887, i.e. -73.3 -67.5 -61.1 -54.1).
    softmax_s8(&p, &[1, 2, 3, 4], 4, &mut y[..4]).unwrap();
    assert_eq!(&y[..4], &[-73, -68, -61, -54]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Each row sums to about 1 (256 steps), is monotonic in the input, and stays
    /// within two steps of the float softmax.
    #[test]
    fn softmax_invariants(e in -6.0f64..3.0, beta in 0.5f64..2.0, rows in 1usize..4, len in 1usize..64, seed in any::<u64>()) {
        let scale = 2f64.powf(e) as f32;
        let p = softmax_params(f64::from(scale), beta).unwrap();
        let x = bytes(&mut Rng::seed_from_u64(seed), rows * len);
        let mut y = vec![0i8; rows * len];
        softmax_s8(&p, &x, len, &mut y).unwrap();
        for (xr, yr) in x.chunks(len).zip(y.chunks(len)) {
            let total: i32 = yr.iter().map(|&v| i32::from(v) + 128).sum();
            prop_assert!((total - 256).abs() <= len as i32 / 2 + 1, "sum {}", total);
            for i in 0..len {
                for j in 0..len {
                    if xr[i] >= xr[j] {
                        prop_assert!(yr[i] >= yr[j]);
                    }
                }
            }
            let max = f64::from(*xr.iter().max().unwrap());
            let z: f64 = xr.iter().map(|&v| ((f64::from(v) - max) * f64::from(scale) * f64::from(beta as f32)).exp()).sum();
            for (&xv, &yv) in xr.iter().zip(yr) {
                let prob = ((f64::from(xv) - max) * f64::from(scale) * f64::from(beta as f32)).exp() / z;
                let want = (prob * 256.0 - 128.0).round().clamp(-128.0, 127.0);
                prop_assert!((f64::from(yv) - want).abs() <= 2.0, "{} vs {}", yv, want);
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Quantize, dequantize, lookup, argmax
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quantize_and_dequantize_match_the_formulas(
        x in proptest::collection::vec(-300.0f32..300.0, 0..50), e in -4.0f64..4.0, zp in -128i32..128,
        halves in proptest::collection::vec(-300i32..300, 0..10),
    ) {
        let scale = 2f64.powf(e) as f32;
        // Exact halves too, to pin the rounding (half away from zero).
        let x: Vec<f32> = x.into_iter().chain(halves.iter().map(|&h| (h as f32 + 0.5) * scale)).collect();
        let mut q = vec![0i8; x.len()];
        quantize_f32_s8(&x, scale, zp, &mut q).unwrap();
        for (&v, &got) in x.iter().zip(&q) {
            let want = ((v / scale).round() as i32 + zp).clamp(-128, 127);
            prop_assert_eq!(i32::from(got), want);
        }
        let mut back = vec![0f32; q.len()];
        dequantize_s8_f32(&q, scale, zp, &mut back).unwrap();
        for (&v, &got) in q.iter().zip(&back) {
            prop_assert_eq!(got, (f64::from(scale) * f64::from(i32::from(v) - zp)) as f32);
        }
    }
}

#[test]
fn quantize_edge_values() {
    let mut y = [0i8; 6];
    quantize_f32_s8(
        &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -0.5, 0.5],
        1.0,
        3,
        &mut y,
    )
    .unwrap();
    assert_eq!(y, [3, 127, -128, 127, 2, 4]);
}

#[test]
fn lut_and_argmax() {
    let mut table = [0i8; 256];
    for v in -128i32..=127 {
        table[v as u8 as usize] = (-v).clamp(-128, 127) as i8;
    }
    let mut y = [0i8; 4];
    lut_s8(&table, &[-128, -1, 0, 127], &mut y).unwrap();
    assert_eq!(y, [127, 1, 0, -127]);
    assert_eq!(argmax_s8(&[1, 9, 9, -3]), 1);
    assert_eq!(argmax_s8(&[-128, -128]), 0);
    assert_eq!(argmax_s8(&[]), 0);
}

// ---------------------------------------------------------------------------------
// Errors: every bad size or parameter is a named error, never a panic
// ---------------------------------------------------------------------------------

#[test]
fn errors_name_the_problem() {
    let m = [1 << 30];
    let s = [0i8];
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    let mut y = [0i8; 2];
    let e = dense_s8(&[0; 3], &[0; 6], &[0; 2], &rq, 1, 3, 2, &mut y[..1]).unwrap_err();
    assert_eq!(
        e,
        Error::LengthMismatch {
            op: "dense_s8",
            what: "output",
            expected: 2,
            actual: 1
        }
    );
    assert!(e.to_string().contains("dense_s8"));
    let e = dense_s8(&[0; 2], &[0; 6], &[0; 2], &rq, 1, 3, 2, &mut y).unwrap_err();
    assert!(matches!(e, Error::LengthMismatch { what: "input", .. }));
    let e = dense_s8(&[0; 3], &[0; 6], &[0; 2], &rq, usize::MAX, 3, 2, &mut y).unwrap_err();
    assert_eq!(e, Error::Overflow { op: "dense_s8" });
    // Requant: shift out of TFLM's range, per-channel length, zero point, clamp.
    let bad_shift = Requant { shift: &[31], ..rq };
    assert!(matches!(
        bad_shift.validate(2),
        Err(Error::InvalidParameter { name: "shift", .. })
    ));
    let two = [1 << 30, 1 << 30];
    let bad_len = Requant {
        multiplier: &two,
        ..rq
    };
    assert!(matches!(
        bad_len.validate(3),
        Err(Error::LengthMismatch { .. })
    ));
    let bad_zp = Requant {
        output_zero_point: 200,
        ..rq
    };
    assert!(matches!(
        bad_zp.validate(1),
        Err(Error::InvalidParameter {
            name: "output_zero_point",
            ..
        })
    ));
    let bad_act = Requant {
        act_min: 5,
        act_max: 4,
        ..rq
    };
    assert!(matches!(
        bad_act.validate(1),
        Err(Error::InvalidParameter {
            name: "act_min",
            ..
        })
    ));
    assert!(rq.validate(7).is_ok());
    // Folding overflow.
    let mut out = [0];
    let e = fold_input_offset(&[-128; 4], 1, 4, Some(&[i32::MAX]), 127, &mut out).unwrap_err();
    assert_eq!(
        e,
        Error::Overflow {
            op: "fold_input_offset"
        }
    );
    assert!(fold_input_offset(&[1; 4], 1, 4, None, 1, &mut out).is_ok());
    assert_eq!(out, [-4]);
    // Geometry.
    let e = ConvGeometry::new(1, 5, 5, 3, 4, 3, 3, (1, 1), (0, 0), (1, 1), 2).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "groups", .. }));
    let e = ConvGeometry::new(1, 2, 2, 1, 1, 5, 5, (1, 1), (0, 0), (1, 1), 1).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "kernel", .. }));
    let e = ConvGeometry::new(1, 2, 2, 1, 1, 1, 1, (0, 1), (0, 0), (1, 1), 1).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "stride", .. }));
    let e = PoolGeometry::new(1, 4, 4, 1, 2, 2, (1, 1), (2, 0)).unwrap_err();
    assert!(matches!(e, Error::InvalidParameter { name: "pad", .. }));
    let g = PoolGeometry::new(1, 4, 4, 1, 2, 2, (2, 2), (0, 0)).unwrap();
    assert!(g.with_output_size(4, 2).is_err()); // a window entirely off the input
                                                // Conv scratch too short.
    let g = ConvGeometry::new(1, 3, 3, 2, 1, 3, 3, (1, 1), (1, 1), (1, 1), 1).unwrap();
    let e = conv2d_s8(
        &g,
        &[0; 18],
        &[0; 18],
        &[0],
        0,
        &rq,
        &mut [0; 17],
        &mut [0; 9],
    )
    .unwrap_err();
    assert!(matches!(
        e,
        Error::LengthMismatch {
            expected: 18,
            actual: 17,
            ..
        }
    ));
    // Parameters whose TFLM prepare would abort.
    assert!(matches!(
        softmax_params(1e-9, 1.0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        softmax_params(f64::NAN, 1.0),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        add_params(1.0, 0, 1.0, 0, 1e-7, 0, -128, 127),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        add_params(1.0, 0, 1.0, 200, 1.0, 0, -128, 127),
        Err(Error::InvalidParameter { name: "zp2", .. })
    ));
    assert!(matches!(
        mean_params(1.0, 0, 1e-10, 0),
        Err(Error::InvalidParameter { name: "shift", .. })
    ));
    assert!(matches!(
        quantize_f32_s8(&[1.0], 0.0, 0, &mut y[..1]),
        Err(Error::InvalidParameter { name: "scale", .. })
    ));
    assert!(matches!(
        softmax_s8(&softmax_params(0.1, 1.0).unwrap(), &[0; 5], 2, &mut [0; 5]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        softmax_s8(&softmax_params(0.1, 1.0).unwrap(), &[0; 4], 0, &mut [0; 4]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        add_s8(
            &add_params(1.0, 0, 1.0, 0, 1.0, 0, -128, 127).unwrap(),
            &[0; 2],
            &[0; 3],
            &mut [0; 3]
        ),
        Err(Error::LengthMismatch { .. })
    ));
    // An unavailable kernel is refused, not run.
    for k in Kernel::ALL.into_iter().filter(|k| !k.is_available()) {
        let e = dense_s8_with(k, &[0; 3], &[0; 6], &[0; 2], &rq, 1, 3, 2, &mut y).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { name: "kernel", .. }));
    }
}

#[test]
fn softmax_rows_tflm_cannot_represent_are_an_error() {
    // 512 equal values: the sum of exponentials reaches 512.0 (2^28 in Q12.19) and the
    // output exponent 32, where TFLM's TFLITE_CHECK(exponent <= 31) aborts (its
    // reference kernel run on this row does). 511 values still work: 1/511 -> -127.
    let p = softmax_params(0.1, 1.0).unwrap();
    let x = vec![0i8; 512];
    let mut y = vec![0i8; 512];
    assert_eq!(
        softmax_s8(&p, &x, 512, &mut y),
        Err(Error::Overflow { op: "softmax_s8" })
    );
    softmax_s8(&p, &x[..511], 511, &mut y[..511]).unwrap();
    assert!(y[..511].iter().all(|&v| v == -127));
    // Long rows are fine when most values are far below the maximum.
    let mut x = vec![-128i8; 5000];
    x[1234] = 127;
    let mut y = vec![0i8; 5000];
    softmax_s8(&p, &x, 5000, &mut y).unwrap();
    assert_eq!((y[1234], y[0]), (127, -128));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary geometry fields (public, so a caller can write anything) and buffer
    /// sizes: an error or a result, never a panic.
    #[test]
    fn conv_and_pool_never_panic(
        dims in proptest::collection::vec(prop_oneof![0usize..6, Just(usize::MAX), Just(1usize << 40)], 15),
        len in 0usize..200, shift in any::<i8>(), zp in any::<i32>(),
    ) {
        let g = ConvGeometry {
            n: dims[0], h: dims[1], w: dims[2], c_in: dims[3], c_out: dims[4], kh: dims[5], kw: dims[6],
            stride: (dims[7], dims[8]), pad: (dims[9], dims[10]), dilation: (dims[11], dims[12]),
            groups: dims[13], out_h: dims[14], out_w: dims[0],
        };
        let m = [1 << 30];
        let s = [shift];
        let rq = Requant { multiplier: &m, shift: &s, output_zero_point: zp, act_min: -128, act_max: 127 };
        let x = vec![1i8; len];
        let mut y = vec![0i8; len];
        let mut scratch = vec![0i8; len];
        let bias = vec![0i32; len];
        let _ = conv2d_s8(&g, &x, &x, &bias, 0, &rq, &mut scratch, &mut y);
        let _ = g.with_output_size(dims[1], dims[2]);
        let p = PoolGeometry {
            n: dims[0], h: dims[1], w: dims[2], c: dims[3], kh: dims[5], kw: dims[6],
            stride: (dims[7], dims[8]), pad: (dims[9], dims[10]), out_h: dims[14], out_w: dims[4],
        };
        let _ = max_pool_s8(&p, &x, -128, 127, &mut y);
        let _ = avg_pool_s8(&p, &x, 3, true, -128, 127, &mut y);
        let _ = mean_hw_s8(&MeanParams { input_zero_point: 0, multiplier: 1 << 30, shift: i32::from(shift), output_zero_point: 0 },
            dims[0], dims[1], dims[2], dims[3], &x, &mut y);
        let _ = dense_s8(&x, &x, &bias, &rq, dims[0], dims[1], dims[2], &mut y);
    }
}

/// The fast rounding in `quantize_f32_s8` equals `roundf` on every kind of f32: ties,
/// just below ties, large integers, saturation, infinities and NaN.
#[test]
fn quantize_rounds_like_roundf_everywhere() {
    let mut cases: Vec<f32> = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999997,
        -0.49999997,
        8388607.5,
        -8388607.5,
        16777216.0,
        3.0e9,
        -3.0e9,
        2147483520.0,
        -2147483648.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
    ];
    let mut bits = 0x1234_5678u32;
    for _ in 0..100_000 {
        bits = bits.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        cases.push(f32::from_bits(bits));
        cases.push((bits % 1000) as f32 / 4.0 - 125.0);
    }
    for &v in &cases {
        for zp in [-128, -3, 0, 127] {
            let mut y = [0i8];
            dl_core::quant::quantize_f32_s8(&[v], 1.0, zp, &mut y).unwrap();
            let want = ((libm::roundf(v) as i32).saturating_add(zp)).clamp(-128, 127) as i8;
            assert_eq!(y[0], want, "{v:e} zp {zp}");
        }
    }
}

// ---------------------------------------------------------------------------------
// Vector fast paths of the element-wise kernels against the portable loops
// ---------------------------------------------------------------------------------

/// f32 values that stress quantization: ties at every magnitude, values one ulp
/// either side of them, huge and tiny values, infinities, NaN, signed zeros.
fn awkward_f32(rng: &mut Rng, scale: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let r = rng.next_u32();
            let tie = ((r % 600) as f32 - 300.0 + 0.5) * scale;
            match i % 11 {
                0 => tie,
                1 => f32::from_bits(tie.to_bits().wrapping_add(1)),
                2 => f32::from_bits(tie.to_bits().wrapping_sub(1)),
                3 => f32::from_bits(rng.next_u32()), // any bit pattern, NaNs included
                4 => [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -0.0, 0.0][r as usize % 5],
                5 => [3.0e9, -3.0e9, 1024.5, -1024.5, 1e-40, -1e-40][r as usize % 6] * scale,
                6 => ((r % 2049) as f32 - 1024.0) * scale, // integers around the clamp
                _ => ((r % 100_000) as f32 / 100.0 - 500.0) * scale,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every kernel's quantization (the AVX-512 and AVX2 loops, their masked and scalar
    /// tails) gives the portable loop's bits, on any length and every kind of value.
    #[test]
    fn quantize_is_the_portable_loop_on_every_kernel(
        n in 0usize..140, e in -30.0f64..30.0, zp in -128i32..128, seed in any::<u64>(),
    ) {
        let scale = 2f64.powf(e) as f32 * 1.37;
        let x = awkward_f32(&mut Rng::seed_from_u64(seed), scale, n);
        let mut want = vec![0i8; n];
        quantize_f32_s8_with(Kernel::Portable, &x, scale, zp, &mut want).unwrap();
        for k in kernels() {
            let mut got = vec![0x55i8; n];
            quantize_f32_s8_with(k, &x, scale, zp, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{:?}", k);
        }
        let mut got = vec![0i8; n];
        quantize_f32_s8(&x, scale, zp, &mut got).unwrap();
        prop_assert_eq!(&got, &want);
    }

    /// Every kernel's 2x2 stride-2 max pooling (the AVX-512 paths for channel counts
    /// that pair in one permute and the pixel-by-pixel one for the others, odd sizes
    /// whose last row and column no window reads, row tails) gives TFLM's loop's bits.
    #[test]
    fn max_pool_2x2_is_tflite_on_every_kernel(
        n in 1usize..3, h in 2usize..12, w in 2usize..40,
        c in prop_oneof![1usize..5, Just(8usize), Just(16), Just(32), Just(64), 5usize..140],
        act in (any::<i8>(), any::<i8>()), seed in any::<u64>(),
    ) {
        let g = PoolGeometry::new(n, h, w, c, 2, 2, (2, 2), (0, 0)).unwrap();
        let (lo, hi) = act_range(act.0, act.1);
        let x = bytes(&mut Rng::seed_from_u64(seed), g.input_len());
        let want = naive_pool(&g, &x, 0, false, false, lo, hi);
        for k in kernels() {
            let mut got = vec![0x55i8; g.output_len()];
            max_pool_s8_with(k, &g, &x, lo, hi, &mut got).unwrap();
            prop_assert_eq!(&got, &want, "{:?} {:?}", k, g);
        }
    }
}

/// Quantization of the values the vector loops treat specially, on every kernel, at
/// lengths that put them in the vector body and in each kind of tail.
#[test]
fn quantize_special_values_on_every_kernel() {
    let specials = [
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN,
        3.0e9,
        -3.0e9,
        2147483520.0,
        -2147483648.0,
        1023.5,
        -1023.5,
        1024.0,
        -1024.0,
        1024.5,
        -1025.5,
        0.5,
        -0.5,
        0.49999997,
        -0.49999997,
        1.5,
        -2.5,
        -0.0,
        f32::MIN_POSITIVE,
        1e-45,
    ];
    for len in [1, 7, 8, 9, 15, 16, 17, 33] {
        for start in 0..specials.len() {
            let x: Vec<f32> = (0..len)
                .map(|i| specials[(start + i) % specials.len()])
                .collect();
            for (scale, zp) in [(1.0, 0), (1.0, -128), (0.5, 127), (3.0e-3, 5)] {
                let mut want = vec![0i8; len];
                quantize_f32_s8_with(Kernel::Portable, &x, scale, zp, &mut want).unwrap();
                for k in kernels() {
                    let mut got = vec![0i8; len];
                    quantize_f32_s8_with(k, &x, scale, zp, &mut got).unwrap();
                    assert_eq!(got, want, "{k:?} {x:?} {scale} {zp}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Convolutions of the shapes the VNNI direct kernel takes (ungrouped, up to
    /// sixteen output channels dividing 16, several pixels per register, tap rows of
    /// any length, row tails of fewer pixels than a register or a pass holds) and
    /// some it refuses, on every kernel, against the naive loop.
    #[test]
    fn narrow_conv_matches_tflite_formula_on_every_kernel(
        n in 1usize..3, h in 1usize..20, w in 1usize..36,
        c_in in prop_oneof![1usize..5, Just(8usize)],
        c_out in prop_oneof![Just(1usize), Just(2), Just(4), Just(8), Just(16), 1usize..17],
        (kh, kw) in (1usize..4, 1usize..4), (sh, sw) in (1usize..3, 1usize..4),
        dh in 1usize..3, (ph, pw) in (0usize..3, 0usize..3), grow in (0usize..2, 0usize..2),
        izp in -128i32..128, ozp in -128i32..128, per_channel in any::<bool>(),
        act in (any::<i8>(), any::<i8>()), seed in any::<u64>(),
    ) {
        let Ok(g) = ConvGeometry::new(n, h, w, c_in, c_out, kh, kw, (sh, sw), (ph, pw), (dh, 1), 1) else {
            return Ok(());
        };
        let g = g.with_output_size(g.out_h + grow.0, g.out_w + grow.1).unwrap();
        let mut rng = Rng::seed_from_u64(seed);
        let x = bytes(&mut rng, g.input_len());
        let wt = bytes(&mut rng, g.weight_len());
        let bias: Vec<i32> = (0..c_out).map(|_| rng.next_u32() as i32 >> 8).collect();
        let (m, s) = random_requant(&mut rng, c_out, per_channel);
        let (act_min, act_max) = act_range(act.0, act.1);
        let rq = Requant { multiplier: &m, shift: &s, output_zero_point: ozp, act_min, act_max };
        let want = naive_conv(&g, &x, &wt, &bias, izp, &rq);
        let mut folded = vec![0; c_out];
        fold_input_offset(&wt, c_out, g.weight_len() / c_out, Some(&bias), izp, &mut folded).unwrap();
        let mut scratch = vec![0i8; g.scratch_len()];
        for k in kernels() {
            let mut y = vec![0x55i8; g.output_len()];
            conv2d_s8_with(k, &g, &x, &wt, &folded, izp as i8, &rq, &mut scratch, &mut y).unwrap();
            prop_assert_eq!(&y, &want, "kernel {:?}, {:?}", k, g);
        }
    }
}

/// The MNIST CNN's two convolutions at a batch large enough to split over threads,
/// every kernel against the naive loop.
#[test]
fn mnist_convs_at_a_batch_on_every_kernel() {
    let mut rng = Rng::seed_from_u64(99);
    for (h, c_in, c_out) in [(28, 1, 8), (14, 8, 16)] {
        let g = ConvGeometry::new(70, h, h, c_in, c_out, 3, 3, (1, 1), (1, 1), (1, 1), 1).unwrap();
        let x = bytes(&mut rng, g.input_len());
        let wt = bytes(&mut rng, g.weight_len());
        let bias: Vec<i32> = (0..c_out).map(|_| rng.next_u32() as i32 >> 8).collect();
        let (m, s) = random_requant(&mut rng, c_out, true);
        let rq = Requant {
            multiplier: &m,
            shift: &s,
            output_zero_point: -9,
            act_min: -9,
            act_max: 127,
        };
        let want = naive_conv(&g, &x, &wt, &bias, 5, &rq);
        let mut folded = vec![0; c_out];
        fold_input_offset(
            &wt,
            c_out,
            g.weight_len() / c_out,
            Some(&bias),
            5,
            &mut folded,
        )
        .unwrap();
        let mut scratch = vec![0i8; g.scratch_len()];
        for k in kernels() {
            let mut y = vec![0i8; g.output_len()];
            conv2d_s8_with(k, &g, &x, &wt, &folded, 5, &rq, &mut scratch, &mut y).unwrap();
            assert_eq!(y, want, "kernel {k:?}, {g:?}");
        }
    }
}

/// The load-time-validated entry equals the checking one, and still refuses buffers
/// and per-channel arrays of the wrong length by name (no panic, no out-of-bounds).
#[test]
fn dense_validated_equals_dense_and_checks_lengths() {
    use dl_core::quant::{dense_s8, dense_s8_validated, Requant};
    let (inf, outf, batch) = (19, 7, 3);
    let x: Vec<i8> = (0..batch * inf).map(|i| (i * 37 % 251) as i8).collect();
    let w: Vec<i8> = (0..outf * inf).map(|i| (i * 91 % 253) as i8).collect();
    let bias: Vec<i32> = (0..outf as i32).map(|o| o * 1000 - 3000).collect();
    let m: Vec<i32> = (0..outf as i32).map(|o| (1 << 30) + o * 12345).collect();
    let s: Vec<i8> = (0..outf as i8).map(|o| -(o % 9) - 1).collect();
    let rq = Requant {
        multiplier: &m,
        shift: &s,
        output_zero_point: -3,
        act_min: -128,
        act_max: 127,
    };
    let mut want = vec![0i8; batch * outf];
    let mut got = vec![0i8; batch * outf];
    dense_s8(&x, &w, &bias, &rq, batch, inf, outf, &mut want).unwrap();
    dense_s8_validated(&x, &w, &bias, &rq, batch, inf, outf, &mut got).unwrap();
    assert_eq!(got, want);
    let short = Requant {
        multiplier: &m[..outf - 1],
        shift: &s[..outf - 1],
        ..rq
    };
    let err = dense_s8_validated(&x, &w, &bias, &short, batch, inf, outf, &mut got);
    assert!(
        matches!(err, Err(dl_core::Error::LengthMismatch { what, .. }) if what.starts_with("multiplier")),
        "{err:?}"
    );
}
