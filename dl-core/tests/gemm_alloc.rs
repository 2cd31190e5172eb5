//! gemm allocates nothing once warm: a counting global allocator watches a second
//! round of the products of an MLP 784-128-64-10 training step at batch 64 (forward
//! and both backward products of each layer), after a first round has grown the
//! packing buffers and started the helper threads. The three products of the first
//! layer are large enough to run on the helper threads, the rest on the caller.
//!
//! The count is global (all threads), since a threaded product's helpers must not
//! allocate either; so this file holds a single test, and nothing else runs while it
//! counts.

use dl_core::gemm::gemm;
use dl_core::Scalar;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded to the system allocator with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (trans_a, trans_b, m, n, k) of one step: for each layer `in -> out` at batch 64,
/// forward `Y = X W` (64 x in by in x out), `dW = X^T dY` and `dX = dY W^T`.
const MLP_STEP: [(bool, bool, usize, usize, usize); 9] = [
    (false, false, 64, 128, 784),
    (true, false, 784, 128, 64),
    (false, true, 64, 784, 128),
    (false, false, 64, 64, 128),
    (true, false, 128, 64, 64),
    (false, true, 64, 128, 64),
    (false, false, 64, 10, 64),
    (true, false, 64, 10, 64),
    (false, true, 64, 64, 10),
];

/// Operands for every product, allocated up front.
struct Operands<T> {
    a: Vec<Vec<T>>,
    b: Vec<Vec<T>>,
    c: Vec<Vec<T>>,
}

fn operands<T: Scalar>() -> Operands<T> {
    let fill = |len: usize| -> Vec<T> {
        (0..len)
            .map(|i| T::from_usize_lossy(i % 7) - T::ONE)
            .collect()
    };
    Operands {
        a: MLP_STEP
            .iter()
            .map(|&(_, _, m, _, k)| fill(m * k))
            .collect(),
        b: MLP_STEP
            .iter()
            .map(|&(_, _, _, n, k)| fill(k * n))
            .collect(),
        c: MLP_STEP
            .iter()
            .map(|&(_, _, m, n, _)| fill(m * n))
            .collect(),
    }
}

fn step<T: Scalar>(ops: &mut Operands<T>) {
    for (i, &(ta, tb, m, n, k)) in MLP_STEP.iter().enumerate() {
        // beta = 1 on the weight gradients, as when accumulating over micro-batches.
        let beta = if ta { T::ONE } else { T::ZERO };
        gemm(
            ta,
            tb,
            m,
            n,
            k,
            T::ONE,
            &ops.a[i],
            &ops.b[i],
            beta,
            &mut ops.c[i],
        )
        .unwrap();
    }
}

#[test]
fn mlp_products_allocate_nothing_once_warm() {
    let mut f32s = operands::<f32>();
    let mut f64s = operands::<f64>();
    step(&mut f32s);
    step(&mut f64s);
    for round in 0..3 {
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        step(&mut f32s);
        step(&mut f64s);
        let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
        assert_eq!(allocated, 0, "round {round}: {allocated} allocations");
    }
}
