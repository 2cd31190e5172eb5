//! # dl-core
//!
//! The bottom of the stack: the element type ([`Scalar`]), shapes ([`Shape`]),
//! allocation-free kernels on slices (gemm, conv2d, pooling, elementwise ops with
//! broadcasting, reductions, softmax, distances, layout changes), a seeded RNG and
//! weight initializers, and — with the `alloc` feature — an owned [`Tensor`].
//!
//! It is **not** an autodiff engine (that is `dl-autograd`) and has no layers or
//! models. Every kernel takes input slices, sizes and a caller-owned output buffer, so
//! the same code serves a microcontroller (no heap) and a desktop (threads, SIMD).
//!
//! Features: `alloc` (owned `Tensor`; packed SIMD gemm), `std` (default;
//! implies `alloc`; threaded gemm with runtime SIMD dispatch and batch-parallel conv).
//!
//! ```
//! use dl_core::{gemm, Tensor};
//! let a = Tensor::from_rows([[1.0f32, 2.0], [3.0, 4.0]]);
//! let b = Tensor::from_rows([[5.0f32, 6.0], [7.0, 8.0]]);
//! let c = a.matmul(&b).unwrap();
//! assert_eq!(c.data(), &[19.0, 22.0, 43.0, 50.0]);
//! // The same product on plain slices, into a caller-owned buffer:
//! let mut out = [0.0f32; 4];
//! gemm::matmul(a.data(), b.data(), &mut out, 2, 2, 2).unwrap();
//! assert_eq!(out, [19.0, 22.0, 43.0, 50.0]);
//! ```
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod conv;
pub mod distance;
pub mod elementwise;
pub mod error;
pub mod estimator;
pub mod gemm;
pub mod init;
pub mod layout;
pub mod nhwc;
mod par;
pub mod pool;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod rng;
pub mod scalar;
pub mod shape;
pub mod softmax;
#[cfg(feature = "alloc")]
pub mod tensor;
pub mod vmath;

pub use error::{Error, Result};
pub use estimator::{Fit, MatRef, Predict};
pub use rng::Rng;
pub use scalar::Scalar;
pub use shape::{Shape, MAX_RANK};
#[cfg(feature = "alloc")]
pub use tensor::Tensor;
