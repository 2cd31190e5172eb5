//! Property tests of the elementwise, reduction, softmax, distance and layout kernels
//! against naive reference loops (explicit broadcasting by index arithmetic, loops
//! over every output element) and against central finite differences in f64.
//!
//! Finite-difference tolerances follow PyTorch's `gradcheck`: eps 1e-6, atol 1e-5,
//! rtol 1e-3.

use dl_core::distance::{l1, pairwise, Metric};
use dl_core::elementwise::{binary, binary_backward, unary, unary_backward, Binary, Unary};
use dl_core::layout::{
    concat, concat_backward, index_add, index_select, permute, slice_axis, slice_axis_backward,
    split, transpose2d,
};
use dl_core::reduce::{argmax_axis, argmin_axis, reduce_axis, sum_to_shape, Reduce};
use dl_core::softmax::{
    log_softmax, log_softmax_backward, softmax, softmax_backward, softmax_cross_entropy,
};
use dl_core::{Shape, Tensor};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------
// Strategies and reference helpers
// ---------------------------------------------------------------------------------

/// A moderate number of cases: the machine is shared and has two cores.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    }
}

/// An output shape of rank 0..=4 (dims 1..=4) and two shapes that broadcast to it:
/// each keeps a random number of trailing dimensions, some of them replaced by 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..=4, 0..=4).prop_flat_map(|out| {
        let r = out.len();
        (
            Just(out.clone()),
            0..=r,
            prop::collection::vec(any::<bool>(), r),
            0..=r,
            prop::collection::vec(any::<bool>(), r),
        )
            .prop_map(|(out, ra, ones_a, rb, ones_b)| {
                let pick = |rank: usize, ones: &[bool]| -> Vec<usize> {
                    let start = out.len() - rank;
                    (start..out.len())
                        .map(|i| if ones[i] { 1 } else { out[i] })
                        .collect()
                };
                let a = pick(ra, &ones_a);
                let b = pick(rb, &ones_b);
                (out, a, b)
            })
    })
}

/// NumPy's broadcast of two compatible shapes, written out: align right, take the
/// larger of each pair (the other is equal or 1).
fn naive_broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    let at = |d: &[usize], i: usize| {
        if i + d.len() >= r {
            d[i + d.len() - r]
        } else {
            1
        }
    };
    (0..r).map(|i| at(a, i).max(at(b, i))).collect()
}

fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// Row-major multi-index of flat index `flat` in `dims`.
fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for i in (0..dims.len()).rev() {
        idx[i] = flat % dims[i];
        flat /= dims[i];
    }
    idx
}

/// Flat index into a row-major `dims` of the multi-index `idx`.
fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Where output element `out_idx` reads an operand of shape `dims` under NumPy
/// broadcasting: align right, index 0 along size-1 dimensions.
fn broadcast_source(out_idx: &[usize], dims: &[usize]) -> usize {
    let offset = out_idx.len() - dims.len();
    let idx: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { out_idx[offset + i] })
        .collect();
    ravel(&idx, dims)
}

fn values(n: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(lo..hi, n)
}

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims).unwrap()
}

/// `|a - b| <= atol + rtol |b|`
fn close(a: f64, b: f64, atol: f64, rtol: f64) -> bool {
    (a - b).abs() <= atol + rtol * b.abs()
}

const ALL_BINARY: [Binary; 7] = [
    Binary::Add,
    Binary::Sub,
    Binary::Mul,
    Binary::Div,
    Binary::Max,
    Binary::Min,
    Binary::Pow,
];

// ---------------------------------------------------------------------------------
// Broadcasting
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Every binary op equals the same op applied to explicitly expanded operands.
    #[test]
    fn binary_matches_explicit_expansion(
        (_, a_d, b_d, a, b) in broadcast_pair().prop_flat_map(|(o, a, b)| {
            let (na, nb) = (numel(&a), numel(&b));
            // Positive values keep pow real; b away from 0 keeps div finite.
            (Just(o), Just(a), Just(b), values(na, 0.5, 2.0), values(nb, 0.5, 2.0))
        })
    ) {
        // The drawn output shape is only an upper bound when both operands have 1s.
        let out_d = naive_broadcast(&a_d, &b_d);
        for op in ALL_BINARY {
            let mut out = vec![f64::NAN; numel(&out_d)];
            let s = binary(op, &a, &shape(&a_d), &b, &shape(&b_d), &mut out).unwrap();
            prop_assert_eq!(s.dims(), &out_d[..]);
            for (i, &o) in out.iter().enumerate() {
                let idx = unravel(i, &out_d);
                let want = op.apply(a[broadcast_source(&idx, &a_d)], b[broadcast_source(&idx, &b_d)]);
                prop_assert_eq!(o.to_bits(), want.to_bits(), "{:?} at {:?}", op, idx);
            }
        }
    }

    /// binary_backward accumulates the expanded gradient `dy * df/da`, summed over
    /// every output element that read each input element.
    #[test]
    fn binary_backward_matches_expanded_gradient(
        (out_d, a_d, b_d, a, b, dy) in broadcast_pair().prop_flat_map(|(_, a, b)| {
            let o = naive_broadcast(&a, &b);
            let (na, nb, no) = (numel(&a), numel(&b), numel(&o));
            (Just(o), Just(a), Just(b), values(na, 0.5, 2.0), values(nb, 0.5, 2.0), values(no, -1.0, 1.0))
        })
    ) {
        for op in ALL_BINARY {
            let mut da = vec![0.25; a.len()];
            let mut db = vec![-0.5; b.len()];
            binary_backward(op, &a, &shape(&a_d), &b, &shape(&b_d), &dy, Some(&mut da), Some(&mut db)).unwrap();
            let mut want_a = vec![0.25; a.len()];
            let mut want_b = vec![-0.5; b.len()];
            for (i, &g) in dy.iter().enumerate() {
                let idx = unravel(i, &out_d);
                let (ia, ib) = (broadcast_source(&idx, &a_d), broadcast_source(&idx, &b_d));
                let (pa, pb) = op.partials(a[ia], b[ib]);
                want_a[ia] += g * pa;
                want_b[ib] += g * pb;
            }
            for (x, y) in da.iter().zip(&want_a).chain(db.iter().zip(&want_b)) {
                prop_assert!(close(*x, *y, 1e-12, 1e-12), "{:?}: {} vs {}", op, x, y);
            }
            // Only one side requested: the other is untouched, the same values result.
            let mut da2 = vec![0.25; a.len()];
            binary_backward(op, &a, &shape(&a_d), &b, &shape(&b_d), &dy, Some(&mut da2), None).unwrap();
            prop_assert_eq!(&da2, &da);
        }
    }

    /// The analytic partials of every binary op against central differences, away
    /// from the ties of max/min.
    #[test]
    fn binary_partials_match_finite_differences(a in 0.2f64..3.0, b in 0.2f64..3.0, flip in any::<bool>()) {
        let b = if flip { -b } else { b };
        prop_assume!((a - b).abs() > 1e-3);
        let eps = 1e-6;
        for op in ALL_BINARY {
            let (pa, pb) = op.partials(a, b);
            let fa = (op.apply(a + eps, b) - op.apply(a - eps, b)) / (2.0 * eps);
            let fb = (op.apply(a, b + eps) - op.apply(a, b - eps)) / (2.0 * eps);
            prop_assert!(close(pa, fa, 1e-5, 1e-3), "{:?} d/da at ({}, {}): {} vs {}", op, a, b, pa, fa);
            prop_assert!(close(pb, fb, 1e-5, 1e-3), "{:?} d/db at ({}, {}): {} vs {}", op, a, b, pb, fb);
        }
    }

    /// sum_to_shape equals an explicit loop adding every element into its source.
    #[test]
    fn sum_to_shape_matches_explicit_loop(
        (out_d, t_d, x) in broadcast_pair().prop_flat_map(|(o, a, _)| {
            let n = numel(&o);
            (Just(o), Just(a), values(n, -2.0, 2.0))
        })
    ) {
        let mut out = vec![f64::NAN; numel(&t_d)];
        sum_to_shape(&x, &shape(&out_d), &shape(&t_d), &mut out).unwrap();
        let mut want = vec![0.0; numel(&t_d)];
        for (i, &v) in x.iter().enumerate() {
            want[broadcast_source(&unravel(i, &out_d), &t_d)] += v;
        }
        for (o, w) in out.iter().zip(&want) {
            prop_assert!(close(*o, *w, 1e-12, 1e-12), "{} vs {}", o, w);
        }
    }
}

// ---------------------------------------------------------------------------------
// Unary ops: values and derivatives
// ---------------------------------------------------------------------------------

const ALL_UNARY: [Unary; 16] = [
    Unary::Neg,
    Unary::Abs,
    Unary::Exp,
    Unary::Log,
    Unary::Sqrt,
    Unary::Square,
    Unary::Recip,
    Unary::PowConst(2.5),
    Unary::Sigmoid,
    Unary::Tanh,
    Unary::Relu,
    Unary::Relu6,
    Unary::LeakyRelu(0.1),
    Unary::Identity,
    Unary::Gelu,
    Unary::Silu,
];

/// An input at which `op` is smooth: positive for log, sqrt and fractional powers,
/// away from 0 for recip and the kinked ops, and for ReLU6 spread over `[-8, 8]`
/// (both sides of both kinks) but away from 0 and 6.
fn smooth_input(op: Unary, v: f64) -> f64 {
    match op {
        Unary::Log | Unary::Sqrt | Unary::PowConst(_) => 0.1 + v.abs(),
        Unary::Relu6 => {
            let t = 2.0 * v;
            if t.abs() < 0.1 || (t - 6.0).abs() < 0.1 {
                t + 0.2
            } else {
                t
            }
        }
        Unary::Recip | Unary::Abs | Unary::Relu | Unary::LeakyRelu(_) => {
            if v.abs() < 0.1 {
                v.signum() * 0.1 + v
            } else {
                v
            }
        }
        _ => v,
    }
}

proptest! {
    #![proptest_config(config())]

    /// `dx += dy f'(x)` for every unary op against central differences of `f`, and
    /// the forward kernel equals `Unary::apply`.
    #[test]
    fn unary_backward_matches_finite_differences(
        raw in values(12, -4.0, 4.0),
        dy in values(12, -1.0, 1.0),
        dx0 in values(12, -1.0, 1.0),
    ) {
        let eps = 1e-6;
        for op in ALL_UNARY {
            let x: Vec<f64> = raw.iter().map(|&v| smooth_input(op, v)).collect();
            let mut y = vec![0.0; x.len()];
            unary(op, &x, &mut y).unwrap();
            for (&xi, &yi) in x.iter().zip(&y) {
                prop_assert_eq!(yi.to_bits(), op.apply(xi).to_bits());
            }
            let mut dx = dx0.clone();
            unary_backward(op, &x, &y, &dy, &mut dx).unwrap();
            for i in 0..x.len() {
                let fd = (op.apply(x[i] + eps) - op.apply(x[i] - eps)) / (2.0 * eps);
                let want = dx0[i] + dy[i] * fd;
                prop_assert!(close(dx[i], want, 1e-5, 1e-3), "{:?} at x = {}: {} vs {}", op, x[i], dx[i], want);
            }
        }
    }
}

#[test]
fn unary_kinks_follow_pytorch() {
    // relu'(0) = 0, abs'(0) = 0, leaky_relu'(0) = slope, accumulated onto dx.
    let x = [0.0f64; 1];
    let mut dx = [1.0];
    unary_backward(Unary::Relu, &x, &[0.0], &[2.0], &mut dx).unwrap();
    assert_eq!(dx, [1.0]);
    unary_backward(Unary::Abs, &x, &[0.0], &[2.0], &mut dx).unwrap();
    assert_eq!(dx, [1.0]);
    unary_backward(Unary::LeakyRelu(0.25), &x, &[0.0], &[2.0], &mut dx).unwrap();
    assert_eq!(dx, [1.5]);
}

#[test]
fn relu6_values_and_kinks_follow_pytorch() {
    // relu6(x) = min(max(x, 0), 6); NaN passes through (torch.clamp).
    let x = [-1.0f64, 0.0, 3.0, 6.0, 7.5, f64::NAN];
    let mut y = [0.0; 6];
    unary(Unary::Relu6, &x, &mut y).unwrap();
    assert_eq!(&y[..5], &[0.0, 0.0, 3.0, 6.0, 6.0]);
    assert!(y[5].is_nan());
    assert!(Unary::Relu6.apply(f32::NAN).is_nan());
    let mut inplace = x;
    dl_core::elementwise::unary_inplace(Unary::Relu6, &mut inplace);
    assert_eq!(&inplace[..5], &y[..5]);
    // hardtanh_backward(grad, x, 0, 6) = grad where 0 < x < 6, else 0: nothing at
    // either kink (x = 0, x = 6), beyond them, or (as its vectorized CPU kernel) NaN.
    let mut dx = [1.0; 6];
    unary_backward(Unary::Relu6, &x, &y, &[2.0; 6], &mut dx).unwrap();
    assert_eq!(dx, [1.0, 1.0, 3.0, 1.0, 1.0, 1.0]);
    for (xi, d) in [(0.0f32, 0.0), (1e-7, 1.0), (5.999, 1.0), (6.0, 0.0)] {
        assert_eq!(
            Unary::Relu6.derivative(xi, Unary::Relu6.apply(xi)),
            d,
            "x = {xi}"
        );
    }
    assert_eq!(Unary::Relu6.name(), "relu6");
    assert_eq!(Unary::Relu6.backward_name(), "relu6_backward");
}

// ---------------------------------------------------------------------------------
// Softmax
// ---------------------------------------------------------------------------------

/// Logits that are ordinary numbers, or +-1000 (which overflow a naive `exp`).
fn logit() -> impl Strategy<Value = f64> {
    prop_oneof![4 => -10.0f64..10.0, 1 => Just(1000.0), 1 => Just(-1000.0)]
}

fn logits(max_rows: usize, max_cols: usize) -> impl Strategy<Value = (usize, usize, Vec<f64>)> {
    (1..=max_rows, 1..=max_cols)
        .prop_flat_map(|(r, c)| (Just(r), Just(c), prop::collection::vec(logit(), r * c)))
}

proptest! {
    #![proptest_config(config())]

    /// Rows sum to 1 and nothing is NaN or infinite, in f64 and f32, even with +-1000.
    #[test]
    fn softmax_rows_sum_to_one((rows, cols, x) in logits(5, 12)) {
        let mut p = vec![0.0; x.len()];
        softmax(&x, rows, cols, &mut p).unwrap();
        for row in p.chunks(cols) {
            prop_assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
            prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut p32 = vec![0.0f32; x.len()];
        softmax(&x32, rows, cols, &mut p32).unwrap();
        for row in p32.chunks(cols) {
            prop_assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0));
            prop_assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let mut l32 = vec![0.0f32; x.len()];
        log_softmax(&x32, rows, cols, &mut l32).unwrap();
        prop_assert!(l32.iter().all(|v| v.is_finite() && *v <= 0.0));
    }

    /// log_softmax = ln(softmax) wherever the softmax has not underflowed to 0.
    #[test]
    fn log_softmax_is_log_of_softmax((rows, cols, x) in logits(4, 10)) {
        let mut p = vec![0.0; x.len()];
        let mut l = vec![0.0; x.len()];
        softmax(&x, rows, cols, &mut p).unwrap();
        log_softmax(&x, rows, cols, &mut l).unwrap();
        for (&pv, &lv) in p.iter().zip(&l) {
            prop_assert!(lv.is_finite());
            if pv > 1e-300 {
                prop_assert!(close(lv, pv.ln(), 1e-12, 1e-12), "{} vs ln {}", lv, pv);
            }
        }
    }

    /// softmax_backward and log_softmax_backward against central differences of
    /// `L = sum(dy * f(x))`, and the fused cross-entropy gradient against differences
    /// of the loss.
    #[test]
    fn softmax_gradients_match_finite_differences(
        (rows, cols, x) in (1usize..=3, 1usize..=5)
            .prop_flat_map(|(r, c)| (Just(r), Just(c), values(r * c, -3.0, 3.0))),
        seed in any::<u64>(),
    ) {
        let mut rng = dl_core::Rng::seed_from_u64(seed);
        let dy: Vec<f64> = (0..x.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let targets: Vec<usize> = (0..rows).map(|_| (rng.next_u64() % cols as u64) as usize).collect();
        let eps = 1e-6;
        let weighted = |f: fn(&[f64], usize, usize, &mut [f64]) -> dl_core::Result<()>, x: &[f64]| {
            let mut y = vec![0.0; x.len()];
            f(x, rows, cols, &mut y).unwrap();
            y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut y = vec![0.0; x.len()];
        let mut yl = vec![0.0; x.len()];
        softmax(&x, rows, cols, &mut y).unwrap();
        log_softmax(&x, rows, cols, &mut yl).unwrap();
        let mut dx = vec![0.5; x.len()];
        let mut dxl = vec![0.5; x.len()];
        softmax_backward(&y, &dy, rows, cols, &mut dx).unwrap();
        log_softmax_backward(&yl, &dy, rows, cols, &mut dxl).unwrap();
        let mut grad = vec![0.0; x.len()];
        softmax_cross_entropy(&x, rows, cols, &targets, Some(&mut grad)).unwrap();
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += eps;
            xm[i] -= eps;
            let fd = (weighted(softmax, &xp) - weighted(softmax, &xm)) / (2.0 * eps);
            prop_assert!(close(dx[i] - 0.5, fd, 1e-5, 1e-3), "softmax {} vs {}", dx[i] - 0.5, fd);
            let fdl = (weighted(log_softmax, &xp) - weighted(log_softmax, &xm)) / (2.0 * eps);
            prop_assert!(close(dxl[i] - 0.5, fdl, 1e-5, 1e-3), "log_softmax {} vs {}", dxl[i] - 0.5, fdl);
            let lp = softmax_cross_entropy(&xp, rows, cols, &targets, None).unwrap();
            let lm = softmax_cross_entropy(&xm, rows, cols, &targets, None).unwrap();
            let fdc = (lp - lm) / (2.0 * eps);
            prop_assert!(close(grad[i], fdc, 1e-5, 1e-3), "cross-entropy {} vs {}", grad[i], fdc);
        }
    }
}

#[test]
fn cross_entropy_equals_mean_negative_log_softmax() {
    // Checked against the unfused route on logits with +-1000.
    let x = [1000.0f64, -1000.0, 0.5, 2.0, -1000.0, 1000.0];
    let targets = [1, 2];
    let mut l = [0.0; 6];
    log_softmax(&x, 2, 3, &mut l).unwrap();
    let want = -(l[1] + l[5]) / 2.0;
    let got = softmax_cross_entropy(&x, 2, 3, &targets, None).unwrap();
    assert!((got - want).abs() < 1e-12 && got.is_finite());
    assert!((got - 1000.0).abs() < 1e-9); // each row: -(x_t - 1000) = 2000 and 0
}

// ---------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------

/// A shape of rank 1..=4 (dims 1..=5), an axis of it, and values.
fn shape_axis_values(lo: f64, hi: f64) -> impl Strategy<Value = (Vec<usize>, usize, Vec<f64>)> {
    prop::collection::vec(1usize..=5, 1..=4).prop_flat_map(move |d| {
        let n = numel(&d);
        let r = d.len();
        (Just(d), 0..r, values(n, lo, hi))
    })
}

/// The values along `axis` at every position of the other axes, in output order.
fn naive_lanes(x: &[f64], dims: &[usize], axis: usize) -> Vec<Vec<f64>> {
    let mut out_dims = dims.to_vec();
    out_dims.remove(axis);
    (0..numel(&out_dims))
        .map(|o| {
            let oi = unravel(o, &out_dims);
            (0..dims[axis])
                .map(|k| {
                    let mut idx = oi.clone();
                    idx.insert(axis, k);
                    x[ravel(&idx, dims)]
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn reduce_axis_matches_naive_loops((dims, axis, x) in shape_axis_values(-5.0, 5.0)) {
        let lanes = naive_lanes(&x, &dims, axis);
        let ops = [Reduce::Sum, Reduce::Mean, Reduce::Max, Reduce::Min, Reduce::Var { ddof: 0 }, Reduce::Var { ddof: 1 }];
        for op in ops {
            let mut out = vec![f64::NAN; lanes.len()];
            let s = reduce_axis(op, &x, &shape(&dims), axis, &mut out).unwrap();
            let mut want_dims = dims.clone();
            want_dims.remove(axis);
            prop_assert_eq!(s.dims(), &want_dims[..]);
            for (o, lane) in out.iter().zip(&lanes) {
                let n = lane.len() as f64;
                let mean = lane.iter().sum::<f64>() / n;
                let m2: f64 = lane.iter().map(|v| (v - mean) * (v - mean)).sum();
                let want = match op {
                    Reduce::Sum => lane.iter().sum::<f64>(),
                    Reduce::Mean => mean,
                    Reduce::Max => lane.iter().cloned().fold(f64::MIN, f64::max),
                    Reduce::Min => lane.iter().cloned().fold(f64::MAX, f64::min),
                    Reduce::Var { ddof } => m2 / (n - ddof as f64),
                };
                if want.is_nan() {
                    prop_assert!(o.is_nan()); // var with n == ddof == 1
                } else {
                    prop_assert!(close(*o, want, 1e-12, 1e-12), "{:?}: {} vs {}", op, o, want);
                }
            }
        }
    }

    /// argmax/argmin return the first extreme on ties (small integers force ties).
    #[test]
    fn argmax_matches_naive_first_index(
        (dims, axis, x) in shape_axis_values(0.0, 3.0).prop_map(|(d, a, x)| (d, a, x.iter().map(|v| v.floor()).collect::<Vec<_>>()))
    ) {
        let lanes = naive_lanes(&x, &dims, axis);
        let mut imax = vec![usize::MAX; lanes.len()];
        let mut imin = vec![usize::MAX; lanes.len()];
        argmax_axis(&x, &shape(&dims), axis, &mut imax).unwrap();
        argmin_axis(&x, &shape(&dims), axis, &mut imin).unwrap();
        for ((lane, &i), &j) in lanes.iter().zip(&imax).zip(&imin) {
            let mx = lane.iter().cloned().fold(f64::MIN, f64::max);
            let mn = lane.iter().cloned().fold(f64::MAX, f64::min);
            prop_assert_eq!(i, lane.iter().position(|&v| v == mx).unwrap());
            prop_assert_eq!(j, lane.iter().position(|&v| v == mn).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------

/// A shape of rank 1..=4 and a permutation of its axes.
fn shape_and_permutation() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..=4, 1..=4).prop_flat_map(|d| {
        let r = d.len();
        (Just(d), Just((0..r).collect::<Vec<_>>()).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(config())]

    /// permute puts `x[idx]` at the permuted index, and the inverse permutation
    /// restores `x`.
    #[test]
    fn permute_matches_index_mapping_and_round_trips((dims, axes) in shape_and_permutation()) {
        let x: Vec<f64> = (0..numel(&dims)).map(|i| i as f64).collect();
        let mut y = vec![0.0; x.len()];
        let s = permute(&x, &shape(&dims), &axes, &mut y).unwrap();
        let out_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
        prop_assert_eq!(s.dims(), &out_dims[..]);
        for (i, &v) in y.iter().enumerate() {
            let oi = unravel(i, &out_dims);
            let mut src = vec![0; dims.len()];
            for (k, &a) in axes.iter().enumerate() {
                src[a] = oi[k];
            }
            prop_assert_eq!(v, x[ravel(&src, &dims)]);
        }
        let mut inverse = vec![0; axes.len()];
        for (k, &a) in axes.iter().enumerate() {
            inverse[a] = k;
        }
        let mut back = vec![0.0; x.len()];
        permute(&y, &s, &inverse, &mut back).unwrap();
        prop_assert_eq!(back, x);
    }

    /// transpose2d against the definition, across tile boundaries.
    #[test]
    fn transpose_matches_definition(rows in 1usize..70, cols in 1usize..70) {
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let mut t = vec![0.0f32; x.len()];
        transpose2d(&x, rows, cols, &mut t).unwrap();
        for r in 0..rows {
            for c in 0..cols {
                prop_assert_eq!(t[c * rows + r], x[r * cols + c]);
            }
        }
    }

    /// Slicing an axis into two pieces and concatenating them gives `x` back; split
    /// gives the pieces back; the backward passes put each gradient where it came from.
    #[test]
    fn slice_concat_split_round_trip(
        (dims, axis, cut) in shape_axis_values(0.0, 1.0)
            .prop_flat_map(|(d, a, _)| { let n = d[a]; (Just(d), Just(a), 0..=n) })
    ) {
        let s = shape(&dims);
        let x: Vec<f64> = (0..s.numel()).map(|i| i as f64).collect();
        let n = dims[axis];
        let (sa, sb) = (s.with_dim(axis, cut, "t").unwrap(), s.with_dim(axis, n - cut, "t").unwrap());
        let mut a = vec![0.0; sa.numel()];
        let mut b = vec![0.0; sb.numel()];
        prop_assert_eq!(slice_axis(&x, &s, axis, 0, cut, &mut a).unwrap(), sa);
        prop_assert_eq!(slice_axis(&x, &s, axis, cut, n, &mut b).unwrap(), sb);
        let mut joined = vec![0.0; x.len()];
        let js = concat(&[(&a[..], sa), (&b[..], sb)], axis, &mut joined).unwrap();
        prop_assert_eq!(js, s);
        prop_assert_eq!(&joined, &x);
        let (mut a2, mut b2) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        split(&x, &s, axis, &mut [(&mut a2[..], sa), (&mut b2[..], sb)]).unwrap();
        prop_assert_eq!((&a2, &b2), (&a, &b));
        // concat_backward adds each part of dy = x onto the gradients a2, b2.
        concat_backward(&x, &s, axis, &mut [(&mut a2[..], sa), (&mut b2[..], sb)]).unwrap();
        prop_assert!(a2.iter().zip(&a).all(|(g, v)| *g == 2.0 * v));
        prop_assert!(b2.iter().zip(&b).all(|(g, v)| *g == 2.0 * v));
        // Slice backward of both pieces reassembles x.
        let mut dx = vec![0.0; x.len()];
        slice_axis_backward(&a, &s, axis, 0, cut, &mut dx).unwrap();
        slice_axis_backward(&b, &s, axis, cut, n, &mut dx).unwrap();
        prop_assert_eq!(dx, x);
    }

    /// index_add is the adjoint of index_select: <select(x), g> = <x, index_add(g)>.
    #[test]
    fn index_add_is_adjoint_of_index_select(
        rows in 1usize..6,
        width in 1usize..4,
        idx in prop::collection::vec(0usize..100, 0..8),
        seed in any::<u64>(),
    ) {
        let indices: Vec<usize> = idx.iter().map(|i| i % rows).collect();
        let mut rng = dl_core::Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..rows * width).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let g: Vec<f64> = (0..indices.len() * width).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let s = shape(&[rows, width]);
        let mut sel = vec![0.0; g.len()];
        index_select(&x, &s, &indices, &mut sel).unwrap();
        let mut back = vec![0.0; x.len()];
        index_add(&mut back, &s, &indices, &g).unwrap();
        let lhs: f64 = sel.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
        prop_assert!(close(lhs, rhs, 1e-12, 1e-12));
    }
}

// ---------------------------------------------------------------------------------
// Distances
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// pairwise equals the per-pair distance; sizes reach the GEMM path for squared L2
    /// (n m d >= 32768), whose cancellation error is bounded by eps (|x|^2 + |y|^2).
    #[test]
    fn pairwise_matches_per_pair_distances(n in 1usize..40, m in 1usize..40, d in 1usize..70, seed in any::<u64>()) {
        let mut rng = dl_core::Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..n * d).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y: Vec<f64> = (0..m * d).map(|_| rng.uniform(-1.0, 1.0)).collect();
        for metric in [Metric::L1, Metric::L2, Metric::SqL2] {
            let mut out = vec![f64::NAN; n * m];
            pairwise(metric, &x, n, &y, m, d, &mut out).unwrap();
            for i in 0..n {
                for j in 0..m {
                    let (xi, yj) = (&x[i * d..(i + 1) * d], &y[j * d..(j + 1) * d]);
                    let want = metric.distance(xi, yj).unwrap();
                    let got = out[i * m + j];
                    match metric {
                        Metric::L1 => prop_assert_eq!(got, want),
                        Metric::SqL2 => prop_assert!(close(got, want, 1e-12 * d as f64, 1e-12)),
                        // sqrt magnifies an absolute error near 0: compare the squares.
                        Metric::L2 => prop_assert!(close(got * got, want * want, 1e-12 * d as f64, 1e-12)),
                    }
                }
            }
        }
    }
}

/// The same check in f32 on a size that takes the GEMM path for sure (n m d = 64^3).
#[test]
fn pairwise_sq_l2_gemm_path_f32() {
    let (n, m, d) = (64, 64, 64);
    let mut rng = dl_core::Rng::seed_from_u64(7);
    let x: Vec<f32> = (0..n * d).map(|_| rng.uniform(0.0, 1.0)).collect();
    let y: Vec<f32> = (0..m * d).map(|_| rng.uniform(0.0, 1.0)).collect();
    let mut out = vec![0.0f32; n * m];
    pairwise(Metric::SqL2, &x, n, &y, m, d, &mut out).unwrap();
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..m {
            let want: f64 = (0..d)
                .map(|k| (x[i * d + k] as f64 - y[j * d + k] as f64).powi(2))
                .sum();
            worst = worst.max((out[i * m + j] as f64 - want).abs());
        }
    }
    // Norms are about d/3 = 21; f32 eps 1.2e-7 times that, times a few roundings.
    assert!(worst < 1e-4, "worst error {worst}");
}

/// Sizes that take the threaded and blocked paths of the direct L1 kernel: one query
/// row against many (columns split among threads), and many rows crossing both the
/// x-block (2 MiB) and y-block (128 KiB) boundaries.
#[test]
fn pairwise_l1_large_paths_match_per_pair() {
    let mut rng = dl_core::Rng::seed_from_u64(11);
    for (n, m, d) in [(1usize, 3000usize, 400usize), (300, 20, 1000)] {
        let x: Vec<f64> = (0..n * d).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let y: Vec<f64> = (0..m * d).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let mut out = vec![f64::NAN; n * m];
        pairwise(Metric::L1, &x, n, &y, m, d, &mut out).unwrap();
        for i in 0..n {
            for j in 0..m {
                let want = l1(&x[i * d..(i + 1) * d], &y[j * d..(j + 1) * d]).unwrap();
                assert_eq!(out[i * m + j], want, "({n}, {m}, {d}) at ({i}, {j})");
            }
        }
    }
}

/// CS231n's nearest-neighbour example: L1 between these 4x4 images is 456.
#[test]
fn l1_fixture_is_456() {
    let test = [
        56.0f32, 32.0, 10.0, 18.0, 90.0, 23.0, 128.0, 133.0, 24.0, 26.0, 178.0, 200.0, 2.0, 0.0,
        255.0, 220.0,
    ];
    let train = [
        10.0f32, 20.0, 24.0, 17.0, 8.0, 10.0, 89.0, 100.0, 12.0, 16.0, 178.0, 170.0, 4.0, 32.0,
        233.0, 112.0,
    ];
    assert_eq!(l1(&test, &train).unwrap(), 456.0);
    let mut out = [0.0f32; 1];
    pairwise(Metric::L1, &test, 1, &train, 1, 16, &mut out).unwrap();
    assert_eq!(out, [456.0]);
}

// ---------------------------------------------------------------------------------
// Tensor methods
// ---------------------------------------------------------------------------------

#[test]
fn tensor_methods_compose_and_report_errors() {
    let x = Tensor::from_rows([[1.0f64, -2.0, 3.0], [-4.0, 5.0, -6.0]]);
    let b = Tensor::from_array([1.0f64, 1.0, 1.0]);
    let y = x.add(&b).unwrap().relu();
    assert_eq!(y.data(), &[2.0, 0.0, 4.0, 0.0, 6.0, 0.0]);
    assert_eq!(y.sum(1).unwrap().data(), &[6.0, 6.0]);
    assert_eq!(y.argmax(1).unwrap(), vec![2, 1]);
    assert_eq!(x.transpose().unwrap().dims(), &[3, 2]);
    assert_eq!(x.slice(1, 1, 3).unwrap().data(), &[-2.0, 3.0, 5.0, -6.0]);
    assert_eq!(
        x.index_select(&[1, 1]).unwrap().data(),
        &[-4.0, 5.0, -6.0, -4.0, 5.0, -6.0]
    );
    let parts = x.split(1, &[1, 2]).unwrap();
    assert_eq!(Tensor::concat(&[&parts[0], &parts[1]], 1).unwrap(), x);
    assert_eq!(x.permute(&[1, 0]).unwrap(), x.transpose().unwrap());
    let p = x.softmax();
    assert!((p.sum_all() - 2.0).abs() < 1e-12);
    assert_eq!(x.sub(&x).unwrap().sum_all(), 0.0);
    assert_eq!(
        x.mul(&Tensor::from_array([1.0, 2.0]))
            .unwrap_err()
            .to_string(),
        "mul: shapes [2, 3] and [2] are incompatible (broadcasting needs equal sizes or 1)"
    );
    assert_eq!(
        x.var(2, 1).unwrap_err().to_string(),
        "var: axis 2 is out of range for shape [2, 3] (rank 2)"
    );
    assert_eq!(
        b.transpose().unwrap_err().to_string(),
        "transpose: expected rank 2, got shape [3]"
    );
    assert_eq!(
        Tensor::concat(&[&x, &b], 0).unwrap_err().to_string(),
        "concat: shapes [2, 3] and [3] are incompatible (all dimensions but the concatenation axis must agree)"
    );
    assert_eq!(
        x.sum_to_shape(&Shape::from([2])).unwrap_err().to_string(),
        "sum_to_shape: shapes [2, 3] and [2] are incompatible (the target must broadcast to the input's shape)"
    );
}
