//! Counting executed instructions with SysTick, for QEMU's `-icount shift=0`.
//!
//! Under `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns per
//! executed guest instruction, and SysTick (clocked from the 25 MHz MPS2 system clock)
//! counts down once per 40 ns of virtual time: one tick per 40 instructions. Rather
//! than trusting those two constants, [`calibrate`] times a loop of a known number of
//! instructions, and [`instructions`] converts ticks with the measured ratio. Over
//! hundreds of inferences the ±1-tick reading error is far below 0.1%.
//!
//! Without `-icount` (or on real hardware) SysTick counts core cycles instead, so the
//! same code then reports cycles (times the calibration loop's cycles per
//! instruction); the xtask always runs with `-icount shift=0`.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

/// SysTick's counter is 24 bits wide.
const MASK: u32 = 0x00FF_FFFF;

/// Iterations of the calibration loop (2 instructions each).
pub const CALIBRATION_LOOPS: u32 = 1_000_000;

/// A free-running SysTick, counting down from 2^24 - 1 and wrapping.
pub struct Ticks {
    syst: SYST,
}

impl Ticks {
    /// Starts SysTick on the core clock, no interrupt.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(MASK);
        syst.clear_current();
        syst.disable_interrupt();
        syst.enable_counter();
        Ticks { syst }
    }

    /// The current counter value (counts down).
    pub fn now(&self) -> u32 {
        let _ = &self.syst;
        SYST::get_current()
    }

    /// Ticks from `start` (an earlier [`Ticks::now`]) to now. Valid for spans shorter
    /// than one wrap (2^24 ticks, about 670 million instructions under `-icount`).
    pub fn since(&self, start: u32) -> u32 {
        start.wrapping_sub(self.now()) & MASK
    }
}

/// Ticks taken by `2 * CALIBRATION_LOOPS` instructions (a `subs`/`bne` loop).
#[inline(never)]
pub fn calibrate(ticks: &Ticks) -> u32 {
    let start = ticks.now();
    // SAFETY: a register-only countdown loop; touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "2:",
            "subs {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_LOOPS => _,
            options(nomem, nostack),
        );
    }
    ticks.since(start)
}

/// Instructions in `ticks`, given that the calibration loop took `calibration` ticks.
pub fn instructions(ticks: u32, calibration: u32) -> u64 {
    let per_loop = 2 * CALIBRATION_LOOPS as u64;
    (ticks as u64 * per_loop + calibration as u64 / 2) / (calibration as u64).max(1)
}
