//! The `.tflite` reader: verifies the FlatBuffer, then walks the first subgraph's
//! operators in order, mapping each onto [`Node`]s of a [`Graph`].

use super::schema::tflite as fb;
use crate::error::{Error, Result};
use crate::format::DType;
use crate::graph::{ConvParams, Graph, Node, PoolParams, QParams, TensorId, Weights};
use crate::op::{Act, Unary};
use alloc::vec;
use alloc::vec::Vec;
use flatbuffers::{ErrorTraceDetail, ForwardsUOffset, InvalidFlatbuffer, Vector, VerifierOptions};

/// The TensorFlow Lite model in `bytes` (a whole `.tflite` file) as a [`Graph`]
/// whose input and output are the model's (int8 or f32, as the file has them).
pub fn import(bytes: &[u8]) -> Result<Graph> {
    let model = verify(bytes)?;
    let Some(subgraphs) = model.subgraphs() else {
        return Err(whole("the model has no subgraph"));
    };
    if subgraphs.len() != 1 {
        return Err(whole(
            "the model has several subgraphs (control flow); the engine runs one",
        ));
    }
    let sg = subgraphs.get(0);
    let (Some(tensors), Some(codes)) = (sg.tensors(), model.operator_codes()) else {
        return Err(whole(
            "the subgraph has no tensors or the model no operator codes",
        ));
    };
    let mut im = Importer {
        tensors,
        buffers: model.buffers(),
        codes,
        g: Graph {
            tensors: Vec::new(),
            nodes: Vec::new(),
            input: 0,
            output: 0,
        },
        map: vec![None; tensors.len()],
        at: None,
    };
    let single = |v: Option<Vector<'_, i32>>, what| match v {
        Some(v) if v.len() == 1 => Ok(v.get(0)),
        _ => Err(whole(what)),
    };
    let input = single(sg.inputs(), "the model must have exactly one input")?;
    let output = single(sg.outputs(), "the model must have exactly one output")?;
    let t = im.tensor(input)?;
    let dims = im.dims(&t)?;
    let dtype = im.dtype(&t)?;
    im.g.input = im.new_tensor(input, dims, dtype)?;
    for (i, op) in sg.operators().iter().flatten().enumerate() {
        im.operator(i, op)?;
    }
    im.at = None;
    im.g.output = im.activation(output)?;
    if im.g.nodes.is_empty() {
        return Err(whole("the model has no operator"));
    }
    let mut g = im.g;
    in_file_order(&mut g, &im.map);
    Ok(g)
}

/// Renumbers the graph's tensors in the order of the file's tensors they stand for
/// (`map[file index]`), so that a file written by [`super::export()`] gives back the
/// graph it was written from, tensor ids and all, hence the same blob. A view the
/// importer added with no file tensor of its own (a `FULLY_CONNECTED` flattening its
/// input) stays right after the tensor created before it.
fn in_file_order(g: &mut Graph, map: &[Option<TensorId>]) {
    let n = g.tensors.len();
    let mut key = vec![None; n];
    for (f, &id) in map.iter().enumerate() {
        if let Some(id) = id {
            key[id] = Some(f);
        }
    }
    let mut last = 0;
    let keys: Vec<usize> = key
        .iter()
        .map(|k| {
            last = k.unwrap_or(last);
            last
        })
        .collect();
    let mut order: Vec<TensorId> = (0..n).collect();
    order.sort_by_key(|&id| keys[id]);
    let mut new_id = vec![0; n];
    for (pos, &id) in order.iter().enumerate() {
        new_id[id] = pos;
    }
    let mut tensors: Vec<_> = order.iter().map(|&id| g.tensors[id].clone()).collect();
    for t in &mut tensors {
        t.view_of = t.view_of.map(|v| new_id[v]);
    }
    g.tensors = tensors;
    g.input = new_id[g.input];
    g.output = new_id[g.output];
    for node in &mut g.nodes {
        match node {
            Node::Add { a, b, y, .. } => {
                *a = new_id[*a];
                *b = new_id[*b];
                *y = new_id[*y];
            }
            Node::Quantize { x, y }
            | Node::Dequantize { x, y }
            | Node::Dense { x, y, .. }
            | Node::Conv2d { x, y, .. }
            | Node::MaxPool { x, y, .. }
            | Node::AvgPool { x, y, .. }
            | Node::Mean { x, y }
            | Node::Unary { x, y, .. }
            | Node::Softmax { x, y }
            | Node::Trees { x, y, .. }
            | Node::GaussianNb { x, y, .. }
            | Node::Recurrent { x, y, .. } => {
                *x = new_id[*x];
                *y = new_id[*y];
            }
        }
    }
}

/// The root table, after the FlatBuffers verifier has checked every offset, length
/// and union in the file, and its identifier.
fn verify(bytes: &[u8]) -> Result<fb::Model<'_>> {
    let opts = VerifierOptions::default();
    let model =
        fb::root_as_model_with_opts(&opts, bytes).map_err(|e| flatbuffer_error(&e, bytes.len()))?;
    // The identifier is optional in FlatBuffers but the converter always writes it;
    // a file without it is most likely not TensorFlow Lite at all. The verifier
    // accepts a root table in fewer than 8 bytes, where the identifier check asserts.
    if bytes.len() < 8 || !fb::model_buffer_has_identifier(bytes) {
        return Err(Error::Corrupt {
            offset: 4,
            expected: "the TensorFlow Lite file identifier \"TFL3\"",
        });
    }
    Ok(model)
}

/// The verifier's finding as the blob reader reports one: where and what. The
/// offset is the field that refers to the bad data when the verifier names one (the
/// innermost step of its trace), else the bad data's own position.
fn flatbuffer_error(e: &InvalidFlatbuffer, len: usize) -> Error {
    use InvalidFlatbuffer as E;
    let (at, trace, expected) = match e {
        E::MissingRequiredField { error_trace, .. } => (
            0,
            Some(error_trace),
            "a FlatBuffer with every required field of the TensorFlow Lite schema",
        ),
        E::InconsistentUnion { error_trace, .. } => (
            0,
            Some(error_trace),
            "FlatBuffer unions whose type and value are both set or both absent",
        ),
        E::Utf8Error {
            range, error_trace, ..
        } => (range.start, Some(error_trace), "a UTF-8 string"),
        E::MissingNullTerminator {
            range, error_trace, ..
        } => (
            range.start,
            Some(error_trace),
            "a string ending in a null byte",
        ),
        E::Unaligned {
            position,
            error_trace,
            ..
        } => (
            *position,
            Some(error_trace),
            "a FlatBuffer value aligned to its size",
        ),
        E::RangeOutOfBounds {
            range, error_trace, ..
        } => (
            range.start,
            Some(error_trace),
            "FlatBuffer offsets and lengths that stay inside the file (is it truncated?)",
        ),
        E::SignedOffsetOutOfBounds {
            position,
            error_trace,
            ..
        } => (
            *position,
            Some(error_trace),
            "a FlatBuffer vtable offset inside the file",
        ),
        E::TooManyTables => (0, None, "at most a million FlatBuffer tables"),
        E::ApparentSizeTooLarge => (0, None, "a FlatBuffer of at most 2 GiB"),
        E::DepthLimitReached => (0, None, "FlatBuffer tables nested at most 64 deep"),
    };
    let field = trace.and_then(|t| t.as_ref().first()).map(|d| match d {
        ErrorTraceDetail::VectorElement { position, .. }
        | ErrorTraceDetail::TableField { position, .. }
        | ErrorTraceDetail::UnionVariant { position, .. } => *position,
    });
    let offset = field.unwrap_or(at);
    // A file that is not a FlatBuffer at all (text, say) sends the verifier through
    // offsets read from arbitrary bytes, so the position it reports can lie past the
    // end: name the root offset, where the walk went wrong, instead.
    if offset > len {
        return Error::Corrupt {
            offset: 0,
            expected: "a root offset (byte 0) leading to tables inside the file: \
                       is this a .tflite file?",
        };
    }
    Error::Corrupt { offset, expected }
}

/// An error about the model as a whole (no operator).
fn whole(why: &'static str) -> Error {
    Error::TfLite {
        op: None,
        name: "model",
        why,
    }
}

/// The import in progress: the file's tensors, and which graph tensor each
/// activation became.
struct Importer<'a> {
    tensors: Vector<'a, ForwardsUOffset<fb::Tensor<'a>>>,
    buffers: Option<Vector<'a, ForwardsUOffset<fb::Buffer<'a>>>>,
    codes: Vector<'a, ForwardsUOffset<fb::OperatorCode<'a>>>,
    g: Graph,
    /// Graph tensor of each file tensor that is an activation already written.
    map: Vec<Option<TensorId>>,
    /// The operator being imported (index and builtin name), for errors.
    at: Option<(usize, &'static str)>,
}

/// Geometry of a window sweep along one axis, TensorFlow Lite's way.
pub(super) struct Sweep {
    /// Padding at the start (top or left).
    pub(super) pad: usize,
    /// Output size.
    pub(super) out: usize,
}

/// `ComputePaddingHeightWidth` of TensorFlow Lite, along one axis.
pub(super) fn sweep(
    padding: fb::Padding,
    size: usize,
    k: usize,
    stride: usize,
    dilation: usize,
) -> Sweep {
    // Saturating: a huge dilation from the file gives an output size of 0, which no
    // tensor of the file can match, rather than an overflow.
    let span = dilation
        .saturating_mul(k.saturating_sub(1))
        .saturating_add(1);
    let out = if padding == fb::Padding::SAME {
        size.div_ceil(stride)
    } else {
        (size + stride).saturating_sub(span) / stride
    };
    let total = (out.saturating_sub(1).saturating_mul(stride))
        .saturating_add(span)
        .saturating_sub(size);
    Sweep {
        pad: total / 2,
        out,
    }
}

/// The fused activation, if the engine has it.
fn fused(f: fb::ActivationFunctionType) -> Option<Act> {
    match f {
        fb::ActivationFunctionType::NONE => Some(Act::None),
        fb::ActivationFunctionType::RELU => Some(Act::Relu),
        fb::ActivationFunctionType::RELU6 => Some(Act::Relu6),
        _ => None,
    }
}

/// A why naming an element type the engine does not run.
fn dtype_why(t: fb::TensorType) -> &'static str {
    match t {
        fb::TensorType::INT16 => "an INT16 tensor (the engine runs INT8 and FLOAT32)",
        fb::TensorType::UINT8 => "a UINT8 tensor (the engine runs INT8 and FLOAT32)",
        fb::TensorType::FLOAT16 => "a FLOAT16 tensor (the engine runs INT8 and FLOAT32)",
        fb::TensorType::INT32 => "an INT32 activation (the engine runs INT8 and FLOAT32)",
        fb::TensorType::INT64 => "an INT64 tensor (the engine runs INT8 and FLOAT32)",
        fb::TensorType::INT4 => "an INT4 tensor (the engine runs INT8 and FLOAT32)",
        _ => "a tensor of an element type other than INT8 and FLOAT32",
    }
}

/// A small integer option (stride, window, dilation) as a positive size.
fn positive(v: i32) -> Option<usize> {
    usize::try_from(v).ok().filter(|&v| v > 0)
}

impl<'a> Importer<'a> {
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

    /// File tensor `i`.
    fn tensor(&self, i: i32) -> Result<fb::Tensor<'a>> {
        usize::try_from(i)
            .ok()
            .filter(|&i| i < self.tensors.len())
            .map(|i| self.tensors.get(i))
            .ok_or_else(|| self.err("a tensor index outside the subgraph's tensors"))
    }

    /// Its shape: 1 to 4 dimensions, none zero or negative.
    fn dims(&self, t: &fb::Tensor<'a>) -> Result<Vec<usize>> {
        let bad = || self.err("a tensor shape of 1 to 4 positive dimensions");
        let shape = t.shape().ok_or_else(bad)?;
        if shape.is_empty() || shape.len() > 4 {
            return Err(bad());
        }
        let dims = shape
            .iter()
            .map(|d| {
                positive(d)
                    .filter(|&d| d <= u16::MAX as usize)
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<usize>>>()?;
        // The blob addresses tensors with u32 offsets; bounding every tensor here
        // also keeps each size computed from these dimensions from overflowing.
        let bytes = dims
            .iter()
            .try_fold(4usize, |acc, &d| acc.checked_mul(d))
            .filter(|&b| b <= u32::MAX as usize);
        if bytes.is_none() {
            return Err(self.err("a tensor of less than 4 GiB"));
        }
        Ok(dims)
    }

    fn dtype(&self, t: &fb::Tensor<'a>) -> Result<DType> {
        match t.type_() {
            fb::TensorType::INT8 => Ok(DType::I8),
            fb::TensorType::FLOAT32 => Ok(DType::F32),
            other => Err(self.err(dtype_why(other))),
        }
    }

    /// The one scale and zero point of an int8 activation.
    fn qparams(&self, t: &fb::Tensor<'a>) -> Result<QParams> {
        let bad = || {
            self.err("an int8 activation with one positive finite scale and one zero point in -128..=127")
        };
        let q = t.quantization().ok_or_else(bad)?;
        let (Some(scale), zp) = (q.scale(), q.zero_point()) else {
            return Err(bad());
        };
        let zero_point = match zp {
            Some(z) if z.len() == 1 => z.get(0),
            None => 0,
            Some(_) => return Err(bad()),
        };
        if scale.len() != 1 {
            return Err(bad());
        }
        let scale = scale.get(0);
        if !(scale.is_finite() && scale > 0.0 && (-128..=127).contains(&zero_point)) {
            return Err(bad());
        }
        Ok(QParams {
            scale,
            zero_point: zero_point as i32,
        })
    }

    /// Adds a graph tensor for activation `i` with the file's quantization, and
    /// records that it is written.
    fn new_tensor(&mut self, i: i32, dims: Vec<usize>, dtype: DType) -> Result<TensorId> {
        let t = self.tensor(i)?;
        if self.map[i as usize].is_some() {
            return Err(self.err("writes a tensor that is already written"));
        }
        let quant = match dtype {
            DType::I8 => Some(self.qparams(&t)?),
            _ => None,
        };
        let id = self.g.tensor(dims, dtype);
        self.g.tensors[id].quant = quant;
        self.map[i as usize] = Some(id);
        Ok(id)
    }

    /// The graph tensor of activation `i`, which must already be written.
    fn activation(&self, i: i32) -> Result<TensorId> {
        self.tensor(i)?;
        self.map[i as usize].ok_or_else(|| {
            self.err("reads a tensor that is neither the model's input nor written by an earlier operator")
        })
    }

    /// The output activation `i` of an op that computes `dims` and `dtype`, which
    /// must be what the file says.
    fn output(&mut self, i: i32, dims: Vec<usize>, dtype: DType) -> Result<TensorId> {
        let t = self.tensor(i)?;
        if self.dims(&t)? != dims {
            return Err(self.err("an output shape that disagrees with the op's"));
        }
        if self.dtype(&t)? != dtype {
            return Err(self.err("an output whose element type differs from the input's"));
        }
        self.new_tensor(i, dims, dtype)
    }

    /// The raw bytes of constant tensor `t`, which must be `numel * size` long.
    fn data(&self, t: &fb::Tensor<'a>, numel: usize, size: usize) -> Result<&'a [u8]> {
        let bad = || self.err("a constant tensor whose buffer holds exactly its shape's values");
        let buffers = self.buffers.ok_or_else(bad)?;
        let b = t.buffer() as usize;
        if b == 0 || b >= buffers.len() {
            return Err(bad());
        }
        let buf = buffers.get(b);
        if buf.offset() != 0 {
            return Err(self.err(
                "weights stored outside the FlatBuffer (models over 2 GiB) are not supported",
            ));
        }
        let data = buf.data().map(|d| d.bytes()).ok_or_else(bad)?;
        if data.len() != numel * size {
            return Err(bad());
        }
        Ok(data)
    }

    /// The weights of a dense or convolution layer whose file tensor is `w_index`,
    /// with output channels along `axis`, in the engine's form (output channels
    /// first, `reorder` mapping each engine position to the file's), and the bias.
    fn weights(
        &self,
        w_index: i32,
        b_index: Option<i32>,
        dims: &[usize],
        axis: usize,
        reorder: impl Fn(usize) -> usize,
        int8: bool,
    ) -> Result<Weights> {
        let w = self.tensor(w_index)?;
        if self.dims(&w)? != dims {
            return Err(self.err("weights whose shape disagrees with the input and output"));
        }
        let channels = dims[axis];
        let numel: usize = dims.iter().product();
        let bias = b_index.map(|b| self.tensor(b)).transpose()?;
        if let Some(b) = &bias {
            if self.dims(b)? != [channels] {
                return Err(self.err("a bias of one value per output channel"));
            }
        }
        match (int8, w.type_()) {
            (true, fb::TensorType::INT8) => {
                let raw = self.data(&w, numel, 1)?;
                let q = (0..numel).map(|k| raw[reorder(k)] as i8).collect();
                let scales = self.weight_scales(&w, channels, axis)?;
                let bias = match &bias {
                    Some(b) if b.type_() == fb::TensorType::INT32 => self
                        .data(b, channels, 4)?
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                    Some(_) => return Err(self.err("an int8 layer's bias must be INT32")),
                    None => vec![0; channels],
                };
                Ok(Weights::I8 { q, scales, bias })
            }
            (false, fb::TensorType::FLOAT32) => {
                let f32s = |t: &fb::Tensor<'a>, n| -> Result<Vec<f32>> {
                    Ok(self
                        .data(t, n, 4)?
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect())
                };
                let raw = f32s(&w, numel)?;
                let w = (0..numel).map(|k| raw[reorder(k)]).collect();
                let bias = match &bias {
                    Some(b) if b.type_() == fb::TensorType::FLOAT32 => Some(f32s(b, channels)?),
                    Some(_) => return Err(self.err("a float layer's bias must be FLOAT32")),
                    None => None,
                };
                Ok(Weights::F32 { w, bias })
            }
            (true, _) => Err(self.err("an int8 layer needs INT8 weights")),
            (false, _) => Err(self.err(
                "a float layer needs FLOAT32 weights (hybrid int8-weight float layers are not supported)",
            )),
        }
    }

    /// Symmetric weight scales, one per output channel (a per-tensor scale repeated).
    fn weight_scales(&self, w: &fb::Tensor<'a>, channels: usize, axis: usize) -> Result<Vec<f32>> {
        let bad = || {
            self.err("int8 weights with positive finite scales, zero points 0, one per output channel or one in all")
        };
        let q = w.quantization().ok_or_else(bad)?;
        let scale = q.scale().ok_or_else(bad)?;
        let n = scale.len();
        let per_channel = n == channels && n > 1;
        if !(n == 1 || per_channel) || (per_channel && q.quantized_dimension() as usize != axis) {
            return Err(bad());
        }
        if q.zero_point().is_some_and(|z| z.iter().any(|z| z != 0)) {
            return Err(bad());
        }
        let scales: Vec<f32> = (0..channels).map(|o| scale.get(o % n)).collect();
        if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(bad());
        }
        Ok(scales)
    }

    /// Checks that both tensors have one quantization (ops that keep their input's).
    fn same_quant(&self, x: TensorId, y: TensorId) -> Result<()> {
        if self.g.tensors[x].quant != self.g.tensors[y].quant {
            return Err(self.err("an int8 output quantized as its input (scale and zero point)"));
        }
        Ok(())
    }

    fn push(&mut self, node: Node) {
        self.g.nodes.push(node);
    }

    /// Imports operator `i`.
    fn operator(&mut self, i: usize, op: fb::Operator<'a>) -> Result<()> {
        let code = usize::try_from(op.opcode_index())
            .ok()
            .filter(|&c| c < self.codes.len())
            .map(|c| self.codes.get(c))
            .ok_or(Error::TfLite {
                op: Some(i),
                name: "unknown",
                why: "an operator code index outside the model's operator codes",
            })?;
        // Files from before the 127th builtin keep the code in the deprecated byte.
        let builtin = fb::BuiltinOperator(
            code.builtin_code()
                .0
                .max(code.deprecated_builtin_code() as i32),
        );
        let name = builtin.variant_name().unwrap_or("unknown builtin");
        self.at = Some((i, name));
        let ins: Vec<i32> = op.inputs().map(|v| v.iter().collect()).unwrap_or_default();
        let outs: Vec<i32> = op.outputs().map(|v| v.iter().collect()).unwrap_or_default();
        let (Some(&x_index), [y_index]) = (ins.first(), outs.as_slice()) else {
            return Err(self.err("an operator with inputs and exactly one output"));
        };
        let y_index = *y_index;
        use fb::BuiltinOperator as B;
        match builtin {
            B::FULLY_CONNECTED => {
                let o = op
                    .builtin_options_as_fully_connected_options()
                    .ok_or_else(|| self.err("FULLY_CONNECTED options"))?;
                if o.weights_format() != fb::FullyConnectedOptionsWeightsFormat::DEFAULT {
                    return Err(self.err("shuffled weights formats are not supported"));
                }
                let act = fused(o.fused_activation_function())
                    .ok_or_else(|| self.err("a fused activation other than NONE, RELU or RELU6"))?;
                let w_index = *ins.get(1).ok_or_else(|| self.err("weights as the second input"))?;
                let w = self.tensor(w_index)?;
                let &[outputs, inputs] = self.dims(&w)?.as_slice() else {
                    return Err(self.err("weights [out, in]"));
                };
                let mut x = self.activation(x_index)?;
                let xd = self.g.tensors[x].dims.clone();
                let numel: usize = xd.iter().product();
                if !numel.is_multiple_of(inputs) {
                    return Err(self.err("an input whose size is a whole number of weight rows"));
                }
                // Without keep_num_dims every leading axis folds into the batch.
                if xd.last() != Some(&inputs) || (!o.keep_num_dims() && xd.len() != 2) {
                    x = self.view(x, vec![numel / inputs, inputs])?;
                }
                let mut yd = self.g.tensors[x].dims.clone();
                *yd.last_mut().unwrap_or(&mut 0) = outputs;
                let dtype = self.g.tensors[x].dtype;
                let b = ins.get(2).copied().filter(|&b| b >= 0);
                let weights = self.weights(w_index, b, &[outputs, inputs], 0, |k| k, dtype == DType::I8)?;
                let y = self.output(y_index, yd, dtype)?;
                self.push(Node::Dense { x, y, weights, act });
            }
            B::CONV_2D | B::DEPTHWISE_CONV_2D => {
                let depthwise = builtin == B::DEPTHWISE_CONV_2D;
                let (padding, stride, dilation, act) = if depthwise {
                    let o = op
                        .builtin_options_as_depthwise_conv_2_doptions()
                        .ok_or_else(|| self.err("DEPTHWISE_CONV_2D options"))?;
                    (
                        o.padding(),
                        (o.stride_h(), o.stride_w()),
                        (o.dilation_h_factor(), o.dilation_w_factor()),
                        o.fused_activation_function(),
                    )
                } else {
                    let o = op
                        .builtin_options_as_conv_2_doptions()
                        .ok_or_else(|| self.err("CONV_2D options"))?;
                    (
                        o.padding(),
                        (o.stride_h(), o.stride_w()),
                        (o.dilation_h_factor(), o.dilation_w_factor()),
                        o.fused_activation_function(),
                    )
                };
                let act = fused(act)
                    .ok_or_else(|| self.err("a fused activation other than NONE, RELU or RELU6"))?;
                let pair = |p: (i32, i32)| positive(p.0).zip(positive(p.1));
                let (Some(stride), Some(dilation)) = (pair(stride), pair(dilation)) else {
                    return Err(self.err("strides and dilations of at least 1"));
                };
                let x = self.activation(x_index)?;
                let &[n, h, wd, c_in] = self.g.tensors[x].dims.as_slice() else {
                    return Err(self.err("an NHWC input [n, h, w, c]"));
                };
                let w_index = *ins.get(1).ok_or_else(|| self.err("a filter as the second input"))?;
                let filter = self.dims(&self.tensor(w_index)?)?;
                let (c_out, kh, kw, groups) = match (depthwise, filter.as_slice()) {
                    (false, &[co, kh, kw, ci]) if c_in.is_multiple_of(ci) => {
                        (co, kh, kw, c_in / ci)
                    }
                    (true, &[1, kh, kw, co]) if co.is_multiple_of(c_in) => (co, kh, kw, c_in),
                    _ => {
                        return Err(self.err(if depthwise {
                            "a filter [1, kh, kw, c_in * multiplier]"
                        } else {
                            "a filter [c_out, kh, kw, c_in / groups]"
                        }))
                    }
                };
                let (sh, sw) = (
                    sweep(padding, h, kh, stride.0, dilation.0),
                    sweep(padding, wd, kw, stride.1, dilation.1),
                );
                let params = ConvParams {
                    kernel: (kh, kw),
                    stride,
                    padding: (sh.pad, sw.pad),
                    dilation,
                    groups,
                };
                let dtype = self.g.tensors[x].dtype;
                let b = ins.get(2).copied().filter(|&b| b >= 0);
                let weights = if depthwise {
                    // [1, kh, kw, c_out] to [c_out, kh, kw, 1]: engine position
                    // (o, tap) reads file position (tap, o).
                    let taps = kh * kw;
                    self.weights(w_index, b, &filter, 3, |k| (k % taps) * c_out + k / taps, dtype == DType::I8)?
                } else {
                    self.weights(w_index, b, &filter, 0, |k| k, dtype == DType::I8)?
                };
                let y = self.output(y_index, vec![n, sh.out, sw.out, c_out], dtype)?;
                self.push(Node::Conv2d {
                    x,
                    y,
                    weights,
                    params,
                    act,
                });
            }
            B::MAX_POOL_2D | B::AVERAGE_POOL_2D => {
                let o = op
                    .builtin_options_as_pool_2_doptions()
                    .ok_or_else(|| self.err("Pool2D options"))?;
                if o.fused_activation_function() != fb::ActivationFunctionType::NONE {
                    return Err(self.err("a pooling with a fused activation is not supported"));
                }
                let (Some(kh), Some(kw), Some(s_h), Some(s_w)) = (
                    positive(o.filter_height()),
                    positive(o.filter_width()),
                    positive(o.stride_h()),
                    positive(o.stride_w()),
                ) else {
                    return Err(self.err("a window and strides of at least 1"));
                };
                let x = self.activation(x_index)?;
                let &[n, h, wd, c] = self.g.tensors[x].dims.as_slice() else {
                    return Err(self.err("an NHWC input [n, h, w, c]"));
                };
                let (sh, sw) = (
                    sweep(o.padding(), h, kh, s_h, 1),
                    sweep(o.padding(), wd, kw, s_w, 1),
                );
                let params = PoolParams {
                    kernel: (kh, kw),
                    stride: (s_h, s_w),
                    padding: (sh.pad, sw.pad),
                };
                let dtype = self.g.tensors[x].dtype;
                let y = self.output(y_index, vec![n, sh.out, sw.out, c], dtype)?;
                self.same_quant(x, y)?;
                self.push(if builtin == B::MAX_POOL_2D {
                    Node::MaxPool { x, y, params }
                } else {
                    // TensorFlow Lite divides by the taps inside the input.
                    Node::AvgPool {
                        x,
                        y,
                        params,
                        count_include_pad: false,
                    }
                });
            }
            B::MEAN => {
                let keep = op
                    .builtin_options_as_reducer_options()
                    .is_some_and(|o| o.keep_dims());
                let x = self.activation(x_index)?;
                let &[n, _, _, c] = self.g.tensors[x].dims.as_slice() else {
                    return Err(self.err("MEAN over an NHWC input [n, h, w, c]"));
                };
                let axes = *ins.get(1).ok_or_else(|| self.err("the axes as the second input"))?;
                let axes_t = self.tensor(axes)?;
                if axes_t.type_() != fb::TensorType::INT32 {
                    return Err(self.err("INT32 axes"));
                }
                let k = self.dims(&axes_t)?.iter().product();
                let mut axes: Vec<i32> = self
                    .data(&axes_t, k, 4)?
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .map(|a| if a < 0 { a + 4 } else { a })
                    .collect();
                axes.sort_unstable();
                if axes != [1, 2] {
                    return Err(self.err("MEAN over height and width (axes 1 and 2) only"));
                }
                let dims = if keep { vec![n, 1, 1, c] } else { vec![n, c] };
                let dtype = self.g.tensors[x].dtype;
                let y = self.output(y_index, dims, dtype)?;
                self.push(Node::Mean { x, y });
            }
            B::RESHAPE => {
                let x = self.activation(x_index)?;
                let t = self.tensor(y_index)?;
                let dims = self.dims(&t)?;
                if dims.iter().product::<usize>() != self.g.tensors[x].numel() {
                    return Err(self.err("a new shape with as many elements as the input"));
                }
                if self.dtype(&t)? != self.g.tensors[x].dtype {
                    return Err(self.err("an output whose element type differs from the input's"));
                }
                let y = self.view(x, dims)?;
                if self.g.tensors[x].dtype == DType::I8 && Some(self.qparams(&t)?) != self.g.tensors[x].quant {
                    return Err(self.err("an int8 output quantized as its input (scale and zero point)"));
                }
                self.map[y_index as usize] = Some(y);
            }
            B::SOFTMAX => {
                let beta = op.builtin_options_as_softmax_options().map_or(1.0, |o| o.beta());
                if beta != 1.0 {
                    return Err(self.err("a softmax with beta other than 1 is not supported"));
                }
                let x = self.activation(x_index)?;
                let (dims, dtype) = (self.g.tensors[x].dims.clone(), self.g.tensors[x].dtype);
                let y = self.output(y_index, dims, dtype)?;
                self.fixed_output(y, 1.0 / 256.0, -128)?;
                self.push(Node::Softmax { x, y });
            }
            B::ADD => {
                let act = op
                    .builtin_options_as_add_options()
                    .map_or(Some(Act::None), |o| fused(o.fused_activation_function()))
                    .ok_or_else(|| self.err("a fused activation other than NONE, RELU or RELU6"))?;
                let b_index = *ins.get(1).ok_or_else(|| self.err("two addends"))?;
                let (a, b) = (self.activation(x_index)?, self.activation(b_index)?);
                let (dims, dtype) = (self.g.tensors[a].dims.clone(), self.g.tensors[a].dtype);
                if self.g.tensors[b].dims != dims || self.g.tensors[b].dtype != dtype {
                    return Err(self.err("addends of one shape and type (no broadcasting)"));
                }
                let y = self.output(y_index, dims, dtype)?;
                self.push(Node::Add { a, b, y, act });
            }
            B::LOGISTIC | B::TANH | B::RELU | B::RELU6 => {
                let f = match builtin {
                    B::LOGISTIC => Unary::Sigmoid,
                    B::TANH => Unary::Tanh,
                    B::RELU => Unary::Relu,
                    _ => Unary::Relu6,
                };
                let x = self.activation(x_index)?;
                let (dims, dtype) = (self.g.tensors[x].dims.clone(), self.g.tensors[x].dtype);
                let y = self.output(y_index, dims, dtype)?;
                match f {
                    Unary::Sigmoid => self.fixed_output(y, 1.0 / 256.0, -128)?,
                    Unary::Tanh => self.fixed_output(y, 1.0 / 128.0, 0)?,
                    // TensorFlow Lite Micro clamps RELU6's raw int8 values without
                    // rescaling (the converter always writes one quantization for
                    // both), so another output quantization would run differently
                    // there; RELU rescales, as the engine's table does.
                    Unary::Relu6 => self.same_quant(x, y)?,
                    _ => {}
                }
                self.push(Node::Unary { x, y, f });
            }
            B::QUANTIZE | B::DEQUANTIZE => {
                let quantize = builtin == B::QUANTIZE;
                let x = self.activation(x_index)?;
                let (from, to) = if quantize {
                    (DType::F32, DType::I8)
                } else {
                    (DType::I8, DType::F32)
                };
                if self.g.tensors[x].dtype != from {
                    return Err(self.err(if quantize {
                        "QUANTIZE from FLOAT32 to INT8 only (no requantization)"
                    } else {
                        "DEQUANTIZE from INT8 to FLOAT32 only"
                    }));
                }
                let t = self.tensor(y_index)?;
                if self.dtype(&t)? != to {
                    return Err(self.err("QUANTIZE to INT8 or DEQUANTIZE to FLOAT32"));
                }
                let dims = self.g.tensors[x].dims.clone();
                if self.dims(&t)? != dims {
                    return Err(self.err("an output shape that disagrees with the op's"));
                }
                let y = self.new_tensor(y_index, dims, to)?;
                self.push(if quantize {
                    Node::Quantize { x, y }
                } else {
                    Node::Dequantize { x, y }
                });
            }
            _ => {
                return Err(self.err(
                    "an operator dl-deploy does not import (FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN, RESHAPE, SOFTMAX, ADD, LOGISTIC, TANH, RELU, RELU6, QUANTIZE, DEQUANTIZE)",
                ))
            }
        }
        Ok(())
    }

    /// A view of `x` (its storage, another shape), as `RESHAPE` and a flattening
    /// `FULLY_CONNECTED` input.
    fn view(&mut self, x: TensorId, dims: Vec<usize>) -> Result<TensorId> {
        let (dtype, quant) = (self.g.tensors[x].dtype, self.g.tensors[x].quant);
        let base = self.g.tensors[x].view_of.unwrap_or(x);
        let y = self.g.tensor(dims, dtype);
        self.g.tensors[y].quant = quant;
        self.g.tensors[y].view_of = Some(base);
        Ok(y)
    }

    /// Checks that an int8 output has the quantization the engine's kernel writes
    /// (TensorFlow Lite requires the same for these ops).
    fn fixed_output(&self, y: TensorId, scale: f32, zero_point: i32) -> Result<()> {
        match self.g.tensors[y].quant {
            Some(q) if q != (QParams { scale, zero_point }) => Err(self.err(
                "an int8 output quantized as TensorFlow Lite fixes it (1/256 and -128 for SOFTMAX and LOGISTIC, 1/128 and 0 for TANH)",
            )),
            _ => Ok(()),
        }
    }
}
