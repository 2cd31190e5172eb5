//! Positional encodings, added to token embeddings `x: [B, T, D]` so attention
//! (which is otherwise blind to order) can tell positions apart.
//!
//! Sinusoidal (Vaswani et al., fixed): `PE[t, 2i] = sin(t / 10000^(2i/D))`,
//! `PE[t, 2i+1] = cos(t / 10000^(2i/D))`. Learned: a trained table `[max_len, D]`
//! (GPT-2's), initialized `N(0, 0.02^2)`.
//!
//! ```
//! use dl_layers::PositionalEncoding;
//! let pe = PositionalEncoding::<f64>::sinusoidal(16, 4).unwrap();
//! let table = pe.table();
//! // Position 0: sin(0) = 0, cos(0) = 1 in every pair.
//! assert_eq!(&table.data()[..4], &[0.0, 1.0, 0.0, 1.0]);
//! ```

use crate::error::{check, Result};
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{init, Rng, Scalar, Shape, Tensor};

/// A sinusoidal or learned positional encoding for sequences up to `max_len`.
#[derive(Clone, Debug)]
pub enum PositionalEncoding<T: Scalar = f32> {
    /// The fixed table (not trained, not saved: it is a function of the shape).
    Sinusoidal(Tensor<T>),
    /// A trained table.
    Learned(Param<T>),
}

impl<T: Scalar> PositionalEncoding<T> {
    fn check(max_len: usize, dim: usize) -> Result<()> {
        check(
            "PositionalEncoding",
            "max_len",
            max_len as f64,
            max_len >= 1,
            ">= 1",
        )?;
        check("PositionalEncoding", "dim", dim as f64, dim >= 1, ">= 1")
    }

    /// The fixed sine/cosine table `[max_len, dim]`.
    pub fn sinusoidal(max_len: usize, dim: usize) -> Result<Self> {
        Self::check(max_len, dim)?;
        let table = Tensor::from_fn(&[max_len, dim], |k| {
            let (t, j) = ((k / dim) as f64, k % dim);
            let freq = libm::pow(10000.0, -((j - j % 2) as f64) / dim as f64);
            let v = if j % 2 == 0 {
                libm::sin(t * freq)
            } else {
                libm::cos(t * freq)
            };
            T::from_f64_lossy(v)
        })?;
        Ok(PositionalEncoding::Sinusoidal(table))
    }

    /// A learned table `[max_len, dim]`, `N(0, 0.02^2)`.
    pub fn learned(max_len: usize, dim: usize, rng: &mut Rng) -> Result<Self> {
        Self::check(max_len, dim)?;
        let mut w = Tensor::zeros(&[max_len, dim])?;
        init::normal(w.data_mut(), T::ZERO, T::from_f64_lossy(0.02), rng);
        Ok(PositionalEncoding::Learned(Param::new(w)))
    }

    /// The current table `[max_len, dim]`.
    pub fn table(&self) -> &Tensor<T> {
        match self {
            PositionalEncoding::Sinusoidal(t) => t,
            PositionalEncoding::Learned(p) => p.value(),
        }
    }
}

impl<T: Scalar> ParamSet<T> for PositionalEncoding<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        if let PositionalEncoding::Learned(p) = self {
            f(p);
        }
    }
}

impl<T: Scalar> Module<T> for PositionalEncoding<T> {
    /// `x + PE[..T]` for `x: [B, T, D]`; errors if `T > max_len` or `D` differs.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let s = g.shape(x)?;
        s.check_rank(3, "PositionalEncoding", "3 ([batch, time, dim])")?;
        let (t, d) = (s.dims()[1], s.dims()[2]);
        let table = self.table();
        let (max_len, dim) = (table.dims()[0], table.dims()[1]);
        if d != dim || t > max_len {
            return Err(dl_core::Error::ShapeMismatch {
                op: "PositionalEncoding",
                lhs: s,
                rhs: Shape::new(&[max_len, dim])?,
                why: "needs time <= max_len and equal feature sizes",
            }
            .into());
        }
        let pe = match self {
            PositionalEncoding::Sinusoidal(tab) => g.input_slice(&tab.data()[..t * d], &[t, d])?,
            PositionalEncoding::Learned(p) => {
                let w = g.param(p);
                g.slice(w, 0, 0, t)?
            }
        };
        Ok(g.add(x, pe)?)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        if let PositionalEncoding::Learned(p) = self {
            visit_param(path, "weight", p, f);
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        if let PositionalEncoding::Learned(p) = self {
            visit_param_mut(path, "weight", p, f);
        }
    }
}
