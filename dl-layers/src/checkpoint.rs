//! Checkpoints in the safetensors format: every parameter and buffer by its dotted
//! name (`0.weight`, `3.running_mean`, ...). Reading works without std (from bytes),
//! so a model trained on the desktop loads on a microcontroller; files are written
//! atomically (temporary file, then rename) under std.
//!
//! Loading checks names and shapes and reports the first mismatch; f32 and f64 files
//! load into either element type.

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

/// The model's parameters and buffers as safetensors bytes.
pub fn to_bytes<T: Scalar>(model: &dyn Module<T>) -> Result<Vec<u8>> {
    let mut names: Vec<String> = Vec::new();
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    model.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
        let v = e.value();
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
        expected: alloc::format!("a valid safetensors file ({e:?})"),
    }
}

/// Byte offset at which a tensor's data starts in the file (header length + 8 + its
/// data offset), for error messages.
fn data_start(bytes: &[u8], view_data: &[u8]) -> usize {
    (view_data.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize)
}

/// Loads every parameter and buffer of `model` from safetensors `bytes`; `source`
/// names where they came from in errors. Fails on the first missing tensor, shape
/// mismatch or unsupported dtype, and on tensors the model does not have; the model
/// is only modified when everything checks out.
pub fn from_bytes<T: Scalar>(model: &mut dyn Module<T>, bytes: &[u8], source: &str) -> Result<()> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| format_error(source, 0, &e))?;
    // Pass 1: check everything without touching the model.
    let mut first_err: Option<Error> = None;
    let mut seen = 0usize;
    model.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
        if first_err.is_some() {
            return;
        }
        seen += 1;
        let expected = *e.value().shape();
        match st.tensor(name) {
            Err(_) => {
                first_err = Some(Error::MissingTensor {
                    source: source.to_string(),
                    name: name.to_string(),
                })
            }
            Ok(view) => {
                let found = match Shape::new(view.shape()) {
                    Ok(s) => s,
                    Err(err) => {
                        first_err = Some(err.into());
                        return;
                    }
                };
                if found != expected {
                    first_err = Some(Error::TensorShape {
                        source: source.to_string(),
                        name: name.to_string(),
                        expected,
                        found,
                    });
                } else if !matches!(view.dtype(), Dtype::F32 | Dtype::F64) {
                    first_err = Some(Error::Format {
                        source: source.to_string(),
                        offset: data_start(bytes, view.data()),
                        expected: alloc::format!(
                            "F32 or F64 data for `{name}`, found {:?}",
                            view.dtype()
                        ),
                    });
                }
            }
        }
    });
    if let Some(e) = first_err {
        return Err(e);
    }
    if st.len() != seen {
        let mut known = Vec::new();
        model.visit(&mut Path::new(), &mut |name, _| {
            known.push(name.to_string())
        });
        if let Some(extra) = st
            .names()
            .into_iter()
            .find(|n| !known.iter().any(|k| k == n))
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
        decode_into(view.dtype(), view.data(), dst);
    });
    Ok(())
}

fn decode_into<T: Scalar>(dtype: Dtype, data: &[u8], dst: &mut [T]) {
    match dtype {
        Dtype::F32 => {
            for (d, c) in dst.iter_mut().zip(data.chunks_exact(4)) {
                *d = T::from_f64_lossy(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64);
            }
        }
        _ => {
            for (d, c) in dst.iter_mut().zip(data.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                *d = T::from_f64_lossy(f64::from_le_bytes(b));
            }
        }
    }
}

/// Writes `model` to `path` atomically: to `path.tmp` first, synced, then renamed,
/// so a crash never leaves a half-written checkpoint in place of the previous one.
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
