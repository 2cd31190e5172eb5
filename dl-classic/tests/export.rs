//! Exported classic models on dl-deploy's engine predict what `predict` predicts,
//! on every test row of the bundled digits (fitted in f32, stratified split): the
//! blob is encoded, checked by `Model::from_bytes` and run row by row in an arena.
//!
//! Run with `--nocapture` for the blob sizes (`BLOB` lines).

use dl_classic::export::Export;
use dl_classic::forest::RandomForest;
use dl_classic::logistic::LogisticRegression;
use dl_classic::naive_bayes::{BernoulliNb, GaussianNb, MultinomialNb};
use dl_classic::tree::DecisionTree;
use dl_core::{Fit, MatRef, Predict};
use dl_data::split::SplitConfig;
use dl_deploy::{encode, AlignedBlob, Element, Error, Graph, HeapArena, Model};

/// Train and test rows of digits (64 features, labels 0..=9).
struct Digits {
    x_train: Vec<f32>,
    y_train: Vec<usize>,
    x_test: Vec<f32>,
    y_test: Vec<usize>,
}

const D: usize = 64;

impl Digits {
    fn load() -> Self {
        let data = dl_data::datasets::digits::<f32>().unwrap();
        let split = SplitConfig {
            validation: 0.0,
            test: 0.25,
            shuffle_seed: Some(0),
        }
        .split_stratified(data.targets())
        .unwrap();
        let rows = |idx: &[usize]| idx.iter().flat_map(|&i| data.row(i).to_vec()).collect();
        let labels = |idx: &[usize]| idx.iter().map(|&i| data.targets()[i]).collect();
        Digits {
            x_train: rows(&split.train),
            y_train: labels(&split.train),
            x_test: rows(&split.test),
            y_test: labels(&split.test),
        }
    }

    fn train(&self) -> MatRef<'_, f32> {
        MatRef::new(&self.x_train, self.y_train.len(), D).unwrap()
    }

    fn test(&self) -> MatRef<'_, f32> {
        MatRef::new(&self.x_test, self.y_test.len(), D).unwrap()
    }
}

/// Encodes `g` and runs it on each row of `x`, one `O`-typed output row per input
/// row; returns the outputs and the blob's size in bytes.
fn run_blob<O: Element + Default + Copy>(g: &Graph, x: &[f32], outputs: usize) -> (Vec<O>, usize) {
    let (bytes, plan) = encode(g).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let mut arena = HeapArena::new(plan.arena_len);
    let mut out = vec![O::default(); x.len() / D * outputs];
    for (row, o) in x.chunks_exact(D).zip(out.chunks_exact_mut(outputs)) {
        model.run(arena.bytes(), row, o).unwrap();
    }
    (out, bytes.len())
}

/// The labels of the device's class positions.
fn labels(classes: &[usize], positions: &[i32]) -> Vec<usize> {
    positions.iter().map(|&p| classes[p as usize]).collect()
}

/// The label of the first largest score of each row.
fn argmax_labels(classes: &[usize], scores: &[f32]) -> Vec<usize> {
    scores
        .chunks_exact(classes.len())
        .map(|s| {
            let best = (0..s.len()).fold(0, |b, i| if s[i] > s[b] { i } else { b });
            classes[best]
        })
        .collect()
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

#[test]
fn exported_tree_predicts_as_predict_on_every_digits_row() {
    let d = Digits::load();
    let m = DecisionTree::default().fit(d.train(), &d.y_train).unwrap();
    let (pos, size) = run_blob::<i32>(&m.export().unwrap(), &d.x_test, 1);
    let device = labels(&m.classes, &pos);
    assert_eq!(device, m.predict(d.test()).unwrap());
    println!(
        "BLOB tree: {} nodes, {size} bytes, test accuracy {:.4}",
        m.tree.node_count(),
        accuracy(&device, &d.y_test)
    );
}

#[test]
fn exported_f64_tree_splits_f32_inputs_as_predict_does_at_every_threshold() {
    // Random f32 features fitted in f64: the thresholds are midpoints that f32
    // cannot hold, and the inputs sit on both sides of every one of them.
    let (n, d) = (300, 3);
    let mut rng = dl_core::Rng::seed_from_u64(5);
    let x: Vec<f32> = (0..n * d).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    // A rule plus every fourth label at random, so the tree grows deep.
    let y: Vec<usize> = x
        .chunks_exact(d)
        .enumerate()
        .map(|(i, r)| match i % 4 {
            0 => 5 + rng.below(4),
            _ => 5 + ((r[0] + r[1] * r[2] > 0.1) as usize) * 2 + (r[2] > 0.5) as usize,
        })
        .collect();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let m = DecisionTree::default()
        .fit(MatRef::new(&x64, n, d).unwrap(), &y)
        .unwrap();
    assert!(m.tree.node_count() > 50);
    // Every training row with one feature moved to a stored threshold `t32` (goes
    // left) or the next f32 above it (goes right), for every split.
    let g = m.export().unwrap();
    let Some(dl_deploy::Node::Trees { nodes, .. }) = g.nodes.last() else {
        panic!("a tree exports to one trees node");
    };
    let mut probe = x.clone();
    for split in nodes.chunks_exact(2).filter(|w| w[0] & 0xFFFF != 0xFFFF) {
        let (f, t32) = ((split[0] & 0xFFFF) as usize, f32::from_bits(split[1]));
        for row in x.chunks_exact(d) {
            for v in [t32, t32.next_up()] {
                let at = probe.len() + f;
                probe.extend_from_slice(row);
                probe[at] = v;
            }
        }
    }
    let (bytes, plan) = encode(&g).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    let mut arena = HeapArena::new(plan.arena_len);
    let rows = probe.len() / d;
    let probe64: Vec<f64> = probe.iter().map(|&v| v as f64).collect();
    let host = m.predict(MatRef::new(&probe64, rows, d).unwrap()).unwrap();
    for (i, row) in probe.chunks_exact(d).enumerate() {
        let mut pos = [0i32];
        model.run(arena.bytes(), row, &mut pos).unwrap();
        assert_eq!(m.classes[pos[0] as usize], host[i], "row {i}: {row:?}");
    }
}

#[test]
fn exported_forest_predicts_as_predict_and_shares_leaf_rows() {
    let d = Digits::load();
    let m = RandomForest::new(10)
        .seed(1)
        .fit(d.train(), &d.y_train)
        .unwrap();
    let g = m.export().unwrap();
    let (pos, size) = run_blob::<i32>(&g, &d.x_test, 1);
    let device = labels(&m.classes, &pos);
    assert_eq!(device, m.predict(d.test()).unwrap());
    let Some(dl_deploy::Node::Trees { table, nodes, .. }) = g.nodes.last() else {
        panic!("a forest exports to one trees node");
    };
    let k = m.classes.len();
    let rows = table.len() / k;
    let mut distinct: Vec<Vec<u64>> = table
        .chunks_exact(k)
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), rows, "every table row is stored once");
    let leaves: usize = m.trees.iter().map(|t| t.n_leaves()).sum();
    // Fully grown trees have pure leaves, so most of their rows are one-hot.
    assert!(rows < leaves / 2, "{rows} table rows for {leaves} leaves");
    assert_eq!(
        nodes.len() / 2,
        m.trees.iter().map(|t| t.node_count()).sum::<usize>()
    );
    println!(
        "BLOB forest of 10: {} nodes, {leaves} leaves, {rows} distinct leaf rows, {size} bytes, test accuracy {:.4}",
        nodes.len() / 2,
        accuracy(&device, &d.y_test)
    );
}

#[test]
fn exported_gaussian_nb_predicts_as_predict_on_every_digits_row() {
    let d = Digits::load();
    let m = GaussianNb::default().fit(d.train(), &d.y_train).unwrap();
    let (pos, size) = run_blob::<i32>(&m.export().unwrap(), &d.x_test, 1);
    let device = labels(&m.classes, &pos);
    assert_eq!(device, m.predict(d.test()).unwrap());
    println!(
        "BLOB gaussian_nb: {size} bytes, test accuracy {:.4}",
        accuracy(&device, &d.y_test)
    );
}

#[test]
fn exported_logistic_regression_scores_match_bit_for_bit() {
    let d = Digits::load();
    // A loose tolerance keeps the fit short; the export does not care.
    let m = LogisticRegression::default()
        .tol(1e-2)
        .fit(d.train(), &d.y_train)
        .unwrap();
    let k = m.classes().len();
    let (scores, size) = run_blob::<f32>(&m.export().unwrap(), &d.x_test, k);
    let host = m.linear.decision_function(d.test()).unwrap();
    let bits = |v: &[f32]| v.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&scores), bits(&host));
    let device = argmax_labels(m.classes(), &scores);
    assert_eq!(device, m.predict(d.test()).unwrap());
    println!(
        "BLOB logistic: {size} bytes, test accuracy {:.4}",
        accuracy(&device, &d.y_test)
    );
}

#[test]
fn exported_least_squares_classifier_scores_match_bit_for_bit() {
    use dl_classic::linear::LeastSquaresClassifier;
    let d = Digits::load();
    let m = LeastSquaresClassifier::default()
        .fit(d.train(), &d.y_train)
        .unwrap();
    let (scores, _) = run_blob::<f32>(&m.export().unwrap(), &d.x_test, m.classes.len());
    let host = m.decision_function(d.test()).unwrap();
    assert!(scores
        .iter()
        .zip(&host)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert_eq!(
        argmax_labels(&m.classes, &scores),
        m.predict(d.test()).unwrap()
    );
}

#[test]
fn exported_binary_logistic_regression_keeps_its_zero_score() {
    // Two classes (digits 3 and 8) score (0, w.x + b).
    let d = Digits::load();
    let pick = |x: &[f32], y: &[usize]| {
        let keep: Vec<usize> = (0..y.len()).filter(|&i| y[i] == 3 || y[i] == 8).collect();
        let xs: Vec<f32> = keep
            .iter()
            .flat_map(|&i| x[i * D..(i + 1) * D].to_vec())
            .collect();
        (xs, keep.iter().map(|&i| y[i]).collect::<Vec<_>>())
    };
    let (xtr, ytr) = pick(&d.x_train, &d.y_train);
    let (xte, _) = pick(&d.x_test, &d.y_test);
    let m = LogisticRegression::default()
        .tol(1e-2)
        .fit(MatRef::new(&xtr, ytr.len(), D).unwrap(), &ytr)
        .unwrap();
    let (scores, _) = run_blob::<f32>(&m.export().unwrap(), &xte, 2);
    let test = MatRef::new(&xte, xte.len() / D, D).unwrap();
    assert!(scores.chunks_exact(2).all(|s| s[0] == 0.0));
    assert_eq!(
        argmax_labels(m.classes(), &scores),
        m.predict(test).unwrap()
    );
}

#[test]
fn naive_bayes_without_a_device_op_is_refused_by_name() {
    let d = Digits::load();
    let multinomial = MultinomialNb::default().fit(d.train(), &d.y_train).unwrap();
    let bernoulli = BernoulliNb::default().fit(d.train(), &d.y_train).unwrap();
    for (m, name) in [(multinomial, "MultinomialNb"), (bernoulli, "BernoulliNb")] {
        match m.export() {
            Err(Error::UnsupportedLayer { layer, why, .. }) => {
                assert_eq!(layer, name);
                assert!(why.contains("Gaussian"), "{why}");
            }
            other => panic!("{name}: expected UnsupportedLayer, got {other:?}"),
        }
    }
}
