//! A random forest fitted on the digits by dl-classic on the desktop, from flash
//! through the library's deployment engine (the job emlearn does), on every held-out
//! digit: its predictions must equal dl-classic's `predict`. No heap.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::{self, N_TEST};
use dl_embedded_demo::engine::models::{DIGITS_FOREST, DIGITS_FOREST_ARENA};
use dl_embedded_demo::{check, exit};

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &DIGITS_FOREST;
    let mut arena = Arena::<DIGITS_FOREST_ARENA>::new();
    defmt::info!(
        "forest: digits random forest compiled from its blob, arena {=usize} B, no heap",
        model.arena_len
    );
    let mut preds = [0u8; N_TEST];
    let elapsed = check::timed(&ticks, N_TEST, |i| {
        let arena = arena.as_mut_slice();
        check::run_digit(model, arena, i)?;
        preds[i] = model.output_ref::<i32>(arena)?[0] as u8;
        Ok(())
    });
    let differ = N_TEST - check::count_equal(&preds, &data::FOREST_PRED);
    let correct = check::count_equal(&preds, &data::TEST_Y);
    defmt::info!(
        "forest: {=usize}/{=usize} held-out digits correct; {=usize} predictions differ from dl-classic's on the desktop",
        correct,
        N_TEST,
        differ
    );
    check::report_cost(&ticks, elapsed, N_TEST);
    exit(differ == 0)
}
