//! `Param`: a trainable tensor (value + gradient) that lives outside the tape.
//!
//! A model owns its `Param`s across steps; each step registers them on a fresh (or
//! cleared) [`crate::Graph`] with [`crate::Graph::param`], and `backward` adds the
//! loss gradient into [`Param::grad`]. The gradient sits in a `RefCell` because the
//! graph only holds a shared borrow of the parameter while it runs; an optimizer,
//! holding `&mut Param`, reaches both halves without any runtime check
//! ([`Param::value_and_grad_mut`]).

use crate::error::{shape_mismatch, Result};
use core::cell::{Cell, Ref, RefCell};
use dl_core::{Scalar, Tensor};

/// A trainable tensor and the gradient accumulated into it.
///
/// ```
/// use dl_autograd::{Graph, Param};
/// use dl_core::Tensor;
/// let w = Param::new(Tensor::from_array([3.0f64]));
/// let mut g = Graph::new();
/// let x = g.param(&w);
/// let y = g.mul(x, x).unwrap(); // y = w^2, dy/dw = 2w = 6
/// g.backward(y).unwrap();
/// assert_eq!(w.grad().data(), &[6.0]);
/// ```
#[derive(Debug)]
pub struct Param<T: Scalar = f32> {
    value: Tensor<T>,
    grad: RefCell<Tensor<T>>,
    /// The gradient is zero but its buffer was not cleared yet: [`Param::zero_grad`]
    /// only sets this (O(1)), and the next backward *overwrites* the buffer instead
    /// of adding to it (PyTorch's `set_to_none`, without the `None`).
    zeroed: Cell<bool>,
}

impl<T: Scalar> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param {
            value: self.value.clone(),
            grad: RefCell::new(self.grad().clone()),
            zeroed: Cell::new(false),
        }
    }
}

impl<T: Scalar> Param<T> {
    /// A parameter holding `value`, with a zero gradient of the same shape.
    pub fn new(value: Tensor<T>) -> Self {
        let grad = value.map(|_| T::ZERO);
        Param {
            value,
            grad: RefCell::new(grad),
            zeroed: Cell::new(false),
        }
    }

    /// The current value.
    #[inline]
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// The value's elements, mutable (the shape cannot change; see
    /// [`Param::set_value`]).
    #[inline]
    pub fn value_mut(&mut self) -> &mut [T] {
        self.value.data_mut()
    }

    /// Replaces the value (e.g. from a checkpoint); errors unless the shape matches.
    pub fn set_value(&mut self, value: Tensor<T>) -> Result<()> {
        if value.shape() != self.value.shape() {
            return Err(shape_mismatch(
                "Param::set_value",
                *self.value.shape(),
                *value.shape(),
                "shapes must be equal",
            ));
        }
        self.value = value;
        Ok(())
    }

    /// The accumulated gradient (same shape as the value).
    ///
    /// Panics only if a graph's `backward` is running on this parameter at the same
    /// time, which the borrow rules make impossible from one thread.
    pub fn grad(&self) -> Ref<'_, Tensor<T>> {
        if self.zeroed.get() {
            // No `Ref` can be alive here: `zero_grad` took `&mut self`, and this is
            // the first look since.
            self.grad.borrow_mut().data_mut().fill(T::ZERO);
            self.zeroed.set(false);
        }
        self.grad.borrow()
    }

    /// The gradient, mutable (no runtime check: `&mut self` proves exclusivity).
    pub fn grad_mut(&mut self) -> &mut Tensor<T> {
        self.materialize_zero();
        self.grad.get_mut()
    }

    /// Both halves at once, for an optimizer step: `(value, grad)`.
    pub fn value_and_grad_mut(&mut self) -> (&mut [T], &mut [T]) {
        self.materialize_zero();
        (self.value.data_mut(), self.grad.get_mut().data_mut())
    }

    /// Sets the gradient to zero (call before each step's `backward`, since
    /// `backward` accumulates). O(1): the buffer is only marked, and the next
    /// backward overwrites it instead of adding (or the next read clears it).
    pub fn zero_grad(&mut self) {
        self.zeroed.set(true);
    }

    /// Clears a gradient marked zero.
    fn materialize_zero(&mut self) {
        if self.zeroed.get() {
            self.grad.get_mut().data_mut().fill(T::ZERO);
            self.zeroed.set(false);
        }
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.value.numel()
    }

    /// Swaps the gradient buffer into `slot` (no copy): backward lends the gradient
    /// to the parameter's node so ops accumulate straight into it. Returns whether
    /// the gradient is marked zero (then the buffer is stale and must be
    /// overwritten). Errors if the gradient is borrowed or no longer has the value's
    /// shape.
    pub(crate) fn lend_grad(&self, slot: &mut Tensor<T>) -> Result<bool> {
        let mut grad = self
            .grad
            .try_borrow_mut()
            .map_err(|_| crate::Error::GradBorrowed)?;
        if grad.shape() != self.value.shape() {
            return Err(shape_mismatch(
                "backward",
                *self.value.shape(),
                *grad.shape(),
                "a parameter's gradient must have its value's shape",
            ));
        }
        core::mem::swap(&mut *grad, slot);
        Ok(self.zeroed.get())
    }

    /// Takes back the gradient lent with [`Param::lend_grad`]; `written` says
    /// whether backward wrote to it (which ends a pending zero).
    pub(crate) fn return_grad(&self, slot: &mut Tensor<T>, written: bool) -> Result<()> {
        let mut grad = self
            .grad
            .try_borrow_mut()
            .map_err(|_| crate::Error::GradBorrowed)?;
        core::mem::swap(&mut *grad, slot);
        if written {
            self.zeroed.set(false);
        }
        Ok(())
    }

    /// Adds `g` into the gradient; the graph's backward pass calls this.
    pub(crate) fn accumulate_grad(&self, g: &[T]) -> Result<()> {
        let mut grad = self
            .grad
            .try_borrow_mut()
            .map_err(|_| crate::Error::GradBorrowed)?;
        if grad.numel() != g.len() {
            return Err(shape_mismatch(
                "backward",
                *self.value.shape(),
                *grad.shape(),
                "a parameter's gradient must have its value's shape",
            ));
        }
        if self.zeroed.replace(false) {
            grad.data_mut().copy_from_slice(g);
        } else {
            for (acc, &v) in grad.data_mut().iter_mut().zip(g) {
                *acc = *acc + v;
            }
        }
        Ok(())
    }
}

/// Sets the gradient of every parameter in `params` to zero.
pub fn zero_grad<T: Scalar>(params: &mut [&mut Param<T>]) {
    for p in params.iter_mut() {
        p.zero_grad();
    }
}
