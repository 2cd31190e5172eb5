//! The one error type of dl-data. Reader errors carry the file path and the byte
//! offset where the problem was found, so a corrupt download can be located with a
//! hex dump; parameter errors name the parameter and its valid range.

use core::fmt;

#[cfg(feature = "alloc")]
use alloc::string::String;

/// Convenience alias used throughout dl-data.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What is wrong inside a file (or byte buffer) a reader was given.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq)]
pub enum FormatKind {
    /// The leading magic number is not the one the format requires.
    BadMagic {
        /// What the format requires (e.g. `0x0000_08xx` for IDX ubyte).
        expected: &'static str,
        /// The bytes found, big-endian.
        found: u32,
    },
    /// IDX element type code other than `0x08` (unsigned byte).
    UnsupportedType {
        /// The type code found.
        code: u8,
    },
    /// A header field outside its valid range (e.g. rank 0, a zero dimension).
    BadHeaderField {
        /// The field, e.g. `"rank"` or `"dimension 2"`.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The valid range.
        valid: &'static str,
    },
    /// The data ends before the header says it should.
    Truncated {
        /// Bytes the header requires from the start of the file.
        needed: u64,
        /// Bytes actually present.
        available: u64,
    },
    /// Bytes after the end of the data the header describes.
    TrailingData {
        /// Bytes the header describes.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The sizes in the header overflow or exceed what the file could possibly hold
    /// (checked before any allocation).
    ImpossibleSize {
        /// The byte count the header implies (saturated at `u64::MAX`).
        declared: u64,
        /// The most the input could hold.
        limit: u64,
    },
    /// Two counts that must agree do not (e.g. images vs labels, record size).
    CountMismatch {
        /// What is being counted.
        what: &'static str,
        /// The count required.
        expected: u64,
        /// The count found.
        found: u64,
    },
    /// A class label at or above the number of classes.
    LabelOutOfRange {
        /// The label found.
        label: u64,
        /// The number of classes (labels must be below it).
        n_classes: u64,
    },
    /// The gzip stream is corrupt.
    Gzip {
        /// The decoder's message.
        message: String,
    },
    /// A CSV problem at a given line (1-based) and column (0-based).
    Csv {
        /// Line number, 1-based (the header is line 1).
        line: u64,
        /// Column (field) index, 0-based.
        column: u64,
        /// What is wrong.
        problem: CsvProblem,
    },
}

/// What is wrong in a CSV file.
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq)]
pub enum CsvProblem {
    /// The file has no header line.
    MissingHeader,
    /// The file is not valid UTF-8.
    NotUtf8,
    /// A field is not a finite number.
    NotANumber {
        /// The field text (truncated to 32 characters).
        field: String,
    },
    /// A row with a different number of fields than the header.
    FieldCount {
        /// Fields in the header.
        expected: u64,
        /// Fields in this row.
        found: u64,
    },
    /// The label column named or indexed does not exist.
    NoSuchLabelColumn {
        /// The name or index asked for.
        wanted: String,
    },
    /// A class label that is not a non-negative integer.
    BadLabel {
        /// The field text (truncated to 32 characters).
        field: String,
    },
}

/// What went wrong, naming the operation and the values involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An error from a dl-core kernel or view.
    Core(dl_core::Error),
    /// A hyper-parameter or argument outside its valid range.
    InvalidParameter {
        /// The operation or structure the parameter belongs to.
        op: &'static str,
        /// The parameter's name.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The valid range.
        valid: &'static str,
    },
    /// A buffer whose length disagrees with the size it should have.
    LengthMismatch {
        /// The operation.
        op: &'static str,
        /// Which buffer.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// An input that must not be empty is.
    Empty {
        /// The operation.
        op: &'static str,
        /// What is empty.
        what: &'static str,
    },
    /// A class label at or above the number of classes.
    LabelOutOfRange {
        /// The operation.
        op: &'static str,
        /// Position of the label.
        index: usize,
        /// The label.
        label: usize,
        /// The number of classes.
        n_classes: usize,
    },
    /// Too few samples for the request (e.g. a class smaller than the fold count).
    TooFewSamples {
        /// The operation.
        op: &'static str,
        /// What is too small.
        what: &'static str,
        /// The number needed.
        needed: usize,
        /// The number available.
        actual: usize,
    },
    /// A value that must be finite is NaN or infinite.
    NonFinite {
        /// The operation.
        op: &'static str,
        /// Position of the value.
        index: usize,
    },
    /// A malformed file or buffer: path (or `"<bytes>"`), byte offset, and what.
    #[cfg(feature = "alloc")]
    Format {
        /// The file, or `"<bytes>"` for in-memory input.
        path: String,
        /// Byte offset (in the decompressed stream for gzip files).
        offset: u64,
        /// What is wrong.
        kind: FormatKind,
    },
    /// An estimator failed inside model selection (its message is kept as text).
    #[cfg(feature = "alloc")]
    Estimator {
        /// `"fit"`, `"predict"` or `"objective"`.
        stage: &'static str,
        /// The estimator's error, displayed.
        message: String,
    },
    /// A parameter named in a search that the parameter set does not hold.
    #[cfg(feature = "alloc")]
    UnknownParameter {
        /// The name asked for.
        name: String,
    },
    /// An I/O error on a file.
    #[cfg(feature = "std")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A data set directory lacks a required file.
    #[cfg(feature = "std")]
    MissingFile {
        /// The directory searched.
        dir: String,
        /// The file names tried.
        tried: String,
    },
}

impl From<dl_core::Error> for Error {
    fn from(e: dl_core::Error) -> Self {
        Error::Core(e)
    }
}

#[cfg(feature = "alloc")]
impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatKind::BadMagic { expected, found } => {
                write!(f, "bad magic number 0x{found:08x} (expected {expected})")
            }
            FormatKind::UnsupportedType { code } => write!(
                f,
                "unsupported IDX element type 0x{code:02x} (only 0x08, unsigned byte, is read)"
            ),
            FormatKind::BadHeaderField {
                field,
                value,
                valid,
            } => write!(
                f,
                "header field {field} = {value} is invalid (valid: {valid})"
            ),
            FormatKind::Truncated { needed, available } => write!(
                f,
                "truncated: the header requires {needed} bytes but only {available} are present"
            ),
            FormatKind::TrailingData { expected, actual } => write!(
                f,
                "{actual} bytes present but the header describes {expected}"
            ),
            FormatKind::ImpossibleSize { declared, limit } => write!(
                f,
                "header declares {declared} bytes of data, more than the input can hold ({limit})"
            ),
            FormatKind::CountMismatch {
                what,
                expected,
                found,
            } => write!(f, "{what}: expected {expected}, found {found}"),
            FormatKind::LabelOutOfRange { label, n_classes } => {
                write!(f, "label {label} out of range (must be < {n_classes})")
            }
            FormatKind::Gzip { message } => write!(f, "corrupt gzip stream: {message}"),
            FormatKind::Csv {
                line,
                column,
                problem,
            } => write!(f, "line {line}, column {column}: {problem}"),
        }
    }
}

#[cfg(feature = "alloc")]
impl fmt::Display for CsvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvProblem::MissingHeader => write!(f, "missing header line"),
            CsvProblem::NotUtf8 => write!(f, "not valid UTF-8"),
            CsvProblem::NotANumber { field } => write!(f, "{field:?} is not a finite number"),
            CsvProblem::FieldCount { expected, found } => {
                write!(f, "{found} fields, the header has {expected}")
            }
            CsvProblem::NoSuchLabelColumn { wanted } => {
                write!(f, "no label column {wanted} in the header")
            }
            CsvProblem::BadLabel { field } => {
                write!(f, "label {field:?} is not a non-negative integer")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Core(e) => write!(f, "{e}"),
            Error::InvalidParameter {
                op,
                name,
                value,
                valid,
            } => write!(f, "{op}: invalid {name} = {value}, valid range: {valid}"),
            Error::LengthMismatch {
                op,
                what,
                expected,
                actual,
            } => write!(f, "{op}: {what} has {actual} elements, expected {expected}"),
            Error::Empty { op, what } => write!(f, "{op}: {what} is empty"),
            Error::LabelOutOfRange {
                op,
                index,
                label,
                n_classes,
            } => write!(
                f,
                "{op}: label {label} at position {index} is out of range (must be < {n_classes})"
            ),
            Error::TooFewSamples {
                op,
                what,
                needed,
                actual,
            } => write!(
                f,
                "{op}: {what} has {actual} samples, needs at least {needed}"
            ),
            Error::NonFinite { op, index } => {
                write!(f, "{op}: value at position {index} is not finite")
            }
            #[cfg(feature = "alloc")]
            Error::Format { path, offset, kind } => {
                write!(f, "{path}: at byte offset {offset}: {kind}")
            }
            #[cfg(feature = "alloc")]
            Error::Estimator { stage, message } => {
                write!(f, "estimator failed during {stage}: {message}")
            }
            #[cfg(feature = "alloc")]
            Error::UnknownParameter { name } => write!(f, "unknown parameter {name:?}"),
            #[cfg(feature = "std")]
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            #[cfg(feature = "std")]
            Error::MissingFile { dir, tried } => {
                write!(f, "{dir}: none of the files {tried} exists")
            }
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Core(e) => Some(e),
            #[cfg(feature = "std")]
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
