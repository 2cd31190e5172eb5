//! IDX files (MNIST, Fashion-MNIST): a 4-byte magic `00 00 TT RR` (type code `TT`,
//! rank `RR`), `RR` big-endian `u32` dimensions, then the elements row-major. Only the
//! unsigned-byte type `0x08` is read, which is what MNIST-style sets use.
//!
//! [`parse`] takes raw or gzip bytes (gzip needs `std`; it is detected by the gzip
//! magic `1f 8b`). A header is checked against the bytes present before anything is
//! allocated; for gzip, where the decompressed size is not known up front, the
//! declared size must fit within deflate's maximum ratio of the compressed size and the
//! output buffer only grows as data actually arrives.

use alloc::vec::Vec;

use super::{FormatError, BYTES};
use crate::error::{FormatKind, Result};

/// The IDX element type code for unsigned bytes.
pub const TYPE_U8: u8 = 0x08;
/// Largest rank accepted (MNIST uses 1 and 3).
pub const MAX_RANK: usize = 8;
/// Deflate cannot expand data by more than about 1032:1; a gzip file whose header
/// declares more than this times its own size is lying.
pub const MAX_DEFLATE_RATIO: u64 = 1032;

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (e.g. `[n, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// The parsed header: dimensions, header length and payload length in bytes.
pub(crate) struct Header {
    pub(crate) dims: Vec<usize>,
    pub(crate) header_len: u64,
    pub(crate) payload_len: u64,
}

/// Reads the header from the first bytes of a (decompressed) IDX stream.
pub(crate) fn parse_header(bytes: &[u8]) -> core::result::Result<Header, FormatError> {
    let available = bytes.len() as u64;
    if bytes.len() < 4 {
        return Err(FormatError::new(
            available,
            FormatKind::Truncated {
                needed: 4,
                available,
            },
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(FormatError::new(
            0,
            FormatKind::BadMagic {
                expected: "0x0000TTRR (two zero bytes, type code, rank)",
                found: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            },
        ));
    }
    if bytes[2] != TYPE_U8 {
        return Err(FormatError::new(
            2,
            FormatKind::UnsupportedType { code: bytes[2] },
        ));
    }
    let rank = usize::from(bytes[3]);
    if rank == 0 || rank > MAX_RANK {
        return Err(FormatError::new(
            3,
            FormatKind::BadHeaderField {
                field: "rank",
                value: rank as u64,
                valid: "1..=8",
            },
        ));
    }
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(FormatError::new(
            available,
            FormatKind::Truncated {
                needed: header_len as u64,
                available,
            },
        ));
    }
    let mut dims = Vec::with_capacity(rank);
    let mut payload: u64 = 1;
    for axis in 0..rank {
        let at = 4 + 4 * axis;
        let d = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        // Only the item count may be zero: a zero-sized image is meaningless.
        if d == 0 && axis > 0 {
            return Err(FormatError::new(
                at as u64,
                FormatKind::BadHeaderField {
                    field: "dimension",
                    value: 0,
                    valid: ">= 1 (only the item count may be 0)",
                },
            ));
        }
        // u32 factors, at most 8 of them: the product can overflow u64, so check.
        payload = payload.checked_mul(u64::from(d)).ok_or(FormatError::new(
            at as u64,
            FormatKind::ImpossibleSize {
                declared: u64::MAX,
                limit: usize::MAX as u64,
            },
        ))?;
        dims.push(d as usize);
    }
    Ok(Header {
        dims,
        header_len: header_len as u64,
        payload_len: payload,
    })
}

/// Parses an uncompressed IDX buffer.
pub(crate) fn parse_raw(bytes: &[u8]) -> core::result::Result<IdxArray, FormatError> {
    let h = parse_header(bytes)?;
    let available = bytes.len() as u64;
    let needed = h
        .header_len
        .checked_add(h.payload_len)
        .ok_or(FormatError::new(
            4,
            FormatKind::ImpossibleSize {
                declared: u64::MAX,
                limit: available,
            },
        ))?;
    if needed > available {
        return Err(FormatError::new(
            available,
            FormatKind::Truncated { needed, available },
        ));
    }
    if needed < available {
        return Err(FormatError::new(
            needed,
            FormatKind::TrailingData {
                expected: needed,
                actual: available,
            },
        ));
    }
    // Now `payload_len <= bytes.len()`: the allocation is bounded by the input.
    Ok(IdxArray {
        dims: h.dims,
        data: bytes[h.header_len as usize..].to_vec(),
    })
}

/// `true` if `bytes` start with the gzip magic.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Parses an IDX file held in memory, raw or gzip-compressed.
///
/// ```
/// use dl_data::io::idx;
/// let bytes = idx::to_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]).unwrap();
/// let a = idx::parse(&bytes).unwrap();
/// assert_eq!((a.dims.as_slice(), a.data.as_slice()), (&[2usize, 3][..], &[1u8, 2, 3, 4, 5, 6][..]));
/// assert!(idx::parse(&bytes[..10]).is_err()); // truncated
/// ```
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    parse_any(bytes).map_err(|e| e.at(BYTES))
}

pub(crate) fn parse_any(bytes: &[u8]) -> core::result::Result<IdxArray, FormatError> {
    if is_gzip(bytes) {
        #[cfg(feature = "std")]
        return parse_gzip(bytes);
        #[cfg(not(feature = "std"))]
        return Err(FormatError::new(
            0,
            FormatKind::BadMagic {
                expected: "raw IDX (gzip input needs the std feature)",
                found: u32::from_be_bytes([bytes[0], bytes[1], 0, 0]),
            },
        ));
    }
    parse_raw(bytes)
}

/// Decompresses and parses a gzip IDX buffer, never allocating more than the header
/// declares, and refusing a header that declares more than the input could expand to.
#[cfg(feature = "std")]
fn parse_gzip(bytes: &[u8]) -> core::result::Result<IdxArray, FormatError> {
    let mut dec = flate2::read::GzDecoder::new(bytes);
    // First the fixed 4 bytes, then the rank's dimensions: enough to size the rest.
    let mut head = Vec::with_capacity(4 + 4 * MAX_RANK);
    read_capped(&mut dec, &mut head, 4)?;
    if head.len() == 4 {
        let rank = usize::from(head[3]);
        if head[0] == 0 && head[1] == 0 && head[2] == TYPE_U8 && (1..=MAX_RANK).contains(&rank) {
            read_capped(&mut dec, &mut head, 4 + 4 * rank)?;
        }
    }
    let h = parse_header(&head)?;
    let limit = (bytes.len() as u64).saturating_mul(MAX_DEFLATE_RATIO);
    let total = h.header_len.saturating_add(h.payload_len);
    if total > limit {
        return Err(FormatError::new(
            4,
            FormatKind::ImpossibleSize {
                declared: total,
                limit,
            },
        ));
    }
    let mut data = Vec::new();
    // One byte past the payload tells whether there is trailing data.
    read_capped(&mut dec, &mut data, (h.payload_len + 1) as usize)?;
    let available = h.header_len + data.len() as u64;
    if (data.len() as u64) < h.payload_len {
        return Err(FormatError::new(
            available,
            FormatKind::Truncated {
                needed: total,
                available,
            },
        ));
    }
    if (data.len() as u64) > h.payload_len {
        // Count the rest without keeping it, for the message.
        let rest =
            std::io::copy(&mut dec, &mut std::io::sink()).map_err(|e| gzip_error(total, &e))?;
        return Err(FormatError::new(
            total,
            FormatKind::TrailingData {
                expected: total,
                actual: available + rest,
            },
        ));
    }
    Ok(IdxArray { dims: h.dims, data })
}

#[cfg(feature = "std")]
fn gzip_error(offset: u64, e: &std::io::Error) -> FormatError {
    use alloc::string::ToString;
    FormatError::new(
        offset,
        FormatKind::Gzip {
            message: e.to_string(),
        },
    )
}

/// Reads from `r` until `buf` holds `want` bytes or the stream ends, growing `buf`
/// geometrically but never past `want` (so a lying header cannot force a large
/// allocation ahead of the data).
#[cfg(feature = "std")]
pub(crate) fn read_capped<R: std::io::Read>(
    r: &mut R,
    buf: &mut Vec<u8>,
    want: usize,
) -> core::result::Result<(), FormatError> {
    let mut filled = buf.len();
    while filled < want {
        if filled == buf.len() {
            let grow = buf.len().max(64 * 1024).min(want - buf.len());
            buf.reserve_exact(grow);
            buf.resize(buf.len() + grow, 0);
        }
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(gzip_error(filled as u64, &e));
            }
        }
    }
    buf.truncate(filled);
    Ok(())
}

/// Encodes an unsigned-byte IDX array (`dims` outermost first).
pub fn to_bytes(dims: &[usize], data: &[u8]) -> Result<Vec<u8>> {
    use crate::error::Error;
    if dims.is_empty() || dims.len() > MAX_RANK {
        return Err(Error::InvalidParameter {
            op: "idx::to_bytes",
            name: "rank",
            value: dims.len() as f64,
            valid: "1..=8",
        });
    }
    let mut n: usize = 1;
    for &d in dims {
        if d > u32::MAX as usize {
            return Err(Error::InvalidParameter {
                op: "idx::to_bytes",
                name: "dimension",
                value: d as f64,
                valid: "<= u32::MAX",
            });
        }
        n = n
            .checked_mul(d)
            .ok_or(Error::Core(dl_core::Error::Overflow {
                op: "idx::to_bytes",
            }))?;
    }
    if n != data.len() {
        return Err(Error::LengthMismatch {
            op: "idx::to_bytes",
            what: "data",
            expected: n,
            actual: data.len(),
        });
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, dims.len() as u8]);
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use alloc::vec;

    fn kind(e: Error) -> (u64, FormatKind) {
        match e {
            Error::Format { offset, kind, .. } => (offset, kind),
            other => panic!("not a format error: {other:?}"),
        }
    }

    #[test]
    fn header_fields_are_each_checked() {
        let good = to_bytes(&[2, 2], &[1, 2, 3, 4]).unwrap();
        assert_eq!(parse(&good).unwrap().data, vec![1, 2, 3, 4]);
        let mut b = good.clone();
        b[0] = 1;
        assert!(matches!(
            kind(parse(&b).unwrap_err()),
            (0, FormatKind::BadMagic { .. })
        ));
        let mut b = good.clone();
        b[2] = 0x0D;
        assert_eq!(
            kind(parse(&b).unwrap_err()),
            (2, FormatKind::UnsupportedType { code: 0x0D })
        );
        let mut b = good.clone();
        b[3] = 0;
        assert!(matches!(
            kind(parse(&b).unwrap_err()),
            (3, FormatKind::BadHeaderField { field: "rank", .. })
        ));
        let mut b = good.clone();
        b[11] = 0; // second dimension = 0
        assert!(matches!(
            kind(parse(&b).unwrap_err()),
            (
                8,
                FormatKind::BadHeaderField {
                    field: "dimension",
                    ..
                }
            )
        ));
        assert_eq!(
            kind(parse(&good[..13]).unwrap_err()),
            (
                13,
                FormatKind::Truncated {
                    needed: 16,
                    available: 13
                }
            )
        );
        assert_eq!(
            kind(parse(&good[..6]).unwrap_err()),
            (
                6,
                FormatKind::Truncated {
                    needed: 12,
                    available: 6
                }
            )
        );
        let mut b = good.clone();
        b.push(9);
        assert_eq!(
            kind(parse(&b).unwrap_err()),
            (
                16,
                FormatKind::TrailingData {
                    expected: 16,
                    actual: 17
                }
            )
        );
    }

    #[test]
    fn lying_header_is_rejected_without_allocating() {
        // 8 dimensions of u32::MAX: the product overflows u64.
        let mut b = vec![0, 0, 8, 8];
        for _ in 0..8 {
            b.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        assert!(matches!(
            kind(parse(&b).unwrap_err()),
            (_, FormatKind::ImpossibleSize { .. })
        ));
        // 4 billion images of 1 byte in a 12-byte file: truncated, nothing allocated.
        let b = [0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1];
        assert!(matches!(
            kind(parse(&b).unwrap_err()),
            (12, FormatKind::Truncated { .. })
        ));
    }
}
