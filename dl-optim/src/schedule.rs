//! Learning-rate schedules as functions of the epoch (or step) count, with the same
//! values as torch's schedulers: step decay (`StepLR`), exponential decay
//! (`ExponentialLR`), cosine decay (`CosineAnnealingLR`), linear warmup composed with
//! any of them (`SequentialLR([LinearLR, S], milestones=[warmup])`), and
//! reduce-on-plateau ([`crate::plateau::ReduceLrOnPlateau`], which needs the metric).

use crate::error::{check_range, Result};

/// A learning rate that depends only on the epoch (or step) number, 0-based.
pub trait LrSchedule {
    /// The learning rate for `epoch`.
    fn lr_at(&self, epoch: usize) -> f64;
}

/// The same learning rate at every epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub f64);

impl LrSchedule for Constant {
    fn lr_at(&self, _epoch: usize) -> f64 {
        self.0
    }
}

/// Step decay: `lr * gamma^(epoch / step_size)` (integer division).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Learning rate at epoch 0.
    pub base_lr: f64,
    /// Epochs between decays, >= 1.
    pub step_size: usize,
    /// Factor per decay, in (0, 1].
    pub gamma: f64,
}

impl StepDecay {
    /// A checked step-decay schedule.
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Result<Self> {
        check_range("StepDecay", "base_lr", base_lr, base_lr >= 0.0, ">= 0")?;
        check_range(
            "StepDecay",
            "step_size",
            step_size as f64,
            step_size >= 1,
            ">= 1",
        )?;
        check_range(
            "StepDecay",
            "gamma",
            gamma,
            gamma > 0.0 && gamma <= 1.0,
            "(0, 1]",
        )?;
        Ok(StepDecay {
            base_lr,
            step_size,
            gamma,
        })
    }
}

impl LrSchedule for StepDecay {
    fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * libm::pow(self.gamma, (epoch / self.step_size) as f64)
    }
}

/// Exponential decay: `lr * gamma^epoch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialDecay {
    /// Learning rate at epoch 0.
    pub base_lr: f64,
    /// Factor per epoch, in (0, 1].
    pub gamma: f64,
}

impl ExponentialDecay {
    /// A checked exponential-decay schedule.
    pub fn new(base_lr: f64, gamma: f64) -> Result<Self> {
        check_range(
            "ExponentialDecay",
            "base_lr",
            base_lr,
            base_lr >= 0.0,
            ">= 0",
        )?;
        check_range(
            "ExponentialDecay",
            "gamma",
            gamma,
            gamma > 0.0 && gamma <= 1.0,
            "(0, 1]",
        )?;
        Ok(ExponentialDecay { base_lr, gamma })
    }
}

impl LrSchedule for ExponentialDecay {
    fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * libm::pow(self.gamma, epoch as f64)
    }
}

/// Cosine decay from `base_lr` to `min_lr` over `t_max` epochs:
/// `min_lr + (base_lr - min_lr) * (1 + cos(pi * epoch / t_max)) / 2`, then `min_lr`.
///
/// torch's `CosineAnnealingLR` keeps oscillating past `t_max` (it is periodic); here
/// the rate stays at `min_lr`, which is what a decay is for. Up to `t_max` they agree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineDecay {
    /// Learning rate at epoch 0.
    pub base_lr: f64,
    /// Final learning rate, in [0, base_lr].
    pub min_lr: f64,
    /// Length of the decay in epochs, >= 1.
    pub t_max: usize,
}

impl CosineDecay {
    /// A checked cosine schedule.
    pub fn new(base_lr: f64, min_lr: f64, t_max: usize) -> Result<Self> {
        check_range("CosineDecay", "base_lr", base_lr, base_lr >= 0.0, ">= 0")?;
        check_range(
            "CosineDecay",
            "min_lr",
            min_lr,
            (0.0..=base_lr).contains(&min_lr),
            "[0, base_lr]",
        )?;
        check_range("CosineDecay", "t_max", t_max as f64, t_max >= 1, ">= 1")?;
        Ok(CosineDecay {
            base_lr,
            min_lr,
            t_max,
        })
    }
}

impl LrSchedule for CosineDecay {
    fn lr_at(&self, epoch: usize) -> f64 {
        let e = epoch.min(self.t_max) as f64;
        let cos = libm::cos(core::f64::consts::PI * e / self.t_max as f64);
        self.min_lr + (self.base_lr - self.min_lr) * (1.0 + cos) / 2.0
    }
}

/// Linear warmup, then another schedule: for `epoch < epochs` the rate rises linearly
/// from `start_factor * S(0)` towards `S(0)`; from then on it is `S(epoch - epochs)`.
/// This is torch's `SequentialLR([LinearLR(start_factor, 1.0, epochs), S], [epochs])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warmup<S> {
    /// Warmup length in epochs, >= 1.
    pub epochs: usize,
    /// Fraction of the first rate to start from, in (0, 1].
    pub start_factor: f64,
    /// The schedule that follows.
    pub then: S,
}

impl<S: LrSchedule> Warmup<S> {
    /// A checked warmup in front of `then`.
    pub fn new(epochs: usize, start_factor: f64, then: S) -> Result<Self> {
        check_range("Warmup", "epochs", epochs as f64, epochs >= 1, ">= 1")?;
        check_range(
            "Warmup",
            "start_factor",
            start_factor,
            start_factor > 0.0 && start_factor <= 1.0,
            "(0, 1]",
        )?;
        Ok(Warmup {
            epochs,
            start_factor,
            then,
        })
    }
}

impl<S: LrSchedule> LrSchedule for Warmup<S> {
    fn lr_at(&self, epoch: usize) -> f64 {
        if epoch < self.epochs {
            let f =
                self.start_factor + (1.0 - self.start_factor) * epoch as f64 / self.epochs as f64;
            self.then.lr_at(0) * f
        } else {
            self.then.lr_at(epoch - self.epochs)
        }
    }
}
