//! Grouped and depthwise `Conv2d` (PyTorch's `groups`): the configuration's checks,
//! PyTorch's weight shape, initialization and parameter counts, the forward pass
//! against the definition, graph-free inference, gradients through the layer, and
//! checkpoints; outputs and gradients of `nn.Conv2d` and `F.relu6` from
//! `tests/reference/conv_groups_reference.json` (made by
//! `tests/reference/make_conv_groups_reference.py`).

use dl_autograd::{Graph, Param};
use dl_core::conv::Conv2dParams;
use dl_core::{Rng, Tensor};
use dl_layers::*;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/conv_groups_reference.json")).unwrap()
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

fn assert_close(got: &Tensor<f64>, want: &Tensor<f64>, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    for (i, (a, b)) in got.data().iter().zip(want.data()).enumerate() {
        assert!(
            (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
            "{what}[{i}]: {a} vs {b}"
        );
    }
}

/// PyTorch's `nn.Conv2d` with `groups` (grouped, depthwise with a channel multiplier
/// and stride 2, depthwise without bias, grouped pointwise, depthwise dilated): the
/// output and the gradients of `sum(out * w_out)` for the input, weight and bias.
#[test]
fn grouped_conv_matches_pytorch() {
    let r = reference();
    for case in r["conv"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let at = |key: &str| case[key].as_u64().unwrap() as usize;
        let (s, p, d) = (at("stride"), at("padding"), at("dilation"));
        let params = Conv2dParams::default()
            .with_stride(s, s)
            .with_padding(p, p)
            .with_dilation(d, d)
            .with_groups(at("groups"));
        let k = at("kernel");
        let config = Conv2dConfig::new(at("in_channels"), at("out_channels"), k)
            .with_groups(at("groups"))
            .bias(!case["bias"].is_null());
        config.validate().unwrap();
        let conv = Conv2d {
            weight: Param::new(tensor(&case["weight"])),
            bias: (!case["bias"].is_null()).then(|| Param::new(tensor(&case["bias"]))),
            params,
        };
        // The layer PyTorch's arguments build has the reference weight's shape.
        let fresh = config.init::<f64>(&mut Rng::seed_from_u64(0)).unwrap();
        assert_eq!(
            fresh.weight.value().dims(),
            conv.weight.value().dims(),
            "{name}"
        );

        let x = tensor(&case["x"]);
        let mut g = Graph::new();
        let xv = g.variable(&x);
        let y = conv.forward(&mut g, xv, &mut Ctx::train(0)).unwrap();
        assert_close(g.value(y).unwrap(), &tensor(&case["out"]), name);
        let w_out = g.input(&tensor(&case["w_out"]));
        let weighted = g.mul(y, w_out).unwrap();
        let loss = g.sum_all(weighted).unwrap();
        g.backward(loss).unwrap();
        assert_close(g.grad(xv).unwrap(), &tensor(&case["grad_x"]), name);
        drop(g);
        assert_close(&conv.weight.grad(), &tensor(&case["grad_weight"]), name);
        if let Some(b) = &conv.bias {
            assert_close(&b.grad(), &tensor(&case["grad_bias"]), name);
        }
        assert_close(&predict(&conv, &x).unwrap(), &tensor(&case["out"]), name);
    }
}

/// `F.relu6` at and around both kinks: the values, and the gradient of
/// `sum(relu6(x) * g)`, which PyTorch (hardtanh_backward) zeroes at x = 0 and x = 6.
#[test]
fn relu6_matches_pytorch() {
    let r = reference()["relu6"].clone();
    let x = tensor(&r["x"]);
    assert_close(
        &predict(&Activation::Relu6, &x).unwrap(),
        &tensor(&r["y"]),
        "relu6",
    );
    let mut g = Graph::new();
    let xv = g.variable(&x);
    let y = Activation::Relu6
        .forward(&mut g, xv, &mut Ctx::train(0))
        .unwrap();
    let gv = g.input(&tensor(&r["g"]));
    let weighted = g.mul(y, gv).unwrap();
    let loss = g.sum_all(weighted).unwrap();
    g.backward(loss).unwrap();
    assert_eq!(g.grad(xv).unwrap().data(), tensor(&r["grad_x"]).data());
}

/// `y[n, o, i, j] = b[o] + sum_{c, u, v} w[o, c, u, v] x[n, k C_in/g + c, i s + u - p, j s + v - p]`
/// with `k = o / (C_out / g)`, by its definition (padding reads as zero).
fn naive_grouped(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: Option<&Tensor<f64>>,
    groups: usize,
    stride: usize,
    pad: usize,
) -> Tensor<f64> {
    let [n, c_in, h, wd] = x.dims().try_into().unwrap();
    let [c_out, cig, kh, kw] = w.dims().try_into().unwrap();
    assert_eq!(cig * groups, c_in);
    let cog = c_out / groups;
    let (oh, ow) = (
        (h + 2 * pad - kh) / stride + 1,
        (wd + 2 * pad - kw) / stride + 1,
    );
    let mut y = Tensor::zeros(&[n, c_out, oh, ow]).unwrap();
    for bi in 0..n {
        for o in 0..c_out {
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b.map_or(0.0, |b| b.data()[o]);
                    for c in 0..cig {
                        for u in 0..kh {
                            for v in 0..kw {
                                let (iy, ix) =
                                    ((i * stride + u) as isize, (j * stride + v) as isize);
                                let (iy, ix) = (iy - pad as isize, ix - pad as isize);
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let ch = (o / cog) * cig + c;
                                let xv = x.data()
                                    [((bi * c_in + ch) * h + iy as usize) * wd + ix as usize];
                                s += w.data()[((o * cig + c) * kh + u) * kw + v] * xv;
                            }
                        }
                    }
                    y.data_mut()[((bi * c_out + o) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    y
}

#[test]
fn groups_are_validated_by_name_and_range() {
    let err = |c: Conv2dConfig| c.validate().unwrap_err().to_string();
    let valid = "valid range: >= 1, dividing in_channels and out_channels";
    assert_eq!(
        err(Conv2dConfig::new(6, 4, 3).with_groups(0)),
        format!("Conv2d: invalid groups = 0, {valid}")
    );
    // 4 groups divide 4 output channels but not 6 input channels, and the reverse.
    assert_eq!(
        err(Conv2dConfig::new(6, 4, 3).with_groups(4)),
        format!("Conv2d: invalid groups = 4, {valid}")
    );
    assert_eq!(
        err(Conv2dConfig::new(6, 9, 3).with_groups(6)),
        format!("Conv2d: invalid groups = 6, {valid}")
    );
    assert!(Conv2dConfig::new(6, 4, 3)
        .init::<f32>(&mut Rng::seed_from_u64(0))
        .is_ok());
    assert!(Conv2dConfig::new(6, 4, 3).with_groups(2).validate().is_ok());
    assert!(Conv2dConfig::new(6, 12, 3)
        .with_groups(6)
        .validate()
        .is_ok());
    assert_eq!(Conv2dConfig::new(6, 4, 3).params.groups, 1);
}

/// PyTorch's weight shape `[C_out, C_in / groups, kh, kw]`, its init bound
/// `1 / sqrt(fan_in)` with `fan_in = C_in / groups * kh * kw`, and its parameter
/// counts: `nn.Conv2d(32, 64, 3, groups=4)` has 64*8*9 + 64 = 4672 parameters,
/// `nn.Conv2d(32, 32, 3, groups=32)` (depthwise) 32*9 + 32 = 320, and
/// `nn.Conv2d(16, 48, 5, groups=16, bias=False)` (multiplier 3) 48*25 = 1200.
#[test]
fn weight_shape_init_and_parameter_count_follow_pytorch() {
    let mut rng = Rng::seed_from_u64(1);
    for (config, dims, count) in [
        (
            Conv2dConfig::new(32, 64, 3).with_groups(4),
            [64, 8, 3, 3],
            4672,
        ),
        (
            Conv2dConfig::new(32, 32, 3).with_groups(32),
            [32, 1, 3, 3],
            320,
        ),
        (
            Conv2dConfig::new(16, 48, 5).with_groups(16).bias(false),
            [48, 1, 5, 5],
            1200,
        ),
    ] {
        let conv = config.init::<f64>(&mut rng).unwrap();
        assert_eq!(conv.weight.value().dims(), &dims);
        assert_eq!(conv.num_params(), count);
        let fan_in = (dims[1] * dims[2] * dims[3]) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let w = conv.weight.value().data();
        let widest = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // U(-bound, bound): nothing beyond it, and (with hundreds of draws) close to it.
        assert!(
            widest <= bound && widest > 0.9 * bound,
            "{widest} vs {bound}"
        );
        if let Some(b) = &conv.bias {
            assert!(b.value().data().iter().all(|v| v.abs() <= bound));
        }
    }
}

/// Grouped, depthwise and strided-depthwise layers: `forward` matches the definition,
/// and `infer` (which runs the same kernels) matches `forward`.
#[test]
fn forward_and_infer_match_the_definition() {
    let mut rng = Rng::seed_from_u64(2);
    let cases = [
        // (c_in, c_out, k, groups, stride, pad)
        (4, 6, 3, 2, 1, 1),
        (6, 6, 3, 6, 1, 1),
        (3, 6, 3, 3, 2, 1),
        (8, 16, 1, 4, 1, 0),
        (6, 3, 2, 3, 1, 0),
    ];
    for (c_in, c_out, k, groups, stride, pad) in cases {
        let conv = Conv2dConfig::new(c_in, c_out, k)
            .with_groups(groups)
            .stride(stride)
            .padding(pad)
            .init::<f64>(&mut rng)
            .unwrap();
        let x = Tensor::rand_uniform(&[2, c_in, 7, 6], -1.0, 1.0, &mut rng).unwrap();
        let want = naive_grouped(
            &x,
            conv.weight.value(),
            conv.bias.as_ref().map(|b| b.value()),
            groups,
            stride,
            pad,
        );
        let mut g = Graph::new_no_grad();
        let xv = g.input(&x);
        let y = conv.forward(&mut g, xv, &mut Ctx::eval()).unwrap();
        let y = g.value(y).unwrap().clone();
        assert_eq!(y.dims(), want.dims());
        for (a, b) in y.data().iter().zip(want.data()) {
            assert!((a - b).abs() < 1e-12, "groups {groups}: {a} vs {b}");
        }
        let mut out = Tensor::empty();
        conv.infer(&x, &mut out).unwrap();
        assert_eq!(out, y, "infer, groups {groups}");
        assert_eq!(predict(&conv, &x).unwrap(), y);
    }
}

/// The gradients a training step sees through a depthwise layer (MobileNet's 3x3
/// padding 1) against central finite differences of `L = sum(y * r)`.
#[test]
fn depthwise_layer_gradients_match_finite_differences() {
    let mut rng = Rng::seed_from_u64(3);
    let conv = Conv2dConfig::new(3, 6, 3)
        .with_groups(3)
        .padding(1)
        .init::<f64>(&mut rng)
        .unwrap();
    let x = Tensor::rand_uniform(&[2, 3, 5, 4], -1.0, 1.0, &mut rng).unwrap();
    let r = Tensor::rand_uniform(&[2, 6, 5, 4], -1.0, 1.0, &mut rng).unwrap();
    let loss = |conv: &Conv2d<f64>, x: &Tensor<f64>| -> f64 {
        let y = predict(conv, x).unwrap();
        y.data().iter().zip(r.data()).map(|(a, b)| a * b).sum()
    };
    let mut g = Graph::new();
    let xv = g.variable(&x);
    let y = conv.forward(&mut g, xv, &mut Ctx::train(0)).unwrap();
    let rv = g.input(&r);
    let yr = g.mul(y, rv).unwrap();
    let l = g.sum_all(yr).unwrap();
    g.backward(l).unwrap();
    let dx = g.grad(xv).unwrap().clone();
    drop(g);
    let eps = 1e-6;
    let close = |a: f64, fd: f64, what: &str| {
        assert!(
            (a - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "{what}: {a} vs {fd}"
        )
    };
    let dw = conv.weight.grad().clone();
    for i in 0..dw.numel() {
        let mut plus = conv.clone();
        plus.weight.value_mut()[i] += eps;
        let mut minus = conv.clone();
        minus.weight.value_mut()[i] -= eps;
        let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * eps);
        close(dw.data()[i], fd, "dW");
    }
    let db = conv.bias.as_ref().unwrap().grad().clone();
    for i in 0..db.numel() {
        let mut plus = conv.clone();
        plus.bias.as_mut().unwrap().value_mut()[i] += eps;
        let mut minus = conv.clone();
        minus.bias.as_mut().unwrap().value_mut()[i] -= eps;
        let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * eps);
        close(db.data()[i], fd, "db");
    }
    for i in (0..x.numel()).step_by(7) {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp.data_mut()[i] += eps;
        xm.data_mut()[i] -= eps;
        let fd = (loss(&conv, &xp) - loss(&conv, &xm)) / (2.0 * eps);
        close(dx.data()[i], fd, "dx");
    }
}

/// A grouped layer's checkpoint stores the grouped weight shape and loads back; a
/// dense layer's checkpoint does not load into a grouped one (the shapes are named).
#[test]
fn grouped_checkpoints_round_trip() {
    let mut rng = Rng::seed_from_u64(4);
    let make = |rng: &mut Rng, groups| -> Sequential<f32> {
        Sequential::new()
            .push(
                Conv2dConfig::new(4, 8, 3)
                    .padding(1)
                    .with_groups(groups)
                    .init(rng)
                    .unwrap(),
            )
            .push(Activation::Relu6)
    };
    let a = make(&mut rng, 4);
    let mut b = make(&mut rng, 4);
    let x = Tensor::<f32>::rand_uniform(&[1, 4, 5, 5], -1.0, 1.0, &mut rng).unwrap();
    assert_ne!(predict(&a, &x).unwrap(), predict(&b, &x).unwrap());
    let bytes = checkpoint::to_bytes(&a).unwrap();
    checkpoint::from_bytes(&mut b, &bytes, "grouped").unwrap();
    assert_eq!(predict(&a, &x).unwrap(), predict(&b, &x).unwrap());
    let mut dense = make(&mut rng, 1);
    let e = checkpoint::from_bytes(&mut dense, &bytes, "grouped")
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("tensor `0.weight` has shape [8, 1, 3, 3] in the checkpoint, the model expects [8, 4, 3, 3]"),
        "{e}"
    );
}
