//! Early stopping: stop when the monitored metric has not improved for `patience`
//! epochs; the caller restores the weights of the best epoch (the `Trainer` does).

use crate::error::{check_range, Result};
use crate::plateau::Mode;

/// What the caller should do after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This epoch is the best so far: keep a copy of the weights.
    Improved,
    /// No improvement, but patience is not used up.
    Continue,
    /// Patience used up: stop and restore the best weights.
    Stop,
}

/// Early-stopping state.
#[derive(Clone, Debug, PartialEq)]
pub struct EarlyStopping {
    /// Lower or higher is better.
    pub mode: Mode,
    /// Epochs without improvement tolerated, >= 1.
    pub patience: usize,
    /// Absolute improvement that counts, >= 0.
    pub min_delta: f64,
    best: Option<f64>,
    best_epoch: usize,
    waited: usize,
    epoch: usize,
}

impl EarlyStopping {
    /// A checked early stopper.
    pub fn new(mode: Mode, patience: usize, min_delta: f64) -> Result<Self> {
        check_range(
            "EarlyStopping",
            "patience",
            patience as f64,
            patience >= 1,
            ">= 1",
        )?;
        check_range(
            "EarlyStopping",
            "min_delta",
            min_delta,
            min_delta >= 0.0,
            ">= 0",
        )?;
        Ok(EarlyStopping {
            mode,
            patience,
            min_delta,
            best: None,
            best_epoch: 0,
            waited: 0,
            epoch: 0,
        })
    }

    /// The best metric so far and the (0-based) epoch it was seen in.
    pub fn best(&self) -> Option<(f64, usize)> {
        self.best.map(|b| (b, self.best_epoch))
    }

    /// Records one epoch's metric (NaN never improves).
    pub fn update(&mut self, metric: f64) -> Verdict {
        let epoch = self.epoch;
        self.epoch += 1;
        let better = match (self.best, self.mode) {
            _ if metric.is_nan() => false,
            (None, _) => true,
            (Some(b), Mode::Min) => metric < b - self.min_delta,
            (Some(b), Mode::Max) => metric > b + self.min_delta,
        };
        if better {
            self.best = Some(metric);
            self.best_epoch = epoch;
            self.waited = 0;
            Verdict::Improved
        } else {
            self.waited += 1;
            if self.waited >= self.patience {
                Verdict::Stop
            } else {
                Verdict::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn stops_after_patience_and_remembers_best() {
        let mut es = EarlyStopping::new(Mode::Min, 2, 0.0).unwrap();
        let verdicts: [Verdict; 5] = [1.0, 0.5, 0.6, 0.5, 0.7].map(|m| es.update(m));
        assert_eq!(
            verdicts,
            [
                Verdict::Improved,
                Verdict::Improved,
                Verdict::Continue,
                Verdict::Stop,
                Verdict::Stop
            ]
        );
        assert_eq!(es.best(), Some((0.5, 1)));
        assert_eq!(
            EarlyStopping::new(Mode::Max, 0, 0.0)
                .unwrap_err()
                .to_string(),
            "EarlyStopping: invalid patience = 0, valid range: >= 1"
        );
    }
}
