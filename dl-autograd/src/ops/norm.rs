//! Fused batch normalization and layer normalization, each with a hand-derived
//! backward (one pass for the sums, one for the gradient).
//!
//! With `x_hat = (x - mean) / sqrt(var + eps)` over `M` values and
//! `y = gamma x_hat + beta`:
//! `dgamma = sum(dy x_hat)`, `dbeta = sum(dy)`, and, when the statistics come from
//! the batch itself,
//! `dx = gamma / (M sqrt(var + eps)) * (M dy - sum(dy) - x_hat sum(dy x_hat))`;
//! with fixed (running) statistics, `dx = gamma dy / sqrt(var + eps)`.

use crate::error::{invalid_parameter, shape_mismatch, Result};
use crate::graph::{zeroed, BackwardCtx, Grads, Graph, Scratch, Var};
use crate::op::{Affine, Op};
use dl_core::{Scalar, Shape};

/// Where batch norm takes its statistics from.
#[derive(Clone, Copy, Debug)]
pub enum BatchNormMode<'a, T> {
    /// Training: mean and (biased) variance of the batch, per channel; read them
    /// back with [`Graph::batch_norm_stats`] to update running statistics.
    Train,
    /// Evaluation: the given running statistics (`[C]` each).
    Eval {
        /// Running mean per channel.
        running_mean: &'a [T],
        /// Running (unbiased) variance per channel.
        running_var: &'a [T],
    },
}

/// The per-channel statistics a batch-norm node normalized with.
#[derive(Clone, Copy, Debug)]
pub struct BatchStats<'a, T> {
    /// Mean per channel.
    pub mean: &'a [T],
    /// Biased variance per channel (divided by `count`), as used for normalizing.
    pub var: &'a [T],
    /// Values per channel (`N`, or `N H W` for 4-D input).
    pub count: usize,
}

impl<T: Scalar> BatchStats<'_, T> {
    /// The unbiased variance of channel `c` (divided by `count - 1`), which PyTorch
    /// uses for its running variance.
    pub fn unbiased_var(&self, c: usize) -> T {
        let n = T::from_usize_lossy(self.count);
        self.var[c] * n / (n - T::ONE)
    }
}

/// `(n, c, inner)` for `[N, C]` or `[N, C, H, W]`.
fn channel_layout(shape: &Shape) -> Result<(usize, usize, usize)> {
    match *shape.dims() {
        [n, c] => Ok((n, c, 1)),
        [n, c, h, w] => Ok((n, c, h * w)),
        _ => Err(dl_core::Error::RankMismatch {
            op: "batch_norm",
            expected: "2 ([N, C]) or 4 ([N, C, H, W])",
            shape: *shape,
        }
        .into()),
    }
}

fn check_eps(op: &'static str, eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(invalid_parameter(op, "eps", eps, "> 0 and finite"))
    }
}

impl<T: Scalar> Graph<'_, T> {
    fn check_affine(
        &self,
        op: &'static str,
        affine: Option<Affine>,
        len: usize,
        x: Shape,
    ) -> Result<()> {
        if let Some(a) = affine {
            for v in [a.gamma, a.beta] {
                let s = self.shape_of(v, op)?;
                if s.dims() != [len] {
                    return Err(shape_mismatch(
                        op,
                        x,
                        s,
                        "gamma and beta must be [C] (or [D])",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Batch normalization over axis 1 of `[N, C]` or `[N, C, H, W]`:
    /// `y = gamma (x - mean) / sqrt(var + eps) + beta`, per channel. In
    /// [`BatchNormMode::Train`] the statistics are the batch's (over N, and H, W) and
    /// are kept on the node ([`Graph::batch_norm_stats`]); in `Eval` they are the
    /// running statistics given. Errors on other ranks, `[C]` mismatches, `eps <= 0`,
    /// or fewer than 2 values per channel in training (as PyTorch).
    pub fn batch_norm(
        &mut self,
        x: Var,
        affine: Option<Affine>,
        mode: BatchNormMode<'_, T>,
        eps: f64,
    ) -> Result<Var> {
        const OP: &str = "batch_norm";
        let shape = self.shape_of(x, OP)?;
        let (n, c, inner) = channel_layout(&shape)?;
        check_eps(OP, eps)?;
        self.check_affine(OP, affine, c, shape)?;
        let m = n * inner;
        let train = matches!(mode, BatchNormMode::Train);
        if let BatchNormMode::Eval {
            running_mean,
            running_var,
        } = mode
        {
            for s in [running_mean, running_var] {
                if s.len() != c {
                    return Err(dl_core::Error::LengthMismatch {
                        op: OP,
                        what: "running statistics",
                        expected: c,
                        actual: s.len(),
                    }
                    .into());
                }
            }
        } else if m < 2 {
            return Err(invalid_parameter(
                OP,
                "values per channel",
                m as f64,
                ">= 2 in training",
            ));
        }
        let needs =
            self.needs_grad(&[x]) || affine.is_some_and(|a| self.needs_grad(&[a.gamma, a.beta]));
        let mut b = self.begin(shape);
        // saved = [mean; C] [var; C] [inv_std; C] [x_hat; numel if needed]
        let saved = zeroed(&mut b.saved, 3 * c + if needs { shape.numel() } else { 0 });
        let (stats, xhat) = saved.split_at_mut(3 * c);
        let (mean, rest) = stats.split_at_mut(c);
        let (var, inv_std) = rest.split_at_mut(c);
        let xv = self.val(x).data();
        let plane = |i: usize, ch: usize| (i * c + ch) * inner;
        match mode {
            BatchNormMode::Train => {
                let inv_m = T::ONE / T::from_usize_lossy(m);
                for ch in 0..c {
                    let mut s = T::ZERO;
                    for i in 0..n {
                        s = s + xv[plane(i, ch)..][..inner].iter().copied().sum::<T>();
                    }
                    let mu = s * inv_m;
                    let mut q = T::ZERO;
                    for i in 0..n {
                        q = q + xv[plane(i, ch)..][..inner]
                            .iter()
                            .map(|&v| (v - mu) * (v - mu))
                            .sum::<T>();
                    }
                    mean[ch] = mu;
                    var[ch] = q * inv_m;
                }
            }
            BatchNormMode::Eval {
                running_mean,
                running_var,
            } => {
                mean.copy_from_slice(running_mean);
                var.copy_from_slice(running_var);
            }
        }
        let eps_t = T::from_f64_lossy(eps);
        for (is, &v) in inv_std.iter_mut().zip(var.iter()) {
            *is = T::ONE / (v + eps_t).sqrt();
        }
        let (gamma, beta) = match affine {
            Some(a) => (
                Some(self.val(a.gamma).data()),
                Some(self.val(a.beta).data()),
            ),
            None => (None, None),
        };
        let out = b.value.data_mut();
        for i in 0..n {
            for ch in 0..c {
                let (mu, is) = (mean[ch], inv_std[ch]);
                let g = gamma.map_or(T::ONE, |g| g[ch]);
                let bt = beta.map_or(T::ZERO, |b| b[ch]);
                let r = plane(i, ch)..plane(i, ch) + inner;
                for (k, (o, &v)) in out[r.clone()].iter_mut().zip(&xv[r.clone()]).enumerate() {
                    let h = (v - mu) * is;
                    if needs {
                        xhat[r.start + k] = h;
                    }
                    *o = g * h + bt;
                }
            }
        }
        Ok(self.finish(
            Op::BatchNorm {
                x,
                affine,
                eps,
                train,
            },
            b,
            needs,
        ))
    }

    /// The statistics a batch-norm output was normalized with (the batch's in
    /// training), or `None` if `y` is not a batch-norm node.
    pub fn batch_norm_stats(&self, y: Var) -> Option<BatchStats<'_, T>> {
        self.check(y, "batch_norm_stats").ok()?;
        let node = &self.nodes[y.index()];
        let Op::BatchNorm { x, .. } = node.op else {
            return None;
        };
        let (n, c, inner) = channel_layout(self.val(x).shape()).ok()?;
        Some(BatchStats {
            mean: &node.saved[..c],
            var: &node.saved[c..2 * c],
            count: n * inner,
        })
    }

    /// Layer normalization over the last axis (`D` features):
    /// `y = gamma (x - mean) / sqrt(var + eps) + beta` per row, with the biased
    /// variance; `gamma`, `beta` are `[D]`. Errors on a rank-0 input, `[D]`
    /// mismatches or `eps <= 0`.
    pub fn layer_norm(&mut self, x: Var, affine: Option<Affine>, eps: f64) -> Result<Var> {
        const OP: &str = "layer_norm";
        let shape = self.shape_of(x, OP)?;
        let (rows, d) = crate::ops::softmax::rows_cols(&shape, OP)?;
        check_eps(OP, eps)?;
        self.check_affine(OP, affine, d, shape)?;
        let needs =
            self.needs_grad(&[x]) || affine.is_some_and(|a| self.needs_grad(&[a.gamma, a.beta]));
        let mut b = self.begin(shape);
        // saved = [inv_std; rows] [x_hat; numel]
        let saved = zeroed(&mut b.saved, if needs { rows + shape.numel() } else { 0 });
        let (inv_stds, xhat) = saved.split_at_mut(if needs { rows } else { 0 });
        let xv = self.val(x).data();
        let (gamma, beta) = match affine {
            Some(a) => (
                Some(self.val(a.gamma).data()),
                Some(self.val(a.beta).data()),
            ),
            None => (None, None),
        };
        let inv_d = T::ONE / T::from_usize_lossy(d);
        let eps_t = T::from_f64_lossy(eps);
        let out = b.value.data_mut();
        for r in 0..rows {
            let row = &xv[r * d..(r + 1) * d];
            let mu = row.iter().copied().sum::<T>() * inv_d;
            let var = row.iter().map(|&v| (v - mu) * (v - mu)).sum::<T>() * inv_d;
            let is = T::ONE / (var + eps_t).sqrt();
            if needs {
                inv_stds[r] = is;
            }
            for (j, (o, &v)) in out[r * d..(r + 1) * d].iter_mut().zip(row).enumerate() {
                let h = (v - mu) * is;
                if needs {
                    xhat[r * d + j] = h;
                }
                *o = gamma.map_or(T::ONE, |g| g[j]) * h + beta.map_or(T::ZERO, |b| b[j]);
            }
        }
        Ok(self.finish(Op::LayerNorm { x, affine, eps }, b, needs))
    }
}

/// Adds `src` into the gradient of `v` if it needs one.
fn add_into<T: Scalar>(grads: &mut Grads<'_, '_, T>, v: Var, src: &[T]) {
    if let Some(g) = grads.get(v) {
        g.add(src);
    }
}

/// See the module doc.
pub(crate) fn batch_norm_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    affine: Option<Affine>,
    train: bool,
) -> Result<()> {
    let (n, c, inner) = channel_layout(ctx.vals.get(x).shape())?;
    let m = T::from_usize_lossy(n * inner);
    let saved = &ctx.node.saved;
    let inv_std = &saved[2 * c..3 * c];
    let xhat = &saved[3 * c..];
    let dy = ctx.dy;
    let plane = |i: usize, ch: usize| (i * c + ch) * inner;
    // Per channel: sum(dy) and sum(dy x_hat).
    let sums = zeroed(&mut scratch.c, 2 * c);
    let (sum_dy, sum_dy_xhat) = sums.split_at_mut(c);
    for i in 0..n {
        for ch in 0..c {
            let r = plane(i, ch)..plane(i, ch) + inner;
            for (&g, &h) in dy[r.clone()].iter().zip(&xhat[r]) {
                sum_dy[ch] = sum_dy[ch] + g;
                sum_dy_xhat[ch] = sum_dy_xhat[ch] + g * h;
            }
        }
    }
    let gamma = affine.map(|a| ctx.vals.get(a.gamma).data());
    if let Some(dx) = grads.get(x) {
        let fresh = dx.fresh;
        for i in 0..n {
            for ch in 0..c {
                let k = gamma.map_or(T::ONE, |g| g[ch]) * inv_std[ch];
                let r = plane(i, ch)..plane(i, ch) + inner;
                let dxr = &mut dx.data[r.clone()];
                for ((d, &g), &h) in dxr.iter_mut().zip(&dy[r.clone()]).zip(&xhat[r]) {
                    let v = if train {
                        k / m * (m * g - sum_dy[ch] - h * sum_dy_xhat[ch])
                    } else {
                        k * g
                    };
                    *d = if fresh { v } else { *d + v };
                }
            }
        }
    }
    if let Some(a) = affine {
        add_into(grads, a.gamma, sum_dy_xhat);
        add_into(grads, a.beta, sum_dy);
    }
    Ok(())
}

/// See the module doc (per row, over the last axis).
pub(crate) fn layer_norm_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    x: Var,
    affine: Option<Affine>,
) -> Result<()> {
    let (rows, d) = crate::ops::softmax::rows_cols(ctx.vals.get(x).shape(), "layer_norm")?;
    let (inv_std, xhat) = ctx.node.saved.split_at(rows);
    let dy = ctx.dy;
    let gamma = affine.map(|a| ctx.vals.get(a.gamma).data());
    let inv_d = T::ONE / T::from_usize_lossy(d);
    if let Some(dx) = grads.get(x) {
        let fresh = dx.fresh;
        for r in 0..rows {
            let (dyr, hr) = (&dy[r * d..(r + 1) * d], &xhat[r * d..(r + 1) * d]);
            // g = dy * gamma; dx = inv_std / D * (D g - sum(g) - x_hat sum(g x_hat))
            let g = |j: usize| dyr[j] * gamma.map_or(T::ONE, |gm| gm[j]);
            let (mut sg, mut sgh) = (T::ZERO, T::ZERO);
            for (j, &h) in hr.iter().enumerate() {
                sg = sg + g(j);
                sgh = sgh + g(j) * h;
            }
            let dxr = &mut dx.data[r * d..(r + 1) * d];
            for (j, (slot, &h)) in dxr.iter_mut().zip(hr).enumerate() {
                let v = inv_std[r] * (g(j) - inv_d * sg - h * inv_d * sgh);
                *slot = if fresh { v } else { *slot + v };
            }
        }
    }
    if let Some(a) = affine {
        let sums = zeroed(&mut scratch.c, 2 * d);
        let (dgamma, dbeta) = sums.split_at_mut(d);
        for r in 0..rows {
            for j in 0..d {
                let g = dy[r * d + j];
                dgamma[j] = dgamma[j] + g * xhat[r * d + j];
                dbeta[j] = dbeta[j] + g;
            }
        }
        add_into(grads, a.gamma, dgamma);
        add_into(grads, a.beta, dbeta);
    }
    Ok(())
}
