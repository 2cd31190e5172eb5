//! Embedding: a lookup table `weight: [V, D]`; token `i` maps to row `i`. The
//! backward pass scatters each output row's gradient into its token's row (adding
//! where a token repeats), via `index_select`.
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::Rng;
//! use dl_layers::Embedding;
//! let emb = Embedding::<f32>::new(10, 4, &mut Rng::seed_from_u64(0)).unwrap();
//! let mut g = Graph::new();
//! let x = emb.lookup(&mut g, &[1, 2, 3, 1, 0, 9], &[2, 3]).unwrap();
//! assert_eq!(g.shape(x).unwrap().dims(), &[2, 3, 4]);
//! ```

use crate::error::{check, Result};
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use alloc::vec::Vec;
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{init, Rng, Scalar, Shape, Tensor};

/// A token-embedding table (PyTorch's `nn.Embedding`, initialized `N(0, 1)`).
#[derive(Clone, Debug)]
pub struct Embedding<T: Scalar = f32> {
    /// `[V, D]`.
    pub weight: Param<T>,
}

impl<T: Scalar> Embedding<T> {
    /// `vocab` rows of `dim` features.
    pub fn new(vocab: usize, dim: usize, rng: &mut Rng) -> Result<Self> {
        check("Embedding", "vocab", vocab as f64, vocab >= 1, ">= 1")?;
        check("Embedding", "dim", dim as f64, dim >= 1, ">= 1")?;
        let mut w = Tensor::zeros(&[vocab, dim])?;
        init::normal(w.data_mut(), T::ZERO, T::ONE, rng);
        Ok(Embedding {
            weight: Param::new(w),
        })
    }

    /// Vocabulary size `V`.
    pub fn vocab(&self) -> usize {
        self.weight.value().dims()[0]
    }

    /// Features per token `D`.
    pub fn dim(&self) -> usize {
        self.weight.value().dims()[1]
    }

    /// The rows of `ids` shaped `dims + [D]` (e.g. `dims = [B, T]`). Errors on an id
    /// `>= V` or when `dims` does not hold `ids.len()` elements.
    pub fn lookup<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        ids: &[usize],
        dims: &[usize],
    ) -> Result<Var> {
        let shape = Shape::new(dims)?;
        shape.check_len(ids.len(), "Embedding", "ids")?;
        let w = g.param(&self.weight);
        let rows = g.index_select(w, 0, ids)?;
        let mut out: Vec<usize> = dims.to_vec();
        out.push(self.dim());
        Ok(g.reshape(rows, &out)?)
    }
}

impl<T: Scalar> ParamSet<T> for Embedding<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.weight);
    }
}

impl<T: Scalar> Module<T> for Embedding<T> {
    /// Reads token ids stored as whole numbers in `x` (any shape) and returns their
    /// rows, `x.shape + [D]`. Errors on a value that is not an id in `0..V`.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let v = g.value(x)?;
        let dims: Vec<usize> = v.dims().to_vec();
        let vocab = self.vocab();
        let mut ids = Vec::with_capacity(v.numel());
        for &t in v.data() {
            let f = t.to_f64_lossless();
            let ok = f >= 0.0 && f < vocab as f64 && f == libm::floor(f);
            check("Embedding", "token id", f, ok, "whole numbers in 0..vocab")?;
            ids.push(f as usize);
        }
        self.lookup(g, &ids, &dims)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "weight", &self.weight, f);
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "weight", &mut self.weight, f);
    }
}
