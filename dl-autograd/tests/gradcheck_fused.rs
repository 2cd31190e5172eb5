//! Gradient checks of the two fused ops, `recurrent` (RNN, LSTM, GRU through time)
//! and `self_attention`, by central finite differences in f64 (tight) and f32
//! (loose), with the machinery of `gradcheck.rs` (`common/mod.rs`).
//!
//! Recurrent: every cell, both directions, with and without sequence lengths, from
//! non-zero initial states; the input projection `xw = x W_ih^T + b_ih` is composed
//! in front so the gradient reaches every input of a layer (`x`, `W_ih`, `b_ih`,
//! `W_hh`, `b_hh`, `h0` and the LSTM's `c0`). The loss weighs every row of the
//! output: the step outputs, `h_n` and the LSTM's `c_n`, and separately `c_n` or
//! `h_n` alone. Past a sequence's length the input must get exactly zero gradient
//! and leave the loss unchanged. Truncated BPTT is not checked here: its gradient is
//! by design not the derivative of the loss.
//!
//! Self-attention: the packed `[Q | K | V]` input itself and a whole layer (input
//! and output projections), with no mask, key lengths, causal, and both; hidden keys
//! must get exactly zero gradient and leave the loss unchanged.
//!
//! Tolerances are `common`'s `F64` and `F32` (their reasons are written there),
//! except the ReLU RNN's f32 step ([`F32_RELU`]). Worst errors measured with the
//! default seed: f64 ~1e-8 (bound 1e-6), f32 ~8e-4 (bound 1e-2, the whole layer
//! with both projections; ~4e-4 for the recurrent cells).
//!
//! `fused_ops_have_finite_difference_checks` requires these tests to have really
//! put `Recurrent` and `SelfAttention` on checked graphs (see `common/coverage.rs`).

mod common;

use common::{check_both, Input, Tol, F32, F64};
use dl_autograd::{AttentionSpec, Graph, RecurrentCell, RecurrentInputs, RecurrentSpec, Var};
use dl_core::{Scalar, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use RecurrentCell::{Gru, Lstm, RnnRelu, RnnTanh};

/// Cases per property: each case checks several settings (directions, masks) of
/// every input element, so fewer cases than `gradcheck.rs` cover the sizes.
const CASES: u32 = 32;

// ---- recurrent ---------------------------------------------------------------------

/// Sizes of a recurrent case: batch, time steps, input features, hidden units.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    b: usize,
    t: usize,
    i: usize,
    h: usize,
}

/// One recurrent setting: the cell, direction, lengths, and the form of the layer
/// (`xw` as `[B*T, G*H]` rows or `[B, T, G*H]`; with or without `b_hh`).
#[derive(Clone, Debug)]
struct Layer {
    cell: RecurrentCell,
    sizes: Sizes,
    reverse: bool,
    lengths: Option<Vec<usize>>,
    three_d: bool,
    bias_hh: bool,
}

impl Layer {
    /// `[x, W_ih, b_ih, W_hh, b_hh, h0, (c0)]`: weights in `[-0.8, 0.8)`, `x` in
    /// `[-1, 1)` and the initial states at least 0.2 from zero.
    fn inputs(&self, vals: &[f64], states: &[f64]) -> Vec<Input> {
        let Sizes { b, t, i, h } = self.sizes;
        let gh = self.cell.gates() * h;
        let mut at = 0;
        let mut take = |dims: Vec<usize>, scale: f64| {
            let n: usize = dims.iter().product();
            let data = vals[at..at + n].iter().map(|v| v * scale).collect();
            at += n;
            Input { data, dims }
        };
        let mut out = vec![
            take(vec![b, t, i], 1.0),
            take(vec![gh, i], 0.8),
            take(vec![gh], 0.8),
            take(vec![gh, h], 0.8),
            take(vec![gh], 0.8),
        ];
        let n = b * h;
        out.push(Input {
            data: states[..n].to_vec(),
            dims: vec![b, h],
        });
        if self.cell == Lstm {
            out.push(Input {
                data: states[n..2 * n].to_vec(),
                dims: vec![b, h],
            });
        }
        out
    }

    /// The layer on the inputs of [`Layer::inputs`]: `[B, T + S, H]`.
    fn build<T: Scalar>(&self, g: &mut Graph<'_, T>, v: &[Var]) -> dl_autograd::Result<Var> {
        let Sizes { b, t, i, h } = self.sizes;
        let x = g.reshape(v[0], &[b * t, i])?;
        let mut xw = g.linear(x, v[1], Some(v[2]))?;
        if self.three_d {
            xw = g.reshape(xw, &[b, t, self.cell.gates() * h])?;
        }
        let spec = RecurrentSpec {
            cell: self.cell,
            reverse: self.reverse,
            truncate: None,
        };
        let inputs = RecurrentInputs {
            xw,
            w_hh: v[3],
            b_hh: self.bias_hh.then_some(v[4]),
            h0: v[5],
            c0: (self.cell == Lstm).then(|| v[6]),
        };
        g.recurrent(spec, inputs, self.lengths.as_deref())
    }

    /// Every pre-activation `xw_t + h_{t-1} W_hh^T + b_hh` of the ReLU RNN, computed
    /// here in f64 (only to keep the inputs off ReLU's kink).
    fn relu_preactivations(&self, inputs: &[Input]) -> Vec<f64> {
        let Sizes { b, t, i, h } = self.sizes;
        let [x, w_ih, b_ih, w_hh, b_hh, h0] = &inputs[..6] else {
            unreachable!()
        };
        let mut pre = Vec::new();
        for bi in 0..b {
            let mut state = h0.data[bi * h..(bi + 1) * h].to_vec();
            let len = self.lengths.as_ref().map_or(t, |l| l[bi]);
            for k in 0..len {
                let step = if self.reverse { len - 1 - k } else { k };
                let xt = &x.data[(bi * t + step) * i..][..i];
                let next: Vec<f64> = (0..h)
                    .map(|j| {
                        let mut p = b_ih.data[j];
                        p += (0..i).map(|q| w_ih.data[j * i + q] * xt[q]).sum::<f64>();
                        p += (0..h).map(|q| w_hh.data[j * h + q] * state[q]).sum::<f64>();
                        if self.bias_hh {
                            p += b_hh.data[j];
                        }
                        p
                    })
                    .collect();
                pre.extend_from_slice(&next);
                state = next.iter().map(|p| p.max(0.0)).collect();
            }
        }
        pre
    }
}

/// A drawn recurrent case: sizes, lengths (each in `0..=T`), the layer's form
/// (`xw` 3-D, `b_hh` present), values, and initial states at least 0.2 from zero.
#[derive(Clone, Debug)]
struct LayerCase {
    sizes: Sizes,
    lengths: Vec<usize>,
    three_d: bool,
    bias_hh: bool,
    vals: Vec<f64>,
    states: Vec<f64>,
}

impl LayerCase {
    fn layer(&self, cell: RecurrentCell, reverse: bool, lengths: Option<Vec<usize>>) -> Layer {
        Layer {
            cell,
            sizes: self.sizes,
            reverse,
            lengths,
            three_d: self.three_d,
            bias_hh: self.bias_hh,
        }
    }
}

fn layer_case() -> impl Strategy<Value = LayerCase> {
    (1usize..=3, 1usize..=4, 1usize..=3, 1usize..=3).prop_flat_map(|(b, t, i, h)| {
        (
            prop::collection::vec(0..=t, b),
            (any::<bool>(), any::<bool>()),
            prop::collection::vec(-1.0f64..1.0, 200),
            prop::collection::vec(prop_oneof![-1.0f64..-0.2, 0.2f64..1.0], 2 * b * h),
        )
            .prop_map(
                move |(lengths, (three_d, bias_hh), vals, states)| LayerCase {
                    sizes: Sizes { b, t, i, h },
                    lengths,
                    three_d,
                    bias_hh,
                    vals,
                    states,
                },
            )
    })
}

/// Checks every input of `cell`'s layer in both directions, without and with
/// lengths, by finite differences of the loss `out` makes of the layer's output.
/// `tol` is (f64, f32); `off_kink` rejects inputs too close to a kink.
fn check_layer(
    cell: RecurrentCell,
    case: &LayerCase,
    tol: (Tol, Tol),
    out: Readout,
    off_kink: &dyn Fn(&Layer, &[Input]) -> bool,
) -> Result<(), TestCaseError> {
    for reverse in [false, true] {
        for lengths in [None, Some(case.lengths.clone())] {
            let layer = case.layer(cell, reverse, lengths);
            let inputs = layer.inputs(&case.vals, &case.states);
            prop_assume!(off_kink(&layer, &inputs));
            let all: Vec<usize> = (0..inputs.len()).collect();
            check_both!(tol = (tol.0, tol.1); inputs, all, |g, v| {
                let y = layer.build(g, v)?;
                out.select(g, y, &layer)
            });
        }
    }
    Ok(())
}

/// Which rows of the `[B, T + S, H]` output the loss weighs.
#[derive(Clone, Copy, Debug)]
enum Readout {
    /// All of them: every step's output, `h_n` and (LSTM) `c_n`.
    All,
    /// `h_n` alone.
    FinalHidden,
    /// `c_n` alone (LSTM).
    FinalCell,
}

impl Readout {
    fn select<T: Scalar>(
        self,
        g: &mut Graph<'_, T>,
        y: Var,
        layer: &Layer,
    ) -> dl_autograd::Result<Var> {
        let t = layer.sizes.t;
        match self {
            Readout::All => Ok(y),
            Readout::FinalHidden => g.slice(y, 1, t, t + 1),
            Readout::FinalCell => g.slice(y, 1, t + 1, t + 2),
        }
    }
}

fn smooth(_: &Layer, _: &[Input]) -> bool {
    true
}

/// The ReLU RNN's tolerance in f32: the step is 3e-3 rather than 1e-2 so that a
/// perturbed input moves no pre-activation across ReLU's kink (every one is kept
/// 0.03 from it, and a step moves one by at most ~5 eps with these weights); the
/// loss's f32 rounding (~1e-6) over the step 6e-3 is ~2e-4, well inside 1e-2.
const F32_RELU: Tol = Tol {
    eps: 3e-3,
    max_err: 1e-2,
};

/// Keeps every ReLU pre-activation 0.03 from 0 (see [`F32_RELU`]).
fn off_relu_kink(layer: &Layer, inputs: &[Input]) -> bool {
    layer
        .relu_preactivations(inputs)
        .iter()
        .all(|p| p.abs() > 0.03)
}

/// The `[B*T, G*H]` rows of `x` past each sequence's length, as element ranges of `x`
/// (`[B, T, I]`).
fn padded_x(sizes: Sizes, lengths: &[usize]) -> Vec<std::ops::Range<usize>> {
    let Sizes { t, i, .. } = sizes;
    lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| (b * t + len) * i..(b + 1) * t * i)
        .collect()
}

/// Past its length a sequence's input gets exactly zero gradient, and changing it
/// changes neither the loss nor any output bit (its output rows stay exactly zero).
fn check_padding<T: Scalar>(layer: &Layer, inputs: &[Input]) -> Result<(), TestCaseError> {
    let f = |g: &mut Graph<'_, T>, v: &[Var]| layer.build(g, v);
    let all: Vec<usize> = (0..inputs.len()).collect();
    let grads = common::analytic::<T>(inputs, &common::leaves(inputs.len(), &all), &f)?;
    let dx = grads[0].as_ref().unwrap();
    let lengths = layer.lengths.as_ref().unwrap();
    let padded = padded_x(layer.sizes, lengths);
    for r in &padded {
        prop_assert!(
            dx[r.clone()].iter().all(|&d| d == 0.0),
            "{}: padded x got gradient {:?}",
            T::NAME,
            &dx[r.clone()]
        );
    }
    let run = |inputs: &[Input]| -> Vec<f64> {
        let tensors: Vec<Tensor<T>> = inputs.iter().map(Input::tensor).collect();
        let mut g = Graph::<T>::new_no_grad();
        let vars: Vec<Var> = tensors.iter().map(|t| g.input(t)).collect();
        let y = layer.build(&mut g, &vars).unwrap();
        let out = g
            .value(y)
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_f64_lossless());
        out.collect()
    };
    let before = run(inputs);
    let mut changed = inputs.to_vec();
    for r in &padded {
        for v in &mut changed[0].data[r.clone()] {
            *v = 3.0 - *v;
        }
    }
    prop_assert_eq!(
        &before,
        &run(&changed),
        "{}: padding changed the output",
        T::NAME
    );
    let Sizes { t, h, .. } = layer.sizes;
    let rows = t + layer.cell.states();
    for (b, &len) in lengths.iter().enumerate() {
        let tail = &before[(b * rows + len) * h..(b * rows + t) * h];
        prop_assert!(
            tail.iter().all(|&v| v == 0.0),
            "{}: padded output {tail:?}",
            T::NAME
        );
    }
    Ok(())
}

// ---- self-attention -----------------------------------------------------------------

/// Sizes of an attention case: batch, time steps, heads, width per head, and the
/// input width of the layer form.
#[derive(Clone, Copy, Debug)]
struct AttnSizes {
    b: usize,
    t: usize,
    heads: usize,
    d: usize,
    din: usize,
}

impl AttnSizes {
    fn e(self) -> usize {
        self.heads * self.d
    }

    fn spec(self, causal: bool) -> AttentionSpec {
        AttentionSpec {
            batch: self.b,
            heads: self.heads,
            causal,
        }
    }
}

/// Sizes, key lengths (each in `1..=T`) and values.
fn attention_case() -> impl Strategy<Value = (AttnSizes, Vec<usize>, Vec<f64>)> {
    (1usize..=3, 1usize..=4, 1usize..=2, 1usize..=3, 1usize..=3).prop_flat_map(
        |(b, t, heads, d, din)| {
            (
                Just(AttnSizes {
                    b,
                    t,
                    heads,
                    d,
                    din,
                }),
                prop::collection::vec(1..=t, b),
                prop::collection::vec(-1.5f64..1.5, 300),
            )
        },
    )
}

/// The four masks: none, key lengths, causal, both.
fn masks(lengths: &[usize]) -> [(bool, Option<Vec<usize>>); 4] {
    [
        (false, None),
        (false, Some(lengths.to_vec())),
        (true, None),
        (true, Some(lengths.to_vec())),
    ]
}

fn take(vals: &[f64], at: usize, dims: Vec<usize>) -> Input {
    let n: usize = dims.iter().product();
    Input {
        data: vals[at..at + n].to_vec(),
        dims,
    }
}

/// Hidden keys (rows at or past a key length) get exactly zero gradient in their K
/// and V columns, and changing those columns changes no output bit; with `causal`
/// also, the last row's K and V change no earlier query's output.
fn check_hidden_keys<T: Scalar>(
    s: AttnSizes,
    causal: bool,
    lengths: &[usize],
    qkv: &Input,
) -> Result<(), TestCaseError> {
    let (t, e) = (s.t, s.e());
    let spec = s.spec(causal);
    let f = |g: &mut Graph<'_, T>, v: &[Var]| g.self_attention(v[0], spec, Some(lengths));
    let grads = common::analytic::<T>(std::slice::from_ref(qkv), &[common::Leaf::Variable], &f)?;
    let dx = grads[0].as_ref().unwrap();
    // K and V columns of row r: e..3e.
    let kv = |r: usize| r * 3 * e + e..(r + 1) * 3 * e;
    let hidden: Vec<usize> = (0..s.b)
        .flat_map(|b| (lengths[b]..t).map(move |i| b * t + i))
        .collect();
    for &r in &hidden {
        prop_assert!(
            dx[kv(r)].iter().all(|&d| d == 0.0),
            "{}: hidden key row {r} got gradient {:?}",
            T::NAME,
            &dx[kv(r)]
        );
    }
    let run = |x: &Input| -> Vec<f64> {
        let mut g = Graph::<T>::new_no_grad();
        let v = g.input(&x.tensor());
        let y = g.self_attention(v, spec, Some(lengths)).unwrap();
        g.value(y)
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_f64_lossless())
            .collect()
    };
    let before = run(qkv);
    let mut changed = qkv.clone();
    for &r in &hidden {
        for v in &mut changed.data[kv(r)] {
            *v = 2.0 - *v;
        }
    }
    prop_assert_eq!(
        &before,
        &run(&changed),
        "{}: hidden keys changed the output",
        T::NAME
    );
    if causal {
        // The last row of each batch entry: its key and value are future to every
        // other query.
        let mut changed = qkv.clone();
        for b in 0..s.b {
            for v in &mut changed.data[kv(b * t + t - 1)] {
                *v = 2.0 - *v;
            }
        }
        let after = run(&changed);
        for b in 0..s.b {
            let earlier = b * t * e..(b * t + t - 1) * e;
            prop_assert_eq!(
                &before[earlier.clone()],
                &after[earlier],
                "{}: a future key changed an earlier output",
                T::NAME
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(common::config(CASES))]

    // h_t = tanh(xw_t + h_{t-1} W_hh^T + b_hh), xw = x W_ih^T + b_ih.
    #[test]
    fn rnn_tanh(case in layer_case()) {
        check_layer(RnnTanh, &case, (F64, F32), Readout::All, &smooth)?;
    }

    // h_t = max(0, pre_t), inputs kept so every pre_t is 0.03 from the kink.
    #[test]
    fn rnn_relu(case in layer_case()) {
        check_layer(RnnRelu, &case, (F64, F32_RELU), Readout::All, &off_relu_kink)?;
    }

    // i, f, g, o = sigma, sigma, tanh, sigma of (xw_t + h_{t-1} W_hh^T + b_hh);
    // c_t = f c_{t-1} + i g, h_t = o tanh(c_t); the loss weighs outputs, h_n and c_n,
    // and the gradient reaches c0 through every f.
    #[test]
    fn lstm(case in layer_case()) {
        check_layer(Lstm, &case, (F64, F32), Readout::All, &smooth)?;
    }

    // A loss of c_n alone (dL/dc_n seeds the cell's backward with no dh), and of h_n
    // alone.
    #[test]
    fn lstm_final_states(case in layer_case()) {
        check_layer(Lstm, &case, (F64, F32), Readout::FinalCell, &smooth)?;
        check_layer(Lstm, &case, (F64, F32), Readout::FinalHidden, &smooth)?;
    }

    // r, z = sigma(xw_t + h W_hh^T + b_hh) (first two blocks);
    // n = tanh(xw_n + r (h W_hn^T + b_hn)); h_t = (1 - z) n + z h_{t-1}.
    #[test]
    fn gru(case in layer_case()) {
        check_layer(Gru, &case, (F64, F32), Readout::All, &smooth)?;
    }

    // Every cell, both directions: padding is inert (see `check_padding`).
    #[test]
    fn recurrent_padding(case in layer_case()) {
        for cell in [RnnTanh, RnnRelu, Lstm, Gru] {
            for reverse in [false, true] {
                let layer = case.layer(cell, reverse, Some(case.lengths.clone()));
                let inputs = layer.inputs(&case.vals, &case.states);
                check_padding::<f64>(&layer, &inputs)?;
                check_padding::<f32>(&layer, &inputs)?;
            }
        }
    }

    // P = softmax(Q K^T / sqrt(d) + mask), O = P V per head, on the packed
    // [Q | K | V]: every element of Q, K and V, under each of the four masks.
    #[test]
    fn self_attention_qkv((s, lengths, vals) in attention_case()) {
        let qkv = take(&vals, 0, vec![s.b * s.t, 3 * s.e()]);
        for (causal, len) in masks(&lengths) {
            let spec = s.spec(causal);
            check_both!([qkv.clone()], [0], |g, v| g.self_attention(v[0], spec, len.as_deref()));
        }
    }

    // A whole layer: qkv = x W_qkv^T + b_qkv, y = attention(qkv) W_o^T + b_o; the
    // gradient to x and every projection weight and bias, under each mask.
    #[test]
    fn self_attention_layer((s, lengths, vals) in attention_case()) {
        let (n, e, din) = (s.b * s.t, s.e(), s.din);
        let inputs = [
            take(&vals, 0, vec![n, din]),
            take(&vals, 40, vec![3 * e, din]),
            take(&vals, 100, vec![3 * e]),
            take(&vals, 120, vec![e, e]),
            take(&vals, 160, vec![e]),
        ];
        for (causal, len) in masks(&lengths) {
            let spec = s.spec(causal);
            check_both!(inputs.clone(), [0, 1, 2, 3, 4], |g, v| {
                let qkv = g.linear(v[0], v[1], Some(v[2]))?;
                let o = g.self_attention(qkv, spec, len.as_deref())?;
                g.linear(o, v[3], Some(v[4]))
            });
        }
    }

    // Hidden keys are inert, with and without causal (see `check_hidden_keys`).
    #[test]
    fn self_attention_padding((s, lengths, vals) in attention_case()) {
        let qkv = take(&vals, 0, vec![s.b * s.t, 3 * s.e()]);
        for causal in [false, true] {
            check_hidden_keys::<f64>(s, causal, &lengths, &qkv)?;
            check_hidden_keys::<f32>(s, causal, &lengths, &qkv)?;
        }
    }
}

/// `Recurrent` and `SelfAttention` were on finite-difference-checked graphs, built
/// by each test `common/coverage.rs` names for them.
#[test]
fn fused_ops_have_finite_difference_checks() {
    common::coverage::assert_covered("gradcheck_fused", "fused_ops_have_finite_difference_checks");
}
