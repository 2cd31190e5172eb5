//! The course's fully connected sigmoid network, checked by hand-computed values.
//!
//! The example (Hung-yi Lee's "Deep Learning" lecture, ML 2016/2017, slide "Fully
//! Connect Feedforward Network"): input `[1, -1]`, every neuron a sigmoid, layers of
//! two neurons with weights (one row per neuron) and biases
//!   layer 1: `[[1, -2], [-1, 1]]`, `[1, 0]`  -> `[0.98, 0.12]`
//!   layer 2: `[[2, -1], [-2, -1]]`, `[0, 0]` -> `[0.86, 0.11]`
//!   layer 3: `[[3, -1], [-1, 4]]`, `[-2, 2]` -> `[0.62, 0.83]`
//! The first hidden layer is `sigmoid(1 + 2 + 1) = sigmoid(4) = 0.982` and
//! `sigmoid(-1 - 1 + 0) = sigmoid(-2) = 0.119`; the rest follow the same way (the
//! numbers below were recomputed in f64, not copied from the slide).

use dl_autograd::{Graph, Param, Var};
use dl_core::Tensor;

struct Net {
    layers: Vec<(Param<f64>, Param<f64>)>,
}

impl Net {
    fn course() -> Self {
        let layer = |w: [[f64; 2]; 2], b: [f64; 2]| {
            // Stored as [in, out] so that `h W + b` works on row vectors.
            let wt = Tensor::from_rows([[w[0][0], w[1][0]], [w[0][1], w[1][1]]]);
            (Param::new(wt), Param::new(Tensor::from_array(b)))
        };
        Net {
            layers: vec![
                layer([[1.0, -2.0], [-1.0, 1.0]], [1.0, 0.0]),
                layer([[2.0, -1.0], [-2.0, -1.0]], [0.0, 0.0]),
                layer([[3.0, -1.0], [-1.0, 4.0]], [-2.0, 2.0]),
            ],
        }
    }

    /// Returns the activations of every layer.
    fn forward<'p>(&'p self, g: &mut Graph<'p, f64>, x: Var) -> Vec<Var> {
        let mut h = x;
        let mut acts = Vec::new();
        for (w, b) in &self.layers {
            let (w, b) = (g.param(w), g.param(b));
            let z = g.matmul(h, w).unwrap();
            let z = g.add(z, b).unwrap();
            h = g.sigmoid(z).unwrap();
            acts.push(h);
        }
        acts
    }

    /// The loss used for the gradient check: MSE against `[1, 0]`.
    fn loss<'p>(&'p self, g: &mut Graph<'p, f64>) -> Var {
        let x = g.input(&Tensor::from_rows([[1.0, -1.0]]));
        let out = *self.forward(g, x).last().unwrap();
        let t = g.input(&Tensor::from_rows([[1.0, 0.0]]));
        g.mse(out, t).unwrap()
    }
}

fn round2(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| (x * 100.0).round() / 100.0).collect()
}

#[test]
fn forward_matches_the_slide() {
    let net = Net::course();
    let mut g = Graph::new_no_grad();
    let x = g.input(&Tensor::from_rows([[1.0, -1.0]]));
    let acts = net.forward(&mut g, x);
    let vals: Vec<Vec<f64>> = acts
        .iter()
        .map(|&a| g.value(a).unwrap().data().to_vec())
        .collect();
    assert_eq!(round2(&vals[0]), [0.98, 0.12]);
    assert_eq!(round2(&vals[1]), [0.86, 0.11]);
    assert_eq!(round2(&vals[2]), [0.62, 0.83]);
    // More digits, from sigmoid(4) and sigmoid(-2) directly.
    assert!((vals[0][0] - 1.0 / (1.0 + (-4.0f64).exp())).abs() < 1e-15);
    assert!((vals[0][1] - 1.0 / (1.0 + 2.0f64.exp())).abs() < 1e-15);
}

#[test]
fn gradients_match_finite_differences() {
    let mut net = Net::course();
    {
        let mut g = Graph::new();
        let loss = net.loss(&mut g);
        g.backward(loss).unwrap();
    }
    let analytic: Vec<Vec<f64>> = net
        .layers
        .iter()
        .flat_map(|(w, b)| [w.grad().data().to_vec(), b.grad().data().to_vec()])
        .collect();
    let eval = |net: &Net| {
        let mut g = Graph::new_no_grad();
        let l = net.loss(&mut g);
        g.value(l).unwrap().data()[0]
    };
    let eps = 1e-6;
    let mut checked = 0;
    for li in 0..3 {
        for which in 0..2 {
            for (j, &a) in analytic[li * 2 + which].iter().enumerate() {
                fn param(net: &mut Net, li: usize, which: usize) -> &mut [f64] {
                    let (w, b) = &mut net.layers[li];
                    if which == 0 {
                        w.value_mut()
                    } else {
                        b.value_mut()
                    }
                }
                let x0 = param(&mut net, li, which)[j];
                param(&mut net, li, which)[j] = x0 + eps;
                let up = eval(&net);
                param(&mut net, li, which)[j] = x0 - eps;
                let down = eval(&net);
                param(&mut net, li, which)[j] = x0;
                let numeric = (up - down) / (2.0 * eps);
                assert!(
                    (a - numeric).abs() < 1e-8 * a.abs().max(1.0),
                    "layer {li} {} [{j}]: analytic {a}, numeric {numeric}",
                    if which == 0 { "weight" } else { "bias" }
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 18);
    // The output layer's bias gradient by hand: dL/db = 2/2 (o - t) o (1 - o).
    let o = [0.6177047777553412, 0.8291239841574399];
    let t = [1.0, 0.0];
    for k in 0..2 {
        let expected = (o[k] - t[k]) * o[k] * (1.0 - o[k]);
        assert!((analytic[5][k] - expected).abs() < 1e-12);
    }
}
