//! Heapless inference: the desktop-trained digits MLP from flash on every held-out
//! digit, checked prediction for prediction against the desktop. Built without the
//! `heap` feature, nothing in this binary links `alloc`, so it cannot allocate.
#![no_std]
#![no_main]

use dl_embedded_demo::data::{CLASSES, N_TEST};
use dl_embedded_demo::{check, exit, icount, mlp, stack};

#[cortex_m_rt::entry]
fn main() -> ! {
    stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else {
        defmt::error!("core peripherals already taken");
        exit(false)
    };
    let ticks = icount::Ticks::start(cp.SYST);
    defmt::info!(
        "infer: digits MLP {=usize}-{=usize}-{=usize} from flash, no heap",
        mlp::DIGITS.inputs(),
        mlp::DIGITS.hidden(),
        CLASSES
    );

    let mut preds = [0u8; N_TEST];
    let start = ticks.now();
    for (i, pred) in preds.iter_mut().enumerate() {
        match check::classify_flash(i) {
            Ok(p) => *pred = p,
            Err(e) => {
                mlp::log_core_error("inference", &e);
                exit(false)
            }
        }
    }
    let elapsed = ticks.since(start);
    let calibration = icount::calibrate(&ticks);

    let ok = check::report_vs_desktop("flash", &preds);
    defmt::info!(
        "instructions per inference: {=u64} (calibration: {=u32} instructions = {=u32} SysTick ticks)",
        icount::instructions(elapsed, calibration) / N_TEST as u64,
        2 * icount::CALIBRATION_LOOPS,
        calibration
    );
    defmt::info!(
        "stack high-water: {=usize} B of {=usize} B",
        stack::high_water(),
        stack::capacity()
    );
    exit(ok)
}
