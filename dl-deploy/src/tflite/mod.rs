//! TensorFlow Lite interop: reading a `.tflite` file into a [`Graph`] that
//! [`crate::encode()`] writes as a blob, with every number the file holds (weights,
//! biases, scales and zero points) kept as it is, never recalibrated; and writing a
//! [`Graph`] (f32, or int8 from [`crate::quantize()`]) as a `.tflite` file that
//! TensorFlow Lite Micro runs ([`export()`]), by the same conventions in reverse.
//! [`import()`] of an exported file gives back the graph, tensor ids and all, so it
//! encodes to the same blob.
//!
//! ```no_run
//! use dl_deploy::{encode, tflite, AlignedBlob, HeapArena, Model};
//! let bytes = std::fs::read("sine.tflite").unwrap();
//! let g = tflite::import(&bytes)?;
//! let (blob, plan) = encode(&g)?;
//! let blob = AlignedBlob::new(&blob);
//! let model: Model = Model::from_bytes(blob.bytes())?;
//! let mut arena = HeapArena::new(plan.arena_len);
//! let (mut y, x) = ([0i8; 1], [-10i8]);
//! model.run(arena.bytes(), &x, &mut y)?;
//! # Ok::<(), dl_deploy::Error>(())
//! ```
//!
//! The file is checked by the FlatBuffers verifier before anything is read from it
//! ([`Error::Corrupt`] with the byte offset), then every operator is mapped onto the
//! engine's ops ([`Error::TfLite`] names the operator's index and builtin name when
//! it cannot be, or when a tensor's shape or type disagrees with its op).
//!
//! How the file's numbers map onto the graph (TensorFlow Lite's quantization spec):
//! - activations: int8 with one scale and zero point per tensor ([`QParams`]);
//! - weights of `FULLY_CONNECTED`, `CONV_2D` and `DEPTHWISE_CONV_2D`: symmetric int8
//!   (zero points 0) with one scale per output channel, or one for the whole tensor
//!   (repeated per channel); biases int32 as stored. [`crate::encode()`] derives the
//!   requantization (`input_scale * weight_scale[o] / output_scale` in f64, to a Q31
//!   multiplier and shift) exactly as TensorFlow Lite Micro's `Prepare` does;
//! - layouts: `FULLY_CONNECTED` weights are `[out, in]` and `CONV_2D` filters OHWI,
//!   both as the engine takes them; a `DEPTHWISE_CONV_2D` filter `[1, kh, kw, c_out]`
//!   is transposed to `[c_out, kh, kw, 1]` for a convolution with `c_in` groups;
//! - padding: `SAME` pads `total = max((out - 1) * stride + span - size, 0)` with
//!   `total / 2` at the top/left and the rest at the bottom/right; the output size
//!   comes from the file and the engine accepts the odd extra row or column;
//! - `RESHAPE` is a view (no op runs), `MEAN` over height and width is global
//!   average pooling, `LOGISTIC`, `TANH`, `RELU` and `RELU6` on their own are
//!   element-wise ops (256-entry tables in int8).

mod export;
mod import;
/// flatc's Rust for TensorFlow Lite's schema (`tflite::Model` and every table it
/// reaches, readers and builders): generated, not edited; the file's header says how
/// to regenerate it. Crate-private so that the importer and a future exporter share
/// it without making the generated API part of ours.
#[allow(
    dead_code,
    unused_imports,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    mismatched_lifetime_syntaxes,
    clippy::all,
    clippy::pedantic
)]
#[rustfmt::skip]
pub(crate) mod schema;

pub use export::export;
pub use import::import;

#[cfg(doc)]
use crate::{Error, Graph, QParams};

#[cfg(test)]
mod tests;
