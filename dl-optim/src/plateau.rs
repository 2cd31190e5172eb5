//! Reduce the learning rate when a monitored metric stops improving, as Keras'
//! `ReduceLROnPlateau` and torch's `lr_scheduler.ReduceLROnPlateau` (relative
//! threshold mode, torch's semantics for counting bad epochs and cooldown).

use crate::error::{check_range, Result};

/// Whether a smaller or a larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Reduce-on-plateau settings (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlateauConfig {
    /// Lower or higher is better.
    pub mode: Mode,
    /// Factor applied on a plateau, in (0, 1) (default 0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated before reducing (default 10).
    pub patience: usize,
    /// Relative improvement that counts, >= 0 (default 1e-4).
    pub threshold: f64,
    /// Epochs to wait after a reduction before counting again (default 0).
    pub cooldown: usize,
    /// Lower bound on the rate, >= 0 (default 0).
    pub min_lr: f64,
}

impl Default for PlateauConfig {
    fn default() -> Self {
        PlateauConfig {
            mode: Mode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
        }
    }
}

impl PlateauConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check_range(
            "ReduceLrOnPlateau",
            "factor",
            self.factor,
            self.factor > 0.0 && self.factor < 1.0,
            "(0, 1)",
        )?;
        check_range(
            "ReduceLrOnPlateau",
            "threshold",
            self.threshold,
            self.threshold >= 0.0,
            ">= 0",
        )?;
        check_range(
            "ReduceLrOnPlateau",
            "min_lr",
            self.min_lr,
            self.min_lr >= 0.0,
            ">= 0",
        )
    }

    /// The scheduler starting from learning rate `lr`, after validating.
    pub fn build(self, lr: f64) -> Result<ReduceLrOnPlateau> {
        self.validate()?;
        check_range("ReduceLrOnPlateau", "lr", lr, lr >= 0.0, ">= 0")?;
        Ok(ReduceLrOnPlateau {
            config: self,
            lr,
            best: None,
            bad_epochs: 0,
            cooldown_left: 0,
        })
    }
}

/// The stateful scheduler: feed it the metric once per epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceLrOnPlateau {
    config: PlateauConfig,
    lr: f64,
    best: Option<f64>,
    bad_epochs: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// The current learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    fn improves(&self, metric: f64) -> bool {
        let Some(best) = self.best else {
            return true;
        };
        match self.config.mode {
            Mode::Min => metric < best * (1.0 - self.config.threshold),
            Mode::Max => metric > best * (1.0 + self.config.threshold),
        }
    }

    /// Records this epoch's metric and returns the learning rate for the next epoch.
    /// A NaN metric counts as no improvement.
    pub fn step(&mut self, metric: f64) -> f64 {
        if !metric.is_nan() && self.improves(metric) {
            self.best = Some(metric);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.config.patience {
            let reduced = (self.lr * self.config.factor).max(self.config.min_lr);
            // torch ignores reductions smaller than 1e-8.
            if self.lr - reduced > 1e-8 {
                self.lr = reduced;
            }
            self.cooldown_left = self.config.cooldown;
            self.bad_epochs = 0;
        }
        self.lr
    }
}
