//! Activation functions as layers: sigmoid, tanh, ReLU, leaky ReLU, identity (linear),
//! GELU, SiLU, and softmax / log-softmax over the last axis for outputs.

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

impl<T: Scalar> Module<T> for Activation {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        Ok(match *self {
            Activation::Sigmoid => g.sigmoid(x)?,
            Activation::Tanh => g.tanh(x)?,
            Activation::Relu => g.relu(x)?,
            Activation::LeakyRelu(s) => g.leaky_relu(x, s)?,
            Activation::Identity => g.identity(x)?,
            Activation::Gelu => g.gelu(x)?,
            Activation::Silu => g.silu(x)?,
            Activation::Softmax => g.softmax(x)?,
            Activation::LogSoftmax => g.log_softmax(x)?,
        })
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        // The same kernels as the graph's ops; the rest (a slope to validate, the
        // softmaxes) go through the graph.
        let op = match *self {
            Activation::Sigmoid => Unary::Sigmoid,
            Activation::Tanh => Unary::Tanh,
            Activation::Relu => Unary::Relu,
            Activation::Identity => Unary::Identity,
            Activation::Gelu => Unary::Gelu,
            Activation::Silu => Unary::Silu,
            _ => return infer_on_graph(self, x, out),
        };
        out.resize_to(*x.shape());
        Ok(unary(op, x.data(), out.data_mut())?)
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

    fn visit(&self, _path: &mut Path, _f: &mut dyn FnMut(&str, Entry<'_, T>)) {}

    fn visit_mut(&mut self, _path: &mut Path, _f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {}
}
