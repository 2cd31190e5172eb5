//! Dropout: in training, zero each element with probability `p` and scale the rest by
//! `1 / (1 - p)` (inverted dropout, so evaluation is the identity).

use crate::error::{check, Result};
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::Scalar;
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId};

/// Dropout with drop probability `p` in `[0, 1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// A dropout layer; errors unless `0 <= p < 1`.
    pub fn new(p: f64) -> Result<Self> {
        check("Dropout", "p", p, (0.0..1.0).contains(&p), "[0, 1)")?;
        Ok(Dropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl<T: Scalar> ParamSet<T> for Dropout {
    fn for_each_param(&mut self, _f: &mut dyn FnMut(&mut Param<T>)) {}
}

impl<T: Scalar> Module<T> for Dropout {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        if !ctx.train || self.p == 0.0 {
            return Ok(x);
        }
        Ok(g.dropout(x, self.p, true, &mut ctx.rng)?)
    }

    /// The identity: deployment runs in evaluation mode.
    fn lower(&self, _g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        Ok(x)
    }

    fn visit(&self, _path: &mut Path, _f: &mut dyn FnMut(&str, Entry<'_, T>)) {}

    fn visit_mut(&mut self, _path: &mut Path, _f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {}
}
