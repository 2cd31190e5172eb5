//! Inverted dropout: in training each element is kept with probability `1 - p` and
//! scaled by `1 / (1 - p)` (so the expected value is unchanged); in evaluation it is
//! the identity. `y = x * m`, `dx = dy * m`, with the mask `m` drawn from a seeded
//! [`Rng`] and kept for backward.

use crate::error::{invalid_parameter, Result};
use crate::graph::{BackwardCtx, Grads, Graph, Var};
use crate::op::Op;
use dl_core::{Rng, Scalar};

impl<T: Scalar> Graph<'_, T> {
    /// Dropout with drop probability `p` (`0 <= p < 1`, else an error naming `p`).
    /// With `train == false` (or `p == 0`) it returns `x` itself: evaluation mode is
    /// the identity and records nothing.
    ///
    /// ```
    /// use dl_autograd::Graph;
    /// use dl_core::{Rng, Tensor};
    /// let mut g = Graph::<f32>::new();
    /// let x = g.input(&Tensor::ones(&[1000]).unwrap());
    /// let mut rng = Rng::seed_from_u64(0);
    /// let y = g.dropout(x, 0.5, true, &mut rng).unwrap();
    /// let kept = g.value(y).unwrap().data().iter().filter(|&&v| v == 2.0).count();
    /// assert!((400..600).contains(&kept)); // the rest are exactly 0
    /// assert_eq!(g.dropout(x, 0.5, false, &mut rng).unwrap(), x);
    /// assert!(g.dropout(x, 1.0, true, &mut rng).is_err());
    /// ```
    pub fn dropout(&mut self, x: Var, p: f64, train: bool, rng: &mut Rng) -> Result<Var> {
        const OP: &str = "dropout";
        let shape = self.shape_of(x, OP)?;
        if !(0.0..1.0).contains(&p) {
            return Err(invalid_parameter(OP, "p", p, "0 <= p < 1"));
        }
        if !train || p == 0.0 {
            return Ok(x);
        }
        let scale = T::from_f64_lossy(1.0 / (1.0 - p));
        let mut b = self.begin(shape);
        b.saved.clear();
        b.saved
            .extend((0..shape.numel()).map(|_| if rng.bernoulli(p) { T::ZERO } else { scale }));
        for ((y, &xv), &m) in b
            .value
            .data_mut()
            .iter_mut()
            .zip(self.val(x).data())
            .zip(&b.saved)
        {
            *y = xv * m;
        }
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::Dropout { x, p }, b, needs))
    }
}

/// `dx += dy * mask`.
pub(crate) fn dropout_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    x: Var,
) -> Result<()> {
    if let Some(dx) = grads.get(x) {
        let fresh = dx.fresh;
        for ((d, &g), &m) in dx.data.iter_mut().zip(ctx.dy).zip(&ctx.node.saved) {
            *d = if fresh { g * m } else { *d + g * m };
        }
    }
    Ok(())
}
