//! Post-training int8 quantization, to TensorFlow Lite's quantization spec:
//!
//! - weights per output channel, symmetric, in `[-127, 127]`:
//!   `scale[o] = max |w[o, :]| / 127`;
//! - activations per tensor, asymmetric int8, from the ranges the f32 model reaches
//!   on calibration data the caller passes (widened to include 0, so that zero
//!   padding and ReLU are exact): `scale = (max - min) / 255`,
//!   `zero_point = round(-128 - min / scale)`;
//! - bias in int32 at scale `input_scale * weight_scale[o]`, zero point 0;
//! - pooling keeps its input's quantization; softmax and sigmoid outputs use
//!   TensorFlow Lite's fixed `1/256, -128`, tanh `1/128, 0`;
//! - ReLU and ReLU6 fused into a layer become the clamp of its int8 output.
//!
//! Ranges are observed on the engine itself ([`crate::Model::run_observed`]) running
//! the f32 blob, so calibration sees exactly the numbers deployment computes.

use crate::encode::encode;
use crate::error::{Error, Result};
use crate::format::DType;
use crate::graph::{Graph, Node, QParams, Weights};
use crate::host::{AlignedBlob, HeapArena};
use crate::model::Model;
use crate::op::Unary;
use alloc::vec;
use alloc::vec::Vec;

/// Settings of [`quantize`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantizeConfig {
    /// Keep the output in int8 (`true`, the default: the bytes a device compares) or
    /// add a final `Dequantize` to f32.
    pub int8_output: bool,
}

impl Default for QuantizeConfig {
    fn default() -> Self {
        QuantizeConfig { int8_output: true }
    }
}

/// TensorFlow Lite's asymmetric int8 parameters for values in `[lo, hi]`.
pub fn choose_qparams(lo: f32, hi: f32) -> QParams {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    if hi - lo <= f32::MIN_POSITIVE {
        return QParams {
            scale: 1.0,
            zero_point: 0,
        };
    }
    let scale = (hi - lo) / 255.0;
    let zero_point = libm::roundf(-128.0 - lo / scale).clamp(-128.0, 127.0) as i32;
    QParams { scale, zero_point }
}

/// Per-channel symmetric int8 weights: `(q, scales)` for rows of `per` values.
pub fn quantize_weights(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks(per.max(1)).take(rows) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let s = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|v| libm::roundf(v / s).clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// The value ranges every tensor of `g` reaches over `samples` (a whole number of
/// inputs, flat), observed on the engine running `g` in f32.
pub fn calibrate(g: &Graph, samples: &[f32]) -> Result<Vec<(f32, f32)>> {
    let (bytes, _) = encode(g)?;
    let blob = AlignedBlob::new(&bytes);
    let model: Model<'_> = Model::from_bytes(blob.bytes())?;
    let input_len = model.input().numel();
    if samples.is_empty()
        || !samples.len().is_multiple_of(input_len)
        || samples.iter().any(|v| !v.is_finite())
    {
        return Err(Error::InvalidParameter {
            op: "quantize",
            name: "calibration samples",
            value: samples.len() as f64,
            valid: "a non-empty whole number of finite inputs",
        });
    }
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); g.tensors.len()];
    let widen = |r: &mut (f32, f32), v: &[f32]| {
        for &x in v {
            r.0 = r.0.min(x);
            r.1 = r.1.max(x);
        }
    };
    let mut arena = HeapArena::new(model.arena_len());
    let mut out = vec![0.0f32; model.output().numel()];
    for x in samples.chunks_exact(input_len) {
        widen(&mut ranges[g.input], x);
        model.run_observed(arena.bytes(), x, &mut out, |i, y| {
            if let (Some(node), Ok(v)) = (g.nodes.get(i), bytemuck::try_cast_slice::<u8, f32>(y)) {
                widen(&mut ranges[node.output()], v);
            }
        })?;
    }
    for (t, tensor) in g.tensors.iter().enumerate() {
        if let Some(v) = tensor.view_of {
            ranges[t] = ranges[v];
        }
    }
    Ok(ranges)
}

/// The int8 version of the f32 graph `g`, with activation ranges calibrated on
/// `samples` (a whole number of inputs, flat, in the graph's input layout). The input
/// stays f32 and is quantized by the first op.
pub fn quantize(g: &Graph, samples: &[f32], config: QuantizeConfig) -> Result<Graph> {
    if g.tensors.iter().any(|t| t.dtype != DType::F32) {
        return Err(Error::Graph {
            op: "quantize",
            why: "the graph is already quantized",
        });
    }
    if g.nodes
        .iter()
        .any(|n| matches!(n, Node::Trees { .. } | Node::GaussianNb { .. }))
    {
        return Err(Error::Graph {
            op: "quantize",
            why: "classic models (trees, naive Bayes) run in float; deploy them unquantized",
        });
    }
    if g.nodes.iter().any(|n| matches!(n, Node::Recurrent { .. })) {
        return Err(Error::Graph {
            op: "quantize",
            why: "recurrent layers (RNN, LSTM, GRU) run in f32 only; deploy the model unquantized",
        });
    }
    let ranges = calibrate(g, samples)?;
    let mut q = g.clone();
    // Every activation becomes int8 with its calibrated parameters, except those
    // whose parameters follow from the op.
    for (t, tensor) in q.tensors.iter_mut().enumerate() {
        tensor.dtype = DType::I8;
        let (lo, hi) = ranges[t];
        tensor.quant = Some(if lo <= hi {
            choose_qparams(lo, hi)
        } else {
            choose_qparams(0.0, 0.0)
        });
    }
    for node in &g.nodes {
        let fixed = match *node {
            Node::MaxPool { x, .. } | Node::AvgPool { x, .. } | Node::Mean { x, .. } => {
                q.tensors[x].quant
            }
            Node::Softmax { .. }
            | Node::Unary {
                f: Unary::Sigmoid, ..
            } => Some(QParams {
                scale: 1.0 / 256.0,
                zero_point: -128,
            }),
            Node::Unary { f: Unary::Tanh, .. } => Some(QParams {
                scale: 1.0 / 128.0,
                zero_point: 0,
            }),
            _ => None,
        };
        if let Some(p) = fixed {
            q.tensors[node.output()].quant = Some(p);
        }
    }
    for t in 0..q.tensors.len() {
        if let Some(v) = q.tensors[t].view_of {
            q.tensors[t].quant = q.tensors[v].quant;
        }
    }
    // Weights and biases: one scale per output channel, the last axis of the output.
    for node in q.nodes.iter_mut() {
        if let Node::Dense { x, y, weights, .. } | Node::Conv2d { x, y, weights, .. } = node {
            if let Weights::F32 { w, bias } = weights {
                let outputs = g.tensors[*y].dims.last().copied().unwrap_or(1);
                let sx = g_scale(&q.tensors[*x]);
                let (wq, scales) = quantize_weights(w, outputs);
                let b = (0..outputs)
                    .map(|o| {
                        let v = bias.as_ref().map_or(0.0, |b| b[o]);
                        libm::roundf(v / (sx * scales[o])).clamp(-2_147_483_648.0, 2_147_483_520.0)
                            as i32
                    })
                    .collect();
                *weights = Weights::I8 {
                    q: wq,
                    scales,
                    bias: b,
                };
            }
        }
    }
    // The f32 input is quantized by a first op into a new int8 tensor.
    let input_f32 = q.tensor(g.tensors[g.input].dims.clone(), DType::F32);
    let input_q = g.input;
    q.nodes.insert(
        0,
        Node::Quantize {
            x: input_f32,
            y: input_q,
        },
    );
    q.input = input_f32;
    if !config.int8_output {
        let out_q = q.output;
        let dims = q.tensors[out_q].dims.clone();
        let out_f32 = q.tensor(dims, DType::F32);
        q.nodes.push(Node::Dequantize {
            x: out_q,
            y: out_f32,
        });
        q.output = out_f32;
    }
    Ok(q)
}

fn g_scale(t: &crate::graph::Tensor) -> f32 {
    t.quant.map_or(1.0, |p| p.scale)
}
