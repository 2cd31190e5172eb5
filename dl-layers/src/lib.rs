//! # dl-layers
//!
//! Layers and models on top of dl-autograd: the [`Module`] trait (forward on a graph,
//! named parameters and buffers, explicit train/eval via [`Ctx`]), [`Sequential`],
//! [`Linear`], [`Activation`]s, [`Flatten`], [`Dropout`], [`BatchNorm`],
//! [`LayerNorm`], [`Conv2d`], [`Pool2d`] (max, average, global average),
//! [`ResidualBlock`] and the [`resnet`] constructors, and safetensors
//! [`checkpoint`]s. Sequence layers: [`Recurrent`] (RNN, LSTM, GRU in PyTorch's
//! layout), [`Bidirectional`], [`Embedding`], [`MultiheadAttention`],
//! [`PositionalEncoding`] and the [`transformer`] blocks. Initialization follows
//! PyTorch's defaults.
//!
//! It does not train (dl-optim has optimizers, schedules and the `Trainer`).
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::{Rng, Tensor};
//! use dl_layers::{Activation, Ctx, Linear, Module, Sequential};
//! // The course's toy network: two sigmoid layers of two neurons map [1, -1] to
//! // [0.98, 0.12], then [0.86, 0.11], then [0.62, 0.83].
//! let layer = |w: [[f64; 2]; 2], b: [f64; 2]| {
//!     Linear::from_weights(Tensor::from_rows(w), Some(Tensor::from_array(b))).unwrap()
//! };
//! let net = Sequential::new()
//!     .push(layer([[1.0, -2.0], [-1.0, 1.0]], [1.0, 0.0]))
//!     .push(Activation::Sigmoid)
//!     .push(layer([[2.0, -1.0], [-2.0, -1.0]], [0.0, 0.0]))
//!     .push(Activation::Sigmoid)
//!     .push(layer([[3.0, -1.0], [-1.0, 4.0]], [-2.0, 2.0]))
//!     .push(Activation::Sigmoid);
//! let y = dl_layers::predict(&net, &Tensor::from_rows([[1.0, -1.0]])).unwrap();
//! assert!((y.data()[0] - 0.62).abs() < 0.005 && (y.data()[1] - 0.83).abs() < 0.005);
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod activation;
pub mod attention;
pub mod bidirectional;
pub mod checkpoint;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod error;
pub mod export;
pub mod gru;
pub mod linear;
pub mod lstm;
pub mod module;
pub mod norm;
pub mod pool;
pub mod positional;
pub mod residual;
pub mod resnet;
pub mod rnn;
pub mod sequential;
pub mod transformer;

pub use activation::{Activation, Flatten};
pub use attention::{
    attention_weights, per_position, scaled_dot_product_attention, AttentionMask,
    MultiheadAttention,
};
pub use bidirectional::Bidirectional;
pub use conv::{Conv2d, Conv2dConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use error::{Error, Result};
pub use gru::Gru;
pub use linear::{Linear, LinearConfig};
pub use lstm::Lstm;
pub use module::{infer_on_graph, predict, Ctx, Entry, EntryMut, Module, Path};
pub use norm::{BatchNorm, LayerNorm};
pub use pool::Pool2d;
pub use positional::PositionalEncoding;
pub use residual::ResidualBlock;
pub use rnn::{
    CellKind, Nonlinearity, Recurrent, RecurrentConfig, Rnn, SeqOptions, SeqOutput, SequenceLayer,
};
pub use sequential::Sequential;
pub use transformer::{CausalTransformer, EncoderBlock, TransformerConfig, TransformerEncoder};
