//! Nadaraya-Watson kernel regression: a kernel-weighted average of the training
//! targets, `y(x) = sum_i K_h(x - x_i) y_i / sum_i K_h(x - x_i)` with the Gaussian
//! kernel `K_h(u) = exp(-||u||^2 / (2 h^2))`.

use crate::error::{check_predict, check_xy, param, Error, Result};
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// Nadaraya-Watson hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NadarayaWatson {
    /// Kernel width `h` (> 0).
    pub bandwidth: f64,
}

impl Default for NadarayaWatson {
    fn default() -> Self {
        NadarayaWatson { bandwidth: 1.0 }
    }
}

impl NadarayaWatson {
    /// With bandwidth `h`.
    pub fn new(h: f64) -> Self {
        NadarayaWatson { bandwidth: h }
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.bandwidth > 0.0 && self.bandwidth.is_finite(),
            "bandwidth",
            self.bandwidth,
            "> 0",
        )
    }
}

/// The training set and the bandwidth.
#[derive(Clone, Debug)]
pub struct FittedNadarayaWatson<T> {
    x: Vec<f64>,
    y: Vec<f64>,
    d: usize,
    h: f64,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, T> for NadarayaWatson {
    type Fitted = FittedNadarayaWatson<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        self.validate()?;
        check_xy(x, y.len(), "NadarayaWatson::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        Ok(FittedNadarayaWatson {
            x: x.data().iter().map(|v| v.to_f64_lossless()).collect(),
            y: y.iter().map(|v| v.to_f64_lossless()).collect(),
            d: x.cols(),
            h: self.bandwidth,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T: Scalar> Predict<T, T> for FittedNadarayaWatson<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(x, self.d, out.len(), "NadarayaWatson::predict")?;
        let mut s2 = Vec::with_capacity(self.y.len());
        for (q, o) in x.iter_rows().zip(out.iter_mut()) {
            s2.clear();
            s2.extend(self.x.chunks_exact(self.d).map(|r| {
                r.iter()
                    .zip(q)
                    .map(|(a, b)| (a - b.to_f64_lossless()) * (a - b.to_f64_lossless()))
                    .sum::<f64>()
            }));
            // Shift by the nearest distance so far-away queries do not underflow to 0/0.
            let m = s2.iter().fold(f64::INFINITY, |a, b| a.min(*b));
            let (mut num, mut den) = (0.0, 0.0);
            for (d2, yv) in s2.iter().zip(&self.y) {
                let w = libm::exp(-(d2 - m) / (2.0 * self.h * self.h));
                num += w * yv;
                den += w;
            }
            *o = T::from_f64_lossy(num / den);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_weighted_average() {
        // x = {0, 1}, y = {0, 10}, h = 1, query 0: weights 1 and e^{-1/2}.
        let m = NadarayaWatson::new(1.0)
            .fit(MatRef::new(&[0.0f64, 1.0], 2, 1).unwrap(), &[0.0, 10.0])
            .unwrap();
        let p = m
            .predict(MatRef::new(&[0.0, 0.5, 1e6], 3, 1).unwrap())
            .unwrap();
        let w = (-0.5f64).exp();
        assert!((p[0] - 10.0 * w / (1.0 + w)).abs() < 1e-12);
        assert!((p[1] - 5.0).abs() < 1e-12);
        // Far away: the nearest point dominates, no NaN.
        assert!((p[2] - 10.0).abs() < 1e-9);
    }
}
