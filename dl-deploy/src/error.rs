//! What can go wrong when exporting, loading or running a deployed model. Every case
//! names what is wrong and where: the layer and its index at export, the byte offset
//! and what was expected in a blob, the sizes for buffers the caller passes.

use core::fmt;

/// Convenience alias used throughout dl-deploy.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything dl-deploy can report. `Copy` and allocation-free, so the firmware can
/// log it without a heap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error {
    /// A layer that has no deployable form (at export, never at run time).
    UnsupportedLayer {
        /// Position of the layer in its container (its index in a `Sequential`).
        index: usize,
        /// The layer's type or name.
        layer: &'static str,
        /// Why it cannot be deployed.
        why: &'static str,
    },
    /// A model blob that is not what it should be: truncated, corrupted or
    /// inconsistent. Detected when the blob is loaded.
    Corrupt {
        /// Byte offset in the blob where the problem is.
        offset: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// An op of the blob that this build of the engine leaves out (the op set is a
    /// compile-time parameter of [`crate::Model`], so unused kernels take no flash).
    OpNotInBuild {
        /// Index of the op in the blob.
        index: usize,
        /// The op's name.
        op: &'static str,
    },
    /// The caller's arena is smaller than the model needs.
    ArenaTooSmall {
        /// Bytes the model needs ([`crate::Model::arena_len`]).
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The caller's arena does not start on the boundary the model needs (4 bytes,
    /// or 8 for a forest's f64 sums); [`crate::Arena`] is aligned for every model.
    ArenaMisaligned {
        /// The alignment the model needs.
        align: usize,
        /// The arena's address modulo `align`.
        misalignment: usize,
    },
    /// An input or output buffer whose length or element type disagrees with the model.
    Buffer {
        /// `"input"` or `"output"`.
        what: &'static str,
        /// Elements the model expects.
        expected: usize,
        /// Elements given.
        actual: usize,
        /// The element type the model expects (`"f32"`, `"i8"`, `"i32"`).
        dtype: &'static str,
        /// The element type given.
        given: &'static str,
    },
    /// A graph being built or quantized that is inconsistent (export time).
    Graph {
        /// The operation or step.
        op: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// A setting outside its valid range (export or quantization time).
    InvalidParameter {
        /// The structure or function it belongs to.
        op: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range.
        valid: &'static str,
    },
    /// A TensorFlow Lite model that the importer cannot take although the file is a
    /// well-formed FlatBuffer: an operator, element type or quantization the engine
    /// does not run, or a tensor whose shape or type disagrees with its op.
    TfLite {
        /// Index of the operator in the subgraph, or `None` for the model as a whole.
        op: Option<usize>,
        /// The operator's builtin name (`"CONV_2D"`), or `"model"`.
        name: &'static str,
        /// What is wrong, or what was expected.
        why: &'static str,
    },
    /// A kernel of dl-core rejected its arguments.
    Core(dl_core::Error),
}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Core(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedLayer { index, layer, why } => {
                write!(f, "layer {index} ({layer}) cannot be deployed: {why}")
            }
            Error::Corrupt { offset, expected } => {
                write!(f, "corrupt model blob at byte {offset}: expected {expected}")
            }
            Error::OpNotInBuild { index, op } => write!(
                f,
                "op {index} ({op}) is not in this build's op set (add it to the Model's OPS)"
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena of {got} bytes is too small: the model needs {needed}")
            }
            Error::ArenaMisaligned {
                align,
                misalignment,
            } => write!(
                f,
                "arena is not {align}-byte aligned (address mod {align} = {misalignment}); use dl_deploy::Arena"
            ),
            Error::Buffer {
                what,
                expected,
                actual,
                dtype,
                given,
            } => write!(
                f,
                "{what}: the model takes {expected} {dtype} values, got {actual} {given}"
            ),
            Error::Graph { op, why } => write!(f, "{op}: {why}"),
            Error::InvalidParameter {
                op,
                name,
                value,
                valid,
            } => write!(f, "{op}: {name} = {value} is invalid (valid: {valid})"),
            Error::TfLite {
                op: Some(i),
                name,
                why,
            } => write!(f, "TensorFlow Lite operator {i} ({name}): {why}"),
            Error::TfLite { op: None, why, .. } => write!(f, "TensorFlow Lite model: {why}"),
            Error::Core(e) => write!(f, "{e}"),
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
