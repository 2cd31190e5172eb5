//! Fit a random forest on the digits and export it for the microcontroller, as
//! emlearn does for scikit-learn's forests: the firmware runs it from flash with no
//! heap and must predict what `predict` predicts here, digit for digit.
//!
//! ```text
//! cargo run --release -p dl-classic --example digits_forest_export            # into dl-embedded-demo/model
//! cargo run --release -p dl-classic --example digits_forest_export -- out/dir
//! ```
//!
//! Data: the bundled 8x8 digits with the firmware's split (stratified 70/30, seed 0,
//! the same held-out digits as `test_x.bin`), pixels scaled by 1/16 as the firmware
//! scales them. A forest of 10 trees (seed 0). Writes `digits_forest.dlm` (the
//! blob) and `digits_forest_pred.bin` (one byte per held-out digit: the position in
//! `classes` that `predict` gives, which for the digits is the digit itself).

use dl_classic::export::Export;
use dl_classic::forest::RandomForest;
use dl_core::{Fit, MatRef, Predict};
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_deploy::{encode, AlignedBlob, HeapArena, Model};
use std::path::{Path, PathBuf};

/// Trees in the forest.
const TREES: usize = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() > 1 || args.first().is_some_and(|a| a.starts_with('-')) {
        eprintln!("usage: digits_forest_export [OUT_DIR]   (default: dl-embedded-demo/model)");
        std::process::exit(2);
    }
    let out_dir = args.first().map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../dl-embedded-demo/model"
            ))
        },
        PathBuf::from,
    );
    if let Err(e) = run(&out_dir) {
        eprintln!("digits_forest_export: {e}");
        std::process::exit(1);
    }
}

fn run(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(out_dir)?;
    let all: Dataset<f32, usize> = dl_data::datasets::digits()?;
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())?;
    let (train, test) = (all.subset(&split.train)?, all.subset(&split.test)?);
    let scaled =
        |d: &Dataset<f32, usize>| -> Vec<f32> { d.features().iter().map(|v| v / 16.0).collect() };
    let (xtr, xte) = (scaled(&train), scaled(&test));
    let d = train.n_features();

    let forest = RandomForest::new(TREES)
        .seed(0)
        .fit(MatRef::new(&xtr, train.n_samples(), d)?, train.targets())?;
    let labels = forest.predict(MatRef::new(&xte, test.n_samples(), d)?)?;
    let position =
        |label: usize| forest.classes.iter().position(|&c| c == label).unwrap_or(0) as u8;
    let preds: Vec<u8> = labels.iter().map(|&l| position(l)).collect();
    let correct = labels
        .iter()
        .zip(test.targets())
        .filter(|(p, y)| p == y)
        .count();

    // The blob, and the host engine's predictions, which must be predict's.
    let (bytes, plan) = encode(&forest.export()?)?;
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes())?;
    let mut arena = HeapArena::new(plan.arena_len);
    let mut differ = 0;
    for (row, &p) in xte.chunks_exact(d).zip(&preds) {
        let mut pos = [0i32];
        model.run(arena.bytes(), row, &mut pos)?;
        differ += usize::from(pos[0] != i32::from(p));
    }
    if differ > 0 {
        return Err(format!("the engine differs from predict on {differ} held-out digits").into());
    }
    write_atomic(&out_dir.join("digits_forest.dlm"), &bytes)?;
    write_atomic(&out_dir.join("digits_forest_pred.bin"), &preds)?;
    println!(
        "forest of {TREES} trees: {correct}/{} held-out digits correct; blob {} B, arena {} B; \
         the engine predicts as predict on every held-out digit; wrote {}",
        test.n_samples(),
        bytes.len(),
        plan.arena_len,
        out_dir.display()
    );
    Ok(())
}

/// Writes through a temporary file renamed into place, so a reader never sees half
/// a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
