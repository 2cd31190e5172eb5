//! Train LeNet-5 (a small convolutional network) on MNIST in IDX format.
//!
//! ```text
//! cargo run --release -p dl-optim --example cnn                 # ../shared/data/mnist, else mnist5k
//! cargo run --release -p dl-optim --example cnn -- path/to/mnist [epochs]
//! ```
//!
//! LeNet-5 as usually modernized: conv 5x5 (6, padding 2) - ReLU - max-pool 2 -
//! conv 5x5 (16) - ReLU - max-pool 2 - 400-120-84-10 with ReLU; Adam (lr 1e-3,
//! cosine decay), batch 64. Writes `cnn_curves.svg`.

use dl_core::Rng;
use dl_layers::{Activation, Conv2dConfig, Flatten, LinearConfig, Pool2d, Sequential};
use dl_optim::trainer::{evaluate, fit, LrPolicy, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay};
use std::sync::Arc;

/// LeNet-5 for 1x28x28 inputs.
pub fn lenet5(rng: &mut Rng) -> Result<Sequential<f32>, dl_layers::Error> {
    Ok(Sequential::new()
        .push(Conv2dConfig::new(1, 6, 5).padding(2).init(rng)?)
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2)?)
        .push(Conv2dConfig::new(6, 16, 5).init(rng)?)
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2)?)
        .push(Flatten)
        .push(LinearConfig::new(400, 120).init(rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(120, 84).init(rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(84, 10).init(rng)?))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data");
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        let full = format!("{shared}/mnist");
        if std::path::Path::new(&full).is_dir() {
            full
        } else {
            format!("{shared}/mnist5k")
        }
    });
    let epochs = std::env::args()
        .nth(2)
        .map(|e| e.parse())
        .transpose()?
        .unwrap_or(15);
    let tt = dl_data::io::mnist(&dir)?;
    let (train, test) = (
        tt.train.to_dataset::<f32>(true)?,
        tt.test.to_dataset::<f32>(true)?,
    );
    println!(
        "{dir}: {} training, {} test images",
        train.n_samples(),
        test.n_samples()
    );

    let mut model = lenet5(&mut Rng::seed_from_u64(0))?;
    let mut opt = AdamConfig::new(1e-3).build()?;
    let mut cfg = TrainerConfig {
        epochs,
        batch_size: 64,
        sample_dims: vec![1, 28, 28],
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(1e-3, 1e-5, epochs)?)),
        curves_svg: Some("cnn_curves.svg".into()),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    fit(&mut cfg, &mut model, &mut opt, Arc::new(train), Some(&test))?;
    let (_, acc) = evaluate(&model, &test, &[1, 28, 28], 256)?;
    println!(
        "LeNet-5: test accuracy {:.2}% after {epochs} epochs in {:.1}s (curves: cnn_curves.svg)",
        100.0 * acc,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
