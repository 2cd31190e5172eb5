//! Weight penalties: L2 (weight decay), L1 and elastic net (both), added to the loss
//! and to the gradients of the parameters they are applied to.
//!
//! ```text
//! penalty = l1 * sum |w| + l2 / 2 * sum w^2
//! grad   += l1 * sign(w) + l2 * w          (sign(0) = 0, as torch's subgradient)
//! ```
//! With this convention `l2` equals torch's `weight_decay`. Apply it to the parameters
//! you choose (usually weights, not biases) by passing only those.

use crate::error::{check_range, Result};
use crate::params::ParamSet;
use dl_core::Scalar;

/// An L1 + L2 penalty; `l1 = 0` is weight decay, `l2 = 0` is the lasso penalty.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalty {
    /// L1 strength, >= 0.
    pub l1: f64,
    /// L2 strength, >= 0.
    pub l2: f64,
}

impl Penalty {
    /// L2 only.
    pub fn l2(l2: f64) -> Self {
        Penalty { l1: 0.0, l2 }
    }
    /// L1 only.
    pub fn l1(l1: f64) -> Self {
        Penalty { l1, l2: 0.0 }
    }
    /// Both (elastic net).
    pub fn elastic_net(l1: f64, l2: f64) -> Self {
        Penalty { l1, l2 }
    }

    /// Checks both strengths, naming a bad one.
    pub fn validate(&self) -> Result<()> {
        check_range("Penalty", "l1", self.l1, self.l1 >= 0.0, ">= 0")?;
        check_range("Penalty", "l2", self.l2, self.l2 >= 0.0, ">= 0")
    }

    /// The penalty's value on `w` (add it to the reported loss).
    pub fn value<T: Scalar>(&self, w: &[T]) -> f64 {
        w.iter().fold(0.0, |acc, &x| {
            let x = x.to_f64_lossless();
            acc + self.l1 * x.abs() + 0.5 * self.l2 * x * x
        })
    }

    /// Adds the penalty's gradient on `w` into `grad`.
    pub fn add_grad<T: Scalar>(&self, w: &[T], grad: &mut [T]) {
        let (l1, l2) = (T::from_f64_lossy(self.l1), T::from_f64_lossy(self.l2));
        for (g, &x) in grad.iter_mut().zip(w) {
            let sign = if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            };
            *g = *g + l1 * sign + l2 * x;
        }
    }

    /// Adds the gradient to every parameter in `params` and returns the total
    /// penalty value.
    pub fn apply<T: Scalar>(&self, params: &mut dyn ParamSet<T>) -> f64 {
        let mut total = 0.0;
        params.for_each_param(&mut |p| {
            let (w, g) = p.value_and_grad_mut();
            total += self.value(w);
            self.add_grad(w, g);
        });
        total
    }
}
