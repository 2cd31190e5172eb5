//! Issue 18's acceptance: the two `.tflite` models committed in
//! `tests/reference/tflite/models/` (TensorFlow Lite Micro's sine regressor and
//! micro_speech keyword model, neither trained here), imported by
//! `dl_deploy::tflite::import`, give int8 outputs equal bit for bit to TensorFlow
//! Lite Micro's interpreter on every committed input (1,026 sine, 1,030 speech),
//! through both the engine as it runs on the MCU (`Model::run`, in one arena) and
//! the desktop path (`Prepared::run`). The reference (inputs, TFLM's outputs, model
//! cards) was written by `tests/reference/tflite/make_reference.py` with TFLM's own
//! interpreter; its README gives the formats.
//!
//! The imported graph is also compared with `card.txt`, the model read by TFLite's
//! own generated Python schema: operators in order with their options, and every
//! activation's and weight's shape, scales and zero points. So the reader is checked
//! against an independent parser, not only through its outputs.
//!
//! No tolerance anywhere: the claim is bit-for-bit equality with TFLM, and the
//! published floats are exact f32 decimals of the dequantized int8 outputs.

use dl_deploy::graph::{Node, Weights};
use dl_deploy::op::Act;
use dl_deploy::{encode, tflite, AlignedBlob, DType, Graph, HeapArena, Model, Prepared, QParams};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/tflite")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (dtype, per-tensor shape, count, body) of a tflref1 file (README's reader).
fn read_tflref1(bytes: &[u8]) -> (String, Vec<usize>, usize, &[u8]) {
    let nl = bytes.iter().position(|&b| b == b'\n').expect("header line");
    let header = std::str::from_utf8(&bytes[..nl]).expect("ASCII header");
    let mut it = header.split(' ');
    assert_eq!(it.next(), Some("tflref1"));
    let mut field = |key: &str| {
        let f = it.next().expect("field");
        f.strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .expect(key)
            .to_string()
    };
    let dtype = field("dtype");
    let shape: Vec<usize> = field("shape")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|d| d.parse().unwrap())
        .collect();
    let count: usize = field("count").parse().unwrap();
    let body = &bytes[nl + 1..];
    assert_eq!(body.len(), count * shape.iter().product::<usize>());
    (dtype, shape, count, body)
}

/// One `card.txt` or `cases.txt` record: its kind word and its `key=value` fields.
struct Record {
    kind: String,
    fields: HashMap<String, String>,
}

impl Record {
    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("{} record without {key}", self.kind))
    }
    fn list<T: std::str::FromStr>(&self, key: &str) -> Vec<T>
    where
        T::Err: std::fmt::Debug,
    {
        self.get(key)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|v| v.parse().unwrap())
            .collect()
    }
}

fn records(text: &str) -> Vec<Record> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut it = l.split(' ');
            let kind = it.next().unwrap().to_string();
            let fields = it
                .filter_map(|t| t.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Record { kind, fields }
        })
        .collect()
}

fn qparams(r: &Record) -> QParams {
    QParams {
        scale: r.get("scale").parse().unwrap(),
        zero_point: r.get("zero_point").parse().unwrap(),
    }
}

fn dequantize(q: QParams, v: i8) -> f32 {
    q.scale * (v as i32 - q.zero_point) as f32
}

/// TFLite's quantization (README): `x / scale` in f32, rounded half away from zero.
fn quantize(q: QParams, x: f32) -> i8 {
    ((x / q.scale).round() as i32 + q.zero_point).clamp(-128, 127) as i8
}

/// Imports `models/<name>.tflite`, runs every case of `<name>/inputs.bin` through
/// `Model::run` and `Prepared::run`, requires both to equal TFLM's
/// `<name>/outputs.bin`, checks the published point, and returns the graph and the
/// number of cases.
fn matches_tflm(name: &str) -> (Graph, usize) {
    let dir = reference_dir();
    let g = tflite::import(&read(&dir.join(format!("models/{name}.tflite")))).expect("imports");
    let (blob, plan) = encode(&g).expect("encodes");
    let blob = AlignedBlob::new(&blob);
    let model: Model = Model::from_bytes(blob.bytes()).expect("loads");
    let prepared = Prepared::from_model(&model).expect("prepares");

    let inputs = read(&dir.join(format!("{name}/inputs.bin")));
    let outputs = read(&dir.join(format!("{name}/outputs.bin")));
    let (in_dtype, in_shape, count, xs) = read_tflref1(&inputs);
    let (out_dtype, out_shape, out_count, ys) = read_tflref1(&outputs);
    assert_eq!((in_dtype.as_str(), out_dtype.as_str()), ("int8", "int8"));
    assert_eq!(count, out_count);

    let cases = std::fs::read_to_string(dir.join(format!("{name}/cases.txt"))).unwrap();
    let recs = records(&cases);
    let line = |kind: &str| recs.iter().find(|r| r.kind == kind).expect(kind);
    let declared: usize = cases
        .lines()
        .find_map(|l| l.strip_prefix("count "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(declared, count, "cases.txt and inputs.bin disagree");
    assert!(count >= 1000);
    let labels: Vec<&str> = cases
        .lines()
        .filter_map(|l| l.strip_prefix("case "))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(labels.len(), count);

    // The engine's input is the file's int8 input tensor itself (no QUANTIZE in
    // either model), with the file's shape and quantization.
    let (qx, qy) = (qparams(line("input")), qparams(line("output")));
    let (tin, tout) = (model.input(), model.output());
    assert_eq!((tin.dtype, tout.dtype), (DType::I8, DType::I8));
    assert_eq!(tin.dims.as_slice(), in_shape.as_slice());
    assert_eq!(tout.dims.as_slice(), out_shape.as_slice());
    assert_eq!(g.tensors[g.input].quant, Some(qx));
    assert_eq!(g.tensors[g.output].quant, Some(qy));

    let (n_in, n_out) = (tin.numel(), tout.numel());
    let mut arena = HeapArena::new(plan.arena_len);
    let mut prepared_arena = HeapArena::new(prepared.arena_len());
    let (mut y, mut y2) = (vec![0i8; n_out], vec![0i8; n_out]);
    let mut first = Vec::new();
    for k in 0..count {
        let x: Vec<i8> = xs[k * n_in..(k + 1) * n_in]
            .iter()
            .map(|&b| b as i8)
            .collect();
        let want: Vec<i8> = ys[k * n_out..(k + 1) * n_out]
            .iter()
            .map(|&b| b as i8)
            .collect();
        model.run(arena.bytes(), &x, &mut y).expect("runs");
        prepared
            .run(prepared_arena.bytes(), &x, &mut y2)
            .expect("prepared runs");
        assert_eq!(y, want, "{name} case {k} ({}): Model::run", labels[k]);
        assert_eq!(y2, want, "{name} case {k} ({}): Prepared::run", labels[k]);
        if k == 0 {
            first = y.clone();
        }
    }

    // The published point is case 0: its input is `x` quantized, and its output
    // dequantized is the published float, exactly.
    let p = line("published");
    let x: f32 = p.get("x").parse().unwrap();
    let input_q: Vec<i8> = p.list("input_q");
    let x0: Vec<i8> = xs[..n_in].iter().map(|&b| b as i8).collect();
    assert!(input_q.len() == n_in || input_q.len() == 1);
    assert!(x0.iter().all(|&v| v == input_q[0] && v == quantize(qx, x)));
    let published: Vec<f32> = p.list("published_output");
    let got: Vec<f32> = first.iter().map(|&v| dequantize(qy, v)).collect();
    assert_eq!(got, published, "{name}: the published point");
    println!("{name}: {count} cases equal TFLM's through Model::run and Prepared::run; published point {got:?}");
    (g, count)
}

#[test]
fn sine_equals_tflm_on_every_input() {
    let (_, count) = matches_tflm("sine");
    assert_eq!(count, 1026);
}

#[test]
fn speech_equals_tflm_on_every_input() {
    let (_, count) = matches_tflm("speech");
    assert_eq!(count, 1030);
}

/// The imported graph against `card.txt`: each card operator in order (RESHAPE is a
/// view, so it adds no node), with its fused activation, geometry, and the shapes,
/// scales and zero points of its input, weights, bias and output.
fn matches_card(name: &str) -> usize {
    let dir = reference_dir();
    let g = tflite::import(&read(&dir.join(format!("models/{name}.tflite")))).expect("imports");
    let card = std::fs::read_to_string(dir.join(format!("{name}/card.txt"))).unwrap();
    let recs = records(&card);
    let tensors: Vec<&Record> = recs.iter().filter(|r| r.kind == "tensor").collect();
    let ops: Vec<&Record> = recs.iter().filter(|r| r.kind == "operator").collect();
    let sg = recs.iter().find(|r| r.kind == "subgraph").unwrap();
    let tensor = |i: i64| tensors[i as usize];
    let shape = |r: &Record| r.list::<usize>("shape");

    // The graph's input and output are the subgraph's.
    let (ti, to) = (
        tensor(sg.get("inputs").parse().unwrap()),
        tensor(sg.get("outputs").parse().unwrap()),
    );
    assert_eq!(g.tensors[g.input].dims, shape(ti));
    assert_eq!(g.tensors[g.input].quant, Some(qparams(ti)));
    assert_eq!(g.tensors[g.output].dims, shape(to));
    assert_eq!(g.tensors[g.output].quant, Some(qparams(to)));
    assert!(tensors.iter().all(|t| t.get("type") != "FLOAT32"));

    let act = |op: &Record| match op.get("fused_activation_function") {
        "NONE" => Act::None,
        "RELU" => Act::Relu,
        other => panic!("{name}: activation {other} not in these models"),
    };
    // Weight scales per output channel: per-tensor ones repeated (the engine's form).
    let weight_scales = |t: &Record, channels: usize| -> Vec<f32> {
        assert!(t.list::<i32>("zero_point").iter().all(|&z| z == 0));
        let s: Vec<f32> = t.list("scale");
        (0..channels).map(|o| s[o % s.len()]).collect()
    };
    let check_weights = |w: &Weights, wt: &Record, bt: &Record, channels: usize| {
        let Weights::I8 { q, scales, bias } = w else {
            panic!("{name}: float weights in an int8 model");
        };
        assert_eq!(q.len(), shape(wt).iter().product::<usize>());
        assert_eq!(*scales, weight_scales(wt, channels));
        assert_eq!(bias.len(), channels);
        assert_eq!(shape(bt), [channels]);
        assert_eq!(bt.get("type"), "INT32");
    };

    let mut nodes = g.nodes.iter();
    let mut checked = 0;
    for op in &ops {
        let ins: Vec<i64> = op.list("inputs");
        let outs: Vec<i64> = op.list("outputs");
        let (x, y) = (tensor(ins[0]), tensor(outs[0]));
        if op.get("op") == "RESHAPE" {
            // A view: same element count and quantization, no node.
            assert_eq!(
                shape(x).iter().product::<usize>(),
                shape(y).iter().product::<usize>()
            );
            assert_eq!(qparams(x), qparams(y));
            checked += 1;
            continue;
        }
        let node = nodes
            .next()
            .unwrap_or_else(|| panic!("{name}: too few nodes"));
        let (nx, ny) = (&g.tensors[node.inputs()[0]], &g.tensors[node.output()]);
        assert_eq!(ny.dims, shape(y), "{name}: {} output shape", op.get("op"));
        assert_eq!(
            ny.quant,
            Some(qparams(y)),
            "{name}: {} output",
            op.get("op")
        );
        assert_eq!(nx.numel(), shape(x).iter().product::<usize>());
        assert_eq!(nx.quant, Some(qparams(x)), "{name}: {} input", op.get("op"));
        match (op.get("op"), node) {
            (
                "FULLY_CONNECTED",
                Node::Dense {
                    weights, act: a, ..
                },
            ) => {
                let (wt, bt) = (tensor(ins[1]), tensor(ins[2]));
                let &[out, inp] = shape(wt).as_slice() else {
                    panic!("{name}: FC weights not [out, in]");
                };
                assert_eq!(nx.dims, [nx.numel() / inp, inp]);
                check_weights(weights, wt, bt, out);
                assert_eq!(*a, act(op));
            }
            (
                "DEPTHWISE_CONV_2D",
                Node::Conv2d {
                    weights,
                    params,
                    act: a,
                    ..
                },
            ) => {
                let (wt, bt) = (tensor(ins[1]), tensor(ins[2]));
                let &[1, kh, kw, c_out] = shape(wt).as_slice() else {
                    panic!("{name}: depthwise filter not [1, kh, kw, c]");
                };
                // Per-channel scales along the filter's last axis.
                assert_eq!(wt.get("quantized_dimension"), "3");
                let c_in = *shape(x).last().unwrap();
                let c_mult: usize = op.get("depth_multiplier").parse().unwrap();
                assert_eq!(c_out, c_in * c_mult);
                check_weights(weights, wt, bt, c_out);
                let stride: (usize, usize) = (
                    op.get("stride_h").parse().unwrap(),
                    op.get("stride_w").parse().unwrap(),
                );
                let dilation = (
                    op.get("dilation_h_factor").parse().unwrap(),
                    op.get("dilation_w_factor").parse().unwrap(),
                );
                // SAME (TFLite's ComputePaddingHeightWidth): out = ceil(in / stride),
                // total = (out - 1) * stride + k - in, total / 2 at the top/left.
                assert_eq!(op.get("padding"), "SAME");
                let (ih, iw) = (nx.dims[1], nx.dims[2]);
                let pad = |size: usize, k: usize, s: usize| {
                    let out = size.div_ceil(s);
                    ((out - 1) * s + k).saturating_sub(size) / 2
                };
                assert_eq!(
                    (params.kernel, params.stride, params.dilation, params.groups),
                    ((kh, kw), stride, dilation, c_in)
                );
                assert_eq!(
                    params.padding,
                    (pad(ih, kh, stride.0), pad(iw, kw, stride.1))
                );
                assert_eq!(*a, act(op));
            }
            ("SOFTMAX", Node::Softmax { .. }) => {
                assert_eq!(op.get("beta"), "1.0");
            }
            (kind, node) => panic!("{name}: card op {kind} imported as {node:?}"),
        }
        checked += 1;
    }
    assert!(nodes.next().is_none(), "{name}: more nodes than operators");
    checked
}

#[test]
fn sine_graph_matches_its_card() {
    // FULLY_CONNECTED x 3.
    assert_eq!(matches_card("sine"), 3);
}

#[test]
fn speech_graph_matches_its_card() {
    // RESHAPE, DEPTHWISE_CONV_2D, FULLY_CONNECTED, SOFTMAX.
    assert_eq!(matches_card("speech"), 4);
}
