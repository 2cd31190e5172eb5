//! Multi-head scaled dot-product self-attention as one node, on the packed query /
//! key / value projection:
//!
//! ```text
//! qkv: [B*T, 3E] = [Q | K | V], each E = heads * d wide, rows in (b, t) order
//! for each batch entry b and head h (columns h*d .. (h+1)*d of Q, K and V):
//!     P = softmax(Q K^T / sqrt(d) + mask),  O = P V
//! out: [B*T, E], the heads side by side (ready for the output projection)
//! ```
//!
//! The mask is structural: `causal` hides keys after the query, `key_lengths[b]`
//! hides keys at or past it. Hidden keys get probability exactly 0, which is what an
//! additive mask of `-1e9` gives (every query keeps key 0, so no row is empty).
//! Composed from reshapes, permutes, batched products and a softmax, the same
//! computation records a dozen nodes, most of them copies; here the heads are read
//! in place through strides. Backward, with `dP = dO V^T`:
//! `dS = P * (dP - rowsum(dP * P)) / sqrt(d)`, `dQ = dS K`, `dK = dS^T Q`, `dV = P^T dO`.

use crate::error::{invalid_parameter, shape_mismatch, Result};
use crate::graph::{sized, BackwardCtx, Grads, Graph, Scratch, Var};
use crate::op::Op;
use crate::ops::parts::{row_parts, rows_of, rows_of_mut, run_rows};
use dl_core::gemm::gemm;
use dl_core::vmath::exp_inplace;
use dl_core::{Scalar, Shape};

const OP: &str = "self_attention";

/// Heads and mask of a fused self-attention (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionSpec {
    /// Batch entries `B` (the rows of `qkv` are `B * T`).
    pub batch: usize,
    /// Heads; must divide `E`.
    pub heads: usize,
    /// Hide keys after the query.
    pub causal: bool,
}

/// `(T, E, d)` after checking `qkv: [B*T, 3E]` against the spec.
fn dims(qkv: Shape, spec: AttentionSpec) -> Result<(usize, usize, usize)> {
    let (rows, e3) = match *qkv.dims() {
        [r, c] => (r, c),
        _ => {
            return Err(shape_mismatch(
                OP,
                qkv,
                qkv,
                "qkv must be [batch*time, 3*embed]",
            ))
        }
    };
    if spec.batch == 0 || rows % spec.batch != 0 {
        return Err(invalid_parameter(
            OP,
            "batch",
            spec.batch as f64,
            ">= 1 and dividing qkv's rows",
        ));
    }
    if e3 % 3 != 0 {
        return Err(shape_mismatch(
            OP,
            qkv,
            qkv,
            "qkv's last axis must be 3 * embed",
        ));
    }
    let e = e3 / 3;
    if spec.heads == 0 || e % spec.heads != 0 {
        return Err(invalid_parameter(
            OP,
            "heads",
            spec.heads as f64,
            ">= 1 and dividing embed",
        ));
    }
    Ok((rows / spec.batch, e, e / spec.heads))
}

/// Keys query `i` of batch entry `b` sees: `0..visible(..)`.
#[inline]
fn visible(lengths: &[usize], b: usize, i: usize, t: usize, causal: bool) -> usize {
    let n = if lengths.is_empty() { t } else { lengths[b] };
    if causal {
        n.min(i + 1)
    } else {
        n
    }
}

/// Copies rows `row0..row0 + t` (stride `stride`), columns `col..col + d` of `src`
/// into the contiguous `[t, d]` block `dst`.
#[inline]
fn gather<T: Scalar>(
    src: &[T],
    row0: usize,
    t: usize,
    stride: usize,
    col: usize,
    d: usize,
    dst: &mut [T],
) {
    for (i, r) in dst.chunks_exact_mut(d).take(t).enumerate() {
        r.copy_from_slice(&src[(row0 + i) * stride + col..][..d]);
    }
}

/// Writes (`fresh`: the gradient buffer holds stale numbers) or adds the `[t, d]`
/// block `src` into rows `row0..` (stride `stride`), columns `col..col + d` of `dst`.
#[inline]
fn scatter<T: Scalar>(
    src: &[T],
    dst: &mut [T],
    row0: usize,
    stride: usize,
    col: usize,
    d: usize,
    fresh: bool,
) {
    for (i, r) in src.chunks_exact(d).enumerate() {
        let out = &mut dst[(row0 + i) * stride + col..][..d];
        if fresh {
            out.copy_from_slice(r);
        } else {
            for (o, &v) in out.iter_mut().zip(r) {
                *o = *o + v;
            }
        }
    }
}

/// Softmax of `row[..n]` in place; `row[n..]` (hidden keys) becomes 0.
#[inline]
fn softmax_prefix<T: Scalar>(row: &mut [T], n: usize) {
    let m = row[..n].iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    for v in &mut row[..n] {
        *v = *v - m;
    }
    exp_inplace(&mut row[..n]);
    let inv = T::ONE / row[..n].iter().fold(T::ZERO, |s, &v| s + v);
    for v in &mut row[..n] {
        *v = *v * inv;
    }
    row[n..].fill(T::ZERO);
}

/// One part's block of batch entries: its rows of `qkv` and of the output, its
/// probabilities, a work buffer and its key lengths.
struct AttentionRows<'a, T> {
    /// `[n*T, 3E]`.
    x: &'a [T],
    /// `[n*T, E]`.
    out: &'a mut [T],
    /// `[n, heads, T, T]`.
    probs: &'a mut [T],
    /// `[4, T, d]`.
    work: &'a mut [T],
    /// `[n]`, or empty.
    len: &'a [usize],
}

/// The forward pass of [`Graph::self_attention`] for one block of batch entries.
fn attend_rows<T: Scalar>(
    r: &mut AttentionRows<'_, T>,
    spec: AttentionSpec,
    (t, e, d): (usize, usize, usize),
) -> Result<()> {
    let heads = spec.heads;
    let scale = T::ONE / T::from_usize_lossy(d).sqrt();
    let (q, rest) = r.work.split_at_mut(t * d);
    let (k, rest) = rest.split_at_mut(t * d);
    let (v, o) = rest.split_at_mut(t * d);
    let (x, len) = (r.x, r.len);
    for b in 0..x.len() / (t * 3 * e).max(1) {
        for h in 0..heads {
            gather(x, b * t, t, 3 * e, h * d, d, q);
            gather(x, b * t, t, 3 * e, e + h * d, d, k);
            gather(x, b * t, t, 3 * e, 2 * e + h * d, d, v);
            let p = &mut r.probs[(b * heads + h) * t * t..][..t * t];
            gemm(false, true, t, t, d, scale, q, k, T::ZERO, p)?;
            for (i, row) in p.chunks_exact_mut(t).enumerate() {
                softmax_prefix(row, visible(len, b, i, t, spec.causal));
            }
            gemm(false, false, t, d, t, T::ONE, p, v, T::ZERO, o)?;
            for (i, oi) in o.chunks_exact(d).enumerate() {
                r.out[(b * t + i) * e + h * d..][..d].copy_from_slice(oi);
            }
        }
    }
    Ok(())
}

/// One part's block of batch entries in backward.
struct AttentionGradRows<'a, T> {
    /// `[n*T, 3E]`.
    x: &'a [T],
    /// The output's gradient `[n*T, E]`.
    dy: &'a [T],
    /// `[n, heads, T, T]` as forward saved them.
    probs: &'a [T],
    /// The gradient of `qkv` `[n*T, 3E]`.
    dx: &'a mut [T],
    /// `[5 T d + T T]`.
    work: &'a mut [T],
}

/// The backward pass of [`Graph::self_attention`] for one block of batch entries;
/// `fresh`: `dx` holds stale numbers to overwrite rather than add to.
fn attend_rows_backward<T: Scalar>(
    r: &mut AttentionGradRows<'_, T>,
    heads: usize,
    (t, e, d): (usize, usize, usize),
    fresh: bool,
) -> Result<()> {
    let scale = T::ONE / T::from_usize_lossy(d).sqrt();
    let (q, rest) = r.work.split_at_mut(t * d);
    let (k, rest) = rest.split_at_mut(t * d);
    let (v, rest) = rest.split_at_mut(t * d);
    let (d_o, rest) = rest.split_at_mut(t * d);
    let (dpart, ds) = rest.split_at_mut(t * d);
    let (x, dy, probs) = (r.x, r.dy, r.probs);
    let dx = &mut *r.dx;
    for b in 0..x.len() / (t * 3 * e).max(1) {
        for h in 0..heads {
            gather(x, b * t, t, 3 * e, h * d, d, q);
            gather(x, b * t, t, 3 * e, e + h * d, d, k);
            gather(x, b * t, t, 3 * e, 2 * e + h * d, d, v);
            gather(dy, b * t, t, e, h * d, d, d_o);
            let p = &probs[(b * heads + h) * t * t..][..t * t];
            // dP = dO V^T, then dS = P * (dP - rowsum(dP * P)) / sqrt(d) in place.
            gemm(false, true, t, t, d, T::ONE, d_o, v, T::ZERO, ds)?;
            for (dsr, pr) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)) {
                let rowdot = dsr.iter().zip(pr).fold(T::ZERO, |s, (&a, &b)| s + a * b);
                for (g, &pv) in dsr.iter_mut().zip(pr) {
                    *g = pv * (*g - rowdot) * scale;
                }
            }
            // dV = P^T dO, dQ = dS K, dK = dS^T Q, each added into its columns.
            gemm(true, false, t, d, t, T::ONE, p, d_o, T::ZERO, dpart)?;
            scatter(dpart, dx, b * t, 3 * e, 2 * e + h * d, d, fresh);
            gemm(false, false, t, d, t, T::ONE, ds, k, T::ZERO, dpart)?;
            scatter(dpart, dx, b * t, 3 * e, h * d, d, fresh);
            gemm(true, false, t, d, t, T::ONE, ds, q, T::ZERO, dpart)?;
            scatter(dpart, dx, b * t, 3 * e, e + h * d, d, fresh);
        }
    }
    Ok(())
}

impl<T: Scalar> Graph<'_, T> {
    /// Fused multi-head self-attention on `qkv: [B*T, 3E]` (see the module doc);
    /// `key_lengths` (one per batch entry, each in `1..=T`) hides padded keys.
    /// Returns `[B*T, E]`. Errors name `self_attention` and the offending shape or
    /// setting.
    pub fn self_attention(
        &mut self,
        qkv: Var,
        spec: AttentionSpec,
        key_lengths: Option<&[usize]>,
    ) -> Result<Var> {
        let (t, e, d) = dims(self.shape_of(qkv, OP)?, spec)?;
        let (bs, heads) = (spec.batch, spec.heads);
        if let Some(len) = key_lengths {
            if len.len() != bs {
                return Err(dl_core::Error::LengthMismatch {
                    op: OP,
                    what: "key_lengths",
                    expected: bs,
                    actual: len.len(),
                }
                .into());
            }
            if let Some(&bad) = len.iter().find(|&&n| n == 0 || n > t) {
                return Err(invalid_parameter(
                    OP,
                    "key_lengths[i]",
                    bad as f64,
                    "1..=time steps",
                ));
            }
        }
        let needs = self.needs_grad(&[qkv]);
        let mut node = self.begin(Shape::new(&[bs * t, e])?);
        node.saved_idx.clear();
        if let Some(len) = key_lengths {
            node.saved_idx.extend_from_slice(len);
        }
        // P for every (b, h): [B, heads, T, T], kept for backward.
        let probs = sized(&mut node.saved, bs * heads * t * t);
        let mut scratch = core::mem::take(&mut self.scratch);
        // Batch entries are independent: each part takes a block of them, with its
        // own work buffer.
        let parts = row_parts(bs, heads * 2 * t * t * d, 1);
        let per = bs.div_ceil(parts);
        let work = sized(&mut scratch.a, parts * 4 * t * d);
        let x = self.val(qkv).data();
        let out = node.value.data_mut();
        let len = &node.saved_idx[..];
        let blocks = rows_of(x, per * t * 3 * e)
            .zip(rows_of_mut(out, per * t * e))
            .zip(rows_of_mut(probs, per * heads * t * t))
            .zip(rows_of_mut(work, 4 * t * d))
            .zip(rows_of(len, per))
            .take(parts)
            .map(|((((x, out), probs), work), len)| AttentionRows {
                x,
                out,
                probs,
                work,
                len,
            });
        let sizes = (t, e, d);
        let result = run_rows(blocks, &|rows| attend_rows(rows, spec, sizes));
        self.scratch = scratch;
        result?;
        Ok(self.finish(Op::SelfAttention { qkv, spec }, node, needs))
    }
}

/// Backward of [`Graph::self_attention`] (see the module doc).
pub(crate) fn self_attention_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    qkv: Var,
    spec: AttentionSpec,
) -> Result<()> {
    let (t, e, d) = dims(*ctx.vals.get(qkv).shape(), spec)?;
    let (bs, heads) = (spec.batch, spec.heads);
    let x = ctx.vals.get(qkv).data();
    let probs = &ctx.node.saved;
    let dy = ctx.dy;
    let Some(dx) = grads.get(qkv) else {
        return Ok(());
    };
    let fresh = dx.fresh;
    let parts = row_parts(bs, heads * 4 * t * t * d, 1);
    let per = bs.div_ceil(parts);
    let each = 5 * t * d + t * t;
    let work = sized(&mut scratch.a, parts * each);
    let blocks = rows_of(x, per * t * 3 * e)
        .zip(rows_of(dy, per * t * e))
        .zip(rows_of(probs, per * heads * t * t))
        .zip(rows_of_mut(dx.data, per * t * 3 * e))
        .zip(rows_of_mut(work, each))
        .take(parts)
        .map(|((((x, dy), probs), dx), work)| AttentionGradRows {
            x,
            dy,
            probs,
            dx,
            work,
        });
    run_rows(blocks, &|rows| {
        attend_rows_backward(rows, heads, (t, e, d), fresh)
    })?;
    Ok(())
}
