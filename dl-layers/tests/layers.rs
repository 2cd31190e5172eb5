//! Layer behaviour: the course's fixtures, batch norm statistics and gradients,
//! checkpoints, and parameter counts against PyTorch's.

use dl_autograd::{Graph, Param, ParamSet};
use dl_core::{Rng, Tensor};
use dl_layers::*;

fn toy_layer(w: [[f64; 2]; 2], b: [f64; 2]) -> Linear<f64> {
    Linear::from_weights(Tensor::from_rows(w), Some(Tensor::from_array(b))).unwrap()
}

/// The "simple network, toy example": [1, -1] -> [0.98, 0.12] -> [0.86, 0.11] -> [0.62, 0.83].
#[test]
fn toy_sigmoid_network_matches_the_slides() {
    let first = Sequential::new()
        .push(toy_layer([[1.0, -2.0], [-1.0, 1.0]], [1.0, 0.0]))
        .push(Activation::Sigmoid);
    let h = predict(&first, &Tensor::from_rows([[1.0, -1.0]])).unwrap();
    let round = |x: f64| (x * 100.0).round() / 100.0;
    assert_eq!(
        h.data().iter().map(|&x| round(x)).collect::<Vec<_>>(),
        [0.98, 0.12]
    );
    let net = first
        .push(toy_layer([[2.0, -1.0], [-2.0, -1.0]], [0.0, 0.0]))
        .push(Activation::Sigmoid)
        .push(toy_layer([[3.0, -1.0], [-1.0, 4.0]], [-2.0, 2.0]))
        .push(Activation::Sigmoid);
    let y = predict(&net, &Tensor::from_rows([[1.0, -1.0]])).unwrap();
    assert_eq!(
        y.data().iter().map(|&x| round(x)).collect::<Vec<_>>(),
        [0.62, 0.83]
    );
}

#[test]
fn three_four_two_network_has_26_parameters() {
    let mut rng = Rng::seed_from_u64(0);
    let net: Sequential<f32> = Sequential::new()
        .push(LinearConfig::new(3, 4).init(&mut rng).unwrap())
        .push(Activation::Sigmoid)
        .push(LinearConfig::new(4, 2).init(&mut rng).unwrap());
    assert_eq!(net.num_params(), 26);
    let mut names = Vec::new();
    net.visit(&mut Path::new(), &mut |n, _| names.push(n.to_string()));
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
}

/// Parameter counts of the same architectures built in PyTorch (torchvision's
/// resnet18 for 1000 classes: 11,689,512; ResNet-20 with 1x1 projection shortcuts:
/// see tests/make_reference.py).
#[test]
fn resnet_parameter_counts_match_pytorch() {
    let mut rng = Rng::seed_from_u64(0);
    let r18 = resnet::resnet18::<f32>(1000, &mut rng).unwrap();
    assert_eq!(r18.num_params(), 11_689_512);
    let r20 = resnet::resnet20::<f32>(10, &mut rng).unwrap();
    assert_eq!(r20.num_params(), RESNET20_PARAMS);
}

/// From tests/make_reference.py.
const RESNET20_PARAMS: usize = 272_474;

#[test]
fn batch_norm_train_mode_normalizes_each_channel_and_eval_uses_running_stats() {
    let mut rng = Rng::seed_from_u64(1);
    let x = Tensor::<f64>::rand_normal(&[8, 3, 4, 5], 2.0, 3.0, &mut rng).unwrap();
    let bn = BatchNorm::<f64>::new(3).unwrap();
    let mut g = Graph::new();
    let xv = g.input(&x);
    let y = bn.forward(&mut g, xv, &mut Ctx::train(0)).unwrap();
    let y = g.value(y).unwrap().clone();
    let (n, c, hw) = (8, 3, 20);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| y.data()[(i * c + ch) * hw..(i * c + ch + 1) * hw].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!(mean.abs() < 1e-5, "channel {ch} mean {mean}");
        // var = v / (v + eps) with eps = 1e-5 and v ~ 9.
        assert!((var - 1.0).abs() < 1e-5, "channel {ch} var {var}");
    }
    drop(g);
    // One step moved the running stats 10% of the way from (0, 1) to the batch's.
    let rm = bn.running_mean();
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| x.data()[(i * c + ch) * hw..(i * c + ch + 1) * hw].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let unbiased =
            vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (vals.len() - 1) as f64;
        assert!((rm.data()[ch] - 0.1 * mean).abs() < 1e-12);
        assert!((bn.running_var().data()[ch] - (0.9 + 0.1 * unbiased)).abs() < 1e-12);
    }
    // Eval: y = (x - rm) / sqrt(rv + eps) (gamma 1, beta 0).
    let y_eval = predict(&bn, &x).unwrap();
    let rv = bn.running_var();
    for (i, (&yv, &xv)) in y_eval.data().iter().zip(x.data()).enumerate() {
        let ch = (i / hw) % c;
        let want = (xv - rm.data()[ch]) / (rv.data()[ch] + 1e-5).sqrt();
        assert!((yv - want).abs() < 1e-12);
    }
}

/// Central finite differences of sum(w * BN(x)) with respect to x, gamma and beta.
#[test]
fn batch_norm_layer_gradients_match_finite_differences() {
    let mut rng = Rng::seed_from_u64(2);
    let x0 = Tensor::<f64>::rand_normal(&[4, 2, 3, 3], 0.5, 2.0, &mut rng).unwrap();
    let wts = Tensor::<f64>::rand_normal(&[4, 2, 3, 3], 0.0, 1.0, &mut rng).unwrap();
    let mut bn = BatchNorm::<f64>::new(2).unwrap();
    bn.gamma.value_mut().copy_from_slice(&[1.5, -0.7]);
    bn.beta.value_mut().copy_from_slice(&[0.2, 0.3]);
    let loss = |bn: &BatchNorm<f64>, x: &Tensor<f64>| -> f64 {
        let y = {
            let mut g = Graph::new_no_grad();
            let xv = g.input(x);
            let y = bn.forward(&mut g, xv, &mut Ctx::train(0)).unwrap();
            g.value(y).unwrap().clone()
        };
        y.data().iter().zip(wts.data()).map(|(a, b)| a * b).sum()
    };
    let mut g = Graph::new();
    let xv = g.variable(&x0);
    let y = bn.forward(&mut g, xv, &mut Ctx::train(0)).unwrap();
    let w = g.input(&wts);
    let prod = g.mul(y, w).unwrap();
    let l = g.sum_all(prod).unwrap();
    g.backward(l).unwrap();
    let dx = g.grad(xv).unwrap().clone();
    drop(g);
    let eps = 1e-6;
    for i in 0..x0.numel() {
        let (mut xp, mut xm) = (x0.clone(), x0.clone());
        xp.data_mut()[i] += eps;
        xm.data_mut()[i] -= eps;
        let fd = (loss(&bn, &xp) - loss(&bn, &xm)) / (2.0 * eps);
        assert!(
            (fd - dx.data()[i]).abs() < 1e-6 * (1.0 + fd.abs()),
            "dx[{i}]: fd {fd}, analytic {}",
            dx.data()[i]
        );
    }
    let dgamma = bn.gamma.grad().data().to_vec();
    for (c, &analytic) in dgamma.iter().enumerate() {
        let mut b2 = BatchNorm::<f64>::new(2).unwrap();
        let mut bm = BatchNorm::<f64>::new(2).unwrap();
        for (b, d) in [(&mut b2, eps), (&mut bm, -eps)] {
            b.gamma.value_mut().copy_from_slice(bn.gamma.value().data());
            b.beta.value_mut().copy_from_slice(bn.beta.value().data());
            b.gamma.value_mut()[c] += d;
        }
        let fd = (loss(&b2, &x0) - loss(&bm, &x0)) / (2.0 * eps);
        assert!(
            (fd - analytic).abs() < 1e-6 * (1.0 + fd.abs()),
            "dgamma[{c}]"
        );
    }
}

#[test]
fn checkpoints_round_trip_and_name_the_first_mismatch() {
    let mut rng = Rng::seed_from_u64(3);
    let make = |rng: &mut Rng, hidden| -> Sequential<f32> {
        Sequential::new()
            .push(LinearConfig::new(4, hidden).init(rng).unwrap())
            .push(BatchNorm::new(hidden).unwrap())
            .push(Activation::Relu)
            .push(LinearConfig::new(hidden, 2).init(rng).unwrap())
    };
    let a = make(&mut rng, 8);
    let mut b = make(&mut rng, 8);
    let x = Tensor::<f32>::rand_normal(&[5, 4], 0.0, 1.0, &mut rng).unwrap();
    assert_ne!(predict(&a, &x).unwrap(), predict(&b, &x).unwrap());

    let dir = std::env::temp_dir().join(format!("dl-layers-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    checkpoint::save(&a, &path).unwrap();
    assert!(!dir.join("model.safetensors.tmp").exists());
    checkpoint::load(&mut b, &path).unwrap();
    assert_eq!(predict(&a, &x).unwrap(), predict(&b, &x).unwrap());

    // Wrong hidden size: the first tensor that differs is named with both shapes.
    let mut c = make(&mut rng, 6);
    let e = checkpoint::load(&mut c, &path).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "tensor `0.weight` has shape [8, 4] in the checkpoint, the model expects [6, 4]"
        ),
        "{e}"
    );
    // A model with more layers: the missing tensor is named.
    let mut d = make(&mut rng, 8).push(LinearConfig::new(2, 2).init(&mut rng).unwrap());
    let e = checkpoint::load(&mut d, &path).unwrap_err().to_string();
    assert!(e.ends_with("checkpoint has no tensor `4.weight`"), "{e}");
    // A file cut inside its header names the file and the header length (its first
    // 8 bytes) that the bytes left cannot hold.
    let bytes = std::fs::read(&path).unwrap();
    let cut = bytes.len() / 2;
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert!(n as usize > cut - 8, "the cut must fall inside the header");
    std::fs::write(dir.join("cut.safetensors"), &bytes[..cut]).unwrap();
    let e = checkpoint::load(&mut b, dir.join("cut.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "cut.safetensors: at byte 0: expected a header length of at most {}",
            cut - 8
        )) && e.ends_with(&format!("found {n}")),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dropout_is_identity_in_eval_and_scales_in_training() {
    let d = Dropout::new(0.25).unwrap();
    let x = Tensor::<f64>::ones(&[1000]).unwrap();
    assert_eq!(predict(&d, &x).unwrap(), x);
    let mut g = Graph::new();
    let xv = g.input(&x);
    let y = d.forward(&mut g, xv, &mut Ctx::train(7)).unwrap();
    let y = g.value(y).unwrap();
    let kept = y.data().iter().filter(|&&v| v != 0.0).count();
    assert!(y
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    assert!((700..800).contains(&kept), "kept {kept}");
    assert_eq!(
        Dropout::new(1.0).unwrap_err().to_string(),
        "Dropout: invalid p = 1, valid range: [0, 1)"
    );
}

#[test]
fn optimizers_see_every_parameter_of_a_model() {
    let mut rng = Rng::seed_from_u64(4);
    let mut net = resnet::resnet20::<f32>(10, &mut rng).unwrap();
    let mut count = 0;
    net.for_each_param(&mut |p: &mut Param<f32>| count += p.numel());
    assert_eq!(count, net.num_params());
}

/// `forward` on a no-grad graph in eval mode, the reference for `infer`.
fn eval_forward(model: &dyn Module<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    let mut g = Graph::new_no_grad();
    let xv = g.input(x);
    let y = model.forward(&mut g, xv, &mut Ctx::eval()).unwrap();
    g.value(y).unwrap().clone()
}

#[test]
fn graph_free_inference_matches_the_graph_bit_for_bit() {
    let mut rng = Rng::seed_from_u64(21);
    let acts = [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::Identity,
        Activation::LeakyRelu(0.1),
    ];
    // Odd and even numbers of layers (the ping-pong ends in `out` either way), every
    // element-wise activation, and a softmax head that goes through the graph.
    for (depth, batch) in [(1usize, 1usize), (2, 3), (5, 1), (6, 64)] {
        let mut model: Sequential<f32> = Sequential::new();
        let mut width = 20;
        for i in 0..depth {
            if i % 2 == 0 {
                let next = 7 + 3 * i;
                model = model.push(LinearConfig::new(width, next).init(&mut rng).unwrap());
                width = next;
            } else {
                model = model.push(acts[i % acts.len()]);
            }
        }
        if depth == 6 {
            model = model.push(Activation::Softmax);
        }
        let x = Tensor::rand_uniform(&[batch, 20], -2.0, 2.0, &mut rng).unwrap();
        let want = eval_forward(&model, &x);
        // A kept output buffer of the wrong size is resized.
        let mut out = Tensor::zeros(&[3]).unwrap();
        model.infer(&x, &mut out).unwrap();
        assert_eq!(out.dims(), want.dims(), "depth {depth}");
        let same = out
            .data()
            .iter()
            .zip(want.data())
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "depth {depth}: {:?} vs {:?}", out.data(), want.data());
        assert_eq!(predict(&model, &x).unwrap().data(), want.data());
    }
    for act in acts {
        let x = Tensor::rand_uniform(&[4, 9], -3.0, 3.0, &mut rng).unwrap();
        let mut out = Tensor::empty();
        act.infer(&x, &mut out).unwrap();
        assert_eq!(out.data(), eval_forward(&act, &x).data(), "{act:?}");
    }
    // Convolutions take the default (graph) path, Flatten its own; an empty chain copies.
    let cnn: Sequential<f32> = Sequential::new()
        .push(Conv2dConfig::new(1, 2, 3).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(Flatten)
        .push(LinearConfig::new(2 * 4 * 4, 3).init(&mut rng).unwrap());
    let x = Tensor::rand_uniform(&[2, 1, 6, 6], 0.0, 1.0, &mut rng).unwrap();
    assert_eq!(
        predict(&cnn, &x).unwrap().data(),
        eval_forward(&cnn, &x).data()
    );
    let mut out = Tensor::empty();
    Sequential::<f32>::new().infer(&x, &mut out).unwrap();
    assert_eq!((out.dims(), out.data()), (x.dims(), x.data()));
}

#[test]
fn graph_free_inference_names_the_op_and_shapes() {
    let mut rng = Rng::seed_from_u64(22);
    let model: Sequential<f32> = Sequential::new()
        .push(LinearConfig::new(4, 3).init(&mut rng).unwrap())
        .push(Activation::Relu);
    let x = Tensor::zeros(&[2, 5]).unwrap();
    let err = model
        .infer(&x, &mut Tensor::empty())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linear") && err.contains("[2, 5]") && err.contains("[3, 4]"),
        "{err}"
    );
}

/// `Activation::Relu6` clamps to `[0, 6]`, runs its kernel directly in `infer` (bit
/// for bit the graph's forward, inside a `Sequential` too), and passes the gradient
/// strictly inside `(0, 6)` only, as PyTorch's `relu6` (0 at both kinks).
#[test]
fn relu6_layer_clamps_infers_as_the_graph_and_passes_gradients_inside() {
    let x = Tensor::from_vec(vec![-2.0f64, 0.0, 0.5, 6.0, 6.5, 3.0], &[2, 3]).unwrap();
    let y = predict(&Activation::Relu6, &x).unwrap();
    assert_eq!(y.data(), &[0.0, 0.0, 0.5, 6.0, 6.0, 3.0]);
    let mut out = Tensor::empty();
    Activation::Relu6.infer(&x, &mut out).unwrap();
    assert_eq!(out, eval_forward_f64(&Activation::Relu6, &x));

    let mut rng = Rng::seed_from_u64(23);
    let model: Sequential<f32> = Sequential::new()
        .push(LinearConfig::new(5, 16).init(&mut rng).unwrap())
        .push(Activation::Relu6)
        .push(LinearConfig::new(16, 3).init(&mut rng).unwrap());
    let x32 = Tensor::rand_uniform(&[4, 5], -20.0, 20.0, &mut rng).unwrap();
    let mut out = Tensor::empty();
    model.infer(&x32, &mut out).unwrap();
    assert_eq!(out, eval_forward(&model, &x32));

    // d sum(relu6(x)) / dx: 1 for 0.5 and 3, 0 at -2, at the kinks 0 and 6, and at 6.5.
    let mut g = Graph::new();
    let xv = g.variable(&x);
    let y = Activation::Relu6
        .forward(&mut g, xv, &mut Ctx::train(0))
        .unwrap();
    let s = g.sum_all(y).unwrap();
    g.backward(s).unwrap();
    assert_eq!(g.grad(xv).unwrap().data(), &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
}

fn eval_forward_f64(model: &dyn Module<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    let mut g = Graph::new_no_grad();
    let xv = g.input(x);
    let y = model.forward(&mut g, xv, &mut Ctx::eval()).unwrap();
    g.value(y).unwrap().clone()
}
