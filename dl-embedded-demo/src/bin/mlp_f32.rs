//! The desktop-trained digits MLP in f32, from flash through the library's
//! deployment engine, on every held-out digit, checked prediction for prediction
//! against the desktop's `Module::infer`. Built without the `heap` feature, nothing
//! in this binary links `alloc`, so it cannot allocate.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::N_TEST;
use dl_embedded_demo::engine::models::{DIGITS_MLP_F32, DIGITS_MLP_F32_ARENA};
use dl_embedded_demo::{check, exit};

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &DIGITS_MLP_F32;
    let mut arena = Arena::<DIGITS_MLP_F32_ARENA>::new();
    defmt::info!(
        "mlp_f32: digits MLP compiled from its blob, {=usize} ops, arena {=usize} B, no heap",
        model.ops.len(),
        model.arena_len
    );
    let mut preds = [0u8; N_TEST];
    let elapsed = check::timed(&ticks, N_TEST, |i| {
        preds[i] = check::classify_digit(model, arena.as_mut_slice(), i)?;
        Ok(())
    });
    let ok = check::report_vs_desktop("f32 engine", &preds);
    check::report_cost(&ticks, elapsed, N_TEST);
    exit(ok)
}
