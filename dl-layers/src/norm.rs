//! Normalization layers: batch norm over channels (`[N, C]` or `[N, C, H, W]`) and
//! layer norm over the last axis.
//!
//! Batch norm, as `torch.nn.BatchNorm1d/2d`: in training
//! `y = gamma (x - mean_B) / sqrt(var_B + eps) + beta` with the batch's statistics,
//! and the running statistics move by `momentum` towards the batch's (the running
//! variance uses the unbiased batch variance); in evaluation the running statistics
//! are used instead.

use crate::error::{check, Result};
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use alloc::vec::Vec;
use core::cell::RefCell;
use dl_autograd::{Affine, BatchNormMode, Graph, Param, ParamSet, Var};
use dl_core::{Scalar, Tensor};
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId};

/// Batch normalization (1-d for `[N, C]`, 2-d for `[N, C, H, W]`; one layer serves both).
#[derive(Debug)]
pub struct BatchNorm<T: Scalar = f32> {
    /// Scale `[C]`, initialized to 1.
    pub gamma: Param<T>,
    /// Shift `[C]`, initialized to 0.
    pub beta: Param<T>,
    // The forward pass takes `&self` (the graph borrows the parameters), yet training
    // must update these: interior mutability, single-threaded by construction.
    running_mean: RefCell<Tensor<T>>,
    running_var: RefCell<Tensor<T>>,
    momentum: f64,
    eps: f64,
}

impl<T: Scalar> BatchNorm<T> {
    /// Batch norm over `channels` with torch's defaults (momentum 0.1, eps 1e-5).
    pub fn new(channels: usize) -> Result<Self> {
        Self::with(channels, 0.1, 1e-5)
    }

    /// Batch norm with explicit momentum in (0, 1] and eps > 0.
    pub fn with(channels: usize, momentum: f64, eps: f64) -> Result<Self> {
        check(
            "BatchNorm",
            "channels",
            channels as f64,
            channels >= 1,
            ">= 1",
        )?;
        check(
            "BatchNorm",
            "momentum",
            momentum,
            momentum > 0.0 && momentum <= 1.0,
            "(0, 1]",
        )?;
        check("BatchNorm", "eps", eps, eps > 0.0, "> 0")?;
        Ok(BatchNorm {
            gamma: Param::new(Tensor::ones(&[channels])?),
            beta: Param::new(Tensor::zeros(&[channels])?),
            running_mean: RefCell::new(Tensor::zeros(&[channels])?),
            running_var: RefCell::new(Tensor::ones(&[channels])?),
            momentum,
            eps,
        })
    }

    /// A copy of the running mean.
    pub fn running_mean(&self) -> Tensor<T> {
        self.running_mean.borrow().clone()
    }

    /// A copy of the running variance.
    pub fn running_var(&self) -> Tensor<T> {
        self.running_var.borrow().clone()
    }
}

impl<T: Scalar> ParamSet<T> for BatchNorm<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.gamma);
        f(&mut self.beta);
    }
}

impl<T: Scalar> Module<T> for BatchNorm<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        let affine = Affine {
            gamma: g.param(&self.gamma),
            beta: g.param(&self.beta),
        };
        if !ctx.train {
            let (rm, rv) = (self.running_mean.borrow(), self.running_var.borrow());
            let mode = BatchNormMode::Eval {
                running_mean: rm.data(),
                running_var: rv.data(),
            };
            return Ok(g.batch_norm(x, Some(affine), mode, self.eps)?);
        }
        let y = g.batch_norm(x, Some(affine), BatchNormMode::Train, self.eps)?;
        if let Some(stats) = g.batch_norm_stats(y) {
            let m = T::from_f64_lossy(self.momentum);
            let mut rm = self.running_mean.borrow_mut();
            let mut rv = self.running_var.borrow_mut();
            for (c, (mean, var)) in rm.data_mut().iter_mut().zip(rv.data_mut()).enumerate() {
                *mean = (T::ONE - m) * *mean + m * stats.mean[c];
                *var = (T::ONE - m) * *var + m * stats.unbiased_var(c);
            }
        }
        Ok(y)
    }

    /// Folds into the layer before it: `scale = gamma / sqrt(running_var + eps)`,
    /// `shift = beta - running_mean * scale`, in f64.
    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let (mean, var) = (self.running_mean.borrow(), self.running_var.borrow());
        let parts = self
            .gamma
            .value()
            .data()
            .iter()
            .zip(self.beta.value().data())
            .zip(mean.data().iter().zip(var.data()));
        let (scale, shift): (Vec<f32>, Vec<f32>) = parts
            .map(|((&gm, &bt), (&m, &v))| {
                let s = gm.to_f64_lossless() / libm::sqrt(v.to_f64_lossless() + self.eps);
                (
                    s as f32,
                    (bt.to_f64_lossless() - m.to_f64_lossless() * s) as f32,
                )
            })
            .unzip();
        g.batch_norm(x, &scale, &shift)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "weight", &self.gamma, f);
        visit_param(path, "bias", &self.beta, f);
        let rm = self.running_mean.borrow();
        path.with("running_mean", |p| f(p.as_str(), Entry::Buffer(&rm)));
        let rv = self.running_var.borrow();
        path.with("running_var", |p| f(p.as_str(), Entry::Buffer(&rv)));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "weight", &mut self.gamma, f);
        visit_param_mut(path, "bias", &mut self.beta, f);
        let rm = self.running_mean.get_mut();
        path.with("running_mean", |p| f(p.as_str(), EntryMut::Buffer(rm)));
        let rv = self.running_var.get_mut();
        path.with("running_var", |p| f(p.as_str(), EntryMut::Buffer(rv)));
    }
}

/// Layer normalization over the last axis of size `D`, with learnable `gamma`, `beta`
/// (`[D]`), as `torch.nn.LayerNorm(D)`.
#[derive(Clone, Debug)]
pub struct LayerNorm<T: Scalar = f32> {
    /// Scale `[D]`, initialized to 1.
    pub gamma: Param<T>,
    /// Shift `[D]`, initialized to 0.
    pub beta: Param<T>,
    eps: f64,
}

impl<T: Scalar> LayerNorm<T> {
    /// Layer norm over `d` features, eps 1e-5.
    pub fn new(d: usize) -> Result<Self> {
        check("LayerNorm", "features", d as f64, d >= 1, ">= 1")?;
        Ok(LayerNorm {
            gamma: Param::new(Tensor::ones(&[d])?),
            beta: Param::new(Tensor::zeros(&[d])?),
            eps: 1e-5,
        })
    }
}

impl<T: Scalar> ParamSet<T> for LayerNorm<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.gamma);
        f(&mut self.beta);
    }
}

impl<T: Scalar> Module<T> for LayerNorm<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let affine = Affine {
            gamma: g.param(&self.gamma),
            beta: g.param(&self.beta),
        };
        Ok(g.layer_norm(x, Some(affine), self.eps)?)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "weight", &self.gamma, f);
        visit_param(path, "bias", &self.beta, f);
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "weight", &mut self.gamma, f);
        visit_param_mut(path, "bias", &mut self.beta, f);
    }
}
