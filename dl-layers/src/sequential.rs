//! `Sequential`: layers applied one after another, named `0`, `1`, ... in checkpoints.

use crate::error::Result;
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use alloc::boxed::Box;
use alloc::vec::Vec;
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::{Scalar, Tensor};
use dl_deploy::{Graph as DeployGraph, Result as DeployResult, TensorId};

/// A chain of modules.
///
/// ```
/// use dl_layers::{Activation, LinearConfig, Module, Sequential};
/// use dl_core::Rng;
/// let mut rng = Rng::seed_from_u64(0);
/// // The course's 3-4-2 network: 3*4 + 4 + 4*2 + 2 = 26 learnable parameters.
/// let net: Sequential<f32> = Sequential::new()
///     .push(LinearConfig::new(3, 4).init(&mut rng).unwrap())
///     .push(Activation::Sigmoid)
///     .push(LinearConfig::new(4, 2).init(&mut rng).unwrap());
/// assert_eq!(net.num_params(), 26);
/// ```
#[derive(Default)]
pub struct Sequential<T: Scalar = f32> {
    layers: Vec<Box<dyn Module<T>>>,
}

impl<T: Scalar> Sequential<T> {
    /// An empty chain.
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer.
    pub fn push(mut self, layer: impl Module<T> + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Scalar> ParamSet<T> for Sequential<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        for l in &mut self.layers {
            l.for_each_param(f);
        }
    }
}

/// Decimal name of a child index without allocating (up to 20 digits).
pub(crate) fn index_name(i: usize, buf: &mut [u8; 20]) -> &str {
    let mut n = i;
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[pos..]).unwrap_or("?")
}

impl<T: Scalar> Module<T> for Sequential<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, mut x: Var, ctx: &mut Ctx) -> Result<Var> {
        for l in &self.layers {
            x = l.forward(g, x, ctx)?;
        }
        Ok(x)
    }

    fn infer(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<()> {
        let n = self.layers.len();
        if n == 0 {
            out.resize_to(*x.shape());
            out.data_mut().copy_from_slice(x.data());
            return Ok(());
        }
        // Layers write alternately into `out` and one temporary, arranged so that
        // the last one writes into `out`.
        let mut tmp = Tensor::empty();
        for (i, l) in self.layers.iter().enumerate() {
            let into_out = (n - 1 - i).is_multiple_of(2);
            match (i == 0, into_out) {
                (true, true) => l.infer(x, out)?,
                (true, false) => l.infer(x, &mut tmp)?,
                (false, true) => l.infer(&tmp, out)?,
                (false, false) => l.infer(out, &mut tmp)?,
            }
        }
        Ok(())
    }

    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        crate::export::lower_all(&self.layers, g, x)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        let mut buf = [0u8; 20];
        for (i, l) in self.layers.iter().enumerate() {
            path.with(index_name(i, &mut buf), |p| l.visit(p, f));
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        let mut buf = [0u8; 20];
        for (i, l) in self.layers.iter_mut().enumerate() {
            path.with(index_name(i, &mut buf), |p| l.visit_mut(p, f));
        }
    }
}
