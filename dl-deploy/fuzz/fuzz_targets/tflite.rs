#![no_main]
//! Arbitrary bytes as a `.tflite` file: `tflite::import` never panics, and a graph it
//! gives encodes (or fails to), loads (or fails to) and runs without panicking
//! (`common/tflite.rs`).

#[path = "../common/harness.rs"]
mod harness;
#[path = "../common/tflite.rs"]
mod tflite;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tflite::check_tflite(data);
});
