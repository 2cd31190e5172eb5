#![no_main]
//! Arbitrary bytes as a model blob: `Model::from_bytes` never panics, and a blob
//! that loads runs (arena of `arena_len()` bytes, buffers of the model's types and
//! sizes, within the bounds of `common/harness.rs`) without panicking.

#[path = "../common/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::check_blob(data);
});
