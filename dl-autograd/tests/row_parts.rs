//! The fused recurrent and self-attention ops split a batch over threads (for the
//! recurrent op each part runs all steps for its rows). Batch entries never
//! interact, so every entry's output and input gradients must be bit-for-bit those
//! of running that entry alone, and the weight gradients the sum over entries;
//! checked on batches large enough to be split.
//!
//! The split needs more than one thread, and dl-core's pool reads `DL_NUM_THREADS`
//! once per process: on a machine with one CPU each test runs its own binary again
//! with `DL_NUM_THREADS=2` (`dl_core::gemm::on_threads`), so the checks never pass by not
//! splitting.

use dl_autograd::{AttentionSpec, Graph, Param, RecurrentCell, RecurrentInputs, RecurrentSpec};
use dl_core::{Rng, Tensor};

struct Run {
    out: Vec<f32>,
    dxw: Vec<f32>,
    dh0: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
}

fn random(len: usize, scale: f32, rng: &mut Rng) -> Vec<f32> {
    (0..len).map(|_| rng.uniform(-scale, scale)).collect()
}

/// Runs the layer on rows `rows` of the batch and backpropagates `sum(out * weight)`.
#[allow(clippy::too_many_arguments)]
fn run(
    spec: RecurrentSpec,
    rows: core::ops::Range<usize>,
    t: usize,
    h: usize,
    xw: &[f32],
    h0: &[f32],
    w: &Tensor<f32>,
    b: &Tensor<f32>,
    lengths: &[usize],
    weight: &[f32],
) -> Run {
    let gh = spec.cell.gates() * h;
    let bs = rows.len();
    let states = spec.cell.states();
    let xw = Param::new(
        Tensor::from_vec(
            xw[rows.start * t * gh..rows.end * t * gh].to_vec(),
            &[bs, t, gh],
        )
        .unwrap(),
    );
    let h0 =
        Param::new(Tensor::from_vec(h0[rows.start * h..rows.end * h].to_vec(), &[bs, h]).unwrap());
    let c0 = Param::new(Tensor::from_vec(vec![0.25; bs * h], &[bs, h]).unwrap());
    let per = (t + states) * h;
    let weight = Tensor::from_vec(
        weight[rows.start * per..rows.end * per].to_vec(),
        &[bs, t + states, h],
    )
    .unwrap();
    let (w, b) = (&Param::new(w.clone()), &Param::new(b.clone()));
    let mut g = Graph::new();
    let inputs = RecurrentInputs {
        xw: g.param(&xw),
        w_hh: g.param(w),
        b_hh: Some(g.param(b)),
        h0: g.param(&h0),
        c0: (spec.cell == RecurrentCell::Lstm).then(|| g.param(&c0)),
    };
    let y = g.recurrent(spec, inputs, Some(&lengths[rows])).unwrap();
    let wv = g.input(&weight);
    let prod = g.mul(y, wv).unwrap();
    let loss = g.sum_all(prod).unwrap();
    let out = g.value(y).unwrap().data().to_vec();
    g.backward(loss).unwrap();
    drop(g);
    let run = Run {
        out,
        dxw: xw.grad().data().to_vec(),
        dh0: h0.grad().data().to_vec(),
        dw: w.grad().data().to_vec(),
        db: b.grad().data().to_vec(),
    };
    run
}

#[test]
fn split_rows_match_rows_run_alone() {
    if !dl_core::gemm::on_threads("split_rows_match_rows_run_alone", 2) {
        return;
    }
    let (bs, t, h) = (16, 9, 96);
    for cell in [
        RecurrentCell::Lstm,
        RecurrentCell::Gru,
        RecurrentCell::RnnTanh,
    ] {
        for reverse in [false, true] {
            let spec = RecurrentSpec {
                cell,
                reverse,
                truncate: None,
            };
            let gh = cell.gates() * h;
            let mut rng = Rng::seed_from_u64(3);
            let xw = random(bs * t * gh, 1.0, &mut rng);
            let h0 = random(bs * h, 0.5, &mut rng);
            let w = Tensor::from_vec(random(gh * h, 0.1, &mut rng), &[gh, h]).unwrap();
            let b = Tensor::from_vec(random(gh, 0.1, &mut rng), &[gh]).unwrap();
            let lengths: Vec<usize> = (0..bs)
                .map(|i| if i % 3 == 1 { 1 + i % t } else { t })
                .collect();
            let weight = random(bs * (t + cell.states()) * h, 1.0, &mut rng);
            let all = run(spec, 0..bs, t, h, &xw, &h0, &w, &b, &lengths, &weight);
            let (mut dw, mut db) = (vec![0.0f64; gh * h], vec![0.0f64; gh]);
            for r in 0..bs {
                let one = run(spec, r..r + 1, t, h, &xw, &h0, &w, &b, &lengths, &weight);
                let per = (t + cell.states()) * h;
                let what = format!("{cell:?} reverse={reverse} row {r}");
                assert!(
                    one.out == all.out[r * per..(r + 1) * per],
                    "{what}: outputs differ"
                );
                assert!(
                    one.dxw == all.dxw[r * t * gh..(r + 1) * t * gh],
                    "{what}: dxw differs"
                );
                assert!(
                    one.dh0 == all.dh0[r * h..(r + 1) * h],
                    "{what}: dh0 differs"
                );
                for (s, &v) in dw.iter_mut().zip(&one.dw) {
                    *s += f64::from(v);
                }
                for (s, &v) in db.iter_mut().zip(&one.db) {
                    *s += f64::from(v);
                }
            }
            for (name, sum, got) in [("dW_hh", &dw, &all.dw), ("db_hh", &db, &all.db)] {
                let scale = sum.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (i, (&s, &g)) in sum.iter().zip(got.iter()).enumerate() {
                    assert!(
                        (s - f64::from(g)).abs() <= 1e-4 * scale,
                        "{cell:?} reverse={reverse}: {name}[{i}] = {g}, sum over rows {s}"
                    );
                }
            }
        }
    }
}

/// Self-attention over entries `rows` of the batch: output and `d sum(out * weight) / d qkv`.
fn attend(
    rows: core::ops::Range<usize>,
    (t, e, heads): (usize, usize, usize),
    qkv: &[f32],
    lengths: &[usize],
    weight: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let n = rows.len();
    let x = Param::new(
        Tensor::from_vec(
            qkv[rows.start * t * 3 * e..rows.end * t * 3 * e].to_vec(),
            &[n * t, 3 * e],
        )
        .unwrap(),
    );
    let w = Tensor::from_vec(
        weight[rows.start * t * e..rows.end * t * e].to_vec(),
        &[n * t, e],
    )
    .unwrap();
    let mut g = Graph::new();
    let xv = g.param(&x);
    let spec = AttentionSpec {
        batch: n,
        heads,
        causal: true,
    };
    let y = g.self_attention(xv, spec, Some(&lengths[rows])).unwrap();
    let wv = g.input(&w);
    let prod = g.mul(y, wv).unwrap();
    let loss = g.sum_all(prod).unwrap();
    let out = g.value(y).unwrap().data().to_vec();
    g.backward(loss).unwrap();
    drop(g);
    let grad = x.grad().data().to_vec();
    (out, grad)
}

#[test]
fn attention_split_batch_matches_entries_run_alone() {
    if !dl_core::gemm::on_threads("attention_split_batch_matches_entries_run_alone", 2) {
        return;
    }
    let (bs, t, e, heads) = (12, 32, 64, 4);
    let mut rng = Rng::seed_from_u64(9);
    let qkv = random(bs * t * 3 * e, 1.0, &mut rng);
    let weight = random(bs * t * e, 1.0, &mut rng);
    let lengths: Vec<usize> = (0..bs).map(|i| t - (i * 5) % t).collect();
    let (out, grad) = attend(0..bs, (t, e, heads), &qkv, &lengths, &weight);
    for b in 0..bs {
        let (o1, g1) = attend(b..b + 1, (t, e, heads), &qkv, &lengths, &weight);
        assert!(
            o1 == out[b * t * e..(b + 1) * t * e],
            "entry {b}: outputs differ"
        );
        assert!(
            g1 == grad[b * t * 3 * e..(b + 1) * t * 3 * e],
            "entry {b}: gradients differ"
        );
    }
}
