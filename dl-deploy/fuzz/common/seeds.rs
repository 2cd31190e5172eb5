//! The seed corpus: small graphs, built with dl-deploy's public builder, that
//! together use every op kind, in f32 and int8 (int8 output, and int8 with a final
//! dequantize to f32), encoded as blobs. Written by `examples/gen_corpus.rs`;
//! `dl-deploy/tests/fuzz_corpus.rs` also rebuilds them to check that they load, run
//! and cover every kind.
#![allow(dead_code)]

use dl_deploy::classic::LEAF;
use dl_deploy::op::{Cell, Unary};
use dl_deploy::{
    encode, quantize, ConvParams, DType, Graph, PoolParams, QuantizeConfig, RecurrentLayer, Result,
};

/// Deterministic values in [-1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn conv(
    kernel: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
) -> ConvParams {
    ConvParams {
        kernel,
        stride,
        padding,
        dilation,
        groups,
    }
}

fn pool(kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> PoolParams {
    PoolParams {
        kernel,
        stride,
        padding,
    }
}

/// Batch 2, dense + fused ReLU, dense, softmax.
fn mlp(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[2, 4])?;
    let h = g.dense(g.input, &r.vec(24), Some(&r.vec(6)), 6)?;
    let h = g.unary(h, Unary::Relu)?;
    let h = g.dense(h, &r.vec(18), None, 3)?;
    g.softmax(h)?;
    Ok(g)
}

/// Every element-wise function standalone (none can fuse), then a dense layer
/// with a fused ReLU6.
fn activations(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 6])?;
    let mut h = g.unary(g.input, Unary::Relu)?;
    for f in [
        Unary::Relu6,
        Unary::LeakyRelu(0.1),
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Relu,
    ] {
        h = g.unary(h, f)?;
    }
    let h = g.dense(h, &r.vec(24), Some(&r.vec(4)), 4)?;
    g.unary(h, Unary::Relu6)?;
    Ok(g)
}

/// Convolution + ReLU, depthwise convolution (stride 2) + ReLU6, max pooling,
/// average pooling with padding (not counted), global mean, dense, softmax.
fn cnn(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 2, 6, 6])?;
    let h = g.conv2d(
        g.input,
        &r.vec(4 * 2 * 9),
        Some(&r.vec(4)),
        4,
        conv((3, 3), (1, 1), (1, 1), (1, 1), 1),
    )?;
    let h = g.unary(h, Unary::Relu)?;
    let h = g.conv2d(
        h,
        &r.vec(4 * 9),
        Some(&r.vec(4)),
        4,
        conv((3, 3), (2, 2), (1, 1), (1, 1), 4),
    )?;
    let h = g.unary(h, Unary::Relu6)?;
    let h = g.max_pool(h, pool((2, 2), (1, 1), (0, 0)))?;
    let h = g.avg_pool(h, pool((2, 2), (1, 1), (1, 1)), false)?;
    let h = g.mean(h)?;
    let h = g.dense(h, &r.vec(12), Some(&r.vec(3)), 3)?;
    g.softmax(h)?;
    Ok(g)
}

/// Grouped convolution with a rectangular kernel, unequal strides, padding and
/// dilation; padded average pooling counting the padding; max pooling with a stride;
/// flatten, dense.
fn grouped(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 4, 5, 5])?;
    let h = g.conv2d(
        g.input,
        &r.vec(6 * 2 * 3 * 2),
        None,
        6,
        conv((3, 2), (1, 2), (1, 0), (2, 1), 2),
    )?;
    let h = g.avg_pool(h, pool((2, 2), (1, 1), (1, 1)), true)?;
    let h = g.max_pool(h, pool((3, 2), (1, 2), (1, 0)))?;
    let h = g.flatten(h)?;
    let n = g.tensors[h].dims[1];
    g.dense(h, &r.vec(2 * n), Some(&r.vec(2)), 2)?;
    Ok(g)
}

/// A residual block: convolution + ReLU, 1x1 convolution, add with a fused ReLU,
/// an add with no activation, flatten, dense.
fn residual(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 3, 4, 4])?;
    let a = g.conv2d(
        g.input,
        &r.vec(3 * 3 * 9),
        Some(&r.vec(3)),
        3,
        conv((3, 3), (1, 1), (1, 1), (1, 1), 1),
    )?;
    let a = g.unary(a, Unary::Relu)?;
    let b = g.conv2d(
        a,
        &r.vec(9),
        None,
        3,
        conv((1, 1), (1, 1), (0, 0), (1, 1), 1),
    )?;
    let s = g.add(b, a)?;
    let s = g.unary(s, Unary::Relu)?;
    let s = g.add(s, g.input)?;
    let f = g.flatten(s)?;
    g.dense(f, &r.vec(2 * 48), Some(&r.vec(2)), 2)?;
    Ok(g)
}

/// A pointwise (1x1) convolution straight after the input: in int8 its output
/// takes the f32 input's place at arena offset 0, and a pointwise convolution has no
/// scratch (an empty region at offset 0).
fn pointwise(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 3, 4, 4])?;
    g.conv2d(
        g.input,
        &r.vec(6),
        None,
        2,
        conv((1, 1), (1, 1), (0, 0), (1, 1), 1),
    )?;
    Ok(g)
}

/// A rank-3 input `[n, t, features]`: dense over the last axis, tanh, dense,
/// softmax.
fn sequence(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[2, 3, 4])?;
    let h = g.dense(g.input, &r.vec(20), Some(&r.vec(5)), 5)?;
    let h = g.unary(h, Unary::Tanh)?;
    let h = g.dense(h, &r.vec(10), None, 2)?;
    g.softmax(h)?;
    Ok(g)
}

/// A split node: `feature | right << 16`, then the threshold's f32 bits.
fn split(feature: u32, right: u32, threshold: f32) -> [u32; 2] {
    [feature | right << 16, threshold.to_bits()]
}

fn leaf(row: u32) -> [u32; 2] {
    [LEAF, row]
}

/// A forest of two trees (a stump and a depth-2 tree) over 2 features, 2 classes.
fn forest() -> Result<Graph> {
    let mut g = Graph::new(&[3, 2])?;
    let nodes: Vec<u32> = [
        split(0, 2, 0.5),
        leaf(0),
        leaf(1),
        split(1, 4, -0.25),
        split(0, 2, 0.0),
        leaf(0),
        leaf(2),
        leaf(1),
    ]
    .concat();
    let table = vec![0.9, 0.1, 0.2, 0.8, 0.5, 0.5];
    g.trees(g.input, vec![0, 3, 8], nodes, table, 2)?;
    Ok(g)
}

/// One tree after a dense layer: a leaf-only tree would be trivial, so a single
/// split over the second feature, 3 classes.
fn tree_after_dense(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[2, 3])?;
    let h = g.dense(g.input, &r.vec(6), None, 2)?;
    let nodes: Vec<u32> = [split(1, 2, 0.0), leaf(0), leaf(1)].concat();
    g.trees(h, vec![0, 3], nodes, vec![0.7, 0.2, 0.1, 0.1, 0.3, 0.6], 3)?;
    Ok(g)
}

/// Gaussian naive Bayes, 3 classes over 3 features, batch 2.
fn naive_bayes(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[2, 3])?;
    let prior = vec![0.3f32.ln(), 0.5f32.ln(), 0.2f32.ln()];
    let theta = r.vec(9);
    let var: Vec<f32> = r.vec(9).iter().map(|v| 0.5 + v.abs()).collect();
    let log_term = var
        .iter()
        .map(|v| (2.0 * std::f32::consts::PI * v).ln())
        .collect();
    g.gaussian_nb(g.input, prior, theta, var, log_term)?;
    Ok(g)
}

/// The weights of a recurrent layer with `i` inputs and `h` hidden units (biases
/// optional), as owned vectors.
struct Rec {
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
}

impl Rec {
    fn new(r: &mut Lcg, cell: Cell, i: usize, h: usize, bias: bool) -> Self {
        let gh = cell.gates() * h;
        Rec {
            w_ih: r.vec(gh * i),
            w_hh: r.vec(gh * h),
            b_ih: bias.then(|| r.vec(gh)),
            b_hh: bias.then(|| r.vec(gh)),
        }
    }

    fn layer(
        &self,
        cell: Cell,
        hidden: usize,
        reverse: bool,
        last_only: bool,
    ) -> RecurrentLayer<'_> {
        RecurrentLayer {
            cell,
            hidden,
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: self.b_ih.as_deref(),
            b_hh: self.b_hh.as_deref(),
            reverse,
            last_only,
        }
    }
}

/// Two RNNs (tanh with biases, then ReLU run backwards to its last state), dense,
/// softmax.
fn rnn(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[2, 4, 3])?;
    let a = Rec::new(r, Cell::RnnTanh, 3, 3, true);
    let h = g.recurrent(g.input, a.layer(Cell::RnnTanh, 3, false, false))?;
    let b = Rec::new(r, Cell::RnnRelu, 3, 2, false);
    let h = g.recurrent(h, b.layer(Cell::RnnRelu, 2, true, true))?;
    let h = g.dense(h, &r.vec(4), None, 2)?;
    g.softmax(h)?;
    Ok(g)
}

/// A bidirectional LSTM (both directions written into one `[n, t, 2H]` tensor),
/// then a GRU to its last state, dense.
fn lstm_gru(r: &mut Lcg) -> Result<Graph> {
    let mut g = Graph::new(&[1, 3, 2])?;
    let y = g.tensor(vec![1, 3, 4], DType::F32);
    let fwd = Rec::new(r, Cell::Lstm, 2, 2, true);
    g.recurrent_into(g.input, fwd.layer(Cell::Lstm, 2, false, false), y, 0)?;
    let bwd = Rec::new(r, Cell::Lstm, 2, 2, false);
    g.recurrent_into(g.input, bwd.layer(Cell::Lstm, 2, true, false), y, 2)?;
    let gru = Rec::new(r, Cell::Gru, 4, 3, true);
    let h = g.recurrent(y, gru.layer(Cell::Gru, 3, false, true))?;
    g.dense(h, &r.vec(6), Some(&r.vec(2)), 2)?;
    Ok(g)
}

/// Calibration data: `k` inputs of `g`.
fn calibration(g: &Graph, r: &mut Lcg, k: usize) -> Vec<f32> {
    r.vec(g.tensors[g.input].numel() * k)
        .iter()
        .map(|v| v * 3.0)
        .collect()
}

/// Every seed as `(name, blob)`.
pub fn seeds() -> Result<Vec<(String, Vec<u8>)>> {
    let mut r = Lcg(0x5eed);
    let mut out = Vec::new();
    type Build = fn(&mut Lcg) -> Result<Graph>;
    let nets: [(&str, Build); 7] = [
        ("mlp", mlp),
        ("activations", activations),
        ("cnn", cnn),
        ("grouped", grouped),
        ("residual", residual),
        ("sequence", sequence),
        ("pointwise", pointwise),
    ];
    for (name, build) in nets {
        let g = build(&mut r)?;
        out.push((format!("seed-{name}-f32"), encode(&g)?.0));
        let cal = calibration(&g, &mut r, 16);
        let q = quantize(&g, &cal, QuantizeConfig::default())?;
        out.push((format!("seed-{name}-int8"), encode(&q)?.0));
        let q = quantize(&g, &cal, QuantizeConfig { int8_output: false })?;
        out.push((format!("seed-{name}-int8-f32out"), encode(&q)?.0));
    }
    out.push(("seed-forest-f32".into(), encode(&forest()?)?.0));
    out.push((
        "seed-tree-after-dense-f32".into(),
        encode(&tree_after_dense(&mut r)?)?.0,
    ));
    out.push((
        "seed-naive-bayes-f32".into(),
        encode(&naive_bayes(&mut r)?)?.0,
    ));
    // Recurrent layers run in f32 only (quantize refuses them).
    out.push(("seed-rnn-f32".into(), encode(&rnn(&mut r)?)?.0));
    out.push(("seed-lstm-gru-f32".into(), encode(&lstm_gru(&mut r)?)?.0));
    Ok(out)
}
