//! The tape: a [`Graph`] owns its nodes (a Wengert list), a [`Var`] is a cheap `Copy`
//! handle to one of them, and [`Graph::backward`] walks the list once in reverse.
//!
//! Every op's forward lives in `ops/*.rs` next to its backward; this file only holds
//! the bookkeeping (node slots, leaves, gradient slots) and the one `match` over
//! [`Op`] that routes each node to its backward.
//!
//! Buffer reuse: a node is a *slot* that keeps its buffers (value, gradient, saved
//! data) when the graph is [cleared](Graph::clear). A training step that builds the
//! same graph every time therefore finds every buffer already at the right size and
//! allocates nothing after the first step. [`Graph::into_tape`] and
//! [`Graph::from_tape`] carry the slots across steps whose parameter borrows end
//! (so an optimizer can take `&mut` of the parameters in between).

use crate::error::{Error, Result};
use crate::op::Op;
use crate::ops;
use crate::param::Param;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use dl_core::{Scalar, Shape, Tensor};

/// Source of graph epochs: every graph, and every `clear`, takes a fresh number, so a
/// `Var` from another graph or from before a clear is detected instead of silently
/// reading the wrong node.
static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);

fn fresh_epoch() -> u32 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// A handle to a value on a [`Graph`]: a node index plus the graph epoch it belongs
/// to. Cheap to copy; only meaningful to the graph that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    index: u32,
    epoch: u32,
}

impl Var {
    /// The node's position on the tape (0 = first node recorded).
    #[inline]
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// A handle from its parts (for ops that store inputs as node indices).
    pub(crate) fn from_parts(index: usize, epoch: u32) -> Var {
        Var {
            index: index as u32,
            epoch,
        }
    }
}

/// One slot of the tape. Buffers survive [`Graph::clear`] so the next step reuses
/// them.
pub(crate) struct Node<T: Scalar> {
    /// What produced the value, with its inputs.
    pub op: Op,
    /// The value (unused for [`Op::Param`] nodes, whose value lives in the `Param`).
    pub value: Tensor<T>,
    /// Op-specific floats kept for backward (dropout mask, normalized input, ...).
    pub saved: Vec<T>,
    /// Op-specific indices (argmax, gather indices, class targets, concat inputs).
    pub saved_idx: Vec<usize>,
    /// Whether any variable or parameter reaches this node (and grad mode is on).
    pub requires_grad: bool,
}

/// The gradient of one node; `live` is false until backward first writes to it.
pub(crate) struct GradSlot<T: Scalar> {
    pub grad: Tensor<T>,
    pub live: bool,
}

/// Reusable scratch buffers for ops that need a temporary (conv workspaces,
/// permutations, kernels that overwrite rather than accumulate).
#[derive(Default)]
pub(crate) struct Scratch<T> {
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub c: Vec<T>,
    /// A right-hand operand packed once for many products (a recurrent layer's
    /// `W_hh`, reused by every time step).
    pub packed: dl_core::gemm::PackedB<T>,
}

/// Resizes `v` to `n` elements without touching the ones kept (callers overwrite
/// them), and returns it as a slice.
pub(crate) fn sized<T: Scalar>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() > n {
        v.truncate(n);
    } else {
        v.resize(n, T::ZERO);
    }
    &mut v[..]
}

/// Resizes `v` to `n` zeros.
pub(crate) fn zeroed<T: Scalar>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    let s = sized(v, n);
    s.fill(T::ZERO);
    s
}

/// Empties `v` and returns its allocation typed for another lifetime. The vector
/// is empty, so no reference outlives its borrow; std collects a mapped
/// `vec::IntoIter` in place when the element layouts match (they do: both are one
/// pointer), so the capacity survives and a training loop allocates nothing here
/// after its first step (tests/alloc.rs checks this).
fn recycle<'a, 'b, U: ?Sized>(mut v: Vec<&'a U>) -> Vec<&'b U> {
    v.clear();
    v.into_iter()
        .map(|_| -> &'b U { unreachable!("the vector is empty") })
        .collect()
}

/// The storage of a graph without its parameter borrows: node slots and gradient
/// buffers kept for reuse. See [`Graph::into_tape`].
pub struct Tape<T: Scalar = f32> {
    nodes: Vec<Node<T>>,
    grads: Vec<GradSlot<T>>,
    scratch: Scratch<T>,
    lent: Vec<usize>,
    /// Always empty: kept only for its allocation (see [`recycle`]).
    params: Vec<&'static Param<T>>,
    /// Always empty: kept only for its allocation.
    borrowed: Vec<&'static Tensor<T>>,
}

impl<T: Scalar> Default for Tape<T> {
    fn default() -> Self {
        Tape {
            nodes: Vec::new(),
            grads: Vec::new(),
            scratch: Scratch::default(),
            lent: Vec::new(),
            params: Vec::new(),
            borrowed: Vec::new(),
        }
    }
}

impl<T: Scalar> Tape<T> {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of node slots held (each keeps its buffers).
    pub fn slots(&self) -> usize {
        self.nodes.len()
    }
}

/// A node under construction: the buffers taken from the next slot.
pub(crate) struct Building<T: Scalar> {
    pub value: Tensor<T>,
    pub saved: Vec<T>,
    pub saved_idx: Vec<usize>,
}

/// Read access to every node's value during backward.
#[derive(Clone, Copy)]
pub(crate) struct Values<'a, 'p, T: Scalar> {
    nodes: &'a [Node<T>],
    params: &'a [&'p Param<T>],
    borrowed: &'a [&'p Tensor<T>],
}

impl<'a, T: Scalar> Values<'a, '_, T> {
    /// The value of `v` (a parameter's own tensor for [`Op::Param`] nodes).
    #[inline]
    pub fn get(&self, v: Var) -> &'a Tensor<T> {
        let node = &self.nodes[v.index()];
        match node.op {
            Op::Param { index } => self.params[index].value(),
            Op::InputRef { index } => self.borrowed[index],
            _ => &node.value,
        }
    }

    /// The node behind `v`.
    #[inline]
    pub fn node(&self, v: Var) -> &'a Node<T> {
        &self.nodes[v.index()]
    }
}

/// Write access to the gradients of the nodes *below* the one being differentiated.
pub(crate) struct Grads<'a, 'p, T: Scalar> {
    slots: &'a mut [GradSlot<T>],
    vals: Values<'a, 'p, T>,
}

/// A gradient buffer handed to an op's backward. When `fresh`, it holds stale
/// numbers from an earlier step: the op must overwrite it (or call
/// [`GradMut::zeroed`] and accumulate).
pub(crate) struct GradMut<'b, T> {
    pub data: &'b mut [T],
    pub fresh: bool,
}

impl<'b, T: Scalar> GradMut<'b, T> {
    /// The buffer, zeroed first if it was fresh: ready for accumulation.
    pub fn zeroed(self) -> &'b mut [T] {
        if self.fresh {
            self.data.fill(T::ZERO);
        }
        self.data
    }

    /// Adds `src` (copies it when fresh).
    pub fn add(self, src: &[T]) {
        if self.fresh {
            self.data.copy_from_slice(src);
        } else {
            for (d, &s) in self.data.iter_mut().zip(src) {
                *d = *d + s;
            }
        }
    }

    /// `beta` for a kernel computing `g = beta * g + ...`: 0 when fresh, else 1.
    pub fn beta(&self) -> T {
        if self.fresh {
            T::ZERO
        } else {
            T::ONE
        }
    }
}

impl<'p, T: Scalar> Grads<'_, 'p, T> {
    /// Makes slot `v` live (sized to its value) and reports whether it was fresh;
    /// `None` if `v` needs no gradient.
    fn prepare(&mut self, v: Var) -> Option<bool> {
        let node = self.vals.node(v);
        if !node.requires_grad {
            return None;
        }
        let slot = &mut self.slots[v.index()];
        if slot.live {
            return Some(false);
        }
        slot.grad.resize_to(*self.vals.get(v).shape());
        slot.live = true;
        Some(true)
    }

    /// The gradient buffer of `v`, or `None` if `v` needs no gradient.
    pub fn get(&mut self, v: Var) -> Option<GradMut<'_, T>> {
        let fresh = self.prepare(v)?;
        Some(GradMut {
            data: self.slots[v.index()].grad.data_mut(),
            fresh,
        })
    }

    /// The gradient buffers of two *different* nodes at once.
    pub fn get2(&mut self, a: Var, b: Var) -> (Option<GradMut<'_, T>>, Option<GradMut<'_, T>>) {
        debug_assert_ne!(a.index(), b.index());
        let fa = self.prepare(a);
        let fb = self.prepare(b);
        let (lo, hi) = if a.index() < b.index() {
            (a, b)
        } else {
            (b, a)
        };
        let (left, right) = self.slots.split_at_mut(hi.index());
        let lo_slot = left[lo.index()].grad.data_mut();
        let hi_slot = right[0].grad.data_mut();
        let (sa, sb) = if a.index() < b.index() {
            (lo_slot, hi_slot)
        } else {
            (hi_slot, lo_slot)
        };
        (
            fa.map(|fresh| GradMut { data: sa, fresh }),
            fb.map(|fresh| GradMut { data: sb, fresh }),
        )
    }

    /// Whether `v` takes a gradient (without touching its buffer).
    #[inline]
    pub fn needs(&self, v: Var) -> bool {
        self.vals.node(v).requires_grad
    }
}

/// What an op's backward gets: read access to all values, its own node and the
/// gradient flowing into it.
pub(crate) struct BackwardCtx<'a, 'p, T: Scalar> {
    pub vals: Values<'a, 'p, T>,
    pub node: &'a Node<T>,
    pub dy: &'a [T],
}

/// A reverse-mode autodiff graph (tape) over tensors of `T` (f32 by default).
///
/// Leaves are inputs ([`Graph::input`], no gradient), variables
/// ([`Graph::variable`], gradient readable through [`Graph::grad`]) and parameters
/// ([`Graph::param`], gradient added into the [`Param`]). Ops record their inputs;
/// [`Graph::backward`] from a scalar walks the tape once in reverse, accumulating the
/// gradient of every node used more than once.
///
/// `'p` is the borrow of the parameters registered on this graph.
///
/// ```
/// use dl_autograd::Graph;
/// use dl_core::Tensor;
/// let mut g = Graph::<f64>::new();
/// let x = g.variable(&Tensor::from_array([1.0, 2.0, 3.0]));
/// // y = sum(x * x + x), dy/dx = 2x + 1
/// let sq = g.mul(x, x).unwrap();
/// let s = g.add(sq, x).unwrap();
/// let y = g.sum_all(s).unwrap();
/// g.backward(y).unwrap();
/// assert_eq!(g.grad(x).unwrap().data(), &[3.0, 5.0, 7.0]);
/// ```
pub struct Graph<'p, T: Scalar = f32> {
    pub(crate) nodes: Vec<Node<T>>,
    pub(crate) len: usize,
    grads: Vec<GradSlot<T>>,
    pub(crate) params: Vec<&'p Param<T>>,
    /// Inputs read in place ([`Graph::input_ref`]).
    borrowed: Vec<&'p Tensor<T>>,
    pub(crate) scratch: Scratch<T>,
    /// Node indices currently holding a parameter's own gradient buffer (reused).
    lent: Vec<usize>,
    epoch: u32,
    recording: bool,
}

impl<T: Scalar> Default for Graph<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p, T: Scalar> Graph<'p, T> {
    /// An empty graph that records ops for backward.
    pub fn new() -> Self {
        Self::from_tape(Tape::new())
    }

    /// An empty graph in no-grad mode: the same forward code runs, nothing is kept
    /// for backward (inference).
    pub fn new_no_grad() -> Self {
        let mut g = Self::new();
        g.recording = false;
        g
    }

    /// A graph that reuses the slots of an earlier graph (see [`Graph::into_tape`]).
    pub fn from_tape(tape: Tape<T>) -> Self {
        Graph {
            nodes: tape.nodes,
            len: 0,
            grads: tape.grads,
            params: recycle(tape.params),
            borrowed: recycle(tape.borrowed),
            scratch: tape.scratch,
            lent: tape.lent,
            epoch: fresh_epoch(),
            recording: true,
        }
    }

    /// Gives up the parameter borrows and keeps the buffers, for the next step:
    ///
    /// ```
    /// use dl_autograd::{Graph, Param, Tape};
    /// use dl_core::Tensor;
    /// let mut w = Param::new(Tensor::from_array([1.0f32, 2.0]));
    /// let mut tape = Tape::new();
    /// for _ in 0..3 {
    ///     let mut g = Graph::from_tape(tape);
    ///     let p = g.param(&w);
    ///     let loss = g.sum_all(p).unwrap();
    ///     g.backward(loss).unwrap();
    ///     tape = g.into_tape(); // ends the borrow of `w`
    ///     let (value, grad) = w.value_and_grad_mut();
    ///     value.iter_mut().zip(grad.iter()).for_each(|(v, g)| *v -= 0.5 * g);
    ///     w.zero_grad();
    /// }
    /// assert_eq!(w.value().data(), &[-0.5, 0.5]);
    /// ```
    pub fn into_tape(mut self) -> Tape<T> {
        self.clear();
        Tape {
            nodes: self.nodes,
            grads: self.grads,
            scratch: self.scratch,
            lent: self.lent,
            params: recycle(self.params),
            borrowed: recycle(self.borrowed),
        }
    }

    /// Forgets every node (handles from before become stale) but keeps all buffers
    /// for reuse. Grad mode is unchanged.
    pub fn clear(&mut self) {
        self.len = 0;
        self.params.clear();
        self.borrowed.clear();
        self.epoch = fresh_epoch();
    }

    /// Turns recording on (`true`, the default) or off (no-grad mode) for the ops
    /// that follow.
    pub fn set_grad_enabled(&mut self, enabled: bool) {
        self.recording = enabled;
    }

    /// Whether ops are being recorded for backward.
    pub fn is_grad_enabled(&self) -> bool {
        self.recording
    }

    /// Number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tape holds no node.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    // -----------------------------------------------------------------------------
    // Leaves
    // -----------------------------------------------------------------------------

    /// A constant input (no gradient), copied into the graph's own buffer.
    pub fn input(&mut self, t: &Tensor<T>) -> Var {
        let mut b = self.begin(*t.shape());
        b.value.data_mut().copy_from_slice(t.data());
        self.finish(Op::Input, b, false)
    }

    /// A constant input read in place from a borrowed tensor (no copy).
    pub fn input_ref(&mut self, t: &'p Tensor<T>) -> Var {
        let index = self.borrowed.len();
        self.borrowed.push(t);
        self.finish_leaf(Op::InputRef { index }, false)
    }

    /// A constant input from a flat row-major slice shaped `dims` (no allocation once
    /// the slot exists). Errors if the length disagrees with `dims`.
    pub fn input_slice(&mut self, data: &[T], dims: &[usize]) -> Result<Var> {
        let shape = Shape::new(dims)?;
        shape.check_len(data.len(), "input_slice", "data")?;
        let mut b = self.begin(shape);
        b.value.data_mut().copy_from_slice(data);
        Ok(self.finish(Op::Input, b, false))
    }

    /// A rank-0 constant.
    pub fn scalar(&mut self, value: T) -> Var {
        let mut b = self.begin(Shape::scalar());
        b.value.data_mut()[0] = value;
        self.finish(Op::Input, b, false)
    }

    /// A leaf whose gradient is kept: read it with [`Graph::grad`] after backward.
    pub fn variable(&mut self, t: &Tensor<T>) -> Var {
        let mut b = self.begin(*t.shape());
        b.value.data_mut().copy_from_slice(t.data());
        self.finish(Op::Variable, b, true)
    }

    /// Registers a parameter as a leaf (its value is read in place, not copied);
    /// backward adds the gradient into [`Param::grad`]. Registering the same
    /// parameter twice is allowed: both uses add up.
    pub fn param(&mut self, p: &'p Param<T>) -> Var {
        let index = self.params.len();
        self.params.push(p);
        self.finish_leaf(Op::Param { index }, true)
    }

    // -----------------------------------------------------------------------------
    // Inspection
    // -----------------------------------------------------------------------------

    /// Errors unless `v` is a live handle of this graph.
    pub(crate) fn check(&self, v: Var, op: &'static str) -> Result<()> {
        if v.epoch == self.epoch && v.index() < self.len {
            Ok(())
        } else {
            Err(Error::StaleVar {
                op,
                index: v.index(),
            })
        }
    }

    /// The value of a checked handle.
    #[inline]
    pub(crate) fn val(&self, v: Var) -> &Tensor<T> {
        let node = &self.nodes[v.index()];
        match node.op {
            Op::Param { index } => self.params[index].value(),
            Op::InputRef { index } => self.borrowed[index],
            _ => &node.value,
        }
    }

    /// Checks `v` and returns its shape.
    pub(crate) fn shape_of(&self, v: Var, op: &'static str) -> Result<Shape> {
        self.check(v, op)?;
        Ok(*self.val(v).shape())
    }

    /// The value of `v`.
    pub fn value(&self, v: Var) -> Result<&Tensor<T>> {
        self.check(v, "value")?;
        Ok(self.val(v))
    }

    /// The shape of `v`.
    pub fn shape(&self, v: Var) -> Result<Shape> {
        self.shape_of(v, "shape")
    }

    /// The op that produced `v` (with its inputs).
    pub fn op(&self, v: Var) -> Result<Op> {
        self.check(v, "op")?;
        Ok(self.nodes[v.index()].op)
    }

    /// The inputs of the node behind `v`, in order (concat's list included).
    pub fn inputs(&self, v: Var) -> Result<Vec<Var>> {
        self.check(v, "inputs")?;
        let node = &self.nodes[v.index()];
        let mut out = Vec::new();
        node.op
            .for_each_input(&node.saved_idx, self.epoch, |x| out.push(x));
        Ok(out)
    }

    /// Whether a gradient flows to `v` (it depends on a variable or parameter and
    /// grad mode was on when it was made).
    pub fn requires_grad(&self, v: Var) -> Result<bool> {
        self.check(v, "requires_grad")?;
        Ok(self.nodes[v.index()].requires_grad)
    }

    /// The gradient of the last backward's loss with respect to `v`, if `v` takes
    /// part in it. Gradients restart from zero at each [`Graph::backward`]. A
    /// parameter's gradient is accumulated straight into its [`Param`] (read it with
    /// [`Param::grad`]), so this returns `None` for a parameter node.
    pub fn grad(&self, v: Var) -> Option<&Tensor<T>> {
        self.check(v, "grad").ok()?;
        let slot = self.grads.get(v.index())?;
        slot.live.then_some(&slot.grad)
    }

    // -----------------------------------------------------------------------------
    // Recording
    // -----------------------------------------------------------------------------

    /// Takes the buffers of the next slot (or fresh, empty ones).
    fn take_slot(&mut self) -> Building<T> {
        match self.nodes.get_mut(self.len) {
            Some(slot) => Building {
                value: core::mem::replace(&mut slot.value, Tensor::empty()),
                saved: core::mem::take(&mut slot.saved),
                saved_idx: core::mem::take(&mut slot.saved_idx),
            },
            None => Building {
                value: Tensor::empty(),
                saved: Vec::new(),
                saved_idx: Vec::new(),
            },
        }
    }

    /// Starts a node whose value has `shape`; its elements are stale and must be
    /// overwritten by the op.
    pub(crate) fn begin(&mut self, shape: Shape) -> Building<T> {
        let mut b = self.take_slot();
        b.value.resize_to(shape);
        b
    }

    /// Records a node. `needs_grad` says whether any input requires a gradient.
    pub(crate) fn finish(&mut self, op: Op, b: Building<T>, needs_grad: bool) -> Var {
        let node = Node {
            op,
            value: b.value,
            saved: b.saved,
            saved_idx: b.saved_idx,
            requires_grad: self.recording && needs_grad,
        };
        match self.nodes.get_mut(self.len) {
            Some(slot) => *slot = node,
            None => self.nodes.push(node),
        }
        let v = Var {
            index: self.len as u32,
            epoch: self.epoch,
        };
        self.len += 1;
        v
    }

    /// Records a node whose value lives outside the tape (a parameter, a borrowed
    /// input): the slot's own buffers stay where they are, untouched and unused.
    fn finish_leaf(&mut self, op: Op, needs_grad: bool) -> Var {
        let requires_grad = self.recording && needs_grad;
        match self.nodes.get_mut(self.len) {
            Some(slot) => {
                slot.op = op;
                slot.requires_grad = requires_grad;
            }
            None => self.nodes.push(Node {
                op,
                value: Tensor::empty(),
                saved: Vec::new(),
                saved_idx: Vec::new(),
                requires_grad,
            }),
        }
        let v = Var {
            index: self.len as u32,
            epoch: self.epoch,
        };
        self.len += 1;
        v
    }

    /// Whether a gradient will be needed for a node made from `inputs` (so ops skip
    /// saving data for backward in no-grad mode).
    pub(crate) fn needs_grad(&self, inputs: &[Var]) -> bool {
        self.recording && inputs.iter().any(|v| self.nodes[v.index()].requires_grad)
    }

    // -----------------------------------------------------------------------------
    // Backward
    // -----------------------------------------------------------------------------

    /// Differentiates the scalar `loss` with respect to every variable and parameter
    /// it depends on: walks the tape once in reverse, accumulating into each node's
    /// gradient, then adds the parameters' gradients into their [`Param`]s (which
    /// accumulate across calls until [`Param::zero_grad`]).
    ///
    /// Errors if `loss` has more than one element, if the graph is in no-grad mode,
    /// or if `loss` depends on no variable or parameter.
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        const OP: &str = "backward";
        self.check(loss, OP)?;
        let shape = *self.val(loss).shape();
        if shape.numel() != 1 {
            return Err(Error::NotScalar { op: OP, shape });
        }
        if !self.recording {
            return Err(Error::NoGradient {
                op: OP,
                why: "the graph is in no-grad mode",
            });
        }
        if !self.nodes[loss.index()].requires_grad {
            return Err(Error::NoGradient {
                op: OP,
                why: "the value depends on no variable or parameter recorded with grad on",
            });
        }
        while self.grads.len() < self.len {
            self.grads.push(GradSlot {
                grad: Tensor::empty(),
                live: false,
            });
        }
        for slot in &mut self.grads[..self.len] {
            slot.live = false;
        }
        let seed = &mut self.grads[loss.index()];
        seed.grad.resize_to(shape);
        seed.grad.data_mut().fill(T::ONE);
        seed.live = true;

        let lent = self.lend_param_grads(loss.index());
        let mut scratch = core::mem::take(&mut self.scratch);
        let walked = lent.and_then(|()| self.walk_back(loss.index(), &mut scratch));
        self.scratch = scratch;
        // Always hand the lent buffers back, even after an error.
        let returned = self.return_param_grads();
        walked?;
        returned?;

        // A parameter registered more than once: the extra nodes had buffers of
        // their own, added in now.
        for (node, slot) in self.nodes[..self.len].iter().zip(&self.grads) {
            if let (Op::Param { index }, true) = (node.op, slot.live) {
                self.params[index].accumulate_grad(slot.grad.data())?;
            }
        }
        Ok(())
    }

    /// Moves each parameter's gradient buffer into the slot of the first node that
    /// registered it, so backward accumulates straight into the parameter (no extra
    /// buffer, no final copy). The loss node itself keeps its seed.
    fn lend_param_grads(&mut self, loss: usize) -> Result<()> {
        self.lent.clear();
        for i in 0..self.len {
            let Op::Param { index } = self.nodes[i].op else {
                continue;
            };
            let p = self.params[index];
            let taken = self.lent.iter().any(|&j| match self.nodes[j].op {
                Op::Param { index: k } => core::ptr::eq(self.params[k], p),
                _ => false,
            });
            if i == loss || taken {
                continue;
            }
            // A gradient marked zero is lent as a fresh slot: the first op
            // overwrites it (e.g. gemm with beta = 0) instead of adding.
            let zeroed = p.lend_grad(&mut self.grads[i].grad)?;
            self.grads[i].live = !zeroed;
            self.lent.push(i);
        }
        Ok(())
    }

    /// Swaps the lent gradient buffers back into their parameters; the slots are
    /// marked not live (the gradient now lives in the `Param`).
    fn return_param_grads(&mut self) -> Result<()> {
        let mut result = Ok(());
        for &i in &self.lent {
            if let Op::Param { index } = self.nodes[i].op {
                let written = self.grads[i].live;
                if let Err(e) = self.params[index].return_grad(&mut self.grads[i].grad, written) {
                    result = Err(e);
                }
            }
            self.grads[i].live = false;
        }
        self.lent.clear();
        result
    }

    /// The reverse walk: every live node with a gradient hands it to its op's
    /// backward, which adds into the gradients of the op's inputs.
    fn walk_back(&mut self, last: usize, scratch: &mut Scratch<T>) -> Result<()> {
        let vals = Values {
            nodes: &self.nodes[..self.len],
            params: &self.params,
            borrowed: &self.borrowed,
        };
        for i in (0..=last).rev() {
            let node = &self.nodes[i];
            if !node.requires_grad || node.op.is_leaf() {
                continue;
            }
            let (lower, upper) = self.grads.split_at_mut(i);
            if !upper[0].live {
                continue;
            }
            let ctx = BackwardCtx {
                vals,
                node,
                dy: upper[0].grad.data(),
            };
            let mut grads = Grads { slots: lower, vals };
            backward_node(&ctx, &mut grads, scratch)?;
        }
        Ok(())
    }
}

/// The one dispatch from an op to its backward (each defined next to its forward).
fn backward_node<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
) -> Result<()> {
    use ops::*;
    match ctx.node.op {
        Op::Input | Op::InputRef { .. } | Op::Variable | Op::Param { .. } => Ok(()),
        Op::Unary { op, x } => elementwise::unary_backward(ctx, grads, op, x),
        Op::Binary { op, a, b } => elementwise::binary_backward(ctx, grads, op, a, b),
        Op::MatMul { a, b } => matmul::matmul_backward(ctx, grads, a, b),
        Op::Linear { x, w, b } => linear::linear_backward(ctx, grads, x, w, b),
        Op::SelfAttention { qkv, spec } => {
            attention::self_attention_backward(ctx, grads, scratch, qkv, spec)
        }
        Op::Recurrent {
            xw,
            w_hh,
            b_hh,
            h0,
            c0,
            spec,
        } => {
            let inputs = recurrent::RecurrentInputs {
                xw,
                w_hh,
                b_hh,
                h0,
                c0,
            };
            recurrent::recurrent_backward(ctx, grads, scratch, inputs, spec)
        }
        Op::Reduce { op, x, axis } => reduce::reduce_backward(ctx, grads, op, x, axis),
        Op::SumAll { x } => reduce::sum_all_backward(ctx, grads, x, false),
        Op::MeanAll { x } => reduce::sum_all_backward(ctx, grads, x, true),
        Op::Reshape { x } => layout::reshape_backward(ctx, grads, x),
        Op::Permute { x, axes } => layout::permute_backward(ctx, grads, scratch, x, axes),
        Op::Concat { axis, .. } => layout::concat_backward(ctx, grads, axis),
        Op::Slice {
            x,
            axis,
            start,
            end,
        } => layout::slice_backward(ctx, grads, x, axis, start, end),
        Op::IndexSelect { x, axis } => layout::index_select_backward(ctx, grads, x, axis),
        Op::Softmax { x } => softmax::softmax_backward(ctx, grads, x, false),
        Op::LogSoftmax { x } => softmax::softmax_backward(ctx, grads, x, true),
        Op::Conv2d { x, w, b, params } => {
            conv::conv2d_backward(ctx, grads, scratch, x, w, b, params)
        }
        Op::MaxPool2d { x, params } => conv::max_pool2d_backward(ctx, grads, scratch, x, params),
        Op::AvgPool2d { x, params } => conv::avg_pool2d_backward(ctx, grads, scratch, x, params),
        Op::Dropout { x, .. } => dropout::dropout_backward(ctx, grads, x),
        Op::BatchNorm {
            x, affine, train, ..
        } => norm::batch_norm_backward(ctx, grads, scratch, x, affine, train),
        Op::LayerNorm { x, affine, .. } => {
            norm::layer_norm_backward(ctx, grads, scratch, x, affine)
        }
        Op::CrossEntropy { logits } => loss::cross_entropy_backward(ctx, grads, logits),
        Op::SoftCrossEntropy { logits, target } => {
            loss::soft_cross_entropy_backward(ctx, grads, logits, target)
        }
        Op::BceWithLogits { logits, target } => {
            loss::bce_with_logits_backward(ctx, grads, logits, target)
        }
        Op::Mse { pred, target } => loss::regression_backward(ctx, grads, pred, target),
        Op::Mae { pred, target } => loss::regression_backward(ctx, grads, pred, target),
        Op::Huber { pred, target, .. } => loss::regression_backward(ctx, grads, pred, target),
    }
}
