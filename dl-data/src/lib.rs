//! # dl-data
//!
//! Everything between files on disk and a model's `fit`: readers and writers for
//! the standard formats (MNIST/Fashion-MNIST IDX, CIFAR-10 binary batches, CSV), an
//! in-memory [`Dataset`], a prefetching [`DataLoader`](loader::DataLoader) with seeded
//! shuffling and image augmentation, preprocessing fitted on training data, splits
//! (train/validation/test, k-fold, stratified k-fold matching scikit-learn), model
//! selection over any [`dl_core::Fit`]/[`dl_core::Predict`] pair (cross-validation,
//! grid, random and Bayesian search), permutation feature importance and metrics.
//!
//! dl-data depends on dl-core only: it knows nothing of autograd or of any model.
//!
//! Features: `alloc` (datasets, preprocessing, splits, model selection, metrics,
//! byte-level readers and the bundled digits/iris sets), `std` (default; file readers
//! and writers with gzip, the threaded `DataLoader`, SVG files). Without `alloc` only
//! the allocation-free pieces remain: augmentation kernels and the Cholesky solver.
//!
//! ```
//! use dl_data::{datasets, split::StratifiedKFold, metrics};
//! let iris = datasets::iris::<f32>().unwrap();
//! assert_eq!((iris.n_samples(), iris.n_features()), (150, 4));
//! let folds = StratifiedKFold::new(5).split(iris.targets()).unwrap();
//! assert_eq!(folds.len(), 5);
//! assert_eq!(metrics::accuracy(&[0, 1, 2], &[0, 1, 1]).unwrap(), 2.0 / 3.0);
//! ```
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod augment;
pub mod error;
pub mod linalg;

#[cfg(feature = "alloc")]
pub mod bayes;
#[cfg(feature = "alloc")]
pub mod dataset;
#[cfg(feature = "alloc")]
pub mod datasets;
#[cfg(feature = "alloc")]
pub mod gp;
#[cfg(feature = "alloc")]
pub mod inspection;
#[cfg(feature = "alloc")]
pub mod io;
#[cfg(feature = "std")]
pub mod loader;
#[cfg(feature = "alloc")]
pub mod metrics;
#[cfg(feature = "alloc")]
pub mod preprocess;
#[cfg(feature = "alloc")]
pub mod selection;
#[cfg(feature = "alloc")]
pub mod split;

#[cfg(feature = "alloc")]
pub use dataset::Dataset;
pub use error::{Error, Result};
