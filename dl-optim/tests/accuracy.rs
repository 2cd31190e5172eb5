//! Real accuracy on real data, fixed seeds. The training tests are ignored unless
//! asked for, and need a release build:
//! `cargo test --release -p dl-optim --test accuracy -- --include-ignored` (which
//! `cargo xtask test` runs). The MNIST tests also need the full data set in
//! `../shared/data/mnist`: without it they are skipped with a message, or fail under
//! `DL_REQUIRE_DATA=1`.

use dl_core::Rng;
use dl_data::split::SplitConfig;
use dl_data::Dataset;
use dl_layers::{Activation, Conv2dConfig, Dropout, Flatten, LinearConfig, Pool2d, Sequential};
use dl_optim::trainer::{evaluate, fit, LrPolicy, Progress, TrainerConfig};
use dl_optim::{AdamConfig, CosineDecay, Error, Penalty, SgdConfig};
use std::sync::Arc;

type Data = Dataset<f32, usize>;

fn mlp(widths: &[usize], dropout: f64, seed: u64) -> Sequential<f32> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut net = Sequential::new();
    for (i, w) in widths.windows(2).enumerate() {
        net = net.push(LinearConfig::new(w[0], w[1]).init(&mut rng).unwrap());
        if i + 2 < widths.len() {
            net = net.push(Activation::Relu);
            if dropout > 0.0 {
                net = net.push(Dropout::new(dropout).unwrap());
            }
        }
    }
    net
}

/// Digits, stratified 70/30 split (seed 0), pixels standardized on the training part.
fn digits_split() -> (Data, Data) {
    let all: Data = dl_data::datasets::digits().unwrap();
    let split = SplitConfig {
        validation: 0.0,
        test: 0.3,
        shuffle_seed: Some(0),
    }
    .split_stratified(all.targets())
    .unwrap();
    let (mut train, mut test) = (
        all.subset(&split.train).unwrap(),
        all.subset(&split.test).unwrap(),
    );
    let scaler = dl_data::preprocess::Standardize.fit(train.x()).unwrap();
    scaler.transform_in_place(train.features_mut()).unwrap();
    scaler.transform_in_place(test.features_mut()).unwrap();
    (train, test)
}

fn quiet(epochs: usize, lr: f64) -> TrainerConfig {
    TrainerConfig {
        epochs,
        batch_size: 64,
        lr_policy: LrPolicy::Schedule(Box::new(CosineDecay::new(lr, 1e-5, epochs).unwrap())),
        progress: Progress::Quiet,
        ..Default::default()
    }
}

/// The mlp example's digits configuration: 64-256-128-10, dropout 0.5, Adam, 100 epochs.
#[test]
#[ignore = "needs --release"]
fn mlp_on_digits_reaches_97_percent() {
    let (train, test) = digits_split();
    let mut model = mlp(&[64, 256, 128, 10], 0.5, 0);
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    fit(
        &mut quiet(100, 1e-3),
        &mut model,
        &mut opt,
        Arc::new(train),
        None,
    )
    .unwrap();
    let (_, acc) = evaluate(&model, &test, &[], 256).unwrap();
    eprintln!("digits MLP test accuracy: {:.2}%", 100.0 * acc);
    assert!(acc >= 0.97, "digits MLP test accuracy {acc}");
}

/// Train/validation gap of a wide MLP on 250 training digits: dropout and L2 each
/// must shrink the gap (eval-mode training accuracy minus validation accuracy, and
/// validation minus training loss) compared with the same net unregularized.
#[test]
#[ignore = "needs --release"]
fn dropout_and_l2_shrink_the_generalization_gap() {
    let (train, val) = digits_split();
    let small = train.subset(&(0..250).collect::<Vec<_>>()).unwrap();
    let small = Arc::new(small);
    let gap = |dropout: f64, penalty: Option<Penalty>| -> (f64, f64) {
        let mut model = mlp(&[64, 512, 512, 10], dropout, 1);
        let mut opt = AdamConfig::new(1e-3).build().unwrap();
        let mut cfg = quiet(150, 1e-3);
        cfg.weight_penalty = penalty;
        fit(&mut cfg, &mut model, &mut opt, small.clone(), None).unwrap();
        let (tl, ta) = evaluate(&model, &small, &[], 256).unwrap();
        let (vl, va) = evaluate(&model, &val, &[], 256).unwrap();
        (ta - va, vl - tl)
    };
    let plain = gap(0.0, None);
    let dropout = gap(0.5, None);
    let l2 = gap(0.0, Some(Penalty::l2(1e-2)));
    eprintln!("gap (accuracy, loss): none {plain:?}, dropout 0.5 {dropout:?}, L2 1e-2 {l2:?}");
    assert!(
        dropout.1 < plain.1 && l2.1 < plain.1,
        "loss gaps: {plain:?} {dropout:?} {l2:?}"
    );
    assert!(
        dropout.0 <= plain.0 && l2.0 <= plain.0,
        "accuracy gaps: {plain:?} {dropout:?} {l2:?}"
    );
}

#[test]
fn a_diverging_run_stops_with_an_error() {
    let (train, _) = digits_split();
    let mut model = mlp(&[64, 32, 10], 0.0, 2);
    let mut opt = SgdConfig::new(1e6).build().unwrap();
    let mut cfg = quiet(5, 1e6);
    cfg.lr_policy = LrPolicy::Constant;
    let err = fit(&mut cfg, &mut model, &mut opt, Arc::new(train), None).unwrap_err();
    assert!(matches!(err, Error::Diverged { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("training diverged: the loss is"),
        "{err}"
    );
}

fn full_mnist() -> Option<(Data, Data)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/mnist");
    let dir = dl_data::io::data_dir_or_skip(dir).expect("DL_REQUIRE_DATA=1")?;
    let tt = dl_data::io::mnist(dir).unwrap();
    Some((
        tt.train.to_dataset(true).unwrap(),
        tt.test.to_dataset(true).unwrap(),
    ))
}

/// The mlp example's MNIST configuration: 784-256-128-10, dropout 0.2, 20 epochs.
#[test]
#[ignore = "needs --release and ../shared/data/mnist"]
fn mlp_on_full_mnist_reaches_98_percent() {
    let Some((train, test)) = full_mnist() else {
        return;
    };
    let mut model = mlp(&[784, 256, 128, 10], 0.2, 0);
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    fit(
        &mut quiet(20, 1e-3),
        &mut model,
        &mut opt,
        Arc::new(train),
        None,
    )
    .unwrap();
    let (_, acc) = evaluate(&model, &test, &[], 256).unwrap();
    assert!(acc >= 0.98, "MNIST MLP test accuracy {acc}");
}

/// The cnn example's configuration: LeNet-5, 15 epochs.
#[test]
#[ignore = "needs --release and ../shared/data/mnist"]
fn lenet5_on_full_mnist_reaches_98_9_percent() {
    let Some((train, test)) = full_mnist() else {
        return;
    };
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(
            Conv2dConfig::new(1, 6, 5)
                .padding(2)
                .init(&mut rng)
                .unwrap(),
        )
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(Conv2dConfig::new(6, 16, 5).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(Flatten)
        .push(LinearConfig::new(400, 120).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(120, 84).init(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(LinearConfig::new(84, 10).init(&mut rng).unwrap());
    let mut opt = AdamConfig::new(1e-3).build().unwrap();
    let mut cfg = quiet(15, 1e-3);
    cfg.sample_dims = vec![1, 28, 28];
    fit(&mut cfg, &mut model, &mut opt, Arc::new(train), None).unwrap();
    let (_, acc) = evaluate(&model, &test, &[1, 28, 28], 256).unwrap();
    assert!(acc >= 0.989, "MNIST LeNet-5 test accuracy {acc}");
}

/// Early stopping restores the weights of the epoch with the best validation loss,
/// and the checkpoint written at that epoch holds the same weights.
#[test]
fn early_stopping_restores_the_best_epoch_and_checkpoints_it() {
    let (train, val) = digits_split();
    let small = train.subset(&(0..200).collect::<Vec<_>>()).unwrap();
    let mut model = mlp(&[64, 128, 10], 0.0, 3);
    let mut opt = AdamConfig::new(1e-2).build().unwrap();
    let dir = std::env::temp_dir().join(format!("dl-optim-es-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("best.safetensors");
    let mut cfg = TrainerConfig {
        epochs: 60,
        batch_size: 32,
        early_stopping_patience: Some(3),
        checkpoint: Some(ckpt.clone()),
        curves_svg: Some(dir.join("curves.svg")),
        progress: Progress::Quiet,
        ..Default::default()
    };
    let history = fit(&mut cfg, &mut model, &mut opt, Arc::new(small), Some(&val)).unwrap();
    let best = history
        .epochs
        .iter()
        .min_by(|a, b| a.val_loss.unwrap().total_cmp(&b.val_loss.unwrap()))
        .unwrap();
    assert!(history.epochs.len() < 60, "early stopping never triggered");
    assert_eq!(history.epochs.len(), best.epoch + 3);
    assert_eq!(history.restored_epoch, Some(best.epoch));
    let (val_loss, _) = evaluate(&model, &val, &[], 256).unwrap();
    assert!(
        (val_loss - best.val_loss.unwrap()).abs() < 1e-6,
        "{val_loss} vs {best:?}"
    );
    let mut reloaded = mlp(&[64, 128, 10], 0.0, 99);
    dl_layers::checkpoint::load(&mut reloaded, &ckpt).unwrap();
    let (reloaded_loss, _) = evaluate(&reloaded, &val, &[], 256).unwrap();
    assert!((reloaded_loss - val_loss).abs() < 1e-9);
    let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[path = "../examples/shared/digits_gan.rs"]
mod digits_gan;

/// Generator steps for the GAN test (the example's default is 10,000).
const GAN_STEPS: usize = 3000;

/// The digits GAN of `examples/digits_gan.rs` (MLP, non-saturating loss), shorter:
/// judged by a classifier and nearest-neighbour distances fitted to real digits only,
/// its samples must spread over the classes, be classified confidently and lie near
/// real digits without copying them; the untrained generator and uniform noise, scored
/// the same way, show the figures are earned by training.
#[test]
#[ignore = "needs --release"]
fn digits_gan_generates_recognizable_digits_of_most_classes() {
    let (x, y) = digits_gan::real_digits().unwrap();
    let [(train_x, train_y), (held_x, _)] = digits_gan::split_every(&x, &y, 5);
    let judge = digits_gan::train_classifier(&train_x, &train_y, 30).unwrap();
    let score = |images: &[f32]| digits_gan::quality(&judge, &train_x, images).unwrap();
    let untrained = digits_gan::train(&train_x, 0, 0, |_, _, _| {}).unwrap();
    let gen = digits_gan::train(&train_x, GAN_STEPS, 0, |_, _, _| {}).unwrap();
    let q_untrained = score(&digits_gan::sample(&untrained, 500, 2024).unwrap());
    let q_fake = score(&digits_gan::sample(&gen, 500, 2024).unwrap());
    let q_real = score(&held_x);
    let q_noise = score(&digits_gan::uniform_noise(500, 99));
    for (name, q) in [
        ("generated", &q_fake),
        ("held-out real", &q_real),
        ("untrained generator", &q_untrained),
        ("uniform noise", &q_noise),
    ] {
        eprintln!(
            "{name}: classes >= 2%: {}, mean confidence {:.3} ({:.1}% >= 0.9), \
             nn distance {:.2}, near-copies {:.1}%, counts {:?}",
            q.classes_with(0.02),
            q.mean_confidence,
            100.0 * q.confident_share,
            q.mean_nn_distance,
            100.0 * q.copy_share,
            q.class_counts
        );
    }
    // At 3000 steps, generator seeds 0-3 gave (1000 samples each) 10 classes with >= 2%
    // of the samples (seed 2: only 8 with >= 3%), mean confidence 0.855-0.882 and mean
    // distances 2.56-2.65: the bounds below leave room for other floating-point paths.
    assert!(q_fake.classes_with(0.02) >= 8, "{:?}", q_fake.class_counts);
    assert!(q_fake.mean_confidence >= 0.8, "{}", q_fake.mean_confidence);
    assert!(
        q_fake.mean_nn_distance < 1.5 * q_real.mean_nn_distance,
        "generated {} vs held-out real {}",
        q_fake.mean_nn_distance,
        q_real.mean_nn_distance
    );
    assert!(
        q_untrained.mean_nn_distance > 2.0 * q_fake.mean_nn_distance,
        "untrained {} vs generated {}",
        q_untrained.mean_nn_distance,
        q_fake.mean_nn_distance
    );
    assert!(q_fake.copy_share < 0.05, "{}", q_fake.copy_share);
}

#[path = "../examples/shared/bidirectional.rs"]
mod bidirectional;

/// The bidirectional example's task, `y_t = x_{t-1} + x_{t+1}`: a left-to-right RNN
/// cannot know `x_{t+1}`, so it can at best guess it (about 53% of the steps right in
/// expectation: 50% in the interior, a little more near a possible end), while a
/// bidirectional RNN with fewer parameters sees both neighbours and tags nearly every
/// step.
#[test]
#[ignore = "needs --release"]
fn bidirectional_rnn_beats_unidirectional_on_a_task_that_needs_the_future() {
    let uni = bidirectional::train(bidirectional::unidirectional(0).unwrap(), 0).unwrap();
    let bi = bidirectional::train(bidirectional::bidirectional(0).unwrap(), 0).unwrap();
    eprintln!(
        "per-step test accuracy over {} steps: unidirectional RNN (32, {} parameters) \
         {:.2}%, bidirectional RNN (16 + 16, {} parameters) {:.2}%",
        uni.test_steps,
        uni.params,
        100.0 * uni.accuracy(),
        bi.params,
        100.0 * bi.accuracy()
    );
    // Seeds 0-5 (models and training data; same test set) gave 53.2-53.9% for the
    // unidirectional and 100% for the bidirectional RNN. The expected accuracy of the
    // best causal predictor is 53.3%: 0.6 leaves room for the noise of a finite test set,
    // not for a model that sees the future.
    assert!(uni.accuracy() <= 0.6, "unidirectional {}", uni.accuracy());
    assert!(bi.accuracy() >= 0.95, "bidirectional {}", bi.accuracy());
}

#[path = "../examples/shared/gan8.rs"]
mod gan8;

/// Generator steps for the 8-Gaussians GAN test (the example's default too).
const GAN8_STEPS: usize = 8000;

/// The gan example's non-saturating GAN on the mixture of 8 Gaussians, trained longer:
/// a generator must cover at least 7 of the 8 modes (at least 1% of 2000 samples within
/// 3 std of the mode's mean); the untrained generator, scored the same way, shows the
/// coverage is earned by training. Prints modes covered and the share of high-quality
/// samples (within 3 std of any mean).
#[test]
#[ignore = "needs --release"]
fn nonsaturating_gan_covers_at_least_7_of_8_modes() {
    let untrained = gan8::score(&gan8::train(gan8::Loss::NonSaturating, 0, 0).unwrap());
    eprintln!(
        "untrained generator: {} of 8 modes, {:.1}% high-quality samples",
        untrained.0,
        100.0 * untrained.1
    );
    // An NS GAN sometimes drops a mode or two for good (5000 steps are not always
    // enough: seed 0 covers 6 there): at 8000 steps, seeds 0-15 gave
    // 7, 8, 7, 8, 6, 8, 3, 8 and eight times 8 modes, with 57-96% high-quality samples
    // for those covering >= 7. Another floating-point path (other GEMM kernels) makes a
    // run a fresh draw, so the generator of either of two seeds must cover >= 7 modes.
    let mut best = 0;
    for seed in [0, 1] {
        let (covered, quality) =
            gan8::score(&gan8::train(gan8::Loss::NonSaturating, GAN8_STEPS, seed).unwrap());
        eprintln!(
            "non-saturating GAN, seed {seed}, {GAN8_STEPS} steps: {covered} of 8 modes, \
             {:.1}% high-quality samples",
            100.0 * quality
        );
        best = best.max(covered);
    }
    assert!(best >= 7, "best generator covers {best} of 8 modes");
    assert!(
        untrained.0 <= 2,
        "untrained generator covers {} modes",
        untrained.0
    );
}
