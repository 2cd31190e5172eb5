//! Adagrad, exactly as `torch.optim.Adagrad`:
//!
//! ```text
//! g = grad + weight_decay * w
//! lr_t = lr / (1 + (t - 1) * lr_decay)
//! s = s + g^2                       (s starts at initial_accumulator_value)
//! w = w - lr_t * g / (sqrt(s) + eps)
//! ```

use crate::error::{check_range, Result};
use crate::optimizer::{check, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// Adagrad's hyper-parameters (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate, >= 0 (default 0.01).
    pub lr: f64,
    /// Learning-rate decay per step, >= 0 (default 0).
    pub lr_decay: f64,
    /// L2 weight decay, >= 0 (default 0).
    pub weight_decay: f64,
    /// Starting value of the squared-gradient sum, >= 0 (default 0).
    pub initial_accumulator_value: f64,
    /// Denominator term, > 0 (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr: 0.01,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

impl AdagradConfig {
    /// Adagrad with learning rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        AdagradConfig {
            lr,
            ..Default::default()
        }
    }
    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("Adagrad", self.lr)?;
        check_range(
            "Adagrad",
            "lr_decay",
            self.lr_decay,
            self.lr_decay >= 0.0,
            ">= 0",
        )?;
        check::weight_decay("Adagrad", self.weight_decay)?;
        check_range(
            "Adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
            self.initial_accumulator_value >= 0.0,
            ">= 0",
        )?;
        check::eps("Adagrad", self.eps)
    }
    /// The optimizer, after validating.
    pub fn build<T: Scalar>(self) -> Result<Adagrad<T>> {
        self.validate()?;
        Ok(Adagrad {
            config: self,
            state: State::new("Adagrad"),
        })
    }
}

/// Adagrad (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Adagrad<T: Scalar = f32> {
    config: AdagradConfig,
    state: State<T, 1>,
}

impl<T: Scalar> Optimizer<T> for Adagrad<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()> {
        let c = self.config;
        let first = self.state.t == 0;
        let lr_t = T::from_f64_lossy(c.lr / (1.0 + self.state.t as f64 * c.lr_decay));
        let wd = T::from_f64_lossy(c.weight_decay);
        let eps = T::from_f64_lossy(c.eps);
        let init = T::from_f64_lossy(c.initial_accumulator_value);
        self.state.drive(params, |w, g, [s]| {
            for i in 0..w.len() {
                let gi = g[i] + wd * w[i];
                let prev = if first { init } else { s[i] };
                s[i] = prev + gi * gi;
                w[i] = w[i] - lr_t * gi / (s[i].sqrt() + eps);
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
