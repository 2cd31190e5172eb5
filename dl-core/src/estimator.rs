//! The estimator vocabulary shared by dl-classic and dl-data: a row-major matrix view,
//! and the `Fit` / `Predict` pair (hyper-parameters fit into a separate fitted model,
//! so an unfitted model cannot predict).

use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// A borrowed row-major matrix: `rows` samples of `cols` features.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
}

impl<'a, T: Scalar> MatRef<'a, T> {
    /// Views `data` as `rows x cols`; errors if the length disagrees.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        let expected = rows
            .checked_mul(cols)
            .ok_or(Error::Overflow { op: "MatRef::new" })?;
        if data.len() != expected {
            return Err(Error::LengthMismatch {
                op: "MatRef::new",
                what: "data",
                expected,
                actual: data.len(),
            });
        }
        Ok(MatRef { data, rows, cols })
    }

    /// Number of rows (samples).
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All elements, row-major.
    #[inline]
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Row `i` (panics if `i >= rows`, an internal invariant at call sites).
    #[inline]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Iterator over the rows.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &'a [T]> + 'a {
        let cols = self.cols.max(1);
        let rows = self.rows;
        self.data.chunks_exact(cols).take(rows)
    }
}

/// Hyper-parameters that fit to data, producing a separate fitted model.
///
/// `Y` is the target type: `usize` class labels, `T` for regression, `()` for
/// unsupervised methods (pass `&[]`-like unit slices of length `x.rows()`).
pub trait Fit<T: Scalar, Y> {
    /// The fitted model.
    type Fitted;
    /// What can go wrong while fitting (bad data, invalid hyper-parameters).
    type Error: core::fmt::Debug + core::fmt::Display;
    /// Fits to `x` (samples as rows) and targets `y` (one per row).
    fn fit(&self, x: MatRef<'_, T>, y: &[Y]) -> core::result::Result<Self::Fitted, Self::Error>;
}

/// A fitted model that predicts one output per input row.
pub trait Predict<T: Scalar, Y> {
    /// What can go wrong while predicting (e.g. a feature count mismatch).
    type Error: core::fmt::Debug + core::fmt::Display;
    /// Writes one prediction per row of `x` into `out` (no allocation).
    fn predict_into(
        &self,
        x: MatRef<'_, T>,
        out: &mut [Y],
    ) -> core::result::Result<(), Self::Error>;

    /// Predictions for every row of `x`.
    #[cfg(feature = "alloc")]
    fn predict(&self, x: MatRef<'_, T>) -> core::result::Result<alloc::vec::Vec<Y>, Self::Error>
    where
        Y: Clone + Default,
    {
        let mut out = alloc::vec![Y::default(); x.rows()];
        self.predict_into(x, &mut out)?;
        Ok(out)
    }
}
