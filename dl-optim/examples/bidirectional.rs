//! A task that needs the future: bits `x_1 .. x_T` in, and at every step the label
//! `y_t = x_{t-1} + x_{t+1}` (0, 1 or 2; bits outside the sequence count as 0). A
//! left-to-right RNN knows `x_{t-1}` but must guess `x_{t+1}`: at best 50% per step
//! in the interior. A bidirectional RNN (`y_t = f([h_fwd_t; h_bwd_t])`) sees both.
//!
//! Sequences have random lengths 10..=20 in one padded batch: the layers take
//! `lengths` (state frozen past the end, the backward half starting at each
//! sequence's own end) and the loss counts valid steps only. Vanilla tanh RNNs:
//! unidirectional with 32 units vs bidirectional with 16 + 16; Adam lr 1e-2, 600
//! steps of batch 32, fixed seeds. Prints per-step test accuracy. The models and
//! training live in `shared/bidirectional.rs`, shared with the release-mode test in
//! `tests/accuracy.rs`.
//!
//! ```text
//! cargo run --release -p dl-optim --example bidirectional
//! ```

#[path = "shared/bidirectional.rs"]
mod bidirectional;

use bidirectional::{bidirectional, train, unidirectional, Report};

/// Prints one model's line of the results.
fn print(name: &str, r: &Report) {
    println!(
        "{name:<32} {:>5} parameters   per-step test accuracy {:.2}% ({} steps)",
        r.params,
        100.0 * r.correct as f64 / r.test_steps as f64,
        r.test_steps
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print("unidirectional RNN (32)", &train(unidirectional(0)?, 0)?);
    print("bidirectional RNN (16 + 16)", &train(bidirectional(0)?, 0)?);
    Ok(())
}
