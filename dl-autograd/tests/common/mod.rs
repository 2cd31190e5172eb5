//! The gradient-check machinery shared by `gradcheck.rs` (every op and loss) and
//! `gradcheck_fused.rs` (the fused recurrent and self-attention ops): the tolerance
//! table, the one comparison helper, and the record of which ops the checks really
//! ran (module [`coverage`]).
//!
//! Each case builds `L = sum(f(inputs) * W)` with a fixed, non-uniform weight `W` (so
//! every output element is weighted differently), runs backward once, then perturbs
//! every differentiated input element by `+-eps` and re-evaluates `L` on a no-grad
//! graph.
#![allow(dead_code)]

pub mod coverage;

use dl_autograd::{Graph, Param, Var};
use dl_core::{Scalar, Tensor};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Tolerance table: finite-difference step and the largest allowed error, measured
/// as `|analytic - numeric| / max(1, |analytic|, |numeric|)` (relative for gradients
/// of magnitude >= 1, absolute below).
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub eps: f64,
    pub max_err: f64,
}

/// f64: step 1e-6 leaves truncation ~1e-12 and rounding ~1e-10; the bound is 1e-6.
pub const F64: Tol = Tol {
    eps: 1e-6,
    max_err: 1e-6,
};
/// f32: rounding of the loss (~1e-7 relative) over a step of 1e-2 gives ~1e-5, the
/// truncation ~1e-4 times the third derivative; the bound is 1e-2.
pub const F32: Tol = Tol {
    eps: 1e-2,
    max_err: 1e-2,
};

/// One input of a case: values (f64, converted to the test's type) and dims.
#[derive(Clone, Debug)]
pub struct Input {
    pub data: Vec<f64>,
    pub dims: Vec<usize>,
}

impl Input {
    pub fn tensor<T: Scalar>(&self) -> Tensor<T> {
        Tensor::from_vec(
            self.data.iter().map(|&v| T::from_f64_lossy(v)).collect(),
            &self.dims,
        )
        .unwrap()
    }
}

/// How an input enters the checked graph: constants as [`Graph::input`] or
/// [`Graph::input_ref`], differentiated inputs as [`Graph::variable`] (gradient read
/// with [`Graph::grad`]) or [`Graph::param`] (gradient read from the [`Param`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    Input,
    InputRef,
    Variable,
    Param,
}

impl Leaf {
    fn differentiated(self) -> bool {
        matches!(self, Leaf::Variable | Leaf::Param)
    }
}

/// The weight `W` for an output of `n` elements: fixed, varied, none zero.
pub fn weights(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 + ((i * 7 + 3) % 11) as f64 / 10.0 * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect()
}

pub type OpFn<'a, T> = &'a dyn Fn(&mut Graph<'_, T>, &[Var]) -> dl_autograd::Result<Var>;

/// `L = sum(f(inputs) * W)` on a graph; returns the loss var.
pub fn build_loss<T: Scalar>(
    g: &mut Graph<'_, T>,
    vars: &[Var],
    f: OpFn<'_, T>,
) -> dl_autograd::Result<Var> {
    let out = f(g, vars)?;
    let shape = g.shape(out)?;
    let w: Vec<T> = weights(shape.numel())
        .into_iter()
        .map(T::from_f64_lossy)
        .collect();
    let w = g.input_slice(&w, shape.dims())?;
    let weighted = g.mul(out, w)?;
    g.sum_all(weighted)
}

/// The loss at `inputs`, on a no-grad graph.
pub fn eval_loss<T: Scalar>(inputs: &[Tensor<T>], f: OpFn<'_, T>) -> f64 {
    let mut g = Graph::<T>::new_no_grad();
    let vars: Vec<Var> = inputs.iter().map(|t| g.input(t)).collect();
    let loss = build_loss(&mut g, &vars, f).unwrap();
    g.value(loss).unwrap().data()[0].to_f64_lossless()
}

/// The leaf kinds for "differentiate the inputs listed in `diff`, the rest are
/// constants".
pub fn leaves(count: usize, diff: &[usize]) -> Vec<Leaf> {
    (0..count)
        .map(|i| {
            if diff.contains(&i) {
                Leaf::Variable
            } else {
                Leaf::Input
            }
        })
        .collect()
}

/// The analytic gradient of every input (`None` for constants) from one backward
/// pass, with each input entering the graph as `kinds` says. Records the ops of the
/// graph for [`coverage`].
pub fn analytic<T: Scalar>(
    inputs: &[Input],
    kinds: &[Leaf],
    f: OpFn<'_, T>,
) -> Result<Vec<Option<Vec<f64>>>, TestCaseError> {
    let tensors: Vec<Tensor<T>> = inputs.iter().map(Input::tensor).collect();
    let params: Vec<Param<T>> = tensors.iter().map(|t| Param::new(t.clone())).collect();
    let mut g = Graph::<T>::new();
    let vars: Vec<Var> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| match kind {
            Leaf::Input => g.input(&tensors[i]),
            Leaf::InputRef => g.input_ref(&tensors[i]),
            Leaf::Variable => g.variable(&tensors[i]),
            Leaf::Param => g.param(&params[i]),
        })
        .collect();
    let loss = build_loss(&mut g, &vars, f)
        .map_err(|e| TestCaseError::fail(format!("forward failed: {e}")))?;
    coverage::record(&g, loss);
    g.backward(loss)
        .map_err(|e| TestCaseError::fail(format!("backward failed: {e}")))?;
    let to_f64 = |t: &Tensor<T>| t.data().iter().map(|v| v.to_f64_lossless()).collect();
    Ok(kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| match kind {
            Leaf::Input | Leaf::InputRef => None,
            // No gradient slot: the loss does not depend on this input.
            Leaf::Variable => Some(
                g.grad(vars[i])
                    .map(to_f64)
                    .unwrap_or_else(|| vec![0.0; tensors[i].numel()]),
            ),
            Leaf::Param => Some(to_f64(&params[i].grad())),
        })
        .collect())
}

/// The one comparison helper: analytic vs central differences for every element of
/// every differentiated input (the others are constants). Returns the worst error.
pub fn gradcheck_leaves<T: Scalar>(
    inputs: &[Input],
    kinds: &[Leaf],
    tol: Tol,
    f: OpFn<'_, T>,
) -> Result<f64, TestCaseError> {
    assert_eq!(inputs.len(), kinds.len(), "one leaf kind per input");
    let tensors: Vec<Tensor<T>> = inputs.iter().map(Input::tensor).collect();
    let grads = analytic(inputs, kinds, f)?;
    let mut worst = 0.0f64;
    for (i, grad) in grads.iter().enumerate() {
        let Some(grad) = grad else { continue };
        debug_assert!(kinds[i].differentiated());
        for (j, &a) in grad.iter().enumerate() {
            let mut probe = tensors.clone();
            let x0 = tensors[i].data()[j];
            let h = T::from_f64_lossy(tol.eps);
            probe[i].data_mut()[j] = x0 + h;
            let up = eval_loss(&probe, f);
            probe[i].data_mut()[j] = x0 - h;
            let down = eval_loss(&probe, f);
            // The step actually taken, after rounding to T.
            let step = ((x0 + h) - (x0 - h)).to_f64_lossless();
            let numeric = (up - down) / step;
            let err = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            worst = worst.max(err);
            prop_assert!(
                err < tol.max_err,
                "{}: input {i} ({:?}) element {j}: analytic {a}, numeric {numeric}, error {err:e} (shapes {:?})",
                T::NAME,
                kinds[i],
                inputs.iter().map(|x| x.dims.clone()).collect::<Vec<_>>()
            );
        }
    }
    Ok(worst)
}

/// [`gradcheck_leaves`] with the inputs in `diff` as variables, the rest as
/// copied constants.
pub fn gradcheck<T: Scalar>(
    inputs: &[Input],
    diff: &[usize],
    tol: Tol,
    f: OpFn<'_, T>,
) -> Result<f64, TestCaseError> {
    gradcheck_leaves(inputs, &leaves(inputs.len(), diff), tol, f)
}

/// With `GRADCHECK_REPORT=1`, prints each case's worst error (for the tolerance
/// table in the docs); silent otherwise.
pub fn report(ty: &str, body: &str, worst: f64) {
    if std::env::var_os("GRADCHECK_REPORT").is_some() {
        let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("GRADCHECK\t{ty}\t{body}\t{worst:e}");
    }
}

/// Runs the same op body in f64 and f32 (with [`F64`] and [`F32`] unless
/// `tol = (f64_tol, f32_tol);` comes first). `S` is the element type inside the
/// body; `leaves = kinds;` instead of a `diff` list picks each input's leaf kind.
macro_rules! check_both {
    (@run ($t64:expr, $t32:expr) $inputs:expr, $kinds:expr, |$g:ident, $v:ident| $body:expr) => {{
        let inputs = $inputs;
        let kinds: Vec<$crate::common::Leaf> = ($kinds)(inputs.len());
        {
            #[allow(dead_code)]
            type S = f64;
            let worst = $crate::common::gradcheck_leaves::<S>(
                &inputs,
                &kinds,
                $t64,
                &|$g: &mut ::dl_autograd::Graph<'_, S>, $v: &[::dl_autograd::Var]| $body,
            )?;
            $crate::common::report("f64", stringify!($body), worst);
        }
        {
            #[allow(dead_code)]
            type S = f32;
            let worst = $crate::common::gradcheck_leaves::<S>(
                &inputs,
                &kinds,
                $t32,
                &|$g: &mut ::dl_autograd::Graph<'_, S>, $v: &[::dl_autograd::Var]| $body,
            )?;
            $crate::common::report("f32", stringify!($body), worst);
        }
    }};
    (tol = ($t64:expr, $t32:expr); $inputs:expr, $diff:expr, |$g:ident, $v:ident| $body:expr) => {
        $crate::common::check_both!(@run ($t64, $t32) $inputs,
            |n: usize| $crate::common::leaves(n, &$diff), |$g, $v| $body)
    };
    (leaves = $kinds:expr; $inputs:expr, |$g:ident, $v:ident| $body:expr) => {
        $crate::common::check_both!(@run ($crate::common::F64, $crate::common::F32)
            $inputs, |_: usize| $kinds.to_vec(), |$g, $v| $body)
    };
    ($inputs:expr, $diff:expr, |$g:ident, $v:ident| $body:expr) => {
        $crate::common::check_both!(tol = ($crate::common::F64, $crate::common::F32);
            $inputs, $diff, |$g, $v| $body)
    };
}
pub(crate) use check_both;

/// `cases` cases per property from a fixed seed (so CI is deterministic); set
/// `GRADCHECK_SEED` to explore others.
pub fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("GRADCHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}
