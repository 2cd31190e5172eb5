//! Pooling layers: max and average pooling over windows, and global average pooling
//! (`[N, C, H, W] -> [N, C]`), as torch's `MaxPool2d`, `AvgPool2d` and
//! `AdaptiveAvgPool2d(1)` + flatten.

use crate::error::Result;
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::pool::Pool2dParams;
use dl_core::Scalar;
use dl_deploy::{Graph as DeployGraph, PoolParams, Result as DeployResult, TensorId};

/// Which pooling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pool2d {
    /// Maximum over each window.
    Max(Pool2dParams),
    /// Mean over each window (padding counted, as torch's default).
    Avg(Pool2dParams),
    /// Mean over all of `H x W`, giving `[N, C]`.
    GlobalAvg,
}

impl Pool2d {
    /// Max pooling with a square `k x k` window and stride `s`.
    pub fn max(k: usize, s: usize) -> Result<Self> {
        let p = Pool2dParams::new(k, k).with_stride(s, s);
        p.validate()?;
        Ok(Pool2d::Max(p))
    }

    /// Average pooling with a square `k x k` window and stride `s`.
    pub fn avg(k: usize, s: usize) -> Result<Self> {
        let p = Pool2dParams::new(k, k).with_stride(s, s);
        p.validate()?;
        Ok(Pool2d::Avg(p))
    }
}

impl<T: Scalar> ParamSet<T> for Pool2d {
    fn for_each_param(&mut self, _f: &mut dyn FnMut(&mut Param<T>)) {}
}

impl<T: Scalar> Module<T> for Pool2d {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        Ok(match *self {
            Pool2d::Max(p) => g.max_pool2d(x, p)?,
            Pool2d::Avg(p) => g.avg_pool2d(x, p)?,
            Pool2d::GlobalAvg => {
                let s = g.shape(x)?;
                s.check_rank(4, "global_avg_pool2d", "4 (NCHW)")?;
                let d = s.dims();
                let flat = g.reshape(x, &[d[0], d[1], d[2] * d[3]])?;
                g.mean(flat, 2)?
            }
        })
    }

    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let window = |p: Pool2dParams| PoolParams {
            kernel: p.kernel,
            stride: p.stride,
            padding: p.padding,
        };
        match *self {
            Pool2d::Max(p) => g.max_pool(x, window(p)),
            // dl-core's average pooling counts padded taps, as torch's default.
            Pool2d::Avg(p) => g.avg_pool(x, window(p), true),
            Pool2d::GlobalAvg => g.mean(x),
        }
    }

    fn visit(&self, _path: &mut Path, _f: &mut dyn FnMut(&str, Entry<'_, T>)) {}

    fn visit_mut(&mut self, _path: &mut Path, _f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {}
}
