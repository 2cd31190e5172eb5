//! Tape behaviour: accumulation, parameters, no-grad mode, stale handles, errors,
//! inspection and buffer reuse.

use dl_autograd::{
    clip_grad_norm, clip_grad_value, Affine, BatchNormMode, Error, Graph, Op, Param, Tape,
};
use dl_core::{Rng, Tensor};

#[test]
fn param_used_twice_accumulates_and_grads_add_across_backwards() {
    let mut p = Param::new(Tensor::from_array([2.0f64, -1.0]));
    for round in 1..=2 {
        let mut g = Graph::new();
        let (a, b) = (g.param(&p), g.param(&p));
        // y = sum(p * p + 3 p): dy/dp = 2p + 3, registered twice, used three times.
        let sq = g.mul(a, b).unwrap();
        let three = g.mul_scalar(a, 3.0).unwrap();
        let s = g.add(sq, three).unwrap();
        let y = g.sum_all(s).unwrap();
        g.backward(y).unwrap();
        drop(g);
        let r = round as f64;
        assert_eq!(p.grad().data(), &[7.0 * r, 1.0 * r], "round {round}");
    }
    p.zero_grad();
    assert_eq!(p.grad().data(), &[0.0, 0.0]);
}

#[test]
fn no_grad_mode_computes_the_same_values_and_refuses_backward() {
    let p = Param::new(Tensor::from_rows([[1.0f32, 2.0], [3.0, 4.0]]));
    let x = Tensor::from_rows([[1.0f32, -1.0]]);
    fn run<'p>(g: &mut Graph<'p, f32>, p: &'p Param<f32>, x: &Tensor<f32>) -> dl_autograd::Var {
        let xv = g.input(x);
        let w = g.param(p);
        let y = g.matmul(xv, w).unwrap();
        g.relu(y).unwrap()
    }
    let mut g1 = Graph::new();
    let y1 = run(&mut g1, &p, &x);
    let mut g2 = Graph::new_no_grad();
    let y2 = run(&mut g2, &p, &x);
    assert_eq!(g1.value(y1).unwrap().data(), g2.value(y2).unwrap().data());
    assert_eq!(g2.value(y2).unwrap().data(), &[0.0, 0.0]); // relu([-2, -2])
    assert!(!g2.requires_grad(y2).unwrap());
    let s = g2.sum_all(y2).unwrap();
    assert!(matches!(g2.backward(s), Err(Error::NoGradient { .. })));
    // Turning recording off mid-graph: later nodes carry no gradient.
    g1.set_grad_enabled(false);
    let z = g1.sum_all(y1).unwrap();
    assert!(!g1.requires_grad(z).unwrap());
}

#[test]
fn errors_for_stale_handles_non_scalars_and_constants() {
    let mut g = Graph::<f32>::new();
    let x = g.variable(&Tensor::from_array([1.0, 2.0]));
    assert_eq!(
        g.backward(x).unwrap_err().to_string(),
        "backward: can only start from a scalar (one element), got shape [2]"
    );
    let c = g.scalar(1.0);
    assert!(matches!(g.backward(c), Err(Error::NoGradient { .. })));
    g.clear();
    assert!(matches!(g.exp(x), Err(Error::StaleVar { .. })));
    let mut other = Graph::<f32>::new();
    let y = other.scalar(1.0);
    let mut g = Graph::<f32>::new();
    g.scalar(2.0);
    assert!(matches!(g.value(y), Err(Error::StaleVar { .. })));
    assert!(g.grad(y).is_none());
}

#[test]
fn ops_are_inspectable() {
    let mut g = Graph::<f32>::new();
    let a = g.input(&Tensor::from_rows([[1.0, 2.0]]));
    let b = g.variable(&Tensor::from_rows([[3.0], [4.0]]));
    let c = g.matmul(a, b).unwrap();
    assert_eq!(g.op(c).unwrap(), Op::MatMul { a, b });
    assert_eq!(g.op(c).unwrap().name(), "matmul");
    assert_eq!(g.inputs(c).unwrap(), vec![a, b]);
    let k = g.concat(&[a, a, a], 0).unwrap();
    assert_eq!(g.op(k).unwrap(), Op::Concat { axis: 0, count: 3 });
    assert_eq!(g.inputs(k).unwrap(), vec![a, a, a]);
    assert_eq!(g.value(k).unwrap().dims(), &[3, 2]);
    assert_eq!(g.len(), 4);
    let t = Tensor::from_array([5.0f32, 6.0]);
    let mut g = Graph::<f32>::new();
    let r = g.input_ref(&t);
    assert_eq!(g.op(r).unwrap(), Op::InputRef { index: 0 });
    assert_eq!(g.value(r).unwrap().data(), &[5.0, 6.0]);
    let s = g.sum_all(r).unwrap();
    assert_eq!(g.value(s).unwrap().data(), &[11.0]);
    assert!(!g.requires_grad(s).unwrap());
}

#[test]
fn cleared_graph_and_tape_reuse_buffers() {
    let p = Param::new(Tensor::from_rows([[1.0f32, 2.0], [3.0, 4.0]]));
    let x = [1.0f32, -1.0, 0.5, 2.0];
    let mut g = Graph::new();
    let mut ptrs = Vec::new();
    for _ in 0..3 {
        g.clear();
        let xv = g.input_slice(&x, &[2, 2]).unwrap();
        let w = g.param(&p);
        let y = g.matmul(xv, w).unwrap();
        let y = g.tanh(y).unwrap();
        let l = g.mean_all(y).unwrap();
        g.backward(l).unwrap();
        ptrs.push((
            g.value(y).unwrap().data().as_ptr(),
            g.grad(y).unwrap().data().as_ptr(),
        ));
    }
    // Same buffers on every step: nothing was reallocated.
    assert_eq!(ptrs[0], ptrs[1]);
    assert_eq!(ptrs[1], ptrs[2]);
    let tape: Tape<f32> = g.into_tape();
    assert_eq!(tape.slots(), 5);
}

#[test]
fn param_grad_borrowed_during_backward_is_an_error() {
    let p = Param::new(Tensor::from_array([1.0f32]));
    let mut g = Graph::new();
    let v = g.param(&p);
    let y = g.sum_all(v).unwrap();
    let guard = p.grad();
    assert_eq!(g.backward(y), Err(Error::GradBorrowed));
    drop(guard);
    g.backward(y).unwrap();
    assert_eq!(p.grad().data(), &[1.0]);
}

#[test]
fn hyper_parameters_are_validated_by_name() {
    let mut g = Graph::<f32>::new();
    let x = g.input(&Tensor::ones(&[2, 3]).unwrap());
    let mut rng = Rng::seed_from_u64(1);
    for p in [1.0, -0.1, f64::NAN] {
        let e = g.dropout(x, p, true, &mut rng).unwrap_err().to_string();
        assert!(e.starts_with("dropout: invalid p = "), "{e}");
        assert!(e.ends_with("valid range: 0 <= p < 1"), "{e}");
    }
    assert_eq!(
        g.huber(x, x, 0.0).unwrap_err().to_string(),
        "huber: invalid delta = 0, valid range: > 0 and finite"
    );
    assert_eq!(
        g.layer_norm(x, None, -1.0).unwrap_err().to_string(),
        "layer_norm: invalid eps = -1, valid range: > 0 and finite"
    );
    assert_eq!(
        g.cross_entropy(x, &[0, 3]).unwrap_err().to_string(),
        "softmax_cross_entropy: index 3 is out of range (must be < 3)"
    );
    let one = g.input(&Tensor::ones(&[1, 3]).unwrap());
    assert!(g.batch_norm(one, None, BatchNormMode::Train, 1e-5).is_err());
}

#[test]
fn batch_norm_reports_batch_statistics() {
    let mut g = Graph::<f64>::new();
    // Two channels over a batch of 4: [1, 2, 3, 4] and [10, 10, 10, 14].
    let x = g.input(&Tensor::from_rows([
        [1.0, 10.0],
        [2.0, 10.0],
        [3.0, 10.0],
        [4.0, 14.0],
    ]));
    let gamma = g.variable(&Tensor::from_array([2.0, 1.0]));
    let beta = g.variable(&Tensor::from_array([0.5, 0.0]));
    let y = g
        .batch_norm(x, Some(Affine { gamma, beta }), BatchNormMode::Train, 1e-5)
        .unwrap();
    let stats = g.batch_norm_stats(y).unwrap();
    assert_eq!(stats.mean, &[2.5, 11.0]);
    assert_eq!(stats.var, &[1.25, 3.0]);
    assert_eq!(stats.count, 4);
    assert!((stats.unbiased_var(0) - 5.0 / 3.0).abs() < 1e-12);
    // y = 2 (1 - 2.5) / sqrt(1.25 + 1e-5) + 0.5 for the first element.
    let y0 = g.value(y).unwrap().data()[0];
    assert!((y0 - (2.0 * -1.5 / (1.25f64 + 1e-5).sqrt() + 0.5)).abs() < 1e-12);
    assert!(g.batch_norm_stats(x).is_none());
}

#[test]
fn clipping_by_value_and_by_global_norm() {
    let mut a = Param::new(Tensor::from_array([0.0f32, 0.0]));
    let mut b = Param::new(Tensor::from_array([0.0f32]));
    a.grad_mut().data_mut().copy_from_slice(&[3.0, -0.5]);
    b.grad_mut().data_mut()[0] = -4.0;
    clip_grad_value(&mut [&mut a, &mut b], 1.0).unwrap();
    assert_eq!(a.grad().data(), &[1.0, -0.5]);
    assert_eq!(b.grad().data(), &[-1.0]);
    // Norm sqrt(1 + 0.25 + 1) = 1.5; clipped to 0.75 halves every entry.
    let n = clip_grad_norm(&mut [&mut a, &mut b], 0.75).unwrap();
    assert!((n - 1.5).abs() < 1e-6);
    assert!((a.grad().data()[0] - 0.5).abs() < 1e-6);
    // Below the bound nothing changes, and the norm is still reported.
    let n2 = clip_grad_norm(&mut [&mut a, &mut b], 10.0).unwrap();
    assert!((n2 - 0.75).abs() < 1e-5);
    assert!((a.grad().data()[0] - 0.5).abs() < 1e-6);
    assert!(clip_grad_norm(&mut [&mut a], -1.0).is_err());
    assert!(clip_grad_value(&mut [&mut a], f32::NAN).is_err());
}

#[test]
fn dropout_in_eval_is_identity_and_in_train_scales() {
    let mut g = Graph::<f64>::new();
    let x = g.variable(&Tensor::ones(&[10_000]).unwrap());
    let mut rng = Rng::seed_from_u64(3);
    assert_eq!(g.dropout(x, 0.25, false, &mut rng).unwrap(), x);
    let y = g.dropout(x, 0.25, true, &mut rng).unwrap();
    let v = g.value(y).unwrap().data().to_vec();
    let kept = v.iter().filter(|&&e| e != 0.0).count();
    assert!(v.iter().all(|&e| e == 0.0 || (e - 4.0 / 3.0).abs() < 1e-12));
    assert!((7_300..7_700).contains(&kept), "{kept}");
    let s = g.sum_all(y).unwrap();
    g.backward(s).unwrap();
    // The gradient is the mask itself.
    assert_eq!(g.grad(x).unwrap().data(), &v[..]);
}

#[test]
fn zero_grad_is_lazy_but_exact() {
    let mut p = Param::new(Tensor::from_array([1.0f64, 2.0]));
    let mut q = Param::new(Tensor::from_array([3.0f64]));
    p.grad_mut().data_mut().copy_from_slice(&[5.0, 5.0]);
    q.grad_mut().data_mut()[0] = 7.0;
    p.zero_grad();
    q.zero_grad();
    {
        let mut g = Graph::new();
        let (pv, qv) = (g.param(&p), g.param(&q));
        let _unused = g.exp(pv).unwrap();
        // loss = 2 q: p is registered but takes no part.
        let l = g.mul_scalar(qv, 2.0).unwrap();
        let l = g.sum_all(l).unwrap();
        g.backward(l).unwrap();
    }
    // q's stale 7 was overwritten, not added to; p reads as zero.
    assert_eq!(q.grad().data(), &[2.0]);
    assert_eq!(p.grad().data(), &[0.0, 0.0]);
    let (_, grad) = q.value_and_grad_mut();
    assert_eq!(grad, &[2.0]);
}
