//! Train a multilayer perceptron on MNIST (IDX files) or the bundled 8x8 digits.
//!
//! ```text
//! cargo run --release -p dl-optim --example mlp                  # ../shared/data/mnist if present, else digits
//! cargo run --release -p dl-optim --example mlp -- digits        # the bundled 8x8 digits
//! cargo run --release -p dl-optim --example mlp -- path/to/mnist [epochs]
//! ```
//!
//! MNIST: 784-256-128-10 with ReLU and dropout 0.2, 20 epochs. Digits: 64-256-128-10
//! with dropout 0.5, 100 epochs, standardized pixels, a stratified 70/30 split.
//! Both: Adam (lr 1e-3, cosine decay to 1e-5), batch 64. Writes `mlp_curves.svg`.

use dl_core::Rng;
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_layers::{Activation, Dropout, LinearConfig, Sequential};
use dl_optim::trainer::{evaluate, fit, LrPolicy, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay};
use std::sync::Arc;

type Data = Dataset<f32, usize>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let epochs_arg = std::env::args()
        .nth(2)
        .map(|e| e.parse::<usize>())
        .transpose()?;
    let default_mnist = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist");
    let (name, train, test, widths, dropout, epochs) = match arg.as_deref() {
        Some("digits") => digits()?,
        Some(dir) => mnist(dir)?,
        None if std::path::Path::new(default_mnist).is_dir() => mnist(default_mnist)?,
        None => digits()?,
    };
    let epochs = epochs_arg.unwrap_or(epochs);
    println!(
        "{name}: {} training and {} test samples of {} features",
        train.n_samples(),
        test.n_samples(),
        train.n_features()
    );
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new();
    for w in widths.windows(2).take(widths.len() - 2) {
        model = model
            .push(LinearConfig::new(w[0], w[1]).init(&mut rng)?)
            .push(Activation::Relu)
            .push(Dropout::new(dropout)?);
    }
    let last = &widths[widths.len() - 2..];
    model = model.push(LinearConfig::new(last[0], last[1]).init(&mut rng)?);
    let lr = 1e-3;
    let mut opt = AdamConfig::new(lr).build()?;
    let mut cfg = TrainerConfig {
        epochs,
        batch_size: 64,
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(lr, 1e-5, epochs)?)),
        curves_svg: Some("mlp_curves.svg".into()),
        ..Default::default()
    };
    let start = std::time::Instant::now();
    let history = fit(&mut cfg, &mut model, &mut opt, Arc::new(train), Some(&test))?;
    let (_, acc) = evaluate(&model, &test, &[], 256)?;
    println!(
        "{name} MLP {widths:?}: test accuracy {:.2}% after {} epochs in {:.1}s (curves: mlp_curves.svg)",
        100.0 * acc,
        history.epochs.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Name, training set, test set, layer widths, dropout, epochs.
type Loaded = (&'static str, Data, Data, Vec<usize>, f64, usize);

fn mnist(dir: &str) -> Result<Loaded, Box<dyn std::error::Error>> {
    let tt = dl_data::io::mnist(dir)?;
    Ok((
        "MNIST",
        tt.train.to_dataset(true)?,
        tt.test.to_dataset(true)?,
        vec![784, 256, 128, 10],
        0.2,
        20,
    ))
}

fn digits() -> Result<Loaded, Box<dyn std::error::Error>> {
    let all: Data = dl_data::datasets::digits()?;
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())?;
    let (mut train, mut test) = (all.subset(&split.train)?, all.subset(&split.test)?);
    // Standardize each pixel with the training set's mean and deviation.
    let scaler = dl_data::preprocess::Standardize.fit(train.x())?;
    scaler.transform_in_place(train.features_mut())?;
    scaler.transform_in_place(test.features_mut())?;
    Ok(("digits", train, test, vec![64, 256, 128, 10], 0.5, 100))
}
