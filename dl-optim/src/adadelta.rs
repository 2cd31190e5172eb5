//! Adadelta, exactly as `torch.optim.Adadelta`:
//!
//! ```text
//! g = grad + weight_decay * w
//! v = rho * v + (1 - rho) * g^2
//! d = sqrt(u + eps) / sqrt(v + eps) * g
//! u = rho * u + (1 - rho) * d^2
//! w = w - lr * d
//! ```

use crate::error::Result;
use crate::optimizer::{check, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// Adadelta's hyper-parameters (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdadeltaConfig {
    /// Scale of the update, >= 0 (default 1.0).
    pub lr: f64,
    /// Decay of both running averages, in [0, 1) (default 0.9).
    pub rho: f64,
    /// Added inside the square roots, > 0 (default 1e-6).
    pub eps: f64,
    /// L2 weight decay, >= 0 (default 0).
    pub weight_decay: f64,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        AdadeltaConfig {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

impl AdadeltaConfig {
    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("Adadelta", self.lr)?;
        check::unit("Adadelta", "rho", self.rho)?;
        check::eps("Adadelta", self.eps)?;
        check::weight_decay("Adadelta", self.weight_decay)
    }
    /// The optimizer, after validating.
    pub fn build<T: Scalar>(self) -> Result<Adadelta<T>> {
        self.validate()?;
        Ok(Adadelta {
            config: self,
            state: State::new("Adadelta"),
        })
    }
}

/// Adadelta (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Adadelta<T: Scalar = f32> {
    config: AdadeltaConfig,
    /// Running mean of g^2, running mean of d^2.
    state: State<T, 2>,
}

impl<T: Scalar> Optimizer<T> for Adadelta<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()> {
        let c = self.config;
        let lr = T::from_f64_lossy(c.lr);
        let rho = T::from_f64_lossy(c.rho);
        // `1 - rho` rounded once from f64, as torch rounds it.
        let one_minus_rho = T::from_f64_lossy(1.0 - c.rho);
        let eps = T::from_f64_lossy(c.eps);
        let wd = T::from_f64_lossy(c.weight_decay);
        self.state.drive(params, |w, g, [v, u]| {
            for i in 0..w.len() {
                let gi = g[i] + wd * w[i];
                v[i] = rho * v[i] + one_minus_rho * gi * gi;
                let d = (u[i] + eps).sqrt() / (v[i] + eps).sqrt() * gi;
                u[i] = rho * u[i] + one_minus_rho * d * d;
                w[i] = w[i] - lr * d;
            }
        })
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
