//! Fully connected (dense) layer: `y = x W^T + b`, with `x: [N, in]`, `W: [out, in]`
//! (PyTorch's layout), `b: [out]`, `y: [N, out]`.

use crate::error::{check, Result};
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{init, Rng, Scalar, Tensor};
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId};

/// Configuration of a [`Linear`] layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearConfig {
    /// Input features, >= 1.
    pub in_features: usize,
    /// Output features, >= 1.
    pub out_features: usize,
    /// Whether to learn a bias (default true).
    pub bias: bool,
}

impl LinearConfig {
    /// `in_features -> out_features`, with bias.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
        }
    }

    /// With or without bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<()> {
        check(
            "Linear",
            "in_features",
            self.in_features as f64,
            self.in_features >= 1,
            ">= 1",
        )?;
        check(
            "Linear",
            "out_features",
            self.out_features as f64,
            self.out_features >= 1,
            ">= 1",
        )
    }

    /// The layer with PyTorch's default initialization: `W, b ~ U(-1/sqrt(in), 1/sqrt(in))`
    /// (Kaiming-uniform with `a = sqrt(5)` for `W`).
    pub fn init<T: Scalar>(self, rng: &mut Rng) -> Result<Linear<T>> {
        self.validate()?;
        let (i, o) = (self.in_features, self.out_features);
        let mut w = Tensor::zeros(&[o, i])?;
        init::kaiming_uniform(w.data_mut(), i, init::leaky_relu_gain(libm_sqrt5()), rng);
        let bias = if self.bias {
            let bound = T::from_f64_lossy(1.0 / libm::sqrt(i as f64));
            let mut b = Tensor::zeros(&[o])?;
            init::uniform(b.data_mut(), -bound, bound, rng);
            Some(Param::new(b))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::new(w),
            bias,
        })
    }
}

/// `sqrt(5)`: torch's `a` for the Kaiming-uniform default of Linear and Conv2d.
fn libm_sqrt5() -> f64 {
    libm::sqrt(5.0)
}

/// A dense layer (see the module doc).
#[derive(Clone, Debug)]
pub struct Linear<T: Scalar = f32> {
    /// `[out, in]`.
    pub weight: Param<T>,
    /// `[out]`, if any.
    pub bias: Option<Param<T>>,
}

impl<T: Scalar> Linear<T> {
    /// A layer from given weights `[out, in]` and optional bias `[out]`.
    pub fn from_weights(weight: Tensor<T>, bias: Option<Tensor<T>>) -> Result<Self> {
        let dims = weight.dims();
        if dims.len() != 2 {
            return Err(dl_core::Error::RankMismatch {
                op: "Linear::from_weights",
                expected: "2 ([out, in])",
                shape: *weight.shape(),
            }
            .into());
        }
        if let Some(b) = &bias {
            if b.dims() != [dims[0]] {
                return Err(dl_core::Error::ShapeMismatch {
                    op: "Linear::from_weights",
                    lhs: *weight.shape(),
                    rhs: *b.shape(),
                    why: "bias must be [out]",
                }
                .into());
            }
        }
        Ok(Linear {
            weight: Param::new(weight),
            bias: bias.map(Param::new),
        })
    }
}

impl<T: Scalar> ParamSet<T> for Linear<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.weight);
        if let Some(b) = &mut self.bias {
            f(b);
        }
    }
}

impl<T: Scalar> Module<T> for Linear<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let w = g.param(&self.weight);
        let b = self.bias.as_ref().map(|b| g.param(b));
        Ok(g.linear(x, w, b)?)
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        let bias = self.bias.as_ref().map(|b| b.value());
        Ok(dl_autograd::linear_into(x, self.weight.value(), bias, out)?)
    }

    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let w = crate::export::f32s(self.weight.value());
        let b = self.bias.as_ref().map(|b| crate::export::f32s(b.value()));
        g.dense(x, &w, b.as_deref(), self.weight.value().dims()[0])
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "weight", &self.weight, f);
        if let Some(b) = &self.bias {
            visit_param(path, "bias", b, f);
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "weight", &mut self.weight, f);
        if let Some(b) = &mut self.bias {
            visit_param_mut(path, "bias", b, f);
        }
    }
}
