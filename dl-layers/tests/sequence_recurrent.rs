//! Recurrent layers: central finite-difference gradient checks (f64) of RNN, LSTM and
//! GRU over several time steps (stacked, with variable lengths, reversed, truncated),
//! and parity with PyTorch's nn.RNN / nn.LSTM / nn.GRU (outputs, final states, input
//! and weight gradients) from `tests/reference/sequence_reference.json`, made by
//! `tests/reference/make_sequence_reference.py`.

use dl_autograd::{Graph, ParamSet};
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

fn assert_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!((a - b).abs() <= tol, "{what}[{i}]: got {a}, PyTorch {b}");
    }
}

/// Loads PyTorch's named parameters into a module (renaming `_reverse` to the
/// wrapper's `backward.` prefix); errors on any name left over.
fn load(model: &mut dyn Module<f64>, params: &Value, bidirectional: bool) {
    let mut loaded = 0;
    model.visit_mut(&mut Path::new(), &mut |name, e| {
        let torch_name = if bidirectional {
            match name.strip_prefix("backward.") {
                Some(rest) => format!("{rest}_reverse"),
                None => name.strip_prefix("forward.").unwrap().to_string(),
            }
        } else {
            name.to_string()
        };
        let t = tensor(&params[&torch_name]);
        match e {
            EntryMut::Param(p) => p.set_value(t).unwrap(),
            EntryMut::Buffer(b) => *b = t,
        }
        loaded += 1;
    });
    assert_eq!(loaded, params.as_object().unwrap().len());
}

fn named_grads(model: &dyn Module<f64>, bidirectional: bool) -> Vec<(String, Tensor<f64>)> {
    let mut out = Vec::new();
    model.visit(&mut Path::new(), &mut |name, e| {
        if let Entry::Param(p) = e {
            let torch_name = match (bidirectional, name.strip_prefix("backward.")) {
                (true, Some(rest)) => format!("{rest}_reverse"),
                (true, None) => name.strip_prefix("forward.").unwrap().to_string(),
                _ => name.to_string(),
            };
            out.push((torch_name, p.grad().clone()));
        }
    });
    out
}

fn kind_of(case: &str) -> RecurrentConfig {
    if case.starts_with("lstm") {
        RecurrentConfig::lstm(1, 1)
    } else if case.starts_with("gru") {
        RecurrentConfig::gru(1, 1)
    } else if case.starts_with("rnn_relu") {
        RecurrentConfig::rnn(1, 1).nonlinearity(Nonlinearity::Relu)
    } else {
        RecurrentConfig::rnn(1, 1)
    }
}

fn check_recurrent_case(name: &str) {
    let r = reference();
    let c = &r["cases"][name];
    let (i, h, layers) = (
        c["input_size"].as_u64().unwrap() as usize,
        c["hidden"].as_u64().unwrap() as usize,
        c["layers"].as_u64().unwrap() as usize,
    );
    let bidirectional = c["bidirectional"].as_bool().unwrap();
    let lengths: Option<Vec<usize>> = c["lengths"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap() as usize).collect());
    let mut cfg = kind_of(name);
    cfg.input_size = i;
    cfg.hidden_size = h;
    cfg.num_layers = layers;
    let mut rng = Rng::seed_from_u64(0);
    let mut model: Box<dyn SeqModel> = if bidirectional {
        Box::new(Bidirectional::new(
            cfg.init::<f64>(&mut rng).unwrap(),
            cfg.init::<f64>(&mut rng).unwrap(),
        ))
    } else {
        Box::new(cfg.init::<f64>(&mut rng).unwrap())
    };
    load(model.as_module_mut(), &c["params"], bidirectional);

    let x = tensor(&c["x"]);
    let mut g = Graph::new();
    let xv = g.variable(&x);
    let opts = SeqOptions {
        lengths: lengths.as_deref(),
        ..Default::default()
    };
    let out = model.run_seq(&mut g, xv, &opts);
    let w_out = g.input(&tensor(&c["w_out"]));
    let w_h = g.input(&tensor(&c["w_h"]));
    let a = g.mul(out.output, w_out).unwrap();
    let a = g.sum_all(a).unwrap();
    let b = g.mul(out.h_n, w_h).unwrap();
    let b = g.sum_all(b).unwrap();
    let mut loss = g.add(a, b).unwrap();
    if let Some(c_n) = out.c_n {
        let w_c = g.input(&tensor(&c["w_c"]));
        let d = g.mul(c_n, w_c).unwrap();
        let d = g.sum_all(d).unwrap();
        loss = g.add(loss, d).unwrap();
        assert_close(
            &format!("{name} c_n"),
            g.value(c_n).unwrap(),
            &tensor(&c["c_n"]),
            1e-10,
        );
    }
    assert_close(
        &format!("{name} output"),
        g.value(out.output).unwrap(),
        &tensor(&c["out"]),
        1e-10,
    );
    assert_close(
        &format!("{name} h_n"),
        g.value(out.h_n).unwrap(),
        &tensor(&c["h_n"]),
        1e-10,
    );
    g.backward(loss).unwrap();
    assert_close(
        &format!("{name} dx"),
        g.grad(xv).unwrap(),
        &tensor(&c["dx"]),
        1e-10,
    );
    drop(g);
    let grads = named_grads(model.as_module(), bidirectional);
    assert_eq!(grads.len(), c["grads"].as_object().unwrap().len());
    for (n, gr) in grads {
        assert_close(
            &format!("{name} d{n}"),
            &gr,
            &tensor(&c["grads"][&n]),
            1e-10,
        );
    }
}

/// Object-safe access to both plain and bidirectional layers in one test helper.
trait SeqModel {
    fn as_module(&self) -> &dyn Module<f64>;
    fn as_module_mut(&mut self) -> &mut dyn Module<f64>;
    fn run_seq<'p>(
        &'p self,
        g: &mut Graph<'p, f64>,
        x: dl_autograd::Var,
        o: &SeqOptions<'_>,
    ) -> SeqOutput;
}

impl<L: SequenceLayer<f64> + 'static> SeqModel for L {
    fn as_module(&self) -> &dyn Module<f64> {
        self
    }
    fn as_module_mut(&mut self) -> &mut dyn Module<f64> {
        self
    }
    fn run_seq<'p>(
        &'p self,
        g: &mut Graph<'p, f64>,
        x: dl_autograd::Var,
        o: &SeqOptions<'_>,
    ) -> SeqOutput {
        self.run(g, x, o).unwrap()
    }
}

#[test]
fn rnn_tanh_stacked_matches_pytorch() {
    check_recurrent_case("rnn_tanh");
}

#[test]
fn rnn_relu_matches_pytorch() {
    check_recurrent_case("rnn_relu");
}

#[test]
fn lstm_stacked_matches_pytorch() {
    check_recurrent_case("lstm");
}

#[test]
fn gru_stacked_matches_pytorch() {
    check_recurrent_case("gru");
}

/// Bidirectional over a padded batch: PyTorch packs the sequences
/// (pack_padded_sequence), we mask; outputs, h_n and every gradient agree.
#[test]
fn bidirectional_lstm_with_lengths_matches_packed_pytorch() {
    check_recurrent_case("lstm_bidirectional_packed");
}

#[test]
fn bidirectional_gru_with_lengths_matches_packed_pytorch() {
    check_recurrent_case("gru_bidirectional_packed");
}

// ---------------------------------------------------------------------------------
// Gradient checks: central differences (eps 1e-6) of
// L = sum(w_o * output) + sum(w_h * h_n) [+ sum(w_c * c_n)] against backward.
// ---------------------------------------------------------------------------------

struct Setup {
    x: Tensor<f64>,
    h0: Tensor<f64>,
    c0: Tensor<f64>,
    w_o: Tensor<f64>,
    w_h: Tensor<f64>,
    lengths: Option<Vec<usize>>,
    reverse: bool,
}

fn loss_on(model: &Recurrent<f64>, s: &Setup, x: &Tensor<f64>, h0: &Tensor<f64>) -> f64 {
    let mut g = Graph::new_no_grad();
    let xv = g.input(x);
    let h0v = g.input(h0);
    let c0v = g.input(&s.c0);
    let l = build_loss(model, &mut g, s, xv, h0v, c0v);
    g.value(l).unwrap().data()[0]
}

fn build_loss<'p>(
    model: &'p Recurrent<f64>,
    g: &mut Graph<'p, f64>,
    s: &Setup,
    xv: dl_autograd::Var,
    h0v: dl_autograd::Var,
    c0v: dl_autograd::Var,
) -> dl_autograd::Var {
    let is_lstm = model.kind() == CellKind::Lstm;
    let opts = SeqOptions {
        lengths: s.lengths.as_deref(),
        reverse: s.reverse,
        h0: Some(h0v),
        c0: is_lstm.then_some(c0v),
    };
    let out = model.run(g, xv, &opts).unwrap();
    let wo = g.input(&s.w_o);
    let wh = g.input(&s.w_h);
    let a = g.mul(out.output, wo).unwrap();
    let a = g.sum_all(a).unwrap();
    let b = g.mul(out.h_n, wh).unwrap();
    let b = g.sum_all(b).unwrap();
    let mut l = g.add(a, b).unwrap();
    if let Some(c) = out.c_n {
        // Reuse w_h for the cell: any fixed weights do.
        let d = g.mul(c, wh).unwrap();
        let d = g.sum_all(d).unwrap();
        l = g.add(l, d).unwrap();
    }
    l
}

fn close(fd: f64, an: f64) -> bool {
    // PyTorch gradcheck's tolerances: atol 1e-5, rtol 1e-3.
    (fd - an).abs() <= 1e-5 + 1e-3 * fd.abs()
}

fn gradcheck(cfg: RecurrentConfig, lengths: Option<Vec<usize>>, reverse: bool, seed: u64) {
    let (b, t) = (3, 5);
    let (i, h, l) = (cfg.input_size, cfg.hidden_size, cfg.num_layers);
    let mut rng = Rng::seed_from_u64(seed);
    let mut model = cfg.init::<f64>(&mut rng).unwrap();
    let normal = |dims: &[usize], rng: &mut Rng| Tensor::rand_normal(dims, 0.0, 1.0, rng).unwrap();
    let s = Setup {
        x: normal(&[b, t, i], &mut rng),
        h0: normal(&[l, b, h], &mut rng),
        c0: normal(&[l, b, h], &mut rng),
        w_o: normal(&[b, t, h], &mut rng),
        w_h: normal(&[l, b, h], &mut rng),
        lengths,
        reverse,
    };
    let mut g = Graph::new();
    let xv = g.variable(&s.x);
    let h0v = g.variable(&s.h0);
    let c0v = g.input(&s.c0);
    let loss = build_loss(&model, &mut g, &s, xv, h0v, c0v);
    g.backward(loss).unwrap();
    let dx = g.grad(xv).unwrap().clone();
    let dh0 = g.grad(h0v).unwrap().clone();
    drop(g);
    let eps = 1e-6;
    for k in 0..s.x.numel() {
        let (mut xp, mut xm) = (s.x.clone(), s.x.clone());
        xp.data_mut()[k] += eps;
        xm.data_mut()[k] -= eps;
        let fd = (loss_on(&model, &s, &xp, &s.h0) - loss_on(&model, &s, &xm, &s.h0)) / (2.0 * eps);
        assert!(
            close(fd, dx.data()[k]),
            "dx[{k}]: fd {fd}, analytic {}",
            dx.data()[k]
        );
    }
    for k in 0..s.h0.numel() {
        let (mut hp, mut hm) = (s.h0.clone(), s.h0.clone());
        hp.data_mut()[k] += eps;
        hm.data_mut()[k] -= eps;
        let fd = (loss_on(&model, &s, &s.x, &hp) - loss_on(&model, &s, &s.x, &hm)) / (2.0 * eps);
        assert!(
            close(fd, dh0.data()[k]),
            "dh0[{k}]: fd {fd}, analytic {}",
            dh0.data()[k]
        );
    }
    // Every weight: perturb one entry in place, re-run, restore.
    let mut analytic = Vec::new();
    model.for_each_param(&mut |p| analytic.push(p.grad().data().to_vec()));
    for (pi, grads) in analytic.iter().enumerate() {
        for (k, &an) in grads.iter().enumerate() {
            let shift = |model: &mut Recurrent<f64>, d: f64| {
                let mut idx = 0;
                model.for_each_param(&mut |p| {
                    if idx == pi {
                        p.value_mut()[k] += d;
                    }
                    idx += 1;
                });
            };
            shift(&mut model, eps);
            let lp = loss_on(&model, &s, &s.x, &s.h0);
            shift(&mut model, -2.0 * eps);
            let lm = loss_on(&model, &s, &s.x, &s.h0);
            shift(&mut model, eps);
            let fd = (lp - lm) / (2.0 * eps);
            assert!(close(fd, an), "param {pi}[{k}]: fd {fd}, analytic {an}");
        }
    }
}

#[test]
fn rnn_tanh_gradients_match_finite_differences() {
    gradcheck(RecurrentConfig::rnn(2, 3).num_layers(2), None, false, 1);
}

#[test]
fn rnn_relu_gradients_with_lengths_match_finite_differences() {
    let cfg = RecurrentConfig::rnn(2, 3).nonlinearity(Nonlinearity::Relu);
    gradcheck(cfg, Some(vec![5, 2, 4]), false, 2);
}

#[test]
fn lstm_gradients_match_finite_differences() {
    gradcheck(RecurrentConfig::lstm(2, 3).num_layers(2), None, false, 3);
}

#[test]
fn lstm_gradients_reversed_with_lengths_match_finite_differences() {
    gradcheck(RecurrentConfig::lstm(2, 3), Some(vec![3, 5, 1]), true, 4);
}

#[test]
fn gru_gradients_match_finite_differences() {
    gradcheck(
        RecurrentConfig::gru(2, 3).num_layers(2),
        Some(vec![4, 5, 2]),
        false,
        5,
    );
}

/// Truncated BPTT cuts the gradient exactly: the gradient of the final state with
/// respect to x_0 vanishes when k < T, and equals full BPTT's for the last k steps.
#[test]
fn truncated_bptt_stops_gradients_after_k_steps() {
    let mut rng = Rng::seed_from_u64(9);
    let x = Tensor::<f64>::rand_normal(&[2, 6, 3], 0.0, 1.0, &mut rng).unwrap();
    let grads = |truncate: Option<usize>| {
        let model = RecurrentConfig::gru(3, 4)
            .truncate(truncate)
            .init::<f64>(&mut Rng::seed_from_u64(1))
            .unwrap();
        let mut g = Graph::new();
        let xv = g.variable(&x);
        let out = model.run(&mut g, xv, &SeqOptions::default()).unwrap();
        let l = g.sum_all(out.h_n).unwrap();
        g.backward(l).unwrap();
        g.grad(xv).unwrap().clone()
    };
    let full = grads(None);
    let cut = grads(Some(2));
    // Steps 4 and 5 lie in the last window of 2 (detached at k = 2, 4): same
    // gradient; steps 0..4 get none.
    for b in 0..2 {
        for t in 0..6 {
            for f in 0..3 {
                let i = (b * 6 + t) * 3 + f;
                if t >= 4 {
                    assert!((cut.data()[i] - full.data()[i]).abs() < 1e-12);
                } else {
                    assert_eq!(cut.data()[i], 0.0);
                    assert!(full.data()[i].abs() > 1e-6);
                }
            }
        }
    }
}

#[test]
fn lstm_forget_bias_starts_at_one_and_shapes_follow_pytorch() {
    let mut rng = Rng::seed_from_u64(0);
    let m = RecurrentConfig::lstm(3, 4)
        .num_layers(2)
        .init::<f32>(&mut rng)
        .unwrap();
    let l0 = &m.layers[0];
    assert_eq!(l0.weight_ih.value().dims(), &[16, 3]);
    assert_eq!(m.layers[1].weight_ih.value().dims(), &[16, 4]);
    assert_eq!(l0.weight_hh.value().dims(), &[16, 4]);
    let bi = l0.bias_ih.as_ref().unwrap().value().data();
    let bh = l0.bias_hh.as_ref().unwrap().value().data();
    assert!(bi[4..8].iter().all(|&v| v == 1.0) && bh[4..8].iter().all(|&v| v == 0.0));
    assert!(bi[..4].iter().all(|&v| v.abs() <= 0.5) && bi[..4].iter().any(|&v| v != 0.0));
    // nn.LSTM(3, 4, num_layers=2) has 4*4*(3+4+2) + 4*4*(4+4+2) = 304 parameters.
    assert_eq!(m.num_params(), 304);
    let mut names = Vec::new();
    m.visit(&mut Path::new(), &mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "weight_ih_l0",
            "weight_hh_l0",
            "bias_ih_l0",
            "bias_hh_l0",
            "weight_ih_l1",
            "weight_hh_l1",
            "bias_ih_l1",
            "bias_hh_l1"
        ]
    );
}

#[test]
fn bad_settings_and_inputs_are_named_errors() {
    let mut rng = Rng::seed_from_u64(0);
    let e = RecurrentConfig::gru(3, 0)
        .init::<f32>(&mut rng)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "GRU: invalid hidden_size = 0, valid range: >= 1"
    );
    let e = RecurrentConfig::lstm(3, 2)
        .num_layers(0)
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "LSTM: invalid num_layers = 0, valid range: >= 1"
    );
    let e = RecurrentConfig::rnn(3, 2)
        .truncate(Some(0))
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "RNN: invalid truncate = 0, valid range: >= 1"
    );
    let m = RecurrentConfig::rnn(3, 2).init::<f32>(&mut rng).unwrap();
    let mut g = Graph::new();
    let x = g.input(&Tensor::zeros(&[2, 4, 5]).unwrap());
    let e = m.run(&mut g, x, &SeqOptions::default()).unwrap_err();
    assert!(e.to_string().contains("RNN"), "{e}");
    let x = g.input(&Tensor::zeros(&[2, 4, 3]).unwrap());
    let lengths = [4, 5];
    let opts = SeqOptions {
        lengths: Some(&lengths),
        ..Default::default()
    };
    let e = m.run(&mut g, x, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "RNN: invalid lengths[i] = 5, valid range: 1..=time steps"
    );
}

/// One-to-many generation steps the stack by hand (`step`); fed the same inputs it
/// reproduces `run`'s outputs exactly, for every cell and two layers.
#[test]
fn stepping_by_hand_reproduces_the_unrolled_layer() {
    let mut rng = Rng::seed_from_u64(11);
    let x = Tensor::<f64>::rand_normal(&[2, 4, 3], 0.0, 1.0, &mut rng).unwrap();
    for cfg in [
        RecurrentConfig::rnn(3, 5),
        RecurrentConfig::lstm(3, 5),
        RecurrentConfig::gru(3, 5),
    ] {
        let m = cfg.num_layers(2).init::<f64>(&mut rng).unwrap();
        let mut g = Graph::new_no_grad();
        let xv = g.input(&x);
        let out = m.run(&mut g, xv, &SeqOptions::default()).unwrap();
        let full = g.value(out.output).unwrap().clone();
        let vars = m.register(&mut g).unwrap();
        let mut states = m.zero_states(&mut g, 2).unwrap();
        for t in 0..4 {
            let xt = g.slice(xv, 1, t, t + 1).unwrap();
            let xt = g.reshape(xt, &[2, 3]).unwrap();
            let h = m.step(&mut g, &vars, xt, &mut states).unwrap();
            let h = g.value(h).unwrap();
            for b in 0..2 {
                for j in 0..5 {
                    let want = full.data()[(b * 4 + t) * 5 + j];
                    assert!((h.data()[b * 5 + j] - want).abs() < 1e-12, "{:?}", m.kind());
                }
            }
        }
    }
}
