//! Writing a [`Graph`] as a blob ([`crate::format`] describes the bytes): the
//! tensor table with the planned arena offsets, one record per node, then the
//! constants. int8 layers get their requantization here, from the scales, the way
//! TensorFlow Lite Micro prepares them: the effective scale
//! `input_scale * weight_scale[o] / output_scale` in double precision, turned into a
//! Q31 multiplier and shift; the input zero point is folded into the bias.

use crate::error::{Error, Result};
use crate::format::{crc32, DType, Writer, HEADER_LEN, MAGIC, NONE, TENSOR_LEN};
use crate::graph::{Graph, Node, QParams, Tensor, TensorId, Weights};
use crate::op::{Act, OpKind};
use crate::plan::{plan, Plan};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::quant;

fn graph_err(op: &'static str, why: &'static str) -> Error {
    Error::Graph { op, why }
}

/// Op records and constants being written: constant offsets in records are
/// relative to the constants' start until [`Blob::finish`] patches them.
struct Blob {
    ops: Writer,
    consts: Writer,
    patches: Vec<usize>,
    n_ops: usize,
    op_set: u32,
}

impl Blob {
    /// Appends a record of `kind` with `body` (a whole number of words).
    fn record(&mut self, kind: OpKind, body: Writer, patches: &[usize]) {
        let words = 1 + body.len() / 4;
        self.ops.u8(kind as u8);
        self.ops.u8(0);
        self.ops.u16(words as u16);
        let base = self.ops.len();
        self.patches.extend(patches.iter().map(|p| base + p));
        self.ops.bytes.extend_from_slice(&body.bytes);
        self.n_ops += 1;
        self.op_set |= kind.bit();
    }

    /// Appends constants aligned to 4 bytes; returns their relative offset.
    fn consts(&mut self, data: &[u8]) -> u32 {
        self.consts.align4();
        let at = self.consts.len() as u32;
        self.consts.bytes.extend_from_slice(data);
        at
    }
}

/// A body being written, remembering which words are constant offsets.
#[derive(Default)]
struct Body {
    w: Writer,
    patches: Vec<usize>,
}

impl Body {
    fn tensors(&mut self, ids: &[TensorId]) -> Result<()> {
        for &t in ids {
            self.w
                .u16(u16::try_from(t).map_err(|_| graph_err("encode", "more than 65535 tensors"))?);
        }
        Ok(())
    }

    fn offset(&mut self, off: Option<u32>) {
        match off {
            Some(o) => {
                self.patches.push(self.w.len());
                self.w.u32(o);
            }
            None => self.w.u32(NONE),
        }
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn byte(v: usize, what: &'static str) -> Result<u8> {
    u8::try_from(v).map_err(|_| {
        graph_err(
            what,
            "kernel, stride, padding and dilation must be below 256",
        )
    })
}

fn qparams(t: &Tensor, op: &'static str) -> Result<QParams> {
    t.quant
        .ok_or(graph_err(op, "an int8 tensor has no quantization"))
}

/// TensorFlow Lite's activation range in int8 for a fused activation.
pub fn act_range(act: Act, q: QParams) -> (i8, i8) {
    let quantize = |v: f32| q.zero_point + libm::roundf(v / q.scale) as i32;
    let (lo, hi) = match act {
        Act::None => (-128, 127),
        Act::Relu => (quantize(0.0).max(-128), 127),
        Act::Relu6 => (quantize(0.0).max(-128), quantize(6.0).min(127)),
    };
    (lo.clamp(-128, 127) as i8, hi.clamp(-128, 127) as i8)
}

/// The multipliers and shifts of `input_scale * weight_scale[o] / output_scale`,
/// computed in f64 as TensorFlow Lite Micro does.
fn requant_arrays(sx: f32, scales: &[f32], sy: f32) -> Result<(Vec<i32>, Vec<i8>)> {
    let mut m = Vec::with_capacity(scales.len());
    let mut s = Vec::with_capacity(scales.len());
    for &sw in scales {
        let real = (sx as f64 * sw as f64) / sy as f64;
        let (mult, shift) = quant::quantize_multiplier(real)?;
        // TFLM's QuantizeMultiplier leaves shifts below -31 to the caller; such a
        // channel's outputs all round to the zero point, so store that exactly.
        let (mult, shift) = if shift < -31 { (0, 0) } else { (mult, shift) };
        m.push(mult);
        s.push(
            i8::try_from(shift).map_err(|_| graph_err("requantize", "a scale ratio above 2^30"))?,
        );
    }
    Ok((m, s))
}

/// The int8 layer constants: weights, bias with the input zero point folded in,
/// multipliers, shifts. Returns the requantization word and the constants' offset.
#[allow(clippy::too_many_arguments)]
fn int8_layer(
    blob: &mut Blob,
    body: &mut Body,
    x: &Tensor,
    y: &Tensor,
    q: &[i8],
    scales: &[f32],
    bias: &[i32],
    act: Act,
) -> Result<()> {
    const OP: &str = "int8 layer";
    let (qx, qy) = (qparams(x, OP)?, qparams(y, OP)?);
    let rows = scales.len();
    if rows == 0 || !q.len().is_multiple_of(rows) || bias.len() != rows {
        return Err(graph_err(
            OP,
            "one weight scale and one bias per output channel",
        ));
    }
    let mut folded = vec![0i32; rows];
    quant::fold_input_offset(
        q,
        rows,
        q.len() / rows,
        Some(bias),
        qx.zero_point,
        &mut folded,
    )?;
    let (mult, shift) = requant_arrays(qx.scale, scales, qy.scale)?;
    let mut data: Vec<u8> = q.iter().map(|&v| v as u8).collect();
    while !data.len().is_multiple_of(4) {
        data.push(0);
    }
    data.extend(i32_bytes(&folded));
    data.extend(i32_bytes(&mult));
    data.extend(shift.iter().map(|&v| v as u8));
    let base = blob.consts(&data);
    let (lo, hi) = act_range(act, qy);
    body.w.u8(qy.zero_point as i8 as u8);
    body.w.u8(lo as u8);
    body.w.u8(hi as u8);
    body.w.u8(1);
    body.offset(Some(base));
    Ok(())
}

/// Writes `g` as a blob. Returns the bytes and the arena plan.
pub fn encode(g: &Graph) -> Result<(Vec<u8>, Plan)> {
    let p = plan(g)?;
    let mut blob = Blob {
        ops: Writer::default(),
        consts: Writer::default(),
        patches: Vec::new(),
        n_ops: 0,
        op_set: 0,
    };
    for (i, node) in g.nodes.iter().enumerate() {
        encode_node(g, &p, i, node, &mut blob)?;
    }

    let n_tensors = g.tensors.len();
    let consts_start = HEADER_LEN + n_tensors * TENSOR_LEN + blob.ops.len();
    let consts_start = (consts_start + 3) & !3;
    for &at in &blob.patches {
        let rel = u32::from_le_bytes([
            blob.ops.bytes[at],
            blob.ops.bytes[at + 1],
            blob.ops.bytes[at + 2],
            blob.ops.bytes[at + 3],
        ]);
        blob.ops.bytes[at..at + 4].copy_from_slice(&(rel + consts_start as u32).to_le_bytes());
    }

    let mut w = Writer::default();
    w.bytes.extend_from_slice(&MAGIC);
    w.u32(0); // length, set below
    w.u32(0); // CRC, set below
    w.u32(p.arena_len as u32);
    w.u16(u16::try_from(n_tensors).map_err(|_| graph_err("encode", "more than 65535 tensors"))?);
    w.u16(u16::try_from(blob.n_ops).map_err(|_| graph_err("encode", "more than 65535 ops"))?);
    w.u32(blob.op_set);
    w.u16(g.input as u16);
    w.u16(g.output as u16);
    for (t, tensor) in g.tensors.iter().enumerate() {
        if tensor.dims.is_empty() || tensor.dims.len() > 4 {
            return Err(graph_err("encode", "tensors must have 1 to 4 dimensions"));
        }
        w.u8(tensor.dtype.code());
        w.u8(tensor.dims.len() as u8);
        w.u16(0);
        for d in 0..4 {
            let v = tensor.dims.get(d).copied().unwrap_or(0);
            w.u16(u16::try_from(v).map_err(|_| graph_err("encode", "a dimension above 65535"))?);
        }
        w.u32(p.offsets[t] as u32);
    }
    w.bytes.extend_from_slice(&blob.ops.bytes);
    w.align4();
    w.bytes.extend_from_slice(&blob.consts.bytes);
    w.align4();
    let len = w.len() as u32;
    w.bytes[4..8].copy_from_slice(&len.to_le_bytes());
    let crc = crc32(&w.bytes[12..]);
    w.bytes[8..12].copy_from_slice(&crc.to_le_bytes());
    Ok((w.bytes, p))
}

fn encode_node(g: &Graph, p: &Plan, i: usize, node: &Node, blob: &mut Blob) -> Result<()> {
    let t = |id: TensorId| &g.tensors[id];
    let is_i8 = |id: TensorId| g.tensors[id].dtype == DType::I8;
    let mut b = Body::default();
    let kind = match node {
        Node::Quantize { x, y } | Node::Dequantize { x, y } => {
            let quantize = matches!(node, Node::Quantize { .. });
            let q = qparams(t(if quantize { *y } else { *x }), "Quantize")?;
            b.tensors(&[*x, *y])?;
            b.w.f32(q.scale);
            b.w.i32(q.zero_point);
            if quantize {
                OpKind::Quantize
            } else {
                OpKind::Dequantize
            }
        }
        Node::Dense { x, y, weights, act } => {
            b.tensors(&[*x, *y])?;
            match weights {
                Weights::F32 { w, bias } => {
                    b.w.u8(act.code());
                    b.w.bytes.extend_from_slice(&[0, 0, 0]);
                    let wo = blob.consts(&f32_bytes(w));
                    b.offset(Some(wo));
                    let bo = bias.as_ref().map(|v| blob.consts(&f32_bytes(v)));
                    b.offset(bo);
                    OpKind::DenseF32
                }
                Weights::I8 { q, scales, bias } => {
                    int8_layer(blob, &mut b, t(*x), t(*y), q, scales, bias, *act)?;
                    OpKind::DenseS8
                }
            }
        }
        Node::Conv2d {
            x,
            y,
            weights,
            params,
            act,
        } => {
            b.tensors(&[*x, *y])?;
            for v in [
                params.kernel.0,
                params.kernel.1,
                params.stride.0,
                params.stride.1,
                params.padding.0,
                params.padding.1,
                params.dilation.0,
                params.dilation.1,
            ] {
                b.w.u8(byte(v, "Conv2d")?);
            }
            b.w.u16(
                u16::try_from(params.groups)
                    .map_err(|_| graph_err("Conv2d", "more than 65535 groups"))?,
            );
            match weights {
                Weights::F32 { w, bias } => {
                    b.w.u8(act.code());
                    b.w.u8(0);
                    let wo = blob.consts(&f32_bytes(w));
                    b.offset(Some(wo));
                    let bo = bias.as_ref().map(|v| blob.consts(&f32_bytes(v)));
                    b.offset(bo);
                    OpKind::Conv2dF32
                }
                Weights::I8 { q, scales, bias } => {
                    let qx = qparams(t(*x), "Conv2d")?;
                    b.w.u8(qx.zero_point as i8 as u8);
                    b.w.u8(0);
                    let (off, _) = p.scratch[i].unwrap_or((0, 0));
                    b.w.u32(off as u32);
                    int8_layer(blob, &mut b, t(*x), t(*y), q, scales, bias, *act)?;
                    OpKind::Conv2dS8
                }
            }
        }
        Node::MaxPool { x, y, params } | Node::AvgPool { x, y, params, .. } => {
            let avg = matches!(node, Node::AvgPool { .. });
            let include_pad = matches!(
                node,
                Node::AvgPool {
                    count_include_pad: true,
                    ..
                }
            );
            b.tensors(&[*x, *y])?;
            for v in [
                params.kernel.0,
                params.kernel.1,
                params.stride.0,
                params.stride.1,
                params.padding.0,
                params.padding.1,
            ] {
                b.w.u8(byte(v, "Pool2d")?);
            }
            b.w.u8(include_pad as u8);
            let zp = t(*x).quant.map_or(0, |q| q.zero_point);
            b.w.u8(zp as i8 as u8);
            b.w.u8(-128i8 as u8);
            b.w.u8(127);
            b.w.u16(0);
            match (avg, is_i8(*x)) {
                (false, false) => OpKind::MaxPoolF32,
                (false, true) => OpKind::MaxPoolS8,
                (true, false) => OpKind::AvgPoolF32,
                (true, true) => OpKind::AvgPoolS8,
            }
        }
        Node::Mean { x, y } => {
            b.tensors(&[*x, *y])?;
            if is_i8(*x) {
                let (qx, qy) = (qparams(t(*x), "Mean")?, qparams(t(*y), "Mean")?);
                let m = quant::mean_params(
                    qx.scale as f64,
                    qx.zero_point,
                    qy.scale as f64,
                    qy.zero_point,
                )?;
                b.w.i32(m.multiplier);
                b.w.i32(m.shift);
                b.w.i32(m.input_zero_point);
                b.w.i32(m.output_zero_point);
                OpKind::MeanS8
            } else {
                OpKind::MeanF32
            }
        }
        Node::Add { a, b: bb, y, act } => {
            b.tensors(&[*a, *bb, *y])?;
            if is_i8(*y) {
                b.w.u16(0);
                let (qa, qb, qy) = (
                    qparams(t(*a), "Add")?,
                    qparams(t(*bb), "Add")?,
                    qparams(t(*y), "Add")?,
                );
                let (lo, hi) = act_range(*act, qy);
                let ap = quant::add_params(
                    qa.scale as f64,
                    qa.zero_point,
                    qb.scale as f64,
                    qb.zero_point,
                    qy.scale as f64,
                    qy.zero_point,
                    lo,
                    hi,
                )?;
                for v in [
                    ap.left_shift,
                    ap.input1_offset,
                    ap.input1_multiplier,
                    ap.input1_shift,
                    ap.input2_offset,
                    ap.input2_multiplier,
                    ap.input2_shift,
                    ap.output_offset,
                    ap.output_multiplier,
                    ap.output_shift,
                ] {
                    b.w.i32(v);
                }
                b.w.u8(ap.act_min as u8);
                b.w.u8(ap.act_max as u8);
                b.w.u16(0);
                OpKind::AddS8
            } else {
                b.w.u8(act.code());
                b.w.u8(0);
                OpKind::AddF32
            }
        }
        Node::Unary { x, y, f } => {
            b.tensors(&[*x, *y])?;
            if is_i8(*x) {
                let (qx, qy) = (qparams(t(*x), "Activation")?, qparams(t(*y), "Activation")?);
                let table = lut(*f, qx, qy);
                let off = blob.consts(&table.map(|v| v as u8));
                b.offset(Some(off));
                OpKind::LutS8
            } else {
                b.w.u8(f.code());
                b.w.bytes.extend_from_slice(&[0, 0, 0]);
                b.w.f32(match f {
                    crate::op::Unary::LeakyRelu(s) => *s,
                    _ => 0.0,
                });
                OpKind::UnaryF32
            }
        }
        Node::Trees {
            x,
            y,
            roots,
            nodes,
            table,
            n_classes,
        } => {
            b.tensors(&[*x, *y])?;
            b.w.u16(
                u16::try_from(roots.len() - 1)
                    .map_err(|_| graph_err("trees", "more than 65535 trees"))?,
            );
            b.w.u16(
                u16::try_from(*n_classes)
                    .map_err(|_| graph_err("trees", "more than 65535 classes"))?,
            );
            let words = |v: &[u32]| v.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
            let ro = blob.consts(&words(roots));
            b.offset(Some(ro));
            let no = blob.consts(&words(nodes));
            b.offset(Some(no));
            b.w.u32((nodes.len() / 2) as u32);
            let tb: Vec<u8> = table
                .iter()
                .flat_map(|v| v.to_bits().to_le_bytes())
                .collect();
            let to = blob.consts(&tb);
            b.offset(Some(to));
            b.w.u32((table.len() / n_classes) as u32);
            let (off, _) = p.scratch[i].unwrap_or((0, 0));
            b.w.u32(off as u32);
            OpKind::TreeEnsemble
        }
        Node::GaussianNb {
            x,
            y,
            prior,
            theta,
            var,
            log_term,
        } => {
            b.tensors(&[*x, *y])?;
            b.w.u16(
                u16::try_from(prior.len())
                    .map_err(|_| graph_err("gaussian_nb", "more than 65535 classes"))?,
            );
            b.w.u16(0);
            let data: Vec<u8> = [prior, theta, var, log_term]
                .iter()
                .flat_map(|v| f32_bytes(v))
                .collect();
            let off = blob.consts(&data);
            b.offset(Some(off));
            OpKind::GaussianNb
        }
        Node::Recurrent {
            x,
            y,
            cell,
            hidden,
            reverse,
            last_only,
            col,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        } => {
            use crate::op::{cell_code, RECURRENT_LAST, RECURRENT_REVERSE};
            const OP: &str = "Recurrent";
            b.tensors(&[*x, *y])?;
            b.w.u8(cell_code(*cell));
            let flag = |on: bool, bit: u8| if on { bit } else { 0 };
            b.w.u8(flag(*reverse, RECURRENT_REVERSE) | flag(*last_only, RECURRENT_LAST));
            b.w.u16(
                u16::try_from(*hidden)
                    .map_err(|_| graph_err(OP, "more than 65535 hidden units"))?,
            );
            b.w.u16(
                u16::try_from(*col).map_err(|_| graph_err(OP, "an output column above 65535"))?,
            );
            b.w.u16(0);
            for v in [Some(w_ih), Some(w_hh), b_ih.as_ref(), b_hh.as_ref()] {
                let off = v.map(|v| blob.consts(&f32_bytes(v)));
                b.offset(off);
            }
            let (off, _) = p.scratch[i].unwrap_or((0, 0));
            b.w.u32(off as u32);
            OpKind::RecurrentF32
        }
        Node::Softmax { x, y } => {
            b.tensors(&[*x, *y])?;
            if is_i8(*x) {
                let qx = qparams(t(*x), "Softmax")?;
                let sp = quant::softmax_params(qx.scale as f64, 1.0)?;
                b.w.i32(sp.input_multiplier);
                b.w.i32(sp.input_left_shift);
                b.w.i32(sp.diff_min);
                OpKind::SoftmaxS8
            } else {
                OpKind::SoftmaxF32
            }
        }
    };
    blob.record(kind, b.w, &b.patches);
    Ok(())
}

/// The 256-entry table of an element-wise function from int8 input to int8 output:
/// entry `q` holds `clamp(round(f(scale_x * (q - zp_x)) / scale_y) + zp_y)`,
/// evaluated in f64.
pub fn lut(f: crate::op::Unary, qx: QParams, qy: QParams) -> [i8; 256] {
    let mut table = [0i8; 256];
    for (k, e) in table.iter_mut().enumerate() {
        let q = k as u8 as i8 as i32;
        let real = qx.scale as f64 * (q - qx.zero_point) as f64;
        let v = libm::round(f.apply_f64(real) / qy.scale as f64) as i64 + qy.zero_point as i64;
        *e = v.clamp(-128, 127) as i8;
    }
    table
}
