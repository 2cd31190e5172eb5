//! Recurrent layers: the vanilla RNN, [LSTM](crate::lstm) and [GRU](crate::gru) share
//! one driver ([`Recurrent`]) that unrolls a cell over time (backpropagation through
//! time is then ordinary backward on the unrolled graph).
//!
//! Vanilla RNN (PyTorch's `nn.RNN`), per layer and time step:
//! `h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)` with `act` = tanh or ReLU.
//!
//! Layout: input `[batch, time, features]`; the outputs of the last layer are
//! `[batch, time, hidden]`; final states `h_n` (and `c_n` for the LSTM) are
//! `[layers, batch, hidden]`, as in PyTorch with `batch_first=True`. Weights have
//! PyTorch's names, shapes and gate order (`weight_ih_l0: [G*H, I]`, `weight_hh_l0:
//! [G*H, H]`, `bias_ih_l0`, `bias_hh_l0`, with `G` = 1, 4 (i, f, g, o) or 3 (r, z, n)),
//! so a state dict can be copied across.
//!
//! Uses: many-to-many is [`SeqOutput::output`]; many-to-one reads the last state
//! ([`SeqOutput::last`]); one-to-many feeds [`Recurrent::step`] its own output.
//! Variable-length batches pass `lengths`: past a sequence's end its state is frozen
//! and its outputs are zero (PyTorch's packed-sequence semantics), so `h_n` is each
//! sequence's state at its own last step, in either direction.
//!
//! Truncated BPTT: with `truncate = Some(k)` the state is detached from the graph
//! every `k` steps, so gradients flow back at most `k` steps (plus the outputs'
//! own step). To train on long streams in chunks instead, pass each chunk's final
//! state (as a constant) as the next chunk's `h0` / `c0`.
//!
//! ```
//! use dl_autograd::Graph;
//! use dl_core::{Rng, Tensor};
//! use dl_layers::{RecurrentConfig, SeqOptions, SequenceLayer};
//! let mut rng = Rng::seed_from_u64(0);
//! let lstm = RecurrentConfig::lstm(3, 5).num_layers(2).init::<f32>(&mut rng).unwrap();
//! let x = Tensor::rand_normal(&[4, 7, 3], 0.0, 1.0, &mut rng).unwrap();
//! let mut g = Graph::new();
//! let xv = g.input(&x);
//! let out = lstm.run(&mut g, xv, &SeqOptions::default()).unwrap();
//! assert_eq!(g.shape(out.output).unwrap().dims(), &[4, 7, 5]);
//! assert_eq!(g.shape(out.h_n).unwrap().dims(), &[2, 4, 5]);
//! let last = out.last(&mut g).unwrap(); // many-to-one: [batch, hidden]
//! assert_eq!(g.shape(last).unwrap().dims(), &[4, 5]);
//! ```

use crate::error::{check, Result};
use crate::module::{Ctx, Entry, EntryMut, Module, Path};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use dl_autograd::{Graph, Param, ParamSet, RecurrentCell, RecurrentInputs, RecurrentSpec, Var};
use dl_core::{init, Rng, Scalar, Shape, Tensor};
use dl_deploy::{Graph as DeployGraph, RecurrentLayer, Result as DeployResult, TensorId};

/// The activation of a vanilla RNN cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    Tanh,
    /// `max(0, x)`.
    Relu,
}

/// Which recurrent cell a [`Recurrent`] layer unrolls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Vanilla RNN with the given activation (1 gate block).
    Rnn(Nonlinearity),
    /// Long short-term memory (4 gate blocks: i, f, g, o); see [`crate::lstm`].
    Lstm,
    /// Gated recurrent unit (3 gate blocks: r, z, n); see [`crate::gru`].
    Gru,
}

impl CellKind {
    /// Number of `[H]` blocks stacked in each weight matrix.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// The fused op's cell.
    fn fused(self) -> RecurrentCell {
        match self {
            CellKind::Rnn(Nonlinearity::Tanh) => RecurrentCell::RnnTanh,
            CellKind::Rnn(Nonlinearity::Relu) => RecurrentCell::RnnRelu,
            CellKind::Lstm => RecurrentCell::Lstm,
            CellKind::Gru => RecurrentCell::Gru,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }

    /// The deployment engine's cell.
    fn deployed(self) -> dl_core::recurrent::Cell {
        use dl_core::recurrent::Cell;
        match self {
            CellKind::Rnn(Nonlinearity::Tanh) => Cell::RnnTanh,
            CellKind::Rnn(Nonlinearity::Relu) => Cell::RnnRelu,
            CellKind::Lstm => Cell::Lstm,
            CellKind::Gru => Cell::Gru,
        }
    }
}

/// Configuration of a [`Recurrent`] layer (RNN, LSTM or GRU).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentConfig {
    /// The cell.
    pub kind: CellKind,
    /// Input features `I`, >= 1.
    pub input_size: usize,
    /// Hidden units `H`, >= 1.
    pub hidden_size: usize,
    /// Stacked layers, >= 1 (layer `l > 0` reads layer `l - 1`'s outputs).
    pub num_layers: usize,
    /// Whether to learn `b_ih` and `b_hh` (default true).
    pub bias: bool,
    /// LSTM only: the initial value of the forget gate's bias (`b_ih` part; the `b_hh`
    /// part starts at 0). Default `Some(1.0)`, so the cell remembers from the start;
    /// `None` keeps PyTorch's uniform init.
    pub forget_bias: Option<f64>,
    /// Truncated BPTT: detach the state every `k >= 1` steps (`None`: full BPTT).
    pub truncate: Option<usize>,
}

impl RecurrentConfig {
    fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        RecurrentConfig {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            forget_bias: Some(1.0),
            truncate: None,
        }
    }

    /// A tanh RNN `input_size -> hidden_size`.
    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Rnn(Nonlinearity::Tanh), input_size, hidden_size)
    }

    /// An LSTM `input_size -> hidden_size` (forget-gate bias 1).
    pub fn lstm(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Lstm, input_size, hidden_size)
    }

    /// A GRU `input_size -> hidden_size`.
    pub fn gru(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Gru, input_size, hidden_size)
    }

    /// The RNN's activation (only for [`CellKind::Rnn`]).
    pub fn nonlinearity(mut self, act: Nonlinearity) -> Self {
        if let CellKind::Rnn(_) = self.kind {
            self.kind = CellKind::Rnn(act);
        }
        self
    }

    /// Number of stacked layers.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }

    /// With or without biases.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Initial forget-gate bias (LSTM); `None` for PyTorch's uniform init.
    pub fn forget_bias(mut self, b: Option<f64>) -> Self {
        self.forget_bias = b;
        self
    }

    /// Truncated BPTT every `k` steps.
    pub fn truncate(mut self, k: Option<usize>) -> Self {
        self.truncate = k;
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        let layer = self.kind.name();
        check(
            layer,
            "input_size",
            self.input_size as f64,
            self.input_size >= 1,
            ">= 1",
        )?;
        check(
            layer,
            "hidden_size",
            self.hidden_size as f64,
            self.hidden_size >= 1,
            ">= 1",
        )?;
        check(
            layer,
            "num_layers",
            self.num_layers as f64,
            self.num_layers >= 1,
            ">= 1",
        )?;
        if let Some(fb) = self.forget_bias {
            check(layer, "forget_bias", fb, fb.is_finite(), "finite")?;
        }
        if let Some(k) = self.truncate {
            check(layer, "truncate", k as f64, k >= 1, ">= 1")?;
        }
        Ok(())
    }

    /// The layer with PyTorch's initialization, `U(-1/sqrt(H), 1/sqrt(H))` for every
    /// weight and bias, then the LSTM forget-gate bias set as configured.
    pub fn init<T: Scalar>(self, rng: &mut Rng) -> Result<Recurrent<T>> {
        self.validate()?;
        let (h, gh) = (self.hidden_size, self.kind.gates() * self.hidden_size);
        let bound = T::from_f64_lossy(1.0 / libm::sqrt(h as f64));
        let mut uniform = |dims: &[usize]| -> Result<Param<T>> {
            let mut t = Tensor::zeros(dims)?;
            init::uniform(t.data_mut(), -bound, bound, rng);
            Ok(Param::new(t))
        };
        let mut layers = Vec::with_capacity(self.num_layers);
        for l in 0..self.num_layers {
            let input = if l == 0 { self.input_size } else { h };
            let weight_ih = uniform(&[gh, input])?;
            let weight_hh = uniform(&[gh, h])?;
            let (mut bias_ih, mut bias_hh) = (None, None);
            if self.bias {
                bias_ih = Some(uniform(&[gh])?);
                bias_hh = Some(uniform(&[gh])?);
            }
            if let (CellKind::Lstm, Some(bi), Some(bh), Some(fb)) =
                (self.kind, &mut bias_ih, &mut bias_hh, self.forget_bias)
            {
                bi.value_mut()[h..2 * h].fill(T::from_f64_lossy(fb));
                bh.value_mut()[h..2 * h].fill(T::ZERO);
            }
            layers.push(CellWeights {
                weight_ih,
                weight_hh,
                bias_ih,
                bias_hh,
            });
        }
        Ok(Recurrent {
            kind: self.kind,
            input_size: self.input_size,
            hidden_size: h,
            truncate: self.truncate,
            layers,
        })
    }
}

/// The weights of one layer, in PyTorch's layout.
#[derive(Clone, Debug)]
pub struct CellWeights<T: Scalar = f32> {
    /// `[G*H, I]` (or `[G*H, H]` above the first layer).
    pub weight_ih: Param<T>,
    /// `[G*H, H]`.
    pub weight_hh: Param<T>,
    /// `[G*H]`, if biased.
    pub bias_ih: Option<Param<T>>,
    /// `[G*H]`, if biased.
    pub bias_hh: Option<Param<T>>,
}

/// The weights of one layer registered on a graph for one forward pass.
#[derive(Clone, Copy, Debug)]
pub struct CellVars {
    /// `W_ih`, `[G*H, I]`.
    pub w_ih: Var,
    /// `W_hh`, `[G*H, H]`.
    pub w_hh: Var,
    /// `b_ih`, `[G*H]`.
    pub b_ih: Option<Var>,
    /// `b_hh`, `[G*H]`.
    pub b_hh: Option<Var>,
    /// Hidden size `H`.
    pub hidden: usize,
}

impl<T: Scalar> CellWeights<T> {
    /// Registers the weights on `g`.
    pub fn register<'p>(&'p self, g: &mut Graph<'p, T>, hidden: usize) -> Result<CellVars> {
        Ok(CellVars {
            w_ih: g.param(&self.weight_ih),
            w_hh: g.param(&self.weight_hh),
            b_ih: self.bias_ih.as_ref().map(|b| g.param(b)),
            b_hh: self.bias_hh.as_ref().map(|b| g.param(b)),
            hidden,
        })
    }
}

/// The recurrent state of one layer: `h` (and `c` for the LSTM), each `[B, H]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    /// Hidden state.
    pub h: Var,
    /// Memory cell (LSTM only).
    pub c: Option<Var>,
}

/// Options of one pass over a sequence.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqOptions<'a> {
    /// Valid length of each batch entry (each in `1..=T`); `None`: all are `T` long.
    pub lengths: Option<&'a [usize]>,
    /// Run from the last step to the first (the backward half of a bidirectional
    /// layer); outputs stay in time order.
    pub reverse: bool,
    /// Initial hidden states `[layers, B, H]` (zeros if `None`).
    pub h0: Option<Var>,
    /// Initial memory cells `[layers, B, H]` (LSTM; zeros if `None`).
    pub c0: Option<Var>,
}

/// What a pass over a sequence returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeqOutput {
    /// The last layer's hidden state at every step, `[B, T, H]` (zero past a
    /// sequence's length).
    pub output: Var,
    /// Final hidden state of every layer, `[layers, B, H]`.
    pub h_n: Var,
    /// Final memory cell of every layer (LSTM), `[layers, B, H]`.
    pub c_n: Option<Var>,
}

impl SeqOutput {
    /// The last layer's final hidden state `[B, H]` (many-to-one).
    pub fn last<T: Scalar>(&self, g: &mut Graph<'_, T>) -> Result<Var> {
        let s = g.shape(self.h_n)?;
        s.check_rank(3, "SeqOutput::last", "3 ([layers, batch, hidden])")?;
        let (l, b, h) = (s.dims()[0], s.dims()[1], s.dims()[2]);
        let top = g.slice(self.h_n, 0, l - 1, l)?;
        Ok(g.reshape(top, &[b, h])?)
    }
}

/// A layer that maps a `[B, T, F]` sequence to `[B, T, H]` outputs and final states:
/// what [`crate::Bidirectional`] wraps.
pub trait SequenceLayer<T: Scalar>: Module<T> {
    /// One pass over `x: [B, T, F]`.
    fn run<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, opts: &SeqOptions<'_>) -> Result<SeqOutput>;

    /// Features per step of the output (`H`).
    fn output_size(&self) -> usize;

    /// Appends this layer, in evaluation mode, to a deployment graph reading
    /// `x: [B, T, F]` (see [`crate::export`]): its outputs `[B, T, H]` go to columns
    /// `col..col + H` of the existing tensor `y: [B, T, W]`, stepping from the last
    /// step to the first when `reverse` (so [`crate::Bidirectional`] lowers both
    /// halves into one output, with no concatenation). Layers without a deployable
    /// form keep this default, an error naming the layer.
    fn lower_into(
        &self,
        g: &mut DeployGraph,
        x: TensorId,
        reverse: bool,
        y: TensorId,
        col: usize,
    ) -> DeployResult<()> {
        let _ = (g, x, reverse, y, col);
        Err(crate::export::unsupported::<Self>(
            "it has no deployable form",
        ))
    }
}

/// A stack of recurrent layers (RNN, LSTM or GRU); see the module doc.
#[derive(Clone, Debug)]
pub struct Recurrent<T: Scalar = f32> {
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    truncate: Option<usize>,
    /// Per-layer weights, bottom first.
    pub layers: Vec<CellWeights<T>>,
}

/// A vanilla RNN (a [`Recurrent`] with a [`CellKind::Rnn`] cell).
pub type Rnn<T = f32> = Recurrent<T>;

/// A copy of `v` that is a constant of the graph: gradients stop there.
pub fn detach<T: Scalar>(g: &mut Graph<'_, T>, v: Var) -> Result<Var> {
    let t = g.value(v)?.clone();
    Ok(g.input(&t))
}

impl<T: Scalar> Recurrent<T> {
    /// The cell.
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Input features of the first layer.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Hidden units per layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Number of stacked layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// One time step of one layer's cell: `xw = x_t W_ih^T + b_ih` (`[B, G*H]`) and
    /// the previous state give the next state.
    pub fn cell_step(
        &self,
        g: &mut Graph<'_, T>,
        w: &CellVars,
        xw: Var,
        s: State,
    ) -> Result<State> {
        match self.kind {
            CellKind::Rnn(act) => {
                let pre = hidden_pre(g, w, xw, s.h)?;
                let h = match act {
                    Nonlinearity::Tanh => g.tanh(pre)?,
                    Nonlinearity::Relu => g.relu(pre)?,
                };
                Ok(State { h, c: None })
            }
            CellKind::Lstm => crate::lstm::lstm_step(g, w, xw, s),
            CellKind::Gru => crate::gru::gru_step(g, w, xw, s),
        }
    }

    /// One step of the whole stack on `x_t: [B, I]` (for generation, one-to-many):
    /// `states` holds one [`State`] per layer and is updated; returns the top layer's
    /// new `h`. `vars` comes from [`Recurrent::register`].
    pub fn step(
        &self,
        g: &mut Graph<'_, T>,
        vars: &[CellVars],
        x_t: Var,
        states: &mut [State],
    ) -> Result<Var> {
        let mut x = x_t;
        for (w, s) in vars.iter().zip(states.iter_mut()) {
            let xw = g.linear(x, w.w_ih, w.b_ih)?;
            *s = self.cell_step(g, w, xw, *s)?;
            x = s.h;
        }
        Ok(x)
    }

    /// Many-to-one for deployment: appends the stack to a deployment graph reading
    /// `x: [B, T, F]` and returns the top layer's final hidden state `[B, H]`, what
    /// [`SeqOutput::last`] gives (see [`crate::export`]). A model with a head on the
    /// last state lowers itself with this, then lowers its head.
    pub fn lower_last(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        self.lower_stack(g, x, false, true, None)
    }

    /// One `Recurrent(f32)` op per layer, each reading the one below; the top one
    /// writes the last step only when `last_only`, into `into = (y, col)` if given.
    fn lower_stack(
        &self,
        g: &mut DeployGraph,
        mut x: TensorId,
        reverse: bool,
        last_only: bool,
        into: Option<(TensorId, usize)>,
    ) -> DeployResult<TensorId> {
        use crate::export::f32s;
        let Some(top) = self.layers.len().checked_sub(1) else {
            return Err(crate::export::unsupported::<Self>("it has no layers"));
        };
        for (li, l) in self.layers.iter().enumerate() {
            let (w_ih, w_hh) = (f32s(l.weight_ih.value()), f32s(l.weight_hh.value()));
            let b_ih = l.bias_ih.as_ref().map(|b| f32s(b.value()));
            let b_hh = l.bias_hh.as_ref().map(|b| f32s(b.value()));
            let layer = RecurrentLayer {
                cell: self.kind.deployed(),
                hidden: self.hidden_size,
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: b_ih.as_deref(),
                b_hh: b_hh.as_deref(),
                reverse,
                last_only: last_only && li == top,
            };
            x = match into {
                Some((y, col)) if li == top => {
                    g.recurrent_into(x, layer, y, col)?;
                    y
                }
                _ => g.recurrent(x, layer)?,
            };
        }
        Ok(x)
    }

    /// Registers every layer's weights on `g`, for [`Recurrent::step`].
    pub fn register<'p>(&'p self, g: &mut Graph<'p, T>) -> Result<Vec<CellVars>> {
        self.layers
            .iter()
            .map(|l| l.register(g, self.hidden_size))
            .collect()
    }

    /// Zero states for a batch of `b`, one per layer (for [`Recurrent::step`]).
    pub fn zero_states(&self, g: &mut Graph<'_, T>, b: usize) -> Result<Vec<State>> {
        let z = Tensor::zeros(&[b, self.hidden_size])?;
        let h = g.input(&z);
        let c = (self.kind == CellKind::Lstm).then_some(h);
        Ok(vec![State { h, c }; self.layers.len()])
    }

    fn initial_state(
        &self,
        g: &mut Graph<'_, T>,
        opts: &SeqOptions<'_>,
        layer: usize,
        zeros: Var,
        b: usize,
    ) -> Result<State> {
        let (l, hs) = (self.layers.len(), self.hidden_size);
        let mut pick = |v: Option<Var>, what: &'static str| -> Result<Var> {
            let Some(v) = v else { return Ok(zeros) };
            let s = g.shape(v)?;
            if s.dims() != [l, b, hs] {
                return Err(dl_core::Error::ShapeMismatch {
                    op: what,
                    lhs: Shape::new(&[l, b, hs])?,
                    rhs: s,
                    why: "initial state must be [layers, batch, hidden]",
                }
                .into());
            }
            let one = g.slice(v, 0, layer, layer + 1)?;
            Ok(g.reshape(one, &[b, hs])?)
        };
        let h = pick(opts.h0, "Recurrent h0")?;
        let c = if self.kind == CellKind::Lstm {
            Some(pick(opts.c0, "Recurrent c0")?)
        } else {
            None
        };
        Ok(State { h, c })
    }
}

/// `xw + h W_hh^T + b_hh` (RNN and LSTM pre-activations).
pub(crate) fn hidden_pre<T: Scalar>(
    g: &mut Graph<'_, T>,
    w: &CellVars,
    xw: Var,
    h: Var,
) -> Result<Var> {
    let hw = g.linear(h, w.w_hh, w.b_hh)?;
    Ok(g.add(xw, hw)?)
}

/// Checks `x: [B, T, F]` against the layer and the lengths; returns `(B, T)`.
pub(crate) fn check_sequence<T: Scalar>(
    g: &Graph<'_, T>,
    x: Var,
    features: usize,
    lengths: Option<&[usize]>,
    op: &'static str,
) -> Result<(usize, usize)> {
    let s = g.shape(x)?;
    s.check_rank(3, op, "3 ([batch, time, features])")?;
    let (b, t, f) = (s.dims()[0], s.dims()[1], s.dims()[2]);
    if f != features {
        return Err(dl_core::Error::ShapeMismatch {
            op,
            lhs: s,
            rhs: Shape::new(&[features])?,
            why: "the last axis of the input must equal the layer's input size",
        }
        .into());
    }
    if let Some(len) = lengths {
        if len.len() != b {
            return Err(dl_core::Error::LengthMismatch {
                op,
                what: "lengths",
                expected: b,
                actual: len.len(),
            }
            .into());
        }
        if let Some(&bad) = len.iter().find(|&&n| n == 0 || n > t) {
            check(op, "lengths[i]", bad as f64, false, "1..=time steps")?;
        }
    }
    Ok((b, t))
}

impl<T: Scalar> SequenceLayer<T> for Recurrent<T> {
    fn run<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, opts: &SeqOptions<'_>) -> Result<SeqOutput> {
        let op = self.kind.name();
        let (b, t) = check_sequence(g, x, self.input_size, opts.lengths, op)?;
        let hs = self.hidden_size;
        let zeros = g.input(&Tensor::zeros(&[b, hs])?);
        let spec = RecurrentSpec {
            cell: self.kind.fused(),
            reverse: opts.reverse,
            truncate: self.truncate,
        };
        let mut input = x;
        let (mut h_last, mut c_last) = (Vec::new(), Vec::new());
        for (li, layer) in self.layers.iter().enumerate() {
            let w = layer.register(g, hs)?;
            // The input projection of every step in one product, then the whole
            // recurrence as one fused node (dl-autograd's `recurrent`).
            let features = g.shape(input)?.dims()[2];
            let flat = g.reshape(input, &[b * t, features])?;
            let xw = g.linear(flat, w.w_ih, w.b_ih)?;
            let state = self.initial_state(g, opts, li, zeros, b)?;
            let inputs = RecurrentInputs {
                xw,
                w_hh: w.w_hh,
                b_hh: w.b_hh,
                h0: state.h,
                c0: state.c,
            };
            // [B, T + S, H]: the outputs, then h_n (and c_n).
            let y = g.recurrent(spec, inputs, opts.lengths)?;
            input = g.slice(y, 1, 0, t)?;
            // [B, 1, H] and [1, B, H] hold the same elements in the same order.
            let h = g.slice(y, 1, t, t + 1)?;
            h_last.push(g.reshape(h, &[1, b, hs])?);
            if self.kind == CellKind::Lstm {
                let c = g.slice(y, 1, t + 1, t + 2)?;
                c_last.push(g.reshape(c, &[1, b, hs])?);
            }
        }
        let h_n = g.concat(&h_last, 0)?;
        let c_n = if c_last.is_empty() {
            None
        } else {
            Some(g.concat(&c_last, 0)?)
        };
        Ok(SeqOutput {
            output: input,
            h_n,
            c_n,
        })
    }

    fn output_size(&self) -> usize {
        self.hidden_size
    }

    fn lower_into(
        &self,
        g: &mut DeployGraph,
        x: TensorId,
        reverse: bool,
        y: TensorId,
        col: usize,
    ) -> DeployResult<()> {
        self.lower_stack(g, x, reverse, false, Some((y, col)))
            .map(|_| ())
    }
}

impl<T: Scalar> ParamSet<T> for Recurrent<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        for l in &mut self.layers {
            f(&mut l.weight_ih);
            f(&mut l.weight_hh);
            if let Some(b) = &mut l.bias_ih {
                f(b);
            }
            if let Some(b) = &mut l.bias_hh {
                f(b);
            }
        }
    }
}

impl<T: Scalar> Module<T> for Recurrent<T> {
    /// Many-to-many: `[B, T, I] -> [B, T, H]` (the last layer's outputs).
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        Ok(self.run(g, x, &SeqOptions::default())?.output)
    }

    /// One `Recurrent(f32)` op per layer, `[B, T, F] -> [B, T, H]`, in f32 (see
    /// [`dl_core::recurrent`]; for many-to-one, [`Recurrent::lower_last`]).
    fn lower(&self, g: &mut DeployGraph, x: TensorId) -> DeployResult<TensorId> {
        self.lower_stack(g, x, false, false, None)
    }

    /// PyTorch's names: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, ...
    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        for (i, l) in self.layers.iter().enumerate() {
            let mut one = |name: &str, p: &Param<T>| {
                path.with(&format!("{name}_l{i}"), |p2| {
                    f(p2.as_str(), Entry::Param(p))
                });
            };
            one("weight_ih", &l.weight_ih);
            one("weight_hh", &l.weight_hh);
            if let Some(b) = &l.bias_ih {
                one("bias_ih", b);
            }
            if let Some(b) = &l.bias_hh {
                one("bias_hh", b);
            }
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            let mut one = |name: &str, p: &mut Param<T>| {
                path.with(&format!("{name}_l{i}"), |p2| {
                    f(p2.as_str(), EntryMut::Param(p))
                });
            };
            one("weight_ih", &mut l.weight_ih);
            one("weight_hh", &mut l.weight_hh);
            if let Some(b) = &mut l.bias_ih {
                one("bias_ih", b);
            }
            if let Some(b) = &mut l.bias_hh {
                one("bias_hh", b);
            }
        }
    }
}
