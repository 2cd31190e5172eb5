//! Replays the committed fuzz corpora (dl-deploy/fuzz/corpus/<target>/) and the
//! inputs the fuzzers found (dl-deploy/fuzz/regressions/<target>/) on stable Rust
//! (`fuzz/common/replay.rs`, shared with dl-layers' replay), through the fuzz
//! targets' own harness (`fuzz/common/harness.rs`): load the bytes
//! (for `blob_crc` with the CRC patched in); if they load, run the model with an
//! arena of `arena_len()` bytes and buffers of its types and sizes, within the same
//! bounds. No input may panic. Also rebuilds the seed blobs (`fuzz/common/seeds.rs`)
//! and checks that they load, run and together use every op kind.
//!
//! The `tflite` target's corpus and regressions (`.tflite` files, real and mutated)
//! go through its own check (`fuzz/common/tflite.rs`): import, encode, then the
//! blob check above. No input may panic.

#[path = "../fuzz/common/harness.rs"]
mod harness;
#[path = "../fuzz/common/replay.rs"]
mod replay;
#[path = "../fuzz/common/seeds.rs"]
mod seeds;
#[path = "../fuzz/common/tflite.rs"]
mod tflite;

use std::path::Path;

use harness::Outcome;

/// Counts of what became of the inputs, and the op kinds of those that ran.
#[derive(Debug, Default)]
struct Tally {
    rejected: usize,
    skipped: usize,
    ran: usize,
    run_errors: usize,
    kinds: u32,
}

fn replay(target: &str, check: fn(&[u8]) -> Outcome) -> Tally {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let outcomes = replay::replay(&fuzz_dir, target, 20, check);
    let mut t = Tally::default();
    for (_, outcome) in &outcomes {
        match outcome {
            Outcome::Rejected(_) => t.rejected += 1,
            Outcome::Skipped { .. } => t.skipped += 1,
            Outcome::Ran { kinds, results } => {
                t.ran += 1;
                t.kinds |= kinds;
                t.run_errors += results.iter().filter(|r| r.is_err()).count();
            }
        }
    }
    println!("{target}: {} inputs replayed: {t:?}", outcomes.len());
    // A corpus whose blobs no longer load (the format changed) fuzzes nothing past
    // the header: regenerate the seeds and fuzz again.
    assert_eq!(
        t.kinds,
        dl_deploy::op::ALL,
        "{target}: the corpus no longer has a loading blob of every op kind; regenerate it \
         (cargo run --manifest-path dl-deploy/fuzz/Cargo.toml --example gen_corpus)"
    );
    t
}

#[test]
fn blob_corpus() {
    replay("blob", harness::check_blob);
}

#[test]
fn blob_crc_corpus() {
    replay("blob_crc", harness::check_blob_crc);
}

#[test]
fn tflite_corpus() {
    use tflite::TfliteOutcome as T;
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let outcomes = replay::replay(&fuzz_dir, "tflite", 20, tflite::check_tflite);
    let (mut refused, mut not_encoded, mut ran, mut kinds) = (0, 0, 0, 0);
    for (_, o) in &outcomes {
        match o {
            T::Refused(_) => refused += 1,
            T::NotEncoded(_) => not_encoded += 1,
            T::Blob(Outcome::Ran { kinds: k, .. }) => {
                ran += 1;
                kinds |= k;
            }
            T::Blob(_) => {}
        }
    }
    println!(
        "tflite: {} inputs: {refused} refused at import, {not_encoded} not encoded, {ran} ran (op kinds {kinds:#x})",
        outcomes.len()
    );
    // The corpus holds both real models and the one-op models: if none of them
    // imports and runs any more, the corpus fuzzes nothing past the reader.
    assert!(ran >= 5, "only {ran} corpus files import and run");
}

/// The 7-byte file the `tflite` fuzzer found: the FlatBuffers verifier accepted
/// its root table, then the identifier check asserted on a file shorter than
/// 8 bytes. It must be refused as corrupt, at the identifier.
#[test]
fn tflite_short_file_is_corrupt() {
    let bytes = [0, 0, 0, 0, 24, 236, 3];
    assert!(matches!(
        dl_deploy::tflite::import(&bytes),
        Err(dl_deploy::Error::Corrupt { offset: 4, .. })
    ));
}

#[test]
fn seeds_load_run_and_use_every_op_kind() {
    let seeds = seeds::seeds().unwrap();
    let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
    assert!(total < 64 << 10, "seeds are {total} bytes");
    let mut kinds = 0;
    let mut failed = Vec::new();
    for (name, blob) in &seeds {
        // The CRC patch leaves a valid blob as it is.
        assert_eq!(&harness::patch_crc(blob), blob, "{name}");
        match harness::check_blob(blob) {
            Outcome::Ran { kinds: k, results } => {
                kinds |= k;
                if let Err(e) = results[0] {
                    failed.push(format!("{name}: {e:?}"));
                }
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Exported by dl-deploy itself, loaded, given buffers of the model's types: the
    // run must succeed.
    assert!(
        failed.is_empty(),
        "seeds that load but do not run: {failed:#?}"
    );
    assert_eq!(
        kinds,
        dl_deploy::op::ALL,
        "op kinds the seeds use: {kinds:#x}"
    );
}
