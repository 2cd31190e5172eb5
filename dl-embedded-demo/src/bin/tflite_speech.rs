//! TensorFlow Lite Micro's micro_speech keyword model (silence, unknown, yes, no),
//! imported from its `.tflite` file at build time (build.rs:
//! `dl_deploy::tflite::import`, `encode`, `codegen::bake`), run from flash with no
//! heap on 17 of the committed inputs (every 64th: the published point, edge
//! patterns, uniform, low-range and sparse features): each int8 output must equal
//! TFLM's own, byte for byte.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::{SPEECH_X, SPEECH_Y};
use dl_embedded_demo::engine::models::{TFLITE_SPEECH, TFLITE_SPEECH_ARENA, TFLITE_SPEECH_CASES};
use dl_embedded_demo::{check, exit};

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &TFLITE_SPEECH;
    let mut arena = Arena::<TFLITE_SPEECH_ARENA>::new();
    defmt::info!(
        "tflite_speech: speech.tflite imported at build time, {=usize} ops, arena {=usize} B, no heap",
        model.ops.len(),
        model.arena_len
    );
    let ok = check::against_tflm(
        &ticks,
        "speech",
        model,
        arena.as_mut_slice(),
        &SPEECH_X,
        &SPEECH_Y,
        TFLITE_SPEECH_CASES,
    );
    exit(ok)
}
