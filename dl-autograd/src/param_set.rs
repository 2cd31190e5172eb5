//! `ParamSet`: anything whose trainable parameters can be visited in a fixed order —
//! one `Param`, a slice or `Vec` of them, or a model (dl-layers' `Module`s implement
//! it). Optimizers keep per-parameter state by visiting order, so visiting allocates nothing.

use crate::param::Param;
use alloc::vec::Vec;
use dl_core::Scalar;

/// A collection of parameters visited in a fixed order.
pub trait ParamSet<T: Scalar> {
    /// Calls `f` on every parameter, always in the same order.
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>));
}

impl<T: Scalar> ParamSet<T> for Param<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(self)
    }
}

impl<T: Scalar> ParamSet<T> for [Param<T>] {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.iter_mut().for_each(f)
    }
}

impl<T: Scalar> ParamSet<T> for Vec<Param<T>> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        self.iter_mut().for_each(f)
    }
}

impl<T: Scalar> ParamSet<T> for [&mut Param<T>] {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        for p in self.iter_mut() {
            f(p)
        }
    }
}
