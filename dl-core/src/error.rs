//! The one error type of dl-core: every shape, length or parameter mistake a user's
//! data or settings can make, each naming the operation and the values involved.

use crate::shape::Shape;
use core::fmt;

/// Convenience alias used throughout dl-core.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong, naming the operation (`op`) and the offending shapes or values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// Two shapes that the operation cannot combine.
    ShapeMismatch {
        /// The operation, e.g. `"matmul"`.
        op: &'static str,
        /// Left (or first) operand's shape.
        lhs: Shape,
        /// Right (or second) operand's shape.
        rhs: Shape,
        /// The rule that was broken, e.g. `"inner dimensions 3 != 4"` style text.
        why: &'static str,
    },
    /// A flat buffer whose length disagrees with the shape or size it should hold.
    LengthMismatch {
        /// The operation.
        op: &'static str,
        /// Which buffer, e.g. `"output"`.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A shape with more than [`crate::shape::MAX_RANK`] dimensions.
    RankTooLarge {
        /// The operation.
        op: &'static str,
        /// The requested rank.
        rank: usize,
    },
    /// An operation that needs a particular rank got another.
    RankMismatch {
        /// The operation.
        op: &'static str,
        /// The rank required (as text, e.g. `"4 (NCHW)"`).
        expected: &'static str,
        /// The shape given.
        shape: Shape,
    },
    /// An axis index past the rank of the shape.
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The shape it was asked of.
        shape: Shape,
    },
    /// An element or row index past its bound.
    IndexOutOfRange {
        /// The operation.
        op: &'static str,
        /// The index given.
        index: usize,
        /// The exclusive bound it must stay below.
        bound: usize,
    },
    /// A hyper-parameter or argument outside its valid range.
    InvalidParameter {
        /// The operation or structure the parameter belongs to.
        op: &'static str,
        /// The parameter's name, e.g. `"stride"`.
        name: &'static str,
        /// The value given (integers are shown exactly).
        value: f64,
        /// The valid range, e.g. `">= 1"`.
        valid: &'static str,
    },
    /// A size computation overflowed `usize`.
    Overflow {
        /// The operation.
        op: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs, why } => {
                write!(f, "{op}: shapes {lhs} and {rhs} are incompatible ({why})")
            }
            Error::LengthMismatch {
                op,
                what,
                expected,
                actual,
            } => write!(f, "{op}: {what} has {actual} elements, expected {expected}"),
            Error::RankTooLarge { op, rank } => write!(
                f,
                "{op}: rank {rank} exceeds the maximum rank {}",
                crate::shape::MAX_RANK
            ),
            Error::RankMismatch {
                op,
                expected,
                shape,
            } => write!(f, "{op}: expected rank {expected}, got shape {shape}"),
            Error::AxisOutOfRange { op, axis, shape } => write!(
                f,
                "{op}: axis {axis} is out of range for shape {shape} (rank {})",
                shape.rank()
            ),
            Error::IndexOutOfRange { op, index, bound } => {
                write!(f, "{op}: index {index} is out of range (must be < {bound})")
            }
            Error::InvalidParameter {
                op,
                name,
                value,
                valid,
            } => write!(f, "{op}: invalid {name} = {value}, valid range: {valid}"),
            Error::Overflow { op } => write!(f, "{op}: size computation overflows usize"),
        }
    }
}

impl core::error::Error for Error {}
