//! Gradient checks for every op and loss: the analytic gradient from `backward`
//! against central finite differences, on random shapes (broadcast shapes included)
//! and values, in f64 (tight) and f32 (loose). The fused recurrent and
//! self-attention ops have their own file, `gradcheck_fused.rs`; the machinery both
//! share is in `common/mod.rs`.
//!
//! "Every op" is checked, not promised: `every_op_variant_has_a_finite_difference_check`
//! runs these tests again, logging the ops each checked graph really held, and
//! requires every `Op` variant (and every unary and binary function) this file
//! answers for to have been there (the list in `common/coverage.rs` is an
//! exhaustive `match`, so a new variant does not compile until it names its check).
//!
//! Values are drawn away from kinks (|x| = 0 for abs/relu, ties for max, `|d| = delta`
//! for Huber) by more than `eps`, so the finite difference is well defined.

mod common;

use common::{check_both, Input, Leaf};
use dl_autograd::Graph;
use dl_core::{Scalar, Shape, Tensor};
use proptest::prelude::*;

/// Named strategies for shapes and values.
mod strategies {
    use super::Input;
    use proptest::prelude::*;

    /// Dims of rank `lo..=hi`, each in `1..=max`.
    pub fn dims(lo: usize, hi: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1..=max, lo..=hi)
    }

    /// Uniform values in `[lo, hi)`.
    pub fn values(n: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(lo..hi, n)
    }

    /// Values at least 0.2 from 0 (and from +-1, the Huber kink used in the tests).
    pub fn off_kinks(n: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(prop_oneof![-2.0..-1.2, -0.8..-0.2, 0.2..0.8, 1.2..2.0], n)
    }

    /// Values at least 0.2 from ReLU6's kinks at 0 and 6, on all three of its pieces.
    pub fn off_relu6_kinks(n: usize) -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(prop_oneof![-2.0..-0.2, 0.2..5.8, 6.2..8.0], n)
    }

    /// `n` distinct values 0.3 apart in random order (no ties for max).
    pub fn distinct(n: usize) -> impl Strategy<Value = Vec<f64>> {
        Just(
            (0..n)
                .map(|i| i as f64 * 0.3 - 0.15 * n as f64)
                .collect::<Vec<_>>(),
        )
        .prop_shuffle()
    }

    /// An input of `dims` with values from `vals`.
    pub fn input<S: Strategy<Value = Vec<f64>>>(
        dims: Vec<usize>,
        vals: impl Fn(usize) -> S,
    ) -> impl Strategy<Value = Input> {
        let n = dims.iter().product();
        vals(n).prop_map(move |data| Input {
            data,
            dims: dims.clone(),
        })
    }

    /// One tensor of rank 1..=3 (dims up to 4) with values in `[lo, hi)`.
    pub fn tensor(lo: f64, hi: f64) -> impl Strategy<Value = Input> {
        dims(1, 3, 4).prop_flat_map(move |d| input(d, move |n| values(n, lo, hi)))
    }

    /// Two shapes that broadcast: an output shape, then each operand with some
    /// dims set to 1 and maybe leading dims dropped.
    pub fn broadcast_dims() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        dims(1, 3, 4).prop_flat_map(|out| {
            let r = out.len();
            let operand = move |out: Vec<usize>| {
                (prop::collection::vec(any::<bool>(), r), 0..r).prop_map(move |(ones, drop)| {
                    out.iter()
                        .zip(&ones)
                        .map(|(&d, &one)| if one { 1 } else { d })
                        .skip(drop)
                        .collect::<Vec<_>>()
                })
            };
            (operand(out.clone()), operand(out))
        })
    }

    /// Two broadcastable inputs with values from `va` and `vb`.
    pub fn broadcast_pair(
        (alo, ahi): (f64, f64),
        bvals: fn(usize) -> BoxedStrategy<Vec<f64>>,
    ) -> impl Strategy<Value = (Input, Input)> {
        broadcast_dims().prop_flat_map(move |(da, db)| {
            (input(da, move |n| values(n, alo, ahi)), input(db, bvals))
        })
    }
}

use strategies::*;

fn signed_away(n: usize) -> BoxedStrategy<Vec<f64>> {
    off_kinks(n).boxed()
}
fn plain(n: usize) -> BoxedStrategy<Vec<f64>> {
    values(n, -2.0, 2.0).boxed()
}

/// Cases per op: enough to cover the shape space, small enough to stay fast.
const CASES: u32 = 32;

proptest! {
    #![proptest_config(common::config(CASES))]

    // ---- binary arithmetic with broadcasting --------------------------------------

    // d(a + b) = (1, 1), summed over broadcast axes.
    #[test]
    fn add_broadcast((a, b) in broadcast_pair((-2.0, 2.0), plain)) {
        check_both!([a, b], [0, 1], |g, v| g.add(v[0], v[1]));
    }

    // d(a - b) = (1, -1).
    #[test]
    fn sub_broadcast((a, b) in broadcast_pair((-2.0, 2.0), plain)) {
        check_both!([a, b], [0, 1], |g, v| g.sub(v[0], v[1]));
    }

    // d(a b) = (b, a).
    #[test]
    fn mul_broadcast((a, b) in broadcast_pair((-2.0, 2.0), plain)) {
        check_both!([a, b], [0, 1], |g, v| g.mul(v[0], v[1]));
    }

    // d(a / b) = (1 / b, -a / b^2), |b| >= 0.2.
    #[test]
    fn div_broadcast((a, b) in broadcast_pair((-2.0, 2.0), signed_away)) {
        check_both!([a, b], [0, 1], |g, v| g.div(v[0], v[1]));
    }

    // d(a^b) = (b a^(b-1), a^b ln a), a > 0.
    #[test]
    fn pow_broadcast((a, b) in broadcast_pair((0.5, 2.0), plain)) {
        check_both!([a, b], [0, 1], |g, v| g.pow(v[0], v[1]));
    }

    // max(a, b) passes the gradient to the larger input; |a - b| >= 0.2.
    #[test]
    fn maximum_minimum(a in tensor(-2.0, 2.0), gap in off_kinks(64)) {
        let b = Input { data: a.data.iter().zip(&gap).map(|(x, d)| x + d).collect(), dims: a.dims.clone() };
        check_both!([a.clone(), b.clone()], [0, 1], |g, v| g.maximum(v[0], v[1]));
        check_both!([a, b], [0, 1], |g, v| g.minimum(v[0], v[1]));
    }

    // A value used twice: d(x * x + x) = 2x + 1, accumulated over both uses.
    #[test]
    fn reuse_accumulates(a in tensor(-2.0, 2.0)) {
        check_both!([a], [0], |g, v| {
            let sq = g.mul(v[0], v[0])?;
            g.add(sq, v[0])
        });
    }

    // Scalar constants: d(3x + 1) = 3.
    #[test]
    fn scalar_ops(a in tensor(-2.0, 2.0)) {
        check_both!([a], [0], |g, v| {
            let y = g.mul_scalar(v[0], S::from_f64_lossy(3.0))?;
            g.add_scalar(y, S::from_f64_lossy(1.0))
        });
    }

    // ---- unary functions -----------------------------------------------------------

    // exp, tanh, sigmoid, gelu, silu, neg, square, identity: smooth everywhere.
    #[test]
    fn smooth_unary(a in tensor(-2.0, 2.0)) {
        check_both!([a.clone()], [0], |g, v| g.exp(v[0]));
        check_both!([a.clone()], [0], |g, v| g.tanh(v[0]));
        check_both!([a.clone()], [0], |g, v| g.sigmoid(v[0]));
        check_both!([a.clone()], [0], |g, v| g.gelu(v[0]));
        check_both!([a.clone()], [0], |g, v| g.silu(v[0]));
        check_both!([a.clone()], [0], |g, v| g.neg(v[0]));
        check_both!([a.clone()], [0], |g, v| g.square(v[0]));
        check_both!([a], [0], |g, v| g.identity(v[0]));
    }

    // log, sqrt, x^p, 1/x on x in [0.5, 2].
    #[test]
    fn positive_unary(a in tensor(0.5, 2.0), p in -2.0f64..3.0) {
        check_both!([a.clone()], [0], |g, v| g.log(v[0]));
        check_both!([a.clone()], [0], |g, v| g.sqrt(v[0]));
        check_both!([a.clone()], [0], |g, v| g.pow_const(v[0], p));
        check_both!([a], [0], |g, v| g.unary(dl_core::elementwise::Unary::Recip, v[0]));
    }

    // abs, relu, leaky relu away from their kink at 0.
    #[test]
    fn kinked_unary(d in dims(1, 3, 4).prop_flat_map(|d| input(d, off_kinks)), slope in 0.01f64..0.3) {
        check_both!([d.clone()], [0], |g, v| g.abs(v[0]));
        check_both!([d.clone()], [0], |g, v| g.relu(v[0]));
        check_both!([d], [0], |g, v| g.leaky_relu(v[0], slope));
    }

    // relu6 = min(max(x, 0), 6): dx = dy inside (0, 6), 0 below and above.
    #[test]
    fn relu6_off_kinks(d in dims(1, 3, 4).prop_flat_map(|d| input(d, off_relu6_kinks))) {
        check_both!([d], [0], |g, v| g.relu6(v[0]));
    }

    // ---- matmul --------------------------------------------------------------------

    // C = A B: dA = dC B^T, dB = A^T dC; 2-D, batched 3-D, and a shared 2-D operand.
    #[test]
    fn matmul_all_forms(
        (m, k, n, batch) in (1usize..4, 1usize..4, 1usize..4, 1usize..3),
        form in 0usize..4,
        seed in prop::collection::vec(-2.0f64..2.0, 64),
    ) {
        let (a_dims, b_dims) = match form {
            0 => (vec![m, k], vec![k, n]),
            1 => (vec![batch, m, k], vec![batch, k, n]),
            2 => (vec![batch, m, k], vec![k, n]),
            _ => (vec![m, k], vec![batch, k, n]),
        };
        let take = |dims: &Vec<usize>, off: usize| Input {
            data: (0..dims.iter().product::<usize>()).map(|i| seed[(i + off) % 64]).collect(),
            dims: dims.clone(),
        };
        let (a, b) = (take(&a_dims, 0), take(&b_dims, 31));
        check_both!([a, b], [0, 1], |g, v| g.matmul(v[0], v[1]));
    }

    // y = x W^T + b: dx = dy W, dW = dy^T x, db = column sums of dy; with and without b.
    #[test]
    fn linear_with_and_without_bias(
        (n, i, o) in (1usize..4, 1usize..5, 1usize..4),
        with_bias in any::<bool>(),
        seed in prop::collection::vec(-2.0f64..2.0, 64),
    ) {
        let take = |dims: Vec<usize>, off: usize| Input {
            data: (0..dims.iter().product::<usize>()).map(|j| seed[(j + off) % 64]).collect(),
            dims,
        };
        let (x, w, b) = (take(vec![n, i], 0), take(vec![o, i], 17), take(vec![o], 41));
        if with_bias {
            check_both!([x, w, b], [0, 1, 2], |g, v| g.linear(v[0], v[1], Some(v[2])));
        } else {
            check_both!([x, w], [0, 1], |g, v| g.linear(v[0], v[1], None));
        }
    }

    // The four leaf kinds: a parameter's gradient is added into its `Param`, a
    // borrowed input is read in place; y = x W^T + b with each of x, W, b in turn a
    // parameter, a variable and a borrowed constant.
    #[test]
    fn leaf_kinds(
        (n, i, o) in (1usize..4, 1usize..5, 1usize..4),
        seed in prop::collection::vec(-2.0f64..2.0, 64),
    ) {
        let take = |dims: Vec<usize>, off: usize| Input {
            data: (0..dims.iter().product::<usize>()).map(|j| seed[(j + off) % 64]).collect(),
            dims,
        };
        let (x, w, b) = (take(vec![n, i], 0), take(vec![o, i], 17), take(vec![o], 41));
        use Leaf::{InputRef, Param, Variable};
        for kinds in [[InputRef, Param, Variable], [Param, Variable, InputRef], [Variable, InputRef, Param]] {
            check_both!(leaves = kinds; [x.clone(), w.clone(), b.clone()], |g, v| g.linear(v[0], v[1], Some(v[2])));
        }
    }

    // ---- reductions ----------------------------------------------------------------

    // sum / mean along an axis: dx = dy (/ n) spread over the axis; sum_all, mean_all.
    #[test]
    fn sum_mean(a in tensor(-2.0, 2.0), axis in 0usize..3) {
        let axis = axis % a.dims.len();
        check_both!([a.clone()], [0], |g, v| g.sum(v[0], axis));
        check_both!([a.clone()], [0], |g, v| g.mean(v[0], axis));
        check_both!([a.clone()], [0], |g, v| g.sum_all(v[0]));
        check_both!([a], [0], |g, v| g.mean_all(v[0]));
    }

    // max along an axis: the gradient goes to the (unique) maximum.
    #[test]
    fn max_axis(a in dims(1, 3, 4).prop_flat_map(|d| input(d, distinct)), axis in 0usize..3) {
        let axis = axis % a.dims.len();
        check_both!([a], [0], |g, v| g.max(v[0], axis));
    }

    // ---- layout --------------------------------------------------------------------

    // reshape and permute / transpose move the gradient back unchanged.
    #[test]
    fn reshape_permute(a in tensor(-2.0, 2.0), perm_seed in any::<u64>()) {
        let numel = a.data.len();
        check_both!([a.clone()], [0], |g, v| g.reshape(v[0], &[numel]));
        let rank = a.dims.len();
        let mut axes: Vec<usize> = (0..rank).collect();
        let mut s = perm_seed;
        for i in (1..rank).rev() {
            axes.swap(i, (s % (i as u64 + 1)) as usize);
            s /= 7;
        }
        check_both!([a.clone()], [0], |g, v| g.permute(v[0], &axes));
        // x used twice, so the permute backward adds into a gradient that already
        // holds a contribution: y = permute^-1(permute(x)) + x, dy/dx = 2.
        let mut inverse = vec![0; rank];
        for (i, &ax) in axes.iter().enumerate() {
            inverse[ax] = i;
        }
        check_both!([a.clone()], [0], |g, v| {
            let p = g.permute(v[0], &axes)?;
            let q = g.permute(p, &inverse)?;
            g.add(q, v[0])
        });
        check_both!([a], [0], |g, v| g.transpose(v[0], 0, rank - 1));
    }

    // concat splits the gradient; slice pads it with zeros.
    #[test]
    fn concat_slice(
        base in dims(1, 3, 3),
        axis in 0usize..3,
        extra in prop::collection::vec(1usize..4, 3),
        vals in prop::collection::vec(-2.0f64..2.0, 200),
        cut in (0usize..4, 0usize..4),
    ) {
        let axis = axis % base.len();
        let parts: Vec<Input> = extra.iter().enumerate().map(|(p, &e)| {
            let mut d = base.clone();
            d[axis] = e;
            let n: usize = d.iter().product();
            Input { data: vals[p * 50..p * 50 + n].to_vec(), dims: d }
        }).collect();
        check_both!(parts.clone(), [0, 1, 2], |g, v| g.concat(v, axis));
        let len = parts[0].dims[axis];
        let (s, e) = (cut.0 % (len + 1), cut.1 % (len + 1));
        let (s, e) = (s.min(e), s.max(e));
        check_both!([parts[0].clone()], [0], |g, v| g.slice(v[0], axis, s, e));
    }

    // index_select scatters back, adding where an index repeats (embedding lookup).
    #[test]
    fn index_select(a in tensor(-2.0, 2.0), axis in 0usize..3, picks in prop::collection::vec(0usize..16, 1..6)) {
        let axis = axis % a.dims.len();
        let idx: Vec<usize> = picks.iter().map(|p| p % a.dims[axis]).collect();
        check_both!([a], [0], |g, v| g.index_select(v[0], axis, &idx));
    }

    // ---- softmax -------------------------------------------------------------------

    // softmax: dx = y (dy - sum(dy y)); log_softmax: dx = dy - softmax sum(dy).
    #[test]
    fn softmax_log_softmax(a in tensor(-3.0, 3.0)) {
        check_both!([a.clone()], [0], |g, v| g.softmax(v[0]));
        check_both!([a], [0], |g, v| g.log_softmax(v[0]));
    }

    // ---- conv and pooling ----------------------------------------------------------

    // conv2d with and without bias, over stride / padding / dilation.
    #[test]
    fn conv2d(
        (n, ci, co, h, w) in (1usize..3, 1usize..3, 1usize..3, 3usize..6, 3usize..6),
        (kh, kw) in (1usize..4, 1usize..4),
        (stride, pad, dil) in (1usize..3, 0usize..2, 1usize..3),
        vals in prop::collection::vec(-1.0f64..1.0, 200),
        bias in any::<bool>(),
    ) {
        prop_assume!(h + 2 * pad > dil * (kh - 1) && w + 2 * pad > dil * (kw - 1));
        let params = dl_core::conv::Conv2dParams::default()
            .with_stride(stride, stride).with_padding(pad, pad).with_dilation(dil, dil);
        let x = Input { data: vals[..n * ci * h * w].to_vec(), dims: vec![n, ci, h, w] };
        let wt = Input { data: vals[100..100 + co * ci * kh * kw].to_vec(), dims: vec![co, ci, kh, kw] };
        let b = Input { data: vals[190..190 + co].to_vec(), dims: vec![co] };
        if bias {
            check_both!([x, wt, b], [0, 1, 2], |g, v| g.conv2d(v[0], v[1], Some(v[2]), params));
        } else {
            check_both!([x, wt], [0, 1], |g, v| g.conv2d(v[0], v[1], None, params));
        }
    }

    // Grouped conv2d: output channel o, in group k = o / (c_out / groups), sums over
    // that group's c_in / groups input channels only; weight [c_out, c_in / groups,
    // kh, kw]. dx, dW, db are conv2d's within each group.
    #[test]
    fn conv2d_grouped(
        (n, groups, cig, cog) in (1usize..3, 2usize..4, 1usize..3, 1usize..3),
        (h, w, kh, kw) in (3usize..6, 3usize..6, 1usize..4, 1usize..4),
        (stride, pad, dil) in (1usize..3, 0usize..2, 1usize..3),
        vals in prop::collection::vec(-1.0f64..1.0, 500),
        bias in any::<bool>(),
    ) {
        prop_assume!(h + 2 * pad > dil * (kh - 1) && w + 2 * pad > dil * (kw - 1));
        let params = dl_core::conv::Conv2dParams::default()
            .with_stride(stride, stride).with_padding(pad, pad).with_dilation(dil, dil)
            .with_groups(groups);
        let (ci, co) = (groups * cig, groups * cog);
        let x = Input { data: vals[..n * ci * h * w].to_vec(), dims: vec![n, ci, h, w] };
        let wt = Input { data: vals[300..300 + co * cig * kh * kw].to_vec(), dims: vec![co, cig, kh, kw] };
        let b = Input { data: vals[490..490 + co].to_vec(), dims: vec![co] };
        if bias {
            check_both!([x, wt, b], [0, 1, 2], |g, v| g.conv2d(v[0], v[1], Some(v[2]), params));
        } else {
            check_both!([x, wt], [0, 1], |g, v| g.conv2d(v[0], v[1], None, params));
        }
    }

    // Depthwise conv2d (groups = c_in, weight [m c_in, 1, kh, kw]): output channel
    // o = m c + j filters input channel c alone. Stride 1 and padding below the kernel
    // size half the time (dl-core's direct kernels), as MobileNet's 3x3 padding 1.
    #[test]
    fn conv2d_depthwise(
        (n, c, m, h, w) in (1usize..3, 1usize..5, 1usize..3, 3usize..7, 3usize..7),
        (kh, kw) in (1usize..4, 1usize..4),
        (stride, pad, direct) in (1usize..3, 0usize..3, any::<bool>()),
        vals in prop::collection::vec(-1.0f64..1.0, 500),
        bias in any::<bool>(),
    ) {
        let (stride, pad) = if direct { (1, pad % kh.min(kw)) } else { (stride, pad) };
        prop_assume!(h + 2 * pad >= kh && w + 2 * pad >= kw);
        let params = dl_core::conv::Conv2dParams::default()
            .with_stride(stride, stride).with_padding(pad, pad).with_groups(c);
        let x = Input { data: vals[..n * c * h * w].to_vec(), dims: vec![n, c, h, w] };
        let wt = Input { data: vals[300..300 + m * c * kh * kw].to_vec(), dims: vec![m * c, 1, kh, kw] };
        let b = Input { data: vals[480..480 + m * c].to_vec(), dims: vec![m * c] };
        if bias {
            check_both!([x, wt, b], [0, 1, 2], |g, v| g.conv2d(v[0], v[1], Some(v[2]), params));
        } else {
            check_both!([x, wt], [0, 1], |g, v| g.conv2d(v[0], v[1], None, params));
        }
    }

    // max pooling (distinct values: one maximum per window) and average pooling.
    #[test]
    fn pooling(
        (n, c, h, w) in (1usize..3, 1usize..3, 2usize..6, 2usize..6),
        (k, stride, pad) in (1usize..4, 1usize..3, 0usize..2),
        order in Just((0..150usize).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        prop_assume!(pad <= k / 2 && h + 2 * pad >= k && w + 2 * pad >= k);
        let params = dl_core::pool::Pool2dParams::new(k, k).with_stride(stride, stride).with_padding(pad, pad);
        let numel = n * c * h * w;
        let x = Input { data: order[..numel].iter().map(|&i| i as f64 * 0.1 - 5.0).collect(), dims: vec![n, c, h, w] };
        check_both!([x.clone()], [0], |g, v| g.max_pool2d(v[0], params));
        check_both!([x], [0], |g, v| g.avg_pool2d(v[0], params));
    }

    // ---- dropout -------------------------------------------------------------------

    // y = x * mask / (1 - p) with the mask from a fixed seed: dx = dy * mask / (1 - p).
    #[test]
    fn dropout(a in tensor(-2.0, 2.0), p in 0.1f64..0.7, seed in any::<u64>()) {
        check_both!([a], [0], |g, v| {
            let mut rng = dl_core::Rng::seed_from_u64(seed);
            g.dropout(v[0], p, true, &mut rng)
        });
    }

    // ---- normalization -------------------------------------------------------------

    // Batch norm, training (batch statistics) and evaluation (given statistics), with
    // and without affine, on [N, C] and [N, C, H, W].
    #[test]
    fn batch_norm(
        four_d in any::<bool>(),
        (n, c, hw) in (2usize..4, 1usize..4, 1usize..3),
        order in Just((0..80usize).collect::<Vec<_>>()).prop_shuffle(),
        gb in prop::collection::vec(0.5f64..1.5, 8),
        stats in prop::collection::vec(0.2f64..1.5, 8),
    ) {
        let dims = if four_d { vec![n, c, hw, hw + 1] } else { vec![n, c] };
        let numel: usize = dims.iter().product();
        // Distinct values 0.1 apart: no channel is nearly constant (where the
        // normalization is singular and finite differences are meaningless).
        let x = Input { data: order[..numel].iter().map(|&i| i as f64 * 0.1 - 4.0).collect(), dims };
        let gamma = Input { data: gb[..c].to_vec(), dims: vec![c] };
        let beta = Input { data: gb[4..4 + c].to_vec(), dims: vec![c] };
        use dl_autograd::{Affine, BatchNormMode};
        check_both!([x.clone(), gamma.clone(), beta.clone()], [0, 1, 2], |g, v| {
            g.batch_norm(v[0], Some(Affine { gamma: v[1], beta: v[2] }), BatchNormMode::Train, 1e-5)
        });
        check_both!([x.clone()], [0], |g, v| g.batch_norm(v[0], None, BatchNormMode::Train, 1e-5));
        check_both!([x, gamma, beta], [0, 1, 2], |g, v| {
            let rm: Vec<S> = stats[..c].iter().map(|&s| S::from_f64_lossy(s - 0.5)).collect();
            let rv: Vec<S> = stats[4..4 + c].iter().map(|&s| S::from_f64_lossy(s)).collect();
            let mode = BatchNormMode::Eval { running_mean: &rm, running_var: &rv };
            g.batch_norm(v[0], Some(Affine { gamma: v[1], beta: v[2] }), mode, 1e-5)
        });
    }

    // Layer norm over the last axis, with and without affine.
    #[test]
    fn layer_norm(
        (rows, d) in (1usize..4, 2usize..6),
        order in Just((0..24usize).collect::<Vec<_>>()).prop_shuffle(),
        gb in prop::collection::vec(0.5f64..1.5, 12),
    ) {
        // Distinct values: no row is nearly constant (see batch_norm).
        let x = Input { data: order[..rows * d].iter().map(|&i| i as f64 * 0.2 - 2.4).collect(), dims: vec![rows, d] };
        let gamma = Input { data: gb[..d].to_vec(), dims: vec![d] };
        let beta = Input { data: gb[6..6 + d].to_vec(), dims: vec![d] };
        use dl_autograd::Affine;
        check_both!([x.clone(), gamma, beta], [0, 1, 2], |g, v| {
            g.layer_norm(v[0], Some(Affine { gamma: v[1], beta: v[2] }), 1e-5)
        });
        check_both!([x], [0], |g, v| g.layer_norm(v[0], None, 1e-5));
    }

    // ---- losses --------------------------------------------------------------------

    // Cross-entropy with class indices: dx = (softmax - onehot) / N.
    #[test]
    fn cross_entropy(
        (rows, cols) in (1usize..5, 1usize..6),
        vals in prop::collection::vec(-3.0f64..3.0, 30),
        t in prop::collection::vec(0usize..100, 5),
    ) {
        let x = Input { data: vals[..rows * cols].to_vec(), dims: vec![rows, cols] };
        let targets: Vec<usize> = t[..rows].iter().map(|v| v % cols).collect();
        check_both!([x], [0], |g, v| g.cross_entropy(v[0], &targets));
    }

    // Soft cross-entropy against probability rows (softmax of random numbers), with
    // the gradient to both logits and targets.
    #[test]
    fn soft_cross_entropy(
        (rows, cols) in (1usize..5, 1usize..6),
        vals in prop::collection::vec(-3.0f64..3.0, 30),
        raw in prop::collection::vec(-2.0f64..2.0, 30),
    ) {
        let x = Input { data: vals[..rows * cols].to_vec(), dims: vec![rows, cols] };
        let mut probs = Vec::new();
        for r in 0..rows {
            let e: Vec<f64> = raw[r * cols..(r + 1) * cols].iter().map(|v| v.exp()).collect();
            let s: f64 = e.iter().sum();
            probs.extend(e.iter().map(|v| v / s));
        }
        let t = Input { data: probs, dims: vec![rows, cols] };
        check_both!([x.clone(), t], [0, 1], |g, v| g.soft_cross_entropy(v[0], v[1]));
        // One-hot rows: the same gradient as cross-entropy with class indices.
        let hot: Vec<f64> = (0..rows * cols).map(|i| if i % cols == (i / cols) % cols { 1.0 } else { 0.0 }).collect();
        let t = Input { data: hot, dims: vec![rows, cols] };
        check_both!([x, t], [0, 1], |g, v| g.soft_cross_entropy(v[0], v[1]));
    }

    // BCE from logits: dx = (sigmoid(x) - t) / n, dt = -x / n; logits up to +-8.
    #[test]
    fn bce_with_logits(x in tensor(-8.0, 8.0), seed in prop::collection::vec(0.0f64..1.0, 64)) {
        let t = Input { data: seed[..x.data.len()].to_vec(), dims: x.dims.clone() };
        check_both!([x, t], [0, 1], |g, v| g.bce_with_logits(v[0], v[1]));
    }

    // MSE (smooth), MAE (|d| >= 0.2) and Huber with delta 1 (|d| away from 1).
    #[test]
    fn regression_losses(d in dims(1, 3, 4).prop_flat_map(|d| input(d, off_kinks)), base in prop::collection::vec(-1.0f64..1.0, 64)) {
        // pred = target + d, so the residual is d (off every kink).
        let target = Input { data: base[..d.data.len()].to_vec(), dims: d.dims.clone() };
        let pred = Input { data: d.data.iter().zip(&target.data).map(|(r, t)| r + t).collect(), dims: d.dims.clone() };
        check_both!([pred.clone(), target.clone()], [0, 1], |g, v| g.mse(v[0], v[1]));
        check_both!([pred.clone(), target.clone()], [0, 1], |g, v| g.mae(v[0], v[1]));
        check_both!([pred, target], [0, 1], |g, v| g.huber(v[0], v[1], 1.0));
    }
}

/// Shape errors are reported, naming the op and both shapes, instead of panicking.
#[test]
fn shape_errors_name_the_op_and_shapes() {
    let mut g = Graph::<f32>::new();
    let a = g.input(&Tensor::zeros(&[2, 3]).unwrap());
    let b = g.input(&Tensor::zeros(&[4]).unwrap());
    assert_eq!(
        g.add(a, b).unwrap_err().to_string(),
        "add: shapes [2, 3] and [4] are incompatible (broadcasting needs equal sizes or 1)"
    );
    assert_eq!(
        g.mse(a, b).unwrap_err().to_string(),
        "mse: shapes [2, 3] and [4] are incompatible (prediction and target must have equal shapes)"
    );
    let _ = Shape::scalar();
}

/// Every op variant this file answers for (see the top of the file) was on a
/// finite-difference-checked graph, built by each test the table names for it.
#[test]
fn every_op_variant_has_a_finite_difference_check() {
    common::coverage::assert_covered(
        "gradcheck",
        "every_op_variant_has_a_finite_difference_check",
    );
}
