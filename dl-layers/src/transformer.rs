//! Transformer blocks: a pre-norm encoder block, an encoder stack (bidirectional or
//! causal), and a decoder-only causal language model on top of it.
//!
//! Pre-norm block (PyTorch's `TransformerEncoderLayer(norm_first=True)`; parameter
//! names `self_attn`, `linear1`, `linear2`, `norm1`, `norm2` as there):
//!
//! ```text
//! x = x + Dropout(SelfAttention(LayerNorm1(x), mask))
//! x = x + Dropout(Linear2(Dropout(act(Linear1(LayerNorm2(x))))))
//! ```
//!
//! A stack of blocks ends with a final layer norm (pre-norm blocks leave the
//! residual stream unnormalized). [`CausalTransformer`] is the decoder-only model:
//! token embedding + positional encoding, causal blocks, final norm, a linear head to
//! vocabulary logits; position `t` sees tokens `0..=t` only, so it predicts token
//! `t + 1`.
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::Rng;
//! use dl_layers::{CausalTransformer, Ctx, TransformerConfig};
//! let cfg = TransformerConfig::new(16, 2, 32, 2);
//! let lm = CausalTransformer::<f32>::new(cfg, 11, 20, &mut Rng::seed_from_u64(0)).unwrap();
//! let mut g = Graph::new();
//! let logits = lm.logits(&mut g, &[1, 2, 3, 4, 5, 6], 2, 3, &mut Ctx::eval()).unwrap();
//! assert_eq!(g.shape(logits).unwrap().dims(), &[2, 3, 11]);
//! ```

use crate::activation::Activation;
use crate::attention::{per_position, AttentionMask, MultiheadAttention};
use crate::embedding::Embedding;
use crate::error::{check, Result};
use crate::linear::{Linear, LinearConfig};
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use crate::norm::LayerNorm;
use crate::positional::PositionalEncoding;
use crate::sequential::index_name;
use alloc::vec::Vec;
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{Rng, Scalar};

/// Sizes and settings of a transformer stack.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Model width `E`, >= 1 and divisible by `heads`.
    pub d_model: usize,
    /// Attention heads, >= 1.
    pub heads: usize,
    /// Hidden width of the feed-forward part, >= 1.
    pub ff: usize,
    /// Number of blocks, >= 1.
    pub layers: usize,
    /// Dropout on attention weights and residual branches, in `[0, 1)` (default 0).
    pub dropout: f64,
    /// Feed-forward activation (default ReLU, as PyTorch).
    pub activation: Activation,
}

impl TransformerConfig {
    /// `layers` blocks of width `d_model`, `heads` heads, feed-forward width `ff`.
    pub fn new(d_model: usize, heads: usize, ff: usize, layers: usize) -> Self {
        TransformerConfig {
            d_model,
            heads,
            ff,
            layers,
            dropout: 0.0,
            activation: Activation::Relu,
        }
    }

    /// With dropout `p`.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// With another feed-forward activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let l = "Transformer";
        check(l, "d_model", self.d_model as f64, self.d_model >= 1, ">= 1")?;
        let ok = self.heads >= 1 && self.d_model.is_multiple_of(self.heads);
        check(
            l,
            "heads",
            self.heads as f64,
            ok,
            ">= 1 and dividing d_model",
        )?;
        check(l, "ff", self.ff as f64, self.ff >= 1, ">= 1")?;
        check(l, "layers", self.layers as f64, self.layers >= 1, ">= 1")?;
        check(
            l,
            "dropout",
            self.dropout,
            (0.0..1.0).contains(&self.dropout),
            "[0, 1)",
        )
    }
}

/// One pre-norm encoder block (see the module doc).
#[derive(Clone, Debug)]
pub struct EncoderBlock<T: Scalar = f32> {
    /// Before attention.
    pub norm1: LayerNorm<T>,
    /// Self-attention.
    pub self_attn: MultiheadAttention<T>,
    /// Before the feed-forward part.
    pub norm2: LayerNorm<T>,
    /// `E -> ff`.
    pub linear1: Linear<T>,
    /// `ff -> E`.
    pub linear2: Linear<T>,
    activation: Activation,
    dropout: f64,
}

impl<T: Scalar> EncoderBlock<T> {
    /// A block with PyTorch's default initialization.
    pub fn new(cfg: &TransformerConfig, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        Ok(EncoderBlock {
            norm1: LayerNorm::new(cfg.d_model)?,
            self_attn: MultiheadAttention::new(cfg.d_model, cfg.heads, rng)?
                .with_dropout(cfg.dropout)?,
            norm2: LayerNorm::new(cfg.d_model)?,
            linear1: LinearConfig::new(cfg.d_model, cfg.ff).init(rng)?,
            linear2: LinearConfig::new(cfg.ff, cfg.d_model).init(rng)?,
            activation: cfg.activation,
            dropout: cfg.dropout,
        })
    }

    /// `[B, T, E] -> [B, T, E]` with the given attention mask.
    pub fn forward_masked<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        x: Var,
        mask: &AttentionMask<'_>,
        ctx: &mut Ctx,
    ) -> Result<Var> {
        let train = ctx.train;
        // Everything but attention acts on rows, so the block works on [B*T, E]
        // and reshapes once at each end.
        let s = g.shape(x)?;
        s.check_rank(3, "EncoderBlock", "3 ([batch, time, embed])")?;
        let (b, t, e) = (s.dims()[0], s.dims()[1], s.dims()[2]);
        let x = g.reshape(x, &[b * t, e])?;
        let h = self.norm1.forward(g, x, ctx)?;
        let a = self.self_attn.self_attend_rows(g, h, b, mask, ctx)?;
        let a = g.dropout(a, self.dropout, train, &mut ctx.rng)?;
        let x = g.add(x, a)?;
        let h = self.norm2.forward(g, x, ctx)?;
        let h = self.linear1.forward(g, h, ctx)?;
        let h = self.activation.forward(g, h, ctx)?;
        let h = g.dropout(h, self.dropout, train, &mut ctx.rng)?;
        let h = self.linear2.forward(g, h, ctx)?;
        let h = g.dropout(h, self.dropout, train, &mut ctx.rng)?;
        let y = g.add(x, h)?;
        Ok(g.reshape(y, &[b, t, e])?)
    }
}

impl<T: Scalar> ParamSet<T> for EncoderBlock<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.self_attn.for_each_param(f);
        self.linear1.for_each_param(f);
        self.linear2.for_each_param(f);
        self.norm1.for_each_param(f);
        self.norm2.for_each_param(f);
    }
}

impl<T: Scalar> Module<T> for EncoderBlock<T> {
    /// Unmasked (bidirectional) self-attention block.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        self.forward_masked(g, x, &AttentionMask::none(), ctx)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        path.with("self_attn", |p| self.self_attn.visit(p, f));
        path.with("linear1", |p| self.linear1.visit(p, f));
        path.with("linear2", |p| self.linear2.visit(p, f));
        path.with("norm1", |p| self.norm1.visit(p, f));
        path.with("norm2", |p| self.norm2.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        path.with("self_attn", |p| self.self_attn.visit_mut(p, f));
        path.with("linear1", |p| self.linear1.visit_mut(p, f));
        path.with("linear2", |p| self.linear2.visit_mut(p, f));
        path.with("norm1", |p| self.norm1.visit_mut(p, f));
        path.with("norm2", |p| self.norm2.visit_mut(p, f));
    }
}

/// A stack of pre-norm blocks and a final layer norm; `causal` masks the future.
#[derive(Clone, Debug)]
pub struct TransformerEncoder<T: Scalar = f32> {
    /// The blocks, bottom first (names `layers.0`, `layers.1`, ...).
    pub layers: Vec<EncoderBlock<T>>,
    /// The final norm.
    pub norm: LayerNorm<T>,
    /// Whether every block uses a causal mask.
    pub causal: bool,
}

impl<T: Scalar> TransformerEncoder<T> {
    /// `cfg.layers` blocks; `causal` for a decoder-only stack.
    pub fn new(cfg: &TransformerConfig, causal: bool, rng: &mut Rng) -> Result<Self> {
        cfg.validate()?;
        let layers = (0..cfg.layers)
            .map(|_| EncoderBlock::new(cfg, rng))
            .collect::<Result<Vec<_>>>()?;
        Ok(TransformerEncoder {
            layers,
            norm: LayerNorm::new(cfg.d_model)?,
            causal,
        })
    }

    /// `[B, T, E] -> [B, T, E]`; `key_lengths` marks padding (keys past each
    /// sequence's length are never attended to).
    pub fn forward_padded<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        mut x: Var,
        key_lengths: Option<&[usize]>,
        ctx: &mut Ctx,
    ) -> Result<Var> {
        let mask = AttentionMask {
            causal: self.causal,
            key_lengths,
        };
        for block in &self.layers {
            x = block.forward_masked(g, x, &mask, ctx)?;
        }
        self.norm.forward(g, x, ctx)
    }
}

impl<T: Scalar> ParamSet<T> for TransformerEncoder<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        for b in &mut self.layers {
            b.for_each_param(f);
        }
        self.norm.for_each_param(f);
    }
}

impl<T: Scalar> Module<T> for TransformerEncoder<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        self.forward_padded(g, x, None, ctx)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        let mut buf = [0u8; 20];
        for (i, b) in self.layers.iter().enumerate() {
            path.with("layers", |p| {
                p.with(index_name(i, &mut buf), |p| b.visit(p, f))
            });
        }
        path.with("norm", |p| self.norm.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        let mut buf = [0u8; 20];
        for (i, b) in self.layers.iter_mut().enumerate() {
            path.with("layers", |p| {
                p.with(index_name(i, &mut buf), |p| b.visit_mut(p, f))
            });
        }
        path.with("norm", |p| self.norm.visit_mut(p, f));
    }
}

/// A decoder-only (GPT-style) causal language model; see the module doc.
#[derive(Clone, Debug)]
pub struct CausalTransformer<T: Scalar = f32> {
    /// Token embedding `[V, E]`.
    pub embed: Embedding<T>,
    /// Learned positions `[max_len, E]`.
    pub pos: PositionalEncoding<T>,
    /// Causal blocks and final norm.
    pub blocks: TransformerEncoder<T>,
    /// `E -> V`.
    pub head: Linear<T>,
}

impl<T: Scalar> CausalTransformer<T> {
    /// A model over `vocab` tokens for contexts up to `max_len`.
    pub fn new(
        cfg: TransformerConfig,
        vocab: usize,
        max_len: usize,
        rng: &mut Rng,
    ) -> Result<Self> {
        cfg.validate()?;
        Ok(CausalTransformer {
            embed: Embedding::new(vocab, cfg.d_model, rng)?,
            pos: PositionalEncoding::learned(max_len, cfg.d_model, rng)?,
            blocks: TransformerEncoder::new(&cfg, true, rng)?,
            head: LinearConfig::new(cfg.d_model, vocab).init(rng)?,
        })
    }

    /// Logits `[batch, time, V]` for `ids` (row-major `[batch, time]`).
    pub fn logits<'p>(
        &'p self,
        g: &mut Graph<'p, T>,
        ids: &[usize],
        batch: usize,
        time: usize,
        ctx: &mut Ctx,
    ) -> Result<Var> {
        let x = self.embed.lookup(g, ids, &[batch, time])?;
        let x = self.pos.forward(g, x, ctx)?;
        let x = self.blocks.forward(g, x, ctx)?;
        per_position(&self.head, g, x, ctx)
    }

    /// Longest context.
    pub fn max_len(&self) -> usize {
        self.pos.table().dims()[0]
    }
}

impl<T: Scalar> ParamSet<T> for CausalTransformer<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.embed.for_each_param(f);
        self.pos.for_each_param(f);
        self.blocks.for_each_param(f);
        self.head.for_each_param(f);
    }
}

impl<T: Scalar> Module<T> for CausalTransformer<T> {
    /// Token ids as whole numbers `[B, T]` -> logits `[B, T, V]`.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var> {
        let e = self.embed.forward(g, x, ctx)?;
        let e = self.pos.forward(g, e, ctx)?;
        let h = self.blocks.forward(g, e, ctx)?;
        per_position(&self.head, g, h, ctx)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        path.with("embed", |p| self.embed.visit(p, f));
        path.with("pos", |p| self.pos.visit(p, f));
        path.with("blocks", |p| self.blocks.visit(p, f));
        path.with("head", |p| self.head.visit(p, f));
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        path.with("embed", |p| self.embed.visit_mut(p, f));
        path.with("pos", |p| self.pos.visit_mut(p, f));
        path.with("blocks", |p| self.blocks.visit_mut(p, f));
        path.with("head", |p| self.head.visit_mut(p, f));
    }
}
