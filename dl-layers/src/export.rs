//! Export to a microcontroller: a trained model becomes a [`dl_deploy::Graph`], which
//! dl-deploy quantizes, plans and writes as a blob the device runs with no heap.
//!
//! Every layer lowers itself through [`Module::lower`], in evaluation mode: batch
//! norm folds into the convolution or linear layer before it, dropout disappears,
//! ReLU and ReLU6 fuse into the layer before them. A layer with no deployable form
//! is an error here, naming the layer and its index, never on the device.
//!
//! ```
//! use dl_core::Rng;
//! use dl_layers::{export, Activation, LinearConfig, Sequential};
//! let mut rng = Rng::seed_from_u64(0);
//! let model = Sequential::new()
//!     .push(LinearConfig::new(4, 8).init::<f32>(&mut rng)?)
//!     .push(Activation::Relu)
//!     .push(LinearConfig::new(8, 3).init::<f32>(&mut rng)?);
//! let graph = export::export(&model, &[1, 4])?;
//! assert_eq!(graph.nodes.len(), 2); // the ReLU is fused
//! let gelu = Sequential::<f32>::new().push(Activation::Gelu);
//! let e = export::export(&gelu, &[1, 4]).unwrap_err();
//! assert!(e.to_string().contains("layer 0 (Activation)"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::module::Module;
use alloc::boxed::Box;
use alloc::vec::Vec;
use dl_core::{Scalar, Tensor};
use dl_deploy::{Error, Graph, Result, TensorId};

/// Lowers `model` (in evaluation mode) for an input of PyTorch's shape
/// (`[n, c, h, w]` for images, `[n, features]` for vectors).
pub fn export<T: Scalar>(model: &dyn Module<T>, input_shape: &[usize]) -> Result<Graph> {
    let mut g = Graph::new(input_shape)?;
    let x = g.input;
    let y = model.lower(&mut g, x)?;
    g.set_output(y)?;
    Ok(g)
}

/// The error of a layer `M` that cannot be deployed, named by its type (without
/// its module path).
pub(crate) fn unsupported<M: ?Sized>(why: &'static str) -> Error {
    let full = core::any::type_name::<M>();
    let path_end = full.find('<').unwrap_or(full.len());
    let start = full[..path_end].rfind("::").map_or(0, |i| i + 2);
    Error::UnsupportedLayer {
        index: 0,
        layer: &full[start..path_end],
        why,
    }
}

/// A tensor's values as f32 (the deployment engine's float type).
pub(crate) fn f32s<T: Scalar>(t: &Tensor<T>) -> Vec<f32> {
    t.data()
        .iter()
        .map(|v| v.to_f64_lossless() as f32)
        .collect()
}

/// Lowers layers in order; an error names the position of the layer that failed.
pub(crate) fn lower_all<T: Scalar>(
    layers: &[Box<dyn Module<T>>],
    g: &mut Graph,
    mut x: TensorId,
) -> Result<TensorId> {
    for (i, l) in layers.iter().enumerate() {
        x = l.lower(g, x).map_err(|e| match e {
            Error::UnsupportedLayer { layer, why, .. } => Error::UnsupportedLayer {
                index: i,
                layer,
                why,
            },
            other => other,
        })?;
    }
    Ok(x)
}
