//! TensorFlow Lite Micro's "hello world" sine model, imported from its `.tflite` file
//! at build time (build.rs: `dl_deploy::tflite::import`, `encode`, `codegen::bake`),
//! run from flash with no heap on all 1,026 committed inputs (every int8 value among
//! them): each int8 output must equal TFLM's own, byte for byte.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::{SINE_X, SINE_Y};
use dl_embedded_demo::engine::models::{TFLITE_SINE, TFLITE_SINE_ARENA, TFLITE_SINE_CASES};
use dl_embedded_demo::{check, exit};

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &TFLITE_SINE;
    let mut arena = Arena::<TFLITE_SINE_ARENA>::new();
    defmt::info!(
        "tflite_sine: sine.tflite imported at build time, {=usize} ops, arena {=usize} B, no heap",
        model.ops.len(),
        model.arena_len
    );
    let ok = check::against_tflm(
        &ticks,
        "sine",
        model,
        arena.as_mut_slice(),
        &SINE_X,
        &SINE_Y,
        TFLITE_SINE_CASES,
    );
    exit(ok)
}
