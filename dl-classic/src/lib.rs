//! # dl-classic
//!
//! The classic methods of an introductory machine-learning course, at
//! scikit-learn's accuracy, in the estimator vocabulary of dl-core: a
//! hyper-parameter struct (with `Default`, builder setters and `validate()`)
//! implements [`dl_core::Fit`] and returns a separate fitted model that
//! implements [`dl_core::Predict`]. Every method is generic over
//! [`dl_core::Scalar`] (`f32` and `f64`) and takes samples as the rows of a
//! [`dl_core::MatRef`].
//!
//! One module per method, named by the course's word:
//! - supervised: [`knn`] (classifier and [`knn::KNeighborsRegressor`]), [`linear`] (least squares, ridge, perceptron),
//!   [`logistic`], [`naive_bayes`], [`gda`] (LDA/QDA), [`svm`] (linear and kernel),
//!   [`tree`] (CART), [`forest`] (classifier and
//!   [`forest::RandomForestRegressor`]), [`bagging`], [`adaboost`],
//!   [`gradient_boosting`], [`hist_gradient_boosting`];
//! - regression smoothers: [`kernel_regression`] (Nadaraya-Watson), [`loess`];
//! - unsupervised: [`pca`], [`factor_analysis`], [`kmeans`], [`gmm`],
//!   [`mean_shift`], [`spectral`], [`kde`];
//! - sequences: [`hmm`];
//! - dense linear algebra on slices (no allocation): [`linalg`];
//! - deployment to a microcontroller (trees, forests, Gaussian naive Bayes, linear
//!   models, through dl-deploy): [`export`].
//!
//! Every `fit` checks its input first and returns a named [`Error`] (empty data,
//! `x`/`y` length mismatch, NaN position, too few samples, singular matrix with the
//! regularization option to use, invalid hyper-parameter with its valid range).
//!
//! dl-classic knows nothing of autograd. Without `alloc` only [`linalg`] and
//! [`error`] are available; `std` (the default) adds threads for forests and bagging.
//!
//! ```
//! use dl_classic::knn::KNeighborsClassifier;
//! use dl_core::{Fit, MatRef, Predict};
//! let x = [0.0f64, 0.0, 0.1, 0.0, 5.0, 5.0, 5.1, 5.0];
//! let y = [0usize, 0, 1, 1];
//! let model = KNeighborsClassifier::new(1).fit(MatRef::new(&x, 4, 2).unwrap(), &y).unwrap();
//! let pred = model.predict(MatRef::new(&[4.9, 5.2], 1, 2).unwrap()).unwrap();
//! assert_eq!(pred, vec![1]);
//! ```
#![no_std]
#![warn(missing_docs)]
// Matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "alloc")]
pub mod adaboost;
#[cfg(feature = "alloc")]
pub mod bagging;
pub mod error;
#[cfg(feature = "alloc")]
pub mod export;
#[cfg(feature = "alloc")]
pub mod factor_analysis;
#[cfg(feature = "alloc")]
pub mod forest;
pub mod linalg;

#[cfg(feature = "alloc")]
pub mod gda;
#[cfg(feature = "alloc")]
pub mod gmm;
#[cfg(feature = "alloc")]
pub mod gradient_boosting;
#[cfg(feature = "alloc")]
pub mod hist_gradient_boosting;
#[cfg(feature = "alloc")]
pub mod hmm;
#[cfg(feature = "alloc")]
pub mod kde;
#[cfg(feature = "alloc")]
pub mod kernel_regression;
#[cfg(feature = "alloc")]
pub mod kmeans;
#[cfg(feature = "alloc")]
pub mod knn;
#[cfg(feature = "alloc")]
pub mod linear;
#[cfg(feature = "alloc")]
pub mod loess;
#[cfg(feature = "alloc")]
pub mod logistic;
#[cfg(feature = "alloc")]
pub mod mean_shift;
#[cfg(feature = "alloc")]
pub mod naive_bayes;
#[cfg(feature = "alloc")]
mod optim;
#[cfg(feature = "alloc")]
pub mod pca;
#[cfg(feature = "alloc")]
pub mod spectral;
#[cfg(feature = "alloc")]
pub mod svm;
#[cfg(feature = "alloc")]
pub mod tree;

pub use error::{Error, Result};
