//! The one error type of dl-classic: everything a user's data or hyper-parameters can
//! get wrong, each variant naming the values involved, plus the shared input checks
//! every `fit` and `predict` runs before doing any work.

use core::fmt;
use dl_core::{MatRef, Scalar};

/// Convenience alias used throughout dl-classic.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong while fitting or predicting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// No samples (or no features) were given.
    EmptyData {
        /// The estimator, e.g. `"KNeighborsClassifier::fit"`.
        op: &'static str,
    },
    /// `x` and `y` disagree on the number of samples.
    LengthMismatch {
        /// Rows of `x`.
        x_rows: usize,
        /// Length of `y`.
        y_len: usize,
    },
    /// A model fitted on `expected` features was given `actual`.
    FeatureMismatch {
        /// The estimator.
        op: &'static str,
        /// Features at fit time.
        expected: usize,
        /// Features given now.
        actual: usize,
    },
    /// An output buffer of the wrong length.
    OutputLength {
        /// The estimator.
        op: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A NaN or infinite feature value.
    NonFinite {
        /// Sample index.
        row: usize,
        /// Feature index.
        col: usize,
    },
    /// A hyper-parameter outside its valid range.
    InvalidParameter {
        /// The parameter, e.g. `"n_neighbors"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range, e.g. `">= 1"`.
        valid: &'static str,
    },
    /// The method needs at least `k` samples (neighbours, clusters, components...) but
    /// only `n` were given.
    TooFewSamples {
        /// Samples required.
        k: usize,
        /// Samples given.
        n: usize,
    },
    /// A matrix that had to be invertible (positive definite) is not.
    Singular {
        /// Which matrix, e.g. `"class covariance"`.
        what: &'static str,
        /// How to fix it, naming the regularization option.
        hint: &'static str,
    },
    /// Fitting needs at least two distinct classes.
    SingleClass {
        /// The estimator.
        op: &'static str,
    },
    /// A feature value outside the domain the model accepts (e.g. negative counts).
    InvalidValue {
        /// The estimator.
        op: &'static str,
        /// Sample index.
        row: usize,
        /// Feature index.
        col: usize,
        /// The valid domain, e.g. `">= 0"`.
        valid: &'static str,
    },
    /// Iterative fitting produced a NaN or infinite training loss.
    Diverged {
        /// The estimator.
        op: &'static str,
        /// The iteration (boosting stage, epoch...) at which the loss stopped being
        /// finite, counted from 0.
        iteration: usize,
    },
    /// An error from a dl-core kernel.
    Core(dl_core::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyData { op } => write!(f, "{op}: no samples or no features"),
            Error::LengthMismatch { x_rows, y_len } => write!(
                f,
                "x has {x_rows} rows but y has {y_len} targets (one per row expected)"
            ),
            Error::FeatureMismatch {
                op,
                expected,
                actual,
            } => write!(
                f,
                "{op}: model was fitted on {expected} features, got {actual}"
            ),
            Error::OutputLength {
                op,
                expected,
                actual,
            } => write!(f, "{op}: output has length {actual}, expected {expected}"),
            Error::NonFinite { row, col } => {
                write!(
                    f,
                    "non-finite value (NaN or infinity) at row {row}, column {col}"
                )
            }
            Error::InvalidParameter { name, value, valid } => {
                write!(f, "invalid {name} = {value}, valid range: {valid}")
            }
            Error::TooFewSamples { k, n } => {
                write!(f, "need at least {k} samples, got {n}")
            }
            Error::Singular { what, hint } => {
                write!(f, "{what} is singular (not positive definite); {hint}")
            }
            Error::SingleClass { op } => {
                write!(f, "{op}: need at least two distinct classes in y")
            }
            Error::InvalidValue {
                op,
                row,
                col,
                valid,
            } => write!(f, "{op}: value at row {row}, column {col} must be {valid}"),
            Error::Diverged { op, iteration } => write!(
                f,
                "{op}: training diverged (loss is NaN or infinite) at iteration {iteration}; \
                 lower the learning rate"
            ),
            Error::Core(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Core(e)
    }
}

/// Rejects empty data and NaN/infinite values.
pub fn check_x<T: Scalar>(x: MatRef<'_, T>, op: &'static str) -> Result<()> {
    if x.rows() == 0 || x.cols() == 0 {
        return Err(Error::EmptyData { op });
    }
    for (row, r) in x.iter_rows().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col });
        }
    }
    Ok(())
}

/// [`check_x`] plus one target per row.
pub fn check_xy<T: Scalar>(x: MatRef<'_, T>, y_len: usize, op: &'static str) -> Result<()> {
    if x.rows() == 0 || x.cols() == 0 {
        return Err(Error::EmptyData { op });
    }
    if x.rows() != y_len {
        return Err(Error::LengthMismatch {
            x_rows: x.rows(),
            y_len,
        });
    }
    check_x(x, op)
}

/// Checks a prediction call: the feature count matches the fit, the output buffer
/// has one slot per row, and the values are finite.
pub fn check_predict<T: Scalar>(
    x: MatRef<'_, T>,
    n_features: usize,
    out_len: usize,
    op: &'static str,
) -> Result<()> {
    if x.cols() != n_features {
        return Err(Error::FeatureMismatch {
            op,
            expected: n_features,
            actual: x.cols(),
        });
    }
    if out_len != x.rows() {
        return Err(Error::OutputLength {
            op,
            expected: x.rows(),
            actual: out_len,
        });
    }
    for (row, r) in x.iter_rows().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col });
        }
    }
    Ok(())
}

/// The ensemble size every ensemble checks: at least one member.
#[cfg(feature = "alloc")]
pub(crate) fn check_n_estimators(n: usize) -> Result<()> {
    param(n >= 1, "n_estimators", n as f64, ">= 1")
}

/// A boosting learning rate: positive and finite.
#[cfg(feature = "alloc")]
pub(crate) fn check_learning_rate(v: f64) -> Result<()> {
    param(v > 0.0 && v.is_finite(), "learning_rate", v, "> 0")
}

/// Builds an [`Error::InvalidParameter`] unless `ok`.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) fn param(ok: bool, name: &'static str, value: f64, valid: &'static str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter { name, value, valid })
    }
}
