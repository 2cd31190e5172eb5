//! Stack high-water mark by painting: fill the free stack with a pattern at start-up,
//! run, then scan from the bottom for the first word that changed.
//!
//! The stack is the RAM between the end of the statics (`__sheap`, which cortex-m-rt
//! places after `.bss` and `.uninit`) and `_stack_start` (the top of RAM); it grows
//! down. The figure is "bytes below the top ever written", so it includes the reset
//! handler's and `main`'s frames. A word the program wrote with the pattern value
//! itself would hide usage below it; with a 32-bit pattern that is not a float or a
//! small integer, that is unlikely and only makes the figure a little low.

use core::ptr::{addr_of, read_volatile, write_volatile};

/// Written over the free stack; not a plausible float, pointer or small integer.
const PAINT: u32 = 0xC5AC_CE55;

extern "C" {
    static __sheap: u32;
    static _stack_start: u32;
}

// Only the symbols' addresses are taken (cortex-m-rt's link.x defines them).
fn bottom() -> usize {
    addr_of!(__sheap) as usize
}

/// The initial stack pointer.
fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Bytes of RAM the stack may use (`_stack_start - __sheap`).
pub fn capacity() -> usize {
    top() - bottom()
}

/// Bytes left unpainted below the stack pointer read in [`paint`]: the compiler may
/// read it before pushing this function's own frame, which must not be overwritten.
const PAINT_MARGIN: usize = 64;

/// Paints the free stack: every word from the end of the statics up to just below
/// this function's own frame. Call it first thing in `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize - PAINT_MARGIN;
    let mut addr = (bottom() + 3) & !3;
    while addr + 4 <= sp {
        // SAFETY: [bottom, sp) is RAM that nothing owns: above the statics, below the
        // live stack; no interrupt is enabled, so nothing else pushes there meanwhile.
        unsafe { write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// The deepest the stack has reached since [`paint`], in bytes below the top.
pub fn high_water() -> usize {
    let mut addr = (bottom() + 3) & !3;
    let top = top();
    while addr < top {
        // SAFETY: reading RAM between the statics and the top of the stack: plain
        // memory, aligned, in bounds.
        if unsafe { read_volatile(addr as *const u32) } != PAINT {
            break;
        }
        addr += 4;
    }
    top - addr
}
