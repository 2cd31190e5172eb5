//! Readers and writers for the standard data set formats.
//!
//! Every reader validates every header field and length against the bytes actually
//! present *before* allocating, and reports problems as [`Error::Format`] with the path
//! (or `"<bytes>"`) and the byte offset. Byte-level parsers need only `alloc` (they
//! are what the fuzz targets drive); file access and gzip need `std`.
//!
//! - [`idx`]: MNIST / Fashion-MNIST IDX files, raw or gzip (detected by its magic).
//! - [`cifar`]: CIFAR-10 binary batches (3073-byte records).
//! - [`csv`]: numeric CSV with a header and a label column by name or index.
//! - [`ImageSet`], and under `std` the directory loaders [`mnist`] and [`cifar10`],
//!   and [`data_dir_or_skip`] for the tests that need a data set the repository lacks.

pub mod cifar;
pub mod csv;
pub mod idx;

use alloc::string::String;
use alloc::vec::Vec;
use dl_core::Scalar;

use crate::dataset::Dataset;
use crate::error::{Error, FormatKind, Result};

/// A format problem found at a byte offset, before the path is known.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FormatError {
    pub(crate) offset: u64,
    pub(crate) kind: FormatKind,
}

impl FormatError {
    pub(crate) fn new(offset: u64, kind: FormatKind) -> Self {
        FormatError { offset, kind }
    }

    /// Attaches the file path (or `"<bytes>"`).
    pub(crate) fn at(self, path: &str) -> Error {
        Error::Format {
            path: String::from(path),
            offset: self.offset,
            kind: self.kind,
        }
    }
}

/// The name used in errors for in-memory input.
pub(crate) const BYTES: &str = "<bytes>";

/// Labelled 8-bit images, channels-first (`[n, channels, height, width]`), as stored
/// by MNIST (1 channel, 28x28) and CIFAR-10 (3 planar channels, 32x32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// All pixels, image after image, each `channels * height * width` bytes.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Channels per image.
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image (`channels * height * width`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i` (panics if `i >= len()`, like slice indexing).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Appends another set of the same image shape (used to join CIFAR batches).
    pub fn extend(&mut self, other: &ImageSet) -> Result<()> {
        if (other.channels, other.height, other.width) != (self.channels, self.height, self.width) {
            return Err(Error::LengthMismatch {
                op: "ImageSet::extend",
                what: "image size",
                expected: self.image_len(),
                actual: other.image_len(),
            });
        }
        self.pixels.extend_from_slice(&other.pixels);
        self.labels.extend_from_slice(&other.labels);
        Ok(())
    }

    /// Converts to a [`Dataset`] with one row per image; `scale_to_unit` divides by
    /// 255 (the course's pixel scaling) so features lie in `[0, 1]`.
    pub fn to_dataset<T: Scalar>(&self, scale_to_unit: bool) -> Result<Dataset<T, usize>> {
        // Divide (not multiply by 1/255) so each value is the correctly rounded p/255.
        let d = if scale_to_unit { 255.0 } else { 1.0 };
        let features = self
            .pixels
            .iter()
            .map(|&p| T::from_f64_lossy(f64::from(p) / d))
            .collect();
        let targets = self.labels.iter().map(|&l| usize::from(l)).collect();
        Dataset::new(features, targets, self.image_len())
    }
}

/// A training and a test set, as the directory loaders return them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainTest {
    /// The training images.
    pub train: ImageSet,
    /// The test images.
    pub test: ImageSet,
}

#[cfg(feature = "std")]
mod files;
#[cfg(feature = "std")]
pub use files::{
    cifar10, data_dir_or_skip, mnist, read_cifar, read_csv, read_file, read_idx, write_cifar,
    write_idx, REQUIRE_DATA,
};
