//! Stochastic gradient descent, with optional momentum, dampening, Nesterov momentum
//! and L2 weight decay, exactly as `torch.optim.SGD`:
//!
//! ```text
//! g = grad + weight_decay * w
//! b = g                                   (first step)
//! b = momentum * b + (1 - dampening) * g  (later steps)
//! g = g + momentum * b   if nesterov, else g = b   (when momentum > 0)
//! w = w - lr * g
//! ```

use crate::error::{check_range, Error, Result};
use crate::optimizer::{check, with_decay, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// SGD's hyper-parameters (torch's defaults, with `lr = 0.01`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate, >= 0.
    pub lr: f64,
    /// Momentum factor in [0, 1); 0 is plain SGD.
    pub momentum: f64,
    /// Dampening of the momentum's gradient term, in [0, 1).
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 penalty added to the gradient, >= 0.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            ..Default::default()
        }
    }
    /// Sets the momentum factor.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }
    /// Sets dampening.
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }
    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
    /// Sets the L2 weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }

    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("SGD", self.lr)?;
        check::unit("SGD", "momentum", self.momentum)?;
        check::unit("SGD", "dampening", self.dampening)?;
        check::weight_decay("SGD", self.weight_decay)?;
        if self.nesterov {
            check_range(
                "SGD",
                "momentum",
                self.momentum,
                self.momentum > 0.0,
                "> 0 with nesterov",
            )?;
            check_range(
                "SGD",
                "dampening",
                self.dampening,
                self.dampening == 0.0,
                "0 with nesterov",
            )?;
        }
        Ok(())
    }

    /// The optimizer, after validating.
    pub fn build<T: Scalar>(self) -> Result<Sgd<T>> {
        self.validate()?;
        Ok(Sgd {
            config: self,
            state: State::new("SGD"),
        })
    }
}

/// SGD with momentum / Nesterov (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Sgd<T: Scalar = f32> {
    config: SgdConfig,
    state: State<T, 1>,
}

impl<T: Scalar> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<(), Error> {
        let c = self.config;
        let lr = T::from_f64_lossy(c.lr);
        let wd = T::from_f64_lossy(c.weight_decay);
        let mu = T::from_f64_lossy(c.momentum);
        // `1 - dampening` rounded once from f64, as torch rounds it.
        let keep = T::from_f64_lossy(1.0 - c.dampening);
        let first = self.state.t == 0;
        self.state.drive(params, |w, g, [buf]| {
            for ((w, &g), b) in w.iter_mut().zip(g.iter()).zip(buf.iter_mut()) {
                let mut d = with_decay(g, *w, wd);
                if c.momentum != 0.0 {
                    *b = if first { d } else { mu * *b + keep * d };
                    d = if c.nesterov { d + mu * *b } else { *b };
                }
                *w = *w - lr * d;
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
