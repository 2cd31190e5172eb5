#![no_main]
//! As `blob`, but with the CRC-32 of bytes 12.. patched in at bytes 8..12 before
//! loading, so that what gets fuzzed is the structural validation behind the CRC
//! (tensor table, op records, constants, arena regions) and the kernels after it.

#[path = "../common/harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = harness::check_blob_crc(data);
});
