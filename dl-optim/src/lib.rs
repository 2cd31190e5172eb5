//! # dl-optim
//!
//! Optimizers, learning-rate schedules, regularizers and early stopping, with the
//! formulas and defaults of `torch.optim` (each module's doc gives its update rule):
//! [`sgd`] (with momentum and Nesterov), [`adam`] (Adam, AMSGrad, AdamW), [`nadam`],
//! [`adagrad`], [`adadelta`], [`rmsprop`]; [`schedule`] (step, exponential, cosine,
//! linear warmup) and [`plateau`] (reduce-on-plateau); [`regularization`] (L1, L2,
//! elastic net); [`early_stopping`].
//!
//! It does not build models (dl-layers) or compute gradients (dl-autograd): an
//! optimizer reads the gradients `backward` left in each `Param` and updates values.
//!
//! ```
//! use dl_autograd::{Graph, Param};
//! use dl_core::Tensor;
//! use dl_optim::{AdamConfig, Optimizer};
//! // Minimize (w - 3)^2 with Adam.
//! let mut w = Param::new(Tensor::from_array([0.0f64]));
//! let mut opt = AdamConfig::new(0.1).build().unwrap();
//! for _ in 0..500 {
//!     w.zero_grad();
//!     let mut g = Graph::new();
//!     let x = g.param(&w);
//!     let three = g.input(&Tensor::from_array([3.0]));
//!     let d = g.sub(x, three).unwrap();
//!     let loss = g.mul(d, d).unwrap();
//!     g.backward(loss).unwrap();
//!     drop(g);
//!     opt.step(&mut w).unwrap();
//! }
//! assert!((w.value().data()[0] - 3.0).abs() < 1e-3);
//! ```
#![no_std]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod early_stopping;
pub mod error;
pub mod nadam;
pub mod optimizer;
pub mod params;
pub mod plateau;
pub mod regularization;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
pub mod svg;
#[cfg(feature = "std")]
pub mod trainer;

pub use adadelta::{Adadelta, AdadeltaConfig};
pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use early_stopping::{EarlyStopping, Verdict};
pub use error::{Error, Result};
pub use nadam::{Nadam, NadamConfig};
pub use optimizer::Optimizer;
pub use params::{zero_grad, ParamSet};
pub use plateau::{Mode, PlateauConfig, ReduceLrOnPlateau};
pub use regularization::Penalty;
pub use rmsprop::{Rmsprop, RmspropConfig};
pub use schedule::{Constant, CosineDecay, ExponentialDecay, LrSchedule, StepDecay, Warmup};
pub use sgd::{Sgd, SgdConfig};
