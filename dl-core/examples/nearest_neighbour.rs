//! Nearest-neighbour classification of the 8x8 digits with dl-core's pairwise distance
//! kernels: the course's first classifier, on real data.
//!
//! ```text
//! cargo run --release -p dl-core --example nearest_neighbour [path/to/digits.csv]
//! ```
//!
//! The CSV has 64 pixel columns (0..16) and a `label` column, as bundled in
//! `dl-data/data/digits.csv`. A seeded 70/30 split; 1-NN with L1 and L2 distances.

use dl_core::distance::{pairwise, Metric};
use dl_core::Rng;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../dl-data/data/digits.csv").to_string()
    });
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let (features, labels, dim) = parse_csv(&text).map_err(|e| format!("{path}: {e}"))?;
    let n = labels.len();

    let mut order: Vec<usize> = (0..n).collect();
    Rng::seed_from_u64(0).shuffle(&mut order);
    let n_train = n * 7 / 10;
    let gather = |idx: &[usize]| -> (Vec<f32>, Vec<usize>) {
        let mut x = Vec::with_capacity(idx.len() * dim);
        let mut y = Vec::with_capacity(idx.len());
        for &i in idx {
            x.extend_from_slice(&features[i * dim..(i + 1) * dim]);
            y.push(labels[i]);
        }
        (x, y)
    };
    let (x_train, y_train) = gather(&order[..n_train]);
    let (x_test, y_test) = gather(&order[n_train..]);
    let n_test = y_test.len();
    println!("digits: {n} images of {dim} pixels; {n_train} train, {n_test} test (seed 0)");

    let mut dist = vec![0.0f32; n_test * n_train];
    for metric in [Metric::L1, Metric::L2] {
        let start = Instant::now();
        pairwise(metric, &x_test, n_test, &x_train, n_train, dim, &mut dist)?;
        let mut confusion = [[0usize; 10]; 10];
        for (q, row) in dist.chunks_exact(n_train).enumerate() {
            let nearest = row
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(i, _)| i)
                .unwrap_or(0);
            confusion[y_test[q]][y_train[nearest]] += 1;
        }
        let correct: usize = (0..10).map(|c| confusion[c][c]).sum();
        println!(
            "1-NN {metric:?}: test accuracy {:.2}% ({correct}/{n_test}) in {:.1} ms",
            100.0 * correct as f64 / n_test as f64,
            start.elapsed().as_secs_f64() * 1e3
        );
        println!("  confusion (rows: true 0-9, columns: predicted 0-9)");
        for row in confusion {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:3}")).collect();
            println!("  {}", cells.join(" "));
        }
    }
    Ok(())
}

/// Parses `p0,...,p63,label` rows after a header line.
fn parse_csv(text: &str) -> Result<(Vec<f32>, Vec<usize>, usize), String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty file")?;
    let dim = header.split(',').count() - 1;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (lineno, line) in lines.enumerate().map(|(i, l)| (i + 2, l)) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != dim + 1 {
            return Err(format!(
                "line {lineno}: {} fields, expected {}",
                fields.len(),
                dim + 1
            ));
        }
        for f in &fields[..dim] {
            x.push(
                f.trim()
                    .parse::<f32>()
                    .map_err(|e| format!("line {lineno}: {e}"))?,
            );
        }
        let label = fields[dim]
            .trim()
            .parse::<usize>()
            .map_err(|e| format!("line {lineno}: label: {e}"))?;
        if label >= 10 {
            return Err(format!("line {lineno}: label {label} is not a digit 0-9"));
        }
        y.push(label);
    }
    Ok((x, y, dim))
}
