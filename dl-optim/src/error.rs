//! The one error type of dl-optim.

use core::fmt;

/// Convenience alias used throughout dl-optim.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
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
    /// An error from a layer or a checkpoint.
    Layers(dl_layers::Error),
    /// An error from the data pipeline.
    Data(dl_data::Error),
    /// Training diverged: the loss became NaN or infinite.
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// The loss value seen.
        loss: f64,
    },
    /// Writing a training artifact (curves, history) failed.
    Io {
        /// The file.
        path: alloc::string::String,
        /// The operating system's message.
        message: alloc::string::String,
    },
}

impl From<dl_layers::Error> for Error {
    fn from(e: dl_layers::Error) -> Self {
        Error::Layers(e)
    }
}

impl From<dl_data::Error> for Error {
    fn from(e: dl_data::Error) -> Self {
        Error::Data(e)
    }
}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Autograd(e.into())
    }
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
            Error::Layers(e) => fmt::Display::fmt(e, f),
            Error::Data(e) => fmt::Display::fmt(e, f),
            Error::Diverged { epoch, batch, loss } => write!(
                f,
                "training diverged: the loss is {loss} at epoch {epoch}, batch {batch}; \
                 lower the learning rate or clip gradients"
            ),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
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
