//! The `Module` trait: a forward pass on the graph, named parameters and buffers, and
//! an explicit train/eval mode.

use crate::error::Result;
use alloc::string::String;
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{Rng, Scalar, Tensor};
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId};

/// Train or eval: dropout and batch norm behave differently (explicit, never global).
#[derive(Clone, Debug)]
pub struct Ctx {
    /// `true` in training (dropout active, batch statistics), `false` in evaluation.
    pub train: bool,
    /// Randomness for dropout masks; seeded, so runs repeat.
    pub rng: Rng,
}

impl Ctx {
    /// Training mode, with dropout masks drawn from `seed`.
    pub fn train(seed: u64) -> Self {
        Ctx {
            train: true,
            rng: Rng::seed_from_u64(seed),
        }
    }

    /// Evaluation mode (no randomness is used).
    pub fn eval() -> Self {
        Ctx {
            train: false,
            rng: Rng::seed_from_u64(0),
        }
    }
}

/// A tensor of a module, as seen by a named visitor: a trainable parameter, or a
/// buffer (state that is saved but not trained, like batch norm's running mean).
pub enum Entry<'a, T: Scalar> {
    /// A trainable parameter.
    Param(&'a Param<T>),
    /// A non-trainable buffer.
    Buffer(&'a Tensor<T>),
}

/// Mutable version of [`Entry`], for loading checkpoints.
pub enum EntryMut<'a, T: Scalar> {
    /// A trainable parameter.
    Param(&'a mut Param<T>),
    /// A non-trainable buffer.
    Buffer(&'a mut Tensor<T>),
}

impl<T: Scalar> Entry<'_, T> {
    /// The tensor's current value.
    pub fn value(&self) -> &Tensor<T> {
        match self {
            Entry::Param(p) => p.value(),
            Entry::Buffer(t) => t,
        }
    }
}

/// Builds dotted names (`encoder.0.weight`) in one reused buffer, so visiting a model
/// allocates only while the buffer grows.
#[derive(Clone, Debug, Default)]
pub struct Path {
    buf: String,
}

impl Path {
    /// An empty path (the model's root).
    pub fn new() -> Self {
        Path::default()
    }

    /// The current dotted name.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// Runs `f` with `segment` appended (`a.b` + `c` = `a.b.c`), then removes it.
    pub fn with<R>(&mut self, segment: &str, f: impl FnOnce(&mut Path) -> R) -> R {
        let len = self.buf.len();
        if len > 0 {
            self.buf.push('.');
        }
        self.buf.push_str(segment);
        let r = f(self);
        self.buf.truncate(len);
        r
    }
}

/// A layer or a model: forward on the graph, plus visitors over its tensors.
///
/// [`ParamSet`] (the unnamed visitor optimizers use) is a supertrait, so any module
/// can be handed to an optimizer directly.
pub trait Module<T: Scalar = f32>: ParamSet<T> {
    /// The forward pass, recording on `g`; `ctx` says train or eval.
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, ctx: &mut Ctx) -> Result<Var>;

    /// Inference without a graph: the forward pass in evaluation mode on plain
    /// tensors, written into `out` (resized, its buffer reused), bit for bit what
    /// [`Module::forward`] gives under [`Ctx::eval`]. Dense layers, the element-wise
    /// activations, [`crate::Flatten`] and [`crate::Sequential`] run their kernels
    /// directly (no tape, no bookkeeping per op: what batch-1 latency needs); other
    /// layers default to [`infer_on_graph`].
    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        infer_on_graph(self, x, out)
    }

    /// Appends this layer, in evaluation mode, to a deployment graph reading `x`, and
    /// returns the tensor it writes (see [`crate::export`]). Layers without a
    /// deployable form keep this default, an error naming the layer.
    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        let _ = (g, x);
        Err(crate::export::unsupported::<Self>(
            "it has no deployable form",
        ))
    }

    /// Calls `f` with the dotted name and value of every parameter and buffer.
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>));

    /// Calls `f` with the dotted name of every parameter and buffer, mutably.
    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>));

    /// Number of trainable scalars.
    fn num_params(&self) -> usize {
        let mut n = 0;
        self.visit(&mut Path::new(), &mut |_, e| {
            if let Entry::Param(p) = e {
                n += p.numel();
            }
        });
        n
    }
}

/// Visits one named parameter (helper for layer impls).
pub(crate) fn visit_param<T: Scalar>(
    path: &mut Path,
    name: &str,
    p: &Param<T>,
    f: &mut dyn FnMut(&str, Entry<'_, T>),
) {
    path.with(name, |path| f(path.as_str(), Entry::Param(p)));
}

/// Visits one named parameter mutably (helper for layer impls).
pub(crate) fn visit_param_mut<T: Scalar>(
    path: &mut Path,
    name: &str,
    p: &mut Param<T>,
    f: &mut dyn FnMut(&str, EntryMut<'_, T>),
) {
    path.with(name, |path| f(path.as_str(), EntryMut::Param(p)));
}

/// [`Module::infer`] through the graph: `forward` in evaluation mode on a graph that
/// records nothing for backward, the value copied into `out`. The default for layers
/// without a direct path.
pub fn infer_on_graph<T: Scalar, M: Module<T> + ?Sized>(
    model: &M,
    x: &Tensor<T>,
    out: &mut Tensor<T>,
) -> Result<()> {
    let mut g = Graph::new_no_grad();
    let xv = g.input_ref(x);
    let y = model.forward(&mut g, xv, &mut Ctx::eval())?;
    let value = g.value(y)?;
    out.resize_to(*value.shape());
    out.data_mut().copy_from_slice(value.data());
    Ok(())
}

/// Runs a module in evaluation mode without recording gradients and returns the
/// output tensor: the inference path ([`Module::infer`] into a new tensor; call
/// `infer` with a kept output tensor to reuse its buffer).
pub fn predict<T: Scalar>(model: &dyn Module<T>, x: &Tensor<T>) -> Result<Tensor<T>> {
    let mut out = Tensor::empty();
    model.infer(x, &mut out)?;
    Ok(out)
}
