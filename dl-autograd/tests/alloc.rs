//! A training step on a reused tape allocates nothing after the first step: a
//! counting global allocator watches steps 2..N of forward + backward + a
//! gradient-descent update (dropout and layer norm included, so ops that save data
//! for backward are covered too). dl-core's gemm keeps its packing buffers between
//! calls, so the matrix products of the MLP step allocate nothing either.

use dl_autograd::{Affine, Graph, Param, Tape};
use dl_core::{Rng, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread (tests run on parallel threads, so a global
    /// count would mix them up).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot may be gone while the thread shuts down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded to the system allocator with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn training_step_allocates_nothing_after_the_first() {
    let mut rng = Rng::seed_from_u64(5);
    let x = Tensor::<f32>::rand_normal(&[16, 8], 0.0, 1.0, &mut rng).unwrap();
    let labels: Vec<usize> = (0..16).map(|i| i % 3).collect();
    let mut params = [
        Param::new(Tensor::rand_normal(&[8, 12], 0.0, 0.3, &mut rng).unwrap()),
        Param::new(Tensor::zeros(&[12]).unwrap()),
        Param::new(Tensor::ones(&[12]).unwrap()),
        Param::new(Tensor::zeros(&[12]).unwrap()),
        Param::new(Tensor::rand_normal(&[12, 3], 0.0, 0.3, &mut rng).unwrap()),
    ];
    let mut tape = Tape::new();
    let mut per_step = Vec::new();
    for _ in 0..5 {
        let before = allocations();
        let mut g = Graph::from_tape(tape);
        let xv = g.input_ref(&x);
        let w1 = g.param(&params[0]);
        let b1 = g.param(&params[1]);
        let gamma = g.param(&params[2]);
        let beta = g.param(&params[3]);
        let w2 = g.param(&params[4]);
        let h = g.matmul(xv, w1).unwrap();
        let h = g.add(h, b1).unwrap();
        let h = g.layer_norm(h, Some(Affine { gamma, beta }), 1e-5).unwrap();
        let h = g.gelu(h).unwrap();
        let h = g.dropout(h, 0.2, true, &mut rng).unwrap();
        let logits = g.matmul(h, w2).unwrap();
        let loss = g.cross_entropy(logits, &labels).unwrap();
        g.backward(loss).unwrap();
        tape = g.into_tape();
        for p in params.iter_mut() {
            let (v, gr) = p.value_and_grad_mut();
            v.iter_mut().zip(gr.iter()).for_each(|(v, g)| *v -= 0.1 * g);
            p.zero_grad();
        }
        per_step.push(allocations() - before);
    }
    assert!(per_step[0] > 0);
    // Two gemms forward (x W1, h W2) and three backward (dW1, dW2, dh) among them.
    assert_eq!(
        &per_step[1..],
        &[0, 0, 0, 0],
        "allocations per step: {per_step:?}"
    );
}

#[test]
fn gemm_free_step_allocates_nothing_after_the_first() {
    let mut rng = Rng::seed_from_u64(6);
    let x = Tensor::<f32>::rand_normal(&[16, 8], 0.0, 1.0, &mut rng).unwrap();
    let target = Tensor::<f32>::rand_normal(&[16], 0.0, 1.0, &mut rng).unwrap();
    let mut params = [
        Param::new(Tensor::rand_normal(&[8], 0.0, 0.3, &mut rng).unwrap()),
        Param::new(Tensor::ones(&[8]).unwrap()),
        Param::new(Tensor::zeros(&[8]).unwrap()),
    ];
    let mut tape = Tape::new();
    let mut per_step = Vec::new();
    for _ in 0..5 {
        let before = allocations();
        let mut g = Graph::from_tape(tape);
        let xv = g.input_ref(&x);
        let t = g.input_ref(&target);
        let (w, gamma, beta) = (
            g.param(&params[0]),
            g.param(&params[1]),
            g.param(&params[2]),
        );
        let h = g.mul(xv, w).unwrap();
        let h = g.layer_norm(h, Some(Affine { gamma, beta }), 1e-5).unwrap();
        let h = g.tanh(h).unwrap();
        let h = g.dropout(h, 0.1, true, &mut rng).unwrap();
        let cols = g.slice(h, 1, 0, 4).unwrap();
        let both = g.concat(&[cols, cols], 1).unwrap();
        let y = g.sum(both, 1).unwrap();
        let loss = g.huber(y, t, 1.0).unwrap();
        g.backward(loss).unwrap();
        tape = g.into_tape();
        for p in params.iter_mut() {
            let (v, gr) = p.value_and_grad_mut();
            v.iter_mut().zip(gr.iter()).for_each(|(v, g)| *v -= 0.1 * g);
            p.zero_grad();
        }
        per_step.push(allocations() - before);
    }
    assert!(per_step[0] > 0);
    assert_eq!(
        &per_step[1..],
        &[0, 0, 0, 0],
        "allocations per step: {per_step:?}"
    );
}
