//! The gemm's own helper threads: a few threads started on first use that sleep on a
//! condition variable and, when woken, help run the parts of a product.
//!
//! Parts are claimed one at a time by whoever is free (the caller included), and each
//! part is a fixed block of C, so the result does not depend on who runs what.
//!
//! Why not rayon or `std::thread::scope`: a threaded product must allocate nothing
//! once warm (a training step reuses all of its buffers). Spawning a scoped thread
//! allocates its handle and result packet, and `rayon::join` called from outside
//! rayon's pool pushes onto an injector queue that allocates a new block every 63
//! jobs. Here posting a job is three atomic stores; std's `Mutex` and `Condvar` (used
//! only to sleep) are futex-based and allocate nothing.
//!
//! One product runs on the pool at a time. A caller that finds it busy (another
//! thread's product, e.g. from batch-parallel convolution) runs its parts itself.
//!
//! Claiming is lock-free: the job's epoch, its number of parts and the next unclaimed
//! part share one atomic word, so a claim is one compare-and-swap that fails for a
//! stale job, and finishing a part is one atomic add. At batch-1 inference a whole
//! threaded product lasts about two microseconds, and every cache line passed between
//! cores on the way (a mutex taken by both sides, say) costs about a tenth of one.
//!
//! Waking a sleeping thread through the futex costs several microseconds (more in a
//! virtual machine), about as much as a small product's part, and a training step
//! posts a job every few tens of microseconds. So a helper that finishes a job spins
//! for up to [`SPIN`] watching for the next one before it sleeps, the caller spins the
//! same way for the helpers to finish their parts, and nobody calls into the kernel
//! to wake a thread that is not asleep (as OpenMP runtimes do, with a shorter spin).

use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long an idle helper (or a caller waiting for helpers) spins before sleeping.
const SPIN: Duration = Duration::from_micros(200);

/// Upper bound on threads per product (caller included).
pub(super) const MAX_THREADS: usize = 16;

/// Parts a job may have: the part counters are 16-bit fields of [`WORD`].
const MAX_PARTS: usize = 0xFFFF;

/// One part of a product; the argument is the part index.
type Task<'a> = dyn Fn(usize) + Sync + 'a;

/// The current job: epoch (high 32 bits), number of parts (16 bits) and the next part
/// nobody has claimed (low 16 bits). A claim that succeeds against this word proves
/// the job it read is still the posted one and not finished (a part of it is
/// unclaimed), so [`JOB`] still points at its task.
static WORD: AtomicU64 = AtomicU64::new(0);
/// The posted task: a pointer to the caller's `&Task` (a thin pointer to a fat one),
/// valid while the job's epoch is current and unfinished.
static JOB: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
/// Parts of the current job that have finished.
static FINISHED: AtomicUsize = AtomicUsize::new(0);
static PANICKED: AtomicBool = AtomicBool::new(false);
/// Helpers asleep on [`WAKE`] (only they need a notification).
static SLEEPING: AtomicUsize = AtomicUsize::new(0);
/// The poster of the current job is asleep on [`DONE`].
static CALLER_WAITING: AtomicBool = AtomicBool::new(false);
/// Set while a job is posted: one job at a time.
static BUSY: AtomicBool = AtomicBool::new(false);
/// Epoch of the last posted job (written only by the poster, under [`BUSY`]).
static EPOCH: AtomicU32 = AtomicU32::new(0);
/// Guards sleeping and counts the helpers that have started.
static LOCK: Mutex<usize> = Mutex::new(0);
static WAKE: Condvar = Condvar::new();
static DONE: Condvar = Condvar::new();
static START: Once = Once::new();
/// Helper threads actually running (spawning one may fail).
static HELPERS: AtomicUsize = AtomicUsize::new(0);

fn pack(epoch: u32, parts: usize, next: usize) -> u64 {
    (u64::from(epoch) << 32) | ((parts as u64) << 16) | next as u64
}

fn epoch_of(word: u64) -> u32 {
    (word >> 32) as u32
}

/// Claims the next part of the job of `epoch`, if it is still current and has one left.
fn claim(epoch: u32) -> Option<usize> {
    let mut word = WORD.load(Ordering::Acquire);
    loop {
        let parts = ((word >> 16) & 0xFFFF) as usize;
        let next = (word & 0xFFFF) as usize;
        if epoch_of(word) != epoch || next >= parts {
            return None;
        }
        match WORD.compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(next),
            Err(now) => word = now,
        }
    }
}

/// Runs claimed parts of the job of `epoch` until none is left.
fn work(epoch: u32, parts: usize) {
    while let Some(part) = claim(epoch) {
        // SAFETY: the claim succeeded, so the job is current and unfinished (the part
        // just claimed has not run), and `run` keeps its task alive until every part
        // has finished; the pointer was published before the job's word (release,
        // carried through the claims' release sequence to this acquire).
        let task: &Task<'static> =
            unsafe { *(JOB.load(Ordering::Acquire) as *const &Task<'static>) };
        run_part(task, part, parts);
    }
}

/// Runs one claimed part and counts it finished, waking the caller if it sleeps on
/// the last one.
fn run_part(task: &Task<'_>, part: usize, parts: usize) {
    if catch_unwind(AssertUnwindSafe(|| task(part))).is_err() {
        PANICKED.store(true, Ordering::Relaxed);
    }
    // SeqCst pairs with the caller's store of `CALLER_WAITING` and load of `FINISHED`:
    // one of the two sides sees the other.
    if FINISHED.fetch_add(1, Ordering::SeqCst) + 1 == parts && CALLER_WAITING.load(Ordering::SeqCst)
    {
        let _guard = lock();
        DONE.notify_all();
    }
}

/// Spins until `done()` or [`SPIN`] has passed; says whether `done()` became true.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            core::hint::spin_loop();
        }
        if start.elapsed() >= SPIN {
            return done();
        }
    }
}

fn lock() -> MutexGuard<'static, usize> {
    // Nothing runs user code under the lock, so a poisoned lock is still consistent.
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Threads a product may use, the caller included: `DL_NUM_THREADS` if set to a
/// positive number (read once), else the machine's parallelism; capped at
/// [`MAX_THREADS`].
pub(super) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        let asked = std::env::var("DL_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        asked
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, MAX_THREADS)
    })
}

/// Starts the helpers and waits until each is running: whatever a new thread
/// allocates for itself (std's per-thread state) then happens during this first
/// threaded product, not during a later one.
fn start_helpers() {
    let mut spawned = 0;
    for index in 1..threads() {
        let thread = std::thread::Builder::new()
            .name(std::format!("dl-core-gemm-{index}"))
            .spawn(helper);
        if thread.is_err() {
            break;
        }
        spawned += 1;
    }
    let mut ready = lock();
    while *ready < spawned {
        ready = DONE.wait(ready).unwrap_or_else(PoisonError::into_inner);
    }
    HELPERS.store(spawned, Ordering::Release);
}

fn helper() {
    *lock() += 1;
    DONE.notify_all();
    let mut seen = 0;
    loop {
        spin_until(|| epoch_of(WORD.load(Ordering::Acquire)) != seen);
        // SeqCst pairs with the poster's store of `WORD` and load of `SLEEPING`: the
        // poster sees this helper asleep, or this helper sees the new job.
        if epoch_of(WORD.load(Ordering::SeqCst)) == seen {
            let mut guard = lock();
            SLEEPING.fetch_add(1, Ordering::SeqCst);
            while epoch_of(WORD.load(Ordering::SeqCst)) == seen {
                guard = WAKE.wait(guard).unwrap_or_else(PoisonError::into_inner);
            }
            SLEEPING.fetch_sub(1, Ordering::SeqCst);
        }
        let word = WORD.load(Ordering::Acquire);
        seen = epoch_of(word);
        work(seen, ((word >> 16) & 0xFFFF) as usize);
    }
}

/// Runs `task(0)`, ..., `task(parts - 1)` and returns when all are done. The calling
/// thread and the woken helpers claim parts one at a time until none is left, so a
/// helper that is slow to get a core (on a busy machine) leaves its share to the
/// others instead of holding them up. Runs every part on the caller when the pool is
/// busy. A panic in a part is re-raised here once every part has finished.
pub(super) fn run(parts: usize, task: &Task<'_>) {
    if parts > 1 {
        START.call_once(start_helpers);
    }
    if parts <= 1
        || parts > MAX_PARTS
        || HELPERS.load(Ordering::Acquire) == 0
        || BUSY.swap(true, Ordering::Acquire)
    {
        let mut panicked = false;
        for part in 0..parts {
            panicked |= catch_unwind(AssertUnwindSafe(|| task(part))).is_err();
        }
        assert!(!panicked, "dl_core::gemm::run_parts: a part panicked");
        return;
    }
    // Helpers reach the task through this slot, which outlives the job: `run` returns
    // only once every part has finished, and no part can be claimed after that.
    let slot: &Task<'_> = task;
    let epoch = EPOCH.load(Ordering::Relaxed).wrapping_add(1);
    EPOCH.store(epoch, Ordering::Relaxed);
    FINISHED.store(0, Ordering::Relaxed);
    PANICKED.store(false, Ordering::Relaxed);
    JOB.store(&slot as *const &Task<'_> as *mut (), Ordering::Relaxed);
    // Part 0 is the caller's: the same thread then works on the same block of the
    // same operands call after call, which stays in its core's cache (with one
    // helper and two parts, the helper always gets part 1).
    WORD.store(pack(epoch, parts, 1), Ordering::SeqCst);
    if SLEEPING.load(Ordering::SeqCst) > 0 {
        let _guard = lock();
        WAKE.notify_all();
    }
    run_part(task, 0, parts);
    work(epoch, parts);
    let all_done = || FINISHED.load(Ordering::Acquire) == parts;
    if !spin_until(all_done) {
        let mut guard = lock();
        CALLER_WAITING.store(true, Ordering::SeqCst);
        while FINISHED.load(Ordering::SeqCst) < parts {
            guard = DONE.wait(guard).unwrap_or_else(PoisonError::into_inner);
        }
        CALLER_WAITING.store(false, Ordering::SeqCst);
    }
    let panicked = PANICKED.load(Ordering::Relaxed);
    BUSY.store(false, Ordering::Release);
    assert!(!panicked, "dl_core::gemm::run_parts: a part panicked");
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    #[test]
    fn every_part_runs_exactly_once() {
        let hits: [AtomicU64; 5] = core::array::from_fn(|_| AtomicU64::new(0));
        for _ in 0..100 {
            run(5, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        for h in &hits {
            assert_eq!(h.load(Ordering::Relaxed), 100);
        }
    }

    /// Jobs posted from several threads at once (one runs on the pool, the others on
    /// their callers), many times over: every part of every job runs exactly once, and
    /// no helper runs a part of a job after the job returned.
    #[test]
    fn concurrent_callers_each_get_every_part_once() {
        std::thread::scope(|s| {
            for t in 0..3u64 {
                s.spawn(move || {
                    for round in 0..2000u64 {
                        let parts = 2 + ((round + t) % 7) as usize;
                        let hits: [AtomicU64; 9] = core::array::from_fn(|_| AtomicU64::new(0));
                        run(parts, &|i| {
                            hits[i].fetch_add(round + 1, Ordering::Relaxed);
                        });
                        for (i, h) in hits.iter().enumerate() {
                            let want = if i < parts { round + 1 } else { 0 };
                            assert_eq!(h.load(Ordering::Relaxed), want, "part {i} of {parts}");
                        }
                    }
                });
            }
        });
    }

    /// A panic in a part is raised on the caller once the other parts are done, and
    /// the pool keeps working afterwards.
    #[test]
    fn a_panicking_part_is_reraised_after_the_others_finish() {
        let finished = AtomicU64::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            run(4, &|i| {
                if i == 1 {
                    panic!("part 1 fails");
                }
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 3);
        let again = AtomicU64::new(0);
        run(4, &|_| {
            again.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(again.load(Ordering::Relaxed), 4);
    }
}
