//! Bidirectional wrapper: two copies of any [`SequenceLayer`], one reading the
//! sequence forwards and one backwards, with outputs concatenated per step,
//! `o_t = [h_fwd_t; h_bwd_t]` (`[B, T, 2H]`), so a head `y_t = f(o_t)` sees both the
//! past and the future of step `t`. With `lengths`, the backward half starts at each
//! sequence's own last step. Final states stack the forward layers' first, then the
//! backward layers' (`[2 L, B, H]`; for one layer this is PyTorch's order).
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::{Rng, Tensor};
//! use dl_layers::{Bidirectional, RecurrentConfig, SeqOptions, SequenceLayer};
//! let mut rng = Rng::seed_from_u64(0);
//! let cfg = RecurrentConfig::gru(2, 4);
//! let bi = Bidirectional::new(cfg.init::<f32>(&mut rng).unwrap(), cfg.init(&mut rng).unwrap());
//! let x = Tensor::zeros(&[3, 5, 2]).unwrap();
//! let mut g = Graph::new();
//! let xv = g.input(&x);
//! let out = bi.run(&mut g, xv, &SeqOptions::default()).unwrap();
//! assert_eq!(g.shape(out.output).unwrap().dims(), &[3, 5, 8]);
//! ```

use crate::error::Result;
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use crate::rnn::{SeqOptions, SeqOutput, SequenceLayer};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::Scalar;
use dl_deploy::{DType, Graph as DeployGraph, Result as DeployResult, TensorId};

/// A forward and a backward copy of a sequence layer (see the module doc).
#[derive(Clone, Debug)]
pub struct Bidirectional<L> {
    /// Reads `x_1 .. x_T`.
    pub forward: L,
    /// Reads `x_T .. x_1`.
    pub backward: L,
}

impl<L> Bidirectional<L> {
    /// Wraps two independently initialized layers of the same shape.
    pub fn new(forward: L, backward: L) -> Self {
        Bidirectional { forward, backward }
    }
}

/// Splits `[2L, B, H]` initial states into the halves of each direction.
fn halves<T: Scalar>(g: &mut Graph<'_, T>, v: Option<Var>) -> Result<(Option<Var>, Option<Var>)> {
    let Some(v) = v else { return Ok((None, None)) };
    let n = g.shape(v)?.dim(0, "Bidirectional initial state")?;
    let a = g.slice(v, 0, 0, n / 2)?;
    let b = g.slice(v, 0, n / 2, n)?;
    Ok((Some(a), Some(b)))
}

impl<T: Scalar, L: SequenceLayer<T>> SequenceLayer<T> for Bidirectional<L> {
    fn run<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, opts: &SeqOptions<'_>) -> Result<SeqOutput> {
        let (h_f, h_b) = halves(g, opts.h0)?;
        let (c_f, c_b) = halves(g, opts.c0)?;
        let fwd_opts = SeqOptions {
            reverse: opts.reverse,
            h0: h_f,
            c0: c_f,
            ..*opts
        };
        let bwd_opts = SeqOptions {
            reverse: !opts.reverse,
            h0: h_b,
            c0: c_b,
            ..*opts
        };
        let f = self.forward.run(g, x, &fwd_opts)?;
        let b = self.backward.run(g, x, &bwd_opts)?;
        let output = g.concat(&[f.output, b.output], 2)?;
        let h_n = g.concat(&[f.h_n, b.h_n], 0)?;
        let c_n = match (f.c_n, b.c_n) {
            (Some(a), Some(b)) => Some(g.concat(&[a, b], 0)?),
            _ => None,
        };
        Ok(SeqOutput { output, h_n, c_n })
    }

    fn output_size(&self) -> usize {
        self.forward.output_size() + self.backward.output_size()
    }

    fn lower_into(
        &self,
        g: &mut DeployGraph,
        x: TensorId,
        reverse: bool,
        y: TensorId,
        col: usize,
    ) -> DeployResult<()> {
        self.forward.lower_into(g, x, reverse, y, col)?;
        self.backward
            .lower_into(g, x, !reverse, y, col + self.forward.output_size())
    }
}

impl<T: Scalar, L: ParamSet<T>> ParamSet<T> for Bidirectional<L> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.forward.for_each_param(f);
        self.backward.for_each_param(f);
    }
}

impl<T: Scalar, L: SequenceLayer<T>> Module<T> for Bidirectional<L> {
    /// `[B, T, F] -> [B, T, 2H]`.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        Ok(self.run(g, x, &SeqOptions::default())?.output)
    }

    /// `[B, T, F] -> [B, T, 2H]`: the forward half writes columns `0..H` of one
    /// output tensor, the backward half (stepping from the last step) columns
    /// `H..2H`; no concatenation op runs.
    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let &[n, t, _] = g.tensors[x].dims.as_slice() else {
            return Err(dl_deploy::Error::Graph {
                op: "Bidirectional",
                why: "needs a sequence input [n, t, features]",
            });
        };
        let y = g.tensor(alloc::vec![n, t, self.output_size()], DType::F32);
        self.lower_into(g, x, false, y, 0)?;
        g.set_output(y)?;
        Ok(y)
    }

    /// Names `forward.*` and `backward.*`.
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        path.with("forward", |p| self.forward.visit(p, f));
        path.with("backward", |p| self.backward.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        path.with("forward", |p| self.forward.visit_mut(p, f));
        path.with("backward", |p| self.backward.visit_mut(p, f));
    }
}
