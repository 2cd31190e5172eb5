//! A fixed heap (embedded-alloc's linked-list allocator over a static array) wrapped
//! to track how much of it is in use: the current and peak bytes requested, and how
//! far into the arena the allocator ever wrote (the arena is painted at [`init`]).
//!
//! [`HEAP_SIZE`] is set just above the arena the `demo` binary was measured to touch
//! (42-46 KiB, allocator overhead included); [`init`] must run before the first
//! allocation.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{AtomicUsize, Ordering};
use embedded_alloc::LlffHeap;

/// Bytes of RAM reserved for the heap.
pub const HEAP_SIZE: usize = 48 * 1024;

/// Pattern the arena is filled with before use (see [`arena_touched`]).
const PAINT: u32 = 0xA110_CA7E;

/// The allocator plus its counters.
pub struct TrackingHeap {
    heap: LlffHeap,
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

#[global_allocator]
static HEAP: TrackingHeap = TrackingHeap {
    heap: LlffHeap::empty(),
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

static mut ARENA: [MaybeUninit<u32>; HEAP_SIZE / 4] = [MaybeUninit::uninit(); HEAP_SIZE / 4];

// SAFETY: every call forwards to LlffHeap (a correct GlobalAlloc) unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for TrackingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { self.heap.alloc(layout) };
        if !p.is_null() {
            let now = self.in_use.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { self.heap.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// Paints the arena and hands it to the allocator. Call once, before anything
/// allocates.
pub fn init() {
    // SAFETY: called once at start-up before any allocation, so nothing else refers
    // to ARENA; it is then owned by the allocator for the rest of the program.
    unsafe {
        let arena = addr_of_mut!(ARENA) as *mut u32;
        for i in 0..HEAP_SIZE / 4 {
            write_volatile(arena.add(i), PAINT);
        }
        HEAP.heap.init(arena as usize, HEAP_SIZE);
    }
}

/// Bytes currently allocated (as requested by the program).
pub fn in_use() -> usize {
    HEAP.in_use.load(Ordering::Relaxed)
}

/// Most bytes allocated at once since start-up (or the last [`reset_peak`]).
pub fn peak() -> usize {
    HEAP.peak.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the current use.
pub fn reset_peak() {
    HEAP.peak.store(in_use(), Ordering::Relaxed);
}

/// How far into the arena the allocator ever wrote, in bytes: requested sizes plus
/// alignment padding, allocator headers and fragmentation. A heap of this size would
/// have served the run.
pub fn arena_touched() -> usize {
    let arena = addr_of_mut!(ARENA) as *const u32;
    let mut words = HEAP_SIZE / 4;
    // SAFETY: reads of the arena's own words, in bounds and aligned; this is a plain
    // observation of memory the allocator owns, not a use of any allocation.
    while words > 0 && unsafe { read_volatile(arena.add(words - 1)) } == PAINT {
        words -= 1;
    }
    words * 4
}
