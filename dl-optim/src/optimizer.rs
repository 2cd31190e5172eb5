//! The `Optimizer` trait and the per-parameter state every optimizer keeps.

use crate::error::{Error, Result};
use crate::params::ParamSet;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::Scalar;

/// Updates parameters from their accumulated gradients.
///
/// Call [`Optimizer::step`] after `backward`; it reads each `Param`'s gradient and
/// changes its value. Gradients are not cleared (as in PyTorch: call `zero_grad`).
pub trait Optimizer<T: Scalar> {
    /// One update of every parameter in `params` (always the same set, same order).
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (schedules call this between epochs or steps).
    fn set_learning_rate(&mut self, lr: f64);
}

/// `K` state buffers per parameter (momentum, second moments, ...), created with
/// zeros on the first step and reused afterwards, so steps after the first allocate
/// nothing.
#[derive(Clone, Debug)]
pub(crate) struct State<T, const K: usize> {
    owner: &'static str,
    slots: Vec<[Vec<T>; K]>,
    /// Steps taken so far (`t` in the formulas, 1-based once a step started).
    pub(crate) t: u64,
}

impl<T: Scalar, const K: usize> State<T, K> {
    pub(crate) fn new(owner: &'static str) -> Self {
        State {
            owner,
            slots: Vec::new(),
            t: 0,
        }
    }

    /// Visits every parameter with its state buffers: `update(w, g, state)`.
    pub(crate) fn drive(
        &mut self,
        params: &mut dyn ParamSet<T>,
        mut update: impl FnMut(&mut [T], &[T], &mut [Vec<T>; K]),
    ) -> Result<()> {
        self.t += 1;
        let first_step = self.t == 1;
        let mut index = 0;
        let mut err = None;
        let owner = self.owner;
        let slots = &mut self.slots;
        params.for_each_param(&mut |p| {
            if err.is_some() {
                return;
            }
            let (w, g) = p.value_and_grad_mut();
            if first_step && index == slots.len() {
                slots.push(core::array::from_fn(|_| vec![T::ZERO; w.len()]));
            }
            match slots.get_mut(index) {
                Some(s) if s[0].len() == w.len() || K == 0 => update(w, g, s),
                Some(s) => {
                    err = Some(Error::ParamsChanged {
                        owner,
                        index,
                        expected: s[0].len(),
                        actual: w.len(),
                    })
                }
                None => {
                    err = Some(Error::ParamsChanged {
                        owner,
                        index,
                        expected: 0,
                        actual: w.len(),
                    })
                }
            }
            index += 1;
        });
        if let Some(e) = err {
            return Err(e);
        }
        if index != self.slots.len() {
            return Err(Error::ParamsChanged {
                owner,
                index,
                expected: self
                    .slots
                    .get(index)
                    .map_or(0, |s| s.first().map_or(0, Vec::len)),
                actual: 0,
            });
        }
        Ok(())
    }
}

/// `g + wd * w`: the L2 penalty's gradient folded into the gradient, as torch's
/// `weight_decay` does for every optimizer but AdamW.
#[inline(always)]
pub(crate) fn with_decay<T: Scalar>(g: T, w: T, wd: T) -> T {
    g + wd * w
}

/// Shared hyper-parameter checks.
pub(crate) mod check {
    use crate::error::{check_range, Result};

    pub(crate) fn lr(owner: &'static str, lr: f64) -> Result<()> {
        check_range(owner, "lr", lr, lr >= 0.0, ">= 0")
    }
    pub(crate) fn weight_decay(owner: &'static str, wd: f64) -> Result<()> {
        check_range(owner, "weight_decay", wd, wd >= 0.0, ">= 0")
    }
    pub(crate) fn eps(owner: &'static str, eps: f64) -> Result<()> {
        check_range(owner, "eps", eps, eps > 0.0, "> 0")
    }
    pub(crate) fn unit(owner: &'static str, name: &'static str, v: f64) -> Result<()> {
        check_range(owner, name, v, (0.0..1.0).contains(&v), "[0, 1)")
    }
}
