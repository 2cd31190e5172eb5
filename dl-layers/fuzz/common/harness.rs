//! What the `checkpoint` fuzz target (`fuzz_targets/checkpoint.rs`) and the stable
//! replay (`dl-layers/tests/fuzz_corpus.rs`) do with one input, shared so both check
//! exactly the same thing: load the bytes with `checkpoint::from_bytes` into a fresh
//! small model ([`model`]: Linear, Conv2d, BatchNorm with its buffers, LSTM), once
//! in f32 and once in f64. Any panic is a bug; errors are fine, but:
//!
//! - after an error every parameter and buffer must have the bits it had before;
//! - the error must name the source (its message starts with [`SOURCE`]);
//! - after a success every value must be finite (the loader refuses NaN and
//!   infinities);
//! - the bytes the call allocates at its peak (counted per thread by
//!   [`CountingAlloc`], which the binary installs as its global allocator) must stay
//!   within [`alloc_bound`] of the input's length: nothing may allocate what a
//!   header merely claims.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use dl_core::{Rng, Scalar};
use dl_layers::{
    checkpoint, BatchNorm, Conv2dConfig, Entry, Error, LinearConfig, Module, Path, RecurrentConfig,
    Sequential,
};

/// The source name the harness passes to `from_bytes`.
pub const SOURCE: &str = "<fuzz input>";
/// Seed of the model the inputs load into (the seeds are written from others).
pub const MODEL_SEED: u64 = 1;

/// The fixed model: one of each kind of layer the checkpoint walks (parameters of
/// rank 1, 2, 4; BatchNorm's running statistics as buffers; an LSTM's four weights).
pub fn model<T: Scalar>(seed: u64) -> Sequential<T> {
    let mut rng = Rng::seed_from_u64(seed);
    Sequential::new()
        .push(LinearConfig::new(3, 4).init(&mut rng).unwrap())
        .push(Conv2dConfig::new(2, 3, 2).init(&mut rng).unwrap())
        .push(BatchNorm::new(3).unwrap())
        .push(RecurrentConfig::lstm(2, 3).init(&mut rng).unwrap())
}

/// Every parameter and buffer of `m` by name, as the bits of its values (widened to
/// f64, which is exact for both element types).
pub fn snapshot<T: Scalar>(m: &dyn Module<T>) -> Vec<(String, Vec<u64>)> {
    let mut out = Vec::new();
    m.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
        let bits = e
            .value()
            .data()
            .iter()
            .map(|v| v.to_f64_lossless().to_bits())
            .collect();
        out.push((name.to_string(), bits));
    });
    out
}

/// The most bytes one `from_bytes` call may have allocated at once, for an input of
/// `len` bytes. The worst case is safetensors' JSON header: serde buffers a flattened
/// map as `Content` values of 32 bytes each before converting them, and a value can
/// take as little as 2 bytes of JSON (`0,` in a shape), so 16 bytes per input byte;
/// the buffer grows by doubling (up to 2x that) and each growth holds the old and
/// the new buffer at once (1.5x): 48 bytes per input byte when the element count is
/// just past a power of two (measured: 48.0 in `tests/fuzz_corpus.rs`). 64 leaves
/// room for the smaller allocations beside it; the constant covers error messages
/// and the model's names. What must never happen is an allocation sized by what a
/// header claims (a shape, a data offset) rather than by the bytes given.
pub fn alloc_bound(len: usize) -> usize {
    (64 << 10) + 64 * len
}

/// What became of one input, for the f32 and the f64 model.
#[derive(Debug)]
pub struct Outcome {
    /// The results of the two loads.
    pub results: [Result<(), Error>; 2],
    /// The larger of the two loads' allocation peaks (None if the binary does not
    /// count allocations).
    pub peak: Option<usize>,
}

/// Loads `data` into both models and checks the promises above (panics if one is
/// broken).
pub fn check(data: &[u8]) -> Outcome {
    let (r32, p32) = load_into::<f32>(data);
    let (r64, p64) = load_into::<f64>(data);
    Outcome {
        results: [r32, r64],
        peak: p32.zip(p64).map(|(a, b)| a.max(b)),
    }
}

fn load_into<T: Scalar>(data: &[u8]) -> (Result<(), Error>, Option<usize>) {
    let mut m = model::<T>(MODEL_SEED);
    let before = snapshot(&m);
    let start = peak_start();
    let result = checkpoint::from_bytes(&mut m, data, SOURCE);
    let peak = peak_since(start);
    if let Some(peak) = peak {
        let bound = alloc_bound(data.len());
        assert!(
            peak <= bound,
            "{}: from_bytes allocated {peak} bytes at its peak for a {}-byte input (bound {bound})",
            T::NAME,
            data.len()
        );
    }
    match &result {
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(SOURCE),
                "{}: error without the source: {msg}",
                T::NAME
            );
            let after = snapshot(&m);
            for ((name, b), (_, a)) in before.iter().zip(&after) {
                assert!(a == b, "{}: failed load ({msg}) changed `{name}`", T::NAME);
            }
        }
        Ok(()) => {
            m.visit(&mut Path::new(), &mut |name, e: Entry<'_, T>| {
                assert!(
                    e.value().data().iter().all(|v| v.is_finite()),
                    "{}: loaded a non-finite value into `{name}`",
                    T::NAME
                );
            });
        }
    }
    (result, peak)
}

/// A global allocator that counts, per thread, the bytes live and their peak, so
/// the harness can bound what one call allocates (per thread: the replay test runs
/// beside other tests).
pub struct CountingAlloc;

thread_local! {
    // Signed: a block freed on another thread than the one that allocated it moves
    // that thread's count below its start, which a difference still handles.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn grew(n: usize) {
    let _ = LIVE.try_with(|live| {
        let v = live.get().wrapping_add(n as isize);
        live.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn shrank(n: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(n as isize)));
}

// SAFETY: every call goes to the system allocator unchanged; the counting only
// touches const-initialized thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            INSTALLED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the copy it may be: old and new block live at once.
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

/// Starts a measurement: the live count now, with the peak reset to it.
fn peak_start() -> isize {
    let live = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(live));
    live
}

/// The peak bytes allocated since `start` on this thread (None without
/// [`CountingAlloc`] installed).
fn peak_since(start: isize) -> Option<usize> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    Some(PEAK.with(Cell::get).wrapping_sub(start).max(0) as usize)
}
