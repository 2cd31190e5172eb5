//! RMSprop, exactly as `torch.optim.RMSprop`:
//!
//! ```text
//! g = grad + weight_decay * w
//! s = alpha * s + (1 - alpha) * g^2
//! centered:  a = a + (1 - alpha) * (g - a);  d = sqrt(s - a^2) + eps,  else d = sqrt(s) + eps
//! momentum > 0:  b = momentum * b + g / d;  w = w - lr * b
//! otherwise:     w = w - lr * g / d
//! ```

use crate::error::Result;
use crate::optimizer::{check, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// RMSprop's hyper-parameters (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropConfig {
    /// Learning rate, >= 0 (default 0.01).
    pub lr: f64,
    /// Smoothing constant in [0, 1) (default 0.99).
    pub alpha: f64,
    /// Denominator term, > 0 (default 1e-8).
    pub eps: f64,
    /// L2 weight decay, >= 0 (default 0).
    pub weight_decay: f64,
    /// Momentum in [0, 1) (default 0).
    pub momentum: f64,
    /// Normalize by the variance estimate instead of the raw second moment.
    pub centered: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig {
            lr: 0.01,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

impl RmspropConfig {
    /// RMSprop with learning rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        RmspropConfig {
            lr,
            ..Default::default()
        }
    }
    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("RMSprop", self.lr)?;
        check::unit("RMSprop", "alpha", self.alpha)?;
        check::eps("RMSprop", self.eps)?;
        check::weight_decay("RMSprop", self.weight_decay)?;
        check::unit("RMSprop", "momentum", self.momentum)
    }
    /// The optimizer, after validating.
    pub fn build<T: Scalar>(self) -> Result<Rmsprop<T>> {
        self.validate()?;
        Ok(Rmsprop {
            config: self,
            state: State::new("RMSprop"),
        })
    }
}

/// RMSprop (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Rmsprop<T: Scalar = f32> {
    config: RmspropConfig,
    /// Squared-gradient average, gradient average (centered), momentum buffer.
    state: State<T, 3>,
}

impl<T: Scalar> Optimizer<T> for Rmsprop<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()> {
        let c = self.config;
        let lr = T::from_f64_lossy(c.lr);
        let alpha = T::from_f64_lossy(c.alpha);
        // `1 - alpha` rounded once from f64, as torch rounds it.
        let one_minus_alpha = T::from_f64_lossy(1.0 - c.alpha);
        let eps = T::from_f64_lossy(c.eps);
        let wd = T::from_f64_lossy(c.weight_decay);
        let mu = T::from_f64_lossy(c.momentum);
        self.state.drive(params, |w, g, [s, a, b]| {
            for i in 0..w.len() {
                let gi = g[i] + wd * w[i];
                s[i] = alpha * s[i] + one_minus_alpha * gi * gi;
                let d = if c.centered {
                    // torch's lerp: a + (1 - alpha) (g - a).
                    a[i] = a[i] + one_minus_alpha * (gi - a[i]);
                    (s[i] - a[i] * a[i]).sqrt() + eps
                } else {
                    s[i].sqrt() + eps
                };
                if c.momentum > 0.0 {
                    b[i] = mu * b[i] + gi / d;
                    w[i] = w[i] - lr * b[i];
                } else {
                    w[i] = w[i] - lr * gi / d;
                }
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
