//! Training gives the same bits on one thread and on two: a small CNN, an LSTM and a
//! transformer encoder block each train a few steps from a fixed seed, and every
//! step's loss and every bit of every parameter must match between the two runs.
//!
//! dl-core's pool reads `DL_NUM_THREADS` once per process, so each test runs its own
//! binary again as a child per thread count ([`same_bits_on_1_and_2_threads`]); the
//! child prints the thread count it ran with, the pool's helper threads that exist,
//! the losses and a digest of each parameter, and the parent compares them. Every size below is above
//! the split thresholds of the kernels it exercises (the comment on each model says
//! which), so the two-thread run really computes in parts.

use dl_autograd::{Graph, Param};
use dl_core::{Rng, Tensor};
use dl_layers::{
    Activation, Conv2dConfig, Ctx, EncoderBlock, Entry, Flatten, LinearConfig, Module, Path,
    Pool2d, RecurrentConfig, Sequential, TransformerConfig,
};
use dl_optim::{AdamConfig, Optimizer, SgdConfig};

/// Set in the child processes.
const CHILD: &str = "DL_OPTIM_THREADS_CHILD";

/// Training steps per model: enough for the optimizers' state (momentum, Adam's
/// moments) to carry any difference of one step into the next.
const STEPS: usize = 3;

/// One parameter after training: dotted name, length, digest of its bits, and
/// whether training changed it.
#[derive(Debug, PartialEq)]
struct Digest {
    name: String,
    len: usize,
    bits: u64,
    moved: bool,
}

/// What a child reports: the thread count dl-core's pool ran with, the pool's helper
/// threads that exist (`None` where `/proc/self/task` cannot be read), and the
/// parameters.
struct Report {
    threads: usize,
    helpers: Option<usize>,
    /// Bits of each step's loss.
    losses: Vec<u32>,
    params: Vec<Digest>,
}

/// FNV-1a over the bits of `values`.
fn fnv(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Every parameter of `model` with its values, in visiting order.
fn params<M: Module<f32>>(model: &M) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    model.visit(&mut Path::new(), &mut |name, e| {
        if let Entry::Param(p) = e {
            out.push((name.to_string(), p.value().data().to_vec()));
        }
    });
    out
}

/// What a training run leaves: each step's loss, and each parameter's digest.
struct Trained {
    losses: Vec<f32>,
    params: Vec<Digest>,
}

/// Trains `model` for [`STEPS`] steps of `opt` on the loss `loss` builds.
fn train<M: Module<f32>>(
    mut model: M,
    opt: &mut dyn Optimizer<f32>,
    loss: impl for<'p> Fn(&mut Graph<'p, f32>, &'p M) -> dl_autograd::Var,
) -> Trained {
    let before = params(&model);
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        let mut g = Graph::new();
        let l = loss(&mut g, &model);
        losses.push(g.value(l).unwrap().data()[0]);
        g.backward(l).unwrap();
        drop(g);
        opt.step(&mut model).unwrap();
        model.for_each_param(&mut |p: &mut Param<f32>| p.zero_grad());
    }
    let params = params(&model)
        .into_iter()
        .zip(before)
        .map(|((name, after), (_, before))| Digest {
            name,
            len: after.len(),
            bits: fnv(&after),
            moved: after != before,
        })
        .collect();
    Trained { losses, params }
}

/// Threads of this process named by dl-core's pool (`dl-core-gemm-<i>`): the pool
/// starts them the first time a job of several parts is posted, so at two threads
/// one exists only if work was handed to the pool. `None` where `/proc/self/task`
/// cannot be read (off Linux), and the parent then skips that check.
fn pool_helpers() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("dl-core-gemm-"))
            .count(),
    )
}

/// Runs this test binary again with only `test` selected, `DL_NUM_THREADS=threads`
/// and [`CHILD`] set, and parses what the child printed.
fn run_child(test: &str, threads: usize) -> Report {
    let text = dl_core::gemm::rerun_test_with_threads(test, threads, &[(CHILD, "1")]);
    let mut report = None;
    let (mut losses, mut params) = (Vec::new(), Vec::new());
    // The harness prints the test's name before the child's first line, on the same
    // line: each record is found by its tag wherever the line starts.
    for line in text.lines() {
        if let Some(at) = line.find("THREADS ") {
            let f: Vec<&str> = line[at..].split_whitespace().collect();
            report = Some((f[1].parse().unwrap(), f[3].parse().ok()));
        } else if let Some(at) = line.find("LOSS ") {
            let f: Vec<&str> = line[at..].split_whitespace().collect();
            losses.push(u32::from_str_radix(f[1], 16).unwrap());
        } else if let Some(at) = line.find("PARAM ") {
            let f: Vec<&str> = line[at..].split_whitespace().collect();
            params.push(Digest {
                name: f[1].to_string(),
                len: f[2].parse().unwrap(),
                bits: u64::from_str_radix(f[3], 16).unwrap(),
                moved: f[4] == "moved",
            });
        }
    }
    let (threads, helpers) =
        report.unwrap_or_else(|| panic!("no report from the child of {test}:\n{text}"));
    Report {
        threads,
        helpers,
        losses,
        params,
    }
}

/// In a child, trains with `train` and prints the report. In the parent, runs
/// `test` (the calling test's full name) as a child at 1 and at 2 threads, checks
/// each ran with that many threads, and requires every parameter of `model` to
/// have the same bits in both.
fn same_bits_on_1_and_2_threads(model: &str, test: &str, train: fn() -> Trained) {
    if std::env::var_os(CHILD).is_some() {
        let trained = train();
        // A leading newline puts the report after the harness's `test ... ` prefix.
        println!();
        let helpers = pool_helpers().map_or("-".to_string(), |n| n.to_string());
        println!("THREADS {} HELPERS {helpers}", dl_core::gemm::num_threads());
        for l in &trained.losses {
            println!("LOSS {:08x}", l.to_bits());
        }
        for p in &trained.params {
            let moved = if p.moved { "moved" } else { "same" };
            println!("PARAM {} {} {:016x} {moved}", p.name, p.len, p.bits);
        }
        return;
    }
    let one = run_child(test, 1);
    let two = run_child(test, 2);
    // The children really ran on different thread counts (the variable is read once
    // per process, and a machine with one CPU still gets two threads when asked).
    assert_eq!(
        one.threads, 1,
        "{model}: the child ran with DL_NUM_THREADS=1"
    );
    assert_eq!(
        two.threads, 2,
        "{model}: the child ran with DL_NUM_THREADS=2"
    );
    // The pool starts its helper the first time a job of several parts is posted:
    // at two threads it must exist (work was handed to it), at one it never starts.
    if let (Some(h1), Some(h2)) = (one.helpers, two.helpers) {
        assert_eq!(h1, 0, "{model}: a pool helper started on one thread");
        assert_eq!(h2, 1, "{model}: nothing was handed to a second thread");
    }
    assert!(!one.params.is_empty(), "{model}: no parameters reported");
    assert_eq!(one.losses.len(), STEPS, "{model}: losses reported");
    // Training changed every parameter, so every comparison below covers the
    // forward, backward and update paths that reach it.
    for p in &one.params {
        assert!(p.moved, "{model}: training left `{}` unchanged", p.name);
    }
    let names = |r: &Report| r.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&one), names(&two), "{model}: parameter lists differ");
    let differ: Vec<&str> = one
        .params
        .iter()
        .zip(&two.params)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.name.as_str())
        .collect();
    let loss_step = one.losses.iter().zip(&two.losses).position(|(a, b)| a != b);
    let loss_step = loss_step.map_or("none".to_string(), |s| s.to_string());
    // Exact, no tolerance: every split (gemm blocks of C, batch rows, elementwise
    // blocks, the summation tree) is built to compute each value with the same
    // operations in the same order as one thread does, so any difference is a bug.
    assert!(
        differ.is_empty() && loss_step == "none",
        "{model}: training differs between DL_NUM_THREADS=1 and DL_NUM_THREADS=2: \
         first differing parameter after {STEPS} steps: {} ({} of {} differ: {differ:?}); \
         first step whose loss differs: {loss_step}",
        differ
            .first()
            .map_or("none".to_string(), |n| format!("`{n}`")),
        differ.len(),
        one.params.len(),
    );
}

/// Batch 64 of one-channel 16x16 images, integer labels 0..10.
fn cnn_train() -> Trained {
    let mut rng = Rng::seed_from_u64(1);
    // Split at two threads, on one part at one thread: the direct convolutions'
    // forward and input-gradient passes (the batch in 8 blocks, whatever the size);
    // the second convolution's weight gradient (2 blocks of its 24 kernel rows, or
    // of its 16 output channels without AVX-512); ReLU on the first convolution's
    // 131072 outputs, forward and backward (blocks from 2^15 values); the three
    // products of the 1024 -> 64 layer (64 x 64 x 1024, 64 x 1024 x 64 and
    // 64 x 1024 x 64: 2^22 multiply-adds, the gemm splits from 2^20); and Adam's
    // update of its 65536 weights (blocks from 2^15).
    let model: Sequential<f32> = Sequential::new()
        .push(
            Conv2dConfig::new(1, 8, 3)
                .padding(1)
                .init(&mut rng)
                .unwrap(),
        )
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(
            Conv2dConfig::new(8, 16, 3)
                .padding(1)
                .init(&mut rng)
                .unwrap(),
        )
        .push(Activation::Relu)
        .push(Flatten)
        .push(LinearConfig::new(16 * 8 * 8, 64).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(64, 10).init(&mut rng).unwrap());
    let x = Tensor::<f32>::rand_uniform(&[64, 1, 16, 16], 0.0, 1.0, &mut rng).unwrap();
    let y: Vec<usize> = (0..64).map(|i| (i * 7) % 10).collect();
    let mut opt = AdamConfig::new(1e-2).build().unwrap();
    train(model, &mut opt, |g, m| {
        let xv = g.input(&x);
        let logits = m.forward(g, xv, &mut Ctx::train(0)).unwrap();
        g.cross_entropy(logits, &y).unwrap()
    })
}

#[test]
fn cnn_trains_to_the_same_bits_on_1_and_2_threads() {
    same_bits_on_1_and_2_threads(
        "cnn",
        "cnn_trains_to_the_same_bits_on_1_and_2_threads",
        cnn_train,
    );
}

/// An LSTM (input 32, hidden 32) on batch 32 of 16 steps, MSE against a fixed
/// target, SGD with momentum.
fn lstm_train() -> Trained {
    let mut rng = Rng::seed_from_u64(2);
    // Split at two threads, on one part at one thread: the fused recurrence, forward
    // and backward, in 2 blocks of 16 batch rows (dl-autograd splits from 4 rows a
    // part and 2^20 multiply-adds; here 32 x (4 * 32) x 32 x 16 = 2^21 forward, 2^22
    // backward); the input projection (512 x 128 x 32) and both weight gradients
    // (128 x 32 x 512), 2^21 multiply-adds each (the gemm splits from 2^20). SGD's
    // update runs on one thread.
    let model = RecurrentConfig::lstm(32, 32).init::<f32>(&mut rng).unwrap();
    let x = Tensor::<f32>::rand_normal(&[32, 16, 32], 0.0, 1.0, &mut rng).unwrap();
    let t = Tensor::<f32>::rand_normal(&[32, 16, 32], 0.0, 0.5, &mut rng).unwrap();
    let mut opt = SgdConfig::new(0.1).momentum(0.9).build().unwrap();
    train(model, &mut opt, |g, m| {
        let xv = g.input(&x);
        let y = m.forward(g, xv, &mut Ctx::train(0)).unwrap();
        let tv = g.input(&t);
        g.mse(y, tv).unwrap()
    })
}

#[test]
fn lstm_trains_to_the_same_bits_on_1_and_2_threads() {
    same_bits_on_1_and_2_threads(
        "lstm",
        "lstm_trains_to_the_same_bits_on_1_and_2_threads",
        lstm_train,
    );
}

/// A pre-norm encoder block (width 64, 4 heads, feed-forward 256, no dropout) on
/// batch 32 of 48 tokens, mean squared error against a fixed target, Adam.
fn encoder_train() -> Trained {
    let mut rng = Rng::seed_from_u64(3);
    // Split at two threads, on one part at one thread: the fused self-attention,
    // forward and backward, in 2 blocks of 16 batch rows (from 2^20 multiply-adds;
    // here 32 x 4 heads x 2 x 48 x 48 x 16, about 2^23.2, forward); all 12 products
    // of the four projections on 1536 rows (64 -> 192, 64 -> 64, 64 -> 256,
    // 256 -> 64, each with its two gradients: 2^22.6 multiply-adds at least); the
    // residual adds and ReLU (98304 and 393216 values). Adam's update runs on one
    // thread (the largest parameter has 16384 values, below 2^15). No dropout: with
    // it the block composes attention from small products instead of the fused op.
    let cfg = TransformerConfig::new(64, 4, 256, 1);
    let model = EncoderBlock::<f32>::new(&cfg, &mut rng).unwrap();
    let x = Tensor::<f32>::rand_normal(&[32, 48, 64], 0.0, 1.0, &mut rng).unwrap();
    let t = Tensor::<f32>::rand_normal(&[32, 48, 64], 0.0, 1.0, &mut rng).unwrap();
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    train(model, &mut opt, |g, m| {
        let xv = g.input(&x);
        let y = m.forward(g, xv, &mut Ctx::train(0)).unwrap();
        let tv = g.input(&t);
        // The mean of the squares rather than `mse`: `mean_all` sums the 98304
        // values in two subtrees at two threads (from 2^16 values), which only the
        // loss shows (the gradient of a mean does not depend on the sum).
        let d = g.sub(y, tv).unwrap();
        let d2 = g.square(d).unwrap();
        g.mean_all(d2).unwrap()
    })
}

#[test]
fn encoder_block_trains_to_the_same_bits_on_1_and_2_threads() {
    same_bits_on_1_and_2_threads(
        "encoder block",
        "encoder_block_trains_to_the_same_bits_on_1_and_2_threads",
        encoder_train,
    );
}
