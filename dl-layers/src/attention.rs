//! Attention: scaled dot-product attention with causal and padding masks, and
//! multi-head attention in PyTorch's `nn.MultiheadAttention` layout.
//!
//! Scaled dot-product attention, for queries `Q: [N, Tq, d]`, keys `K: [N, Tk, d]`,
//! values `V: [N, Tk, dv]`:
//! `A = softmax(Q K^T / sqrt(d) + M)`, `out = A V`, where the additive mask `M` is 0
//! where attention is allowed and a large negative number where it is not (future
//! positions for a causal mask, padded keys for a padding mask).
//!
//! Multi-head attention (`batch_first=True` layout, `E` = embedding size, `h` heads
//! of `d = E / h`): `Q = q W_q^T + b_q`, `K = k W_k^T + b_k`, `V = v W_v^T + b_v`
//! with `[W_q; W_k; W_v] = in_proj_weight: [3E, E]` and `in_proj_bias: [3E]`; each
//! head attends on its `d` columns; the heads are joined and projected by
//! `out_proj` (a [`Linear`] `E -> E`). Parameter names match PyTorch's state dict.
//!
//! Masked scores use `-1e9` rather than `-inf`: the softmax is the same wherever a
//! row has an allowed key, and a row with none gives a uniform average instead of NaN.
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::{Rng, Tensor};
//! use dl_layers::{AttentionMask, MultiheadAttention};
//! let mut rng = Rng::seed_from_u64(0);
//! let mha = MultiheadAttention::<f32>::new(8, 2, &mut rng).unwrap();
//! let x = Tensor::rand_normal(&[3, 5, 8], 0.0, 1.0, &mut rng).unwrap();
//! let mut g = Graph::new();
//! let xv = g.input(&x);
//! let mask = AttentionMask { causal: true, key_lengths: None };
//! let (y, w) = mha.attend(&mut g, xv, xv, xv, &mask).unwrap();
//! assert_eq!(g.shape(y).unwrap().dims(), &[3, 5, 8]);
//! // Causal: the first position attends only to itself.
//! assert_eq!(g.value(w).unwrap().data()[..5], [1.0, 0.0, 0.0, 0.0, 0.0]);
//! ```

use crate::error::{check, Result};
use crate::linear::Linear;
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{AttentionSpec, Graph, Param, ParamSet, Var};
use dl_core::{init, Rng, Scalar, Shape, Tensor};

/// The additive value of a masked score.
const MASKED: f64 = -1e9;

/// Which keys each query may see.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionMask<'a> {
    /// Query `i` sees keys `j <= i` only (decoder self-attention).
    pub causal: bool,
    /// Valid keys per batch entry (`1..=Tk`); keys past it are padding.
    pub key_lengths: Option<&'a [usize]>,
}

impl AttentionMask<'_> {
    /// No mask.
    pub fn none() -> Self {
        AttentionMask::default()
    }

    /// The additive mask `[batch * heads, tq, tk]` (0 allowed, -1e9 masked), or
    /// `None` when nothing is masked. Errors on lengths that do not fit.
    pub fn build<T: Scalar>(
        &self,
        batch: usize,
        heads: usize,
        tq: usize,
        tk: usize,
    ) -> Result<Option<Tensor<T>>> {
        if !self.causal && self.key_lengths.is_none() {
            return Ok(None);
        }
        if let Some(len) = self.key_lengths {
            if len.len() != batch {
                return Err(dl_core::Error::LengthMismatch {
                    op: "attention mask",
                    what: "key_lengths",
                    expected: batch,
                    actual: len.len(),
                }
                .into());
            }
            if let Some(&bad) = len.iter().find(|&&n| n == 0 || n > tk) {
                check(
                    "attention mask",
                    "key_lengths[i]",
                    bad as f64,
                    false,
                    "1..=keys",
                )?;
            }
        }
        let masked = T::from_f64_lossy(MASKED);
        let mut m = Tensor::zeros(&[batch * heads, tq, tk])?;
        for (n, block) in m.data_mut().chunks_mut(tq * tk).enumerate() {
            let valid = self.key_lengths.map_or(tk, |l| l[n / heads]);
            for i in 0..tq {
                for j in 0..tk {
                    if j >= valid || (self.causal && j > i) {
                        block[i * tk + j] = masked;
                    }
                }
            }
        }
        Ok(Some(m))
    }
}

/// `softmax(q k^T / sqrt(d) + mask) v` for `q: [N, Tq, d]`, `k: [N, Tk, d]`,
/// `v: [N, Tk, dv]`, with `mask` broadcastable to `[N, Tq, Tk]`. Returns the output
/// `[N, Tq, dv]` and the attention weights `[N, Tq, Tk]`.
pub fn scaled_dot_product_attention<T: Scalar>(
    g: &mut Graph<'_, T>,
    q: Var,
    k: Var,
    v: Var,
    mask: Option<Var>,
) -> Result<(Var, Var)> {
    let weights = attention_weights(g, q, k, mask)?;
    let out = g.matmul(weights, v)?;
    Ok((out, weights))
}

/// `softmax(q k^T / sqrt(d) + mask)`: `[N, Tq, Tk]`.
pub fn attention_weights<T: Scalar>(
    g: &mut Graph<'_, T>,
    q: Var,
    k: Var,
    mask: Option<Var>,
) -> Result<Var> {
    let sq = g.shape(q)?;
    sq.check_rank(3, "scaled_dot_product_attention", "3 ([N, T, d])")?;
    let d = sq.dims()[2];
    let kt = g.transpose(k, 1, 2)?;
    let scores = g.matmul(q, kt)?;
    let scores = g.mul_scalar(scores, T::from_f64_lossy(1.0 / libm::sqrt(d as f64)))?;
    let scores = match mask {
        Some(m) => g.add(scores, m)?,
        None => scores,
    };
    Ok(g.softmax(scores)?)
}

/// Multi-head attention (see the module doc).
#[derive(Clone, Debug)]
pub struct MultiheadAttention<T: Scalar = f32> {
    /// `[3E, E]`: the query, key and value projections stacked.
    pub in_proj_weight: Param<T>,
    /// `[3E]`.
    pub in_proj_bias: Param<T>,
    /// `E -> E`.
    pub out_proj: Linear<T>,
    heads: usize,
    /// Dropout on the attention weights in training (PyTorch's `dropout`).
    pub dropout: f64,
}

impl<T: Scalar> MultiheadAttention<T> {
    /// `embed` features split over `heads` (which must divide it), with PyTorch's
    /// init: Xavier-uniform `in_proj_weight`, zero biases, default `Linear` init for
    /// the output projection's weight.
    pub fn new(embed: usize, heads: usize, rng: &mut Rng) -> Result<Self> {
        check(
            "MultiheadAttention",
            "embed",
            embed as f64,
            embed >= 1,
            ">= 1",
        )?;
        check(
            "MultiheadAttention",
            "heads",
            heads as f64,
            heads >= 1 && embed.is_multiple_of(heads),
            ">= 1 and dividing embed",
        )?;
        let mut w = Tensor::zeros(&[3 * embed, embed])?;
        // PyTorch treats the stacked [3E, E] matrix as one: fan_in E, fan_out 3E.
        init::xavier_uniform(w.data_mut(), embed, 3 * embed, 1.0, rng);
        let mut out_proj = crate::linear::LinearConfig::new(embed, embed).init(rng)?;
        if let Some(b) = &mut out_proj.bias {
            b.value_mut().fill(T::ZERO);
        }
        Ok(MultiheadAttention {
            in_proj_weight: Param::new(w),
            in_proj_bias: Param::new(Tensor::zeros(&[3 * embed])?),
            out_proj,
            heads,
            dropout: 0.0,
        })
    }

    /// With dropout `p` in `[0, 1)` on the attention weights.
    pub fn with_dropout(mut self, p: f64) -> Result<Self> {
        check(
            "MultiheadAttention",
            "dropout",
            p,
            (0.0..1.0).contains(&p),
            "[0, 1)",
        )?;
        self.dropout = p;
        Ok(self)
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Embedding size `E`.
    pub fn embed(&self) -> usize {
        self.in_proj_weight.value().dims()[1]
    }

    /// `x W_j^T + b_j` for block `j` (0 = query, 1 = key, 2 = value) of the stacked
    /// projection, then split into heads: `[B, T, E] -> [B * h, T, d]`.
    fn project<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, j: usize) -> Result<Var> {
        let e = self.embed();
        let s = g.shape(x)?;
        s.check_rank(3, "MultiheadAttention", "3 ([batch, time, embed])")?;
        let (b, t) = (s.dims()[0], s.dims()[1]);
        if s.dims()[2] != e {
            return Err(dl_core::Error::ShapeMismatch {
                op: "MultiheadAttention",
                lhs: s,
                rhs: Shape::new(&[e])?,
                why: "the last axis must equal the embedding size",
            }
            .into());
        }
        let w = g.param(&self.in_proj_weight);
        let w = g.slice(w, 0, j * e, (j + 1) * e)?;
        let bias = g.param(&self.in_proj_bias);
        let bias = g.slice(bias, 0, j * e, (j + 1) * e)?;
        let flat = g.reshape(x, &[b * t, e])?;
        let y = g.linear(flat, w, Some(bias))?;
        let (h, d) = (self.heads, e / self.heads);
        let y = g.reshape(y, &[b, t, h, d])?;
        let y = g.permute(y, &[0, 2, 1, 3])?;
        Ok(g.reshape(y, &[b * h, t, d])?)
    }

    /// Attention of `query: [B, Tq, E]` over `key`, `value: [B, Tk, E]` (pass the
    /// same `Var` three times for self-attention). Returns the output `[B, Tq, E]`
    /// and the attention weights averaged over heads `[B, Tq, Tk]` (PyTorch's
    /// `need_weights=True, average_attn_weights=True`). Evaluation mode (no dropout).
    pub fn attend<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        query: Var,
        key: Var,
        value: Var,
        mask: &AttentionMask<'_>,
    ) -> Result<(Var, Var)> {
        self.attend_ctx(g, query, key, value, mask, &mut Ctx::eval())
    }

    /// [`MultiheadAttention::attend`] with an explicit train/eval context (dropout
    /// on the attention weights in training).
    pub fn attend_ctx<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        query: Var,
        key: Var,
        value: Var,
        mask: &AttentionMask<'_>,
        ctx: &mut Ctx,
    ) -> Result<(Var, Var)> {
        let (e, h) = (self.embed(), self.heads);
        let q = self.project(g, query, 0)?;
        let k = self.project(g, key, 1)?;
        let v = self.project(g, value, 2)?;
        let (b, tq) = {
            let s = g.shape(query)?;
            (s.dims()[0], s.dims()[1])
        };
        let tk = g.shape(key)?.dims()[1];
        if g.shape(value)?.dims()[1] != tk {
            return Err(dl_core::Error::ShapeMismatch {
                op: "MultiheadAttention",
                lhs: g.shape(key)?,
                rhs: g.shape(value)?,
                why: "key and value must have the same length",
            }
            .into());
        }
        let m = mask.build::<T>(b, h, tq, tk)?.map(|t| g.input(&t));
        let weights = attention_weights(g, q, k, m)?;
        let dropped = if ctx.train && self.dropout > 0.0 {
            g.dropout(weights, self.dropout, true, &mut ctx.rng)?
        } else {
            weights
        };
        let out = g.matmul(dropped, v)?;
        let d = e / h;
        let out = g.reshape(out, &[b, h, tq, d])?;
        let out = g.permute(out, &[0, 2, 1, 3])?;
        let out = g.reshape(out, &[b * tq, e])?;
        let out = self.out_proj.forward(g, out, ctx)?;
        let out = g.reshape(out, &[b, tq, e])?;
        let w = g.reshape(weights, &[b, h, tq, tk])?;
        let w = g.mean(w, 1)?;
        Ok((out, w))
    }
}

impl<T: Scalar> MultiheadAttention<T> {
    /// Self-attention on the rows `x: [B*T, E]` of `batch` sequences (what a
    /// transformer block holds), output projection included: `[B*T, E]`. Runs as one
    /// fused node (dl-autograd's `self_attention`: one product for the packed
    /// query/key/value projection, heads read in place) unless dropout on the
    /// attention weights is active, which takes the composed path of
    /// [`MultiheadAttention::attend_ctx`]. The averaged weights are not computed.
    pub fn self_attend_rows<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        x: Var,
        batch: usize,
        mask: &AttentionMask<'_>,
        ctx: &mut Ctx,
    ) -> Result<Var> {
        let s = g.shape(x)?;
        s.check_rank(2, "MultiheadAttention", "2 ([batch*time, embed])")?;
        let (rows, e) = (s.dims()[0], s.dims()[1]);
        if ctx.train && self.dropout > 0.0 {
            let t = rows / batch.max(1);
            let x3 = g.reshape(x, &[batch, t, e])?;
            let (o, _) = self.attend_ctx(g, x3, x3, x3, mask, ctx)?;
            return Ok(g.reshape(o, &[rows, e])?);
        }
        if e != self.embed() {
            return Err(dl_core::Error::ShapeMismatch {
                op: "MultiheadAttention",
                lhs: s,
                rhs: Shape::new(&[self.embed()])?,
                why: "the last axis must equal the embedding size",
            }
            .into());
        }
        let w = g.param(&self.in_proj_weight);
        let b = g.param(&self.in_proj_bias);
        let qkv = g.linear(x, w, Some(b))?;
        let spec = AttentionSpec {
            batch,
            heads: self.heads,
            causal: mask.causal,
        };
        let y = g.self_attention(qkv, spec, mask.key_lengths)?;
        self.out_proj.forward(g, y, ctx)
    }
}

impl<T: Scalar> ParamSet<T> for MultiheadAttention<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.in_proj_weight);
        f(&mut self.in_proj_bias);
        self.out_proj.for_each_param(f);
    }
}

impl<T: Scalar> Module<T> for MultiheadAttention<T> {
    /// Unmasked self-attention `[B, T, E] -> [B, T, E]`.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        Ok(self.attend_ctx(g, x, x, x, &AttentionMask::none(), ctx)?.0)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "in_proj_weight", &self.in_proj_weight, f);
        visit_param(path, "in_proj_bias", &self.in_proj_bias, f);
        path.with("out_proj", |p| self.out_proj.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "in_proj_weight", &mut self.in_proj_weight, f);
        visit_param_mut(path, "in_proj_bias", &mut self.in_proj_bias, f);
        path.with("out_proj", |p| self.out_proj.visit_mut(p, f));
    }
}

/// A [`Linear`] (or any row-wise module) applied to the last axis of `[.., in]`:
/// flattened to `[N, in]`, then reshaped back to `[.., out]`.
pub fn per_position<'p, T: Scalar>(
    layer: &'p dyn Module<T>,
    g: &mut Graph<'p, T>,
    x: Var,
    ctx: &mut Ctx,
) -> Result<Var> {
    let s = g.shape(x)?;
    let dims = s.dims();
    let (last, rows) = (
        dims[dims.len() - 1],
        s.numel() / dims[dims.len() - 1].max(1),
    );
    let flat = g.reshape(x, &[rows, last])?;
    let y = layer.forward(g, flat, ctx)?;
    let out = g.shape(y)?.dims()[1];
    let mut new_dims = [0usize; dl_core::MAX_RANK];
    new_dims[..dims.len()].copy_from_slice(dims);
    new_dims[dims.len() - 1] = out;
    Ok(g.reshape(y, &new_dims[..dims.len()])?)
}
