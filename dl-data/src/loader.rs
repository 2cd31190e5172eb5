//! A mini-batch loader over an in-memory [`Dataset`]: shuffles each epoch from a seed,
//! batches (optionally dropping the last short batch), applies image augmentation,
//! and prefetches the next batch on a second thread while the caller trains on the
//! current one.
//!
//! The worker and the caller pass a few batch buffers back and forth over two
//! channels (filled ones to the caller, used ones back to the worker), so after the
//! first epoch no batch allocates. Batches are lent, not returned by value:
//!
//! ```
//! use std::sync::Arc;
//! use dl_data::{datasets, loader::{DataLoader, LoaderConfig}};
//! let iris = Arc::new(datasets::iris::<f32>().unwrap());
//! let mut loader = DataLoader::new(iris, LoaderConfig { batch_size: 32, ..Default::default() }).unwrap();
//! let mut rows = 0;
//! let mut epoch = loader.epoch();
//! while let Some(batch) = epoch.next_batch() {
//!     assert_eq!(batch.x.len(), batch.rows * 4);
//!     rows += batch.rows;
//! }
//! assert_eq!(rows, 150);
//! ```
//!
//! Determinism: the order of epoch `e` depends only on `(seed, e)`, and batch `b`'s
//! augmentation only on `(seed, e, b)`, so results do not depend on thread timing.

use alloc::vec::Vec;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use dl_core::{MatRef, Rng, Scalar};

use crate::augment::Augment;
use crate::dataset::{gather_rows, Dataset};
use crate::error::{Error, Result};

/// How to batch a data set.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Rows per batch (>= 1).
    pub batch_size: usize,
    /// Shuffle the rows every epoch.
    pub shuffle: bool,
    /// Drop the last batch if it is shorter than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffles and augmentations.
    pub seed: u64,
    /// Prepare batches on a second thread.
    pub prefetch: bool,
    /// Augment every row as an image (its size must equal the feature count).
    pub augment: Option<Augment>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 64,
            shuffle: true,
            drop_last: false,
            seed: 0,
            prefetch: true,
            augment: None,
        }
    }
}

impl LoaderConfig {
    /// Checks the batch size and the augmentation settings.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::InvalidParameter {
                op: "LoaderConfig",
                name: "batch_size",
                value: 0.0,
                valid: ">= 1",
            });
        }
        if let Some(a) = &self.augment {
            a.validate()?;
        }
        Ok(())
    }
}

/// A batch buffer that travels between the worker and the caller.
struct Buffer<T, Y> {
    x: Vec<T>,
    y: Vec<Y>,
    indices: Vec<usize>,
    scratch: Vec<T>,
    batch_index: usize,
}

impl<T, Y> Buffer<T, Y> {
    fn empty() -> Self {
        Buffer {
            x: Vec::new(),
            y: Vec::new(),
            indices: Vec::new(),
            scratch: Vec::new(),
            batch_index: 0,
        }
    }
}

/// One mini-batch, lent by [`Epoch::next_batch`].
#[derive(Debug)]
pub struct Batch<'a, T, Y> {
    /// Features, row-major (`rows x cols`).
    pub x: &'a [T],
    /// Targets, one per row.
    pub y: &'a [Y],
    /// Which data-set rows these are.
    pub indices: &'a [usize],
    /// Rows in this batch.
    pub rows: usize,
    /// Features per row.
    pub cols: usize,
    /// Position of the batch in its epoch.
    pub index: usize,
}

impl<'a, T: Scalar, Y> Batch<'a, T, Y> {
    /// The features as a matrix view.
    pub fn x_mat(&self) -> MatRef<'a, T> {
        match MatRef::new(self.x, self.rows, self.cols) {
            Ok(m) => m,
            Err(_) => unreachable!("batch buffers always hold rows * cols features"),
        }
    }
}

/// Everything the worker needs to produce one epoch's batches.
struct Plan<T, Y> {
    data: Arc<Dataset<T, Y>>,
    order: Vec<usize>,
    batch_size: usize,
    n_batches: usize,
    augment: Option<Augment>,
    seed: u64,
    epoch: u64,
}

impl<T: Scalar, Y: Clone> Plan<T, Y> {
    fn fill(&self, b: usize, buf: &mut Buffer<T, Y>) {
        let cols = self.data.n_features();
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let idx = &self.order[start..end];
        buf.indices.clear();
        buf.indices.extend_from_slice(idx);
        buf.x.resize(idx.len() * cols, T::ZERO);
        gather_rows(self.data.features(), cols, idx, &mut buf.x);
        buf.y.clear();
        buf.y
            .extend(idx.iter().map(|&i| self.data.targets()[i].clone()));
        buf.batch_index = b;
        if let Some(a) = &self.augment {
            let mut rng = Rng::seed_from_u64(mix(self.seed, self.epoch, b as u64 + 1));
            buf.scratch.resize(cols, T::ZERO);
            for row in buf.x.chunks_exact_mut(cols.max(1)) {
                a.apply(row, &mut buf.scratch, &mut rng);
            }
        }
    }
}

/// Combines seed, epoch and stream into one well-mixed seed.
fn mix(seed: u64, epoch: u64, stream: u64) -> u64 {
    let mut r = Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.next_u64() ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Buffers in flight per epoch: one with the caller, up to three prepared ahead.
const N_BUFFERS: usize = 4;

/// Batches a shared [`Dataset`]; see the module documentation.
pub struct DataLoader<T, Y> {
    data: Arc<Dataset<T, Y>>,
    cfg: LoaderConfig,
    pool: Vec<Buffer<T, Y>>,
    order: Vec<usize>,
    next_epoch: u64,
}

impl<T, Y> DataLoader<T, Y>
where
    T: Scalar,
    Y: Clone + Send + Sync + 'static,
{
    /// A loader over `data`; checks the configuration against the data.
    pub fn new(data: Arc<Dataset<T, Y>>, cfg: LoaderConfig) -> Result<Self> {
        cfg.validate()?;
        if let Some(a) = &cfg.augment {
            if a.image_len() != data.n_features() {
                return Err(Error::LengthMismatch {
                    op: "DataLoader::new",
                    what: "augmented image size (channels*height*width)",
                    expected: data.n_features(),
                    actual: a.image_len(),
                });
            }
        }
        if data.n_samples() == 0 {
            return Err(Error::Empty {
                op: "DataLoader::new",
                what: "data set",
            });
        }
        Ok(DataLoader {
            data,
            cfg,
            pool: Vec::new(),
            order: Vec::new(),
            next_epoch: 0,
        })
    }

    /// Batches per epoch.
    pub fn n_batches(&self) -> usize {
        let (n, b) = (self.data.n_samples(), self.cfg.batch_size);
        if self.cfg.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// The next epoch (0, 1, 2, ... on successive calls).
    pub fn epoch(&mut self) -> Epoch<'_, T, Y> {
        let e = self.next_epoch;
        self.epoch_at(e)
    }

    /// Epoch number `epoch` (its order and augmentation depend only on the seed and
    /// this number); later calls to [`Self::epoch`] continue from `epoch + 1`.
    pub fn epoch_at(&mut self, epoch: u64) -> Epoch<'_, T, Y> {
        self.next_epoch = epoch + 1;
        let mut order = core::mem::take(&mut self.order);
        order.clear();
        order.extend(0..self.data.n_samples());
        if self.cfg.shuffle {
            Rng::seed_from_u64(mix(self.cfg.seed, epoch, 0)).shuffle(&mut order);
        }
        let plan = Plan {
            data: Arc::clone(&self.data),
            order,
            batch_size: self.cfg.batch_size,
            n_batches: self.n_batches(),
            augment: self.cfg.augment,
            seed: self.cfg.seed,
            epoch,
        };
        while self.pool.len() < N_BUFFERS {
            self.pool.push(Buffer::empty());
        }
        let state = if self.cfg.prefetch {
            let (empty_tx, empty_rx) = channel::<Buffer<T, Y>>();
            let (filled_tx, filled_rx) = channel::<Buffer<T, Y>>();
            for buf in self.pool.drain(..) {
                // The receiver is alive (held right here), so this cannot fail.
                let _ = empty_tx.send(buf);
            }
            let stop = Arc::new(AtomicBool::new(false));
            let worker_stop = Arc::clone(&stop);
            let handle = std::thread::spawn(move || worker(plan, empty_rx, filled_tx, worker_stop));
            State::Prefetch {
                empty_tx: Some(empty_tx),
                filled_rx,
                handle: Some(handle),
                stop,
            }
        } else {
            State::Inline { plan, next: 0 }
        };
        Epoch {
            loader: self,
            state,
            current: None,
        }
    }
}

type WorkerResult<T, Y> = (Vec<Buffer<T, Y>>, Receiver<Buffer<T, Y>>, Vec<usize>);

/// Fills buffers in batch order until the epoch ends or the caller stops it; hands
/// back its receiver and the order vector so no buffer is lost.
fn worker<T: Scalar, Y: Clone>(
    plan: Plan<T, Y>,
    empty_rx: Receiver<Buffer<T, Y>>,
    filled_tx: Sender<Buffer<T, Y>>,
    stop: Arc<AtomicBool>,
) -> WorkerResult<T, Y> {
    let mut spare = Vec::new();
    for b in 0..plan.n_batches {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut buf) = empty_rx.recv() else { break };
        plan.fill(b, &mut buf);
        if let Err(e) = filled_tx.send(buf) {
            spare.push(e.0);
            break;
        }
    }
    (spare, empty_rx, plan.order)
}

enum State<T, Y> {
    Prefetch {
        empty_tx: Option<Sender<Buffer<T, Y>>>,
        filled_rx: Receiver<Buffer<T, Y>>,
        handle: Option<JoinHandle<WorkerResult<T, Y>>>,
        stop: Arc<AtomicBool>,
    },
    Inline {
        plan: Plan<T, Y>,
        next: usize,
    },
}

/// One pass over the data; lends batches through [`Self::next_batch`].
pub struct Epoch<'a, T, Y>
where
    T: Scalar,
    Y: Clone + Send + Sync + 'static,
{
    loader: &'a mut DataLoader<T, Y>,
    state: State<T, Y>,
    current: Option<Buffer<T, Y>>,
}

impl<T, Y> Epoch<'_, T, Y>
where
    T: Scalar,
    Y: Clone + Send + Sync + 'static,
{
    /// The next batch, or `None` at the end of the epoch. The previous batch's buffer
    /// goes back to be refilled.
    pub fn next_batch(&mut self) -> Option<Batch<'_, T, Y>> {
        let cols = self.loader.data.n_features();
        match &mut self.state {
            State::Prefetch {
                empty_tx,
                filled_rx,
                ..
            } => {
                if let Some(prev) = self.current.take() {
                    // A worker that has finished no longer takes buffers back.
                    if let Some(Err(e)) = empty_tx.as_ref().map(|tx| tx.send(prev)) {
                        self.loader.pool.push(e.0);
                    }
                }
                self.current = filled_rx.recv().ok();
            }
            State::Inline { plan, next } => {
                if *next >= plan.n_batches {
                    return None;
                }
                let mut buf = match self.current.take() {
                    Some(b) => b,
                    None => self.loader.pool.pop().unwrap_or_else(Buffer::empty),
                };
                plan.fill(*next, &mut buf);
                *next += 1;
                self.current = Some(buf);
            }
        }
        self.current.as_ref().map(|b| Batch {
            x: &b.x,
            y: &b.y,
            indices: &b.indices,
            rows: b.y.len(),
            cols,
            index: b.batch_index,
        })
    }
}

impl<T, Y> Drop for Epoch<'_, T, Y>
where
    T: Scalar,
    Y: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        let pool = &mut self.loader.pool;
        if let Some(b) = self.current.take() {
            pool.push(b);
        }
        match &mut self.state {
            State::Prefetch {
                empty_tx,
                filled_rx,
                handle,
                stop,
            } => {
                stop.store(true, Ordering::Relaxed);
                // Dropping the sender wakes a worker blocked waiting for a buffer.
                drop(empty_tx.take());
                if let Some(Ok((spare, empty_rx, order))) = handle.take().map(JoinHandle::join) {
                    pool.extend(spare);
                    pool.extend(empty_rx.try_iter());
                    self.loader.order = order;
                }
                pool.extend(filled_rx.try_iter());
            }
            State::Inline { plan, .. } => {
                self.loader.order = core::mem::take(&mut plan.order);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn data(n: usize) -> Arc<Dataset<f32, usize>> {
        let x: Vec<f32> = (0..n * 2).map(|v| v as f32).collect();
        Arc::new(Dataset::new(x, (0..n).collect(), 2).unwrap())
    }

    fn collect(loader: &mut DataLoader<f32, usize>) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        let mut e = loader.epoch();
        while let Some(b) = e.next_batch() {
            // Features follow the row index: row i holds [2i, 2i+1].
            for (r, &i) in b.y.iter().enumerate() {
                assert_eq!(
                    b.x[2 * r..2 * r + 2],
                    [2.0 * i as f32, 2.0 * i as f32 + 1.0]
                );
            }
            assert_eq!(b.indices, b.y);
            out.push(b.y.to_vec());
        }
        out
    }

    #[test]
    fn batches_cover_each_row_once_and_prefetch_matches_inline() {
        for drop_last in [false, true] {
            let cfg = LoaderConfig {
                batch_size: 4,
                drop_last,
                seed: 11,
                ..Default::default()
            };
            let mut pre = DataLoader::new(data(10), cfg.clone()).unwrap();
            let mut inl = DataLoader::new(
                data(10),
                LoaderConfig {
                    prefetch: false,
                    ..cfg
                },
            )
            .unwrap();
            for _ in 0..3 {
                let a = collect(&mut pre);
                let b = collect(&mut inl);
                assert_eq!(a, b);
                let sizes: Vec<usize> = a.iter().map(Vec::len).collect();
                assert_eq!(sizes, if drop_last { vec![4, 4] } else { vec![4, 4, 2] });
                if !drop_last {
                    let mut all: Vec<usize> = a.concat();
                    all.sort_unstable();
                    assert_eq!(all, (0..10).collect::<Vec<_>>());
                }
            }
            assert_eq!(pre.pool.len(), N_BUFFERS, "buffers are all returned");
        }
    }

    #[test]
    fn epochs_differ_but_replay_exactly_and_early_drop_is_clean() {
        let mut l = DataLoader::new(
            data(50),
            LoaderConfig {
                batch_size: 8,
                ..Default::default()
            },
        )
        .unwrap();
        let e0 = collect(&mut l);
        let e1 = collect(&mut l);
        assert_ne!(e0, e1);
        {
            let mut e = l.epoch_at(0);
            let first = e.next_batch().unwrap().y.to_vec();
            assert_eq!(first, e0[0]);
        } // dropped after one batch: the worker stops and returns its buffers
        assert_eq!(l.pool.len(), N_BUFFERS);
        assert_eq!(collect(&mut l), e1);
        let unshuffled = LoaderConfig {
            shuffle: false,
            batch_size: 20,
            ..Default::default()
        };
        let mut u = DataLoader::new(data(50), unshuffled).unwrap();
        assert_eq!(collect(&mut u)[0], (0..20).collect::<Vec<_>>());
        assert!(DataLoader::new(
            data(5),
            LoaderConfig {
                batch_size: 0,
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn augmentation_is_seeded_and_thread_independent() {
        // 6 images of 1x4x4 whose pixels are 1..=16 (never 0, the crop's padding).
        let x: Vec<f32> = (0..6).flat_map(|_| (1..=16).map(|v| v as f32)).collect();
        let d = Arc::new(Dataset::new(x, vec![0usize; 6], 16).unwrap());
        let aug = Augment {
            channels: 1,
            height: 4,
            width: 4,
            crop_padding: 1,
            flip_probability: 0.5,
        };
        let cfg = LoaderConfig {
            batch_size: 4,
            seed: 5,
            augment: Some(aug),
            ..Default::default()
        };
        let run = |prefetch: bool| {
            let mut l = DataLoader::new(
                Arc::clone(&d),
                LoaderConfig {
                    prefetch,
                    ..cfg.clone()
                },
            )
            .unwrap();
            let mut out = Vec::new();
            let mut e = l.epoch();
            while let Some(b) = e.next_batch() {
                out.extend_from_slice(b.x);
            }
            out
        };
        let (a, b) = (run(true), run(false));
        assert_eq!(a, b);
        let original: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        let changed = a
            .chunks(16)
            .filter(|img| *img != original.as_slice())
            .count();
        assert!(
            changed >= 3,
            "augmentation changed only {changed} of 6 images"
        );
        assert!(DataLoader::new(
            Arc::clone(&d),
            LoaderConfig {
                augment: Some(Augment { width: 5, ..aug }),
                ..cfg
            }
        )
        .is_err());
    }
}
