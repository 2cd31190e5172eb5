//! `tflite::export` on a graph built by hand to reach every operator the exporter
//! writes, checked against TensorFlow Lite Micro running the exported file (its
//! outputs committed in `reference/tflite/export/`, made by `run_tflm.py`); then the
//! graphs it must refuse, each with a named error.
//!
//! The graph (input `[1, 3, 9, 9]`, weights from a fixed LCG): CONV_2D 3x3 stride 2
//! (SAME) + ReLU, DEPTHWISE_CONV_2D 3x3 with depth multiplier 2 (SAME) + ReLU6,
//! CONV_2D 1x1 (VALID), ADD + ReLU, TANH, MAX_POOL_2D 3x3 stride 2 (SAME),
//! AVERAGE_POOL_2D 2x2 stride 1 (VALID), LOGISTIC, MEAN, RELU, FULLY_CONNECTED,
//! SOFTMAX; quantized with a float output, so QUANTIZE first and DEQUANTIZE last.
//!
//! Regenerate the reference (only needed when the graph or the exporter changes):
//! `sh dl-deploy/tests/reference/tflite/export/regen.sh` (which runs these tests with
//! `DL_WRITE_TFLITE_EXPORT=1` to write the models and inputs, then TFLM).

use dl_deploy::graph::Node;
use dl_deploy::{
    encode, quantize, tflite, AlignedBlob, ConvParams, Error, Graph, HeapArena, Model, PoolParams,
    QuantizeConfig, Unary,
};
use std::path::PathBuf;

/// Test inputs run by both engines, and calibration inputs.
const CASES: usize = 200;
const CALIBRATION: usize = 64;
const INPUT: [usize; 4] = [1, 3, 9, 9];
const OUTPUTS: usize = 6;

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/tflite/export"
    ))
}

/// Values in `[-a, a)` from a 64-bit LCG (Knuth's constants), so the graph and its
/// inputs are the same on every machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, a: f32) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    }

    fn vec(&mut self, n: usize, a: f32) -> Vec<f32> {
        (0..n).map(|_| self.next(a)).collect()
    }
}

fn conv(k: usize, stride: usize, padding: usize, groups: usize) -> ConvParams {
    ConvParams {
        kernel: (k, k),
        stride: (stride, stride),
        padding: (padding, padding),
        dilation: (1, 1),
        groups,
    }
}

fn pool(k: usize, stride: usize, padding: usize) -> PoolParams {
    PoolParams {
        kernel: (k, k),
        stride: (stride, stride),
        padding: (padding, padding),
    }
}

/// The f32 graph of the module doc.
fn graph() -> Graph {
    let mut r = Lcg(18);
    let mut g = Graph::new(&INPUT).unwrap();
    let x = g.input;
    let c1 = g
        .conv2d(
            x,
            &r.vec(4 * 3 * 9, 0.5),
            Some(&r.vec(4, 0.1)),
            4,
            conv(3, 2, 1, 1),
        )
        .unwrap();
    let c1 = g.unary(c1, Unary::Relu).unwrap();
    let dw = g
        .conv2d(
            c1,
            &r.vec(8 * 9, 0.5),
            Some(&r.vec(8, 0.1)),
            8,
            conv(3, 1, 1, 4),
        )
        .unwrap();
    let dw = g.unary(dw, Unary::Relu6).unwrap();
    let pw = g
        .conv2d(dw, &r.vec(8 * 8, 0.5), None, 8, conv(1, 1, 0, 1))
        .unwrap();
    let sum = g.add(dw, pw).unwrap();
    let sum = g.unary(sum, Unary::Relu).unwrap();
    let t = g.unary(sum, Unary::Tanh).unwrap();
    let mp = g.max_pool(t, pool(3, 2, 1)).unwrap();
    let ap = g.avg_pool(mp, pool(2, 1, 0), true).unwrap();
    let s = g.unary(ap, Unary::Sigmoid).unwrap();
    let m = g.mean(s).unwrap();
    let m = g.unary(m, Unary::Relu).unwrap();
    let d = g
        .dense(
            m,
            &r.vec(OUTPUTS * 8, 2.0),
            Some(&r.vec(OUTPUTS, 0.5)),
            OUTPUTS,
        )
        .unwrap();
    g.softmax(d).unwrap();
    g
}

fn inputs(seed: u64, n: usize) -> Vec<f32> {
    Lcg(seed).vec(n * INPUT.iter().product::<usize>(), 1.0)
}

fn int8_graph() -> Graph {
    let config = QuantizeConfig { int8_output: false };
    quantize(&graph(), &inputs(1, CALIBRATION), config).unwrap()
}

/// The body of a float32 tflref1 file (`../reference/tflite/README.md`).
fn read_f32s(name: &str) -> Vec<f32> {
    let path = dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let header = std::str::from_utf8(&bytes[..nl]).unwrap();
    assert!(header.starts_with("tflref1 dtype=float32 "), "{header}");
    assert!(header.ends_with(&format!(" count={CASES}")), "{header}");
    bytes[nl + 1..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn tflref1_f32(shape: &str, v: &[f32]) -> Vec<u8> {
    let mut out = format!("tflref1 dtype=float32 shape={shape} count={CASES}\n").into_bytes();
    out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    out
}

/// Our engine's outputs on every test input.
fn run(g: &Graph, x: &[f32]) -> Vec<f32> {
    let (bytes, plan) = encode(g).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let mut arena = HeapArena::new(plan.arena_len);
    let mut y = vec![0f32; CASES * OUTPUTS];
    let n = x.len() / CASES;
    for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(OUTPUTS)) {
        model.run(arena.bytes(), x, y).unwrap();
    }
    y
}

/// Writes the reference's inputs and models when asked to (see the module doc).
fn write_if_asked(name: &str, file: &[u8]) -> bool {
    if std::env::var_os("DL_WRITE_TFLITE_EXPORT").is_none() {
        return false;
    }
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join(name), file).unwrap();
    let x = inputs(2, CASES);
    std::fs::write(dir().join("inputs.bin"), tflref1_f32("1,9,9,3", &x)).unwrap();
    true
}

fn committed(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn int8_export_runs_on_tflite_micro_as_on_our_engine() {
    let g = int8_graph();
    let file = tflite::export(&g).expect("every op exports");
    if write_if_asked("ops_int8.tflite", &file) {
        return;
    }
    assert!(
        file == committed("ops_int8.tflite"),
        "the export changed: regenerate (module doc)"
    );
    let x = inputs(2, CASES);
    assert_eq!(read_f32s("inputs.bin"), x);
    let tflm = read_f32s("tflm_int8_out.bin");
    let ours = run(&g, &x);
    // Exact: both quantize the same floats, run TensorFlow Lite's integer kernels on
    // the same numbers, and dequantize `(q - zero_point) * scale` with one rounding.
    let differ = (0..CASES)
        .filter(|&k| ours[k * OUTPUTS..][..OUTPUTS] != tflm[k * OUTPUTS..][..OUTPUTS])
        .count();
    println!(
        "{CASES} inputs: {} outputs equal to TensorFlow Lite Micro's",
        CASES - differ
    );
    assert_eq!(differ, 0);
    // The file reads back as the graph it came from, blob and all.
    let back = tflite::import(&file).unwrap();
    assert!(encode(&back).unwrap().0 == encode(&g).unwrap().0);
}

#[test]
fn f32_export_runs_on_tflite_micro_close_to_our_engine() {
    let g = graph();
    let file = tflite::export(&g).expect("every op exports");
    if write_if_asked("ops_f32.tflite", &file) {
        return;
    }
    assert!(
        file == committed("ops_f32.tflite"),
        "the export changed: regenerate (module doc)"
    );
    let x = inputs(2, CASES);
    let tflm = read_f32s("tflm_f32_out.bin");
    let ours = run(&g, &x);
    let worst = ours
        .iter()
        .zip(&tflm)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    println!("{CASES} inputs: largest f32 difference to TensorFlow Lite Micro {worst:e}");
    // Softmax probabilities (at most 1) after eight float layers whose sums run in
    // another order here than in TFLM's loops, and tanh, exp and the logistic from
    // another libm: a few f32 roundings each, 1e-6 is about 8 ulps of 1.
    assert!(worst <= 1e-6, "largest difference {worst:e}");
    let back = tflite::import(&file).unwrap();
    assert!(encode(&back).unwrap().0 == encode(&g).unwrap().0);
}

/// The error of exporting `g`, which must name operator `op` as `name`.
fn refused(g: &Graph, op: usize, name: &str) -> &'static str {
    match tflite::export(g) {
        Err(Error::TfLite {
            op: Some(i),
            name: n,
            why,
        }) if i == op && n == name => why,
        other => panic!("expected an error at node {op} ({name}), got {other:?}"),
    }
}

#[test]
fn graphs_tflite_cannot_run_give_named_errors() {
    // Leaky ReLU: no exported builtin.
    let mut g = Graph::new(&[1, 4]).unwrap();
    g.unary(0, Unary::LeakyRelu(0.1)).unwrap();
    refused(&g, 0, "LEAKY_RELU");

    // Padding 1 with stride 2 on 8 rows: SAME would pad 0 at the top (total 1).
    let mut g = Graph::new(&[1, 1, 8, 8]).unwrap();
    g.conv2d(0, &[0.5; 9], None, 1, conv(3, 2, 1, 1)).unwrap();
    let why = refused(&g, 0, "CONV_2D");
    assert!(why.contains("SAME or VALID"), "{why}");

    // PyTorch's average pooling counting the padding.
    let mut g = Graph::new(&[1, 1, 4, 4]).unwrap();
    g.avg_pool(0, pool(3, 1, 1), true).unwrap();
    refused(&g, 0, "AVERAGE_POOL_2D");

    // An int8 LOGISTIC, TANH or SOFTMAX output quantized otherwise than TFLite fixes.
    let q = int8_graph();
    for (builtin, f) in [
        ("TANH", Some(Unary::Tanh)),
        ("LOGISTIC", Some(Unary::Sigmoid)),
        ("SOFTMAX", None),
    ] {
        let at = q
            .nodes
            .iter()
            .position(|n| match (n, f) {
                (Node::Unary { f: g, .. }, Some(f)) => *g == f,
                (Node::Softmax { .. }, None) => true,
                _ => false,
            })
            .unwrap();
        let mut bad = q.clone();
        let y = bad.nodes[at].output();
        bad.tensors[y].quant.as_mut().unwrap().zero_point += 1;
        let why = refused(&bad, at, builtin);
        assert!(why.contains("quantized with scale"), "{why}");
    }

    // A graph whose node reads a tensor it does not have: an error, not a panic.
    let mut g = Graph::new(&[1, 4]).unwrap();
    g.unary(0, Unary::Tanh).unwrap();
    if let Node::Unary { x, .. } = &mut g.nodes[0] {
        *x = 7;
    }
    assert!(matches!(
        tflite::export(&g),
        Err(Error::TfLite { op: None, .. })
    ));

    // Classic models.
    let mut g = Graph::new(&[1, 2]).unwrap();
    g.gaussian_nb(0, vec![0.0; 2], vec![0.0; 4], vec![1.0; 4], vec![0.0; 4])
        .unwrap();
    refused(&g, 0, "GaussianNb");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Damaged graphs (ids, shapes, geometry, quantization changed at random) give
    /// an export or an error, never a panic; every export is a file the importer
    /// takes back.
    #[test]
    fn damaged_graphs_never_panic(
        node in 0usize..16,
        tensor in 0usize..20,
        id in 0usize..24,
        dim in 0usize..12,
        geo in proptest::collection::vec(0usize..5, 6),
        zp in -130i32..130,
        float in proptest::bool::ANY,
    ) {
        let mut g = if float { graph() } else { int8_graph() };
        let n = node % g.nodes.len();
        let t = tensor % g.tensors.len();
        match &mut g.nodes[n] {
            Node::Conv2d { params, x, .. } => {
                params.kernel = (geo[0], geo[1]);
                params.stride = (geo[2], geo[3]);
                params.padding = (geo[4], geo[5]);
                *x = id;
            }
            Node::MaxPool { params, y, .. } | Node::AvgPool { params, y, .. } => {
                params.kernel = (geo[0], geo[1]);
                params.stride = (geo[2], geo[3]);
                params.padding = (geo[4], geo[5]);
                *y = id;
            }
            Node::Add { b, .. } => *b = id,
            Node::Dense { y, .. } | Node::Unary { y, .. } | Node::Softmax { y, .. } => *y = id,
            _ => {}
        }
        let k = dim % g.tensors[t].dims.len();
        g.tensors[t].dims[k] = dim;
        if let Some(q) = &mut g.tensors[t].quant {
            q.zero_point = zp;
        }
        if let Ok(file) = tflite::export(&g) {
            let back = tflite::import(&file);
            proptest::prop_assert!(back.is_ok(), "{:?}", back.err());
        }
    }
}
