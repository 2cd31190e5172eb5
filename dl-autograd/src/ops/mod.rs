//! The differentiable ops, one module per family. Each module adds the forward
//! methods to [`crate::Graph`] and defines the matching backward right beside them
//! (called from the single dispatch in `graph.rs`).

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod parts;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod softmax;
