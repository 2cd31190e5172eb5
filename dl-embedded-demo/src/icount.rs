//! Counting executed instructions with a hardware timer, for QEMU's `-icount shift=0`.
//!
//! Under `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns per
//! executed guest instruction, so any timer QEMU clocks from virtual time counts
//! instructions: [`Ticks`] is SysTick on the MPS2 boards (clocked from their 25 MHz
//! system clock: one tick per 40 instructions), and TIMER0 on the micro:bit (the
//! nRF51822 has no SysTick; its TIMER runs at 16 MHz: one tick per 62.5
//! instructions). Rather than trusting those constants, [`calibrate`] times a loop of
//! a known number of instructions, and [`instructions`] converts ticks with the
//! measured ratio. Over hundreds of inferences the ±1-tick reading error is far below
//! 0.1%.
//!
//! The calibration loop is `subs`/`bne` on every core: Thumb-1 (the Cortex-M0) has
//! both as 16-bit instructions, `subs` with an 8-bit immediate on a low register (the
//! `reg` operand class is r0-r7 there), so the loop is 2 instructions per iteration
//! everywhere, plus a constant 2 or 3 around it (the loop count's load, the second
//! reading) that the rounding absorbs.
//!
//! Without `-icount` (or on real hardware) the timers count their clocks instead, so
//! the same code then reports cycles (times the calibration loop's cycles per
//! instruction); the xtask always runs with `-icount shift=0`.

use cortex_m::peripheral::SYST;

/// Iterations of the calibration loop (2 instructions each).
pub const CALIBRATION_LOOPS: u32 = 1_000_000;

/// A free-running counter: SysTick, or the nRF51's TIMER0 on the micro:bit.
pub struct Ticks {
    // Owned so nothing else reprograms SysTick while it counts (on the micro:bit it
    // stays off: QEMU models a SysTick there, the nRF51822 has none).
    syst: SYST,
}

/// The counter's name, for logs.
#[cfg(not(board = "microbit"))]
pub const CLOCK: &str = "SysTick";
/// The counter's name, for logs.
#[cfg(board = "microbit")]
pub const CLOCK: &str = "TIMER0";

#[cfg(not(board = "microbit"))]
mod clock {
    //! SysTick: counts down from 2^24 - 1 on the core clock, wrapping.
    use cortex_m::peripheral::syst::SystClkSource;
    use cortex_m::peripheral::SYST;

    /// SysTick's counter is 24 bits wide.
    pub const MASK: u32 = 0x00FF_FFFF;

    pub fn start(syst: &mut SYST) {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(MASK);
        syst.clear_current();
        syst.disable_interrupt();
        syst.enable_counter();
    }

    /// Counts down, so elapsed ticks are `earlier - later`.
    pub fn now() -> u32 {
        MASK - SYST::get_current()
    }
}

#[cfg(board = "microbit")]
mod clock {
    //! The nRF51's TIMER0 (nRF51 Series Reference Manual v3.0, "Timer/counter"; QEMU
    //! hw/timer/nrf51_timer.c): timer mode, 32 bits, prescaler 0 (16 MHz). It has no
    //! readable counter: the CAPTURE[0] task copies it into CC[0].
    use core::ptr::{read_volatile, write_volatile};

    const BASE: usize = 0x4000_8000;
    const TASKS_START: usize = BASE;
    const TASKS_CLEAR: usize = BASE + 0x00C;
    const TASKS_CAPTURE0: usize = BASE + 0x040;
    const MODE: usize = BASE + 0x504;
    const BITMODE: usize = BASE + 0x508;
    const PRESCALER: usize = BASE + 0x510;
    const CC0: usize = BASE + 0x540;

    pub const MASK: u32 = u32::MAX;

    fn write(reg: usize, value: u32) {
        // SAFETY: a TIMER0 register of the nRF51 memory map, word-aligned; only this
        // module touches TIMER0.
        unsafe { write_volatile(reg as *mut u32, value) }
    }

    pub fn start(_syst: &mut cortex_m::peripheral::SYST) {
        write(MODE, 0); // timer, not counter
        write(BITMODE, 3); // 32 bits
        write(PRESCALER, 0); // 16 MHz / 2^0
        write(TASKS_CLEAR, 1);
        write(TASKS_START, 1);
    }

    /// Counts up.
    pub fn now() -> u32 {
        write(TASKS_CAPTURE0, 1);
        // SAFETY: as in `write`.
        unsafe { read_volatile(CC0 as *const u32) }
    }
}

impl Ticks {
    /// Starts the counter, no interrupt.
    pub fn start(mut syst: SYST) -> Self {
        clock::start(&mut syst);
        Ticks { syst }
    }

    /// The current count (increasing, wrapping at the counter's width).
    pub fn now(&self) -> u32 {
        let _ = &self.syst;
        clock::now()
    }

    /// Ticks from `start` (an earlier [`Ticks::now`]) to now. Valid for spans shorter
    /// than one wrap: 2^24 SysTick ticks (about 670 million instructions under
    /// `-icount`) or 2^32 TIMER0 ticks.
    pub fn since(&self, start: u32) -> u32 {
        self.now().wrapping_sub(start) & clock::MASK
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
