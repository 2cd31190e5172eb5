//! The one error type of dl-optim.

use core::fmt;

/// Convenience alias used throughout dl-optim.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// A hyper-parameter outside its valid range.
    InvalidParameter {
        /// Which optimizer, schedule or regularizer.
        owner: &'static str,
        /// The parameter's name, e.g. `"lr"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range, e.g. `">= 0"`.
        valid: &'static str,
    },
    /// The set of parameters changed between steps (a different count or size), so the
    /// optimizer's per-parameter state no longer lines up.
    ParamsChanged {
        /// The optimizer.
        owner: &'static str,
        /// Index of the first parameter that differs.
        index: usize,
        /// Element count the state was made for.
        expected: usize,
        /// Element count now.
        actual: usize,
    },
    /// An error from the autograd layer.
    Autograd(dl_autograd::Error),
}

impl From<dl_autograd::Error> for Error {
    fn from(e: dl_autograd::Error) -> Self {
        Error::Autograd(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidParameter {
                owner,
                name,
                value,
                valid,
            } => write!(f, "{owner}: invalid {name} = {value}, valid range: {valid}"),
            Error::ParamsChanged {
                owner,
                index,
                expected,
                actual,
            } => write!(
                f,
                "{owner}: parameter #{index} has {actual} elements but the optimizer's state \
                 was made for {expected}; the parameter set changed between steps"
            ),
            Error::Autograd(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl core::error::Error for Error {}

/// Checks `lo <= value` (and `value <= hi` when given), naming the parameter otherwise.
pub(crate) fn check_range(
    owner: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    valid: &'static str,
) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            owner,
            name,
            value,
            valid,
        })
    }
}
