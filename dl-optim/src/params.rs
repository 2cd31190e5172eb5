//! Parameter sets (re-exported from dl-autograd, where models implement it) and a
//! `zero_grad` over any of them.

use dl_core::Scalar;

pub use dl_autograd::ParamSet;

/// Sets every gradient in `params` to zero.
pub fn zero_grad<T: Scalar>(params: &mut dyn ParamSet<T>) {
    params.for_each_param(&mut |p| p.zero_grad());
}
