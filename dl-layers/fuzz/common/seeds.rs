//! The seed corpus of the `checkpoint` target: valid checkpoints of the harness's
//! model (f32 and f64, written by `checkpoint::to_bytes` from models of other
//! seeds), and one broken copy for each way a load can fail, so the fuzzer starts
//! next to every check of `from_bytes`. `dl-layers/tests/checkpoint.rs` loads each
//! broken seed and checks the error it gives.
#![allow(dead_code)]

use crate::harness::model;
use dl_core::Scalar;
use dl_layers::{checkpoint, LinearConfig};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// A valid checkpoint of the harness's model built from `seed`.
pub fn valid<T: Scalar>(seed: u64) -> Vec<u8> {
    checkpoint::to_bytes(&model::<T>(seed)).unwrap()
}

/// The header length `n` of a safetensors file (its first 8 bytes).
pub fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// Byte offset in the file of tensor `name`'s data.
pub fn data_offset(bytes: &[u8], name: &str) -> usize {
    let st = SafeTensors::deserialize(bytes).unwrap();
    st.tensor(name).unwrap().data().as_ptr() as usize - bytes.as_ptr() as usize
}

/// `bytes` with element `i` of tensor `name` replaced by `value` (its little-endian
/// bytes, of the tensor's element size).
pub fn with_value(bytes: &[u8], name: &str, i: usize, value: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = data_offset(bytes, name) + i * value.len();
    out[at..at + value.len()].copy_from_slice(value);
    out
}

/// `bytes` rewritten with tensor `name` given dtype `dtype` (same data bytes: the
/// dtype must have the same size).
pub fn with_dtype(bytes: &[u8], name: &str, dtype: Dtype) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let views: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let d = if n == name { dtype } else { v.dtype() };
            let view = TensorView::new(d, v.shape().to_vec(), v.data()).unwrap();
            (n, view)
        })
        .collect();
    safetensors::tensor::serialize(views, None).unwrap()
}

/// `bytes` with the first occurrence of `from` in the header replaced by `to`.
pub fn patch_header(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let n = header_len(bytes);
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at = header.find(from).expect("pattern in the header");
    let new = format!("{}{to}{}", &header[..at], &header[at + from.len()..]);
    let mut out = (new.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// The seeds by file name.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let ok32 = valid::<f32>(2);
    let ok64 = valid::<f64>(3);
    let n = header_len(&ok32);
    let mut rng = dl_core::Rng::seed_from_u64(4);
    let extra = checkpoint::to_bytes(
        &model::<f32>(5).push(LinearConfig::new(3, 2).init(&mut rng).unwrap()),
    )
    .unwrap();
    // The model without its LSTM.
    let missing = checkpoint::to_bytes(
        &dl_layers::Sequential::<f32>::new()
            .push(LinearConfig::new(3, 4).init(&mut rng).unwrap())
            .push(
                dl_layers::Conv2dConfig::new(2, 3, 2)
                    .init(&mut rng)
                    .unwrap(),
            )
            .push(dl_layers::BatchNorm::new(3).unwrap()),
    )
    .unwrap();
    let wrong_shape = checkpoint::to_bytes(
        &dl_layers::Sequential::<f32>::new().push(LinearConfig::new(3, 5).init(&mut rng).unwrap()),
    )
    .unwrap();
    let mut header_too_long = ok32.clone();
    header_too_long[..8].copy_from_slice(&(n as u64 + 1000).to_le_bytes());
    let mut not_utf8 = ok32.clone();
    not_utf8[9] = 0xff;
    let mut padded = ok32.clone();
    padded.extend_from_slice(&[0; 3]);
    let s = vec![
        ("valid-f32", ok32.clone()),
        ("valid-f64", ok64.clone()),
        ("unexpected-tensor", extra),
        ("missing-tensor", missing),
        ("wrong-shape", wrong_shape),
        ("dtype-i32", with_dtype(&ok32, "1.weight", Dtype::I32)),
        (
            "nan-f32",
            with_value(&ok32, "0.weight", 5, &f32::NAN.to_le_bytes()),
        ),
        (
            "inf-f64",
            with_value(&ok64, "3.weight_hh_l0", 7, &f64::INFINITY.to_le_bytes()),
        ),
        (
            "f64-beyond-f32",
            with_value(&ok64, "2.running_mean", 1, &1e300f64.to_le_bytes()),
        ),
        ("truncated", ok32[..ok32.len() - 6].to_vec()),
        ("truncated-header", ok32[..8 + n / 2].to_vec()),
        ("padded", padded),
        ("header-length-past-the-end", header_too_long),
        ("header-not-utf8", not_utf8),
        ("header-not-json", patch_header(&ok32, "{", "[")),
        (
            "bad-data-offsets",
            patch_header(&ok32, "\"data_offsets\":[0,", "\"data_offsets\":[4,"),
        ),
        ("short-length-field", ok32[..5].to_vec()),
        // Rank 7 (dl-core's shapes stop at 6), the same element count.
        (
            "rank-7",
            patch_header(&ok32, "\"shape\":[4,3]", "\"shape\":[4,3,1,1,1,1,1]"),
        ),
    ];
    s.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
