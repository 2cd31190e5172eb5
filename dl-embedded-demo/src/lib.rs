//! # dl-embedded-demo
//!
//! Firmware that runs the library on a microcontroller, built for three cores, each
//! under the QEMU machine that models a board with it: a Cortex-M4F
//! (`thumbv7em-none-eabihf`, `mps2-an386`), a Cortex-M3 (`thumbv7m-none-eabi`,
//! `mps2-an385`) and a Cortex-M0 (`thumbv6m-none-eabi`, `microbit`: an nRF51822), or
//! on a real board with another memory map (`boards/*.x`; build.rs picks one per
//! target and sets `cfg(board = "...")`). Laid out as knurling's app-template: this
//! library holds what every binary shares (the defmt logger, the panic and HardFault
//! handlers, [`exit`]), and each binary is one short `main`:
//!
//! - `mlp_f32`, `mlp_int8`, `cnn_int8` (every core) and `forest` (the M4F), with no
//!   heap (built without the `heap` feature, nothing links `alloc`): a
//!   desktop-trained model from flash through the deployment engine ([`engine`]) on
//!   samples stored in flash ([`data`]), every output checked against the desktop's
//!   ([`check`]), with instructions per inference ([`icount`]) and the stack high-water mark
//!   ([`stack`]).
//! - `tflite_sine`, `tflite_speech` (no heap; every core): TensorFlow Lite Micro's own
//!   example models, imported from their `.tflite` files at build time, every int8
//!   output checked against the bytes of TFLM's interpreter.
//! - `demo` (feature `heap`; the Cortex-M4F only, its 48 KiB heap is more RAM than
//!   the micro:bit has): loading the safetensors checkpoint through
//!   `dl_layers::checkpoint`, classifying with it and with the heapless flash path,
//!   training a small MLP on the device ([`train`]), and the peak heap use ([`heap`]).
//!
//! Each exits QEMU through semihosting with status 0 only when every check passed.
#![no_std]
#![warn(missing_docs)]

#[cfg(feature = "heap")]
extern crate alloc;

pub mod check;
pub mod data;
pub mod engine;
#[cfg(feature = "heap")]
pub mod heap;
pub mod icount;
pub mod stack;
#[cfg(feature = "heap")]
pub mod train;

// The defmt transport: semihosting under QEMU (decoded by defmt-print on the host),
// RTT on a real board with a debug probe.
#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(not(feature = "rtt"))]
use defmt_semihosting as _;

use cortex_m_semihosting::debug;

/// Ends the program: under QEMU, exits the emulator with status 0 (`success`) or 1.
///
/// On a real board without a debugger the semihosting call faults; the HardFault
/// handler then lands here again, so the core stays parked either way.
pub fn exit(success: bool) -> ! {
    let code = if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    };
    loop {
        debug::exit(code);
        cortex_m::asm::bkpt();
    }
}

/// What every binary does first: paint the stack (for its high-water mark) and start
/// the instruction counter; exits with failure if the core peripherals are taken.
pub fn start() -> icount::Ticks {
    stack::paint();
    let Some(cp) = cortex_m::Peripherals::take() else {
        defmt::error!("core peripherals already taken");
        exit(false)
    };
    icount::Ticks::start(cp.SYST)
}

/// Percentage with two decimals as `(whole, hundredths)`, in integers so the log
/// prints the same digits everywhere (`522 / 544` is `(95, 96)`).
pub fn percent(num: usize, den: usize) -> (u32, u32) {
    let basis_points = if den == 0 {
        0
    } else {
        (num as u64 * 10_000 + den as u64 / 2) / den as u64
    };
    ((basis_points / 100) as u32, (basis_points % 100) as u32)
}

/// Any Rust panic: log where, then exit with failure. Uses the location only (not
/// the message), so the `core::fmt` machinery stays out of the heapless build.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(loc) => defmt::error!("panic at {=str}:{=u32}", loc.file(), loc.line()),
        None => defmt::error!("panic"),
    }
    exit(false)
}

/// `defmt::panic!` and friends end the same way.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(false)
}

/// A fault (bad memory access, undefined instruction, stack overflow into a fault):
/// fail the run instead of hanging QEMU.
#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#010x}", frame.pc());
    exit(false)
}
