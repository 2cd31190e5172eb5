//! Nadam: Adam with Nesterov momentum and torch's momentum-decay schedule, exactly as
//! `torch.optim.NAdam`:
//!
//! ```text
//! g = grad + weight_decay * w
//! mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi)),  mu_{t+1} likewise,  prod_t = prod_{t-1} * mu_t
//! m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//! d = sqrt(v / (1 - beta2^t)) + eps
//! w = w - lr (1 - mu_t) / (1 - prod_t) * g / d - lr mu_{t+1} / (1 - prod_t mu_{t+1}) * m / d
//! ```

use crate::error::{check_range, Result};
use crate::optimizer::{check, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// Nadam's hyper-parameters (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NadamConfig {
    /// Learning rate, >= 0 (default 2e-3).
    pub lr: f64,
    /// First-moment decay in [0, 1) (default 0.9).
    pub beta1: f64,
    /// Second-moment decay in [0, 1) (default 0.999).
    pub beta2: f64,
    /// Denominator term, > 0 (default 1e-8).
    pub eps: f64,
    /// L2 weight decay, >= 0 (default 0).
    pub weight_decay: f64,
    /// Momentum decay `psi`, >= 0 (default 4e-3).
    pub momentum_decay: f64,
}

impl Default for NadamConfig {
    fn default() -> Self {
        NadamConfig {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
        }
    }
}

impl NadamConfig {
    /// Nadam with learning rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        NadamConfig {
            lr,
            ..Default::default()
        }
    }
    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("Nadam", self.lr)?;
        check::unit("Nadam", "beta1", self.beta1)?;
        check::unit("Nadam", "beta2", self.beta2)?;
        check::eps("Nadam", self.eps)?;
        check::weight_decay("Nadam", self.weight_decay)?;
        check_range(
            "Nadam",
            "momentum_decay",
            self.momentum_decay,
            self.momentum_decay >= 0.0,
            ">= 0",
        )
    }
    /// The optimizer, after validating.
    pub fn build<T: Scalar>(self) -> Result<Nadam<T>> {
        self.validate()?;
        Ok(Nadam {
            config: self,
            mu_product: 1.0,
            state: State::new("Nadam"),
        })
    }
}

/// Nadam (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Nadam<T: Scalar = f32> {
    config: NadamConfig,
    /// Product of the momentum coefficients so far (same for every parameter, since
    /// all are stepped together).
    mu_product: f64,
    state: State<T, 2>,
}

impl<T: Scalar> Optimizer<T> for Nadam<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()> {
        let c = self.config;
        let t = (self.state.t + 1) as f64;
        let mu = c.beta1 * (1.0 - 0.5 * libm::pow(0.96, t * c.momentum_decay));
        let mu_next = c.beta1 * (1.0 - 0.5 * libm::pow(0.96, (t + 1.0) * c.momentum_decay));
        let prod = self.mu_product * mu;
        let bc2 = T::from_f64_lossy(1.0 - libm::pow(c.beta2, t));
        let coef_g = T::from_f64_lossy(c.lr * (1.0 - mu) / (1.0 - prod));
        let coef_m = T::from_f64_lossy(c.lr * mu_next / (1.0 - prod * mu_next));
        // `1 - beta` rounded once from f64, as torch rounds it.
        let (one_minus_b1, one_minus_b2) = (
            T::from_f64_lossy(1.0 - c.beta1),
            T::from_f64_lossy(1.0 - c.beta2),
        );
        let b2 = T::from_f64_lossy(c.beta2);
        let eps = T::from_f64_lossy(c.eps);
        let wd = T::from_f64_lossy(c.weight_decay);
        self.state.drive(params, |w, g, [m, v]| {
            for i in 0..w.len() {
                let gi = g[i] + wd * w[i];
                m[i] = m[i] + one_minus_b1 * (gi - m[i]);
                v[i] = b2 * v[i] + one_minus_b2 * gi * gi;
                let d = (v[i] / bc2).sqrt() + eps;
                w[i] = w[i] - coef_g * gi / d - coef_m * m[i] / d;
            }
        })?;
        self.mu_product = prod;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}
