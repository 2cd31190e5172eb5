//! The model blob: what its bytes mean, and a cursor that reads them with named
//! errors.
//!
//! A blob is little-endian and 4-byte aligned throughout, so the engine reads
//! weights in place (a `&[f32]` or `&[i8]` view of flash) instead of copying them:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "DLM1"
//! 4       4     total length in bytes (u32)
//! 8       4     CRC-32 (IEEE) of bytes 12..total length
//! 12      4     arena bytes the model needs (u32)
//! 16      2     number of tensors (u16)
//! 18      2     number of ops (u16)
//! 20      4     op set: bit k set when an op of kind k appears
//! 24      2     input tensor (u16)
//! 26      2     output tensor (u16)
//! 28      16*T  tensor table: dtype u8, rank u8, 0u16, dims [u16; 4], arena offset u32
//! ...     ...   op records: a header word (kind u8, 0u8, length in words u16), then
//!               the op's words (tensor ids as u16 pairs, parameters, offsets of
//!               constant data from the blob's start)
//! ...     ...   constant data (weights, biases, requantization), 4-byte aligned
//! ```
//!
//! Activations are NHWC (`[batch, height, width, channels]`), as in TensorFlow Lite,
//! so channel loops are contiguous in both the activations and the OHWI weights.

use crate::error::{Error, Result};

/// The first four bytes of every blob (format version 1).
pub const MAGIC: [u8; 4] = *b"DLM1";
/// Bytes before the tensor table.
pub const HEADER_LEN: usize = 28;
/// Bytes per tensor table entry.
pub const TENSOR_LEN: usize = 16;
/// Largest rank of an activation tensor.
pub const MAX_RANK: usize = 4;
/// The offset value that stands for "no constant" (an absent bias).
pub const NONE: u32 = u32::MAX;

/// CRC-32 (IEEE 802.3, as zlib) computed bit by bit: no table, so it costs a few
/// dozen bytes of flash instead of 1 KiB, and it runs once per load.
pub fn crc32(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32, crc::NoTable> =
        crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISO_HDLC);
    CRC.checksum(bytes)
}

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer (quantized).
    I8,
    /// Signed 32-bit integer.
    I32,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::I8 => 1,
        }
    }

    /// The Rust name of the element type.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::I32 => "i32",
        }
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I32 => 2,
        }
    }

    /// The type of a wire code, if it is one.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(DType::F32),
            1 => Some(DType::I8),
            2 => Some(DType::I32),
            _ => None,
        }
    }
}

/// An element type the engine reads and writes through [`crate::Model::run`].
pub trait Element: bytemuck::Pod {
    /// Its [`DType`].
    const DTYPE: DType;
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
}

impl Element for i8 {
    const DTYPE: DType = DType::I8;
}

impl Element for i32 {
    const DTYPE: DType = DType::I32;
}

/// A reading position in a blob. Every read checks bounds and reports the offset
/// and what it expected, so a truncated or corrupted blob is an error, never a panic.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at `pos` in `bytes`.
    pub fn new(bytes: &'a [u8], pos: usize) -> Self {
        Cursor { bytes, pos }
    }

    /// The current offset from the blob's start.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes, or what was expected there.
    pub fn take(&mut self, n: usize, expected: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Error::Corrupt {
                offset: self.pos,
                expected,
            }),
        }
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, expected: &'static str) -> Result<u32> {
        let b = self.take(4, expected)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A little-endian `u32` read as an `i32`.
    pub fn i32(&mut self, expected: &'static str) -> Result<i32> {
        Ok(self.u32(expected)? as i32)
    }

    /// A little-endian `f32`.
    pub fn f32(&mut self, expected: &'static str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(expected)?))
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self, expected: &'static str) -> Result<u16> {
        let b = self.take(2, expected)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// One byte.
    pub fn u8(&mut self, expected: &'static str) -> Result<u8> {
        Ok(self.take(1, expected)?[0])
    }

    /// One byte read as an `i8`.
    pub fn i8(&mut self, expected: &'static str) -> Result<i8> {
        Ok(self.u8(expected)? as i8)
    }
}

/// Appends little-endian values to a growing blob (export side).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, Default)]
pub struct Writer {
    /// The bytes written so far.
    pub bytes: alloc::vec::Vec<u8>,
}

#[cfg(feature = "alloc")]
impl Writer {
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends an `i32`.
    pub fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    /// Appends an `f32`.
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }

    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Appends a byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// Appends zero bytes up to a multiple of 4.
    pub fn align4(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// Current length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
