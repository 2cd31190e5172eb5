//! What dl-deploy makes of a TensorFlow Lite model: its ops with their TFLite names,
//! element types and shapes, the tensors' sizes, the planned arena, and one
//! prediction.
//!
//! ```sh
//! cargo run -p dl-deploy --example tflite_info -- dl-deploy/tests/reference/tflite/models/sine.tflite
//! cargo run -p dl-deploy --example tflite_info -- MODEL.tflite INPUT.bin
//! ```
//!
//! Without `INPUT.bin` the input is the input tensor's zero point in every element
//! (the quantized 0.0; plain 0.0 for a float input). `INPUT.bin` holds the raw input
//! tensor: one byte per element for int8, little-endian f32 for float.

use dl_deploy::graph::Tensor;
use dl_deploy::{
    encode, tflite, AlignedBlob, DType, Element, Graph, HeapArena, Model, Node, Unary, Weights,
};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 2 || args.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: tflite_info MODEL.tflite [INPUT.bin]   (INPUT.bin: the raw input tensor; default: its zero point)");
        return ExitCode::from(2);
    }
    match info(&args[0], args.get(1).map(String::as_str)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tflite_info: {e}");
            ExitCode::FAILURE
        }
    }
}

fn info(path: &str, input: Option<&str>) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let g = tflite::import(&bytes).map_err(|e| format!("{path}: {e:?}"))?;
    println!("{path}: {} bytes, {} ops", bytes.len(), g.nodes.len());
    println!("ops (RESHAPE, and a FULLY_CONNECTED input flattened, are views: no op runs):");
    for (i, node) in g.nodes.iter().enumerate() {
        let ins: Vec<String> = node
            .inputs()
            .iter()
            .map(|&t| shape(&g.tensors[t]))
            .collect();
        let y = &g.tensors[node.output()];
        println!(
            "  {i:>2} {:<20} {:<4} {} -> {}",
            tflite_name(&g, node),
            dtype(y.dtype),
            ins.join(", "),
            shape(y)
        );
    }
    println!("tensors:");
    for (t, tensor) in g.tensors.iter().enumerate() {
        let role = match (t == g.input, t == g.output, tensor.view_of) {
            (true, _, _) => " (input)".to_string(),
            (_, true, _) => " (output)".to_string(),
            (_, _, Some(base)) => format!(" (view of {base})"),
            _ => String::new(),
        };
        let q = tensor.quant.map_or(String::new(), |q| {
            format!(" scale {} zero point {}", q.scale, q.zero_point)
        });
        println!(
            "  {t:>2} {:<4} {:<16} {:>7} bytes{q}{role}",
            dtype(tensor.dtype),
            shape(tensor),
            tensor.bytes()
        );
    }
    let params: usize = g.nodes.iter().map(weight_bytes).sum();
    let (blob, plan) = encode(&g).map_err(|e| format!("encode: {e:?}"))?;
    println!(
        "weights {params} bytes; blob {} bytes; arena {} bytes (planned; the most live at once: {})",
        blob.len(),
        plan.arena_len,
        plan.peak_live
    );
    let blob = AlignedBlob::new(&blob);
    let model: Model = Model::from_bytes(blob.bytes()).map_err(|e| format!("load: {e:?}"))?;
    let mut arena = HeapArena::new(plan.arena_len);
    let raw = input
        .map(|p| std::fs::read(p).map_err(|e| format!("{p}: {e}")))
        .transpose()?;
    let (x, y) = (&g.tensors[g.input], &g.tensors[g.output]);
    let n = x.numel();
    if raw.as_ref().is_some_and(|r| r.len() != x.bytes()) {
        return Err(format!(
            "the input file must hold {} bytes ({n} {} values)",
            x.bytes(),
            dtype(x.dtype)
        ));
    }
    let out = match x.dtype {
        DType::I8 => {
            let zp = x.quant.map_or(0, |q| q.zero_point) as i8;
            let v: Vec<i8> = raw.map_or(vec![zp; n], |r| r.iter().map(|&b| b as i8).collect());
            predict(&model, arena.bytes(), &v, y)?
        }
        _ => {
            let v: Vec<f32> = raw.map_or(vec![0.0; n], |r| {
                r.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            });
            predict(&model, arena.bytes(), &v, y)?
        }
    };
    let what = if input.is_some() {
        "on the input file"
    } else {
        "on the zero-point input"
    };
    println!("prediction {what} (dequantized): {out:?}");
    Ok(())
}

/// Runs the model and returns the output as f32 (int8 dequantized in f32, as
/// TensorFlow Lite does).
fn predict<I: Element>(
    model: &Model,
    arena: &mut [u8],
    x: &[I],
    y: &Tensor,
) -> Result<Vec<f32>, String> {
    let run = |e| format!("run: {e:?}");
    Ok(match y.dtype {
        DType::I8 => {
            let mut out = vec![0i8; y.numel()];
            model.run(arena, x, &mut out).map_err(run)?;
            let q = y.quant.ok_or("an int8 output without quantization")?;
            out.iter()
                .map(|&v| q.scale * (v as i32 - q.zero_point) as f32)
                .collect()
        }
        _ => {
            let mut out = vec![0f32; y.numel()];
            model.run(arena, x, &mut out).map_err(run)?;
            out
        }
    })
}

/// The TensorFlow Lite builtin a node was imported from (`src/tflite/mod.rs` gives
/// the mapping).
fn tflite_name(g: &Graph, node: &Node) -> &'static str {
    match node {
        Node::Quantize { .. } => "QUANTIZE",
        Node::Dequantize { .. } => "DEQUANTIZE",
        Node::Dense { .. } => "FULLY_CONNECTED",
        // A depthwise filter became a convolution with one group per input channel;
        // with one input channel that is a plain convolution, so either name fits.
        Node::Conv2d { x, params, .. } => match (g.tensors[*x].dims.last(), params.groups) {
            (Some(1), _) => "(DEPTHWISE_)CONV_2D",
            (_, 1) => "CONV_2D",
            (Some(&c), groups) if c == groups => "DEPTHWISE_CONV_2D",
            _ => "CONV_2D (grouped)",
        },
        Node::MaxPool { .. } => "MAX_POOL_2D",
        Node::AvgPool { .. } => "AVERAGE_POOL_2D",
        Node::Mean { .. } => "MEAN",
        Node::Add { .. } => "ADD",
        Node::Softmax { .. } => "SOFTMAX",
        Node::Unary { f, .. } => match f {
            Unary::Relu => "RELU",
            Unary::Relu6 => "RELU6",
            Unary::Sigmoid => "LOGISTIC",
            Unary::Tanh => "TANH",
            Unary::LeakyRelu(_) => "LEAKY_RELU",
        },
        _ => "(not from TFLite)",
    }
}

fn weight_bytes(node: &Node) -> usize {
    match node {
        Node::Dense { weights, .. } | Node::Conv2d { weights, .. } => match weights {
            Weights::I8 { q, bias, .. } => q.len() + 4 * bias.len(),
            Weights::F32 { w, bias } => 4 * (w.len() + bias.as_ref().map_or(0, Vec::len)),
        },
        _ => 0,
    }
}

fn dtype(d: DType) -> &'static str {
    match d {
        DType::I8 => "i8",
        DType::F32 => "f32",
        DType::I32 => "i32",
    }
}

fn shape(t: &Tensor) -> String {
    let dims: Vec<String> = t.dims.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}
