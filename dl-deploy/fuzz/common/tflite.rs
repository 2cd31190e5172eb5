//! What the `tflite` fuzz target (`fuzz_targets/tflite.rs`) and its stable replay
//! (`dl-deploy/tests/fuzz_corpus.rs`) do with one input: read the bytes as a
//! `.tflite` file with `dl_deploy::tflite::import`; if that gives a graph, encode
//! it, then load and run the blob through the blob targets' own check
//! (`harness::load_and_run`: `Model::from_bytes`, then two runs within its arena and
//! work bounds). Any panic is a bug; errors at every stage are fine.
//!
//! Allocation stays bounded by the input: the reader copies only constant data the
//! file holds (each buffer must be exactly its tensor's size), graph tensors carry
//! shapes and no data, and the run's arena is capped by `harness::MAX_ARENA`.
//!
//! Needs `mod harness;` (`common/harness.rs`) at the crate root beside it.
#![allow(dead_code)]

use crate::harness::{load_and_run, Outcome};
use dl_deploy::{encode, tflite, Error};

/// What became of one input.
#[derive(Debug)]
pub enum TfliteOutcome {
    /// The reader refused it.
    Refused(Error),
    /// It imported, but the graph does not encode.
    NotEncoded(Error),
    /// It imported and encoded; what the blob check made of the blob.
    Blob(Outcome),
}

/// The `tflite` target.
pub fn check_tflite(data: &[u8]) -> TfliteOutcome {
    let g = match tflite::import(data) {
        Ok(g) => g,
        Err(e) => return TfliteOutcome::Refused(e),
    };
    match encode(&g) {
        Ok((blob, _plan)) => TfliteOutcome::Blob(load_and_run(&blob)),
        Err(e) => TfliteOutcome::NotEncoded(e),
    }
}
