//! Optimizers and schedules against torch.optim: parameters after each of 3 steps on a
//! fixed quadratic and a fixed 2-3-1 tanh network, and learning rates over 30 epochs.
//! Reference values: `tests/reference/torch_reference.json`, made by
//! `tests/reference/make_reference.py` (torch 2.15, float64).

use dl_autograd::Param;
use dl_core::Tensor;
use dl_optim::*;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("reference/torch_reference.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|x| match x {
            Value::Array(_) => floats(x),
            _ => vec![x.as_f64().unwrap()],
        })
        .collect()
}

fn assert_close(ours: &[f64], theirs: &[f64], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let tol = 1e-5 * b.abs().max(1e-3);
        assert!((a - b).abs() <= tol, "{what}[{i}]: ours {a}, torch {b}");
    }
}

fn optimizer(name: &str) -> Box<dyn Optimizer<f64>> {
    match name {
        "sgd" => Box::new(SgdConfig::new(0.1).build().unwrap()),
        "sgd_weight_decay" => Box::new(SgdConfig::new(0.1).weight_decay(0.01).build().unwrap()),
        "momentum" => Box::new(SgdConfig::new(0.1).momentum(0.9).build().unwrap()),
        "momentum_dampening" => Box::new(
            SgdConfig::new(0.1)
                .momentum(0.9)
                .dampening(0.1)
                .build()
                .unwrap(),
        ),
        "nesterov" => Box::new(
            SgdConfig::new(0.1)
                .momentum(0.9)
                .nesterov(true)
                .build()
                .unwrap(),
        ),
        "adam" => Box::new(AdamConfig::new(0.1).build().unwrap()),
        "adam_l2" => Box::new(AdamConfig::new(0.1).weight_decay(0.01).build().unwrap()),
        "amsgrad" => Box::new(AdamConfig::new(0.1).amsgrad(true).build().unwrap()),
        "adamw" => Box::new(
            AdamConfig::new(0.1)
                .weight_decay(0.1)
                .build_adamw()
                .unwrap(),
        ),
        "adagrad" => Box::new(AdagradConfig::new(0.1).build().unwrap()),
        "adadelta" => Box::new(AdadeltaConfig::default().build().unwrap()),
        "rmsprop" => Box::new(RmspropConfig::new(0.01).build().unwrap()),
        "rmsprop_momentum" => Box::new(
            RmspropConfig {
                momentum: 0.9,
                ..RmspropConfig::new(0.01)
            }
            .build()
            .unwrap(),
        ),
        "nadam" => Box::new(NadamConfig::new(0.1).build().unwrap()),
        other => panic!("no optimizer for reference case {other}"),
    }
}

/// f(x) = sum 0.5 a x^2 + b x, so df/dx = a x + b.
fn quadratic_steps(opt: &mut dyn Optimizer<f64>, r: &Value) -> Vec<Vec<f64>> {
    let a = floats(&r["quadratic"]["a"]);
    let b = floats(&r["quadratic"]["b"]);
    let mut x = Param::new(Tensor::from_slice(&floats(&r["quadratic"]["x0"]), &[3]).unwrap());
    let mut out = Vec::new();
    for _ in 0..3 {
        let (w, g) = x.value_and_grad_mut();
        for i in 0..3 {
            g[i] = a[i] * w[i] + b[i];
        }
        opt.step(&mut x).unwrap();
        out.push(x.value().data().to_vec());
    }
    out
}

/// y = W2 tanh(W1 x + b1) + b2 with MSE over 4 samples; the gradient by hand:
/// dL/dy = 2 (y - t) / n, dL/dW2 = dy h^T, dL/dh = W2^T dy, dL/dz = dh (1 - h^2).
fn network_grads(p: &mut [Param<f64>], xs: &[f64], ts: &[f64]) {
    let n = ts.len();
    let (w1, b1, w2, b2) = (
        p[0].value().data().to_vec(),
        p[1].value().data().to_vec(),
        p[2].value().data().to_vec(),
        p[3].value().data()[0],
    );
    let mut g = [vec![0.0; 6], vec![0.0; 3], vec![0.0; 3], vec![0.0; 1]];
    for s in 0..n {
        let x = &xs[2 * s..2 * s + 2];
        let h: Vec<f64> = (0..3)
            .map(|j| (w1[2 * j] * x[0] + w1[2 * j + 1] * x[1] + b1[j]).tanh())
            .collect();
        let y = (0..3).map(|j| w2[j] * h[j]).sum::<f64>() + b2;
        let dy = 2.0 * (y - ts[s]) / n as f64;
        g[3][0] += dy;
        for j in 0..3 {
            g[2][j] += dy * h[j];
            let dz = dy * w2[j] * (1.0 - h[j] * h[j]);
            g[1][j] += dz;
            g[0][2 * j] += dz * x[0];
            g[0][2 * j + 1] += dz * x[1];
        }
    }
    for (param, grad) in p.iter_mut().zip(g) {
        param.grad_mut().data_mut().copy_from_slice(&grad);
    }
}

fn network_steps(opt: &mut dyn Optimizer<f64>, r: &Value) -> Vec<Vec<f64>> {
    let init = &r["network"]["init"];
    let shapes: [(&str, &[usize]); 4] =
        [("w1", &[3, 2]), ("b1", &[3]), ("w2", &[1, 3]), ("b2", &[1])];
    let mut params: Vec<Param<f64>> = shapes
        .iter()
        .map(|(k, s)| Param::new(Tensor::from_slice(&floats(&init[*k]), s).unwrap()))
        .collect();
    let xs = floats(&r["network"]["x"]);
    let ts = floats(&r["network"]["y"]);
    let mut out = Vec::new();
    for _ in 0..3 {
        network_grads(&mut params, &xs, &ts);
        opt.step(&mut params).unwrap();
        out.push(
            params
                .iter()
                .flat_map(|p| p.value().data().to_vec())
                .collect(),
        );
    }
    out
}

#[test]
fn every_optimizer_matches_torch_for_three_steps() {
    let r = reference();
    let cases = r["optimizers"].as_object().unwrap();
    assert_eq!(cases.len(), 14);
    for (name, case) in cases {
        let quad = quadratic_steps(optimizer(name).as_mut(), &r);
        for (step, (ours, theirs)) in quad
            .iter()
            .zip(case["quadratic"].as_array().unwrap())
            .enumerate()
        {
            assert_close(
                ours,
                &floats(theirs),
                &format!("{name} quadratic step {}", step + 1),
            );
        }
        let net = network_steps(optimizer(name).as_mut(), &r);
        for (step, (ours, theirs)) in net
            .iter()
            .zip(case["network"].as_array().unwrap())
            .enumerate()
        {
            let theirs: Vec<f64> = ["w1", "b1", "w2", "b2"]
                .iter()
                .flat_map(|k| floats(&theirs[*k]))
                .collect();
            assert_close(ours, &theirs, &format!("{name} network step {}", step + 1));
        }
    }
}

fn check_schedule(s: &dyn LrSchedule, reference: &Value, name: &str) {
    let ours: Vec<f64> = (0..30).map(|e| s.lr_at(e)).collect();
    let theirs = floats(reference);
    for (e, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1e-12) + 1e-15,
            "{name} epoch {e}: ours {a}, torch {b}"
        );
    }
}

#[test]
fn every_schedule_matches_torch_over_30_epochs() {
    let r = reference();
    let s = &r["schedules"];
    check_schedule(&StepDecay::new(0.1, 5, 0.5).unwrap(), &s["step"], "step");
    check_schedule(
        &ExponentialDecay::new(0.1, 0.9).unwrap(),
        &s["exponential"],
        "exponential",
    );
    check_schedule(
        &CosineDecay::new(0.1, 0.001, 30).unwrap(),
        &s["cosine"],
        "cosine",
    );
    check_schedule(
        &Warmup::new(5, 0.1, CosineDecay::new(0.1, 0.0, 25).unwrap()).unwrap(),
        &s["warmup_cosine"],
        "warmup_cosine",
    );
    check_schedule(
        &Warmup::new(5, 0.1, StepDecay::new(0.1, 5, 0.5).unwrap()).unwrap(),
        &s["warmup_step"],
        "warmup_step",
    );

    let plateau = &s["plateau"];
    let mut sched = PlateauConfig {
        mode: Mode::Min,
        factor: 0.5,
        patience: 2,
        threshold: 1e-4,
        cooldown: 0,
        min_lr: 0.01,
    }
    .build(0.1)
    .unwrap();
    let metrics = floats(&plateau["metrics"]);
    let theirs = floats(&plateau["lrs"]);
    for (e, m) in metrics.iter().enumerate() {
        assert!(
            (sched.lr() - theirs[e]).abs() < 1e-12,
            "plateau epoch {e}: ours {}, torch {}",
            sched.lr(),
            theirs[e]
        );
        sched.step(*m);
    }
}

#[test]
fn bad_hyper_parameters_are_named() {
    let msg = |e: Error| e.to_string();
    assert_eq!(
        msg(SgdConfig::new(-1.0).validate().unwrap_err()),
        "SGD: invalid lr = -1, valid range: >= 0"
    );
    assert_eq!(
        msg(SgdConfig::new(0.1).nesterov(true).validate().unwrap_err()),
        "SGD: invalid momentum = 0, valid range: > 0 with nesterov"
    );
    assert_eq!(
        msg(AdamConfig::new(0.1)
            .betas(1.0, 0.999)
            .validate()
            .unwrap_err()),
        "Adam: invalid beta1 = 1, valid range: [0, 1)"
    );
    assert_eq!(
        msg(AdamConfig::new(0.1).eps(0.0).validate().unwrap_err()),
        "Adam: invalid eps = 0, valid range: > 0"
    );
    assert_eq!(
        msg(RmspropConfig {
            momentum: 1.0,
            ..RmspropConfig::new(0.1)
        }
        .validate()
        .unwrap_err()),
        "RMSprop: invalid momentum = 1, valid range: [0, 1)"
    );
    assert_eq!(
        msg(StepDecay::new(0.1, 0, 0.5).unwrap_err()),
        "StepDecay: invalid step_size = 0, valid range: >= 1"
    );
    assert_eq!(
        msg(PlateauConfig {
            factor: 1.5,
            ..Default::default()
        }
        .validate()
        .unwrap_err()),
        "ReduceLrOnPlateau: invalid factor = 1.5, valid range: (0, 1)"
    );
    assert_eq!(
        msg(Penalty::l1(-0.1).validate().unwrap_err()),
        "Penalty: invalid l1 = -0.1, valid range: >= 0"
    );
}

#[test]
fn changing_the_parameter_set_is_an_error() {
    let mut opt = SgdConfig::new(0.1).momentum(0.9).build::<f64>().unwrap();
    let mut a = vec![Param::new(Tensor::from_array([1.0, 2.0]))];
    opt.step(&mut a).unwrap();
    let mut b = vec![Param::new(Tensor::from_array([1.0, 2.0, 3.0]))];
    assert_eq!(
        opt.step(&mut b).unwrap_err().to_string(),
        "SGD: parameter #0 has 3 elements but the optimizer's state was made for 2; the parameter set changed between steps"
    );
}

#[test]
fn elastic_net_penalty_value_and_gradient() {
    // w = [2, -1, 0]: l1 * (2 + 1 + 0) + l2/2 * (4 + 1) = 0.3 + 0.5 = 0.8 for l1=0.1, l2=0.2
    let mut p = Param::new(Tensor::from_array([2.0f64, -1.0, 0.0]));
    let value = Penalty::elastic_net(0.1, 0.2).apply(&mut p);
    assert!((value - 0.8).abs() < 1e-12);
    // grad = l1 sign(w) + l2 w = [0.1 + 0.4, -0.1 - 0.2, 0]
    let g = p.grad().data().to_vec();
    assert!((g[0] - 0.5).abs() < 1e-12 && (g[1] + 0.3).abs() < 1e-12 && g[2] == 0.0);
}
