//! k-nearest neighbours: a query is labelled by the (optionally distance-weighted)
//! vote of its `k` closest training rows under the L1 (Manhattan) or L2 (Euclidean)
//! distance ([`KNeighborsClassifier`]), or predicted as the (optionally weighted)
//! mean of their targets ([`KNeighborsRegressor`]); both share one search.
//!
//! - `weights = Uniform`: each neighbour votes 1; `Distance`: each votes `1 / d`, and
//!   if any neighbour is at distance 0 only those vote (scikit-learn's rule).
//! - Ties between equidistant neighbours keep the lower training index; ties between
//!   classes go to the smaller class label (scikit-learn's `mode` / `argmax`).
//! - Search is brute force (every distance computed, a tile of queries x training
//!   rows at a time, through GEMM for L2 and dl-core's `distance::pairwise`
//!   otherwise, keeping each query's `k` best while scanning), or a KD-tree, which returns the
//!   same neighbours and pays off in low dimensions (`Algorithm::Auto` picks it when
//!   `d <= 12` and there are more than 64 training rows).
//!
//! Fixture (CS231n's image example): the L1 distance between the "images"
//! `[56 32 10 18 / 90 23 128 133 / 24 26 178 200 / 2 0 255 220]` and
//! `[10 20 24 17 / 8 10 89 100 / 12 16 178 170 / 4 32 233 112]` is 456.
//!
//! ```
//! use dl_classic::knn::{distance, Metric};
//! let test = [56.0f64, 32., 10., 18., 90., 23., 128., 133., 24., 26., 178., 200., 2., 0., 255., 220.];
//! let train = [10.0f64, 20., 24., 17., 8., 10., 89., 100., 12., 16., 178., 170., 4., 32., 233., 112.];
//! assert_eq!(distance(Metric::L1, &test, &train), 456.0);
//! ```

use crate::error::{check_predict, check_xy, param, Error, Result};
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// The distance between samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Metric {
    /// Manhattan: `sum |a_i - b_i|`.
    L1,
    /// Euclidean: `sqrt(sum (a_i - b_i)^2)`.
    #[default]
    L2,
}

/// How neighbours' votes are weighted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Weights {
    /// Every neighbour votes 1.
    #[default]
    Uniform,
    /// A neighbour at distance `d` votes `1 / d`.
    Distance,
}

/// How neighbours are searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// KD-tree in low dimensions, brute force otherwise.
    #[default]
    Auto,
    /// Every distance is computed.
    Brute,
    /// A KD-tree (exact; fast when the dimension is low).
    KdTree,
}

/// The distance between two equally long rows.
#[inline]
pub fn distance<T: Scalar>(metric: Metric, a: &[T], b: &[T]) -> T {
    match metric {
        Metric::L1 => a
            .iter()
            .zip(b)
            .fold(T::ZERO, |s, (x, y)| s + (*x - *y).abs()),
        Metric::L2 => a
            .iter()
            .zip(b)
            .fold(T::ZERO, |s, (x, y)| s + (*x - *y) * (*x - *y))
            .sqrt(),
    }
}

/// Hyper-parameters of the k-nearest-neighbour classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KNeighborsClassifier {
    /// Number of neighbours `k` (>= 1, at most the number of training rows).
    pub n_neighbors: usize,
    /// Vote weighting.
    pub weights: Weights,
    /// Distance.
    pub metric: Metric,
    /// Search method.
    pub algorithm: Algorithm,
    /// Rows per KD-tree leaf (>= 1).
    pub leaf_size: usize,
}

impl Default for KNeighborsClassifier {
    /// scikit-learn's defaults: `k = 5`, uniform votes, Euclidean distance.
    fn default() -> Self {
        KNeighborsClassifier {
            n_neighbors: 5,
            weights: Weights::Uniform,
            metric: Metric::L2,
            algorithm: Algorithm::Auto,
            leaf_size: 30,
        }
    }
}

impl KNeighborsClassifier {
    /// Defaults with `k` neighbours.
    pub fn new(k: usize) -> Self {
        KNeighborsClassifier {
            n_neighbors: k,
            ..Default::default()
        }
    }
    /// Sets the vote weighting.
    pub fn weights(mut self, w: Weights) -> Self {
        self.weights = w;
        self
    }
    /// Sets the distance.
    pub fn metric(mut self, m: Metric) -> Self {
        self.metric = m;
        self
    }
    /// Sets the search method.
    pub fn algorithm(mut self, a: Algorithm) -> Self {
        self.algorithm = a;
        self
    }
    /// Sets the KD-tree leaf size.
    pub fn leaf_size(mut self, s: usize) -> Self {
        self.leaf_size = s;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.n_neighbors >= 1,
            "n_neighbors",
            self.n_neighbors as f64,
            ">= 1",
        )?;
        param(
            self.leaf_size >= 1,
            "leaf_size",
            self.leaf_size as f64,
            ">= 1",
        )
    }
}

/// A fitted k-NN classifier: the training rows themselves (plus a KD-tree).
#[derive(Clone, Debug)]
pub struct FittedKNeighborsClassifier<T> {
    params: KNeighborsClassifier,
    /// Class index (into `classes`) of each training row.
    y: Vec<usize>,
    classes: Vec<usize>,
    index: Neighbors<T>,
}

/// The neighbour search shared by the classifier and the regressor: the training
/// rows, plus a KD-tree or the norms brute-force L2 needs.
#[derive(Clone, Debug)]
struct Neighbors<T> {
    k: usize,
    metric: Metric,
    x: Vec<T>,
    n_features: usize,
    tree: Option<KdTree<T>>,
    /// Squared norms of the training rows (brute-force L2 only, else empty).
    sq_norms: Vec<T>,
}

/// Training rows per distance tile of brute-force search.
const TRAIN_CHUNK: usize = 512;
/// Queries per distance tile of brute-force search.
const QUERY_BLOCK: usize = 512;

/// From this many features on, L1 tiles use [`l1_tile`] (register-blocked);
/// below, dl-core's `pairwise`.
const L1_MIN_DIM: usize = 64;

/// Features per pass of [`l1_tile`]: the queries' slices of this width stay in L2
/// while every training pair passes over them.
const L1_KC: usize = 256;
/// Lanes of one accumulator (8 f32 = one AVX2 register).
const L1_LANES: usize = 8;

/// `tile[i * tc + j] = sum_f |q_i[f] - t_j[f]|` for the rows of `q` and `t` (`d`
/// columns each). Four queries against two training rows at a time, so each loaded
/// vector serves two or four distances (a plain row-against-row loop loads two
/// vectors per three operations and runs at load speed); features are taken
/// [`L1_KC`] at a time to stay in cache. Under `std` on x86-64 with AVX2 the same
/// code is compiled for 256-bit vectors.
fn l1_tile<T: Scalar>(q: &[T], t: &[T], d: usize, tile: &mut [T]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked on the line above).
        unsafe { l1_tile_avx2(q, t, d, tile) };
        return;
    }
    l1_tile_body(q, t, d, tile);
}

/// [`l1_tile_body`] compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn l1_tile_avx2<T: Scalar>(q: &[T], t: &[T], d: usize, tile: &mut [T]) {
    l1_tile_body(q, t, d, tile);
}

#[inline(always)]
fn l1_tile_body<T: Scalar>(q: &[T], t: &[T], d: usize, tile: &mut [T]) {
    let (qb, tc) = (q.len() / d, t.len() / d);
    tile.fill(T::ZERO);
    let mut k0 = 0;
    while k0 < d {
        let kl = L1_KC.min(d - k0);
        let mut j = 0;
        while j < tc {
            let nr = 2.min(tc - j);
            let mut i = 0;
            while i < qb {
                let mr = 4.min(qb - i);
                if mr == 4 && nr == 2 {
                    let qr = |r: usize| &q[(i + r) * d + k0..(i + r) * d + k0 + kl];
                    let tr = |s: usize| &t[(j + s) * d + k0..(j + s) * d + k0 + kl];
                    let sums = l1_micro([qr(0), qr(1), qr(2), qr(3)], [tr(0), tr(1)]);
                    for r in 0..4 {
                        for s in 0..2 {
                            let o = &mut tile[(i + r) * tc + j + s];
                            *o = *o + sums[r][s];
                        }
                    }
                } else {
                    for r in 0..mr {
                        for s in 0..nr {
                            let a = &q[(i + r) * d + k0..(i + r) * d + k0 + kl];
                            let b = &t[(j + s) * d + k0..(j + s) * d + k0 + kl];
                            let o = &mut tile[(i + r) * tc + j + s];
                            *o = *o + distance(Metric::L1, a, b);
                        }
                    }
                }
                i += mr;
            }
            j += nr;
        }
        k0 += kl;
    }
}

/// The 4 x 2 L1 distances between equally long slices, each summed over
/// [`L1_LANES`] interleaved lanes.
#[inline(always)]
fn l1_micro<T: Scalar>(q: [&[T]; 4], t: [&[T]; 2]) -> [[T; 2]; 4] {
    let len = t[0].len();
    let full = len - len % L1_LANES;
    let mut acc = [[[T::ZERO; L1_LANES]; 2]; 4];
    let mut c = 0;
    while c < full {
        let tv: [&[T]; 2] = [&t[0][c..c + L1_LANES], &t[1][c..c + L1_LANES]];
        for r in 0..4 {
            let qv = &q[r][c..c + L1_LANES];
            for s in 0..2 {
                for l in 0..L1_LANES {
                    acc[r][s][l] = acc[r][s][l] + (qv[l] - tv[s][l]).abs();
                }
            }
        }
        c += L1_LANES;
    }
    let mut out = [[T::ZERO; 2]; 4];
    for r in 0..4 {
        for s in 0..2 {
            let a = &acc[r][s];
            let mut v = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
            for f in full..len {
                v = v + (q[r][f] - t[s][f]).abs();
            }
            out[r][s] = v;
        }
    }
    out
}

/// `sum a_i^2` with four interleaved accumulators.
fn dot_self<T: Scalar>(a: &[T]) -> T {
    let mut acc = [T::ZERO; 4];
    let chunks = a.chunks_exact(4);
    let tail = chunks.remainder().iter().fold(T::ZERO, |s, v| s + *v * *v);
    for c in chunks {
        for l in 0..4 {
            acc[l] = acc[l] + c[l] * c[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// The `k` best `(distance, index)` pairs of each query, sorted ascending with ties
/// to the lower index; empty slots hold `(inf, usize::MAX)`.
struct TopK<T> {
    k: usize,
    dist: Vec<T>,
    idx: Vec<usize>,
}

impl<T: Scalar> TopK<T> {
    fn new(rows: usize, k: usize) -> Self {
        TopK {
            k,
            dist: vec![T::infinity(); rows * k],
            idx: vec![usize::MAX; rows * k],
        }
    }

    /// Offers the distances `row[j]` (training rows `j0 + j`) to query `r`.
    #[inline]
    fn scan(&mut self, r: usize, j0: usize, row: &[T]) {
        let k = self.k;
        let (dist, idx) = (
            &mut self.dist[r * k..(r + 1) * k],
            &mut self.idx[r * k..(r + 1) * k],
        );
        let (mut wd, mut wi) = (dist[k - 1], idx[k - 1]);
        for (jj, &v) in row.iter().enumerate() {
            // Most candidates fail this test, so the loop is a compare and a branch.
            if v < wd || (v == wd && j0 + jj < wi) {
                let j = j0 + jj;
                let mut p = k - 1;
                while p > 0 && (dist[p - 1] > v || (dist[p - 1] == v && idx[p - 1] > j)) {
                    dist[p] = dist[p - 1];
                    idx[p] = idx[p - 1];
                    p -= 1;
                }
                dist[p] = v;
                idx[p] = j;
                (wd, wi) = (dist[k - 1], idx[k - 1]);
            }
        }
    }

    /// The training indices kept for query `r`, best first.
    fn row(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        self.idx[r * self.k..(r + 1) * self.k].iter().copied()
    }
}

/// Sorted distinct labels and each sample's index into them.
pub(crate) fn encode_labels(y: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut classes = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let idx = y
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0))
        .collect();
    (classes, idx)
}

impl<T: Scalar> Fit<T, usize> for KNeighborsClassifier {
    type Fitted = FittedKNeighborsClassifier<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[usize]) -> Result<Self::Fitted> {
        let index = Neighbors::build(self, x, y.len(), "KNeighborsClassifier::fit")?;
        let (classes, yi) = encode_labels(y);
        Ok(FittedKNeighborsClassifier {
            params: *self,
            y: yi,
            classes,
            index,
        })
    }
}

/// Keeps the `k` best `(distance, index)` pairs seen so far, sorted ascending, with
/// ties broken by the lower index (so brute force and the tree agree exactly).
struct Nearest<T> {
    k: usize,
    items: Vec<(T, usize)>,
}

impl<T: Scalar> Nearest<T> {
    fn new(k: usize) -> Self {
        Nearest {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }
    fn worst(&self) -> Option<T> {
        (self.items.len() == self.k).then(|| self.items[self.k - 1].0)
    }
    fn push(&mut self, d: T, i: usize) {
        let better = |a: &(T, usize)| a.0 < d || (a.0 == d && a.1 < i);
        let pos = self.items.iter().take_while(|a| better(a)).count();
        if pos < self.k {
            self.items.insert(pos, (d, i));
            self.items.truncate(self.k);
        }
    }
}

impl<T: Scalar> FittedKNeighborsClassifier<T> {
    /// The distinct class labels seen at fit time, ascending.
    pub fn classes(&self) -> &[usize] {
        &self.classes
    }

    /// The `k` nearest training rows of `query`: `(distance, training index)` pairs,
    /// nearest first.
    pub fn kneighbors(&self, query: &[T]) -> Result<Vec<(T, usize)>> {
        let q = MatRef::new(query, 1, query.len())?;
        check_predict(
            q,
            self.index.n_features,
            1,
            "KNeighborsClassifier::kneighbors",
        )?;
        Ok(self
            .index
            .kneighbors_rows(query, 1)
            .pop()
            .unwrap_or_default())
    }
}

impl<T: Scalar> Neighbors<T> {
    /// Checks the parameters and the training rows (`y_len` targets), then builds
    /// the search structure the parameters ask for.
    fn build(
        p: &KNeighborsClassifier,
        x: MatRef<'_, T>,
        y_len: usize,
        op: &'static str,
    ) -> Result<Self> {
        p.validate()?;
        check_xy(x, y_len, op)?;
        if p.n_neighbors > x.rows() {
            return Err(Error::TooFewSamples {
                k: p.n_neighbors,
                n: x.rows(),
            });
        }
        let use_tree = match p.algorithm {
            Algorithm::Brute => false,
            Algorithm::KdTree => true,
            Algorithm::Auto => x.cols() <= 12 && x.rows() > 64,
        };
        let tree = use_tree.then(|| KdTree::build(x.data(), x.rows(), x.cols(), p.leaf_size));
        let sq_norms = if !use_tree && p.metric == Metric::L2 {
            x.iter_rows().map(dot_self).collect()
        } else {
            Vec::new()
        };
        Ok(Neighbors {
            k: p.n_neighbors,
            metric: p.metric,
            x: x.data().to_vec(),
            n_features: x.cols(),
            tree,
            sq_norms,
        })
    }

    /// Nearest neighbours of each of the `rows` rows of `q` (already checked), by
    /// the KD-tree or by [`Self::brute`].
    fn kneighbors_rows(&self, q: &[T], rows: usize) -> Vec<Vec<(T, usize)>> {
        let (d, k) = (self.n_features, self.k);
        let mut out = Vec::with_capacity(rows);
        match &self.tree {
            Some(tree) => {
                for row in q.chunks_exact(d).take(rows) {
                    let mut best = Nearest::new(k);
                    tree.search(&self.x, d, row, self.metric, &mut best);
                    out.push(best.items);
                }
            }
            None => self.brute(q, rows, &mut out),
        }
        out
    }

    /// Brute-force search: distances are computed a tile at a time (up to
    /// [`QUERY_BLOCK`] queries against [`TRAIN_CHUNK`] training rows), and each
    /// query keeps its `k` best `(distance, index)` pairs while the tile is scanned,
    /// so no `queries x n` matrix is ever stored. Squared L2 on large inputs takes
    /// the GEMM expansion `||q||^2 + ||t||^2 - 2 q.t` (one [`dl_core::gemm::gemm`]
    /// per tile; the training norms were computed at fit time); L1 and small inputs
    /// use [`dl_core::distance::pairwise`]. The distances returned for the chosen
    /// neighbours are then recomputed exactly with [`distance`].
    fn brute(&self, q: &[T], rows: usize, out: &mut Vec<Vec<(T, usize)>>) {
        let (d, k, n) = (self.n_features, self.k, self.x.len() / self.n_features);
        let use_gemm = self.use_gemm(rows);
        let q_norms: Vec<T> = if use_gemm {
            q.chunks_exact(d).map(|r| dot_self(r)).collect()
        } else {
            Vec::new()
        };
        let metric = match self.metric {
            Metric::L1 => dl_core::distance::Metric::L1,
            Metric::L2 => dl_core::distance::Metric::SqL2,
        };
        let mut top = TopK::new(rows, k);
        let qb_max = QUERY_BLOCK.min(rows);
        let mut tile = vec![T::ZERO; qb_max * TRAIN_CHUNK.min(n)];
        for (c, chunk) in self.x.chunks(TRAIN_CHUNK * d).enumerate() {
            let (j0, tc) = (c * TRAIN_CHUNK, chunk.len() / d);
            for (b, block) in q.chunks(QUERY_BLOCK * d).enumerate() {
                let (r0, qb) = (b * QUERY_BLOCK, block.len() / d);
                let tile = &mut tile[..qb * tc];
                let done = if use_gemm {
                    let two = T::from_f64_lossy(-2.0);
                    dl_core::gemm::gemm(false, true, qb, tc, d, two, block, chunk, T::ZERO, tile)
                        .is_ok()
                } else if self.metric == Metric::L1 && d >= L1_MIN_DIM {
                    // Fixed pieces of queries (not one per thread), so each distance
                    // is computed the same way whatever the number of threads.
                    const PIECE: usize = 64;
                    #[cfg(feature = "std")]
                    {
                        use rayon::prelude::*;
                        tile.par_chunks_mut(PIECE * tc)
                            .zip(block.par_chunks(PIECE * d))
                            .for_each(|(t, b)| l1_tile(b, chunk, d, t));
                    }
                    #[cfg(not(feature = "std"))]
                    for (t, b) in tile.chunks_mut(PIECE * tc).zip(block.chunks(PIECE * d)) {
                        l1_tile(b, chunk, d, t);
                    }
                    true
                } else {
                    dl_core::distance::pairwise(metric, block, qb, chunk, tc, d, tile).is_ok()
                };
                if !done {
                    // Sizes were checked by the caller; fall back to direct loops.
                    for (i, r) in block.chunks_exact(d).enumerate() {
                        for (j, t) in chunk.chunks_exact(d).enumerate() {
                            tile[i * tc + j] = distance(self.metric, r, t);
                        }
                    }
                }
                for (i, row) in tile.chunks_exact_mut(tc).enumerate() {
                    if use_gemm {
                        // ||q||^2 + ||t||^2 - 2 q.t, clamped: cancellation can dip below 0.
                        let qn = q_norms[r0 + i];
                        for (v, &tn) in row.iter_mut().zip(&self.sq_norms[j0..j0 + tc]) {
                            let s = qn + tn + *v;
                            *v = if s > T::ZERO { s } else { T::ZERO };
                        }
                    }
                    top.scan(r0 + i, j0, row);
                }
            }
        }
        for (r, row) in q.chunks_exact(d).enumerate() {
            let mut nn: Vec<(T, usize)> = top
                .row(r)
                .filter(|&j| j != usize::MAX)
                .map(|j| (distance(self.metric, row, &self.x[j * d..(j + 1) * d]), j))
                .collect();
            nn.sort_by(|a, b| a.0.total_cmp_like(&b.0).then(a.1.cmp(&b.1)));
            out.push(nn);
        }
    }

    /// Whether brute force takes the GEMM expansion: L2, at least 8 features and
    /// enough work (dl-core's own rule for `pairwise`), so small problems stay exact.
    fn use_gemm(&self, rows: usize) -> bool {
        self.metric == Metric::L2
            && !self.sq_norms.is_empty()
            && self.n_features >= 8
            && rows
                .saturating_mul(self.x.len() / self.n_features)
                .saturating_mul(self.n_features)
                >= 1 << 15
    }
}

impl<T: Scalar> FittedKNeighborsClassifier<T> {
    /// Class votes (weighted per `weights`, normalised to sum to 1) for each row of
    /// `x`, as a `rows x n_classes` matrix in the order of [`Self::classes`].
    pub fn predict_proba(&self, x: MatRef<'_, T>) -> Result<Vec<T>> {
        check_predict(
            x,
            self.index.n_features,
            x.rows(),
            "KNeighborsClassifier::predict_proba",
        )?;
        let nc = self.classes.len();
        let mut out = vec![T::ZERO; x.rows() * nc];
        let nns = self.index.kneighbors_rows(x.data(), x.rows());
        for (nn, votes) in nns.iter().zip(out.chunks_exact_mut(nc)) {
            self.votes(nn, votes);
        }
        Ok(out)
    }

    fn votes(&self, nn: &[(T, usize)], votes: &mut [T]) {
        votes.iter_mut().for_each(|v| *v = T::ZERO);
        for (w, i) in neighbor_weights(self.params.weights, nn) {
            votes[self.y[i]] = votes[self.y[i]] + w;
        }
        let total: T = votes.iter().copied().sum();
        if total > T::ZERO {
            votes.iter_mut().for_each(|v| *v = *v / total);
        }
    }
}

/// Each neighbour's weight and training index: 1 under `Uniform`; `1 / d` under
/// `Distance`, except that when any neighbour is at distance 0 only those count
/// (weight 1), as in scikit-learn's `_get_weights`.
fn neighbor_weights<T: Scalar>(
    weights: Weights,
    nn: &[(T, usize)],
) -> impl Iterator<Item = (T, usize)> + '_ {
    let exact = nn.iter().any(|(d, _)| *d == T::ZERO);
    nn.iter().map(move |&(d, i)| {
        let w = match weights {
            Weights::Uniform => T::ONE,
            Weights::Distance if exact => {
                if d == T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Weights::Distance => T::ONE / d,
        };
        (w, i)
    })
}

/// A total order on floats for sorting distances (NaN cannot occur: inputs are
/// checked finite).
trait TotalCmpLike {
    fn total_cmp_like(&self, other: &Self) -> core::cmp::Ordering;
}

impl<T: Scalar> TotalCmpLike for T {
    fn total_cmp_like(&self, other: &Self) -> core::cmp::Ordering {
        self.partial_cmp(other)
            .unwrap_or(core::cmp::Ordering::Equal)
    }
}

/// Index of the largest value, the first on ties.
pub(crate) fn argmax<T: Scalar>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

impl<T: Scalar> Predict<T, usize> for FittedKNeighborsClassifier<T> {
    type Error = Error;

    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(
            x,
            self.index.n_features,
            out.len(),
            "KNeighborsClassifier::predict",
        )?;
        let mut votes = vec![T::ZERO; self.classes.len()];
        let nns = self.index.kneighbors_rows(x.data(), x.rows());
        for (nn, o) in nns.iter().zip(out.iter_mut()) {
            self.votes(nn, &mut votes);
            *o = self.classes[argmax(&votes)];
        }
        Ok(())
    }
}

/// k-nearest-neighbour regression: a query's prediction is the mean of its `k`
/// nearest training targets (or their `1 / d`-weighted mean, see [`Weights`]).
/// The settings are the classifier's (a separate type because the classifier
/// already implements `Fit` with `usize` targets, as for
/// [`crate::tree::DecisionTreeRegressor`]); the search is the classifier's.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct KNeighborsRegressor(pub KNeighborsClassifier);

impl KNeighborsRegressor {
    /// Defaults (scikit-learn's: uniform weights, Euclidean) with `k` neighbours.
    pub fn new(k: usize) -> Self {
        KNeighborsRegressor(KNeighborsClassifier::new(k))
    }
    /// Sets the neighbour weighting.
    pub fn weights(self, w: Weights) -> Self {
        KNeighborsRegressor(self.0.weights(w))
    }
    /// Sets the distance.
    pub fn metric(self, m: Metric) -> Self {
        KNeighborsRegressor(self.0.metric(m))
    }
    /// Sets the search method.
    pub fn algorithm(self, a: Algorithm) -> Self {
        KNeighborsRegressor(self.0.algorithm(a))
    }
    /// Sets the KD-tree leaf size.
    pub fn leaf_size(self, s: usize) -> Self {
        KNeighborsRegressor(self.0.leaf_size(s))
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        self.0.validate()
    }
}

/// A fitted k-NN regressor: the training rows and their targets.
#[derive(Clone, Debug)]
pub struct FittedKNeighborsRegressor<T> {
    weights: Weights,
    y: Vec<T>,
    index: Neighbors<T>,
}

impl<T: Scalar> Fit<T, T> for KNeighborsRegressor {
    type Fitted = FittedKNeighborsRegressor<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[T]) -> Result<Self::Fitted> {
        let index = Neighbors::build(&self.0, x, y.len(), "KNeighborsRegressor::fit")?;
        if let Some(row) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { row, col: x.cols() });
        }
        Ok(FittedKNeighborsRegressor {
            weights: self.0.weights,
            y: y.to_vec(),
            index,
        })
    }
}

impl<T: Scalar> FittedKNeighborsRegressor<T> {
    /// The `k` nearest training rows of `query`: `(distance, training index)` pairs,
    /// nearest first.
    pub fn kneighbors(&self, query: &[T]) -> Result<Vec<(T, usize)>> {
        let q = MatRef::new(query, 1, query.len())?;
        check_predict(
            q,
            self.index.n_features,
            1,
            "KNeighborsRegressor::kneighbors",
        )?;
        Ok(self
            .index
            .kneighbors_rows(query, 1)
            .pop()
            .unwrap_or_default())
    }
}

impl<T: Scalar> Predict<T, T> for FittedKNeighborsRegressor<T> {
    type Error = Error;

    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [T]) -> Result<()> {
        check_predict(
            x,
            self.index.n_features,
            out.len(),
            "KNeighborsRegressor::predict",
        )?;
        let nns = self.index.kneighbors_rows(x.data(), x.rows());
        for (nn, o) in nns.iter().zip(out.iter_mut()) {
            let (mut num, mut den) = (T::ZERO, T::ZERO);
            for (w, i) in neighbor_weights(self.weights, nn) {
                num = num + w * self.y[i];
                den = den + w;
            }
            *o = num / den;
        }
        Ok(())
    }
}

/// A KD-tree over row indices: each inner node splits its rows at the median of the
/// dimension of widest spread.
#[derive(Clone, Debug)]
struct KdTree<T> {
    /// Row indices, permuted so each node owns a contiguous range.
    idx: Vec<usize>,
    nodes: Vec<KdNode<T>>,
}

#[derive(Clone, Debug)]
struct KdNode<T> {
    start: usize,
    end: usize,
    /// `(dimension, split value, left child, right child)` for inner nodes.
    split: Option<(usize, T, usize, usize)>,
}

impl<T: Scalar> KdTree<T> {
    fn build(x: &[T], n: usize, d: usize, leaf_size: usize) -> Self {
        let mut tree = KdTree {
            idx: (0..n).collect(),
            nodes: Vec::new(),
        };
        tree.build_node(x, d, 0, n, leaf_size);
        tree
    }

    fn build_node(&mut self, x: &[T], d: usize, start: usize, end: usize, leaf: usize) -> usize {
        let id = self.nodes.len();
        self.nodes.push(KdNode {
            start,
            end,
            split: None,
        });
        if end - start <= leaf {
            return id;
        }
        let mut dim = 0;
        let mut spread = T::neg_infinity();
        for j in 0..d {
            let (lo, hi) = self.idx[start..end]
                .iter()
                .fold((T::infinity(), T::neg_infinity()), |(lo, hi), &i| {
                    (lo.min(x[i * d + j]), hi.max(x[i * d + j]))
                });
            if hi - lo > spread {
                spread = hi - lo;
                dim = j;
            }
        }
        if spread <= T::ZERO {
            return id; // all rows identical: keep as a leaf
        }
        let mid = (start + end) / 2;
        self.idx[start..end].select_nth_unstable_by(mid - start, |&a, &b| {
            x[a * d + dim]
                .partial_cmp(&x[b * d + dim])
                .unwrap_or(core::cmp::Ordering::Equal)
        });
        let value = x[self.idx[mid] * d + dim];
        let left = self.build_node(x, d, start, mid, leaf);
        let right = self.build_node(x, d, mid, end, leaf);
        self.nodes[id].split = Some((dim, value, left, right));
        id
    }

    fn search(&self, x: &[T], d: usize, q: &[T], metric: Metric, best: &mut Nearest<T>) {
        self.search_node(0, x, d, q, metric, best);
    }

    fn search_node(
        &self,
        node: usize,
        x: &[T],
        d: usize,
        q: &[T],
        metric: Metric,
        best: &mut Nearest<T>,
    ) {
        let n = &self.nodes[node];
        match n.split {
            None => {
                for &i in &self.idx[n.start..n.end] {
                    best.push(distance(metric, q, &x[i * d..(i + 1) * d]), i);
                }
            }
            Some((dim, value, left, right)) => {
                // Left holds values <= split, right >= split (the median may repeat).
                let diff = q[dim] - value;
                let (near, far) = if diff <= T::ZERO {
                    (left, right)
                } else {
                    (right, left)
                };
                self.search_node(near, x, d, q, metric, best);
                // |q_dim - split| bounds the distance to any row across the plane
                // for both L1 and L2; equal bounds are still searched so index ties
                // resolve exactly as in brute force.
                if best.worst().is_none_or(|w| diff.abs() <= w) {
                    self.search_node(far, x, d, q, metric, best);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regressor_means_by_hand_and_exact_match_rule() {
        let x = [0.0f64, 1.0, 10.0];
        let y = [0.0f64, 2.0, 10.0];
        let xm = MatRef::new(&x, 3, 1).unwrap();
        let q = MatRef::new(&[8.0f64, 1.0], 2, 1).unwrap();
        // Query 8: neighbours 10 (d = 2, y = 10) and 1 (d = 7, y = 2).
        // Query 1: neighbours 1 (d = 0, y = 2) and 0 (d = 1, y = 0).
        let u = KNeighborsRegressor::new(2).fit(xm, &y).unwrap();
        assert_eq!(u.predict(q).unwrap(), vec![6.0, 1.0]);
        let w = KNeighborsRegressor::new(2)
            .weights(Weights::Distance)
            .fit(xm, &y)
            .unwrap()
            .predict(q)
            .unwrap();
        let want = (10.0 / 2.0 + 2.0 / 7.0) / (1.0 / 2.0 + 1.0 / 7.0);
        // Two products, two sums and a division: a few ulps.
        assert!((w[0] - want).abs() <= 4.0 * f64::EPSILON * want, "{}", w[0]);
        // A neighbour at distance 0 takes all the weight.
        assert_eq!(w[1], 2.0);
    }

    #[test]
    fn regressor_bad_input_gives_named_errors() {
        let x = [0.0f64, 1.0, 2.0, 3.0];
        let y = [0.0f64, 1.0];
        let xm = MatRef::new(&x, 2, 2).unwrap();
        let e = KNeighborsRegressor::new(0).fit(xm, &y).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "n_neighbors",
                    ..
                }
            ),
            "{e:?}"
        );
        let e = KNeighborsRegressor::new(3).fit(xm, &y).unwrap_err();
        assert!(matches!(e, Error::TooFewSamples { k: 3, n: 2 }), "{e:?}");
        let e = KNeighborsRegressor::new(1)
            .fit(MatRef::new(&[] as &[f64], 0, 2).unwrap(), &[])
            .unwrap_err();
        assert!(matches!(e, Error::EmptyData { .. }), "{e:?}");
        let bad_x = [0.0f64, f64::NAN, 2.0, 3.0];
        let e = KNeighborsRegressor::new(1)
            .fit(MatRef::new(&bad_x, 2, 2).unwrap(), &y)
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 0, col: 1 }), "{e:?}");
        let e = KNeighborsRegressor::new(1)
            .fit(xm, &[0.0, f64::NAN])
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { row: 1, col: 2 }), "{e:?}");
        let m = KNeighborsRegressor::new(1).fit(xm, &y).unwrap();
        let e = m
            .predict(MatRef::new(&[f64::NAN, 0.0], 1, 2).unwrap())
            .unwrap_err();
        assert!(matches!(e, Error::NonFinite { .. }), "{e:?}");
        let e = m.predict(MatRef::new(&[0.0], 1, 1).unwrap()).unwrap_err();
        assert!(matches!(e, Error::FeatureMismatch { .. }), "{e:?}");
    }

    #[test]
    fn one_nn_on_points_and_distance_weighting() {
        let x = [0.0f64, 0.0, 1.0, 0.0, 10.0, 0.0];
        let y = [0usize, 0, 1];
        let m = KNeighborsClassifier::new(3)
            .weights(Weights::Distance)
            .fit(MatRef::new(&x, 3, 2).unwrap(), &y)
            .unwrap();
        // Query at 8: distances 8, 7, 2 -> votes class0 = 1/8 + 1/7, class1 = 1/2.
        let p = m
            .predict_proba(MatRef::new(&[8.0, 0.0], 1, 2).unwrap())
            .unwrap();
        let (a, b) = (1.0 / 8.0 + 1.0 / 7.0, 0.5);
        assert!((p[0] - a / (a + b)).abs() < 1e-12);
        // Uniform: 2 votes vs 1 -> class 0.
        let u = KNeighborsClassifier::new(3)
            .fit(MatRef::new(&x, 3, 2).unwrap(), &y)
            .unwrap();
        assert_eq!(
            u.predict(MatRef::new(&[8.0, 0.0], 1, 2).unwrap()).unwrap(),
            vec![0]
        );
        assert_eq!(
            m.predict(MatRef::new(&[8.0, 0.0], 1, 2).unwrap()).unwrap(),
            vec![1]
        );
    }

    #[test]
    fn cs231n_l1_fixture_through_brute_force_and_tree() {
        // Images as 16-feature rows; their L1 distance is 456 (CS231n).
        let test = [
            56.0f64, 32., 10., 18., 90., 23., 128., 133., 24., 26., 178., 200., 2., 0., 255., 220.,
        ];
        let train = [
            10.0f64, 20., 24., 17., 8., 10., 89., 100., 12., 16., 178., 170., 4., 32., 233., 112.,
        ];
        for algo in [Algorithm::Brute, Algorithm::KdTree] {
            let m = KNeighborsClassifier::new(1)
                .metric(Metric::L1)
                .algorithm(algo)
                .fit(MatRef::new(&train, 1, 16).unwrap(), &[3])
                .unwrap();
            assert_eq!(m.kneighbors(&test).unwrap(), vec![(456.0, 0)]);
        }
    }

    #[test]
    fn brute_force_l1_tiles_match_naive_distances() {
        // d >= 64 takes the register-blocked L1 tile; 70 features leave a tail
        // after the 8-lane chunks, 11 queries and 37 rows leave partial 4 x 2 tiles.
        let mut rng = dl_core::Rng::seed_from_u64(3);
        let (n, d, m) = (37, 70, 11);
        let x: Vec<f32> = (0..n * d).map(|_| rng.below(256) as f32).collect();
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let q: Vec<f32> = (0..m * d).map(|_| rng.below(256) as f32).collect();
        let model = KNeighborsClassifier::new(4)
            .metric(Metric::L1)
            .algorithm(Algorithm::Brute)
            .fit(MatRef::new(&x, n, d).unwrap(), &y)
            .unwrap();
        let got = model.index.kneighbors_rows(&q, m);
        for (row, nn) in q.chunks(d).zip(&got) {
            let mut naive: Vec<(f32, usize)> = x
                .chunks(d)
                .enumerate()
                .map(|(j, t)| (row.iter().zip(t).map(|(a, b)| (a - b).abs()).sum(), j))
                .collect();
            naive.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
            assert_eq!(nn, &naive[..4].to_vec());
        }
    }

    #[test]
    fn kd_tree_agrees_with_brute_force() {
        let mut rng = dl_core::Rng::seed_from_u64(5);
        let (n, d) = (500, 3);
        // Integer coordinates so many distances tie.
        let x: Vec<f64> = (0..n * d).map(|_| rng.below(6) as f64).collect();
        let y: Vec<usize> = (0..n).map(|i| i % 4).collect();
        let q: Vec<f64> = (0..50 * d)
            .map(|_| rng.below(6) as f64 + 0.5 * rng.below(2) as f64)
            .collect();
        for metric in [Metric::L1, Metric::L2] {
            let base = KNeighborsClassifier::new(7).metric(metric).leaf_size(4);
            let brute = base
                .algorithm(Algorithm::Brute)
                .fit(MatRef::new(&x, n, d).unwrap(), &y)
                .unwrap();
            let tree = base
                .algorithm(Algorithm::KdTree)
                .fit(MatRef::new(&x, n, d).unwrap(), &y)
                .unwrap();
            for row in q.chunks(d) {
                assert_eq!(
                    brute.kneighbors(row).unwrap(),
                    tree.kneighbors(row).unwrap()
                );
            }
        }
    }
}
