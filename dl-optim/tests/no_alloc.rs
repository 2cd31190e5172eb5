//! A training step allocates nothing after the first batch: forward through
//! `Sequential`, softmax cross-entropy, backward on a reused tape, Adam, zero_grad.
//! Counted with a global allocator that counts every allocation on every thread.

use dl_autograd::{Graph, Param, ParamSet, Tape};
use dl_core::{Rng, Tensor};
use dl_layers::{Activation, Ctx, LinearConfig, Module, Sequential};
use dl_optim::{AdamConfig, Optimizer};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn step(
    model: &mut Sequential<f32>,
    opt: &mut dyn Optimizer<f32>,
    tape: &mut Option<Tape<f32>>,
    x: &[f32],
    y: &[usize],
    ctx: &mut Ctx,
) -> f32 {
    let mut g = Graph::from_tape(tape.take().unwrap_or_default());
    let xv = g.input_slice(x, &[64, 784]).unwrap();
    let logits = model.forward(&mut g, xv, ctx).unwrap();
    let loss = g.cross_entropy(logits, y).unwrap();
    let value = g.value(loss).unwrap().data()[0];
    g.backward(loss).unwrap();
    *tape = Some(g.into_tape());
    opt.step(model).unwrap();
    model.for_each_param(&mut |p: &mut Param<f32>| p.zero_grad());
    value
}

#[test]
fn mlp_training_step_allocates_nothing_after_the_first_batch() {
    let mut rng = Rng::seed_from_u64(0);
    let mut model: Sequential<f32> = Sequential::new()
        .push(LinearConfig::new(784, 128).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(128, 64).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(64, 10).init(&mut rng).unwrap());
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let x = Tensor::<f32>::rand_uniform(&[64, 784], 0.0, 1.0, &mut rng).unwrap();
    let y: Vec<usize> = (0..64).map(|i| i % 10).collect();
    let mut ctx = Ctx::train(0);
    let mut tape = None;
    let first = step(&mut model, &mut opt, &mut tape, x.data(), &y, &mut ctx);
    step(&mut model, &mut opt, &mut tape, x.data(), &y, &mut ctx);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut last = first;
    for _ in 0..20 {
        last = step(&mut model, &mut opt, &mut tape, x.data(), &y, &mut ctx);
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(
        allocations, 0,
        "20 training steps allocated {allocations} times"
    );
    // The steps did train: the loss on the fixed batch fell.
    assert!(last < first, "loss {first} -> {last}");
}
