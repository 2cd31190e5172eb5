//! CIFAR-10 binary batches (`data_batch_1.bin` .. `data_batch_5.bin`,
//! `test_batch.bin`): a sequence of 3073-byte records, each one label byte (0..=9)
//! then 3072 pixel bytes: the 1024 red, then green, then blue values of a 32x32 image,
//! row-major. There is no header: the file length must be a whole number of records.

use alloc::vec::Vec;

use super::{FormatError, ImageSet, BYTES};
use crate::error::{Error, FormatKind, Result};

/// Image side length.
pub const SIDE: usize = 32;
/// Channels (planar R, G, B).
pub const CHANNELS: usize = 3;
/// Pixel bytes per image.
pub const IMAGE_BYTES: usize = CHANNELS * SIDE * SIDE;
/// Bytes per record (label + image).
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Number of classes in CIFAR-10.
pub const N_CLASSES: u8 = 10;

/// Parses one batch held in memory.
///
/// ```
/// use dl_data::io::{cifar, ImageSet};
/// let set = ImageSet { pixels: vec![7; 3072], labels: vec![3], channels: 3, height: 32, width: 32 };
/// let bytes = cifar::to_bytes(&set).unwrap();
/// assert_eq!(bytes.len(), 3073);
/// assert_eq!(cifar::parse(&bytes).unwrap(), set);
/// ```
pub fn parse(bytes: &[u8]) -> Result<ImageSet> {
    parse_raw(bytes).map_err(|e| e.at(BYTES))
}

pub(crate) fn parse_raw(bytes: &[u8]) -> core::result::Result<ImageSet, FormatError> {
    let len = bytes.len();
    if len == 0 {
        return Err(FormatError::new(
            0,
            FormatKind::Truncated {
                needed: RECORD_BYTES as u64,
                available: 0,
            },
        ));
    }
    let n = len / RECORD_BYTES;
    if n * RECORD_BYTES != len {
        // The last record is cut short: report where it starts.
        let start = (n * RECORD_BYTES) as u64;
        return Err(FormatError::new(
            start,
            FormatKind::Truncated {
                needed: start + RECORD_BYTES as u64,
                available: len as u64,
            },
        ));
    }
    // Validate every label before allocating the pixel buffer.
    for (i, rec) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        if rec[0] >= N_CLASSES {
            return Err(FormatError::new(
                (i * RECORD_BYTES) as u64,
                FormatKind::LabelOutOfRange {
                    label: u64::from(rec[0]),
                    n_classes: u64::from(N_CLASSES),
                },
            ));
        }
    }
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for rec in bytes.chunks_exact(RECORD_BYTES) {
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(ImageSet {
        pixels,
        labels,
        channels: CHANNELS,
        height: SIDE,
        width: SIDE,
    })
}

/// Encodes images as a CIFAR-10 batch (each 3x32x32 planar, labels < 10).
pub fn to_bytes(set: &ImageSet) -> Result<Vec<u8>> {
    if (set.channels, set.height, set.width) != (CHANNELS, SIDE, SIDE) {
        return Err(Error::LengthMismatch {
            op: "cifar::to_bytes",
            what: "image size (channels*height*width)",
            expected: IMAGE_BYTES,
            actual: set.image_len(),
        });
    }
    if set.pixels.len() != set.labels.len() * IMAGE_BYTES {
        return Err(Error::LengthMismatch {
            op: "cifar::to_bytes",
            what: "pixels",
            expected: set.labels.len() * IMAGE_BYTES,
            actual: set.pixels.len(),
        });
    }
    if let Some(i) = set.labels.iter().position(|&l| l >= N_CLASSES) {
        return Err(Error::LabelOutOfRange {
            op: "cifar::to_bytes",
            index: i,
            label: usize::from(set.labels[i]),
            n_classes: usize::from(N_CLASSES),
        });
    }
    let mut out = Vec::with_capacity(set.len() * RECORD_BYTES);
    for (i, &l) in set.labels.iter().enumerate() {
        out.push(l);
        out.extend_from_slice(set.image(i));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn bad_lengths_and_labels_name_the_offset() {
        let mut b = vec![0u8; 2 * RECORD_BYTES];
        b[RECORD_BYTES] = 10;
        match parse(&b).unwrap_err() {
            Error::Format { offset, kind, .. } => {
                assert_eq!(offset, RECORD_BYTES as u64);
                assert_eq!(
                    kind,
                    FormatKind::LabelOutOfRange {
                        label: 10,
                        n_classes: 10
                    }
                );
            }
            e => panic!("{e}"),
        }
        match parse(&b[..RECORD_BYTES + 5]).unwrap_err() {
            Error::Format { offset, kind, .. } => {
                assert_eq!(offset, RECORD_BYTES as u64);
                assert!(matches!(kind, FormatKind::Truncated { .. }));
            }
            e => panic!("{e}"),
        }
        assert!(parse(&[]).is_err());
    }
}
