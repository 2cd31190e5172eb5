//! gemm, conv2d and pooling against hand-computed fixtures and naive reference loops
//! (property tests), gradients against adjoint identities and central finite
//! differences in f64, and one error-message test per public fallible function.

use dl_core::conv::{
    col2im, conv2d, conv2d_backward_input, conv2d_backward_input_direct, conv2d_backward_input_par,
    conv2d_backward_weight, conv2d_backward_weight_direct, conv2d_backward_weight_par,
    conv2d_direct, conv2d_par, im2col, Conv2dGeometry, Conv2dParams,
};
use dl_core::gemm::{batched_gemm, gemm, gemm_fallback, matmul};
use dl_core::pool::{
    avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward, max_pool2d,
    max_pool2d_backward, Pool2dGeometry, Pool2dParams,
};
use dl_core::{Rng, Scalar, Shape, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn random_vec<T: Scalar>(len: usize, rng: &mut Rng) -> Vec<T> {
    (0..len).map(|_| rng.uniform(-T::ONE, T::ONE)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ---------------------------------------------------------------------------------
// gemm
// ---------------------------------------------------------------------------------

/// C = alpha op(A) op(B) + beta C by the definition, accumulated in f64.
#[allow(clippy::too_many_arguments)]
fn naive_gemm<T: Scalar>(
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    b: &[T],
    beta: T,
    c: &[T],
) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                let aip = if ta { a[p * m + i] } else { a[i * k + p] };
                let bpj = if tb { b[j * k + p] } else { b[p * n + j] };
                s += aip.to_f64_lossless() * bpj.to_f64_lossless();
            }
            let old = if beta == T::ZERO {
                0.0
            } else {
                beta.to_f64_lossless() * c[i * n + j].to_f64_lossless()
            };
            out[i * n + j] = alpha.to_f64_lossless() * s + old;
        }
    }
    out
}

type GemmFn<T> =
    fn(bool, bool, usize, usize, usize, T, &[T], &[T], T, &mut [T]) -> dl_core::Result<()>;

/// Runs `f` on random data and compares with [`naive_gemm`]; with `beta == 0` C starts
/// as NaN, which must not survive.
#[allow(clippy::too_many_arguments)]
fn check_gemm<T: Scalar>(
    f: GemmFn<T>,
    ta: bool,
    tb: bool,
    m: usize,
    n: usize,
    k: usize,
    alpha: f64,
    beta: f64,
    seed: u64,
    tol: f64,
) {
    let mut rng = Rng::seed_from_u64(seed);
    let a = random_vec::<T>(m * k, &mut rng);
    let b = random_vec::<T>(k * n, &mut rng);
    let mut c = if beta == 0.0 {
        vec![T::nan(); m * n]
    } else {
        random_vec::<T>(m * n, &mut rng)
    };
    let (alpha, beta) = (T::from_f64_lossy(alpha), T::from_f64_lossy(beta));
    let want = naive_gemm(ta, tb, m, n, k, alpha, &a, &b, beta, &c);
    f(ta, tb, m, n, k, alpha, &a, &b, beta, &mut c).unwrap();
    for (idx, (&got, &w)) in c.iter().zip(&want).enumerate() {
        let got = got.to_f64_lossless();
        assert!(
            (got - w).abs() <= tol * (k as f64 + 1.0),
            "{} ta={ta} tb={tb} m={m} n={n} k={k}: c[{idx}] = {got}, want {w}",
            T::NAME
        );
    }
}

/// Sizes that are mostly tiny (0 and 1 included) and sometimes cross the fallback's
/// block sizes (32 and 64).
fn gemm_dim() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..=3, 2 => 4usize..=17, 1 => 30usize..=70]
}

fn scale() -> impl Strategy<Value = f64> {
    prop::sample::select(vec![0.0, 1.0, -0.5, 2.5])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn gemm_matches_naive_loop(
        m in gemm_dim(), n in gemm_dim(), k in gemm_dim(),
        ta in any::<bool>(), tb in any::<bool>(),
        alpha in scale(), beta in scale(), seed in any::<u64>(),
    ) {
        check_gemm::<f32>(gemm, ta, tb, m, n, k, alpha, beta, seed, 1e-5);
        check_gemm::<f64>(gemm, ta, tb, m, n, k, alpha, beta, seed, 1e-13);
        check_gemm::<f32>(gemm_fallback, ta, tb, m, n, k, alpha, beta, seed, 1e-5);
        check_gemm::<f64>(gemm_fallback, ta, tb, m, n, k, alpha, beta, seed, 1e-13);
    }
}

#[test]
fn gemm_fallback_crosses_every_block_boundary() {
    // 300 > NC = 256 columns and 70 > KC = 64 depth, in all four transpose modes.
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        check_gemm::<f64>(gemm_fallback, ta, tb, 5, 300, 70, 1.5, 0.5, 7, 1e-13);
    }
}

#[test]
fn matmul_fixture_and_tensor_forms() {
    // [1 2 3; 4 5 6] [7 8; 9 10; 11 12] = [58 64; 139 154]
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0];
    let mut c = [0.0f32; 4];
    matmul(&a, &b, &mut c, 2, 3, 2).unwrap();
    assert_eq!(c, [58.0, 64.0, 139.0, 154.0]);

    let ta = Tensor::from_slice(&a, &[2, 3]).unwrap();
    let tb = Tensor::from_slice(&b, &[3, 2]).unwrap();
    assert_eq!(ta.matmul(&tb).unwrap().data(), &c);

    // Batched: batch 0 is the product above, batch 1 is 2 * I times B's top rows.
    let a3 = Tensor::from_vec(
        vec![
            1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 2.0, 0.0, 0.0, 0.0, 2.0, 0.0,
        ],
        &[2, 2, 3],
    )
    .unwrap();
    let b3 = Tensor::from_vec([b, b].concat(), &[2, 3, 2]).unwrap();
    let c3 = a3.matmul(&b3).unwrap();
    assert_eq!(c3.dims(), &[2, 2, 2]);
    assert_eq!(
        c3.data(),
        &[58.0, 64.0, 139.0, 154.0, 14.0, 16.0, 18.0, 20.0]
    );
    // [b, m, k] x [k, n]: the same B for every batch entry.
    let c32 = a3.matmul(&tb).unwrap();
    assert_eq!(c32.dims(), &[2, 2, 2]);
    assert_eq!(c32.data(), c3.data());
}

#[test]
fn batched_gemm_matches_per_matrix_gemm() {
    let mut rng = Rng::seed_from_u64(3);
    let (batch, m, n, k) = (3, 4, 5, 6);
    let a = random_vec::<f64>(batch * m * k, &mut rng);
    let b = random_vec::<f64>(batch * k * n, &mut rng);
    let mut c = vec![f64::NAN; batch * m * n];
    batched_gemm(batch, true, false, m, n, k, 2.0, &a, &b, 0.0, &mut c).unwrap();
    for i in 0..batch {
        let want = naive_gemm(
            true,
            false,
            m,
            n,
            k,
            2.0,
            &a[i * m * k..(i + 1) * m * k],
            &b[i * k * n..(i + 1) * k * n],
            0.0,
            &[],
        );
        for (g, w) in c[i * m * n..(i + 1) * m * n].iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
    }
}

#[test]
fn gemm_errors_name_op_and_sizes() {
    let mut c = [0.0f32; 4];
    let e = gemm(
        false, false, 2, 2, 3, 1.0, &[0.0; 5], &[0.0; 6], 0.0, &mut c,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "gemm: a has 5 elements, expected 6");
    let e = gemm(false, true, 2, 2, 3, 1.0, &[0.0; 6], &[0.0; 5], 0.0, &mut c).unwrap_err();
    assert_eq!(e.to_string(), "gemm: b has 5 elements, expected 6");
    let e =
        gemm_fallback(true, false, 2, 3, 2, 1.0, &[0.0; 4], &[0.0; 6], 0.0, &mut c).unwrap_err();
    assert_eq!(e.to_string(), "gemm: c has 4 elements, expected 6");
    let e = matmul(&[0.0f64; 6], &[0.0; 6], &mut [0.0; 3], 2, 3, 2).unwrap_err();
    assert_eq!(e.to_string(), "gemm: c has 3 elements, expected 4");
    let e = batched_gemm(
        2,
        false,
        false,
        1,
        1,
        1,
        1.0,
        &[0.0f32; 2],
        &[0.0; 1],
        0.0,
        &mut [0.0; 2],
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "batched_gemm: b has 1 elements, expected 2");
    let e = gemm(
        false,
        false,
        usize::MAX,
        2,
        2,
        1.0f32,
        &[],
        &[],
        0.0,
        &mut [],
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "gemm: size computation overflows usize");
}

#[test]
fn tensor_matmul_errors_name_both_shapes() {
    let t = |d: &[usize]| Tensor::<f32>::zeros(d).unwrap();
    let msg = |a: &[usize], b: &[usize]| t(a).matmul(&t(b)).unwrap_err().to_string();
    assert_eq!(
        msg(&[2, 3], &[4, 5]),
        "matmul: shapes [2, 3] and [4, 5] are incompatible (inner dimensions must agree)"
    );
    assert_eq!(
        msg(&[2, 2, 3], &[3, 3, 4]),
        "matmul: shapes [2, 2, 3] and [3, 3, 4] are incompatible (batch dimensions must agree)"
    );
    assert_eq!(
        msg(&[3], &[3, 4]),
        "matmul: shapes [3] and [3, 4] are incompatible \
         (matmul takes 2-D x 2-D, 3-D x 3-D or 3-D x 2-D operands)"
    );
    assert!(msg(&[2, 3], &[2, 3, 4]).contains("matmul takes"));
}

// ---------------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------------

/// Direct convolution by the definition (the 7 loops), padding read as zero. With
/// groups, output channel `o` of group `k = o / (c_out / groups)` sums over the
/// group's `c_in / groups` input channels, `k * c_in / groups + c`.
fn direct_conv(g: &Conv2dGeometry, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    let (sh, sw) = g.params.stride;
    let (ph, pw) = g.params.padding;
    let (dh, dw) = g.params.dilation;
    let (cig, cog) = (g.c_in / g.params.groups, g.c_out / g.params.groups);
    let mut y = vec![0.0; g.output_shape().numel()];
    for b in 0..g.n {
        for o in 0..g.c_out {
            for i in 0..g.out_h {
                for j in 0..g.out_w {
                    let mut s = bias.map_or(0.0, |bv| bv[o]);
                    for c in 0..cig {
                        for u in 0..g.kh {
                            for v in 0..g.kw {
                                let iy = (i * sh + u * dh) as isize - ph as isize;
                                let ix = (j * sw + v * dw) as isize - pw as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let ch = (o / cog) * cig + c;
                                let xi =
                                    ((b * g.c_in + ch) * g.h + iy as usize) * g.w + ix as usize;
                                let wi = ((o * cig + c) * g.kh + u) * g.kw + v;
                                s += x[xi] * w[wi];
                            }
                        }
                    }
                    y[((b * g.c_out + o) * g.out_h + i) * g.out_w + j] = s;
                }
            }
        }
    }
    y
}

#[derive(Debug, Clone)]
struct ConvCase {
    input: [usize; 4],
    weight: [usize; 4],
    params: Conv2dParams,
    with_bias: bool,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=3, 1usize..=3, 1usize..=9, 1usize..=9),
        (1usize..=3, 1usize..=4, 1usize..=4),
        (
            (1usize..=3, 1usize..=3),
            (0usize..=2, 0usize..=2),
            (1usize..=2, 1usize..=2),
        ),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |((n, c_in, h, w), (c_out, kh, kw), (s, p, d), with_bias, seed)| ConvCase {
                input: [n, c_in, h, w],
                weight: [c_out, c_in, kh, kw],
                params: Conv2dParams {
                    stride: s,
                    padding: p,
                    dilation: d,
                    groups: 1,
                },
                with_bias,
                seed,
            },
        )
}

/// Grouped convolutions: 2 to 4 groups of 1 to 3 input and output channels each,
/// depthwise ones (one input channel per group, `c_out = m * c_in`) included, half
/// of them in the geometry of the direct kernels (stride 1, dilation 1, padding
/// below the kernel size).
fn grouped_conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (1usize..=3, 2usize..=4, 1usize..=3, 1usize..=3),
        (1usize..=7, 1usize..=7, 1usize..=3, 1usize..=3),
        (
            (1usize..=2, 1usize..=2),
            (0usize..=2, 0usize..=2),
            (1usize..=2, 1usize..=2),
        ),
        (any::<bool>(), any::<bool>()),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (n, groups, cig, cog),
                (h, w, kh, kw),
                (s, p, d),
                (depthwise, direct),
                with_bias,
                seed,
            )| {
                let cig = if depthwise { 1 } else { cig };
                let (s, p, d) = if direct {
                    ((1, 1), (p.0 % kh, p.1 % kw), (1, 1))
                } else {
                    (s, p, d)
                };
                ConvCase {
                    input: [n, groups * cig, h, w],
                    weight: [groups * cog, cig, kh, kw],
                    params: Conv2dParams {
                        stride: s,
                        padding: p,
                        dilation: d,
                        groups,
                    },
                    with_bias,
                    seed,
                }
            },
        )
}

/// Output length by the formula, in signed arithmetic (non-positive = no output).
fn expected_out_len(size: usize, k: usize, s: usize, p: usize, d: usize) -> isize {
    (size as isize + 2 * p as isize - d as isize * (k as isize - 1) - 1).div_euclid(s as isize) + 1
}

struct ConvData {
    g: Conv2dGeometry,
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    gy: Vec<f64>,
}

/// The geometry (or `None` when the case has no output, which `new` must reject) and
/// random data for one case.
fn conv_data(case: &ConvCase) -> Option<ConvData> {
    let [_, _, h, w] = case.input;
    let [_, _, kh, kw] = case.weight;
    let p = case.params;
    let oh = expected_out_len(h, kh, p.stride.0, p.padding.0, p.dilation.0);
    let ow = expected_out_len(w, kw, p.stride.1, p.padding.1, p.dilation.1);
    let g = Conv2dGeometry::new(Shape::from(case.input), Shape::from(case.weight), p);
    if oh <= 0 || ow <= 0 {
        let e = g.unwrap_err().to_string();
        assert!(e.starts_with("conv2d: shapes"), "{e}");
        return None;
    }
    let g = g.unwrap();
    assert_eq!((g.out_h as isize, g.out_w as isize), (oh, ow));
    let mut rng = Rng::seed_from_u64(case.seed);
    Some(ConvData {
        x: random_vec(g.input_shape().numel(), &mut rng),
        w: random_vec(g.weight_shape().numel(), &mut rng),
        b: random_vec(g.c_out, &mut rng),
        gy: random_vec(g.output_shape().numel(), &mut rng),
        g,
    })
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}] = {g}, want {w}"
        );
    }
}

/// `conv2d`, `conv2d_direct` against the definition; `conv2d_par` and
/// `Tensor::conv2d` give the very same bits as `conv2d`.
fn check_forward_matches_direct_loops(case: &ConvCase) -> Result<(), TestCaseError> {
    let Some(ConvData { g, x, w, b, .. }) = conv_data(case) else {
        return Ok(());
    };
    let bias = case.with_bias.then_some(&b[..]);
    let want = direct_conv(&g, &x, &w, bias);
    let mut y = vec![f64::NAN; want.len()];
    let mut ws = vec![f64::NAN; g.workspace_len()];
    conv2d(&g, &x, &w, bias, &mut y, &mut ws).unwrap();
    assert_close(&y, &want, 1e-12, "conv2d");
    let mut y_direct = vec![f64::NAN; want.len()];
    let mut ws = vec![f64::NAN; g.direct_workspace_len()];
    conv2d_direct(&g, &x, &w, bias, &mut y_direct, &mut ws).unwrap();
    assert_close(&y_direct, &want, 1e-12, "conv2d_direct");
    // The parallel path and the Tensor method give the very same bits.
    let mut y_par = vec![f64::NAN; want.len()];
    conv2d_par(&g, &x, &w, bias, &mut y_par).unwrap();
    prop_assert_eq!(&y_par, &y);
    let xt = Tensor::from_shape_vec(g.input_shape(), x.clone()).unwrap();
    let wt = Tensor::from_shape_vec(g.weight_shape(), w.clone()).unwrap();
    let bt = Tensor::from_slice(&b, &[g.c_out]).unwrap();
    let yt = xt
        .conv2d(&wt, case.with_bias.then_some(&bt), case.params)
        .unwrap();
    prop_assert_eq!(yt.shape(), &g.output_shape());
    prop_assert_eq!(yt.data(), &y[..]);
    Ok(())
}

/// The backward passes are the adjoints of the (bilinear) forward map:
/// `<conv(x, w), gy> = <x, dX(gy, w)> = <w, dW(x, gy)>`, and `dbias = sum gy`; the
/// parallel twins give the same bits, the direct kernels the same values.
fn check_backward_is_the_adjoint(case: &ConvCase) -> Result<(), TestCaseError> {
    let Some(ConvData { g, x, w, gy, .. }) = conv_data(case) else {
        return Ok(());
    };
    let y = direct_conv(&g, &x, &w, None);
    let mut ws = vec![f64::NAN; g.workspace_len()];
    let mut gx = vec![f64::NAN; x.len()];
    conv2d_backward_input(&g, &gy, &w, &mut gx, &mut ws).unwrap();
    let mut gw = vec![f64::NAN; w.len()];
    let mut gb = vec![f64::NAN; g.c_out];
    conv2d_backward_weight(&g, &x, &gy, &mut gw, Some(&mut gb), &mut ws).unwrap();
    let lhs = dot(&y, &gy);
    prop_assert!((lhs - dot(&x, &gx)).abs() <= 1e-10 * (1.0 + lhs.abs()));
    prop_assert!((lhs - dot(&w, &gw)).abs() <= 1e-10 * (1.0 + lhs.abs()));
    let plane = g.out_h * g.out_w;
    for o in 0..g.c_out {
        let s: f64 = (0..g.n)
            .map(|b| gy[(b * g.c_out + o) * plane..][..plane].iter().sum::<f64>())
            .sum();
        prop_assert!((gb[o] - s).abs() < 1e-12);
    }
    // Parallel twins: bit-identical.
    let mut gx_par = vec![f64::NAN; x.len()];
    conv2d_backward_input_par(&g, &gy, &w, &mut gx_par).unwrap();
    prop_assert_eq!(&gx_par, &gx);
    let mut gw_par = vec![f64::NAN; w.len()];
    let mut gb_par = vec![f64::NAN; g.c_out];
    conv2d_backward_weight_par(&g, &x, &gy, &mut gw_par, Some(&mut gb_par)).unwrap();
    prop_assert_eq!(&gw_par, &gw);
    prop_assert_eq!(&gb_par, &gb);
    // Direct kernels: the same values up to rounding.
    let mut ws = vec![f64::NAN; g.direct_workspace_len()];
    let mut gx_direct = vec![f64::NAN; x.len()];
    conv2d_backward_input_direct(&g, &gy, &w, &mut gx_direct, &mut ws).unwrap();
    assert_close(&gx_direct, &gx, 1e-12, "conv2d_backward_input_direct");
    let mut gw_direct = vec![f64::NAN; w.len()];
    let mut gb_direct = vec![f64::NAN; g.c_out];
    conv2d_backward_weight_direct(&g, &x, &gy, &mut gw_direct, Some(&mut gb_direct), &mut ws)
        .unwrap();
    assert_close(&gw_direct, &gw, 1e-11, "conv2d_backward_weight_direct");
    assert_close(
        &gb_direct,
        &gb,
        1e-12,
        "conv2d_backward_weight_direct (bias)",
    );
    Ok(())
}

/// Central finite differences of `L = sum(gy * conv(x, w, b))` (f64, eps 1e-6)
/// against the analytic gradients, for every weight and bias entry and up to 24
/// input entries.
fn check_gradients_match_finite_differences(case: &ConvCase) -> Result<(), TestCaseError> {
    let Some(ConvData { g, x, w, b, gy }) = conv_data(case) else {
        return Ok(());
    };
    let loss = |x: &[f64], w: &[f64], b: &[f64]| dot(&direct_conv(&g, x, w, Some(b)), &gy);
    let eps = 1e-6;
    let mut ws = vec![0.0; g.workspace_len()];
    let mut gx = vec![0.0; x.len()];
    conv2d_backward_input(&g, &gy, &w, &mut gx, &mut ws).unwrap();
    let mut gw = vec![0.0; w.len()];
    let mut gb = vec![0.0; b.len()];
    conv2d_backward_weight(&g, &x, &gy, &mut gw, Some(&mut gb), &mut ws).unwrap();
    let check = |analytic: f64, plus: f64, minus: f64, what: &str| {
        let fd = (plus - minus) / (2.0 * eps);
        assert!(
            (analytic - fd).abs() <= 1e-5 + 1e-3 * fd.abs(),
            "{what}: {analytic} vs {fd}"
        );
    };
    for i in 0..w.len() {
        let (mut wp, mut wm) = (w.clone(), w.clone());
        wp[i] += eps;
        wm[i] -= eps;
        check(gw[i], loss(&x, &wp, &b), loss(&x, &wm, &b), "dW");
    }
    for i in 0..b.len() {
        let (mut bp, mut bm) = (b.clone(), b.clone());
        bp[i] += eps;
        bm[i] -= eps;
        check(gb[i], loss(&x, &w, &bp), loss(&x, &w, &bm), "dbias");
    }
    let step = x.len().div_ceil(24);
    for i in (0..x.len()).step_by(step) {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[i] += eps;
        xm[i] -= eps;
        check(gx[i], loss(&xp, &w, &b), loss(&xm, &w, &b), "dX");
    }
    Ok(())
}

/// The per-group blocks of a grouped case: group `k`'s input channels of every
/// image, its weight rows, bias entries and output channels of every image.
struct Groups {
    groups: usize,
    /// The one-group geometry of a single group.
    sub: Conv2dGeometry,
}

impl Groups {
    fn of(g: &Conv2dGeometry) -> Self {
        let groups = g.params.groups;
        let [n, c_in, h, w] = [g.n, g.c_in / groups, g.h, g.w];
        let weight = [g.c_out / groups, c_in, g.kh, g.kw];
        let params = Conv2dParams {
            groups: 1,
            ..g.params
        };
        let sub = Conv2dGeometry::new(Shape::from([n, c_in, h, w]), Shape::from(weight), params);
        Groups {
            groups,
            sub: sub.unwrap(),
        }
    }

    /// Group `k`'s part of a batch whose images hold `per_image` elements per group.
    fn take(&self, v: &[f64], k: usize, per_image: usize) -> Vec<f64> {
        let images = v.chunks_exact(per_image * self.groups);
        images
            .flat_map(|im| im[k * per_image..][..per_image].to_vec())
            .collect()
    }

    /// Writes group `k`'s part back (the inverse of [`Groups::take`]).
    fn put(&self, v: &mut [f64], k: usize, per_image: usize, part: &[f64]) {
        let images = v.chunks_exact_mut(per_image * self.groups);
        for (im, src) in images.zip(part.chunks_exact(per_image)) {
            im[k * per_image..][..per_image].copy_from_slice(src);
        }
    }
}

/// A grouped convolution is its groups run apart as one-group convolutions, bit
/// for bit, in every kernel (serial, parallel and direct; forward and backward):
/// the grouped kernels do each group's arithmetic exactly as the dense ones do.
fn check_groups_run_apart(case: &ConvCase) -> Result<(), TestCaseError> {
    let Some(ConvData { g, x, w, b, gy }) = conv_data(case) else {
        return Ok(());
    };
    let parts = Groups::of(&g);
    let sub = parts.sub;
    let (xi, yi) = (sub.c_in * g.h * g.w, sub.c_out * g.out_h * g.out_w);
    let wi = w.len() / parts.groups;
    type Forward = fn(&Conv2dGeometry, &[f64], &[f64], Option<&[f64]>, &mut [f64]);
    type Input = fn(&Conv2dGeometry, &[f64], &[f64], &mut [f64]);
    type Weight = fn(&Conv2dGeometry, &[f64], &[f64], &mut [f64], &mut [f64]);
    let kernels: [(&str, Forward, Input, Weight); 3] = [
        (
            "serial",
            |g, x, w, b, y| conv2d(g, x, w, b, y, &mut vec![0.0; g.workspace_len()]).unwrap(),
            |g, gy, w, gx| {
                conv2d_backward_input(g, gy, w, gx, &mut vec![0.0; g.workspace_len()]).unwrap()
            },
            |g, x, gy, gw, gb| {
                let ws = &mut vec![0.0; g.workspace_len()];
                conv2d_backward_weight(g, x, gy, gw, Some(gb), ws).unwrap()
            },
        ),
        (
            "par",
            |g, x, w, b, y| conv2d_par(g, x, w, b, y).unwrap(),
            |g, gy, w, gx| conv2d_backward_input_par(g, gy, w, gx).unwrap(),
            |g, x, gy, gw, gb| conv2d_backward_weight_par(g, x, gy, gw, Some(gb)).unwrap(),
        ),
        (
            "direct",
            |g, x, w, b, y| {
                let ws = &mut vec![0.0; g.direct_workspace_len()];
                conv2d_direct(g, x, w, b, y, ws).unwrap()
            },
            |g, gy, w, gx| {
                let ws = &mut vec![0.0; g.direct_workspace_len()];
                conv2d_backward_input_direct(g, gy, w, gx, ws).unwrap()
            },
            |g, x, gy, gw, gb| {
                let ws = &mut vec![0.0; g.direct_workspace_len()];
                conv2d_backward_weight_direct(g, x, gy, gw, Some(gb), ws).unwrap()
            },
        ),
    ];
    for (name, forward, input, weight) in kernels {
        let bias = case.with_bias.then_some(&b[..]);
        let mut y = vec![f64::NAN; gy.len()];
        forward(&g, &x, &w, bias, &mut y);
        let mut gx = vec![f64::NAN; x.len()];
        input(&g, &gy, &w, &mut gx);
        let (mut gw, mut gb) = (vec![f64::NAN; w.len()], vec![f64::NAN; g.c_out]);
        weight(&g, &x, &gy, &mut gw, &mut gb);
        let (mut y_apart, mut gx_apart) = (vec![f64::NAN; y.len()], vec![f64::NAN; x.len()]);
        let (mut gw_apart, mut gb_apart) = (vec![f64::NAN; w.len()], vec![f64::NAN; g.c_out]);
        for k in 0..parts.groups {
            let (xk, gyk) = (parts.take(&x, k, xi), parts.take(&gy, k, yi));
            let wk = &w[k * wi..][..wi];
            let bk = bias.map(|b| &b[k * sub.c_out..][..sub.c_out]);
            let mut yk = vec![f64::NAN; gyk.len()];
            forward(&sub, &xk, wk, bk, &mut yk);
            parts.put(&mut y_apart, k, yi, &yk);
            let mut gxk = vec![f64::NAN; xk.len()];
            input(&sub, &gyk, wk, &mut gxk);
            parts.put(&mut gx_apart, k, xi, &gxk);
            let gbk = &mut gb_apart[k * sub.c_out..][..sub.c_out];
            weight(&sub, &xk, &gyk, &mut gw_apart[k * wi..][..wi], gbk);
        }
        prop_assert_eq!(&y, &y_apart, "{} forward", name);
        prop_assert_eq!(&gx, &gx_apart, "{} input gradient", name);
        prop_assert_eq!(&gw, &gw_apart, "{} weight gradient", name);
        prop_assert_eq!(&gb, &gb_apart, "{} bias gradient", name);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn conv2d_matches_direct_loops(case in conv_case()) {
        check_forward_matches_direct_loops(&case)?;
    }

    #[test]
    fn conv2d_backward_is_the_adjoint(case in conv_case()) {
        check_backward_is_the_adjoint(&case)?;
    }

    #[test]
    fn grouped_conv2d_matches_direct_loops(case in grouped_conv_case()) {
        check_forward_matches_direct_loops(&case)?;
    }

    #[test]
    fn grouped_conv2d_backward_is_the_adjoint(case in grouped_conv_case()) {
        check_backward_is_the_adjoint(&case)?;
    }

    #[test]
    fn grouped_conv2d_is_its_groups_run_apart(case in grouped_conv_case()) {
        check_groups_run_apart(&case)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conv2d_gradients_match_finite_differences(case in conv_case()) {
        check_gradients_match_finite_differences(&case)?;
    }

    #[test]
    fn grouped_conv2d_gradients_match_finite_differences(case in grouped_conv_case()) {
        check_gradients_match_finite_differences(&case)?;
    }
}

/// The discrete Laplacian `[0 1 0; 1 -4 1; 0 1 0]` as a 1x1x3x3 weight.
fn laplacian() -> Tensor<f32> {
    Tensor::from_vec(
        vec![0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0],
        &[1, 1, 3, 3],
    )
    .unwrap()
}

#[test]
fn laplacian_is_zero_on_a_constant_image() {
    let x = Tensor::<f32>::full(&[1, 1, 5, 5], 3.0).unwrap();
    let y = x
        .conv2d(&laplacian(), None, Conv2dParams::default())
        .unwrap();
    assert_eq!(y.dims(), &[1, 1, 3, 3]);
    assert_eq!(y.data(), &[0.0; 9]);
}

#[test]
fn laplacian_responds_to_a_vertical_edge() {
    // Columns 0-1 are 0, columns 2-4 are 1. Rows are equal, so at a centre pixel the
    // response is left + right - 2 * centre: 0 + 1 - 0 = 1 just left of the edge,
    // 0 + 1 - 2 = -1 just right of it, and 0 inside the flat region.
    let x = Tensor::from_fn(&[1, 1, 5, 5], |i| if i % 5 >= 2 { 1.0f32 } else { 0.0 }).unwrap();
    let y = x
        .conv2d(&laplacian(), None, Conv2dParams::default())
        .unwrap();
    assert_eq!(y.data(), &[1.0, -1.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0, 0.0]);
    // With padding 1 the border sees zeros outside: top-left pixel (0) has
    // right + down = 0 + 0 = 0; top-right pixel (1) has left 1 + down 1 - 4 = -2.
    let yp = x
        .conv2d(
            &laplacian(),
            None,
            Conv2dParams::default().with_padding(1, 1),
        )
        .unwrap();
    assert_eq!(yp.dims(), &[1, 1, 5, 5]);
    assert_eq!(yp.get(&[0, 0, 0, 0]).unwrap(), 0.0);
    assert_eq!(yp.get(&[0, 0, 0, 4]).unwrap(), -2.0);
    assert_eq!(yp.get(&[0, 0, 2, 1]).unwrap(), 1.0);
    assert_eq!(yp.get(&[0, 0, 2, 2]).unwrap(), -1.0);
}

#[test]
fn im2col_fixture_and_col2im_counts_overlaps() {
    // 1x3x3 image, 2x2 kernel, stride 1: X_col rows are the four taps.
    let g = Conv2dGeometry::new(
        Shape::from([1, 1, 3, 3]),
        Shape::from([1, 1, 2, 2]),
        Conv2dParams::default(),
    )
    .unwrap();
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut col = vec![0.0f32; 16];
    im2col(&g, &x, &mut col).unwrap();
    assert_eq!(
        col,
        [1.0, 2.0, 4.0, 5.0, 2.0, 3.0, 5.0, 6.0, 4.0, 5.0, 7.0, 8.0, 5.0, 6.0, 8.0, 9.0]
    );
    // col2im of all ones counts how many windows cover each pixel.
    let mut img = vec![f32::NAN; 9];
    col2im(&g, &[1.0; 16], &mut img).unwrap();
    assert_eq!(img, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
}

#[test]
fn pointwise_conv_needs_no_workspace() {
    let g = Conv2dGeometry::new(
        Shape::from([2, 3, 2, 2]),
        Shape::from([2, 3, 1, 1]),
        Conv2dParams::default(),
    )
    .unwrap();
    assert!(g.is_pointwise());
    assert_eq!(g.workspace_len(), 0);
    let x: Vec<f64> = (0..24).map(|v| v as f64).collect();
    let w = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let mut y = vec![0.0; 16];
    conv2d(&g, &x, &w, None, &mut y, &mut []).unwrap();
    assert_eq!(y, direct_conv(&g, &x, &w, None));
    // Output channel 0 copies input channel 0 of image 0: 0 1 2 3.
    assert_eq!(&y[..4], &[0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn conv_params_validate_names_the_parameter() {
    assert!(Conv2dParams::default().validate().is_ok());
    assert_eq!(
        Conv2dParams::default()
            .with_stride(1, 0)
            .validate()
            .unwrap_err()
            .to_string(),
        "Conv2dParams: invalid stride = 0, valid range: >= 1"
    );
    assert_eq!(
        Conv2dParams::default()
            .with_dilation(0, 1)
            .validate()
            .unwrap_err()
            .to_string(),
        "Conv2dParams: invalid dilation = 0, valid range: >= 1"
    );
    assert_eq!(
        Conv2dParams::default()
            .with_groups(0)
            .validate()
            .unwrap_err()
            .to_string(),
        "Conv2dParams: invalid groups = 0, valid range: >= 1"
    );
}

#[test]
fn conv_geometry_errors_name_op_and_shapes() {
    let p = Conv2dParams::default();
    let err = |i: &[usize], w: &[usize], p: Conv2dParams| {
        Conv2dGeometry::new(Shape::new(i).unwrap(), Shape::new(w).unwrap(), p)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err(&[1, 3, 8], &[4, 3, 3, 3], p),
        "conv2d: expected rank 4 (NCHW input), got shape [1, 3, 8]"
    );
    assert_eq!(
        err(&[1, 3, 8, 8], &[4, 3, 3], p),
        "conv2d: expected rank 4 ([c_out, c_in, kh, kw] weight), got shape [4, 3, 3]"
    );
    assert_eq!(
        err(&[1, 3, 8, 8], &[4, 2, 3, 3], p),
        "conv2d: shapes [1, 3, 8, 8] and [4, 2, 3, 3] are incompatible \
         (input channels (dim 1) must equal weight dim 1)"
    );
    assert_eq!(
        err(&[1, 3, 2, 8], &[4, 3, 3, 3], p),
        "conv2d: shapes [1, 3, 2, 8] and [4, 3, 3, 3] are incompatible \
         (the dilated kernel is larger than the padded input: empty output)"
    );
    // Padding rescues the same shapes; dilation 2 makes the kernel span 5 again.
    assert!(Conv2dGeometry::new(
        Shape::from([1, 3, 2, 8]),
        Shape::from([4, 3, 3, 3]),
        p.with_padding(1, 0)
    )
    .is_ok());
    assert!(err(&[1, 3, 4, 8], &[4, 3, 3, 3], p.with_dilation(2, 1)).contains("empty output"));
    assert!(err(&[1, 3, 4, 8], &[0, 3, 3, 3], p).contains("weight dimensions must be non-zero"));
    assert!(err(&[1, 3, 0, 8], &[1, 3, 1, 1], p).contains("height and width must be non-zero"));
    assert_eq!(
        err(&[1, 3, 8, 8], &[4, 3, 3, 3], p.with_stride(0, 1)),
        "Conv2dParams: invalid stride = 0, valid range: >= 1"
    );
}

#[test]
fn grouped_conv_geometry_errors_name_op_and_shapes() {
    let err = |i: &[usize], w: &[usize], groups: usize| {
        let p = Conv2dParams::default().with_groups(groups);
        Conv2dGeometry::new(Shape::new(i).unwrap(), Shape::new(w).unwrap(), p)
            .unwrap_err()
            .to_string()
    };
    // 6 input channels in 2 groups: weight dim 1 must be 3.
    assert_eq!(
        err(&[1, 6, 8, 8], &[4, 6, 3, 3], 2),
        "conv2d: shapes [1, 6, 8, 8] and [4, 6, 3, 3] are incompatible \
         (input channels (dim 1) must equal weight dim 1 times groups)"
    );
    // 3 input channels do not split into 2 groups.
    assert!(err(&[1, 3, 8, 8], &[4, 1, 3, 3], 2).contains("weight dim 1 times groups"));
    // 5 output channels do not split into 2 groups.
    assert_eq!(
        err(&[1, 6, 8, 8], &[5, 3, 3, 3], 2),
        "conv2d: shapes [1, 6, 8, 8] and [5, 3, 3, 3] are incompatible \
         (output channels (weight dim 0) must be a multiple of groups)"
    );
    assert_eq!(
        err(&[1, 6, 8, 8], &[6, 3, 3, 3], 0),
        "Conv2dParams: invalid groups = 0, valid range: >= 1"
    );
    // Depthwise with multiplier 2: weight [2 * c_in, 1, kh, kw], as PyTorch.
    let g = Conv2dGeometry::new(
        Shape::from([2, 3, 8, 8]),
        Shape::from([6, 1, 3, 3]),
        Conv2dParams::default().with_groups(3),
    )
    .unwrap();
    assert_eq!(g.weight_shape().dims(), &[6, 1, 3, 3]);
    assert_eq!(g.output_shape().dims(), &[2, 6, 6, 6]);
    assert_eq!((g.col_rows(), g.group_col_rows()), (27, 9));
}

#[test]
fn conv_kernel_errors_name_op_and_buffer() {
    let g = Conv2dGeometry::new(
        Shape::from([2, 3, 5, 5]),
        Shape::from([4, 3, 3, 3]),
        Conv2dParams::default(),
    )
    .unwrap();
    let x = vec![0.0f32; 150];
    let w = vec![0.0f32; 108];
    let mut y = vec![0.0f32; 72];
    let mut ws = vec![0.0f32; g.workspace_len()];
    let msg = |r: dl_core::Result<()>| r.unwrap_err().to_string();
    assert_eq!(
        msg(conv2d(&g, &x[1..], &w, None, &mut y, &mut ws)),
        "conv2d: input has 149 elements, expected 150"
    );
    assert_eq!(
        msg(conv2d(&g, &x, &w[1..], None, &mut y, &mut ws)),
        "conv2d: weight has 107 elements, expected 108"
    );
    assert_eq!(
        msg(conv2d(&g, &x, &w, Some(&[0.0; 3]), &mut y, &mut ws)),
        "conv2d: bias has 3 elements, expected 4"
    );
    assert_eq!(
        msg(conv2d(&g, &x, &w, None, &mut y[1..], &mut ws)),
        "conv2d: output has 71 elements, expected 72"
    );
    assert_eq!(
        msg(conv2d(&g, &x, &w, None, &mut y, &mut ws[1..])),
        "conv2d: workspace (at least) has 242 elements, expected 243"
    );
    assert_eq!(
        msg(conv2d_par(&g, &x, &w, None, &mut y[1..])),
        "conv2d: output has 71 elements, expected 72"
    );

    let mut gx = vec![0.0f32; 150];
    assert_eq!(
        msg(conv2d_backward_input(&g, &y[1..], &w, &mut gx, &mut ws)),
        "conv2d: grad_out has 71 elements, expected 72"
    );
    assert_eq!(
        msg(conv2d_backward_input_par(&g, &y, &w, &mut gx[1..])),
        "conv2d: grad_input has 149 elements, expected 150"
    );
    let mut gw = vec![0.0f32; 108];
    assert_eq!(
        msg(conv2d_backward_weight(
            &g,
            &x,
            &y,
            &mut gw[1..],
            None,
            &mut ws
        )),
        "conv2d: grad_weight has 107 elements, expected 108"
    );
    assert_eq!(
        msg(conv2d_backward_weight_par(
            &g,
            &x,
            &y,
            &mut gw,
            Some(&mut [0.0; 5])
        )),
        "conv2d: grad_bias has 5 elements, expected 4"
    );
    let mut col = vec![0.0f32; 243];
    assert_eq!(
        msg(im2col(&g, &x[..74], &mut col)),
        "conv2d: image has 74 elements, expected 75"
    );
    assert_eq!(
        msg(col2im(&g, &col[1..], &mut gx[..75])),
        "conv2d: col has 242 elements, expected 243"
    );
}

#[test]
fn tensor_conv2d_checks_the_bias_shape() {
    let x = Tensor::<f32>::zeros(&[1, 2, 4, 4]).unwrap();
    let w = Tensor::<f32>::zeros(&[3, 2, 3, 3]).unwrap();
    let b = Tensor::<f32>::zeros(&[2]).unwrap();
    assert_eq!(
        x.conv2d(&w, Some(&b), Conv2dParams::default()).unwrap_err().to_string(),
        "conv2d: shapes [3, 2, 3, 3] and [2] are incompatible (bias must be [c_out], c_out = weight dim 0)"
    );
    let w5 = Tensor::<f32>::zeros(&[3, 5, 3, 3]).unwrap();
    assert_eq!(
        x.conv2d(&w5, None, Conv2dParams::default())
            .unwrap_err()
            .to_string(),
        "conv2d: shapes [1, 2, 4, 4] and [3, 5, 3, 3] are incompatible \
         (input channels (dim 1) must equal weight dim 1)"
    );
}

#[test]
fn empty_batch_is_fine() {
    let g = Conv2dGeometry::new(
        Shape::from([0, 2, 4, 4]),
        Shape::from([3, 2, 3, 3]),
        Conv2dParams::default(),
    )
    .unwrap();
    let mut gw = vec![f32::NAN; 54];
    let mut ws = vec![0.0f32; g.workspace_len()];
    conv2d(&g, &[], &[0.0; 54], None, &mut [], &mut ws).unwrap();
    conv2d_backward_weight(&g, &[], &[], &mut gw, None, &mut ws).unwrap();
    assert_eq!(gw, vec![0.0; 54]);
    gw.fill(f32::NAN);
    conv2d_backward_weight_par(&g, &[], &[], &mut gw, None).unwrap();
    assert_eq!(gw, vec![0.0; 54]);
}

#[test]
fn empty_batch_is_fine_with_groups() {
    // Depthwise, 2 channels, multiplier 2: weight [4, 1, 3, 3].
    let g = Conv2dGeometry::new(
        Shape::from([0, 2, 4, 4]),
        Shape::from([4, 1, 3, 3]),
        Conv2dParams::default().with_groups(2),
    )
    .unwrap();
    let mut gw = vec![f32::NAN; 36];
    let mut ws = vec![0.0f32; g.direct_workspace_len()];
    conv2d(&g, &[], &[0.0; 36], None, &mut [], &mut ws).unwrap();
    conv2d_direct(&g, &[], &[0.0; 36], None, &mut [], &mut ws).unwrap();
    conv2d_backward_weight(&g, &[], &[], &mut gw, None, &mut ws).unwrap();
    assert_eq!(gw, vec![0.0; 36]);
    gw.fill(f32::NAN);
    conv2d_backward_weight_par(&g, &[], &[], &mut gw, None).unwrap();
    assert_eq!(gw, vec![0.0; 36]);
    gw.fill(f32::NAN);
    conv2d_backward_weight_direct(&g, &[], &[], &mut gw, None, &mut ws).unwrap();
    assert_eq!(gw, vec![0.0; 36]);
}

/// The f32 direct kernels (AVX-512 intrinsics where the CPU has them, the
/// channels-in-lanes forward kernel for 16 channels per group) on grouped and
/// depthwise geometries, against the definition and the f64 im2col kernels.
#[test]
fn grouped_direct_kernels_f32_match_the_definition() {
    let wide = |v: &[f32]| v.iter().map(|&t| t as f64).collect::<Vec<_>>();
    let cases = [
        // 2 groups of 2 -> 16 channels.
        ([2, 4, 9, 11], [32, 2, 3, 3], 1, 2),
        // Depthwise 3x3 (MobileNet's), multiplier 1.
        ([3, 8, 10, 10], [8, 1, 3, 3], 1, 8),
        // Depthwise 5x5, multiplier 2.
        ([2, 6, 7, 7], [12, 1, 5, 5], 2, 6),
        // 2 groups of 3 -> 8, no padding.
        ([1, 6, 14, 14], [16, 3, 5, 5], 0, 2),
    ];
    let mut rng = Rng::seed_from_u64(17);
    for (input, weight, pad, groups) in cases {
        let params = Conv2dParams::default()
            .with_padding(pad, pad)
            .with_groups(groups);
        let g = Conv2dGeometry::new(Shape::from(input), Shape::from(weight), params).unwrap();
        assert!(g.is_direct());
        let x = random_vec::<f32>(g.input_shape().numel(), &mut rng);
        let w = random_vec::<f32>(g.weight_shape().numel(), &mut rng);
        let b = random_vec::<f32>(g.c_out, &mut rng);
        let gy = random_vec::<f32>(g.output_shape().numel(), &mut rng);
        let mut ws = vec![f32::NAN; g.direct_workspace_len()];
        let mut y = vec![f32::NAN; gy.len()];
        conv2d_direct(&g, &x, &w, Some(&b), &mut y, &mut ws).unwrap();
        let want = direct_conv(&g, &wide(&x), &wide(&w), Some(&wide(&b)));
        assert_close(&wide(&y), &want, 1e-5, "forward f32");

        let mut ws64 = vec![0.0; g.workspace_len()];
        let mut gx = vec![f32::NAN; x.len()];
        conv2d_backward_input_direct(&g, &gy, &w, &mut gx, &mut ws).unwrap();
        let mut gx64 = vec![f64::NAN; x.len()];
        conv2d_backward_input(&g, &wide(&gy), &wide(&w), &mut gx64, &mut ws64).unwrap();
        assert_close(&wide(&gx), &gx64, 1e-5, "input gradient f32");

        let (mut gw, mut gb) = (vec![f32::NAN; w.len()], vec![f32::NAN; g.c_out]);
        conv2d_backward_weight_direct(&g, &x, &gy, &mut gw, Some(&mut gb), &mut ws).unwrap();
        let (mut gw64, mut gb64) = (vec![f64::NAN; w.len()], vec![f64::NAN; g.c_out]);
        let (x64, gy64) = (wide(&x), wide(&gy));
        conv2d_backward_weight(&g, &x64, &gy64, &mut gw64, Some(&mut gb64), &mut ws64).unwrap();
        assert_close(&wide(&gw), &gw64, 1e-4, "weight gradient f32");
        assert_close(&wide(&gb), &gb64, 1e-4, "bias gradient f32");
    }
}

// ---------------------------------------------------------------------------------
// pooling
// ---------------------------------------------------------------------------------

#[test]
fn max_pool_fixture() {
    // 1 3 | 5 3
    // 4 2 | 3 1
    // ----+----
    // 3 1 | 1 3
    // 0 1 | 0 4
    let x = [
        1.0f32, 3.0, 5.0, 3.0, 4.0, 2.0, 3.0, 1.0, 3.0, 1.0, 1.0, 3.0, 0.0, 1.0, 0.0, 4.0,
    ];
    let (mut y, mut arg) = ([0.0f32; 4], [0usize; 4]);
    let shape = max_pool2d(
        Shape::from([1, 1, 4, 4]),
        &x,
        Pool2dParams::new(2, 2),
        &mut y,
        &mut arg,
    )
    .unwrap();
    assert_eq!(shape.dims(), &[1, 1, 2, 2]);
    assert_eq!(y, [4.0, 5.0, 3.0, 4.0]);
    assert_eq!(arg, [4, 2, 8, 15]);
    let mut gx = [f32::NAN; 16];
    max_pool2d_backward(&[1.0, 2.0, 3.0, 4.0], &arg, &mut gx).unwrap();
    let mut want = [0.0f32; 16];
    want[4] = 1.0;
    want[2] = 2.0;
    want[8] = 3.0;
    want[15] = 4.0;
    assert_eq!(gx, want);
    let t = Tensor::from_slice(&x, &[1, 1, 4, 4]).unwrap();
    assert_eq!(t.max_pool2d(Pool2dParams::new(2, 2)).unwrap().data(), &y);
}

#[test]
fn max_pool_backward_adds_over_overlapping_windows() {
    // 3x3 with its maximum in the centre; 2x2 windows with stride 1 all pick it.
    let x = [0.0f64, 1.0, 0.0, 1.0, 9.0, 1.0, 0.0, 1.0, 0.0];
    let p = Pool2dParams::new(2, 2).with_stride(1, 1);
    let (y, arg) = Tensor::from_slice(&x, &[1, 1, 3, 3])
        .unwrap()
        .max_pool2d_with_argmax(p)
        .unwrap();
    assert_eq!(y.data(), &[9.0; 4]);
    assert_eq!(arg, vec![4; 4]);
    let mut gx = [0.0f64; 9];
    max_pool2d_backward(&[1.0, 2.0, 3.0, 4.0], &arg, &mut gx).unwrap();
    assert_eq!(gx, [0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn pooling_with_padding_fixture() {
    // [1 2; 3 4], 3x3 window, stride 1, padding 1: every window covers all four
    // pixels. Max = 4 everywhere; average = 10 / 9 (padding counts in the divisor).
    let x = [1.0f64, 2.0, 3.0, 4.0];
    let s = Shape::from([1, 1, 2, 2]);
    let p = Pool2dParams::new(3, 3).with_stride(1, 1).with_padding(1, 1);
    let (mut y, mut arg) = ([0.0; 4], [0; 4]);
    max_pool2d(s, &x, p, &mut y, &mut arg).unwrap();
    assert_eq!((y, arg), ([4.0; 4], [3; 4]));
    avg_pool2d(s, &x, p, &mut y).unwrap();
    assert_eq!(y, [10.0 / 9.0; 4]);
    // Each pixel is in all four windows: gradient (1+2+3+4)/9.
    let mut gx = [0.0; 4];
    avg_pool2d_backward(s, &[1.0, 2.0, 3.0, 4.0], p, &mut gx).unwrap();
    assert_eq!(gx, [10.0 / 9.0; 4]);
}

#[test]
fn global_avg_pool_fixture() {
    // Two planes of a [1, 2, 2, 2] input: means 2.5 and 10.
    let x = [1.0f32, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
    let s = Shape::from([1, 2, 2, 2]);
    let mut y = [0.0f32; 2];
    assert_eq!(
        global_avg_pool2d(s, &x, &mut y).unwrap().dims(),
        &[1, 2, 1, 1]
    );
    assert_eq!(y, [2.5, 10.0]);
    let mut gx = [0.0f32; 8];
    global_avg_pool2d_backward(s, &[4.0, 8.0], &mut gx).unwrap();
    assert_eq!(gx, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
    let t = Tensor::from_slice(&x, &[1, 2, 2, 2])
        .unwrap()
        .global_avg_pool2d()
        .unwrap();
    assert_eq!((t.dims(), t.data()), (&[1, 2, 1, 1][..], &y[..]));
}

/// Reference pooling by the definition: window taps `i*s + u - p`, padding skipped
/// for max and counted as 0 (in a divisor of kh*kw) for the average.
fn direct_pool(
    shape: [usize; 4],
    x: &[f64],
    p: Pool2dParams,
    oh: usize,
    ow: usize,
) -> (Vec<f64>, Vec<f64>) {
    let [n, c, h, w] = shape;
    let (mut mx, mut avg) = (vec![], vec![]);
    for plane in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let (mut best, mut sum) = (f64::NEG_INFINITY, 0.0);
                for u in 0..p.kernel.0 {
                    for v in 0..p.kernel.1 {
                        let iy = (i * p.stride.0 + u) as isize - p.padding.0 as isize;
                        let ix = (j * p.stride.1 + v) as isize - p.padding.1 as isize;
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            let val = x[(plane * h + iy as usize) * w + ix as usize];
                            best = best.max(val);
                            sum += val;
                        }
                    }
                }
                mx.push(best);
                avg.push(sum / (p.kernel.0 * p.kernel.1) as f64);
            }
        }
    }
    (mx, avg)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Pooling against the definition; the backward passes against the adjoint
    /// identity `<pool(x), g> = <x, pool_backward(g)>` (max pooling is linear once the
    /// argmax is fixed).
    #[test]
    fn pooling_matches_direct_loops(
        n in 1usize..=2, c in 1usize..=3, h in 1usize..=8, w in 1usize..=8,
        k in (1usize..=4, 1usize..=4), s in (1usize..=3, 1usize..=3),
        pad in (0usize..=2, 0usize..=2), seed in any::<u64>(),
    ) {
        // Padding drawn within its valid range, <= kernel / 2.
        let pad = (pad.0 % (k.0 / 2 + 1), pad.1 % (k.1 / 2 + 1));
        let p = Pool2dParams { kernel: k, stride: s, padding: pad };
        let shape = Shape::from([n, c, h, w]);
        let oh = (h + 2 * pad.0) as isize - k.0 as isize;
        let ow = (w + 2 * pad.1) as isize - k.1 as isize;
        let geo = Pool2dGeometry::new(shape, p);
        if oh < 0 || ow < 0 {
            prop_assert!(geo.unwrap_err().to_string().contains("empty output"));
            return Ok(());
        }
        let (oh, ow) = (oh as usize / s.0 + 1, ow as usize / s.1 + 1);
        prop_assert_eq!(geo.unwrap().output_shape(), Shape::from([n, c, oh, ow]));
        let mut rng = Rng::seed_from_u64(seed);
        let x = random_vec::<f64>(shape.numel(), &mut rng);
        let g = random_vec::<f64>(n * c * oh * ow, &mut rng);
        let (want_max, want_avg) = direct_pool([n, c, h, w], &x, p, oh, ow);

        let (mut y, mut arg) = (vec![0.0; g.len()], vec![0; g.len()]);
        max_pool2d(shape, &x, p, &mut y, &mut arg).unwrap();
        prop_assert_eq!(&y, &want_max);
        for (o, &a) in arg.iter().enumerate() {
            prop_assert_eq!(x[a], y[o]);
        }
        let mut gx = vec![f64::NAN; x.len()];
        max_pool2d_backward(&g, &arg, &mut gx).unwrap();
        prop_assert!((dot(&y, &g) - dot(&x, &gx)).abs() < 1e-10);

        avg_pool2d(shape, &x, p, &mut y).unwrap();
        assert_close(&y, &want_avg, 1e-12, "avg_pool2d");
        avg_pool2d_backward(shape, &g, p, &mut gx).unwrap();
        prop_assert!((dot(&y, &g) - dot(&x, &gx)).abs() < 1e-10);
    }
}

#[test]
fn pool_params_validate_names_the_parameter() {
    assert!(Pool2dParams::default().validate().is_ok());
    let msg = |p: Pool2dParams| p.validate().unwrap_err().to_string();
    assert_eq!(
        msg(Pool2dParams::new(0, 2)),
        "Pool2dParams: invalid kernel = 0, valid range: >= 1"
    );
    assert_eq!(
        msg(Pool2dParams::new(2, 2).with_stride(2, 0)),
        "Pool2dParams: invalid stride = 0, valid range: >= 1"
    );
    assert_eq!(
        msg(Pool2dParams::new(3, 3).with_padding(1, 2)),
        "Pool2dParams: invalid padding = 2, valid range: <= kernel / 2"
    );
}

#[test]
fn pool_errors_name_op_and_shapes() {
    let p = Pool2dParams::new(2, 2);
    let s = Shape::from([1, 1, 4, 4]);
    let x = [0.0f32; 16];
    let (mut y, mut arg) = ([0.0f32; 4], [0usize; 4]);
    let msg = |e: dl_core::Error| e.to_string();
    assert_eq!(
        msg(p.output_shape(Shape::from([4, 4])).unwrap_err()),
        "pool2d: expected rank 4 (NCHW input), got shape [4, 4]"
    );
    assert_eq!(
        msg(Pool2dGeometry::new(Shape::from([1, 1, 1, 4]), p).unwrap_err()),
        "pool2d: shapes [1, 1, 1, 4] and [2, 2] are incompatible \
         (the kernel is larger than the padded input: empty output)"
    );
    assert_eq!(
        msg(max_pool2d(s, &x[1..], p, &mut y, &mut arg).unwrap_err()),
        "max_pool2d: input has 15 elements, expected 16"
    );
    assert_eq!(
        msg(max_pool2d(s, &x, p, &mut y[1..], &mut arg).unwrap_err()),
        "max_pool2d: output has 3 elements, expected 4"
    );
    assert_eq!(
        msg(max_pool2d(s, &x, p, &mut y, &mut arg[1..]).unwrap_err()),
        "max_pool2d: argmax has 3 elements, expected 4"
    );
    let mut gx = [0.0f32; 16];
    assert_eq!(
        msg(max_pool2d_backward(&y[1..], &arg, &mut gx).unwrap_err()),
        "max_pool2d_backward: argmax has 4 elements, expected 3"
    );
    assert_eq!(
        msg(max_pool2d_backward(&y, &[0, 1, 2, 16], &mut gx).unwrap_err()),
        "max_pool2d_backward: index 16 is out of range (must be < 16)"
    );
    assert_eq!(
        msg(avg_pool2d(s, &x, p, &mut y[1..]).unwrap_err()),
        "avg_pool2d: output has 3 elements, expected 4"
    );
    assert_eq!(
        msg(avg_pool2d_backward(s, &y, p, &mut gx[1..]).unwrap_err()),
        "avg_pool2d_backward: grad_input has 15 elements, expected 16"
    );
    assert_eq!(
        msg(avg_pool2d_backward(s, &y[1..], p, &mut gx).unwrap_err()),
        "avg_pool2d_backward: grad_out has 3 elements, expected 4"
    );
    assert_eq!(
        msg(global_avg_pool2d(s, &x, &mut y).unwrap_err()),
        "global_avg_pool2d: output has 4 elements, expected 1"
    );
    assert_eq!(
        msg(global_avg_pool2d(Shape::from([1, 1, 0, 4]), &[], &mut y).unwrap_err()),
        "global_avg_pool2d: shapes [1, 1, 0, 4] and [1, 1] are incompatible \
         (height and width must be non-zero to average over them)"
    );
    assert_eq!(
        msg(global_avg_pool2d_backward(s, &y[..1], &mut gx[1..]).unwrap_err()),
        "global_avg_pool2d_backward: grad_input has 15 elements, expected 16"
    );
    let t = Tensor::<f32>::zeros(&[2, 3]).unwrap();
    assert!(msg(t.max_pool2d(p).unwrap_err()).starts_with("pool2d: expected rank 4"));
    assert!(msg(t.max_pool2d_with_argmax(p).unwrap_err()).starts_with("pool2d: expected rank 4"));
    assert!(msg(t.avg_pool2d(p).unwrap_err()).starts_with("pool2d: expected rank 4"));
    assert!(
        msg(t.global_avg_pool2d().unwrap_err()).starts_with("global_avg_pool2d: expected rank 4")
    );
}
