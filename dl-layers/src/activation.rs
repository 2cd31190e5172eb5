//! Activation functions as layers: sigmoid, tanh, ReLU, ReLU6, leaky ReLU, identity
//! (linear), GELU, SiLU, and softmax / log-softmax over the last axis for outputs.

use crate::error::Result;
use crate::module::{infer_on_graph, Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::elementwise::{unary, Unary};
use dl_core::{Scalar, Shape, Tensor};

/// An activation layer (no parameters).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `max(0, x)`.
    Relu,
    /// `min(max(0, x), 6)` (MobileNet's); gradient 1 strictly inside `(0, 6)`, else 0.
    Relu6,
    /// `x` if `x > 0`, else `slope * x`.
    LeakyRelu(f64),
    /// `x` (a linear output).
    Identity,
    /// `x Phi(x)`, the exact (erf) form.
    Gelu,
    /// `x sigmoid(x)`.
    Silu,
    /// `e^x_i / sum_j e^x_j` over the last axis.
    Softmax,
    /// `log softmax` over the last axis.
    LogSoftmax,
}

impl<T: Scalar> ParamSet<T> for Activation {
    fn for_each_param(&mut self, _f: &mut dyn FnMut(&mut Param<T>)) {}
}

impl Activation {
    /// The element-wise op behind this activation (`None` for the softmaxes, which
    /// work on whole rows).
    fn elementwise(self) -> Option<Unary> {
        Some(match self {
            Activation::Sigmoid => Unary::Sigmoid,
            Activation::Tanh => Unary::Tanh,
            Activation::Relu => Unary::Relu,
            Activation::Relu6 => Unary::Relu6,
            Activation::LeakyRelu(s) => Unary::LeakyRelu(s),
            Activation::Identity => Unary::Identity,
            Activation::Gelu => Unary::Gelu,
            Activation::Silu => Unary::Silu,
            Activation::Softmax | Activation::LogSoftmax => return None,
        })
    }
}

impl<T: Scalar> Module<T> for Activation {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        Ok(match self.elementwise() {
            Some(op) => g.unary(op, x)?,
            None if *self == Activation::Softmax => g.softmax(x)?,
            None => g.log_softmax(x)?,
        })
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        // The graph op's kernel; the softmaxes, and a slope the graph rejects (so its
        // error is the one returned), go through the graph.
        match self.elementwise() {
            Some(op) if !matches!(op, Unary::LeakyRelu(s) if !s.is_finite()) => {
                out.resize_to(*x.shape());
                Ok(unary(op, x.data(), out.data_mut())?)
            }
            _ => infer_on_graph(self, x, out),
        }
    }

    fn lower(
        &self,
        g: &mut dl_deploy::Graph,
        x: dl_deploy::TensorId,
    ) -> dl_deploy::Result<dl_deploy::TensorId> {
        use dl_deploy::Unary as U;
        let f = match *self {
            Activation::Identity => return Ok(x),
            Activation::Softmax => return g.softmax(x),
            Activation::Relu => U::Relu,
            Activation::Relu6 => U::Relu6,
            Activation::LeakyRelu(s) => U::LeakyRelu(s as f32),
            Activation::Sigmoid => U::Sigmoid,
            Activation::Tanh => U::Tanh,
            Activation::Gelu | Activation::Silu | Activation::LogSoftmax => {
                return Err(crate::export::unsupported::<Self>(
                    "GELU, SiLU and log-softmax have no deployable kernel (ReLU, ReLU6, leaky ReLU, sigmoid, tanh and softmax do)",
                ))
            }
        };
        g.unary(x, f)
    }

    fn visit(&self, _path: &mut Path, _f: &mut dyn FnMut(&str, Entry<'_, T>)) {}

    fn visit_mut(&mut self, _path: &mut Path, _f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {}
}

/// Flattens `[N, ...]` to `[N, prod(...)]` (between convolutions and dense layers).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Flatten;

impl<T: Scalar> ParamSet<T> for Flatten {
    fn for_each_param(&mut self, _f: &mut dyn FnMut(&mut Param<T>)) {}
}

impl<T: Scalar> Module<T> for Flatten {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let shape = g.shape(x)?;
        let dims = shape.dims();
        let n = dims.first().copied().unwrap_or(1);
        let rest: usize = dims.iter().skip(1).product();
        Ok(g.reshape(x, &[n, rest])?)
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        let dims = x.dims();
        let n = dims.first().copied().unwrap_or(1);
        let rest: usize = dims.iter().skip(1).product();
        out.resize_to(Shape::new(&[n, rest])?);
        out.data_mut().copy_from_slice(x.data());
        Ok(())
    }

    fn lower(
        &self,
        g: &mut dl_deploy::Graph,
        x: dl_deploy::TensorId,
    ) -> dl_deploy::Result<dl_deploy::TensorId> {
        g.flatten(x)
    }

    fn visit(&self, _path: &mut Path, _f: &mut dyn FnMut(&str, Entry<'_, T>)) {}

    fn visit_mut(&mut self, _path: &mut Path, _f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {}
}
