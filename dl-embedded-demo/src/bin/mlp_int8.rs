//! The digits MLP quantized to int8 on the desktop (TensorFlow Lite's spec), from
//! flash through the library's deployment engine, on every held-out digit: its int8
//! output bytes must equal the host engine's for every sample. No heap.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::{self, CLASSES, N_TEST};
use dl_embedded_demo::engine::argmax;
use dl_embedded_demo::engine::models::{DIGITS_MLP_INT8, DIGITS_MLP_INT8_ARENA};
use dl_embedded_demo::{check, exit};

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &DIGITS_MLP_INT8;
    let mut arena = Arena::<DIGITS_MLP_INT8_ARENA>::new();
    defmt::info!(
        "mlp_int8: int8 digits MLP compiled from its blob, {=usize} ops, arena {=usize} B, no heap",
        model.ops.len(),
        model.arena_len
    );
    // Counted as they come rather than kept in a per-sample array, which would cost
    // more stack than the model's whole arena.
    let (mut differ, mut agree, mut correct) = (0, 0, 0);
    let elapsed = check::timed(&ticks, N_TEST, |i| {
        let arena = arena.as_mut_slice();
        check::run_digit(model, arena, i)?;
        let out = model.output_ref::<i8>(arena)?;
        let host = &data::MLP_INT8_OUT[i * CLASSES..(i + 1) * CLASSES];
        if out.iter().zip(host).any(|(&a, &b)| a as u8 != b) {
            differ += 1;
        }
        let pred = argmax(out) as u8;
        agree += usize::from(pred == data::DESKTOP_PRED[i]);
        correct += usize::from(pred == data::TEST_Y[i]);
        Ok(())
    });
    defmt::info!(
        "int8 engine: {=usize} of {=usize} outputs differ from the host's int8 bytes",
        differ,
        N_TEST
    );
    defmt::info!(
        "int8 engine: {=usize}/{=usize} held-out digits correct; argmax equals the f32 desktop's on {=usize}/{=usize}",
        correct,
        N_TEST,
        agree,
        N_TEST
    );
    check::report_cost(&ticks, elapsed, N_TEST);
    exit(differ == 0)
}
