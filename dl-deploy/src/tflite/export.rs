//! The `.tflite` writer: a [`Graph`] (f32, or int8 as [`crate::quantize()`] makes it)
//! as one TensorFlow Lite subgraph, with the builders flatc generated from the schema.
//!
//! The file keeps the graph's tensor order: activation `i` of the graph is tensor `i`
//! of the file, and the constants (weights, biases, `MEAN`'s axes) follow in node
//! order, so [`super::import()`] gives back the graph with the same tensor ids and
//! [`crate::encode()`] the same blob.

use super::import::{sweep, Sweep};
use super::schema::tflite as fb;
use crate::error::{Error, Result};
use crate::format::DType;
use crate::graph::{ConvParams, Graph, Node, PoolParams, QParams, TensorId, Weights};
use crate::op::{Act, Unary};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

type Builder<'b> = FlatBufferBuilder<'b>;

/// `g` as the bytes of a `.tflite` file that TensorFlow Lite Micro's interpreter
/// runs: one subgraph, NHWC activations, the graph's input and output as the model's.
///
/// Every number is written as the graph holds it: int8 weights symmetric per output
/// channel (`quantized_dimension` 0 for `CONV_2D` and `FULLY_CONNECTED`, 3 for
/// `DEPTHWISE_CONV_2D`), int32 biases at scale `input_scale * weight_scale[o]`,
/// activations with their scale and zero point. A node TensorFlow Lite cannot run
/// the way the engine does gives [`Error::TfLite`] with the node's index in
/// `g.nodes` (or `None` for the graph as a whole) and the operator it would become:
/// trees, naive Bayes, recurrent layers and leaky ReLU (no such builtin here);
/// padding other than TensorFlow Lite's `SAME` or `VALID`; average pooling that
/// counts padding; and int8 outputs of `SOFTMAX`, `LOGISTIC`, `TANH`, `RELU6`,
/// pooling and `MEAN` whose quantization is not the one TensorFlow Lite's kernels
/// write.
pub fn export(g: &Graph) -> Result<Vec<u8>> {
    let mut ex = Exporter {
        g,
        fbb: Builder::with_capacity(1024),
        constants: Vec::new(),
        codes: Vec::new(),
        ops: Vec::new(),
        written: vec![false; g.tensors.len()],
        at: None,
    };
    let n = g.tensors.len();
    if g.input >= n || g.output >= n || g.nodes.is_empty() {
        return Err(whole(
            "a graph with nodes and its input and output among its tensors",
        ));
    }
    if g.tensors[g.input].view_of.is_some() {
        return Err(whole("an input that is a tensor of its own, not a view"));
    }
    let ids_ok = g
        .nodes
        .iter()
        .all(|node| node.inputs().iter().all(|&t| t < n) && node.output() < n)
        && g.tensors.iter().all(|t| t.view_of.is_none_or(|v| v < n));
    if !ids_ok {
        return Err(whole("nodes and views that refer to tensors of the graph"));
    }
    for t in &g.tensors {
        // Bounded like the importer's tensors, so no size computed from them overflows.
        let bytes = t
            .dims
            .iter()
            .try_fold(4usize, |acc, &d| acc.checked_mul(d))
            .filter(|&b| b <= u32::MAX as usize);
        if t.dims.is_empty() || t.dims.contains(&0) || bytes.is_none() {
            return Err(whole("tensor shapes of positive dimensions, under 4 GiB"));
        }
        let q_ok = |q: QParams| {
            q.scale.is_finite() && q.scale > 0.0 && (-128..=127).contains(&q.zero_point)
        };
        if t.dtype == DType::I8 && !t.quant.is_some_and(q_ok) {
            return Err(whole(
                "a positive finite scale and a zero point in -128..=127 on every int8 tensor",
            ));
        }
    }
    ex.written[g.input] = true;
    for (i, node) in g.nodes.iter().enumerate() {
        ex.at = Some((i, "model"));
        ex.node(node)?;
    }
    ex.at = None;
    // Only the classic nodes, refused by name above, write other types.
    if g.tensors
        .iter()
        .any(|t| !matches!(t.dtype, DType::F32 | DType::I8))
    {
        return Err(whole("FLOAT32 and INT8 tensors only"));
    }
    ex.reshape_if_view(g.output)?;
    ex.finish()
}

/// An error about the graph as a whole.
fn whole(why: &'static str) -> Error {
    Error::TfLite {
        op: None,
        name: "model",
        why,
    }
}

/// A constant tensor waiting to be written: its shape, type, bytes and quantization.
struct Constant {
    dims: Vec<usize>,
    dtype: fb::TensorType,
    data: Vec<u8>,
    /// Per-channel scales (zero points all 0) and the channel axis.
    quant: Option<(Vec<f32>, i32)>,
}

/// One operator waiting to be written.
struct Op {
    code: usize,
    inputs: Vec<i32>,
    output: i32,
    options_type: fb::BuiltinOptions,
    options: Option<WIPOffset<UnionWIPOffset>>,
}

/// The export in progress.
struct Exporter<'g> {
    g: &'g Graph,
    fbb: Builder<'static>,
    constants: Vec<Constant>,
    /// `(builtin, version)` of each operator code, in order of first use.
    codes: Vec<(fb::BuiltinOperator, i32)>,
    ops: Vec<Op>,
    /// Activations already written by an operator (or the model's input).
    written: Vec<bool>,
    /// The node being exported (index, builtin name), for errors.
    at: Option<(usize, &'static str)>,
}

fn i32s(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn activation(act: Act) -> fb::ActivationFunctionType {
    match act {
        Act::None => fb::ActivationFunctionType::NONE,
        Act::Relu => fb::ActivationFunctionType::RELU,
        Act::Relu6 => fb::ActivationFunctionType::RELU6,
    }
}

impl<'g> Exporter<'g> {
    fn err(&self, why: &'static str) -> Error {
        match self.at {
            Some((i, name)) => Error::TfLite {
                op: Some(i),
                name,
                why,
            },
            None => whole(why),
        }
    }

    /// Names the node being exported by the builtin it becomes.
    fn name(&mut self, op: fb::BuiltinOperator) {
        if let Some((_, name)) = &mut self.at {
            *name = op.variant_name().unwrap_or("unknown builtin");
        }
    }

    fn dtype(&self, t: TensorId) -> DType {
        self.g.tensors[t].dtype
    }

    fn dims(&self, t: TensorId) -> &'g [usize] {
        &self.g.tensors[t].dims
    }

    fn quant(&self, t: TensorId) -> Option<QParams> {
        self.g.tensors[t].quant
    }

    /// The index of a new constant tensor (after every activation).
    fn constant(&mut self, c: Constant) -> i32 {
        let index = self.g.tensors.len() + self.constants.len();
        self.constants.push(c);
        index as i32
    }

    /// The code index of `(op, version)`, added on first use. TensorFlow Lite Micro
    /// finds kernels by builtin code alone (`GetRegistrationFromOpCode` in
    /// `op_resolver_bridge.cc` never reads the version); the versions written are the
    /// converter's for the same op and types, which full TensorFlow Lite's resolver
    /// checks against each kernel's supported range.
    fn code(&mut self, op: fb::BuiltinOperator, version: i32) -> usize {
        match self.codes.iter().position(|&c| c == (op, version)) {
            Some(k) => k,
            None => {
                self.codes.push((op, version));
                self.codes.len() - 1
            }
        }
    }

    /// A view read before anything wrote it becomes a `RESHAPE` of its base (the
    /// engine's views share storage; TensorFlow Lite copies, which gives the same
    /// values).
    fn reshape_if_view(&mut self, t: TensorId) -> Result<()> {
        if self.written[t] {
            return Ok(());
        }
        let Some(base) = self.g.tensors[t].view_of else {
            return Err(self.err("reads a tensor that no earlier node writes"));
        };
        if !self.written[base] {
            return Err(self.err("reads a view of a tensor that no earlier node writes"));
        }
        if self.quant(base) != self.quant(t) || self.dtype(base) != self.dtype(t) {
            return Err(self.err("a view with its base's element type and quantization"));
        }
        let shape: Vec<i32> = self.dims(t).iter().map(|&d| d as i32).collect();
        let new_shape = Some(self.fbb.create_vector(&shape));
        let options =
            fb::ReshapeOptions::create(&mut self.fbb, &fb::ReshapeOptionsArgs { new_shape });
        self.op(
            fb::BuiltinOperator::RESHAPE,
            1,
            vec![base as i32],
            t,
            fb::BuiltinOptions::ReshapeOptions,
            Some(options.as_union_value()),
        );
        Ok(())
    }

    fn op(
        &mut self,
        builtin: fb::BuiltinOperator,
        version: i32,
        inputs: Vec<i32>,
        y: TensorId,
        options_type: fb::BuiltinOptions,
        options: Option<WIPOffset<UnionWIPOffset>>,
    ) {
        let code = self.code(builtin, version);
        self.written[y] = true;
        self.ops.push(Op {
            code,
            inputs,
            output: y as i32,
            options_type,
            options,
        });
    }

    /// The node's inputs, after any `RESHAPE` their views need, and a check that the
    /// output is not written twice.
    fn inputs(&mut self, node: &Node) -> Result<()> {
        for x in node.inputs() {
            self.reshape_if_view(x)?;
        }
        let y = node.output();
        if self.written[y] || self.g.tensors[y].view_of.is_some() {
            return Err(self.err("an output that is a new tensor, written once"));
        }
        Ok(())
    }

    /// Checks that every tensor has the element type `dtype`.
    fn same_dtype(&self, ts: &[TensorId]) -> Result<DType> {
        let d = self.dtype(ts[0]);
        if ts.iter().any(|&t| self.dtype(t) != d) {
            return Err(self.err("inputs and output of one element type"));
        }
        Ok(d)
    }

    /// Checks an int8 output has the quantization TensorFlow Lite's kernel writes.
    fn fixed_output(
        &self,
        y: TensorId,
        scale: f32,
        zero_point: i32,
        why: &'static str,
    ) -> Result<()> {
        match self.quant(y) {
            Some(q) if self.dtype(y) == DType::I8 && q != (QParams { scale, zero_point }) => {
                Err(self.err(why))
            }
            _ => Ok(()),
        }
    }

    /// The padding TensorFlow Lite's rule gives the same top/left padding and output
    /// size as the engine along both axes, if one does.
    fn padding(
        &self,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        dilation: (usize, usize),
    ) -> Result<fb::Padding> {
        if [
            kernel.0, kernel.1, stride.0, stride.1, dilation.0, dilation.1,
        ]
        .contains(&0)
        {
            return Err(self.err("windows, strides and dilations of at least 1"));
        }
        let fits = |p: fb::Padding| {
            let [Sweep { pad: ph, out: oh }, Sweep { pad: pw, out: ow }] = [
                sweep(p, in_hw.0, kernel.0, stride.0, dilation.0),
                sweep(p, in_hw.1, kernel.1, stride.1, dilation.1),
            ];
            (ph, pw) == pad && (oh, ow) == out_hw
        };
        // VALID first: a window that needs no padding is VALID to the converter too.
        [fb::Padding::VALID, fb::Padding::SAME]
            .into_iter()
            .find(|&p| fits(p))
            .ok_or_else(|| {
                self.err("padding other than TensorFlow Lite's SAME or VALID (an explicit PAD op is not exported)")
            })
    }

    fn node(&mut self, node: &Node) -> Result<()> {
        use fb::BuiltinOperator as B;
        let unsupported = match node {
            Node::Trees { .. } => Some(("Trees", "decision trees have no TensorFlow Lite builtin")),
            Node::GaussianNb { .. } => {
                Some(("GaussianNb", "naive Bayes has no TensorFlow Lite builtin"))
            }
            Node::Recurrent { .. } => Some((
                "Recurrent",
                "recurrent layers are not exported (TensorFlow Lite unrolls them into other ops)",
            )),
            Node::Unary {
                f: Unary::LeakyRelu(_),
                ..
            } => Some((
                "LEAKY_RELU",
                "LEAKY_RELU is not among the exported operators",
            )),
            _ => None,
        };
        if let Some((name, why)) = unsupported {
            if let Some((_, n)) = &mut self.at {
                *n = name;
            }
            return Err(self.err(why));
        }
        self.inputs(node)?;
        match *node {
            Node::Quantize { x, y } => {
                self.name(B::QUANTIZE);
                if (self.dtype(x), self.dtype(y)) != (DType::F32, DType::I8) {
                    return Err(self.err("QUANTIZE from FLOAT32 to INT8 only"));
                }
                self.same_shape(x, y)?;
                self.op(
                    B::QUANTIZE,
                    1,
                    vec![x as i32],
                    y,
                    fb::BuiltinOptions::NONE,
                    None,
                );
            }
            Node::Dequantize { x, y } => {
                self.name(B::DEQUANTIZE);
                if (self.dtype(x), self.dtype(y)) != (DType::I8, DType::F32) {
                    return Err(self.err("DEQUANTIZE from INT8 to FLOAT32 only"));
                }
                self.same_shape(x, y)?;
                self.op(
                    B::DEQUANTIZE,
                    2,
                    vec![x as i32],
                    y,
                    fb::BuiltinOptions::NONE,
                    None,
                );
            }
            Node::Dense {
                x,
                y,
                ref weights,
                act,
            } => self.dense(x, y, weights, act)?,
            Node::Conv2d {
                x,
                y,
                ref weights,
                params,
                act,
            } => self.conv(x, y, weights, params, act)?,
            Node::MaxPool { x, y, params } => self.pool(B::MAX_POOL_2D, x, y, params)?,
            Node::AvgPool {
                x,
                y,
                params,
                count_include_pad,
            } => {
                self.name(B::AVERAGE_POOL_2D);
                if count_include_pad && params.padding != (0, 0) {
                    return Err(self.err("an average pooling that counts padding (TensorFlow Lite divides by the taps inside the input)"));
                }
                self.pool(B::AVERAGE_POOL_2D, x, y, params)?
            }
            Node::Mean { x, y } => {
                self.name(B::MEAN);
                let dtype = self.same_dtype(&[x, y])?;
                match (self.dims(x), self.dims(y)) {
                    (&[n, _, _, c], &[yn, yc]) if (n, c) == (yn, yc) => {}
                    _ => return Err(self.err("MEAN of [n, h, w, c] to [n, c]")),
                }
                self.keeps_quant(x, y)?;
                let axes = self.constant(Constant {
                    dims: vec![2],
                    dtype: fb::TensorType::INT32,
                    data: i32s(&[1, 2]),
                    quant: None,
                });
                let options = fb::ReducerOptions::create(
                    &mut self.fbb,
                    &fb::ReducerOptionsArgs { keep_dims: false },
                );
                let version = if dtype == DType::I8 { 2 } else { 1 };
                self.op(
                    B::MEAN,
                    version,
                    vec![x as i32, axes],
                    y,
                    fb::BuiltinOptions::ReducerOptions,
                    Some(options.as_union_value()),
                );
            }
            Node::Add { a, b, y, act } => {
                self.name(B::ADD);
                let dtype = self.same_dtype(&[a, b, y])?;
                if self.dims(a) != self.dims(y) || self.dims(b) != self.dims(y) {
                    return Err(self.err("addends and sum of one shape (no broadcasting)"));
                }
                let options = fb::AddOptions::create(
                    &mut self.fbb,
                    &fb::AddOptionsArgs {
                        fused_activation_function: activation(act),
                        pot_scale_int16: true,
                    },
                );
                let version = if dtype == DType::I8 { 2 } else { 1 };
                self.op(
                    B::ADD,
                    version,
                    vec![a as i32, b as i32],
                    y,
                    fb::BuiltinOptions::AddOptions,
                    Some(options.as_union_value()),
                );
            }
            Node::Unary { x, y, f } => {
                let builtin = match f {
                    Unary::Relu => B::RELU,
                    Unary::Relu6 => B::RELU6,
                    Unary::Sigmoid => B::LOGISTIC,
                    Unary::Tanh => B::TANH,
                    Unary::LeakyRelu(_) => unreachable!("rejected above"),
                };
                self.name(builtin);
                let dtype = self.same_dtype(&[x, y])?;
                self.same_shape(x, y)?;
                match f {
                    Unary::Sigmoid => self.fixed_output(
                        y,
                        1.0 / 256.0,
                        -128,
                        "an int8 LOGISTIC output quantized with scale 1/256 and zero point -128",
                    )?,
                    Unary::Tanh => self.fixed_output(
                        y,
                        1.0 / 128.0,
                        0,
                        "an int8 TANH output quantized with scale 1/128 and zero point 0",
                    )?,
                    // TensorFlow Lite Micro's int8 RELU6 clamps without rescaling.
                    Unary::Relu6 => self.keeps_quant(x, y)?,
                    _ => {}
                }
                let version = if dtype == DType::I8 { 2 } else { 1 };
                self.op(
                    builtin,
                    version,
                    vec![x as i32],
                    y,
                    fb::BuiltinOptions::NONE,
                    None,
                );
            }
            Node::Softmax { x, y } => {
                self.name(B::SOFTMAX);
                let dtype = self.same_dtype(&[x, y])?;
                self.same_shape(x, y)?;
                self.fixed_output(
                    y,
                    1.0 / 256.0,
                    -128,
                    "an int8 SOFTMAX output quantized with scale 1/256 and zero point -128",
                )?;
                let options = fb::SoftmaxOptions::create(
                    &mut self.fbb,
                    &fb::SoftmaxOptionsArgs { beta: 1.0 },
                );
                let version = if dtype == DType::I8 { 2 } else { 1 };
                self.op(
                    B::SOFTMAX,
                    version,
                    vec![x as i32],
                    y,
                    fb::BuiltinOptions::SoftmaxOptions,
                    Some(options.as_union_value()),
                );
            }
            Node::Trees { .. } | Node::GaussianNb { .. } | Node::Recurrent { .. } => {
                unreachable!("rejected above")
            }
        }
        Ok(())
    }

    fn same_shape(&self, x: TensorId, y: TensorId) -> Result<()> {
        if self.dims(x) != self.dims(y) {
            return Err(self.err("an output of its input's shape"));
        }
        Ok(())
    }

    /// Checks an op that keeps its input's quantization (TensorFlow Lite Micro's int8
    /// pooling, `MEAN` and `RELU6` kernels do not rescale).
    fn keeps_quant(&self, x: TensorId, y: TensorId) -> Result<()> {
        if self.quant(x) != self.quant(y) {
            return Err(self.err("an int8 output quantized as its input (scale and zero point)"));
        }
        Ok(())
    }

    /// The weights (and bias) of a dense or convolution layer as constants, in the
    /// file's layout: `reorder` maps each file position to the engine's.
    #[allow(clippy::too_many_arguments)]
    fn weights(
        &mut self,
        x: TensorId,
        dtype: DType,
        weights: &Weights,
        dims: Vec<usize>,
        axis: usize,
        reorder: impl Fn(usize) -> usize,
    ) -> Result<(i32, Option<i32>)> {
        let channels = dims[axis];
        let numel: usize = dims.iter().product();
        match (dtype, weights) {
            (DType::I8, Weights::I8 { q, scales, bias }) => {
                if q.len() != numel || scales.len() != channels || bias.len() != channels {
                    return Err(
                        self.err("weights, scales and bias that match the input and output")
                    );
                }
                if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(self.err("positive finite weight scales"));
                }
                let sx = self.quant(x).map_or(1.0, |p| p.scale);
                let data = (0..numel).map(|k| q[reorder(k)] as u8).collect();
                let w = self.constant(Constant {
                    dims,
                    dtype: fb::TensorType::INT8,
                    data,
                    quant: Some((scales.clone(), axis as i32)),
                });
                // TensorFlow Lite's bias scale; kernels never read it, but the
                // converter writes it and tools check it.
                let bias_scales = scales.iter().map(|&s| sx * s).collect();
                let b = self.constant(Constant {
                    dims: vec![channels],
                    dtype: fb::TensorType::INT32,
                    data: i32s(bias),
                    quant: Some((bias_scales, 0)),
                });
                Ok((w, Some(b)))
            }
            (DType::F32, Weights::F32 { w, bias }) => {
                if w.len() != numel || bias.as_ref().is_some_and(|b| b.len() != channels) {
                    return Err(self.err("weights and bias that match the input and output"));
                }
                let raw: Vec<f32> = (0..numel).map(|k| w[reorder(k)]).collect();
                let w = self.constant(Constant {
                    dims,
                    dtype: fb::TensorType::FLOAT32,
                    data: f32s(&raw),
                    quant: None,
                });
                let b = bias.as_ref().map(|b| {
                    self.constant(Constant {
                        dims: vec![channels],
                        dtype: fb::TensorType::FLOAT32,
                        data: f32s(b),
                        quant: None,
                    })
                });
                Ok((w, b))
            }
            _ => Err(self.err("int8 weights on int8 activations, f32 on f32")),
        }
    }

    fn dense(&mut self, x: TensorId, y: TensorId, weights: &Weights, act: Act) -> Result<()> {
        use fb::BuiltinOperator as B;
        self.name(B::FULLY_CONNECTED);
        let dtype = self.same_dtype(&[x, y])?;
        let (xd, yd) = (self.dims(x), self.dims(y));
        let (Some(&inputs), Some(&outputs)) = (xd.last(), yd.last()) else {
            return Err(self.err("an input and output with a feature axis"));
        };
        if xd.len() != yd.len() || xd[..xd.len() - 1] != yd[..yd.len() - 1] {
            return Err(self.err("an output that differs from the input in the last axis only"));
        }
        let (w, b) = self.weights(x, dtype, weights, vec![outputs, inputs], 0, |k| k)?;
        // Without keep_num_dims TensorFlow Lite folds every leading axis into the
        // batch, so only a 2-D input may leave it unset.
        let keep_num_dims = xd.len() != 2;
        let options = fb::FullyConnectedOptions::create(
            &mut self.fbb,
            &fb::FullyConnectedOptionsArgs {
                fused_activation_function: activation(act),
                keep_num_dims,
                ..Default::default()
            },
        );
        // The converter's versions (tensorflow/lite/tools/versioning): 4 for int8,
        // 5 with keep_num_dims, 6 for a float layer without bias.
        let version = match (keep_num_dims, dtype, b) {
            (true, _, _) => 5,
            (false, DType::I8, _) => 4,
            (false, _, None) => 6,
            _ => 1,
        };
        self.op(
            B::FULLY_CONNECTED,
            version,
            vec![x as i32, w, b.unwrap_or(-1)],
            y,
            fb::BuiltinOptions::FullyConnectedOptions,
            Some(options.as_union_value()),
        );
        Ok(())
    }

    fn conv(
        &mut self,
        x: TensorId,
        y: TensorId,
        weights: &Weights,
        p: ConvParams,
        act: Act,
    ) -> Result<()> {
        use fb::BuiltinOperator as B;
        let &[n, h, w, c_in] = self.dims(x) else {
            self.name(B::CONV_2D);
            return Err(self.err("an NHWC input [n, h, w, c]"));
        };
        let &[yn, oh, ow, c_out] = self.dims(y) else {
            self.name(B::CONV_2D);
            return Err(self.err("an NHWC output [n, h, w, c]"));
        };
        let depthwise = p.groups > 1 && p.groups == c_in;
        self.name(if depthwise {
            B::DEPTHWISE_CONV_2D
        } else {
            B::CONV_2D
        });
        if yn != n || p.groups == 0 || c_in % p.groups != 0 || c_out % p.groups != 0 {
            return Err(self.err("channels that divide into the groups"));
        }
        let dtype = self.same_dtype(&[x, y])?;
        let padding = self.padding((h, w), (oh, ow), p.kernel, p.stride, p.padding, p.dilation)?;
        let (kh, kw) = p.kernel;
        let geometry = [
            p.stride.0,
            p.stride.1,
            p.dilation.0,
            p.dilation.1,
            c_out / c_in,
        ];
        let [Ok(sh), Ok(sw), Ok(dh), Ok(dw), Ok(multiplier)] = geometry.map(i32::try_from) else {
            return Err(self.err("strides and dilations that fit in i32"));
        };
        if depthwise {
            // Engine [c_out, kh, kw, 1]; file [1, kh, kw, c_out]: file position
            // (tap, o) holds engine position (o, tap).
            let taps = kh * kw;
            let (wt, b) = self.weights(x, dtype, weights, vec![1, kh, kw, c_out], 3, |k| {
                (k % c_out) * taps + k / c_out
            })?;
            let options = fb::DepthwiseConv2DOptions::create(
                &mut self.fbb,
                &fb::DepthwiseConv2DOptionsArgs {
                    padding,
                    stride_w: sw,
                    stride_h: sh,
                    depth_multiplier: multiplier,
                    fused_activation_function: activation(act),
                    dilation_w_factor: dw,
                    dilation_h_factor: dh,
                },
            );
            let version = match dtype {
                DType::I8 => 3,
                _ if p.dilation != (1, 1) => 2,
                _ => 1,
            };
            self.op(
                B::DEPTHWISE_CONV_2D,
                version,
                vec![x as i32, wt, b.unwrap_or(-1)],
                y,
                fb::BuiltinOptions::DepthwiseConv2DOptions,
                Some(options.as_union_value()),
            );
        } else {
            let (wt, b) = self.weights(
                x,
                dtype,
                weights,
                vec![c_out, kh, kw, c_in / p.groups],
                0,
                |k| k,
            )?;
            let options = fb::Conv2DOptions::create(
                &mut self.fbb,
                &fb::Conv2DOptionsArgs {
                    padding,
                    stride_w: sw,
                    stride_h: sh,
                    fused_activation_function: activation(act),
                    dilation_w_factor: dw,
                    dilation_h_factor: dh,
                    ..Default::default()
                },
            );
            let version = if dtype == DType::I8 { 3 } else { 1 };
            self.op(
                B::CONV_2D,
                version,
                vec![x as i32, wt, b.unwrap_or(-1)],
                y,
                fb::BuiltinOptions::Conv2DOptions,
                Some(options.as_union_value()),
            );
        }
        Ok(())
    }

    fn pool(
        &mut self,
        builtin: fb::BuiltinOperator,
        x: TensorId,
        y: TensorId,
        p: PoolParams,
    ) -> Result<()> {
        self.name(builtin);
        let dtype = self.same_dtype(&[x, y])?;
        let (&[n, h, w, c], &[yn, oh, ow, yc]) = (self.dims(x), self.dims(y)) else {
            return Err(self.err("an NHWC input and output [n, h, w, c]"));
        };
        if (n, c) != (yn, yc) {
            return Err(self.err("an output with the input's batch and channels"));
        }
        self.keeps_quant(x, y)?;
        let padding = self.padding((h, w), (oh, ow), p.kernel, p.stride, p.padding, (1, 1))?;
        let geometry = [p.stride.0, p.stride.1, p.kernel.0, p.kernel.1].map(i32::try_from);
        let [Ok(sh), Ok(sw), Ok(kh), Ok(kw)] = geometry else {
            return Err(self.err("a window and strides that fit in i32"));
        };
        let args = fb::Pool2DOptionsArgs {
            padding,
            stride_w: sw,
            stride_h: sh,
            filter_width: kw,
            filter_height: kh,
            fused_activation_function: fb::ActivationFunctionType::NONE,
        };
        let options = fb::Pool2DOptions::create(&mut self.fbb, &args);
        let version = if dtype == DType::I8 { 2 } else { 1 };
        self.op(
            builtin,
            version,
            vec![x as i32],
            y,
            fb::BuiltinOptions::Pool2DOptions,
            Some(options.as_union_value()),
        );
        Ok(())
    }

    /// Writes the tensors, buffers, operators and codes, and finishes the file.
    fn finish(mut self) -> Result<Vec<u8>> {
        let fbb = &mut self.fbb;
        // Buffer 0 is the empty one every activation points at (TensorFlow Lite's
        // convention); constant k's data is buffer k + 1. A u8 vector's data
        // follows its 4-byte-aligned length, so weights and biases are 4-byte
        // aligned in the file, as kernels reading them in place need.
        let mut buffers = vec![fb::Buffer::create(fbb, &fb::BufferArgs::default())];
        for c in &self.constants {
            let data = Some(fbb.create_vector(&c.data));
            buffers.push(fb::Buffer::create(
                fbb,
                &fb::BufferArgs {
                    data,
                    ..Default::default()
                },
            ));
        }
        let quant = |fbb: &mut Builder<'static>, scales: &[f32], zps: &[i64], axis: i32| {
            let scale = Some(fbb.create_vector(scales));
            let zero_point = Some(fbb.create_vector(zps));
            fb::QuantizationParameters::create(
                fbb,
                &fb::QuantizationParametersArgs {
                    scale,
                    zero_point,
                    quantized_dimension: axis,
                    ..Default::default()
                },
            )
        };
        let mut tensors = Vec::with_capacity(self.g.tensors.len() + self.constants.len());
        for (i, t) in self.g.tensors.iter().enumerate() {
            let quantization = t
                .quant
                .filter(|_| t.dtype == DType::I8)
                .map(|q| quant(fbb, &[q.scale], &[q.zero_point as i64], 0));
            let type_ = if t.dtype == DType::I8 {
                fb::TensorType::INT8
            } else {
                fb::TensorType::FLOAT32
            };
            tensors.push(tensor(
                fbb,
                &t.dims,
                type_,
                0,
                &format!("t{i}"),
                quantization,
            ));
        }
        for (k, c) in self.constants.iter().enumerate() {
            let quantization = c
                .quant
                .as_ref()
                .map(|(scales, axis)| quant(fbb, scales, &vec![0; scales.len()], *axis));
            let buffer = (k + 1) as u32;
            tensors.push(tensor(
                fbb,
                &c.dims,
                c.dtype,
                buffer,
                &format!("c{k}"),
                quantization,
            ));
        }
        let tensors = Some(fbb.create_vector(&tensors));
        let mut ops = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let inputs = Some(fbb.create_vector(&op.inputs));
            let outputs = Some(fbb.create_vector(&[op.output]));
            ops.push(fb::Operator::create(
                fbb,
                &fb::OperatorArgs {
                    opcode_index: op.code as u32,
                    inputs,
                    outputs,
                    builtin_options_type: op.options_type,
                    builtin_options: op.options,
                    ..Default::default()
                },
            ));
        }
        let operators = Some(fbb.create_vector(&ops));
        let inputs = Some(fbb.create_vector(&[self.g.input as i32]));
        let outputs = Some(fbb.create_vector(&[self.g.output as i32]));
        let name = Some(fbb.create_string("main"));
        let subgraph = fb::SubGraph::create(
            fbb,
            &fb::SubGraphArgs {
                tensors,
                inputs,
                outputs,
                operators,
                name,
                ..Default::default()
            },
        );
        let codes: Vec<_> = self
            .codes
            .iter()
            .map(|&(op, version)| {
                fb::OperatorCode::create(
                    fbb,
                    &fb::OperatorCodeArgs {
                        // Readers before the 127th builtin look only at this byte;
                        // newer ones take the larger of the two.
                        deprecated_builtin_code: op.0.min(127) as i8,
                        version,
                        builtin_code: op,
                        custom_code: None,
                    },
                )
            })
            .collect();
        let operator_codes = Some(fbb.create_vector(&codes));
        let subgraphs = Some(fbb.create_vector(&[subgraph]));
        let buffers = Some(fbb.create_vector(&buffers));
        let description = Some(fbb.create_string("dl-deploy"));
        let model = fb::Model::create(
            fbb,
            &fb::ModelArgs {
                // The schema version every current reader expects.
                version: 3,
                operator_codes,
                subgraphs,
                description,
                buffers,
                ..Default::default()
            },
        );
        fb::finish_model_buffer(fbb, model);
        Ok(fbb.finished_data().to_vec())
    }
}

/// One tensor table.
fn tensor<'b>(
    fbb: &mut Builder<'b>,
    dims: &[usize],
    type_: fb::TensorType,
    buffer: u32,
    name: &str,
    quantization: Option<WIPOffset<fb::QuantizationParameters<'b>>>,
) -> WIPOffset<fb::Tensor<'b>> {
    let shape: Vec<i32> = dims.iter().map(|&d| d as i32).collect();
    let shape = Some(fbb.create_vector(&shape));
    let name = Some(fbb.create_string(name));
    fb::Tensor::create(
        fbb,
        &fb::TensorArgs {
            shape,
            type_,
            buffer,
            name,
            quantization,
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    //! The file's fields as flatc's generated reader (not our importer) sees them.

    use super::*;
    use crate::{quantize, QuantizeConfig};

    /// A depthwise convolution (multiplier 2) and a dense layer, quantized.
    fn small() -> Graph {
        let mut g = Graph::new(&[1, 2, 5, 5]).unwrap();
        let w: Vec<f32> = (0..4 * 9).map(|k| (k as f32 - 17.0) / 20.0).collect();
        let params = ConvParams {
            kernel: (3, 3),
            stride: (1, 1),
            padding: (1, 1),
            dilation: (1, 1),
            groups: 2,
        };
        let y = g
            .conv2d(0, &w, Some(&[0.1, -0.2, 0.3, 0.0]), 4, params)
            .unwrap();
        let y = g.flatten(y).unwrap();
        let wd: Vec<f32> = (0..3 * 100)
            .map(|k| ((k * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        g.dense(y, &wd, None, 3).unwrap();
        let x: Vec<f32> = (0..2 * 50)
            .map(|k| ((k * 5) % 11) as f32 / 5.0 - 1.0)
            .collect();
        quantize(&g, &x, QuantizeConfig::default()).unwrap()
    }

    #[test]
    fn the_file_follows_tflite_conventions() {
        let g = small();
        let bytes = export(&g).unwrap();
        let model = fb::root_as_model(&bytes).unwrap();
        assert!(fb::model_buffer_has_identifier(&bytes));
        assert_eq!(model.version(), 3);
        let buffers = model.buffers().unwrap();
        assert!(buffers.get(0).data().is_none_or(|d| d.is_empty()));
        // Codes in order of first use, with the converter's versions for int8 ops.
        let codes: Vec<_> = model
            .operator_codes()
            .unwrap()
            .iter()
            .map(|c| (c.builtin_code(), c.deprecated_builtin_code(), c.version()))
            .collect();
        use fb::BuiltinOperator as B;
        assert_eq!(
            codes,
            [
                (B::QUANTIZE, 114, 1),
                (B::DEPTHWISE_CONV_2D, 4, 3),
                (B::RESHAPE, 22, 1),
                (B::FULLY_CONNECTED, 9, 4),
            ]
        );
        let sg = model.subgraphs().unwrap().get(0);
        let tensors = sg.tensors().unwrap();
        let ops = sg.operators().unwrap();
        let dw = ops.get(1);
        let o = dw.builtin_options_as_depthwise_conv_2_doptions().unwrap();
        assert_eq!((o.padding(), o.depth_multiplier()), (fb::Padding::SAME, 2));
        let ins = dw.inputs().unwrap();
        let (filter, bias) = (
            tensors.get(ins.get(1) as usize),
            tensors.get(ins.get(2) as usize),
        );
        assert_eq!(
            filter.shape().unwrap().iter().collect::<Vec<_>>(),
            [1, 3, 3, 4]
        );
        let fq = filter.quantization().unwrap();
        assert_eq!(fq.quantized_dimension(), 3);
        assert!(fq.zero_point().unwrap().iter().all(|z| z == 0));
        let Node::Conv2d {
            x,
            weights: Weights::I8 { q, scales, bias: b },
            ..
        } = &g.nodes[1]
        else {
            panic!("the depthwise layer");
        };
        assert_eq!(fq.scale().unwrap().iter().collect::<Vec<_>>(), *scales);
        // File element (0, ky, kx, o) is the engine's (o, ky, kx, 0).
        let data = buffers
            .get(filter.buffer() as usize)
            .data()
            .unwrap()
            .bytes();
        for o in 0..4 {
            for tap in 0..9 {
                assert_eq!(data[tap * 4 + o] as i8, q[o * 9 + tap]);
            }
        }
        // The bias: INT32 at scale input_scale * weight_scale[o], zero points 0,
        // along axis 0.
        assert_eq!(bias.type_(), fb::TensorType::INT32);
        let bq = bias.quantization().unwrap();
        let sx = g.tensors[*x].quant.unwrap().scale;
        let want: Vec<f32> = scales.iter().map(|s| sx * s).collect();
        assert_eq!(bq.scale().unwrap().iter().collect::<Vec<_>>(), want);
        assert_eq!(bq.quantized_dimension(), 0);
        let raw = buffers.get(bias.buffer() as usize).data().unwrap().bytes();
        let stored: Vec<i32> = raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(stored, *b);
        // The dense layer has no bias of its own but gets an int32 one of zeros
        // (what quantize stores), weights [out, in] per channel along axis 0.
        let fc = ops.get(3);
        let w = tensors.get(fc.inputs().unwrap().get(1) as usize);
        assert_eq!(w.shape().unwrap().iter().collect::<Vec<_>>(), [3, 100]);
        assert_eq!(w.quantization().unwrap().quantized_dimension(), 0);
        assert_eq!(w.quantization().unwrap().scale().unwrap().len(), 3);
        assert_eq!(fc.inputs().unwrap().len(), 3);
    }
}
