//! `Op`: what produced a node, with its inputs. Plain data, so a graph can be
//! inspected (`graph.op(var)`) and the backward pass is one `match` over it.

use crate::graph::Var;
use crate::ops::attention::AttentionSpec;
use crate::ops::recurrent::RecurrentSpec;
use dl_core::conv::Conv2dParams;
use dl_core::elementwise::{Binary, Unary};
use dl_core::pool::Pool2dParams;
use dl_core::MAX_RANK;

/// A reduction along one axis (the axis is removed from the shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum of the elements.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Largest element; the gradient goes to the first maximum.
    Max,
}

/// The affine part of a normalization: `y = gamma * x_hat + beta`, both `[C]` (batch
/// norm) or `[D]` (layer norm over the last axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine {
    /// Scale, one per channel / feature.
    pub gamma: Var,
    /// Shift, one per channel / feature.
    pub beta: Var,
}

/// The operation that produced a node, with its input handles and settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// A constant input (no gradient), copied into the graph.
    Input,
    /// A constant input read in place from a borrowed tensor (no gradient).
    InputRef {
        /// Position in the graph's list of borrowed inputs.
        index: usize,
    },
    /// A leaf whose gradient is kept in the graph.
    Variable,
    /// A registered parameter; `index` is its registration order on this graph.
    Param {
        /// Position in the graph's parameter list.
        index: usize,
    },
    /// `y = f(x)` elementwise (exp, log, sqrt, pow, abs, neg, activations).
    Unary {
        /// The function.
        op: Unary,
        /// Input.
        x: Var,
    },
    /// `y = f(a, b)` elementwise with NumPy broadcasting.
    Binary {
        /// The function.
        op: Binary,
        /// Left input.
        a: Var,
        /// Right input.
        b: Var,
    },
    /// Matrix product, 2-D `[m, k] x [k, n]` or batched 3-D `[B, m, k] x [B, k, n]`
    /// (either side may be 2-D and shared across the batch).
    MatMul {
        /// Left input.
        a: Var,
        /// Right input.
        b: Var,
    },
    /// Fused dense layer `y = x W^T + b` (`x: [N, in]`, `W: [out, in]`, `b: [out]`).
    Linear {
        /// Input.
        x: Var,
        /// Weight.
        w: Var,
        /// Optional bias.
        b: Option<Var>,
    },
    /// Sum, mean or max along `axis` (removed from the shape).
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Input.
        x: Var,
        /// The axis reduced.
        axis: usize,
    },
    /// Sum of all elements (a scalar).
    SumAll {
        /// Input.
        x: Var,
    },
    /// Mean of all elements (a scalar).
    MeanAll {
        /// Input.
        x: Var,
    },
    /// The same elements with another shape.
    Reshape {
        /// Input.
        x: Var,
    },
    /// Axes reordered: output axis `i` is input axis `axes[i]` (first `rank` entries).
    Permute {
        /// Input.
        x: Var,
        /// The permutation (entries past the rank are unused).
        axes: [usize; MAX_RANK],
    },
    /// Inputs joined along `axis`; the input handles are listed by
    /// [`crate::Graph::inputs`].
    Concat {
        /// The axis joined along.
        axis: usize,
        /// Number of inputs.
        count: usize,
    },
    /// `x[.., start..end, ..]` along `axis`.
    Slice {
        /// Input.
        x: Var,
        /// The axis sliced.
        axis: usize,
        /// First index kept.
        start: usize,
        /// One past the last index kept.
        end: usize,
    },
    /// Entries of `x` at the given indices along `axis` (embedding lookup for axis 0).
    IndexSelect {
        /// Input.
        x: Var,
        /// The axis indexed.
        axis: usize,
    },
    /// Softmax over the last axis.
    Softmax {
        /// Input.
        x: Var,
    },
    /// Log-softmax over the last axis.
    LogSoftmax {
        /// Input.
        x: Var,
    },
    /// 2-D convolution (NCHW input, `[c_out, c_in / groups, kh, kw]` weight, optional
    /// `[c_out]` bias).
    Conv2d {
        /// Input.
        x: Var,
        /// Weight.
        w: Var,
        /// Optional bias.
        b: Option<Var>,
        /// Stride, padding, dilation, groups.
        params: Conv2dParams,
    },
    /// 2-D max pooling (NCHW).
    MaxPool2d {
        /// Input.
        x: Var,
        /// Kernel, stride, padding.
        params: Pool2dParams,
    },
    /// 2-D average pooling (NCHW, padding counted as zeros).
    AvgPool2d {
        /// Input.
        x: Var,
        /// Kernel, stride, padding.
        params: Pool2dParams,
    },
    /// Inverted dropout (training mode): each element kept with probability `1 - p`
    /// and scaled by `1 / (1 - p)`.
    Dropout {
        /// Input.
        x: Var,
        /// Drop probability.
        p: f64,
    },
    /// Batch normalization per channel (axis 1) of `[N, C]` or `[N, C, H, W]`.
    BatchNorm {
        /// Input.
        x: Var,
        /// Optional scale and shift.
        affine: Option<Affine>,
        /// Added to the variance.
        eps: f64,
        /// Batch statistics (`true`) or given running statistics (`false`).
        train: bool,
    },
    /// Layer normalization over the last axis.
    LayerNorm {
        /// Input.
        x: Var,
        /// Optional scale and shift.
        affine: Option<Affine>,
        /// Added to the variance.
        eps: f64,
    },
    /// Mean softmax cross-entropy of `[N, C]` logits against class indices.
    CrossEntropy {
        /// Logits.
        logits: Var,
    },
    /// Mean softmax cross-entropy of `[N, C]` logits against probability rows.
    SoftCrossEntropy {
        /// Logits.
        logits: Var,
        /// Target probabilities (or one-hot rows).
        target: Var,
    },
    /// Mean binary cross-entropy of logits against targets in `[0, 1]`.
    BceWithLogits {
        /// Logits.
        logits: Var,
        /// Targets.
        target: Var,
    },
    /// Mean squared error.
    Mse {
        /// Prediction.
        pred: Var,
        /// Target.
        target: Var,
    },
    /// A whole recurrent layer over a sequence (RNN, LSTM or GRU), see
    /// [`crate::Graph::recurrent`].
    Recurrent {
        /// Every step's input projection `[B, T, G*H]`.
        xw: Var,
        /// Hidden-to-hidden weights `[G*H, H]`.
        w_hh: Var,
        /// Hidden bias `[G*H]`.
        b_hh: Option<Var>,
        /// Initial hidden state `[B, H]`.
        h0: Var,
        /// Initial memory cell `[B, H]` (LSTM).
        c0: Option<Var>,
        /// Cell, direction, truncation.
        spec: RecurrentSpec,
    },
    /// Fused multi-head self-attention on a packed `[B*T, 3E]` projection, see
    /// [`crate::Graph::self_attention`].
    SelfAttention {
        /// `[Q | K | V]`, `[B*T, 3E]`.
        qkv: Var,
        /// Batch, heads, causal.
        spec: AttentionSpec,
    },
    /// Mean absolute error.
    Mae {
        /// Prediction.
        pred: Var,
        /// Target.
        target: Var,
    },
    /// Mean Huber loss with threshold `delta`.
    Huber {
        /// Prediction.
        pred: Var,
        /// Target.
        target: Var,
        /// Where the loss turns from quadratic to linear.
        delta: f64,
    },
}

impl Op {
    /// Whether this is a leaf (input, variable or parameter).
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input | Op::InputRef { .. } | Op::Variable | Op::Param { .. }
        )
    }

    /// A short name, e.g. `"matmul"`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::InputRef { .. } => "input_ref",
            Op::Variable => "variable",
            Op::Param { .. } => "param",
            Op::Unary { op, .. } => op.name(),
            Op::Binary { op, .. } => op.name(),
            Op::MatMul { .. } => "matmul",
            Op::Linear { .. } => "linear",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "sum",
                ReduceOp::Mean => "mean",
                ReduceOp::Max => "max",
            },
            Op::SumAll { .. } => "sum_all",
            Op::MeanAll { .. } => "mean_all",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::IndexSelect { .. } => "index_select",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Conv2d { .. } => "conv2d",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::Dropout { .. } => "dropout",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::SoftCrossEntropy { .. } => "soft_cross_entropy",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::Mse { .. } => "mse",
            Op::Mae { .. } => "mae",
            Op::Huber { .. } => "huber",
            Op::Recurrent { .. } => "recurrent",
            Op::SelfAttention { .. } => "self_attention",
        }
    }

    /// Calls `f` on each input handle in order; `listed` holds concat's inputs (as
    /// node indices of the graph with `epoch`).
    pub(crate) fn for_each_input(&self, listed: &[usize], epoch: u32, mut f: impl FnMut(Var)) {
        let affine = |a: &Option<Affine>, f: &mut dyn FnMut(Var)| {
            if let Some(a) = a {
                f(a.gamma);
                f(a.beta);
            }
        };
        match self {
            Op::Input | Op::InputRef { .. } | Op::Variable | Op::Param { .. } => {}
            Op::Unary { x, .. }
            | Op::Reduce { x, .. }
            | Op::SumAll { x }
            | Op::MeanAll { x }
            | Op::Reshape { x }
            | Op::Permute { x, .. }
            | Op::Slice { x, .. }
            | Op::IndexSelect { x, .. }
            | Op::Softmax { x }
            | Op::LogSoftmax { x }
            | Op::MaxPool2d { x, .. }
            | Op::AvgPool2d { x, .. }
            | Op::Dropout { x, .. }
            | Op::CrossEntropy { logits: x }
            | Op::SelfAttention { qkv: x, .. } => f(*x),
            Op::Binary { a, b, .. } | Op::MatMul { a, b } => {
                f(*a);
                f(*b);
            }
            Op::Concat { .. } => {
                for &i in listed {
                    f(Var::from_parts(i, epoch));
                }
            }
            Op::Recurrent {
                xw,
                w_hh,
                b_hh,
                h0,
                c0,
                ..
            } => {
                f(*xw);
                f(*w_hh);
                if let Some(b) = b_hh {
                    f(*b);
                }
                f(*h0);
                if let Some(c) = c0 {
                    f(*c);
                }
            }
            Op::Conv2d { x, w, b, .. } | Op::Linear { x, w, b } => {
                f(*x);
                f(*w);
                if let Some(b) = b {
                    f(*b);
                }
            }
            Op::BatchNorm { x, affine: a, .. } | Op::LayerNorm { x, affine: a, .. } => {
                f(*x);
                affine(a, &mut f);
            }
            Op::SoftCrossEntropy { logits, target } | Op::BceWithLogits { logits, target } => {
                f(*logits);
                f(*target);
            }
            Op::Mse { pred, target }
            | Op::Mae { pred, target }
            | Op::Huber { pred, target, .. } => {
                f(*pred);
                f(*target);
            }
        }
    }
}
