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
//! jobs. Here posting a job is a mutex, a counter and a pointer; std's `Mutex` and
//! `Condvar` are futex-based and allocate nothing.
//!
//! One product runs on the pool at a time. A caller that finds it busy (another
//! thread's product, e.g. from batch-parallel convolution) runs its parts itself.
//!
//! Waking a sleeping thread through the futex costs several microseconds (more in a
//! virtual machine), about as much as a small product's part, and a training step
//! posts a job every few tens of microseconds. So a helper that finishes a job spins
//! for up to [`SPIN`] watching for the next one before it sleeps, the caller spins the
//! same way for the helpers to finish their parts, and nobody calls into the kernel
//! to wake a thread that is not asleep (as OpenMP runtimes do, with a shorter spin).

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, Once, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long an idle helper (or a caller waiting for helpers) spins before sleeping.
const SPIN: Duration = Duration::from_micros(200);

/// Upper bound on threads per product (caller included).
pub(super) const MAX_THREADS: usize = 16;

/// One part of a product; the argument is the part index.
type Task<'a> = dyn Fn(usize) + Sync + 'a;

/// The posted task with its lifetime erased.
#[derive(Clone, Copy)]
struct Job(*const Task<'static>);

// SAFETY: the task is `Sync`, so calling it from another thread through a shared
// pointer is allowed; `run` keeps it alive until no part of it is running or can
// still be claimed (claims happen under the lock, against the current job).
unsafe impl Send for Job {}

struct State {
    /// Bumped for every posted job, so a sleeping helper can tell a new job from a
    /// spurious wake-up.
    epoch: u64,
    job: Option<Job>,
    parts: usize,
    /// The next part nobody has claimed yet.
    next: usize,
    /// Parts claimed and not yet finished.
    running: usize,
    panicked: bool,
    /// Helper threads that have started and are about to wait for work.
    ready: usize,
    /// Helpers asleep on `wake` (only they need a notification).
    sleeping: usize,
    /// The poster of the current job is asleep on `done`.
    caller_waiting: bool,
}

impl State {
    /// Claims the next part of the current job, if any is left.
    fn claim(&mut self) -> Option<(Job, usize)> {
        let job = self.job?;
        (self.next < self.parts).then(|| {
            self.next += 1;
            self.running += 1;
            RUNNING.store(self.running, Ordering::Release);
            (job, self.next - 1)
        })
    }
}

struct Pool {
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
    busy: AtomicBool,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        epoch: 0,
        job: None,
        parts: 0,
        next: 0,
        running: 0,
        panicked: false,
        ready: 0,
        sleeping: 0,
        caller_waiting: false,
    }),
    wake: Condvar::new(),
    done: Condvar::new(),
    busy: AtomicBool::new(false),
};
static START: Once = Once::new();
/// Helper threads actually running (spawning one may fail).
static HELPERS: AtomicUsize = AtomicUsize::new(0);
/// Mirrors of `State::epoch` and `State::running` (written under the lock), read by
/// spinning threads without taking it.
static EPOCH: AtomicU64 = AtomicU64::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(0);

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

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Tasks run outside the lock and panics in them are caught, so a poisoned lock
    // still holds a consistent state.
    m.lock().unwrap_or_else(PoisonError::into_inner)
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
    let mut state = lock(&POOL.state);
    while state.ready < spawned {
        state = POOL
            .done
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
    }
    HELPERS.store(spawned, Ordering::Release);
}

/// Claims and runs parts of the current job until none is left; returns with the
/// lock held.
fn work(mut state: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    while let Some((job, part)) = state.claim() {
        drop(state);
        // SAFETY: the part was claimed under the lock from the job `run` posted, and
        // `run` does not return (ending the task's lifetime) while `running > 0`.
        let task = unsafe { &*job.0 };
        let ok = catch_unwind(AssertUnwindSafe(|| task(part))).is_ok();
        state = lock(&POOL.state);
        state.panicked |= !ok;
        state.running -= 1;
        RUNNING.store(state.running, Ordering::Release);
        if state.running == 0 && state.next >= state.parts && state.caller_waiting {
            POOL.done.notify_all();
        }
    }
    state
}

fn helper() {
    lock(&POOL.state).ready += 1;
    POOL.done.notify_all();
    let mut seen = 0;
    loop {
        spin_until(|| EPOCH.load(Ordering::Acquire) != seen);
        let mut state = lock(&POOL.state);
        while state.epoch == seen {
            state.sleeping += 1;
            state = POOL
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.sleeping -= 1;
        }
        seen = state.epoch;
        drop(work(state));
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
    if parts <= 1 || HELPERS.load(Ordering::Acquire) == 0 || POOL.busy.swap(true, Ordering::Acquire)
    {
        (0..parts).for_each(task);
        return;
    }
    let erased: *const Task<'_> = task;
    // SAFETY: only the trait object's lifetime bound changes (same pointer and
    // vtable); the pointer is dereferenced only for claimed parts, and this call
    // waits for all of them.
    let erased = unsafe { core::mem::transmute::<*const Task<'_>, *const Task<'static>>(erased) };
    let sleeping = {
        let mut state = lock(&POOL.state);
        state.epoch += 1;
        state.job = Some(Job(erased));
        state.parts = parts;
        // Part 0 is the caller's: the same thread then works on the same block of
        // the same operands call after call, which stays in its core's cache (with
        // one helper, the helper always gets part 1).
        state.next = 1;
        state.running = 1;
        RUNNING.store(1, Ordering::Release);
        state.panicked = false;
        EPOCH.store(state.epoch, Ordering::Release);
        state.sleeping
    };
    // A helper counted as awake either spins (and sees `EPOCH`) or has still to take
    // the lock, where it finds the new epoch before it would sleep.
    if sleeping > 0 {
        POOL.wake.notify_all();
    }
    let ok = catch_unwind(AssertUnwindSafe(|| task(0))).is_ok();
    let mut state = lock(&POOL.state);
    state.panicked |= !ok;
    state.running -= 1;
    RUNNING.store(state.running, Ordering::Release);
    let mut state = work(state);
    if state.running > 0 {
        drop(state);
        spin_until(|| RUNNING.load(Ordering::Acquire) == 0);
        state = lock(&POOL.state);
        while state.running > 0 {
            state.caller_waiting = true;
            state = POOL
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.caller_waiting = false;
    }
    state.job = None;
    let panicked = state.panicked;
    drop(state);
    POOL.busy.store(false, Ordering::Release);
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
}
