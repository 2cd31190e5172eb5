//! Principal component analysis: the eigendecomposition of the sample covariance
//! `C = Xc^T Xc / (n - 1)` (`Xc` centered). Components are the eigenvectors of the
//! largest eigenvalues; `explained_variance` are those eigenvalues and
//! `explained_variance_ratio = lambda_i / sum_j lambda_j` over *all* `d` of them.
//!
//! `transform(x) = (x - mean) V_k`, divided by `sqrt(lambda)` when `whiten`;
//! `inverse_transform` undoes it (exactly when `k = d`). Component signs are fixed so
//! the largest-magnitude loading is positive.

use crate::error::{check_predict, check_x, param, Error, Result};
use crate::linalg;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Scalar};

/// PCA hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Pca {
    /// Components kept (`None` = all `d`; otherwise `1..=d`).
    pub n_components: Option<usize>,
    /// Scale projections to unit variance.
    pub whiten: bool,
}

impl Pca {
    /// Keeps `k` components.
    pub fn new(k: usize) -> Self {
        Pca {
            n_components: Some(k),
            whiten: false,
        }
    }
    /// Sets whitening.
    pub fn whiten(mut self, w: bool) -> Self {
        self.whiten = w;
        self
    }
    /// Checks every hyper-parameter (the upper bound `d` is checked at fit).
    pub fn validate(&self) -> Result<()> {
        let k = self.n_components.unwrap_or(1);
        param(k >= 1, "n_components", k as f64, ">= 1 and <= n_features")
    }
}

/// A fitted PCA.
#[derive(Clone, Debug)]
pub struct FittedPca<T> {
    /// Per-feature means subtracted before projecting.
    pub mean: Vec<T>,
    /// `k x d`: row `i` is component `i`.
    pub components: Vec<T>,
    /// Variance along each kept component (eigenvalues, ddof 1).
    pub explained_variance: Vec<T>,
    /// Each kept eigenvalue over the sum of all `d`.
    pub explained_variance_ratio: Vec<T>,
    /// Mean of the discarded eigenvalues (0 when all are kept).
    pub noise_variance: T,
    whiten: bool,
    n_features: usize,
}

/// Unsupervised fits take `y` of length 0 or `x.rows()` (its values are ignored).
pub(crate) fn check_unsupervised_y<T: Scalar>(
    x: MatRef<'_, T>,
    y_len: usize,
    op: &'static str,
) -> Result<()> {
    check_x(x, op)?;
    if y_len != 0 && y_len != x.rows() {
        return Err(Error::LengthMismatch {
            x_rows: x.rows(),
            y_len,
        });
    }
    Ok(())
}

impl<T: Scalar> Fit<T, ()> for Pca {
    type Fitted = FittedPca<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedPca<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "Pca::fit")?;
        let (n, d) = (x.rows(), x.cols());
        let k = self.n_components.unwrap_or(d);
        param(k <= d, "n_components", k as f64, ">= 1 and <= n_features")?;
        if n < 2 {
            return Err(Error::TooFewSamples { k: 2, n });
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let mut mean = vec![0.0; d];
        linalg::col_means(&xf, n, d, &mut mean);
        let mut cov = vec![0.0; d * d];
        linalg::covariance(&xf, n, d, &mean, 1, &mut cov);
        let mut w = vec![0.0; d];
        let mut v = vec![0.0; d * d];
        linalg::sym_eig(&mut cov, d, &mut w, &mut v);
        // Rounding can leave tiny negative eigenvalues for rank-deficient data.
        w.iter_mut().for_each(|l| *l = l.max(0.0));
        let total: f64 = w.iter().sum();
        if self.whiten && w[..k].iter().any(|&l| l <= 0.0) {
            return Err(Error::Singular {
                what: "covariance (a kept component has zero variance)",
                hint: "whitening divides by the component variance: keep fewer n_components",
            });
        }
        let mut components = vec![T::ZERO; k * d];
        for i in 0..k {
            for j in 0..d {
                components[i * d + j] = T::from_f64_lossy(v[j * d + i]);
            }
        }
        let noise = if k < d {
            w[k..].iter().sum::<f64>() / (d - k) as f64
        } else {
            0.0
        };
        let ratio = |l: f64| if total > 0.0 { l / total } else { 0.0 };
        Ok(FittedPca {
            mean: mean.iter().map(|v| T::from_f64_lossy(*v)).collect(),
            components,
            explained_variance: w[..k].iter().map(|v| T::from_f64_lossy(*v)).collect(),
            explained_variance_ratio: w[..k]
                .iter()
                .map(|v| T::from_f64_lossy(ratio(*v)))
                .collect(),
            noise_variance: T::from_f64_lossy(noise),
            whiten: self.whiten,
            n_features: d,
        })
    }
}

impl<T: Scalar> FittedPca<T> {
    /// Number of kept components.
    pub fn n_components(&self) -> usize {
        self.explained_variance.len()
    }

    /// Projects `x` (`rows x d`) to `rows x k`.
    pub fn transform(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        check_predict(x, self.n_features, x.rows(), "Pca::transform")?;
        let (d, k) = (self.n_features, self.n_components());
        let mut out = vec![T::ZERO; x.rows() * k];
        let mut c = vec![T::ZERO; d];
        for (row, o) in x.iter_rows().zip(out.chunks_exact_mut(k)) {
            for j in 0..d {
                c[j] = row[j] - self.mean[j];
            }
            for (i, oi) in o.iter_mut().enumerate() {
                let mut s = linalg::dot(&c, &self.components[i * d..(i + 1) * d]);
                if self.whiten {
                    s = s / self.explained_variance[i].sqrt();
                }
                *oi = s;
            }
        }
        Ok(out)
    }

    /// Maps projections `z` (`rows x k`) back to feature space (`rows x d`).
    pub fn inverse_transform(&self, z: MatRef<'_, T>) -> Result<Vec<T>> {
        let (d, k) = (self.n_features, self.n_components());
        check_predict(z, k, z.rows(), "Pca::inverse_transform")?;
        let mut out = vec![T::ZERO; z.rows() * d];
        for (zr, o) in z.iter_rows().zip(out.chunks_exact_mut(d)) {
            o.copy_from_slice(&self.mean);
            for i in 0..k {
                let s = if self.whiten {
                    zr[i] * self.explained_variance[i].sqrt()
                } else {
                    zr[i]
                };
                for j in 0..d {
                    o[j] = o[j] + s * self.components[i * d + j];
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_on_a_line_have_one_component() {
        // x = t (3, 4) / 5 + (1, 1): all variance on direction (0.6, 0.8).
        let ts = [-2.0f64, -1.0, 0.0, 1.0, 2.0];
        let x: Vec<f64> = ts
            .iter()
            .flat_map(|t| [1.0 + 0.6 * t, 1.0 + 0.8 * t])
            .collect();
        let p = Pca::default()
            .fit(MatRef::new(&x, 5, 2).unwrap(), &[])
            .unwrap();
        // var(t) with ddof 1 = 10 / 4 = 2.5
        assert!((p.explained_variance[0] - 2.5).abs() < 1e-12);
        assert!((p.explained_variance_ratio[0] - 1.0).abs() < 1e-12);
        assert!((p.components[0] - 0.6).abs() < 1e-12 && (p.components[1] - 0.8).abs() < 1e-12);
        let z = p.transform(MatRef::new(&x, 5, 2).unwrap()).unwrap();
        assert!((z[0] + 2.0).abs() < 1e-12, "{z:?}");
        let back = p.inverse_transform(MatRef::new(&z, 5, 2).unwrap()).unwrap();
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
