//! The residual block of ResNet ("basic block"):
//! `y = relu(bn2(conv2(relu(bn1(conv1(x))))) + skip(x))`, with 3x3 convolutions, where
//! `skip` is the identity, or a 1x1 convolution + batch norm ("projection") when the
//! stride or the channel count changes.

use crate::conv::{Conv2d, Conv2dConfig};
use crate::error::Result;
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use crate::norm::BatchNorm;
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{Rng, Scalar};
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId, Unary};

/// A ResNet basic block (see the module doc).
#[derive(Debug)]
pub struct ResidualBlock<T: Scalar = f32> {
    conv1: Conv2d<T>,
    bn1: BatchNorm<T>,
    conv2: Conv2d<T>,
    bn2: BatchNorm<T>,
    /// 1x1 projection when shapes change, else identity.
    projection: Option<(Conv2d<T>, BatchNorm<T>)>,
}

impl<T: Scalar> ResidualBlock<T> {
    /// A block from `c_in` to `c_out` channels; `stride` 2 halves height and width.
    pub fn new(c_in: usize, c_out: usize, stride: usize, rng: &mut Rng) -> Result<Self> {
        let conv3 = |ci, co, s, rng: &mut Rng| {
            Conv2dConfig::new(ci, co, 3)
                .stride(s)
                .padding(1)
                .bias(false)
                .init(rng)
        };
        let projection = if stride != 1 || c_in != c_out {
            Some((
                Conv2dConfig::new(c_in, c_out, 1)
                    .stride(stride)
                    .bias(false)
                    .init(rng)?,
                BatchNorm::new(c_out)?,
            ))
        } else {
            None
        };
        Ok(ResidualBlock {
            conv1: conv3(c_in, c_out, stride, rng)?,
            bn1: BatchNorm::new(c_out)?,
            conv2: conv3(c_out, c_out, 1, rng)?,
            bn2: BatchNorm::new(c_out)?,
            projection,
        })
    }
}

impl<T: Scalar> ParamSet<T> for ResidualBlock<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.conv1.for_each_param(f);
        self.bn1.for_each_param(f);
        self.conv2.for_each_param(f);
        self.bn2.for_each_param(f);
        if let Some((c, b)) = &mut self.projection {
            c.for_each_param(f);
            b.for_each_param(f);
        }
    }
}

impl<T: Scalar> Module<T> for ResidualBlock<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        let h = self.conv1.forward(g, x, ctx)?;
        let h = self.bn1.forward(g, h, ctx)?;
        let h = g.relu(h)?;
        let h = self.conv2.forward(g, h, ctx)?;
        let h = self.bn2.forward(g, h, ctx)?;
        let skip = match &self.projection {
            Some((c, b)) => {
                let s = c.forward(g, x, ctx)?;
                b.forward(g, s, ctx)?
            }
            None => x,
        };
        let y = g.add(h, skip)?;
        Ok(g.relu(y)?)
    }

    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let h = self.conv1.lower(g, x)?;
        let h = self.bn1.lower(g, h)?;
        let h = g.unary(h, Unary::Relu)?;
        let h = self.conv2.lower(g, h)?;
        let h = self.bn2.lower(g, h)?;
        let skip = match &self.projection {
            Some((c, b)) => {
                let s = c.lower(g, x)?;
                b.lower(g, s)?
            }
            None => x,
        };
        let y = g.add(h, skip)?;
        g.unary(y, Unary::Relu)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        path.with("conv1", |p| self.conv1.visit(p, f));
        path.with("bn1", |p| self.bn1.visit(p, f));
        path.with("conv2", |p| self.conv2.visit(p, f));
        path.with("bn2", |p| self.bn2.visit(p, f));
        if let Some((c, b)) = &self.projection {
            path.with("downsample.0", |p| c.visit(p, f));
            path.with("downsample.1", |p| b.visit(p, f));
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        path.with("conv1", |p| self.conv1.visit_mut(p, f));
        path.with("bn1", |p| self.bn1.visit_mut(p, f));
        path.with("conv2", |p| self.conv2.visit_mut(p, f));
        path.with("bn2", |p| self.bn2.visit_mut(p, f));
        if let Some((c, b)) = &mut self.projection {
            path.with("downsample.0", |p| c.visit_mut(p, f));
            path.with("downsample.1", |p| b.visit_mut(p, f));
        }
    }
}
