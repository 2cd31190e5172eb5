//! The export-side graph: what a trained model lowers to before it becomes a blob.
//!
//! Layers append nodes in execution order ([`Graph::dense`], [`Graph::conv2d`], ...),
//! each returning the id of the tensor it writes. Activations are NHWC; the
//! builder takes PyTorch's layouts (`[out, in]` dense weights, OIHW convolution
//! weights, NCHW input shapes) and converts them, so a layer lowers itself with its
//! own tensors as they are. Batch norm folds into the layer before it; ReLU and
//! ReLU6 fuse into the dense, convolution or add before them. A TensorFlow Lite
//! model, already NHWC and quantized, becomes a graph through
//! [`crate::tflite::import`], which fills the public fields directly.

use crate::error::{Error, Result};
use crate::format::DType;
use crate::op::Cell;
use crate::op::{Act, Unary};
use alloc::vec;
use alloc::vec::Vec;

/// Index of a tensor in a [`Graph`].
pub type TensorId = usize;

/// Affine quantization of a tensor: `real = scale * (q - zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// The real value of one step.
    pub scale: f32,
    /// The integer that stands for real zero.
    pub zero_point: i32,
}

/// An activation tensor of the graph (weights live in the nodes).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Dimensions: `[n, h, w, c]` for images, `[n, features]` for vectors.
    pub dims: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Quantization, for int8 tensors.
    pub quant: Option<QParams>,
    /// For a reshaped view: the tensor whose storage it shares.
    pub view_of: Option<TensorId>,
    /// For a flattened image: its `(h, w, c)`, so that the dense layer after it can
    /// reorder its weight columns from PyTorch's CHW order to the NHWC order the
    /// values are in.
    pub chw: Option<[usize; 3]>,
}

impl Tensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Bytes of storage.
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size()
    }
}

/// The weights of a dense or convolution layer: f32 as trained, or int8 with one
/// symmetric scale per output channel (TensorFlow Lite's spec), plus the bias in
/// int32 at scale `input_scale * weight_scale[o]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Weights {
    /// As trained.
    F32 {
        /// `[out, ...]` row-major (dense `[out, in]`, convolution OHWI).
        w: Vec<f32>,
        /// One per output channel, or none.
        bias: Option<Vec<f32>>,
    },
    /// Quantized.
    I8 {
        /// Weights in `[-127, 127]`, same layout as `F32`.
        q: Vec<i8>,
        /// One scale per output channel.
        scales: Vec<f32>,
        /// Bias in int32 (zero where the layer had none).
        bias: Vec<i32>,
    },
}

/// Geometry of a convolution: kernel, stride, padding and dilation as `(height,
/// width)`, and groups. The padding is the top/left one; the bottom/right one is the
/// same, or one more when the output tensor is one row or column larger
/// (TensorFlow Lite's `SAME` with an odd total, from [`crate::tflite::import`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Kernel size.
    pub kernel: (usize, usize),
    /// Stride.
    pub stride: (usize, usize),
    /// Zero padding at the top/left (the bottom/right: see above).
    pub padding: (usize, usize),
    /// Dilation.
    pub dilation: (usize, usize),
    /// Groups (`c_in` for depthwise).
    pub groups: usize,
}

/// Geometry of a pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolParams {
    /// Window size.
    pub kernel: (usize, usize),
    /// Stride.
    pub stride: (usize, usize),
    /// Padding at the top/left (the bottom/right as for [`ConvParams`]).
    pub padding: (usize, usize),
}

/// One node, in execution order.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// f32 to int8 with the output's quantization.
    Quantize {
        /// Input (f32).
        x: TensorId,
        /// Output (int8).
        y: TensorId,
    },
    /// int8 to f32 with the input's quantization.
    Dequantize {
        /// Input (int8).
        x: TensorId,
        /// Output (f32).
        y: TensorId,
    },
    /// Fully connected over the last axis.
    Dense {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
        /// `[out, in]`.
        weights: Weights,
        /// Fused activation.
        act: Act,
    },
    /// Convolution on NHWC with OHWI weights.
    Conv2d {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
        /// `[c_out, kh, kw, c_in / groups]`.
        weights: Weights,
        /// Geometry.
        params: ConvParams,
        /// Fused activation.
        act: Act,
    },
    /// Max pooling.
    MaxPool {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
        /// Window.
        params: PoolParams,
    },
    /// Average pooling.
    AvgPool {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
        /// Window.
        params: PoolParams,
        /// Divide by the full window (PyTorch's default) rather than its in-bounds taps.
        count_include_pad: bool,
    },
    /// Global average pooling over height and width.
    Mean {
        /// Input `[n, h, w, c]`.
        x: TensorId,
        /// Output `[n, c]`.
        y: TensorId,
    },
    /// `y = act(a + b)`.
    Add {
        /// First addend.
        a: TensorId,
        /// Second addend.
        b: TensorId,
        /// Output.
        y: TensorId,
        /// Fused activation.
        act: Act,
    },
    /// An element-wise function.
    Unary {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
        /// The function.
        f: Unary,
    },
    /// Softmax over the last axis.
    Softmax {
        /// Input.
        x: TensorId,
        /// Output.
        y: TensorId,
    },
    /// Decision trees (see [`crate::classic::Forest`]) to the predicted class's
    /// position, one i32 per row.
    Trees {
        /// Input `[n, features]`.
        x: TensorId,
        /// Output `[n, 1]`, i32.
        y: TensorId,
        /// `n_trees + 1` node indices.
        roots: Vec<u32>,
        /// Two words per node.
        nodes: Vec<u32>,
        /// Class probability rows, `n_classes` each.
        table: Vec<f64>,
        /// Number of classes.
        n_classes: usize,
    },
    /// Gaussian naive Bayes (see [`crate::classic::GaussianNb`]) to the predicted
    /// class's position, one i32 per row.
    GaussianNb {
        /// Input `[n, features]`.
        x: TensorId,
        /// Output `[n, 1]`, i32.
        y: TensorId,
        /// `log pi_c`.
        prior: Vec<f32>,
        /// Means, `classes x features`.
        theta: Vec<f32>,
        /// Variances.
        var: Vec<f32>,
        /// `ln(2 pi var)`.
        log_term: Vec<f32>,
    },
    /// A recurrent layer over a sequence in f32 (see [`dl_core::recurrent`] for the
    /// equations), writing columns `col..col + hidden` of every row of `y`.
    Recurrent {
        /// Input `[n, t, features]`.
        x: TensorId,
        /// Output `[n, t, width]`, or `[n, width]` for the last step only.
        y: TensorId,
        /// The cell.
        cell: Cell,
        /// Hidden units `H`.
        hidden: usize,
        /// Steps run from the last to the first (outputs stay in time order).
        reverse: bool,
        /// Only the state after the last step run is written.
        last_only: bool,
        /// The first column of `y`'s rows this layer writes.
        col: usize,
        /// `W_ih`, `[G*H, features]`, gates in PyTorch's order.
        w_ih: Vec<f32>,
        /// `W_hh`, `[G*H, H]`.
        w_hh: Vec<f32>,
        /// `b_ih`, `[G*H]`, if any.
        b_ih: Option<Vec<f32>>,
        /// `b_hh`, `[G*H]`, if any.
        b_hh: Option<Vec<f32>>,
    },
}

/// One recurrent layer for [`Graph::recurrent`]: its cell, its weights in PyTorch's
/// layout and gate order (LSTM i, f, g, o; GRU r, z, n; `G` = 1, 4 or 3 blocks), and
/// how it runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentLayer<'a> {
    /// The cell.
    pub cell: Cell,
    /// Hidden units `H`.
    pub hidden: usize,
    /// `W_ih`, `[G*H, features]` (`weight_ih_l0`).
    pub w_ih: &'a [f32],
    /// `W_hh`, `[G*H, H]` (`weight_hh_l0`).
    pub w_hh: &'a [f32],
    /// `b_ih`, `[G*H]`, if any.
    pub b_ih: Option<&'a [f32]>,
    /// `b_hh`, `[G*H]`, if any.
    pub b_hh: Option<&'a [f32]>,
    /// Run from the last step to the first (the backward half of a bidirectional
    /// layer); outputs stay in time order.
    pub reverse: bool,
    /// Write only the state after the last step run, `[n, H]` (many-to-one), instead
    /// of every step's, `[n, t, H]`.
    pub last_only: bool,
}

impl Node {
    /// The tensors the node reads.
    pub fn inputs(&self) -> Vec<TensorId> {
        match *self {
            Node::Add { a, b, .. } => vec![a, b],
            Node::Quantize { x, .. }
            | Node::Dequantize { x, .. }
            | Node::Dense { x, .. }
            | Node::Conv2d { x, .. }
            | Node::MaxPool { x, .. }
            | Node::AvgPool { x, .. }
            | Node::Mean { x, .. }
            | Node::Unary { x, .. }
            | Node::Softmax { x, .. }
            | Node::Trees { x, .. }
            | Node::GaussianNb { x, .. } => vec![x],
            Node::Recurrent { x, .. } => vec![x],
        }
    }

    /// The tensor the node writes.
    pub fn output(&self) -> TensorId {
        match *self {
            Node::Quantize { y, .. }
            | Node::Dequantize { y, .. }
            | Node::Dense { y, .. }
            | Node::Conv2d { y, .. }
            | Node::MaxPool { y, .. }
            | Node::AvgPool { y, .. }
            | Node::Mean { y, .. }
            | Node::Add { y, .. }
            | Node::Unary { y, .. }
            | Node::Softmax { y, .. }
            | Node::Trees { y, .. }
            | Node::GaussianNb { y, .. } => y,
            Node::Recurrent { y, .. } => y,
        }
    }
}

/// A model in deployable form: activation tensors and nodes in execution order,
/// one input and one output.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// Every activation tensor.
    pub tensors: Vec<Tensor>,
    /// The nodes, in execution order.
    pub nodes: Vec<Node>,
    /// The input tensor.
    pub input: TensorId,
    /// The output tensor (the last node's output unless set otherwise).
    pub output: TensorId,
}

fn graph_err(op: &'static str, why: &'static str) -> Error {
    Error::Graph { op, why }
}

impl Graph {
    /// A graph whose f32 input has PyTorch's shape: `[n, c, h, w]` for images (stored
    /// NHWC), or `[n, features]` / `[n, t, features]`.
    pub fn new(input_shape: &[usize]) -> Result<Self> {
        if input_shape.is_empty() || input_shape.len() > 4 || input_shape.contains(&0) {
            return Err(Error::InvalidParameter {
                op: "Graph::new",
                name: "input_shape",
                value: input_shape.len() as f64,
                valid: "1 to 4 dimensions, none zero",
            });
        }
        let dims = match *input_shape {
            [n, c, h, w] => vec![n, h, w, c],
            _ => input_shape.to_vec(),
        };
        let mut g = Graph {
            tensors: Vec::new(),
            nodes: Vec::new(),
            input: 0,
            output: 0,
        };
        g.input = g.tensor(dims, DType::F32);
        g.output = g.input;
        Ok(g)
    }

    /// Adds a tensor and returns its id.
    pub fn tensor(&mut self, dims: Vec<usize>, dtype: DType) -> TensorId {
        self.tensors.push(Tensor {
            dims,
            dtype,
            quant: None,
            view_of: None,
            chw: None,
        });
        self.tensors.len() - 1
    }

    fn dims(&self, t: TensorId) -> &[usize] {
        &self.tensors[t].dims
    }

    fn push(&mut self, node: Node) -> TensorId {
        let y = node.output();
        self.nodes.push(node);
        self.output = y;
        y
    }

    /// `[n, h, w, c]` of an image tensor, or an error naming `op`.
    fn image(&self, x: TensorId, op: &'static str) -> Result<[usize; 4]> {
        match *self.dims(x) {
            [n, h, w, c] => Ok([n, h, w, c]),
            _ => Err(graph_err(op, "needs an image input [n, c, h, w]")),
        }
    }

    /// A dense layer `y = x W^T + b` over the last axis, `w: [out, in]` in PyTorch's
    /// order. After a flattened image, the columns are reordered from CHW to the
    /// NHWC order the engine stores.
    pub fn dense(
        &mut self,
        x: TensorId,
        w: &[f32],
        bias: Option<&[f32]>,
        outputs: usize,
    ) -> Result<TensorId> {
        let dims = self.dims(x).to_vec();
        let inputs = *dims.last().unwrap_or(&0);
        if outputs == 0 || w.len() != outputs * inputs || bias.is_some_and(|b| b.len() != outputs) {
            return Err(graph_err(
                "Linear",
                "weights [out, in] and bias [out] must match the input's features",
            ));
        }
        let mut w = w.to_vec();
        if let Some([h, wd, c]) = self.tensors[x].chw {
            for row in w.chunks_exact_mut(inputs) {
                let chw = row.to_vec();
                for ch in 0..c {
                    for i in 0..h * wd {
                        row[i * c + ch] = chw[ch * h * wd + i];
                    }
                }
            }
        }
        let mut out = dims;
        *out.last_mut().unwrap_or(&mut 0) = outputs;
        let y = self.tensor(out, DType::F32);
        Ok(self.push(Node::Dense {
            x,
            y,
            weights: Weights::F32 {
                w,
                bias: bias.map(<[f32]>::to_vec),
            },
            act: Act::None,
        }))
    }

    /// A convolution with PyTorch's OIHW weights `[c_out, c_in / groups, kh, kw]`.
    pub fn conv2d(
        &mut self,
        x: TensorId,
        w_oihw: &[f32],
        bias: Option<&[f32]>,
        c_out: usize,
        params: ConvParams,
    ) -> Result<TensorId> {
        const OP: &str = "Conv2d";
        let [n, h, wd, c_in] = self.image(x, OP)?;
        let g = dl_core::quant::ConvGeometry::new(
            n,
            h,
            wd,
            c_in,
            c_out,
            params.kernel.0,
            params.kernel.1,
            params.stride,
            params.padding,
            params.dilation,
            params.groups,
        )
        .map_err(|_| {
            graph_err(
                OP,
                "kernel, stride, padding, dilation and groups do not fit the input",
            )
        })?;
        let (kh, kw) = params.kernel;
        let cpg = c_in / params.groups;
        if w_oihw.len() != c_out * cpg * kh * kw || bias.is_some_and(|b| b.len() != c_out) {
            return Err(graph_err(
                OP,
                "weights [c_out, c_in / groups, kh, kw] and bias [c_out] must match",
            ));
        }
        let mut ohwi = vec![0.0; w_oihw.len()];
        for o in 0..c_out {
            for i in 0..cpg {
                for ky in 0..kh {
                    for kx in 0..kw {
                        ohwi[((o * kh + ky) * kw + kx) * cpg + i] =
                            w_oihw[((o * cpg + i) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        let y = self.tensor(vec![n, g.out_h, g.out_w, c_out], DType::F32);
        Ok(self.push(Node::Conv2d {
            x,
            y,
            weights: Weights::F32 {
                w: ohwi,
                bias: bias.map(<[f32]>::to_vec),
            },
            params,
            act: Act::None,
        }))
    }

    /// Batch normalization in evaluation mode, `y = x * scale[c] + shift[c]` per
    /// channel, folded into the dense or convolution layer that produced `x`.
    pub fn batch_norm(&mut self, x: TensorId, scale: &[f32], shift: &[f32]) -> Result<TensorId> {
        const OP: &str = "BatchNorm";
        let single_use = self
            .nodes
            .iter()
            .filter(|n| n.inputs().contains(&x))
            .count()
            == 0;
        let node = self
            .nodes
            .last_mut()
            .filter(|n| n.output() == x && single_use);
        let Some(
            Node::Dense {
                weights: Weights::F32 { w, bias },
                act: Act::None,
                ..
            }
            | Node::Conv2d {
                weights: Weights::F32 { w, bias },
                act: Act::None,
                ..
            },
        ) = node
        else {
            return Err(graph_err(
                OP,
                "folds only into a Linear or Conv2d right before it (with no activation between)",
            ));
        };
        let c = scale.len();
        if shift.len() != c || c == 0 || w.len() % c != 0 {
            return Err(graph_err(
                OP,
                "needs one scale and shift per output channel of the layer before it",
            ));
        }
        let per = w.len() / c;
        for (o, row) in w.chunks_exact_mut(per).enumerate() {
            for v in row {
                *v *= scale[o];
            }
        }
        let b = bias.get_or_insert_with(|| vec![0.0; c]);
        for o in 0..c {
            b[o] = b[o] * scale[o] + shift[o];
        }
        Ok(x)
    }

    /// Max pooling.
    pub fn max_pool(&mut self, x: TensorId, params: PoolParams) -> Result<TensorId> {
        let y = self.pool_output(x, params, "MaxPool2d")?;
        Ok(self.push(Node::MaxPool { x, y, params }))
    }

    /// Average pooling; `count_include_pad` (PyTorch's default) divides by the whole
    /// window, else by the taps inside the input (TensorFlow Lite's rule); without
    /// padding the two agree and the node records `false`.
    pub fn avg_pool(
        &mut self,
        x: TensorId,
        params: PoolParams,
        count_include_pad: bool,
    ) -> Result<TensorId> {
        let y = self.pool_output(x, params, "AvgPool2d")?;
        // Without padding both rules divide by the whole window; one spelling for it
        // (TensorFlow Lite's, which is what an imported model has) keeps a graph and
        // its `.tflite` round trip the same bytes.
        Ok(self.push(Node::AvgPool {
            x,
            y,
            params,
            count_include_pad: count_include_pad && params.padding != (0, 0),
        }))
    }

    fn pool_output(&mut self, x: TensorId, p: PoolParams, op: &'static str) -> Result<TensorId> {
        let [n, h, w, c] = self.image(x, op)?;
        let g = dl_core::quant::PoolGeometry::new(
            n, h, w, c, p.kernel.0, p.kernel.1, p.stride, p.padding,
        )
        .map_err(|_| graph_err(op, "window, stride and padding do not fit the input"))?;
        Ok(self.tensor(vec![n, g.out_h, g.out_w, c], DType::F32))
    }

    /// Global average pooling to `[n, c]`.
    pub fn mean(&mut self, x: TensorId) -> Result<TensorId> {
        let [n, _, _, c] = self.image(x, "GlobalAvgPool")?;
        let y = self.tensor(vec![n, c], DType::F32);
        Ok(self.push(Node::Mean { x, y }))
    }

    /// `a + b` (a residual connection); a ReLU after it fuses.
    pub fn add(&mut self, a: TensorId, b: TensorId) -> Result<TensorId> {
        if self.dims(a) != self.dims(b) {
            return Err(graph_err("Add", "addends must have one shape"));
        }
        let y = self.tensor(self.dims(a).to_vec(), DType::F32);
        self.tensors[y].chw = self.tensors[a].chw;
        Ok(self.push(Node::Add {
            a,
            b,
            y,
            act: Act::None,
        }))
    }

    /// An element-wise activation. ReLU and ReLU6 fuse into a dense, convolution or
    /// add node right before them whose output nothing else reads.
    pub fn unary(&mut self, x: TensorId, f: Unary) -> Result<TensorId> {
        let fused = match f {
            Unary::Relu => Some(Act::Relu),
            Unary::Relu6 => Some(Act::Relu6),
            _ => None,
        };
        let read_elsewhere = self.nodes.iter().any(|n| n.inputs().contains(&x)) || x == self.input;
        if let (Some(new), false) = (fused, read_elsewhere) {
            if let Some(
                Node::Dense { y, act, .. } | Node::Conv2d { y, act, .. } | Node::Add { y, act, .. },
            ) = self.nodes.last_mut()
            {
                if *y == x && *act == Act::None {
                    *act = new;
                    return Ok(x);
                }
            }
        }
        if let Unary::LeakyRelu(s) = f {
            if !s.is_finite() {
                return Err(Error::InvalidParameter {
                    op: "LeakyRelu",
                    name: "slope",
                    value: s as f64,
                    valid: "a finite number",
                });
            }
        }
        let y = self.tensor(self.dims(x).to_vec(), DType::F32);
        self.tensors[y].chw = self.tensors[x].chw;
        Ok(self.push(Node::Unary { x, y, f }))
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: TensorId) -> Result<TensorId> {
        let y = self.tensor(self.dims(x).to_vec(), DType::F32);
        Ok(self.push(Node::Softmax { x, y }))
    }

    /// Decision trees on `x: [n, features]`, to one predicted class position per
    /// row; the trees are checked as the engine checks them.
    pub fn trees(
        &mut self,
        x: TensorId,
        roots: Vec<u32>,
        nodes: Vec<u32>,
        table: Vec<f64>,
        n_classes: usize,
    ) -> Result<TensorId> {
        const OP: &str = "trees";
        let dims = self.dims(x).to_vec();
        let words: Vec<u32> = table
            .iter()
            .flat_map(|v| [v.to_bits() as u32, (v.to_bits() >> 32) as u32])
            .collect();
        let n_features = *dims.last().unwrap_or(&0);
        let forest = crate::classic::Forest {
            roots: &roots,
            nodes: &nodes,
            table: &words,
            n_classes,
            n_features,
        };
        if n_classes == 0 || !table.len().is_multiple_of(n_classes) || dims.len() != 2 {
            return Err(graph_err(
                OP,
                "an input [n, features] and whole rows of class probabilities",
            ));
        }
        forest.check(0).map_err(|_| {
            graph_err(
                OP,
                "every walk must stay in its tree and end on a leaf of the table",
            )
        })?;
        let y = self.tensor(vec![dims[0], 1], DType::I32);
        Ok(self.push(Node::Trees {
            x,
            y,
            roots,
            nodes,
            table,
            n_classes,
        }))
    }

    /// Gaussian naive Bayes on `x: [n, features]`, to one predicted class position
    /// per row.
    pub fn gaussian_nb(
        &mut self,
        x: TensorId,
        prior: Vec<f32>,
        theta: Vec<f32>,
        var: Vec<f32>,
        log_term: Vec<f32>,
    ) -> Result<TensorId> {
        let dims = self.dims(x).to_vec();
        let kd = prior.len() * dims.last().copied().unwrap_or(0);
        if prior.is_empty()
            || dims.len() != 2
            || theta.len() != kd
            || var.len() != kd
            || log_term.len() != kd
        {
            return Err(graph_err(
                "gaussian_nb",
                "an input [n, features] and classes x features parameters",
            ));
        }
        let y = self.tensor(vec![dims[0], 1], DType::I32);
        Ok(self.push(Node::GaussianNb {
            x,
            y,
            prior,
            theta,
            var,
            log_term,
        }))
    }

    /// A recurrent layer over `x: [n, t, features]` (see [`RecurrentLayer`] and
    /// [`dl_core::recurrent`] for the equations): returns its new output, `[n, t, H]`
    /// with every step's hidden state, or `[n, H]` with the last one.
    pub fn recurrent(&mut self, x: TensorId, layer: RecurrentLayer<'_>) -> Result<TensorId> {
        let [n, t] = self.check_recurrent(x, &layer)?;
        let dims = if layer.last_only {
            vec![n, layer.hidden]
        } else {
            vec![n, t, layer.hidden]
        };
        let y = self.tensor(dims, DType::F32);
        self.recurrent_into(x, layer, y, 0)?;
        Ok(y)
    }

    /// A recurrent layer writing columns `col..col + H` of an existing tensor
    /// `y: [n, t, width]` (`[n, width]` for the last step only) and leaving the other
    /// columns as they are: two of them fill the halves of a bidirectional layer's
    /// `[n, t, 2H]` output, with no concatenation op.
    pub fn recurrent_into(
        &mut self,
        x: TensorId,
        layer: RecurrentLayer<'_>,
        y: TensorId,
        col: usize,
    ) -> Result<()> {
        const OP: &str = "Recurrent";
        let [n, t] = self.check_recurrent(x, &layer)?;
        let Some(out) = self.tensors.get(y) else {
            return Err(graph_err(OP, "no such output tensor"));
        };
        let width = match (layer.last_only, out.dims.as_slice()) {
            (false, &[yn, yt, w]) if (yn, yt) == (n, t) => w,
            (true, &[yn, w]) if yn == n => w,
            _ => return Err(graph_err(OP, "the output must be [n, t, width] ([n, width] for the last step) with the input's n and t")),
        };
        if y == x || out.dtype != DType::F32 || out.view_of.is_some() || col + layer.hidden > width
        {
            return Err(graph_err(
                OP,
                "the output must be another f32 tensor whose rows hold columns col..col + hidden",
            ));
        }
        let RecurrentLayer {
            cell,
            hidden,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            reverse,
            last_only,
        } = layer;
        self.push(Node::Recurrent {
            x,
            y,
            cell,
            hidden,
            reverse,
            last_only,
            col,
            w_ih: w_ih.to_vec(),
            w_hh: w_hh.to_vec(),
            b_ih: b_ih.map(<[f32]>::to_vec),
            b_hh: b_hh.map(<[f32]>::to_vec),
        });
        Ok(())
    }

    /// `[n, t]` of a recurrent layer's input, after checking the weights' sizes.
    fn check_recurrent(&self, x: TensorId, layer: &RecurrentLayer<'_>) -> Result<[usize; 2]> {
        const OP: &str = "Recurrent";
        let &[n, t, features] = self.dims(x) else {
            return Err(graph_err(OP, "needs a sequence input [n, t, features]"));
        };
        let g =
            dl_core::recurrent::RecurrentGeometry::new(layer.cell, n, t, features, layer.hidden)
                .map_err(|_| graph_err(OP, "needs at least one hidden unit"))?;
        let bias_ok = |b: Option<&[f32]>| b.is_none_or(|b| b.len() == g.bias_len());
        if layer.w_ih.len() != g.w_ih_len()
            || layer.w_hh.len() != g.w_hh_len()
            || !bias_ok(layer.b_ih)
            || !bias_ok(layer.b_hh)
        {
            return Err(graph_err(OP, "weights [G*H, features], [G*H, H] and biases [G*H] must match the input and hidden size"));
        }
        Ok([n, t])
    }

    /// Flattens `[n, ...]` to `[n, rest]`: a view of the same storage (no op runs).
    pub fn flatten(&mut self, x: TensorId) -> Result<TensorId> {
        let dims = self.dims(x).to_vec();
        let n = dims[0];
        let rest: usize = dims[1..].iter().product();
        if dims.len() <= 2 {
            return Ok(x);
        }
        let chw = match *dims.as_slice() {
            [_, h, w, c] if h * w > 1 => Some([h, w, c]),
            _ => None,
        };
        let base = self.tensors[x].view_of.unwrap_or(x);
        let y = self.tensor(vec![n, rest], self.tensors[x].dtype);
        self.tensors[y].view_of = Some(base);
        self.tensors[y].chw = chw;
        self.output = y;
        Ok(y)
    }

    /// Makes `t` the output instead of the last node's.
    pub fn set_output(&mut self, t: TensorId) -> Result<()> {
        if t >= self.tensors.len() {
            return Err(graph_err("Graph::set_output", "no such tensor"));
        }
        self.output = t;
        Ok(())
    }

    /// Number of weights and biases (the model's parameters).
    pub fn num_params(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match n {
                Node::Dense { weights, .. } | Node::Conv2d { weights, .. } => match weights {
                    Weights::F32 { w, bias } => w.len() + bias.as_ref().map_or(0, Vec::len),
                    Weights::I8 { q, bias, .. } => q.len() + bias.len(),
                },
                Node::Recurrent {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    ..
                } => {
                    w_ih.len()
                        + w_hh.len()
                        + b_ih.as_ref().map_or(0, Vec::len)
                        + b_hh.as_ref().map_or(0, Vec::len)
                }
                _ => 0,
            })
            .sum()
    }
}
