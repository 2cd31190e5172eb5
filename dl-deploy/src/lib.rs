//! # dl-deploy
//!
//! Deploys a trained model to a microcontroller: the model becomes a compact blob
//! that the engine reads in place from flash, with every activation in one arena the
//! caller provides, sized at export from the tensors' lifetimes. No heap, no copy of
//! the weights, no panic; int8 follows TensorFlow Lite's quantization spec.
//!
//! - Export (`alloc`): a model lowers itself to a [`Graph`] (dl-layers' `export`, or
//!   the graph builder directly), [`quantize()`] turns it to int8 with ranges
//!   calibrated on data you pass, [`encode()`] writes the blob and plans the arena.
//! - Deployment (no heap): [`Model::from_bytes`] checks the blob once (CRC, every
//!   record, shape and offset), [`Model::run`] runs it in an [`Arena`].
//!
//! ```
//! use dl_deploy::{encode, quantize, AlignedBlob, Graph, HeapArena, Model, QuantizeConfig};
//! // y = relu(x W1^T + b1) W2^T + b2, a 2-3-2 network.
//! let mut g = Graph::new(&[1, 2])?;
//! let h = g.dense(g.input, &[1.0, -1.0, 0.5, 0.5, -1.0, 1.0], Some(&[0.0, 0.1, 0.0]), 3)?;
//! let h = g.unary(h, dl_deploy::op::Unary::Relu)?;
//! g.dense(h, &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], None, 2)?;
//! // f32 on the device:
//! let (bytes, plan) = encode(&g)?;
//! let blob = AlignedBlob::new(&bytes);
//! let model: Model = Model::from_bytes(blob.bytes())?;
//! let mut arena = HeapArena::new(plan.arena_len);
//! let mut y = [0.0f32; 2];
//! model.run(arena.bytes(), &[1.0f32, 2.0], &mut y)?;
//! // h = relu([-1, 1.6, 1]) = [0, 1.6, 1], y = [0 - 1, 0.8 + 0.5]
//! assert_eq!(y, [-1.0, 0.5 * 1.6 + 0.5 * 1.0]);
//! // int8, calibrated on a few inputs:
//! let calibration: Vec<f32> = (0..30).map(|i| (i as f32 - 15.0) / 5.0).collect();
//! let q = quantize(&g, &calibration, QuantizeConfig { int8_output: false })?;
//! let (bytes, plan) = encode(&q)?;
//! let blob = AlignedBlob::new(&bytes);
//! let model: Model = Model::from_bytes(blob.bytes())?;
//! let mut arena = HeapArena::new(plan.arena_len);
//! model.run(arena.bytes(), &[1.0f32, 2.0], &mut y)?;
//! assert!((y[1] - 1.3).abs() < 0.05);
//! # Ok::<(), dl_deploy::Error>(())
//! ```
//!
//! - TensorFlow Lite (`alloc`): [`tflite::import`] reads a `.tflite` file (int8 or
//!   f32) into a [`Graph`] with the file's own weights and quantization, which
//!   [`encode()`] writes as any other: in a firmware's `build.rs` or on a desktop;
//!   [`tflite::export`] writes a graph (ours, f32 or quantized) as a `.tflite` file
//!   that TensorFlow Lite Micro runs with the same int8 outputs.
//! - On a desktop (`alloc`): [`Prepared::from_model`] prepares a checked model once
//!   (int8 dense weights packed for the CPU's fastest kernel, AVX-512 VNNI on x86-64,
//!   parameters checked once) and [`Prepared::run`] runs it with the same bytes as
//!   [`Model::run`]: the path to call for speed (several times faster on small int8
//!   models, where per-call checks and packing dominate).
//!
//! The op set a firmware links is a compile-time parameter of [`Model`] (see
//! [`op::op_set`]); `build.rs` can compute it from the blob with
//! [`Model::op_kinds`], so a firmware carries exactly the kernels its model uses.
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(target_endian = "big")]
compile_error!("dl-deploy reads weights in place as little-endian values");

pub mod classic;
#[cfg(feature = "alloc")]
pub mod codegen;
#[cfg(feature = "alloc")]
pub mod encode;
pub mod error;
pub mod format;
#[cfg(feature = "alloc")]
pub mod graph;
#[cfg(feature = "alloc")]
pub mod host;
pub mod model;
pub mod op;
#[cfg(feature = "alloc")]
pub mod plan;
#[cfg(feature = "alloc")]
pub mod prepared;
pub mod program;
#[cfg(feature = "alloc")]
pub mod quantize;
#[cfg(feature = "alloc")]
pub mod tflite;

pub use dl_core;
#[cfg(feature = "alloc")]
pub use encode::encode;
pub use error::{Error, Result};
pub use format::{DType, Element};
#[cfg(feature = "alloc")]
pub use graph::RecurrentLayer;
#[cfg(feature = "alloc")]
pub use graph::{ConvParams, Graph, Node, PoolParams, QParams, TensorId, Weights};
#[cfg(feature = "alloc")]
pub use host::{AlignedBlob, HeapArena};
pub use model::{Arena, Model, TensorInfo};
pub use op::{Act, OpKind, Unary};
#[cfg(feature = "alloc")]
pub use plan::{plan, Plan};
#[cfg(feature = "alloc")]
pub use prepared::Prepared;
pub use program::Program;
#[cfg(feature = "alloc")]
pub use quantize::{quantize, QuantizeConfig};

/// Includes a blob file as 16-byte-aligned `&'static [u8]`, so [`Model::from_bytes`]
/// reads its weights in place from flash: `static BLOB: &[u8] = include_model!("m.dlm");`.
#[macro_export]
macro_rules! include_model {
    ($path:expr) => {{
        #[repr(C, align(16))]
        struct Aligned<B: ?Sized>(B);
        static ALIGNED: &Aligned<[u8]> = &Aligned(*include_bytes!($path));
        &ALIGNED.0
    }};
}
