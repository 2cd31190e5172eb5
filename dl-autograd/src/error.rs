//! The one error type of dl-autograd: every kernel error from dl-core (shape and
//! parameter mistakes, each naming the op and the shapes), plus the mistakes only a
//! tape can make (a stale `Var`, a non-scalar loss, backward on a no-grad graph).

use core::fmt;
use dl_core::Shape;

/// Convenience alias used throughout dl-autograd.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// A shape, length, axis or hyper-parameter error from an op (dl-core's error,
    /// which names the op and the shapes or values involved).
    Core(dl_core::Error),
    /// A [`crate::Var`] that does not belong to this graph, or that was created before
    /// the graph was last cleared.
    StaleVar {
        /// The operation that was handed the handle.
        op: &'static str,
        /// The handle's node index.
        index: usize,
    },
    /// `backward` was called on a value with more than one element.
    NotScalar {
        /// The operation (`"backward"`).
        op: &'static str,
        /// The shape of the value it was called on.
        shape: Shape,
    },
    /// `backward` was called on a graph built in no-grad mode, or on a value that
    /// depends on no variable or parameter, so there is nothing to differentiate.
    NoGradient {
        /// The operation (`"backward"`).
        op: &'static str,
        /// Why there is no gradient.
        why: &'static str,
    },
    /// A parameter's gradient was borrowed (through [`crate::Param::grad`]) while
    /// `backward` tried to accumulate into it.
    GradBorrowed,
}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Core(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => fmt::Display::fmt(e, f),
            Error::StaleVar { op, index } => write!(
                f,
                "{op}: variable #{index} does not belong to this graph (created by another \
                 graph, or before the last clear)"
            ),
            Error::NotScalar { op, shape } => write!(
                f,
                "{op}: can only start from a scalar (one element), got shape {shape}"
            ),
            Error::NoGradient { op, why } => write!(f, "{op}: nothing to differentiate ({why})"),
            Error::GradBorrowed => f.write_str(
                "backward: a parameter's gradient is borrowed elsewhere; drop the `Param::grad` guard first",
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

/// A shape mismatch naming the op and both shapes.
#[cfg(feature = "alloc")]
pub(crate) fn shape_mismatch(op: &'static str, lhs: Shape, rhs: Shape, why: &'static str) -> Error {
    Error::Core(dl_core::Error::ShapeMismatch { op, lhs, rhs, why })
}

/// A hyper-parameter outside its valid range, naming itself and the range.
#[cfg(feature = "alloc")]
pub(crate) fn invalid_parameter(
    op: &'static str,
    name: &'static str,
    value: f64,
    valid: &'static str,
) -> Error {
    Error::Core(dl_core::Error::InvalidParameter {
        op,
        name,
        value,
        valid,
    })
}
