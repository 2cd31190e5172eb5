//! The recurrent op (RNN with tanh or ReLU, LSTM, GRU over a sequence, in f32): the
//! engine against a plain f64 reference of PyTorch's equations, stacked layers, a
//! dense head on the last step, bidirectional halves, and what a damaged record
//! or a wrong graph gives.

use dl_core::Rng;
use dl_deploy::format::{crc32, HEADER_LEN, TENSOR_LEN};
use dl_deploy::op::{op_set, Cell};
use dl_deploy::{
    encode, quantize, AlignedBlob, Error, Graph, HeapArena, Model, OpKind, QuantizeConfig,
    RecurrentLayer,
};

const CELLS: [Cell; 4] = [Cell::RnnTanh, Cell::RnnRelu, Cell::Lstm, Cell::Gru];

/// One layer's weights in PyTorch's layout.
struct Layer {
    cell: Cell,
    input: usize,
    hidden: usize,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    b_ih: Option<Vec<f32>>,
    b_hh: Option<Vec<f32>>,
}

impl Layer {
    /// PyTorch's init, `U(-1/sqrt(H), 1/sqrt(H))`, widened so the gates saturate
    /// sometimes.
    fn random(cell: Cell, input: usize, hidden: usize, bias: bool, rng: &mut Rng) -> Self {
        let gh = cell.gates() * hidden;
        let bound = 2.0 / (hidden as f64).sqrt();
        let mut u =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.uniform(-bound, bound) as f32).collect() };
        let (w_ih, w_hh) = (u(gh * input), u(gh * hidden));
        let (b_ih, b_hh) = if bias {
            (Some(u(gh)), Some(u(gh)))
        } else {
            (None, None)
        };
        Layer {
            cell,
            input,
            hidden,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        }
    }

    fn spec(&self, reverse: bool, last_only: bool) -> RecurrentLayer<'_> {
        RecurrentLayer {
            cell: self.cell,
            hidden: self.hidden,
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: self.b_ih.as_deref(),
            b_hh: self.b_hh.as_deref(),
            reverse,
            last_only,
        }
    }

    /// PyTorch's equations in f64 over `x: [n, t, input]`: `[n, t, H]`, or `[n, H]`
    /// for the last step run.
    fn reference(&self, x: &[f32], n: usize, t: usize, reverse: bool, last_only: bool) -> Vec<f32> {
        let (h, gh, i) = (self.hidden, self.cell.gates() * self.hidden, self.input);
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let affine = |w: &[f32], b: &Option<Vec<f32>>, v: &[f64], k: usize| -> Vec<f64> {
            (0..gh)
                .map(|j| {
                    b.as_ref().map_or(0.0, |b| b[j] as f64)
                        + (0..k).map(|c| w[j * k + c] as f64 * v[c]).sum::<f64>()
                })
                .collect()
        };
        let mut y = vec![0.0f32; if last_only { n * h } else { n * t * h }];
        for b in 0..n {
            let (mut hs, mut cs) = (vec![0.0f64; h], vec![0.0f64; h]);
            for k in 0..t {
                let step = if reverse { t - 1 - k } else { k };
                let xt: Vec<f64> = x[(b * t + step) * i..][..i]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let (px, ph) = (
                    affine(&self.w_ih, &self.b_ih, &xt, i),
                    affine(&self.w_hh, &self.b_hh, &hs, h),
                );
                for j in 0..h {
                    let p = |g: usize| px[g * h + j] + ph[g * h + j];
                    match self.cell {
                        Cell::RnnTanh => hs[j] = p(0).tanh(),
                        Cell::RnnRelu => hs[j] = p(0).max(0.0),
                        Cell::Lstm => {
                            cs[j] = sig(p(1)) * cs[j] + sig(p(0)) * p(2).tanh();
                            hs[j] = sig(p(3)) * cs[j].tanh();
                        }
                        Cell::Gru => {
                            let (r, z) = (sig(p(0)), sig(p(1)));
                            let nn = (px[2 * h + j] + r * ph[2 * h + j]).tanh();
                            cs[j] = (1.0 - z) * nn + z * hs[j];
                        }
                    }
                }
                if self.cell == Cell::Gru {
                    hs.copy_from_slice(&cs);
                }
                if !last_only {
                    for j in 0..h {
                        y[(b * t + step) * h + j] = hs[j] as f32;
                    }
                }
            }
            if last_only {
                for j in 0..h {
                    y[b * h + j] = hs[j] as f32;
                }
            }
        }
        y
    }
}

fn inputs(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.normal(0.0, 1.5) as f32).collect()
}

fn run(g: &Graph, x: &[f32]) -> Vec<f32> {
    let (bytes, plan) = encode(g).unwrap();
    assert!(
        plan.arena_len <= plan.peak_live,
        "arena {} > peak live {}",
        plan.arena_len,
        plan.peak_live
    );
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let mut y = vec![0.0f32; model.output().numel()];
    model
        .run(HeapArena::new(model.arena_len()).bytes(), x, &mut y)
        .unwrap();
    y
}

fn close(want: &[f32], got: &[f32], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}");
    for (k, (a, b)) in want.iter().zip(got).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
            "{what}, output {k}: reference {a}, engine {b}"
        );
    }
}

#[test]
fn one_unit_relu_rnn_by_hand() {
    // h' = relu(2 x + 0.5 h - 1) over x = [1, 3, -2]: 1, then 5.5, then 0.
    let mut g = Graph::new(&[1, 3, 1]).unwrap();
    let layer = RecurrentLayer {
        cell: Cell::RnnRelu,
        hidden: 1,
        w_ih: &[2.0],
        w_hh: &[0.5],
        b_ih: Some(&[-1.0]),
        b_hh: None,
        reverse: false,
        last_only: false,
    };
    g.recurrent(g.input, layer).unwrap();
    assert_eq!(run(&g, &[1.0, 3.0, -2.0]), [1.0, 5.5, 0.0]);
    assert_eq!(g.num_params(), 3);
}

#[test]
fn every_cell_matches_the_reference_forwards_backwards_and_last_step() {
    let mut rng = Rng::seed_from_u64(11);
    let (n, t, i, h) = (2, 5, 3, 4);
    for cell in CELLS {
        for bias in [true, false] {
            let layer = Layer::random(cell, i, h, bias, &mut rng);
            for (reverse, last_only) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let x = inputs(n * t * i, &mut rng);
                let mut g = Graph::new(&[n, t, i]).unwrap();
                g.recurrent(g.input, layer.spec(reverse, last_only))
                    .unwrap();
                let what = format!("{cell:?} bias {bias} reverse {reverse} last {last_only}");
                close(
                    &layer.reference(&x, n, t, reverse, last_only),
                    &run(&g, &x),
                    &what,
                );
            }
        }
    }
}

#[test]
fn stacked_layers_with_a_dense_head_on_the_last_step() {
    let mut rng = Rng::seed_from_u64(12);
    let (n, t, i, h) = (1, 6, 3, 5);
    for cell in CELLS {
        let l0 = Layer::random(cell, i, h, true, &mut rng);
        let l1 = Layer::random(cell, h, h, true, &mut rng);
        let head: Vec<f32> = inputs(2 * h, &mut rng);
        let mut g = Graph::new(&[n, t, i]).unwrap();
        let s = g.recurrent(g.input, l0.spec(false, false)).unwrap();
        let last = g.recurrent(s, l1.spec(false, true)).unwrap();
        g.dense(last, &head, Some(&[0.5, -0.5]), 2).unwrap();
        assert_eq!(g.nodes.len(), 3);
        let x = inputs(n * t * i, &mut rng);
        let top = l1.reference(&l0.reference(&x, n, t, false, false), n, t, false, true);
        let want: Vec<f32> = (0..2)
            .map(|o| [0.5, -0.5][o] + (0..h).map(|j| head[o * h + j] * top[j]).sum::<f32>())
            .collect();
        close(&want, &run(&g, &x), &format!("{cell:?}"));
    }
}

#[test]
fn bidirectional_halves_fill_one_output() {
    let mut rng = Rng::seed_from_u64(13);
    let (n, t, i, h) = (2, 4, 3, 3);
    for cell in CELLS {
        let fwd = Layer::random(cell, i, h, true, &mut rng);
        let bwd = Layer::random(cell, i, h, true, &mut rng);
        let mut g = Graph::new(&[n, t, i]).unwrap();
        let y = g.tensor(vec![n, t, 2 * h], dl_deploy::DType::F32);
        g.recurrent_into(g.input, fwd.spec(false, false), y, 0)
            .unwrap();
        g.recurrent_into(g.input, bwd.spec(true, false), y, h)
            .unwrap();
        assert_eq!(g.output, y);
        let x = inputs(n * t * i, &mut rng);
        let (f, b) = (
            fwd.reference(&x, n, t, false, false),
            bwd.reference(&x, n, t, true, false),
        );
        let want: Vec<f32> = f
            .chunks(h)
            .zip(b.chunks(h))
            .flat_map(|(a, b)| a.iter().chain(b).copied())
            .collect();
        close(&want, &run(&g, &x), &format!("{cell:?}"));
    }
}

#[test]
fn wrong_graphs_are_refused_when_built() {
    let mut rng = Rng::seed_from_u64(14);
    let lstm = Layer::random(Cell::Lstm, 3, 4, true, &mut rng);
    let mut g = Graph::new(&[1, 5]).unwrap();
    let e = g.recurrent(g.input, lstm.spec(false, false)).unwrap_err();
    assert!(
        e.to_string().contains("Recurrent: needs a sequence input"),
        "{e}"
    );
    let mut g = Graph::new(&[1, 5, 2]).unwrap();
    let e = g.recurrent(g.input, lstm.spec(false, false)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Graph {
                op: "Recurrent",
                ..
            }
        ),
        "{e}"
    );
    let mut g = Graph::new(&[1, 5, 3]).unwrap();
    let y = g.tensor(vec![1, 5, 6], dl_deploy::DType::F32);
    let e = g
        .recurrent_into(g.input, lstm.spec(false, false), y, 3)
        .unwrap_err();
    assert!(e.to_string().contains("columns col..col + hidden"), "{e}");
    let e = g
        .recurrent_into(g.input, lstm.spec(false, true), y, 0)
        .unwrap_err();
    assert!(
        e.to_string().contains("[n, width] for the last step"),
        "{e}"
    );
    assert!(
        g.nodes.is_empty() && g.tensors.len() == 2,
        "nothing is added on error"
    );
    let mut zero = lstm.spec(false, false);
    zero.hidden = 0;
    assert!(g.recurrent(g.input, zero).is_err());
}

#[test]
fn quantize_refuses_recurrent_layers() {
    let mut rng = Rng::seed_from_u64(15);
    let gru = Layer::random(Cell::Gru, 2, 3, true, &mut rng);
    let mut g = Graph::new(&[1, 4, 2]).unwrap();
    g.recurrent(g.input, gru.spec(false, true)).unwrap();
    let e = quantize(&g, &[0.5; 8], QuantizeConfig::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("recurrent layers (RNN, LSTM, GRU) run in f32 only"),
        "{e}"
    );
}

/// An LSTM over `[1, 3, 2]` to `[1, 3, 4]`: one op record after two tensors.
fn lstm_blob() -> Vec<u8> {
    let mut rng = Rng::seed_from_u64(16);
    let lstm = Layer::random(Cell::Lstm, 2, 4, true, &mut rng);
    let mut g = Graph::new(&[1, 3, 2]).unwrap();
    g.recurrent(g.input, lstm.spec(false, false)).unwrap();
    encode(&g).unwrap().0
}

/// Where the first op record starts.
fn first_record(bytes: &[u8]) -> usize {
    HEADER_LEN + u16::from_le_bytes([bytes[16], bytes[17]]) as usize * TENSOR_LEN
}

fn with_crc(mut m: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&m[12..]);
    m[8..12].copy_from_slice(&crc.to_le_bytes());
    m
}

fn load(bytes: &[u8]) -> Result<usize, Error> {
    let blob = AlignedBlob::new(bytes);
    <Model>::from_bytes(blob.bytes()).map(|m| m.num_ops())
}

#[test]
fn the_op_set_links_the_recurrent_kernel_alone() {
    let bytes = lstm_blob();
    let blob = AlignedBlob::new(&bytes);
    const RECURRENT: u32 = op_set(&[OpKind::RecurrentF32]);
    let model = Model::<'_, RECURRENT>::from_bytes(blob.bytes()).unwrap();
    assert_eq!(model.op_kinds().collect::<Vec<_>>(), [OpKind::RecurrentF32]);
    const DENSE: u32 = op_set(&[OpKind::DenseF32]);
    let e = Model::<'_, DENSE>::from_bytes(blob.bytes()).unwrap_err();
    assert_eq!(
        e,
        Error::OpNotInBuild {
            index: 0,
            op: "Recurrent(f32)"
        }
    );
}

#[test]
fn every_field_of_a_damaged_record_is_a_named_error() {
    let bytes = lstm_blob();
    assert_eq!(load(&bytes), Ok(1));
    let at = first_record(&bytes);
    assert_eq!(bytes[at], OpKind::RecurrentF32 as u8);
    assert_eq!(
        u16::from_le_bytes([bytes[at + 2], bytes[at + 3]]),
        9,
        "a header word and 8 body words"
    );
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let arena_len = u32_at(12);
    // A scratch (10 H floats) that fits in the arena but overlaps x or y.
    let tensor = |t: usize| u32_at(HEADER_LEN + t * TENSOR_LEN + 12);
    let (x_at, y_at, scratch_at, scratch_len) = (tensor(0), tensor(1), u32_at(at + 32), 4 * 10 * 4);
    let clash = (0..=arena_len - scratch_len)
        .step_by(4)
        .find(|&o| {
            o != scratch_at
                && (o < x_at + 24 && x_at < o + scratch_len
                    || o < y_at + 48 && y_at < o + scratch_len)
        })
        .unwrap();
    // (byte offset in the record, new little-endian bytes, what the error names)
    let cases: &[(usize, Vec<u8>, &str)] = &[
        (8, vec![4], "recurrent cell code"),
        (9, vec![4], "flags of known bits"),
        (9, vec![2], "[batch, width] for the last step"),
        (10, vec![0, 0], "hidden size of at least 1"),
        (10, vec![5, 0], "hidden size of at least 1"),
        (12, vec![1, 0], "columns fit"),
        (
            16,
            0xFFFF_FF00u32.to_le_bytes().to_vec(),
            "constant data inside the blob",
        ),
        (
            16,
            4u32.to_le_bytes().to_vec(),
            "constant data inside the blob",
        ),
        (
            20,
            0xFFFF_FFFEu32.to_le_bytes().to_vec(),
            "constant data inside the blob",
        ),
        (
            24,
            (bytes.len() as u32 - 4).to_le_bytes().to_vec(),
            "constant data inside the blob",
        ),
        (
            32,
            arena_len.to_le_bytes().to_vec(),
            "scratch inside the arena",
        ),
        (
            32,
            0xFFFF_FFFCu32.to_le_bytes().to_vec(),
            "scratch inside the arena",
        ),
        (32, 2u32.to_le_bytes().to_vec(), "4-byte aligned"),
        (32, clash.to_le_bytes().to_vec(), "does not overlap"),
        (4, vec![1, 0], "does not overlap"),
    ];
    for (off, new, what) in cases {
        let mut m = bytes.clone();
        m[at + off..at + off + new.len()].copy_from_slice(new);
        let e = load(&with_crc(m)).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }) && e.to_string().contains(what),
            "byte {off} = {new:?}: {e}"
        );
    }
    // An absent bias is a valid record.
    let mut m = bytes.clone();
    m[at + 24..at + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(load(&with_crc(m)), Ok(1));
}

#[test]
fn every_truncation_and_bit_flip_is_a_named_error() {
    let bytes = lstm_blob();
    for len in 0..bytes.len() {
        let e = load(&bytes[..len]).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }),
            "truncated to {len}: {e}"
        );
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.clone();
            m[i] ^= 1 << bit;
            let e = load(&m).unwrap_err();
            assert!(
                matches!(e, Error::Corrupt { .. }),
                "byte {i} bit {bit}: {e}"
            );
        }
    }
}

#[test]
fn damage_behind_a_valid_crc_never_panics() {
    // A bidirectional GRU (two records writing one output) with a last-step RNN
    // after it: every byte after the CRC set to a few values, the CRC rewritten, so
    // only the structural checks stand between the damage and the kernel.
    let mut rng = Rng::seed_from_u64(17);
    let (fwd, bwd) = (
        Layer::random(Cell::Gru, 2, 3, true, &mut rng),
        Layer::random(Cell::Gru, 2, 3, false, &mut rng),
    );
    let top = Layer::random(Cell::RnnTanh, 6, 2, true, &mut rng);
    let mut g = Graph::new(&[1, 3, 2]).unwrap();
    let y = g.tensor(vec![1, 3, 6], dl_deploy::DType::F32);
    g.recurrent_into(g.input, fwd.spec(false, false), y, 0)
        .unwrap();
    g.recurrent_into(g.input, bwd.spec(true, false), y, 3)
        .unwrap();
    g.recurrent(y, top.spec(false, true)).unwrap();
    let bytes = encode(&g).unwrap().0;
    assert_eq!(load(&bytes), Ok(3));
    for i in 12..bytes.len() {
        for v in [0u8, 1, 2, 3, 4, 0x7f, 0x80, 0xff] {
            let mut m = bytes.clone();
            m[i] = v;
            let m = with_crc(m);
            let blob = AlignedBlob::new(&m);
            if let Ok(model) = <Model>::from_bytes(blob.bytes()) {
                let mut arena = HeapArena::new(model.arena_len());
                let x = vec![0.5f32; model.input().numel()];
                let mut out = vec![0.0f32; model.output().numel()];
                let _ = model.run(arena.bytes(), &x, &mut out);
            }
        }
    }
}
