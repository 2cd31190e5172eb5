//! # dl-autograd
//!
//! Reverse-mode automatic differentiation on a tape (a Wengert list) over dl-core's
//! kernels. A [`Graph`] owns its nodes, a [`Var`] is a cheap `Copy` handle to one,
//! each node records an inspectable [`Op`] with its inputs, and
//! [`Graph::backward`] walks the tape once in reverse. Trainable tensors are
//! [`Param`]s (value + gradient) that live outside the tape: each step registers
//! them with [`Graph::param`], and backward adds into their gradients.
//!
//! Ops: elementwise arithmetic with broadcasting, `matmul` (2-D and batched 3-D),
//! reductions, layout changes (reshape, permute, concat, slice, index-select),
//! activations, softmax / log-softmax, conv2d, max / average pooling, dropout,
//! batch norm and layer norm; losses with fused backward (cross-entropy with class
//! indices or soft targets, BCE from logits, MSE, MAE, Huber); gradient clipping.
//!
//! Buffers are reused: a node is a slot that keeps its value, gradient and saved
//! data across [`Graph::clear`] (or [`Graph::into_tape`] / [`Graph::from_tape`]
//! between steps), [`Graph::input_ref`] reads inputs in place, parameter gradients
//! are accumulated straight into the [`Param`] (no copy), and
//! [`Param::zero_grad`] is O(1) (the next backward overwrites instead of adding).
//! A training step on a reused tape therefore allocates nothing after the first
//! (dl-core's gemm keeps its packing buffers per thread under `std`).
//!
//! Needs the `alloc` feature (on by default through `std`); without it the crate is
//! empty.
//!
//! A two-layer network and one gradient-descent step:
//!
//! ```
//! use dl_autograd::{Graph, Param};
//! use dl_core::{Rng, Tensor};
//!
//! let mut rng = Rng::seed_from_u64(0);
//! let mut w1 = Param::new(Tensor::rand_normal(&[2, 8], 0.0, 0.5, &mut rng).unwrap());
//! let mut w2 = Param::new(Tensor::rand_normal(&[8, 2], 0.0, 0.5, &mut rng).unwrap());
//! let x = Tensor::from_rows([[0.0f32, 1.0], [1.0, 0.0]]);
//! let labels = [1, 0];
//!
//! let mut g = Graph::new();
//! let xv = g.input(&x);
//! let (p1, p2) = (g.param(&w1), g.param(&w2));
//! let h = g.matmul(xv, p1).unwrap();
//! let h = g.tanh(h).unwrap();
//! let logits = g.matmul(h, p2).unwrap();
//! let loss = g.cross_entropy(logits, &labels).unwrap();
//! g.backward(loss).unwrap();
//! let before = g.value(loss).unwrap().data()[0];
//! drop(g); // ends the borrow of the parameters
//!
//! for p in [&mut w1, &mut w2] {
//!     let (value, grad) = p.value_and_grad_mut();
//!     value.iter_mut().zip(grad.iter()).for_each(|(v, g)| *v -= 0.5 * g);
//!     p.zero_grad();
//! }
//!
//! // The same forward pass in no-grad mode (inference) gives a smaller loss.
//! let mut g = Graph::new_no_grad();
//! let xv = g.input(&x);
//! let (p1, p2) = (g.param(&w1), g.param(&w2));
//! let h = g.matmul(xv, p1).unwrap();
//! let h = g.tanh(h).unwrap();
//! let logits = g.matmul(h, p2).unwrap();
//! let loss = g.cross_entropy(logits, &labels).unwrap();
//! assert!(g.value(loss).unwrap().data()[0] < before);
//! ```
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "alloc")]
mod clip;
pub mod error;
#[cfg(feature = "alloc")]
mod graph;
#[cfg(feature = "alloc")]
pub mod op;
#[cfg(feature = "alloc")]
mod ops;
#[cfg(feature = "alloc")]
mod param;
#[cfg(feature = "alloc")]
mod param_set;

#[cfg(feature = "alloc")]
pub use clip::{clip_grad_norm, clip_grad_value};
pub use error::{Error, Result};
#[cfg(feature = "alloc")]
pub use graph::{Graph, Tape, Var};
#[cfg(feature = "alloc")]
pub use op::{Affine, Op, ReduceOp};
#[cfg(feature = "alloc")]
pub use ops::attention::AttentionSpec;
#[cfg(feature = "alloc")]
pub use ops::linear::linear_into;
#[cfg(feature = "alloc")]
pub use ops::norm::{BatchNormMode, BatchStats};
#[cfg(feature = "alloc")]
pub use ops::recurrent::{RecurrentCell, RecurrentInputs, RecurrentSpec};
#[cfg(feature = "alloc")]
pub use param::{zero_grad, Param};
#[cfg(feature = "alloc")]
pub use param_set::ParamSet;
