//! Checkpoints in the safetensors format: every parameter and buffer by its dotted
//! name (`0.weight`, `3.running_mean`, ...). Reading works without std (from bytes),
//! so a model trained on the desktop loads on a microcontroller; files are written
//! atomically (temporary file, then rename) under std.
//!
//! Loading checks names, shapes, dtypes and values and reports the first problem
//! with the source's name (and for a malformed file the byte offset and what was
//! expected there); f32 and f64 files load into either element type. NaN and
//! infinite values are refused, unlike PyTorch's `load_state_dict`: a checkpoint
//! with them gives garbage outputs with no error, so the load fails naming the
//! tensor and the element (and saving such a model fails the same way, so a
//! checkpoint that would not load is never written). A failed load leaves the model
//! as it was. Fuzzed by
//! `dl-layers/fuzz` (target `checkpoint`), whose corpus `tests/fuzz_corpus.rs`
//! replays.

use crate::error::{Error, Result};
use crate::module::{Entry, EntryMut, Module, Path};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use dl_core::{Scalar, Shape};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};

fn dtype_of<T: Scalar>() -> Dtype {
    if core::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// The model's parameters and buffers as safetensors bytes. Fails, naming the tensor
/// and the element, if one holds a NaN or an infinity: [`from_bytes`] would refuse the
/// file, so it is never written.
pub fn to_bytes<T: Scalar>(model: &dyn Module<T>) -> Result<Vec<u8>> {
    let mut names: Vec<String> = Vec::new();
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut non_finite = None;
    model.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
        let v = e.value();
        if non_finite.is_none() {
            if let Some(i) = v.data().iter().position(|x| !x.is_finite()) {
                non_finite = Some(Error::NonFinite {
                    name: name.to_string(),
                    element: i,
                    value: v.data()[i].to_f64_lossless(),
                });
            }
        }
        names.push(name.to_string());
        shapes.push(v.dims().to_vec());
        let mut bytes = Vec::with_capacity(v.numel() * core::mem::size_of::<T>());
        for &x in v.data() {
            if core::mem::size_of::<T>() == 4 {
                bytes.extend_from_slice(&(x.to_f64_lossless() as f32).to_le_bytes());
            } else {
                bytes.extend_from_slice(&x.to_f64_lossless().to_le_bytes());
            }
        }
        blobs.push(bytes);
    });
    if let Some(e) = non_finite {
        return Err(e);
    }
    let mut views = Vec::with_capacity(names.len());
    for ((name, shape), blob) in names.iter().zip(shapes).zip(&blobs) {
        let view = TensorView::new(dtype_of::<T>(), shape, blob)
            .map_err(|e| format_error("<model>", 0, &e))?;
        views.push((name.as_str(), view));
    }
    safetensors::tensor::serialize(views, None).map_err(|e| format_error("<model>", 0, &e))
}

fn format_error(source: &str, offset: usize, e: &SafeTensorError) -> Error {
    Error::Format {
        source: source.to_string(),
        offset,
        expected: alloc::format!("a valid safetensors file ({e})"),
    }
}

/// The safetensors error for `bytes` as an error that says where in the file the
/// problem is and what was expected there. The layout: 8 bytes of header length `n`
/// (u64, little-endian), `n` bytes of JSON header, then the tensor data, which must
/// end exactly at the end of the file.
fn header_error(bytes: &[u8], source: &str, e: SafeTensorError) -> Error {
    let len = bytes.len();
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
    let header_len = n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let data_at = header_len.saturating_add(8);
    let (offset, expected) = match e {
        SafeTensorError::HeaderTooSmall => (
            len,
            alloc::format!("an 8-byte header length, but the source has only {len} bytes"),
        ),
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => (
            0,
            alloc::format!(
                "a header length of at most {} (the bytes after the length field; \
                 safetensors also caps it at 100 MB), found {}",
                len.saturating_sub(8),
                n.unwrap_or(0)
            ),
        ),
        SafeTensorError::InvalidHeader(u) => {
            (8 + u.valid_up_to(), String::from("a UTF-8 JSON header"))
        }
        SafeTensorError::InvalidHeaderDeserialization(j) | SafeTensorError::JsonError(j) => (
            8 + json_offset(header(bytes, data_at), j.line(), j.column()),
            alloc::format!("a safetensors JSON header (name -> dtype, shape, data_offsets): {j}"),
        ),
        SafeTensorError::InvalidOffset(name) => (
            data_at,
            alloc::format!(
                "tensor data laid end to end: `{name}`'s data_offsets must start where \
                 the previous tensor's end"
            ),
        ),
        SafeTensorError::TensorInvalidInfo => (
            data_at,
            String::from(
                "data_offsets whose lengths are each tensor's element count times its \
                 dtype's size",
            ),
        ),
        SafeTensorError::MetadataIncompleteBuffer => {
            // The header is valid (the check comes after its validation): read it
            // once more to say how long the file should be. Only with std: that
            // second serde instantiation costs 17 KB of flash in the firmware's demo,
            // which then names the end of the file without the expected length.
            #[cfg(feature = "std")]
            let data_len = core::str::from_utf8(header(bytes, data_at))
                .ok()
                .and_then(|h| serde_json::from_str::<safetensors::tensor::Metadata>(h).ok())
                .map(|m| m.data_len());
            #[cfg(not(feature = "std"))]
            let data_len: Option<usize> = None;
            match data_len {
                Some(d) => (
                    len.min(data_at.saturating_add(d)),
                    alloc::format!(
                        "{} bytes ({header_len} of header, then {d} of tensor data as the \
                         header's data_offsets say), but the source has {len} bytes \
                         (truncated, or bytes after the data)",
                        data_at.saturating_add(d)
                    ),
                ),
                None => (
                    len,
                    alloc::format!(
                        "the tensor data the header's data_offsets describe, ending at the \
                         end of the file; the {} bytes after the header are not that \
                         (truncated, or bytes after the data)",
                        len.saturating_sub(data_at)
                    ),
                ),
            }
        }
        other => (
            data_at.min(len),
            alloc::format!("a valid safetensors file ({other})"),
        ),
    };
    Error::Format {
        source: source.to_string(),
        offset,
        expected,
    }
}

/// The JSON header of a file whose tensor data starts at `data_at`.
fn header(bytes: &[u8], data_at: usize) -> &[u8] {
    bytes.get(8..data_at).unwrap_or(&[])
}

/// Byte offset in `text` of serde_json's 1-based `line` and `column` (0 if unknown).
fn json_offset(text: &[u8], line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let line_start = if line == 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Byte offset at which a tensor's data starts in the file (header length + 8 + its
/// data offset), for error messages.
fn data_start(bytes: &[u8], view_data: &[u8]) -> usize {
    (view_data.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize)
}

/// Checks one checkpoint tensor against the model's entry `name` of shape
/// `expected`: shape, dtype, and that every value is finite once converted to `T`.
fn check_tensor<T: Scalar>(
    bytes: &[u8],
    source: &str,
    name: &str,
    expected: Shape,
    view: &TensorView<'_>,
) -> Result<()> {
    let found = match Shape::new(view.shape()) {
        Ok(s) => s,
        Err(_) => {
            return Err(Error::Format {
                source: source.to_string(),
                offset: data_start(bytes, view.data()),
                expected: alloc::format!(
                    "a shape of {expected} for `{name}`, found {:?}",
                    view.shape()
                ),
            })
        }
    };
    if found != expected {
        return Err(Error::TensorShape {
            source: source.to_string(),
            name: name.to_string(),
            expected,
            found,
        });
    }
    let size = match view.dtype() {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
        other => {
            return Err(Error::Format {
                source: source.to_string(),
                offset: data_start(bytes, view.data()),
                expected: alloc::format!("F32 or F64 data for `{name}`, found {other:?}"),
            })
        }
    };
    // NaN or infinite weights (or f64 values beyond f32's range, which would load as
    // infinities) make every output garbage without any error: refuse them here,
    // where the file and the tensor can still be named. PyTorch loads them silently.
    for (i, c) in view.data().chunks_exact(size).enumerate() {
        let v = decode(view.dtype(), c);
        if !T::from_f64_lossy(v).is_finite() {
            let what = if v.is_finite() {
                alloc::format!("{v:e}, beyond {}'s range,", T::NAME)
            } else {
                alloc::format!("{v}")
            };
            return Err(Error::Format {
                source: source.to_string(),
                offset: data_start(bytes, view.data()) + i * size,
                expected: alloc::format!(
                    "finite values in `{name}`, found {what} at element {i} \
                     (a checkpoint with NaN or infinite weights is refused)"
                ),
            });
        }
    }
    Ok(())
}

/// Loads every parameter and buffer of `model` from safetensors `bytes`; `source`
/// names where they came from in errors. Fails on the first missing tensor, shape
/// mismatch, unsupported dtype or non-finite value (NaN, infinity, or an f64 value
/// beyond the range of `T`), on tensors the model does not have, and on a file that
/// is not valid safetensors (truncated, bad header length or data offsets), naming
/// the byte offset and what was expected there. The model is only modified when
/// everything checks out: after an error every parameter and buffer is as before.
pub fn from_bytes<T: Scalar>(model: &mut dyn Module<T>, bytes: &[u8], source: &str) -> Result<()> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| header_error(bytes, source, e))?;
    // Pass 1: check everything without touching the model.
    let mut first_err: Option<Error> = None;
    let mut seen = 0usize;
    model.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
        if first_err.is_some() {
            return;
        }
        seen += 1;
        let expected = *e.value().shape();
        let checked = match st.tensor(name) {
            Err(_) => Err(Error::MissingTensor {
                source: source.to_string(),
                name: name.to_string(),
            }),
            Ok(view) => check_tensor::<T>(bytes, source, name, expected, &view),
        };
        first_err = checked.err();
    });
    if let Some(e) = first_err {
        return Err(e);
    }
    if st.len() != seen {
        let mut known = Vec::new();
        model.visit(&mut Path::new(), &mut |name, _| {
            known.push(name.to_string())
        });
        // The first in the file: `names()` comes from a hash map, in no set order.
        if let Some(extra) = st
            .names()
            .into_iter()
            .filter(|n| !known.iter().any(|k| k == *n))
            .min_by_key(|n| {
                st.tensor(n)
                    .map_or(usize::MAX, |v| data_start(bytes, v.data()))
            })
        {
            return Err(Error::UnexpectedTensor {
                source: source.to_string(),
                name: extra.to_string(),
            });
        }
    }
    // Pass 2: copy (every lookup succeeded in pass 1).
    model.visit_mut(&mut Path::new(), &mut |name, e: EntryMut<'_, T>| {
        let Ok(view) = st.tensor(name) else { return };
        let dst = match e {
            EntryMut::Param(p) => p.value_mut(),
            EntryMut::Buffer(t) => t.data_mut(),
        };
        let size = if view.dtype() == Dtype::F32 { 4 } else { 8 };
        for (d, c) in dst.iter_mut().zip(view.data().chunks_exact(size)) {
            *d = T::from_f64_lossy(decode(view.dtype(), c));
        }
    });
    Ok(())
}

/// One little-endian F32 (4 bytes) or F64 (8 bytes) value, widened to f64.
fn decode(dtype: Dtype, c: &[u8]) -> f64 {
    if dtype == Dtype::F32 {
        f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64
    } else {
        f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
    }
}

/// Writes `model` to `path` atomically: to `path.tmp` first, synced, then renamed,
/// so a crash never leaves a half-written checkpoint in place of the previous one.
/// Fails, writing nothing, on a NaN or infinite value (see [`to_bytes`]).
#[cfg(feature = "std")]
pub fn save<T: Scalar>(model: &dyn Module<T>, path: impl AsRef<std::path::Path>) -> Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let bytes = to_bytes(model)?;
    let io = |e: std::io::Error, p: &std::path::Path| Error::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let mut tmp = std::ffi::OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(e, &tmp))?;
    f.write_all(&bytes).map_err(|e| io(e, &tmp))?;
    f.sync_all().map_err(|e| io(e, &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(e, path))?;
    Ok(())
}

/// Loads `model`'s parameters and buffers from a safetensors file.
#[cfg(feature = "std")]
pub fn load<T: Scalar>(model: &mut dyn Module<T>, path: impl AsRef<std::path::Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    from_bytes(model, &bytes, &path.display().to_string())
}
