//! The one error type of dl-layers.

use alloc::string::String;
use core::fmt;
use dl_core::Shape;

/// Convenience alias used throughout dl-layers.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// An op failed (shape mismatch naming the op and shapes, etc.).
    Autograd(dl_autograd::Error),
    /// A layer's setting outside its valid range.
    InvalidParameter {
        /// The layer, e.g. `"Dropout"`.
        layer: &'static str,
        /// The setting, e.g. `"p"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range.
        valid: &'static str,
    },
    /// A checkpoint lacks a tensor the model has.
    MissingTensor {
        /// Where the checkpoint came from (file path or `"<bytes>"`).
        source: String,
        /// The tensor's name, e.g. `"0.weight"`.
        name: String,
    },
    /// A checkpoint tensor has another shape than the model's.
    TensorShape {
        /// Where the checkpoint came from.
        source: String,
        /// The tensor's name.
        name: String,
        /// The model's shape.
        expected: Shape,
        /// The shape in the checkpoint.
        found: Shape,
    },
    /// A model being saved holds a NaN or infinite value, which loading would refuse.
    NonFinite {
        /// The tensor's name.
        name: String,
        /// The element's index in the tensor.
        element: usize,
        /// The value.
        value: f64,
    },
    /// A checkpoint holds a tensor the model does not have.
    UnexpectedTensor {
        /// Where the checkpoint came from.
        source: String,
        /// The tensor's name.
        name: String,
    },
    /// A checkpoint file that is not valid safetensors (truncated, bad header or data
    /// offsets), or holds data other than f32/f64, or a non-finite value.
    Format {
        /// Where the checkpoint came from.
        source: String,
        /// Byte offset where the problem was found.
        offset: usize,
        /// What was expected there.
        expected: String,
    },
    /// Reading or writing a checkpoint file failed.
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

impl From<dl_autograd::Error> for Error {
    fn from(e: dl_autograd::Error) -> Self {
        Error::Autograd(e)
    }
}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Autograd(e.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Autograd(e) => fmt::Display::fmt(e, f),
            Error::InvalidParameter {
                layer,
                name,
                value,
                valid,
            } => write!(f, "{layer}: invalid {name} = {value}, valid range: {valid}"),
            Error::MissingTensor { source, name } => {
                write!(f, "{source}: checkpoint has no tensor `{name}`")
            }
            Error::TensorShape {
                source,
                name,
                expected,
                found,
            } => write!(
                f,
                "{source}: tensor `{name}` has shape {found} in the checkpoint, the model expects {expected}"
            ),
            Error::NonFinite {
                name,
                element,
                value,
            } => write!(
                f,
                "cannot save the model: `{name}` holds {value} at element {element} \
                 (a checkpoint with NaN or infinite weights would not load)"
            ),
            Error::UnexpectedTensor { source, name } => write!(
                f,
                "{source}: checkpoint tensor `{name}` matches nothing in the model"
            ),
            Error::Format {
                source,
                offset,
                expected,
            } => write!(f, "{source}: at byte {offset}: expected {expected}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl core::error::Error for Error {}

pub(crate) fn check(
    layer: &'static str,
    name: &'static str,
    value: f64,
    ok: bool,
    valid: &'static str,
) -> Result<()> {
    if ok && !value.is_nan() {
        Ok(())
    } else {
        Err(Error::InvalidParameter {
            layer,
            name,
            value,
            valid,
        })
    }
}
