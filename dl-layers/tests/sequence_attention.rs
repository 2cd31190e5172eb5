//! Attention and transformer layers: parity with PyTorch's nn.MultiheadAttention and
//! nn.TransformerEncoderLayer(norm_first=True) (outputs, attention weights, input and
//! weight gradients) from `tests/reference/sequence_reference.json` (made by
//! `tests/reference/make_sequence_reference.py`); central finite-difference gradient
//! checks (f64) of multi-head attention with masks; embedding, positional encoding
//! and causality checks.

use dl_autograd::{Graph, ParamSet, Var};
use dl_core::{Rng, Tensor};
use dl_layers::*;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/sequence_reference.json")).unwrap()
}

fn tensor(v: &Value) -> Tensor<f64> {
    let dims: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect();
    Tensor::from_vec(data, &dims).unwrap()
}

fn usizes(v: &Value) -> Option<Vec<usize>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_u64().unwrap() as usize).collect())
}

fn assert_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: got {a}, PyTorch {b}");
    }
}

/// Copies PyTorch's state dict into the model by name; every name must be used.
fn load(model: &mut dyn Module<f64>, params: &Value) {
    let mut loaded = 0;
    model.visit_mut(&mut Path::new(), &mut |name, e| {
        let t = tensor(&params[name]);
        if let EntryMut::Param(p) = e {
            p.set_value(t).unwrap();
        }
        loaded += 1;
    });
    assert_eq!(loaded, params.as_object().unwrap().len());
}

fn check_grads(what: &str, model: &dyn Module<f64>, grads: &Value) {
    let mut n = 0;
    model.visit(&mut Path::new(), &mut |name, e| {
        if let Entry::Param(p) = e {
            assert_close(
                &format!("{what} d{name}"),
                &p.grad(),
                &tensor(&grads[name]),
                1e-10,
            );
            n += 1;
        }
    });
    assert_eq!(n, grads.as_object().unwrap().len());
}

fn weighted_sum(g: &mut Graph<'_, f64>, y: Var, w: &Tensor<f64>) -> Var {
    let wv = g.input(w);
    let p = g.mul(y, wv).unwrap();
    g.sum_all(p).unwrap()
}

fn check_mha_case(name: &str) {
    let r = reference();
    let c = &r["cases"][name];
    let (e, h) = (
        c["embed"].as_u64().unwrap() as usize,
        c["heads"].as_u64().unwrap() as usize,
    );
    let causal = c["causal"].as_bool().unwrap();
    let key_lengths = usizes(&c["key_lengths"]);
    let mut mha = MultiheadAttention::<f64>::new(e, h, &mut Rng::seed_from_u64(0)).unwrap();
    load(&mut mha, &c["params"]);
    let mut g = Graph::new();
    let q = g.variable(&tensor(&c["q"]));
    let (k, v) = if causal {
        (q, q)
    } else {
        (g.variable(&tensor(&c["k"])), g.variable(&tensor(&c["v"])))
    };
    let mask = AttentionMask {
        causal,
        key_lengths: key_lengths.as_deref(),
    };
    let (out, weights) = mha.attend(&mut g, q, k, v, &mask).unwrap();
    assert_close(
        &format!("{name} out"),
        g.value(out).unwrap(),
        &tensor(&c["out"]),
        1e-10,
    );
    assert_close(
        &format!("{name} weights"),
        g.value(weights).unwrap(),
        &tensor(&c["weights"]),
        1e-10,
    );
    let loss = weighted_sum(&mut g, out, &tensor(&c["w_out"]));
    g.backward(loss).unwrap();
    assert_close(
        &format!("{name} dq"),
        g.grad(q).unwrap(),
        &tensor(&c["dq"]),
        1e-10,
    );
    if !causal {
        assert_close(
            &format!("{name} dk"),
            g.grad(k).unwrap(),
            &tensor(&c["dk"]),
            1e-10,
        );
        assert_close(
            &format!("{name} dv"),
            g.grad(v).unwrap(),
            &tensor(&c["dv"]),
            1e-10,
        );
    }
    drop(g);
    check_grads(name, &mha, &c["grads"]);
}

#[test]
fn causal_self_attention_matches_pytorch() {
    check_mha_case("mha_causal_self");
}

#[test]
fn cross_attention_with_key_padding_matches_pytorch() {
    check_mha_case("mha_cross_padded");
}

#[test]
fn pre_norm_encoder_block_with_padding_matches_pytorch() {
    let r = reference();
    let c = &r["cases"]["encoder_block_pre_norm"];
    let cfg = TransformerConfig::new(8, 2, 16, 1);
    let mut block = EncoderBlock::<f64>::new(&cfg, &mut Rng::seed_from_u64(0)).unwrap();
    load(&mut block, &c["params"]);
    let lengths = usizes(&c["key_lengths"]).unwrap();
    let mut g = Graph::new();
    let x = g.variable(&tensor(&c["x"]));
    let mask = AttentionMask {
        causal: false,
        key_lengths: Some(&lengths),
    };
    let y = block
        .forward_masked(&mut g, x, &mask, &mut Ctx::eval())
        .unwrap();
    assert_close("block out", g.value(y).unwrap(), &tensor(&c["out"]), 1e-10);
    let loss = weighted_sum(&mut g, y, &tensor(&c["w_out"]));
    g.backward(loss).unwrap();
    assert_close("block dx", g.grad(x).unwrap(), &tensor(&c["dx"]), 1e-10);
    drop(g);
    check_grads("block", &block, &c["grads"]);
}

// ---------------------------------------------------------------------------------
// Gradient check of multi-head attention: L = sum(w * MHA(q, k, v)) with a causal
// mask (self-attention) and a key padding mask (cross-attention).
// ---------------------------------------------------------------------------------

fn close(fd: f64, an: f64) -> bool {
    (fd - an).abs() <= 1e-5 + 1e-3 * fd.abs()
}

fn mha_loss(
    mha: &MultiheadAttention<f64>,
    inputs: &[Tensor<f64>; 3],
    w: &Tensor<f64>,
    mask: &AttentionMask<'_>,
    self_attn: bool,
) -> f64 {
    let mut g = Graph::new_no_grad();
    let q = g.input(&inputs[0]);
    let (k, v) = if self_attn {
        (q, q)
    } else {
        (g.input(&inputs[1]), g.input(&inputs[2]))
    };
    let (y, _) = mha.attend(&mut g, q, k, v, mask).unwrap();
    let l = weighted_sum(&mut g, y, w);
    g.value(l).unwrap().data()[0]
}

fn gradcheck_mha(self_attn: bool, key_lengths: Option<Vec<usize>>, seed: u64) {
    let (b, tq, tk, e, h) = (2, 3, if self_attn { 3 } else { 4 }, 6, 2);
    let mut rng = Rng::seed_from_u64(seed);
    let mut mha = MultiheadAttention::<f64>::new(e, h, &mut rng).unwrap();
    // Nonzero biases so their gradients are exercised.
    mha.for_each_param(&mut |p| {
        if p.value().rank() == 1 {
            p.value_mut()
                .iter_mut()
                .for_each(|v| *v = rng.normal(0.0, 0.3));
        }
    });
    let inputs = [
        Tensor::rand_normal(&[b, tq, e], 0.0, 1.0, &mut rng).unwrap(),
        Tensor::rand_normal(&[b, tk, e], 0.0, 1.0, &mut rng).unwrap(),
        Tensor::rand_normal(&[b, tk, e], 0.0, 1.0, &mut rng).unwrap(),
    ];
    let w = Tensor::rand_normal(&[b, tq, e], 0.0, 1.0, &mut rng).unwrap();
    let mask = AttentionMask {
        causal: self_attn,
        key_lengths: key_lengths.as_deref(),
    };
    let mut g = Graph::new();
    let q = g.variable(&inputs[0]);
    let (k, v) = if self_attn {
        (q, q)
    } else {
        (g.variable(&inputs[1]), g.variable(&inputs[2]))
    };
    let (y, _) = mha.attend(&mut g, q, k, v, &mask).unwrap();
    let l = weighted_sum(&mut g, y, &w);
    g.backward(l).unwrap();
    let n_in = if self_attn { 1 } else { 3 };
    let analytic: Vec<Tensor<f64>> = [q, k, v][..n_in]
        .iter()
        .map(|&x| g.grad(x).unwrap().clone())
        .collect();
    drop(g);
    let eps = 1e-6;
    for (which, grad) in analytic.iter().enumerate() {
        for i in 0..grad.numel() {
            let (mut p, mut m) = (inputs.clone(), inputs.clone());
            p[which].data_mut()[i] += eps;
            m[which].data_mut()[i] -= eps;
            let fd = (mha_loss(&mha, &p, &w, &mask, self_attn)
                - mha_loss(&mha, &m, &w, &mask, self_attn))
                / (2.0 * eps);
            assert!(
                close(fd, grad.data()[i]),
                "input {which}[{i}]: fd {fd}, analytic {}",
                grad.data()[i]
            );
        }
    }
    let mut param_grads = Vec::new();
    mha.for_each_param(&mut |p| param_grads.push(p.grad().data().to_vec()));
    for (pi, pg) in param_grads.iter().enumerate() {
        for (i, &an) in pg.iter().enumerate() {
            let shift = |mha: &mut MultiheadAttention<f64>, d: f64| {
                let mut idx = 0;
                mha.for_each_param(&mut |p| {
                    if idx == pi {
                        p.value_mut()[i] += d;
                    }
                    idx += 1;
                });
            };
            shift(&mut mha, eps);
            let lp = mha_loss(&mha, &inputs, &w, &mask, self_attn);
            shift(&mut mha, -2.0 * eps);
            let lm = mha_loss(&mha, &inputs, &w, &mask, self_attn);
            shift(&mut mha, eps);
            let fd = (lp - lm) / (2.0 * eps);
            assert!(close(fd, an), "param {pi}[{i}]: fd {fd}, analytic {an}");
        }
    }
}

#[test]
fn causal_self_attention_gradients_match_finite_differences() {
    gradcheck_mha(true, None, 1);
}

#[test]
fn padded_cross_attention_gradients_match_finite_differences() {
    gradcheck_mha(false, Some(vec![4, 2]), 2);
}

/// Padded keys get exactly zero weight; causal rows sum to one over the past only.
#[test]
fn masks_zero_the_weights_they_should() {
    let mut rng = Rng::seed_from_u64(3);
    let mha = MultiheadAttention::<f64>::new(4, 2, &mut rng).unwrap();
    let x = Tensor::rand_normal(&[2, 4, 4], 0.0, 1.0, &mut rng).unwrap();
    let mut g = Graph::new();
    let xv = g.input(&x);
    let lengths = [4, 2];
    let mask = AttentionMask {
        causal: true,
        key_lengths: Some(&lengths),
    };
    let (_, w) = mha.attend(&mut g, xv, xv, xv, &mask).unwrap();
    let w = g.value(w).unwrap();
    for (b, &len) in lengths.iter().enumerate() {
        for i in 0..4 {
            let row = &w.data()[(b * 4 + i) * 4..(b * 4 + i + 1) * 4];
            let allowed = (i + 1).min(len);
            assert!((row[..allowed].iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(row[allowed..].iter().all(|&v| v == 0.0), "{row:?}");
        }
    }
}

/// Changing a future token leaves every earlier position's logits unchanged.
#[test]
fn causal_transformer_never_looks_ahead() {
    let cfg = TransformerConfig::new(8, 2, 16, 2);
    let lm = CausalTransformer::<f64>::new(cfg, 7, 6, &mut Rng::seed_from_u64(4)).unwrap();
    let run = |ids: &[usize]| {
        let mut g = Graph::new_no_grad();
        let y = lm.logits(&mut g, ids, 1, 6, &mut Ctx::eval()).unwrap();
        g.value(y).unwrap().clone()
    };
    let a = run(&[1, 2, 3, 4, 5, 6]);
    let b = run(&[1, 2, 3, 0, 0, 0]);
    assert_eq!(a.data()[..3 * 7], b.data()[..3 * 7]);
    assert_ne!(a.data()[3 * 7..4 * 7], b.data()[3 * 7..4 * 7]);
}

/// An embedding's gradient adds up over repeated tokens; unused rows get zero.
#[test]
fn embedding_gradient_scatters_into_rows() {
    let emb = Embedding::<f64>::new(5, 3, &mut Rng::seed_from_u64(0)).unwrap();
    let mut g = Graph::new();
    let x = emb.lookup(&mut g, &[1, 3, 1, 1], &[2, 2]).unwrap();
    // L = sum(x * w), w = 1, 2, ..., 12: dW[row] = sum of w over that row's uses.
    let w = Tensor::from_fn(&[2, 2, 3], |i| (i + 1) as f64).unwrap();
    let l = weighted_sum(&mut g, x, &w);
    g.backward(l).unwrap();
    drop(g);
    let dw = emb.weight.grad();
    // Row 1 at positions 0, 2, 3: (1+7+10, 2+8+11, 3+9+12); row 3 at position 1.
    let want = [
        0.0, 0.0, 0.0, 18.0, 21.0, 24.0, 0.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(dw.data(), &want);
    let mut g = Graph::new();
    assert!(emb.lookup(&mut g, &[5], &[1]).is_err());
    let bad = g.input(&Tensor::from_array([0.5]));
    assert!(emb.forward(&mut g, bad, &mut Ctx::eval()).is_err());
}

#[test]
fn sinusoidal_encoding_matches_the_formula() {
    let pe = PositionalEncoding::<f64>::sinusoidal(50, 6).unwrap();
    let t = pe.table();
    for pos in [0usize, 1, 7, 49] {
        for i in 0..3 {
            let angle = pos as f64 / 10000f64.powf(2.0 * i as f64 / 6.0);
            assert!((t.data()[pos * 6 + 2 * i] - angle.sin()).abs() < 1e-12);
            assert!((t.data()[pos * 6 + 2 * i + 1] - angle.cos()).abs() < 1e-12);
        }
    }
    let mut g = Graph::new();
    let x = g.input(&Tensor::zeros(&[2, 51, 6]).unwrap());
    assert!(pe.forward(&mut g, x, &mut Ctx::eval()).is_err());
}

#[test]
fn bad_attention_settings_are_named_errors() {
    let mut rng = Rng::seed_from_u64(0);
    let e = MultiheadAttention::<f32>::new(10, 3, &mut rng).unwrap_err();
    assert_eq!(
        e.to_string(),
        "MultiheadAttention: invalid heads = 3, valid range: >= 1 and dividing embed"
    );
    let e = TransformerConfig::new(8, 2, 16, 1)
        .dropout(1.0)
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Transformer: invalid dropout = 1, valid range: [0, 1)"
    );
    let mask = AttentionMask {
        causal: false,
        key_lengths: Some(&[3, 9]),
    };
    assert!(mask.build::<f32>(2, 1, 4, 5).is_err());
}

/// The fused self-attention (`self_attend_rows`, used by the transformer blocks)
/// against the composed path (`attend_ctx`: projections, head permutes, batched
/// products, additive mask, softmax), with a causal mask and padded keys: outputs,
/// input gradients and every parameter gradient agree to 1e-12 (f64).
#[test]
fn fused_self_attention_matches_the_composed_path() {
    let mut rng = Rng::seed_from_u64(21);
    let (b, t, e, heads) = (3, 5, 8, 2);
    let x = Tensor::<f64>::rand_normal(&[b, t, e], 0.0, 1.0, &mut rng).unwrap();
    let up = Tensor::<f64>::rand_normal(&[b * t, e], 0.0, 1.0, &mut rng).unwrap();
    let lengths = [5, 2, 4];
    for causal in [false, true] {
        let mask = AttentionMask {
            causal,
            key_lengths: Some(&lengths),
        };
        let mut runs = Vec::new();
        for fused in [false, true] {
            let mut mha =
                MultiheadAttention::<f64>::new(e, heads, &mut Rng::seed_from_u64(5)).unwrap();
            // Non-zero biases, so their gradients are exercised too.
            mha.in_proj_bias
                .value_mut()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = 0.01 * i as f64);
            let (y, dx) = {
                let mut g = Graph::new();
                let xv = g.variable(&x);
                let flat = g.reshape(xv, &[b * t, e]).unwrap();
                let y = if fused {
                    mha.self_attend_rows(&mut g, flat, b, &mask, &mut Ctx::eval())
                        .unwrap()
                } else {
                    let (o, _) = mha.attend(&mut g, xv, xv, xv, &mask).unwrap();
                    g.reshape(o, &[b * t, e]).unwrap()
                };
                let w = g.input(&up);
                let prod = g.mul(y, w).unwrap();
                let loss = g.sum_all(prod).unwrap();
                g.backward(loss).unwrap();
                (g.value(y).unwrap().clone(), g.grad(xv).unwrap().clone())
            };
            let mut pg = Vec::new();
            mha.for_each_param(&mut |p| pg.extend_from_slice(p.grad().data()));
            runs.push((y, dx, pg));
        }
        let (a, f) = (&runs[0], &runs[1]);
        assert_close("fused out", &f.0, &a.0, 1e-12);
        assert_close("fused dx", &f.1, &a.1, 1e-12);
        assert_eq!(a.2.len(), f.2.len());
        for (i, (p, q)) in a.2.iter().zip(&f.2).enumerate() {
            assert!(
                (p - q).abs() < 1e-12,
                "causal {causal}: param grad {i}: {p} vs {q}"
            );
        }
    }
}
