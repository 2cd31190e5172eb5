#![no_main]
//! Arbitrary bytes as a safetensors checkpoint of a small fixed model
//! (`common/harness.rs`): `checkpoint::from_bytes` never panics, allocates at most
//! [`harness::alloc_bound`] bytes for the input, and leaves every parameter and
//! buffer bit for bit as it was when it fails.

#[path = "../common/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

fuzz_target!(|data: &[u8]| {
    let _ = harness::check(data);
});
