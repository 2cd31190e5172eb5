//! Shared test helpers: a tiny CSV reader for the digits and iris data sets, the
//! fixed stratified split written by `tests/reference/sklearn_reference.py`, and
//! the scikit-learn reference figures.
#![allow(dead_code)]

use std::path::PathBuf;

/// A data set: `rows x cols` features (row-major, f64) and integer labels.
pub struct Data {
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    pub rows: usize,
    pub cols: usize,
}

impl Data {
    /// The rows listed in `idx`.
    pub fn take(&self, idx: &[usize]) -> Data {
        let mut x = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            x.extend_from_slice(&self.x[i * self.cols..(i + 1) * self.cols]);
        }
        Data {
            x,
            y: idx.iter().map(|&i| self.y[i]).collect(),
            rows: idx.len(),
            cols: self.cols,
        }
    }

    /// The features as f32.
    pub fn x_f32(&self) -> Vec<f32> {
        self.x.iter().map(|&v| v as f32).collect()
    }
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses a CSV with one header line, numeric feature columns, and an integer label
/// in the last column.
pub fn parse_csv(text: &str) -> Data {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut cols = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.trim().split(',').collect();
        cols = fields.len() - 1;
        for f in &fields[..cols] {
            x.push(f.trim().parse::<f64>().expect("numeric feature"));
        }
        let label: f64 = fields[cols].trim().parse().expect("numeric label");
        y.push(label as usize);
    }
    Data {
        rows: y.len(),
        x,
        y,
        cols,
    }
}

/// Loads `name` ("digits" or "iris") from dl-data's copy if present, else from the
/// shared data folder beside the repository.
pub fn load(name: &str) -> Data {
    let root = crate_dir().join("..");
    let candidates = [
        root.join("dl-data")
            .join("data")
            .join(format!("{name}.csv")),
        root.join("..")
            .join("shared")
            .join("data")
            .join(name)
            .join(format!("{name}.csv")),
    ];
    for p in &candidates {
        if let Ok(text) = std::fs::read_to_string(p) {
            return parse_csv(&text);
        }
    }
    panic!("data set {name} not found in {candidates:?}");
}

/// The fixed stratified split of `name`: (train indices, test indices).
pub fn split(name: &str) -> (Vec<usize>, Vec<usize>) {
    let p = crate_dir()
        .join("tests/reference")
        .join(format!("split_{name}.txt"));
    let text = std::fs::read_to_string(&p).expect("split file");
    let mut lines = text.lines().map(|l| {
        l.split(',')
            .map(|v| v.trim().parse::<usize>().expect("index"))
            .collect::<Vec<_>>()
    });
    (lines.next().unwrap(), lines.next().unwrap())
}

/// (train, test) of `name` under the fixed split.
pub fn train_test(name: &str) -> (Data, Data) {
    let d = load(name);
    let (tr, te) = split(name);
    (d.take(&tr), d.take(&te))
}

/// The scikit-learn figure for `dataset,method,metric`.
pub fn reference(dataset: &str, method: &str, metric: &str) -> f64 {
    let p = crate_dir().join("tests/reference/reference.csv");
    let text = std::fs::read_to_string(&p).expect("reference.csv");
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[0] == dataset && f[1] == method && f[2] == metric {
            return f[3].parse().expect("value");
        }
    }
    panic!("no reference for {dataset},{method},{metric}");
}

/// All `evr{i}` values of the PCA reference for `dataset`, in order.
pub fn reference_series(dataset: &str, method: &str, prefix: &str) -> Vec<f64> {
    let p = crate_dir().join("tests/reference/reference.csv");
    let text = std::fs::read_to_string(&p).expect("reference.csv");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[0] == dataset && f[1] == method && f[2].starts_with(prefix))
        .map(|f| f[3].parse().unwrap())
        .collect()
}

/// Fraction of equal entries.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    pred.iter().zip(truth).filter(|(a, b)| a == b).count() as f64 / truth.len() as f64
}

/// Adjusted Rand index between two labelings (Hubert & Arabie).
pub fn ari(a: &[usize], b: &[usize]) -> f64 {
    let na = a.iter().max().map_or(0, |m| m + 1);
    let nb = b.iter().max().map_or(0, |m| m + 1);
    let mut table = vec![0f64; na * nb];
    for (&i, &j) in a.iter().zip(b) {
        table[i * nb + j] += 1.0;
    }
    let c2 = |n: f64| n * (n - 1.0) / 2.0;
    let sum_ij: f64 = table.iter().map(|&v| c2(v)).sum();
    let sum_a: f64 = (0..na)
        .map(|i| c2((0..nb).map(|j| table[i * nb + j]).sum()))
        .sum();
    let sum_b: f64 = (0..nb)
        .map(|j| c2((0..na).map(|i| table[i * nb + j]).sum()))
        .sum();
    let n = c2(a.len() as f64);
    let expected = sum_a * sum_b / n;
    let max = 0.5 * (sum_a + sum_b);
    (sum_ij - expected) / (max - expected)
}

/// Records a figure for the report and checks it against scikit-learn's: ours may
/// be better, or at most `slack` (accuracy fraction) worse.
pub fn check_accuracy(dataset: &str, method: &str, ours: f64, slack: f64) {
    let sk = reference(dataset, method, "accuracy");
    println!(
        "ACC {dataset:7} {method:24} ours {:.4} sklearn {:.4}",
        ours, sk
    );
    assert!(
        ours >= sk - slack,
        "{dataset}/{method}: accuracy {ours:.4} is more than {slack} below scikit-learn's {sk:.4}"
    );
}
