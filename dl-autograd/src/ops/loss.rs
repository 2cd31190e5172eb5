//! Losses with a fused, numerically stable backward, each reduced by the mean (as
//! PyTorch's default). The gradient with respect to the prediction is computed in the
//! same pass as the loss and kept on the node, so backward is one scaled add.
//!
//! - cross-entropy (class indices): `l = mean_r (logsumexp(x_r) - x_r[t_r])`,
//!   `dx = (softmax(x) - onehot(t)) / N`;
//! - soft cross-entropy (probability rows `t`): `l = -mean_r sum_j t_rj log_softmax(x_r)_j`,
//!   `dx = (softmax(x) sum_j t_rj - t) / N`, `dt = -log_softmax(x) / N`;
//! - BCE from logits: `l = mean(max(x, 0) - x t + log(1 + e^-|x|))`,
//!   `dx = (sigmoid(x) - t) / n`, `dt = -x / n`;
//! - MSE: `mean((p - t)^2)`, `dp = 2 (p - t) / n`;
//! - MAE: `mean(|p - t|)`, `dp = sign(p - t) / n`;
//! - Huber(delta): `0.5 d^2` for `|d| <= delta`, else `delta (|d| - delta / 2)`,
//!   `dp = clamp(d, -delta, delta) / n`; for the regression losses `dt = -dp`.

use crate::error::{invalid_parameter, shape_mismatch, Result};
use crate::graph::{sized, BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::softmax as kern;
use dl_core::{Scalar, Shape};

/// `(rows, cols)` of a `[N, C]` logits matrix with `N >= 1`.
fn logits_matrix(op: &'static str, shape: Shape) -> Result<(usize, usize)> {
    let [rows, cols] = *shape.dims() else {
        return Err(dl_core::Error::RankMismatch {
            op,
            expected: "2 ([N, C] logits)",
            shape,
        }
        .into());
    };
    if rows == 0 {
        return Err(invalid_parameter(op, "rows", 0.0, ">= 1"));
    }
    Ok((rows, cols))
}

/// The regression losses, one element-wise rule each.
#[derive(Clone, Copy)]
enum Regression {
    Mse,
    Mae,
    Huber(f64),
}

impl Regression {
    /// `(loss, dloss/dd)` at one residual `d = p - t`.
    #[inline]
    fn eval<T: Scalar>(self, d: T) -> (T, T) {
        match self {
            Regression::Mse => (d * d, d + d),
            Regression::Mae => {
                let s = if d > T::ZERO {
                    T::ONE
                } else if d < T::ZERO {
                    -T::ONE
                } else {
                    T::ZERO
                };
                (d.abs(), s)
            }
            Regression::Huber(delta) => {
                let delta = T::from_f64_lossy(delta);
                let half = T::from_f64_lossy(0.5);
                if d.abs() <= delta {
                    (half * d * d, d)
                } else {
                    (delta * (d.abs() - half * delta), delta * d.signum())
                }
            }
        }
    }
}

impl<T: Scalar> Graph<'_, T> {
    /// Mean softmax cross-entropy of `[N, C]` logits against class indices
    /// `targets` (`N` of them, each `< C`), as `torch.nn.functional.cross_entropy`.
    ///
    /// ```
    /// use dl_autograd::Graph;
    /// use dl_core::Tensor;
    /// let mut g = Graph::<f64>::new();
    /// let x = g.variable(&Tensor::from_rows([[0.0, 0.0]]));
    /// let l = g.cross_entropy(x, &[1]).unwrap();
    /// assert!((g.value(l).unwrap().data()[0] - 2f64.ln()).abs() < 1e-12);
    /// g.backward(l).unwrap();
    /// assert_eq!(g.grad(x).unwrap().data(), &[0.5, -0.5]); // softmax - onehot
    /// ```
    pub fn cross_entropy(&mut self, logits: Var, targets: &[usize]) -> Result<Var> {
        const OP: &str = "cross_entropy";
        let shape = self.shape_of(logits, OP)?;
        let (rows, cols) = logits_matrix(OP, shape)?;
        let needs = self.needs_grad(&[logits]);
        let mut b = self.begin(Shape::scalar());
        let grad = if needs {
            Some(sized(&mut b.saved, rows * cols))
        } else {
            None
        };
        let loss = kern::softmax_cross_entropy(self.val(logits).data(), rows, cols, targets, grad)?;
        b.value.data_mut()[0] = loss;
        Ok(self.finish(Op::CrossEntropy { logits }, b, needs))
    }

    /// Mean softmax cross-entropy of `[N, C]` logits against target probability rows
    /// (soft labels or one-hot), same shape:
    /// `-mean_r sum_j t_rj log_softmax(x_r)_j`.
    pub fn soft_cross_entropy(&mut self, logits: Var, target: Var) -> Result<Var> {
        const OP: &str = "soft_cross_entropy";
        let shape = self.shape_of(logits, OP)?;
        let ts = self.shape_of(target, OP)?;
        let (rows, cols) = logits_matrix(OP, shape)?;
        if ts != shape {
            return Err(shape_mismatch(
                OP,
                shape,
                ts,
                "logits and targets must have equal shapes",
            ));
        }
        let needs = self.needs_grad(&[logits, target]);
        let mut b = self.begin(Shape::scalar());
        // The log-probabilities are kept for backward (and used for the loss).
        let logp = sized(&mut b.saved, rows * cols);
        kern::log_softmax(self.val(logits).data(), rows, cols, logp)?;
        let t = self.val(target).data();
        let total: T = logp.iter().zip(t).map(|(&lp, &tv)| tv * lp).sum();
        b.value.data_mut()[0] = -total / T::from_usize_lossy(rows);
        Ok(self.finish(Op::SoftCrossEntropy { logits, target }, b, needs))
    }

    /// Mean binary cross-entropy of logits against targets in `[0, 1]` (same shape),
    /// stable for any logit: `mean(max(x, 0) - x t + log(1 + e^-|x|))`, as
    /// `torch.nn.BCEWithLogitsLoss`.
    pub fn bce_with_logits(&mut self, logits: Var, target: Var) -> Result<Var> {
        const OP: &str = "bce_with_logits";
        let (n, needs) = self.check_pair(OP, logits, target)?;
        let mut b = self.begin(Shape::scalar());
        let grad = sized(&mut b.saved, if needs { n } else { 0 });
        let inv_n = T::ONE / T::from_usize_lossy(n);
        let (x, t) = (self.val(logits).data(), self.val(target).data());
        let mut total = T::ZERO;
        for (i, (&xv, &tv)) in x.iter().zip(t).enumerate() {
            total = total + xv.max(T::ZERO) - xv * tv + (-xv.abs()).exp().ln_1p();
            if needs {
                // sigmoid(x), written so e^t never overflows.
                let e = (-xv.abs()).exp();
                let s = if xv >= T::ZERO {
                    T::ONE / (T::ONE + e)
                } else {
                    e / (T::ONE + e)
                };
                grad[i] = (s - tv) * inv_n;
            }
        }
        b.value.data_mut()[0] = total * inv_n;
        Ok(self.finish(Op::BceWithLogits { logits, target }, b, needs))
    }

    /// Mean squared error `mean((pred - target)^2)` (same shapes).
    pub fn mse(&mut self, pred: Var, target: Var) -> Result<Var> {
        self.regression("mse", Regression::Mse, pred, target)
    }

    /// Mean absolute error `mean(|pred - target|)` (same shapes; gradient 0 at 0).
    pub fn mae(&mut self, pred: Var, target: Var) -> Result<Var> {
        self.regression("mae", Regression::Mae, pred, target)
    }

    /// Mean Huber loss with threshold `delta > 0` (same shapes), as
    /// `torch.nn.HuberLoss`: quadratic within `delta`, linear beyond.
    pub fn huber(&mut self, pred: Var, target: Var, delta: f64) -> Result<Var> {
        if !(delta > 0.0 && delta.is_finite()) {
            return Err(invalid_parameter("huber", "delta", delta, "> 0 and finite"));
        }
        self.regression("huber", Regression::Huber(delta), pred, target)
    }

    /// Checks two equal, non-empty shapes; returns the element count and whether a
    /// gradient is needed.
    fn check_pair(&self, op: &'static str, a: Var, b: Var) -> Result<(usize, bool)> {
        let sa = self.shape_of(a, op)?;
        let sb = self.shape_of(b, op)?;
        if sa != sb {
            return Err(shape_mismatch(
                op,
                sa,
                sb,
                "prediction and target must have equal shapes",
            ));
        }
        if sa.numel() == 0 {
            return Err(invalid_parameter(op, "elements", 0.0, ">= 1"));
        }
        Ok((sa.numel(), self.needs_grad(&[a, b])))
    }

    fn regression(
        &mut self,
        op: &'static str,
        rule: Regression,
        pred: Var,
        target: Var,
    ) -> Result<Var> {
        let (n, needs) = self.check_pair(op, pred, target)?;
        let mut b = self.begin(Shape::scalar());
        let grad = sized(&mut b.saved, if needs { n } else { 0 });
        let inv_n = T::ONE / T::from_usize_lossy(n);
        let (p, t) = (self.val(pred).data(), self.val(target).data());
        let mut total = T::ZERO;
        for (i, (&pv, &tv)) in p.iter().zip(t).enumerate() {
            let (l, dl) = rule.eval(pv - tv);
            total = total + l;
            if needs {
                grad[i] = dl * inv_n;
            }
        }
        b.value.data_mut()[0] = total * inv_n;
        let node_op = match rule {
            Regression::Mse => Op::Mse { pred, target },
            Regression::Mae => Op::Mae { pred, target },
            Regression::Huber(delta) => Op::Huber {
                pred,
                target,
                delta,
            },
        };
        Ok(self.finish(node_op, b, needs))
    }
}

/// `dst += s * src` (or `= s * src` when fresh).
fn add_scaled<T: Scalar>(grads: &mut Grads<'_, '_, T>, v: Var, s: T, src: impl Iterator<Item = T>) {
    if let Some(g) = grads.get(v) {
        let fresh = g.fresh;
        for (d, x) in g.data.iter_mut().zip(src) {
            *d = if fresh { s * x } else { *d + s * x };
        }
    }
}

/// `dx += dy * saved_grad`.
pub(crate) fn cross_entropy_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    logits: Var,
) -> Result<()> {
    add_scaled(grads, logits, ctx.dy[0], ctx.node.saved.iter().copied());
    Ok(())
}

/// `dx += dy / N (softmax sum_j t_j - t)`, `dt += -dy / N log_softmax`.
pub(crate) fn soft_cross_entropy_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    logits: Var,
    target: Var,
) -> Result<()> {
    let (rows, cols) = logits_matrix("soft_cross_entropy", *ctx.vals.get(logits).shape())?;
    let s = ctx.dy[0] / T::from_usize_lossy(rows);
    let logp = &ctx.node.saved;
    let t = ctx.vals.get(target).data();
    if let Some(g) = grads.get(logits) {
        let fresh = g.fresh;
        for r in 0..rows {
            let tr = &t[r * cols..(r + 1) * cols];
            let t_sum: T = tr.iter().copied().sum();
            let gr = &mut g.data[r * cols..(r + 1) * cols];
            for ((d, &lp), &tv) in gr.iter_mut().zip(&logp[r * cols..]).zip(tr) {
                let v = s * (lp.exp() * t_sum - tv);
                *d = if fresh { v } else { *d + v };
            }
        }
    }
    add_scaled(grads, target, -s, logp.iter().copied());
    Ok(())
}

/// `dx += dy * saved`, `dt += -dy x / n`.
pub(crate) fn bce_with_logits_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    logits: Var,
    target: Var,
) -> Result<()> {
    let x = ctx.vals.get(logits).data();
    let dy = ctx.dy[0];
    add_scaled(grads, logits, dy, ctx.node.saved.iter().copied());
    let inv_n = T::ONE / T::from_usize_lossy(x.len());
    add_scaled(grads, target, -dy * inv_n, x.iter().copied());
    Ok(())
}

/// `dp += dy * saved`, `dt -= dy * saved`.
pub(crate) fn regression_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    pred: Var,
    target: Var,
) -> Result<()> {
    let dy = ctx.dy[0];
    add_scaled(grads, pred, dy, ctx.node.saved.iter().copied());
    add_scaled(grads, target, -dy, ctx.node.saved.iter().copied());
    Ok(())
}
