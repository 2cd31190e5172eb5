//! The `Trainer` (std): epochs of shuffled mini-batches with a classification loss
//! (softmax cross-entropy), validation after every epoch, a learning-rate schedule or
//! reduce-on-plateau, weight penalties, gradient clipping, early stopping that
//! restores the best weights, atomic checkpoints, a progress bar on a terminal (a
//! plain line per epoch otherwise), a history, and the loss/accuracy curves as SVG.
//!
//! Training stops with [`Error::Diverged`] as soon as the loss turns NaN or infinite.
//! After the first batch the step allocates nothing: the graph's buffers are reused
//! through a [`Tape`], the loader reuses its batch buffers, the optimizer its state.

use crate::early_stopping::{EarlyStopping, Verdict};
use crate::error::{Error, Result};
use crate::optimizer::Optimizer;
use crate::plateau::{Mode, PlateauConfig, ReduceLrOnPlateau};
use crate::regularization::Penalty;
use crate::schedule::LrSchedule;
use crate::svg;
use dl_autograd::{Graph, Param, Tape};
use dl_core::{Scalar, Shape, Tensor, MAX_RANK};
use dl_data::loader::{DataLoader, LoaderConfig};
use dl_data::Dataset;
use dl_layers::{Ctx, Entry, EntryMut, Module, Path};
use std::boxed::Box;
use std::format;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::string::ToString;
use std::sync::Arc;
use std::time::Instant;
use std::vec::Vec;

/// How the learning rate changes between epochs.
pub enum LrPolicy {
    /// Keep the optimizer's rate.
    Constant,
    /// `lr = schedule.lr_at(epoch)` at the start of each epoch (0-based).
    Schedule(Box<dyn LrSchedule + Send>),
    /// Reduce on a plateau of the validation loss (training loss without validation).
    Plateau(PlateauConfig),
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A bar on a terminal, a line per epoch otherwise.
    Auto,
    /// A line per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

/// Everything the trainer needs besides the model, optimizer and data.
pub struct TrainerConfig {
    /// Passes over the training data, >= 1.
    pub epochs: usize,
    /// Samples per mini-batch, >= 1.
    pub batch_size: usize,
    /// Seed of the shuffles and dropout masks.
    pub seed: u64,
    /// Shape of one sample, e.g. `[1, 28, 28]` for a CNN; empty means `[features]`.
    pub sample_dims: Vec<usize>,
    /// Learning-rate policy.
    pub lr_policy: LrPolicy,
    /// L1/L2 penalty on the weights (parameters of rank >= 2: linear and conv
    /// weights, not biases or normalization scales).
    pub weight_penalty: Option<Penalty>,
    /// Clip the global gradient norm to this value.
    pub clip_grad_norm: Option<f64>,
    /// Stop after this many epochs without validation-loss improvement and restore
    /// the best weights.
    pub early_stopping_patience: Option<usize>,
    /// Save the best model here (atomically) after every improving epoch.
    pub checkpoint: Option<PathBuf>,
    /// Write the loss and accuracy curves here as SVG at the end.
    pub curves_svg: Option<PathBuf>,
    /// Progress display.
    pub progress: Progress,
    /// Prefetch batches on a second thread.
    pub prefetch: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            epochs: 10,
            batch_size: 64,
            seed: 0,
            sample_dims: Vec::new(),
            lr_policy: LrPolicy::Constant,
            weight_penalty: None,
            clip_grad_norm: None,
            early_stopping_patience: None,
            checkpoint: None,
            curves_svg: None,
            progress: Progress::Auto,
            prefetch: true,
        }
    }
}

impl TrainerConfig {
    /// Checks every setting, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        use crate::error::check_range;
        check_range(
            "Trainer",
            "epochs",
            self.epochs as f64,
            self.epochs >= 1,
            ">= 1",
        )?;
        check_range(
            "Trainer",
            "batch_size",
            self.batch_size as f64,
            self.batch_size >= 1,
            ">= 1",
        )?;
        check_range(
            "Trainer",
            "sample_dims",
            self.sample_dims.len() as f64,
            self.sample_dims.len() < MAX_RANK,
            "at most 5 dimensions",
        )?;
        if let Some(p) = &self.weight_penalty {
            p.validate()?;
        }
        if let Some(c) = self.clip_grad_norm {
            check_range("Trainer", "clip_grad_norm", c, c > 0.0, "> 0")?;
        }
        if let Some(p) = self.early_stopping_patience {
            check_range(
                "Trainer",
                "early_stopping_patience",
                p as f64,
                p >= 1,
                ">= 1",
            )?;
        }
        if let LrPolicy::Plateau(p) = &self.lr_policy {
            p.validate()?;
        }
        Ok(())
    }
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training loss over the epoch's batches (dropout active).
    pub train_loss: f64,
    /// Training accuracy over the epoch's batches (in training mode).
    pub train_acc: f64,
    /// Validation loss (eval mode), if validation data was given.
    pub val_loss: Option<f64>,
    /// Validation accuracy, if validation data was given.
    pub val_acc: Option<f64>,
    /// Wall time of the epoch in seconds.
    pub seconds: f64,
}

/// Everything a training run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One record per epoch run.
    pub epochs: Vec<EpochRecord>,
    /// 1-based epoch whose weights the model holds at the end when early stopping
    /// restored them.
    pub restored_epoch: Option<usize>,
}

/// Loss and accuracy of `model` on `data` in eval mode, without recording gradients.
pub fn evaluate<T: Scalar, M: Module<T> + ?Sized>(
    model: &M,
    data: &Dataset<T, usize>,
    sample_dims: &[usize],
    batch_size: usize,
) -> Result<(f64, f64)> {
    let n = data.n_samples();
    let cols = data.n_features();
    let mut tape = Tape::new();
    let (mut loss_sum, mut correct) = (0.0, 0usize);
    let mut ctx = Ctx::eval();
    let mut start = 0;
    while start < n {
        let rows = batch_size.min(n - start);
        let dims = batch_dims(rows, sample_dims, cols)?;
        let mut g = Graph::from_tape(tape);
        g.set_grad_enabled(false);
        let x = g.input_slice(
            &data.features()[start * cols..(start + rows) * cols],
            dims.dims(),
        )?;
        let logits = model.forward(&mut g, x, &mut ctx)?;
        let targets = &data.targets()[start..start + rows];
        let loss = g.cross_entropy(logits, targets)?;
        loss_sum += g.value(loss)?.data()[0].to_f64_lossless() * rows as f64;
        correct += count_correct(g.value(logits)?, targets);
        tape = g.into_tape();
        start += rows;
    }
    Ok((loss_sum / n.max(1) as f64, correct as f64 / n.max(1) as f64))
}

fn batch_dims(rows: usize, sample_dims: &[usize], cols: usize) -> Result<Shape> {
    let mut dims = [0usize; MAX_RANK];
    dims[0] = rows;
    if sample_dims.is_empty() {
        dims[1] = cols;
        return Ok(Shape::new(&dims[..2])?);
    }
    dims[1..=sample_dims.len()].copy_from_slice(sample_dims);
    let shape = Shape::new(&dims[..=sample_dims.len()])?;
    if shape.numel() != rows * cols {
        return Err(dl_core::Error::LengthMismatch {
            op: "Trainer",
            what: "sample_dims (product vs features per sample)",
            expected: cols,
            actual: shape.numel() / rows.max(1),
        }
        .into());
    }
    Ok(shape)
}

/// Rows whose largest logit is at the target class.
fn count_correct<T: Scalar>(logits: &Tensor<T>, targets: &[usize]) -> usize {
    let classes = logits.dims().last().copied().unwrap_or(1).max(1);
    logits
        .data()
        .chunks_exact(classes)
        .zip(targets)
        .filter(|(row, &t)| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best == t
        })
        .count()
}

fn snapshot<T: Scalar, M: Module<T> + ?Sized>(model: &M) -> Vec<Tensor<T>> {
    let mut out = Vec::new();
    model.visit(&mut Path::new(), &mut |_, e: Entry<'_, T>| {
        out.push(e.value().clone())
    });
    out
}

fn restore<T: Scalar, M: Module<T> + ?Sized>(model: &mut M, saved: &[Tensor<T>]) {
    let mut i = 0;
    model.visit_mut(&mut Path::new(), &mut |_, e: EntryMut<'_, T>| {
        let dst = match e {
            EntryMut::Param(p) => p.value_mut(),
            EntryMut::Buffer(t) => t.data_mut(),
        };
        dst.copy_from_slice(saved[i].data());
        i += 1;
    });
}

/// Trains `model` on `train` with softmax cross-entropy (see the module doc) and
/// returns the history. `val`, when given, is evaluated after every epoch.
pub fn fit<T: Scalar, M: Module<T>>(
    cfg: &mut TrainerConfig,
    model: &mut M,
    opt: &mut dyn Optimizer<T>,
    train: Arc<Dataset<T, usize>>,
    val: Option<&Dataset<T, usize>>,
) -> Result<History> {
    cfg.validate()?;
    let cols = train.n_features();
    let sample_dims = cfg.sample_dims.clone();
    batch_dims(1, &sample_dims, cols)?;
    let mut loader = DataLoader::new(
        train,
        LoaderConfig {
            batch_size: cfg.batch_size,
            shuffle: true,
            drop_last: false,
            seed: cfg.seed,
            prefetch: cfg.prefetch,
            augment: None,
        },
    )?;
    let n_batches = loader.n_batches();
    let mut plateau: Option<ReduceLrOnPlateau> = match &cfg.lr_policy {
        LrPolicy::Plateau(p) => Some(p.build(opt.learning_rate())?),
        _ => None,
    };
    let mut stopper = match cfg.early_stopping_patience {
        Some(p) => Some(EarlyStopping::new(Mode::Min, p, 0.0)?),
        None => None,
    };
    let mut best_weights: Option<(usize, Vec<Tensor<T>>)> = None;
    let mut history = History::default();
    let mut ctx = Ctx::train(cfg.seed ^ 0x5EED);
    let mut tape = Tape::new();
    let bar = make_bar(cfg.progress, cfg.epochs * n_batches);

    for epoch in 1..=cfg.epochs {
        match &cfg.lr_policy {
            LrPolicy::Schedule(s) => opt.set_learning_rate(s.lr_at(epoch - 1)),
            LrPolicy::Plateau(_) => {
                if let Some(p) = &plateau {
                    opt.set_learning_rate(p.lr());
                }
            }
            LrPolicy::Constant => {}
        }
        let lr = opt.learning_rate();
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut batches = loader.epoch_at(epoch as u64 - 1);
        let mut b = 0;
        while let Some(batch) = batches.next_batch() {
            let dims = batch_dims(batch.rows, &sample_dims, cols)?;
            let mut g = Graph::from_tape(tape);
            let x = g.input_slice(batch.x, dims.dims())?;
            let logits = model.forward(&mut g, x, &mut ctx)?;
            let loss = g.cross_entropy(logits, batch.y)?;
            let loss_value = g.value(loss)?.data()[0].to_f64_lossless();
            if !loss_value.is_finite() {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(Error::Diverged {
                    epoch,
                    batch: b,
                    loss: loss_value,
                });
            }
            correct += count_correct(g.value(logits)?, batch.y);
            g.backward(loss)?;
            tape = g.into_tape();
            loss_sum += loss_value * batch.rows as f64;
            seen += batch.rows;

            if let Some(p) = &cfg.weight_penalty {
                model.for_each_param(&mut |param: &mut Param<T>| {
                    if param.value().rank() >= 2 {
                        let (w, grad) = param.value_and_grad_mut();
                        p.add_grad(w, grad);
                    }
                });
            }
            if let Some(max_norm) = cfg.clip_grad_norm {
                clip_global_norm(model, max_norm);
            }
            opt.step(model)?;
            model.for_each_param(&mut |p: &mut Param<T>| p.zero_grad());
            if let Some(bar) = &bar {
                bar.inc(1);
                if b % 16 == 0 {
                    bar.set_message(format!(
                        "epoch {epoch}/{} loss {:.4} acc {:.2}%",
                        cfg.epochs,
                        loss_sum / seen as f64,
                        100.0 * correct as f64 / seen as f64
                    ));
                }
            }
            b += 1;
        }
        drop(batches);
        let train_loss = loss_sum / seen.max(1) as f64;
        let train_acc = correct as f64 / seen.max(1) as f64;
        let (val_loss, val_acc) = match val {
            Some(v) => {
                let (l, a) = evaluate(model, v, &sample_dims, 256)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let record = EpochRecord {
            epoch,
            lr,
            train_loss,
            train_acc,
            val_loss,
            val_acc,
            seconds: start.elapsed().as_secs_f64(),
        };
        report(cfg.progress, bar.as_ref(), &record, cfg.epochs);
        history.epochs.push(record);
        let monitored = val_loss.unwrap_or(train_loss);
        if let Some(p) = &mut plateau {
            p.step(monitored);
        }
        if let Some(s) = &mut stopper {
            match s.update(monitored) {
                Verdict::Improved => {
                    best_weights = Some((epoch, snapshot(model)));
                    if let Some(path) = &cfg.checkpoint {
                        dl_layers::checkpoint::save(model, path)?;
                    }
                }
                Verdict::Continue => {}
                Verdict::Stop => break,
            }
        } else if let Some(path) = &cfg.checkpoint {
            dl_layers::checkpoint::save(model, path)?;
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some((epoch, weights)) = best_weights {
        if epoch != history.epochs.len() {
            restore(model, &weights);
            history.restored_epoch = Some(epoch);
        }
    }
    if let Some(path) = &cfg.curves_svg {
        write_curves(&history, path)?;
    }
    Ok(history)
}

/// Scales all gradients by `max_norm / norm` when their global L2 norm exceeds
/// `max_norm` (torch's `clip_grad_norm_`), visiting the model twice, allocating nothing.
fn clip_global_norm<T: Scalar, M: Module<T>>(model: &mut M, max_norm: f64) {
    let mut sq = 0.0f64;
    model.for_each_param(&mut |p: &mut Param<T>| {
        sq += p
            .grad()
            .data()
            .iter()
            .map(|g| g.to_f64_lossless().powi(2))
            .sum::<f64>();
    });
    let norm = sq.sqrt();
    if norm > max_norm {
        let scale = T::from_f64_lossy(max_norm / (norm + 1e-6));
        model.for_each_param(&mut |p: &mut Param<T>| {
            p.grad_mut()
                .data_mut()
                .iter_mut()
                .for_each(|g| *g = *g * scale);
        });
    }
}

fn make_bar(progress: Progress, total: usize) -> Option<indicatif::ProgressBar> {
    if progress != Progress::Auto || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn report(
    progress: Progress,
    bar: Option<&indicatif::ProgressBar>,
    r: &EpochRecord,
    epochs: usize,
) {
    if progress == Progress::Quiet {
        return;
    }
    let mut line = format!(
        "epoch {:>3}/{epochs}  lr {:.2e}  train loss {:.4}  acc {:.2}%",
        r.epoch,
        r.lr,
        r.train_loss,
        100.0 * r.train_acc
    );
    if let (Some(l), Some(a)) = (r.val_loss, r.val_acc) {
        line += &format!("  val loss {l:.4}  acc {:.2}%", 100.0 * a);
    }
    line += &format!("  ({:.1}s)", r.seconds);
    match bar {
        Some(b) => b.println(line),
        None => std::println!("{line}"),
    }
}

/// Writes the loss and accuracy curves of `history` as an SVG file.
pub fn write_curves(history: &History, path: &std::path::Path) -> Result<()> {
    let col =
        |f: &dyn Fn(&EpochRecord) -> f64| -> Vec<f64> { history.epochs.iter().map(f).collect() };
    let (tl, vl) = (
        col(&|r| r.train_loss),
        col(&|r| r.val_loss.unwrap_or(f64::NAN)),
    );
    let (ta, va) = (
        col(&|r| 100.0 * r.train_acc),
        col(&|r| r.val_acc.map_or(f64::NAN, |a| 100.0 * a)),
    );
    let loss = svg::panel(
        "loss",
        "epoch",
        &[
            svg::Series {
                label: "train",
                values: &tl,
                color: "#1f77b4",
            },
            svg::Series {
                label: "validation",
                values: &vl,
                color: "#d62728",
            },
        ],
        0.0,
    );
    let acc = svg::panel(
        "accuracy (%)",
        "epoch",
        &[
            svg::Series {
                label: "train",
                values: &ta,
                color: "#1f77b4",
            },
            svg::Series {
                label: "validation",
                values: &va,
                color: "#d62728",
            },
        ],
        420.0,
    );
    std::fs::write(path, svg::document(&[loss, acc])).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}
