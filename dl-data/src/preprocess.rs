//! Preprocessing as in the course, fitted on training data and then applied to any
//! data (validation, test, new samples) with the training statistics:
//!
//! - [`MeanCenter`]: `x - mean`
//! - [`Standardize`]: `(x - mean) / std` per feature (population std, as
//!   scikit-learn's `StandardScaler`; a constant feature gets scale 1, so it maps to 0
//!   instead of dividing by zero)
//! - [`MinMax`]: `x` mapped linearly from `[min, max]` to `[lo, hi]`, e.g. `[0, 1]` or
//!   `[-1, 1]` (a constant feature maps to `lo`)
//! - [`PixelScale`]: `x / 255`
//!
//! Each is per-feature affine, so every fit returns the same [`Affine`] model:
//! `x' = x * scale + offset`. The hyper-parameter structs also implement
//! [`dl_core::Fit`] with unit targets.
//!
//! ```
//! use dl_core::MatRef;
//! use dl_data::preprocess::Standardize;
//! let train = [1.0f64, 10.0, 3.0, 10.0]; // 2 rows, 2 features; feature 1 constant
//! let s = Standardize.fit(MatRef::new(&train, 2, 2).unwrap()).unwrap();
//! let mut test = [2.0, 10.0, 5.0, 11.0];
//! s.transform_in_place(&mut test).unwrap();
//! assert_eq!(test, [0.0, 0.0, 3.0, 1.0]);
//! ```

use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Scalar};

use crate::error::{Error, Result};

/// A fitted per-feature affine map `x' = x * scale + offset`.
#[derive(Clone, Debug, PartialEq)]
pub struct Affine<T> {
    /// Multiplier per feature.
    pub scale: Vec<T>,
    /// Offset per feature, added after scaling.
    pub offset: Vec<T>,
}

impl<T: Scalar> Affine<T> {
    /// Number of features the map was fitted on.
    pub fn n_features(&self) -> usize {
        self.scale.len()
    }

    fn check(&self, op: &'static str, len: usize) -> Result<()> {
        let cols = self.n_features();
        if cols == 0 || !len.is_multiple_of(cols) {
            return Err(Error::LengthMismatch {
                op,
                what: "data (must be whole rows of the fitted feature count)",
                expected: (len / cols.max(1)) * cols,
                actual: len,
            });
        }
        Ok(())
    }

    /// Transforms row-major data (whole rows) in place.
    pub fn transform_in_place(&self, data: &mut [T]) -> Result<()> {
        self.check("Affine::transform_in_place", data.len())?;
        for row in data.chunks_exact_mut(self.n_features()) {
            for ((v, &s), &o) in row.iter_mut().zip(&self.scale).zip(&self.offset) {
                *v = *v * s + o;
            }
        }
        Ok(())
    }

    /// Transforms `x` into a new buffer.
    pub fn transform(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        if x.cols() != self.n_features() {
            return Err(Error::LengthMismatch {
                op: "Affine::transform",
                what: "features per row",
                expected: self.n_features(),
                actual: x.cols(),
            });
        }
        let mut out = x.data().to_vec();
        self.transform_in_place(&mut out)?;
        Ok(out)
    }

    /// Undoes the transform in place (`x = (x' - offset) / scale`).
    pub fn inverse_transform_in_place(&self, data: &mut [T]) -> Result<()> {
        self.check("Affine::inverse_transform_in_place", data.len())?;
        for row in data.chunks_exact_mut(self.n_features()) {
            for ((v, &s), &o) in row.iter_mut().zip(&self.scale).zip(&self.offset) {
                *v = (*v - o) / s;
            }
        }
        Ok(())
    }
}

/// Per-feature mean and population variance, accumulated in f64.
fn moments<T: Scalar>(x: MatRef<'_, T>, op: &'static str) -> Result<(Vec<f64>, Vec<f64>)> {
    if x.rows() == 0 || x.cols() == 0 {
        return Err(Error::Empty {
            op,
            what: "training data",
        });
    }
    let cols = x.cols();
    let mut mean = vec![0.0f64; cols];
    for row in x.iter_rows() {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v.to_f64_lossless();
        }
    }
    let n = x.rows() as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; cols];
    for row in x.iter_rows() {
        for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
            let d = v.to_f64_lossless() - m;
            *s += d * d;
        }
    }
    var.iter_mut().for_each(|s| *s /= n);
    if let Some(index) = mean.iter().position(|m| !m.is_finite()) {
        return Err(Error::NonFinite { op, index });
    }
    Ok((mean, var))
}

fn to_t<T: Scalar>(v: Vec<f64>) -> Vec<T> {
    v.into_iter().map(T::from_f64_lossy).collect()
}

/// Subtracts the training mean of each feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeanCenter;

impl MeanCenter {
    /// Fits the per-feature means.
    pub fn fit<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<Affine<T>> {
        let (mean, _) = moments(x, "MeanCenter::fit")?;
        Ok(Affine {
            scale: vec![T::ONE; mean.len()],
            offset: to_t(mean.into_iter().map(|m| -m).collect()),
        })
    }
}

/// Zero mean and unit variance per feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standardize;

impl Standardize {
    /// Fits means and standard deviations.
    pub fn fit<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<Affine<T>> {
        let (mean, var) = moments(x, "Standardize::fit")?;
        // A (numerically) constant feature keeps scale 1: it is centred to 0.
        let scale: Vec<f64> = var
            .iter()
            .zip(&mean)
            .map(|(&v, &m)| {
                let sd = libm::sqrt(v);
                if sd <= 1e-12 * m.abs().max(1.0) {
                    1.0
                } else {
                    1.0 / sd
                }
            })
            .collect();
        let offset = mean.iter().zip(&scale).map(|(&m, &s)| -m * s).collect();
        Ok(Affine {
            scale: to_t(scale),
            offset: to_t(offset),
        })
    }
}

/// Linear map of each feature's training range `[min, max]` onto `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MinMax {
    /// Image of the training minimum.
    pub lo: f64,
    /// Image of the training maximum.
    pub hi: f64,
}

impl Default for MinMax {
    fn default() -> Self {
        MinMax { lo: 0.0, hi: 1.0 }
    }
}

impl MinMax {
    /// To `[0, 1]`.
    pub fn unit() -> Self {
        MinMax { lo: 0.0, hi: 1.0 }
    }

    /// To `[-1, 1]`.
    pub fn symmetric() -> Self {
        MinMax { lo: -1.0, hi: 1.0 }
    }

    /// Checks `lo < hi`, both finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(Error::InvalidParameter {
                op: "MinMax",
                name: "hi",
                value: self.hi,
                valid: "finite and > lo",
            });
        }
        Ok(())
    }

    /// Fits each feature's minimum and maximum.
    pub fn fit<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<Affine<T>> {
        self.validate()?;
        if x.rows() == 0 || x.cols() == 0 {
            return Err(Error::Empty {
                op: "MinMax::fit",
                what: "training data",
            });
        }
        let cols = x.cols();
        let mut min = vec![f64::INFINITY; cols];
        let mut max = vec![f64::NEG_INFINITY; cols];
        for row in x.iter_rows() {
            for (j, &v) in row.iter().enumerate() {
                let v = v.to_f64_lossless();
                min[j] = min[j].min(v);
                max[j] = max[j].max(v);
            }
        }
        let mut scale = Vec::with_capacity(cols);
        let mut offset = Vec::with_capacity(cols);
        for j in 0..cols {
            if !(min[j].is_finite() && max[j].is_finite()) {
                return Err(Error::NonFinite {
                    op: "MinMax::fit",
                    index: j,
                });
            }
            let range = if max[j] > min[j] {
                max[j] - min[j]
            } else {
                1.0
            };
            let s = (self.hi - self.lo) / range;
            scale.push(s);
            offset.push(self.lo - min[j] * s);
        }
        Ok(Affine {
            scale: to_t(scale),
            offset: to_t(offset),
        })
    }
}

/// Divides 8-bit pixel values by 255 so they lie in `[0, 1]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PixelScale;

impl PixelScale {
    /// Needs no statistics; fitting only records the feature count.
    pub fn fit<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<Affine<T>> {
        if x.cols() == 0 {
            return Err(Error::Empty {
                op: "PixelScale::fit",
                what: "features",
            });
        }
        Ok(Affine {
            scale: vec![T::ONE / T::from_f64_lossy(255.0); x.cols()],
            offset: vec![T::ZERO; x.cols()],
        })
    }
}

macro_rules! impl_fit_unit {
    ($($t:ty),*) => {$(
        impl<T: Scalar> Fit<T, ()> for $t {
            type Fitted = Affine<T>;
            type Error = Error;
            fn fit(&self, x: MatRef<'_, T>, _y: &[()]) -> Result<Affine<T>> {
                <$t>::fit(self, x)
            }
        }
    )*};
}
impl_fit_unit!(MeanCenter, Standardize, MinMax, PixelScale);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_statistics_by_hand() {
        // Feature 0: [0, 2, 4] mean 2, population std sqrt(8/3); feature 1: [5, 5, 5].
        let x = [0.0f64, 5.0, 2.0, 5.0, 4.0, 5.0];
        let m = MatRef::new(&x, 3, 2).unwrap();
        let c = MeanCenter.fit(m).unwrap();
        assert_eq!(c.transform(m).unwrap(), vec![-2.0, 0.0, 0.0, 0.0, 2.0, 0.0]);
        let s = Standardize.fit(m).unwrap();
        let z = s.transform(m).unwrap();
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((z[0] + 2.0 / sd).abs() < 1e-12 && z[1] == 0.0 && (z[4] - 2.0 / sd).abs() < 1e-12);
        let mm = MinMax::symmetric().fit(m).unwrap();
        let mut y = x;
        mm.transform_in_place(&mut y).unwrap();
        assert_eq!(y, [-1.0, -1.0, 0.0, -1.0, 1.0, -1.0]);
        mm.inverse_transform_in_place(&mut y).unwrap();
        assert_eq!(y, x);
        let p = PixelScale
            .fit(MatRef::new(&[255.0f32, 51.0], 1, 2).unwrap())
            .unwrap();
        let px = p
            .transform(MatRef::new(&[255.0f32, 51.0], 1, 2).unwrap())
            .unwrap();
        // x * (1/255) in f32 is within one ulp of x / 255.
        assert!(
            (px[0] - 1.0).abs() < 1e-7 && (px[1] - 0.2).abs() < 1e-7,
            "{px:?}"
        );
        assert!(MinMax { lo: 1.0, hi: 1.0 }.validate().is_err());
        assert!(s.transform_in_place(&mut [1.0; 3]).is_err());
    }
}
