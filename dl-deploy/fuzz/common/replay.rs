//! Replays a fuzz target's committed inputs on stable Rust, in `cargo test`: every
//! file of `<fuzz dir>/corpus/<target>/` (the minimized corpus) and
//! `<fuzz dir>/regressions/<target>/` (inputs that once crashed), through the
//! target's own check, with panics caught so one run names every input that panics.
//! Shared by the replay tests of dl-deploy and dl-layers (`tests/fuzz_corpus.rs`,
//! through `#[path]`); what a target checks stays in its own `common/harness.rs`.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Every file of the target's corpus and regressions directories, sorted by path.
pub fn inputs(fuzz_dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in [
        fuzz_dir.join("corpus").join(target),
        fuzz_dir.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Runs `check` on every input of `target` (at least `min_inputs` of them, so a
/// missing corpus fails) and returns each input's outcome; panics, naming them, if
/// any input panicked.
pub fn replay<O>(
    fuzz_dir: &Path,
    target: &str,
    min_inputs: usize,
    check: impl Fn(&[u8]) -> O,
) -> Vec<(PathBuf, O)> {
    let files = inputs(fuzz_dir, target);
    assert!(
        files.len() >= min_inputs,
        "{target}: corpus missing ({} files in {})",
        files.len(),
        fuzz_dir.display()
    );
    let mut outcomes = Vec::new();
    let mut panicked = Vec::new();
    for (p, data) in files {
        match catch_unwind(AssertUnwindSafe(|| check(&data))) {
            Ok(o) => outcomes.push((p, o)),
            Err(_) => panicked.push(p.display().to_string()),
        }
    }
    assert!(
        panicked.is_empty(),
        "{target}: {} of {} inputs panicked (messages above): {panicked:#?}",
        panicked.len(),
        outcomes.len() + panicked.len()
    );
    outcomes
}
