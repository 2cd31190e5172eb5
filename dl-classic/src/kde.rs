//! Kernel density estimation with a Gaussian kernel:
//! `p(x) = 1 / (n (2 pi h^2)^(d/2)) sum_i exp(-||x - x_i||^2 / (2 h^2))`.
//!
//! Bandwidth rules as scikit-learn's `KernelDensity` defines them (in data units,
//! the data are not rescaled): Scott `h = n^(-1/(d+4))`, Silverman
//! `h = (n (d + 2) / 4)^(-1/(d+4))`, or a fixed `h`.

use crate::error::{check_predict, param, Error, Result};
use crate::linalg::logsumexp;
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Scalar};

/// Bandwidth choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bandwidth {
    /// A fixed `h > 0`.
    Fixed(f64),
    /// Scott's rule `n^(-1/(d+4))`.
    Scott,
    /// Silverman's rule `(n (d + 2) / 4)^(-1/(d+4))`.
    Silverman,
}

impl Bandwidth {
    /// The bandwidth for `n` samples in `d` dimensions.
    pub fn resolve(self, n: usize, d: usize) -> f64 {
        let e = -1.0 / (d as f64 + 4.0);
        match self {
            Bandwidth::Fixed(h) => h,
            Bandwidth::Scott => libm::pow(n as f64, e),
            Bandwidth::Silverman => libm::pow(n as f64 * (d as f64 + 2.0) / 4.0, e),
        }
    }
}

/// KDE hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kde {
    /// Bandwidth rule.
    pub bandwidth: Bandwidth,
}

impl Default for Kde {
    fn default() -> Self {
        Kde {
            bandwidth: Bandwidth::Fixed(1.0),
        }
    }
}

impl Kde {
    /// With the given bandwidth rule.
    pub fn new(bandwidth: Bandwidth) -> Self {
        Kde { bandwidth }
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        if let Bandwidth::Fixed(h) = self.bandwidth {
            param(h > 0.0 && h.is_finite(), "bandwidth", h, "> 0")?;
        }
        Ok(())
    }
}

/// A fitted KDE: the samples and the bandwidth.
#[derive(Clone, Debug)]
pub struct FittedKde<T> {
    x: Vec<f64>,
    n: usize,
    d: usize,
    /// The bandwidth used.
    pub h: f64,
    _t: core::marker::PhantomData<T>,
}

impl<T: Scalar> Fit<T, ()> for Kde {
    type Fitted = FittedKde<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedKde<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "Kde::fit")?;
        Ok(FittedKde {
            x: x.data().iter().map(|v| v.to_f64_lossless()).collect(),
            n: x.rows(),
            d: x.cols(),
            h: self.bandwidth.resolve(x.rows(), x.cols()),
            _t: core::marker::PhantomData,
        })
    }
}

impl<T: Scalar> FittedKde<T> {
    /// `log p(x)` for each row of `x`.
    pub fn score_samples(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        check_predict(x, self.d, x.rows(), "Kde::score_samples")?;
        let h2 = self.h * self.h;
        let norm =
            libm::log(self.n as f64) + 0.5 * self.d as f64 * libm::log(core::f64::consts::TAU * h2);
        let mut terms = vec![0.0; self.n];
        Ok(x.iter_rows()
            .map(|q| {
                for (t, r) in terms.iter_mut().zip(self.x.chunks_exact(self.d)) {
                    let s: f64 = r
                        .iter()
                        .zip(q)
                        .map(|(a, b)| (a - b.to_f64_lossless()) * (a - b.to_f64_lossless()))
                        .sum();
                    *t = -s / (2.0 * h2);
                }
                logsumexp(&terms) - norm
            })
            .collect())
    }

    /// Total log-likelihood `sum_i log p(x_i)`.
    pub fn score(&self, x: MatRef<'_, T>) -> Result<f64> {
        Ok(self.score_samples(x)?.iter().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_point_kde_is_a_gaussian() {
        let k = Kde::new(Bandwidth::Fixed(2.0))
            .fit(MatRef::new(&[1.0f64], 1, 1).unwrap(), &[])
            .unwrap();
        let s = k.score_samples(MatRef::new(&[3.0], 1, 1).unwrap()).unwrap();
        // N(3 | 1, 4): -0.5 ln(8 pi) - 4 / 8
        let want = -0.5 * (8.0 * core::f64::consts::PI).ln() - 0.5;
        assert!((s[0] - want).abs() < 1e-12);
        assert!((Bandwidth::Scott.resolve(100, 1) - 100f64.powf(-0.2)).abs() < 1e-15);
        assert!((Bandwidth::Silverman.resolve(100, 1) - 75f64.powf(-0.2)).abs() < 1e-15);
    }
}
