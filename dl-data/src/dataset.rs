//! An in-memory data set: features row-major (`n_samples x n_features`) plus one
//! target per row. Class labels are `usize`; regression targets are the scalar type.

use alloc::vec::Vec;
use dl_core::{MatRef, Scalar};

use crate::error::{Error, Result};

/// Features (row-major) and targets, one target per row.
///
/// ```
/// use dl_data::Dataset;
/// let d = Dataset::new(vec![1.0f32, 2.0, 3.0, 4.0], vec![0usize, 1], 2).unwrap();
/// assert_eq!(d.row(1), &[3.0, 4.0]);
/// let s = d.subset(&[1]).unwrap();
/// assert_eq!((s.features(), s.targets()), (&[3.0f32, 4.0][..], &[1usize][..]));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T, Y> {
    features: Vec<T>,
    targets: Vec<Y>,
    n_features: usize,
}

impl<T: Scalar, Y: Clone> Dataset<T, Y> {
    /// A data set of `targets.len()` rows; `features.len()` must equal
    /// `targets.len() * n_features` and every feature must be finite.
    pub fn new(features: Vec<T>, targets: Vec<Y>, n_features: usize) -> Result<Self> {
        let expected = targets
            .len()
            .checked_mul(n_features)
            .ok_or(Error::Core(dl_core::Error::Overflow { op: "Dataset::new" }))?;
        if features.len() != expected {
            return Err(Error::LengthMismatch {
                op: "Dataset::new",
                what: "features",
                expected,
                actual: features.len(),
            });
        }
        if let Some(index) = features.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                op: "Dataset::new",
                index,
            });
        }
        Ok(Dataset {
            features,
            targets,
            n_features,
        })
    }

    /// Number of rows.
    pub fn n_samples(&self) -> usize {
        self.targets.len()
    }

    /// Number of features per row.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// All features, row-major.
    pub fn features(&self) -> &[T] {
        &self.features
    }

    /// Mutable features (e.g. to apply a fitted transform in place).
    pub fn features_mut(&mut self) -> &mut [T] {
        &mut self.features
    }

    /// The targets, one per row.
    pub fn targets(&self) -> &[Y] {
        &self.targets
    }

    /// The features as a matrix view for `Fit`/`Predict`.
    pub fn x(&self) -> MatRef<'_, T> {
        // Lengths were checked in `new`, so this cannot fail.
        match MatRef::new(&self.features, self.targets.len(), self.n_features) {
            Ok(m) => m,
            Err(_) => unreachable!("Dataset invariant: features.len() == rows * cols"),
        }
    }

    /// Row `i` (panics if `i >= n_samples()`, like slice indexing).
    pub fn row(&self, i: usize) -> &[T] {
        &self.features[i * self.n_features..(i + 1) * self.n_features]
    }

    /// A new data set with the rows at `indices`, in that order (repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let n = self.n_samples();
        let mut features = Vec::with_capacity(indices.len() * self.n_features);
        let mut targets = Vec::with_capacity(indices.len());
        for &i in indices {
            if i >= n {
                return Err(Error::Core(dl_core::Error::IndexOutOfRange {
                    op: "Dataset::subset",
                    index: i,
                    bound: n,
                }));
            }
            features.extend_from_slice(self.row(i));
            targets.push(self.targets[i].clone());
        }
        Ok(Dataset {
            features,
            targets,
            n_features: self.n_features,
        })
    }

    /// Splits into (features, targets, n_features).
    pub fn into_parts(self) -> (Vec<T>, Vec<Y>, usize) {
        (self.features, self.targets, self.n_features)
    }
}

impl<T: Scalar> Dataset<T, usize> {
    /// Number of classes: one more than the largest label (0 for an empty set).
    pub fn n_classes(&self) -> usize {
        self.targets.iter().max().map_or(0, |m| m + 1)
    }

    /// How many rows carry each label, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = alloc::vec![0usize; self.n_classes()];
        for &y in &self.targets {
            counts[y] += 1;
        }
        counts
    }
}

/// Gathers rows `indices` of the `cols`-wide row-major `x` into `out` (caller-owned,
/// `indices.len() * cols` long). The DataLoader and cross-validation use it.
pub fn gather_rows<T: Copy>(x: &[T], cols: usize, indices: &[usize], out: &mut [T]) {
    debug_assert_eq!(out.len(), indices.len() * cols);
    for (dst, &i) in out.chunks_exact_mut(cols.max(1)).zip(indices) {
        dst.copy_from_slice(&x[i * cols..(i + 1) * cols]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn new_checks_lengths_and_finiteness() {
        assert!(matches!(
            Dataset::new(vec![1.0f32; 5], vec![0usize, 1], 2),
            Err(Error::LengthMismatch {
                expected: 4,
                actual: 5,
                ..
            })
        ));
        assert!(matches!(
            Dataset::new(vec![1.0f32, f32::NAN], vec![0usize], 2),
            Err(Error::NonFinite { index: 1, .. })
        ));
        let d = Dataset::new(vec![0.0f64; 6], vec![2usize, 0, 2], 2).unwrap();
        assert_eq!(d.n_classes(), 3);
        assert_eq!(d.class_counts(), vec![1, 0, 2]);
        assert!(d.subset(&[3]).is_err());
    }
}
