//! k-means clustering (Lloyd's algorithm): alternately assign each sample to its
//! nearest centroid and move each centroid to the mean of its samples, minimizing
//! the inertia `sum_i ||x_i - mu_{c(i)}||^2`.
//!
//! - Initialization: greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's
//!   variant): each new centre is the best of `2 + ln k` candidates drawn with
//!   probability proportional to `D(x)^2`, or `Random` distinct samples.
//! - `n_init` runs from independent seeded streams; the lowest inertia wins.
//! - Stops when no label changes, or when the squared centre shift falls to
//!   `tol * mean_j var(x_j)` (scikit-learn's tolerance), or after `max_iter`.
//! - An empty cluster is re-seeded with the sample farthest from its centre.
//!
//! Speed: each assignment pass measures a row against a block of 8 centres at once
//! (feature-major centres, vectorized across centres; AVX2 when the CPU has it) and
//! accumulates the new centres' sums in the same pass; under `std` the rows are
//! split into fixed chunks over rayon's threads, whose partial sums are combined in
//! chunk order, so results do not depend on the number of threads.

use crate::error::{check_predict, param, Error, Result};
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Rng, Scalar};

/// How the first centroids are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KMeansInit {
    /// Greedy k-means++.
    #[default]
    PlusPlus,
    /// `k` distinct samples drawn uniformly.
    Random,
}

/// k-means hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KMeans {
    /// Number of clusters `k` (>= 1, at most the number of samples).
    pub n_clusters: usize,
    /// Independent runs (>= 1); the lowest inertia is kept.
    pub n_init: usize,
    /// Lloyd iterations per run (>= 1).
    pub max_iter: usize,
    /// Relative tolerance on the centre shift (>= 0).
    pub tol: f64,
    /// Initialization.
    pub init: KMeansInit,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for KMeans {
    fn default() -> Self {
        KMeans {
            n_clusters: 8,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            init: KMeansInit::PlusPlus,
            seed: 0,
        }
    }
}

impl KMeans {
    /// Defaults with `k` clusters.
    pub fn new(k: usize) -> Self {
        KMeans {
            n_clusters: k,
            ..Default::default()
        }
    }
    /// Sets the number of runs.
    pub fn n_init(mut self, v: usize) -> Self {
        self.n_init = v;
        self
    }
    /// Sets the iteration cap.
    pub fn max_iter(mut self, v: usize) -> Self {
        self.max_iter = v;
        self
    }
    /// Sets the tolerance.
    pub fn tol(mut self, v: f64) -> Self {
        self.tol = v;
        self
    }
    /// Sets the initialization.
    pub fn init(mut self, v: KMeansInit) -> Self {
        self.init = v;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.n_clusters >= 1,
            "n_clusters",
            self.n_clusters as f64,
            ">= 1",
        )?;
        param(self.n_init >= 1, "n_init", self.n_init as f64, ">= 1")?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")?;
        param(
            self.tol >= 0.0 && self.tol.is_finite(),
            "tol",
            self.tol,
            ">= 0",
        )
    }
}

/// A fitted k-means model.
#[derive(Clone, Debug)]
pub struct FittedKMeans<T> {
    /// `k x d` centroids.
    pub centroids: Vec<T>,
    /// Cluster of each training sample.
    pub labels: Vec<usize>,
    /// Sum of squared distances to the nearest centroid.
    pub inertia: T,
    /// Lloyd iterations of the winning run.
    pub n_iter: usize,
    n_features: usize,
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Centres handled together by [`nearest`]: one block's squared distances live in
/// this many accumulators, which the compiler keeps in vector registers.
const LANES: usize = 8;

/// Rows per unit of parallel work. Fixed (not derived from the thread count), and
/// partial results are combined in chunk order, so every result is the same
/// whatever the number of threads.
const CHUNK: usize = 4096;

/// Centres rearranged for [`nearest`]: blocks of [`LANES`] centres, each block
/// feature-major (`d x LANES`), the last block padded with `+inf` centres (at
/// infinite distance from every row, so never nearest).
struct Packed {
    data: Vec<f64>,
    k: usize,
    d: usize,
}

impl Packed {
    fn new(centers: &[f64], d: usize) -> Self {
        let k = centers.len() / d;
        let blocks = k.div_ceil(LANES);
        let mut data = vec![f64::INFINITY; blocks * d * LANES];
        for (c, ctr) in centers.chunks_exact(d).enumerate() {
            let block = &mut data[(c / LANES) * d * LANES..];
            for (j, &v) in ctr.iter().enumerate() {
                block[j * LANES + c % LANES] = v;
            }
        }
        Packed { data, k, d }
    }
}

/// Squared distances from `row` to every packed centre, into `out` (length
/// `blocks * LANES`). Each distance is summed over features in order, exactly as
/// [`sq_dist`] does, so results do not depend on the packing; the loop runs across
/// the centres of a block, which vectorizes without a horizontal sum.
#[inline(always)]
fn centre_dists(row: &[f64], p: &Packed, out: &mut [f64]) {
    for (block, o) in p
        .data
        .chunks_exact(p.d * LANES)
        .zip(out.chunks_exact_mut(LANES))
    {
        let mut acc = [0.0f64; LANES];
        for (&x, c) in row.iter().zip(block.chunks_exact(LANES)) {
            for l in 0..LANES {
                let t = x - c[l];
                acc[l] += t * t;
            }
        }
        o.copy_from_slice(&acc);
    }
}

/// The smallest distance and its index, the lower index on ties.
fn argmin(dists: &[f64]) -> (f64, usize) {
    let mut best = (f64::INFINITY, 0);
    for (c, &dist) in dists.iter().enumerate() {
        if dist < best.0 {
            best = (dist, c);
        }
    }
    best
}

/// Calls `f(i, distances of row i to the k centres)` for each row of `rows`; under
/// `std` on x86-64 with AVX2 the distance loop is compiled for 4-lane vectors (the
/// same operations in the same order, so the same results).
fn centre_dists_rows(rows: &[f64], p: &Packed, f: impl FnMut(usize, &[f64])) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked on the line above).
        unsafe { centre_dists_rows_avx2(rows, p, f) };
        return;
    }
    centre_dists_rows_body(rows, p, f);
}

/// [`centre_dists_rows_body`] compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
unsafe fn centre_dists_rows_avx2(rows: &[f64], p: &Packed, f: impl FnMut(usize, &[f64])) {
    centre_dists_rows_body(rows, p, f);
}

/// Rows measured together by [`centre_dists_rows_body`]: their distance sums are
/// independent dependency chains, so the adds overlap instead of waiting on each
/// other (each distance is still summed over features in order).
const ROWS: usize = 4;

#[inline(always)]
fn centre_dists_rows_body(rows: &[f64], p: &Packed, mut f: impl FnMut(usize, &[f64])) {
    let d = p.d;
    let width = p.k.div_ceil(LANES) * LANES;
    let mut buf = vec![0.0; ROWS * width];
    let groups = rows.chunks_exact(ROWS * d);
    let tail = groups.remainder();
    for (g, group) in groups.enumerate() {
        for (b, block) in p.data.chunks_exact(d * LANES).enumerate() {
            let mut acc = [[0.0f64; LANES]; ROWS];
            for (j, c) in block.chunks_exact(LANES).enumerate() {
                for r in 0..ROWS {
                    let x = group[r * d + j];
                    for l in 0..LANES {
                        let t = x - c[l];
                        acc[r][l] += t * t;
                    }
                }
            }
            for r in 0..ROWS {
                buf[r * width + b * LANES..r * width + (b + 1) * LANES].copy_from_slice(&acc[r]);
            }
        }
        for r in 0..ROWS {
            f(g * ROWS + r, &buf[r * width..r * width + p.k]);
        }
    }
    let first = (rows.len() - tail.len()) / d;
    for (i, row) in tail.chunks_exact(d).enumerate() {
        centre_dists(row, p, &mut buf[..width]);
        f(first + i, &buf[..p.k]);
    }
}

/// Runs `f(chunk index, rows of the chunk)` on consecutive chunks of
/// [`CHUNK`] rows of `x` (in parallel under `std`) and returns the results in chunk
/// order.
fn map_chunks<R: Send>(
    x: &[f64],
    d: usize,
    f: impl Fn(usize, &[f64]) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "std")]
    {
        use rayon::prelude::*;
        x.par_chunks(CHUNK * d)
            .enumerate()
            .map(|(c, rows)| f(c, rows))
            .collect()
    }
    #[cfg(not(feature = "std"))]
    {
        x.chunks(CHUNK * d)
            .enumerate()
            .map(|(c, rows)| f(c, rows))
            .collect()
    }
}

/// [`map_chunks`] that also hands each chunk its slices of two per-row buffers.
fn map_chunks_mut<A: Send, B: Send, R: Send>(
    x: &[f64],
    d: usize,
    a: &mut [A],
    b: &mut [B],
    f: impl Fn(&[f64], &mut [A], &mut [B]) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "std")]
    {
        use rayon::prelude::*;
        x.par_chunks(CHUNK * d)
            .zip(a.par_chunks_mut(CHUNK))
            .zip(b.par_chunks_mut(CHUNK))
            .map(|((rows, a), b)| f(rows, a, b))
            .collect()
    }
    #[cfg(not(feature = "std"))]
    {
        x.chunks(CHUNK * d)
            .zip(a.chunks_mut(CHUNK))
            .zip(b.chunks_mut(CHUNK))
            .map(|((rows, a), b)| f(rows, a, b))
            .collect()
    }
}

/// `f(rows of the chunk, its slice of a)` on each chunk (in parallel under `std`).
fn for_chunks_mut<A: Send>(
    x: &[f64],
    d: usize,
    a: &mut [A],
    f: impl Fn(&[f64], &mut [A]) + Sync + Send,
) {
    #[cfg(feature = "std")]
    {
        use rayon::prelude::*;
        x.par_chunks(CHUNK * d)
            .zip(a.par_chunks_mut(CHUNK))
            .for_each(|(rows, a)| f(rows, a));
    }
    #[cfg(not(feature = "std"))]
    {
        x.chunks(CHUNK * d)
            .zip(a.chunks_mut(CHUNK))
            .for_each(|(rows, a)| f(rows, a));
    }
}

/// Greedy k-means++ seeding. The `2 + ln k` candidates of a step are all drawn
/// first (each draw depends only on the current `D^2`), then scored in one pass
/// over the data.
pub(crate) fn plus_plus(x: &[f64], n: usize, d: usize, k: usize, rng: &mut Rng) -> Vec<f64> {
    let mut centers = Vec::with_capacity(k * d);
    let first = rng.below(n);
    centers.extend_from_slice(&x[first * d..(first + 1) * d]);
    let mut closest: Vec<f64> = x
        .chunks_exact(d)
        .map(|r| sq_dist(r, &centers[..d]))
        .collect();
    let mut pot: f64 = closest.iter().sum();
    let trials = 2 + libm::log(k as f64) as usize;
    let mut cands = Vec::with_capacity(trials);
    let mut cand_rows = Vec::with_capacity(trials * d);
    let mut cumulative = vec![0.0; n];
    for _ in 1..k {
        cands.clear();
        cand_rows.clear();
        // Running sums of D^2, so each draw is a binary search.
        let mut acc = 0.0;
        for (c, &v) in cumulative.iter_mut().zip(&closest) {
            acc += v;
            *c = acc;
        }
        for _ in 0..trials {
            // A sample with probability proportional to its D^2: the first whose
            // running sum exceeds the target.
            let target = rng.next_f64() * pot;
            let cand = cumulative.partition_point(|&c| c <= target).min(n - 1);
            cands.push(cand);
            cand_rows.extend_from_slice(&x[cand * d..(cand + 1) * d]);
        }
        // Potential of each candidate: sum_i min(D^2_i, ||x_i - c||^2), summed per
        // chunk, then over chunks in order.
        let packed = Packed::new(&cand_rows, d);
        let closest_ref = &closest;
        let partial = map_chunks(x, d, |chunk, rows| {
            let mut p = vec![0.0; trials];
            let closest = &closest_ref[chunk * CHUNK..];
            centre_dists_rows(rows, &packed, |i, dists| {
                for (pt, &dist) in p.iter_mut().zip(dists) {
                    *pt += closest[i].min(dist);
                }
            });
            p
        });
        let mut best = (f64::INFINITY, 0);
        for t in 0..trials {
            let p: f64 = partial.iter().map(|v| v[t]).sum();
            if p < best.0 {
                best = (p, t);
            }
        }
        let (p, t) = if best.0.is_finite() { best } else { (pot, 0) };
        let cr = &cand_rows[t * d..(t + 1) * d];
        centers.extend_from_slice(cr);
        for_chunks_mut(x, d, &mut closest, |rows, closest| {
            for (c, r) in closest.iter_mut().zip(rows.chunks_exact(d)) {
                *c = c.min(sq_dist(r, cr));
            }
        });
        pot = p;
    }
    centers
}

/// One assignment pass: labels and distances of every row, and per chunk the
/// per-cluster sums and counts and whether any label changed.
fn assign(
    x: &[f64],
    d: usize,
    centers: &[f64],
    labels: &mut [usize],
    dists: &mut [f64],
) -> (Vec<f64>, Vec<usize>, bool) {
    let k = centers.len() / d;
    let packed = Packed::new(centers, d);
    let partial = map_chunks_mut(x, d, labels, dists, |rows, labels, dists| {
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0usize; k];
        let mut changed = false;
        centre_dists_rows(rows, &packed, |i, all| {
            let (dist, c) = argmin(all);
            dists[i] = dist;
            if labels[i] != c {
                labels[i] = c;
                changed = true;
            }
            counts[c] += 1;
            for (s, v) in sums[c * d..(c + 1) * d]
                .iter_mut()
                .zip(&rows[i * d..(i + 1) * d])
            {
                *s += v;
            }
        });
        (sums, counts, changed)
    });
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    let mut changed = false;
    for (s, c, ch) in partial {
        sums.iter_mut().zip(&s).for_each(|(a, b)| *a += b);
        counts.iter_mut().zip(&c).for_each(|(a, b)| *a += b);
        changed |= ch;
    }
    (sums, counts, changed)
}

/// One Lloyd run from `centers`: returns (labels, inertia, iterations).
pub(crate) fn lloyd(
    x: &[f64],
    n: usize,
    d: usize,
    centers: &mut [f64],
    max_iter: usize,
    tol: f64,
) -> (Vec<usize>, f64, usize) {
    let k = centers.len() / d;
    let mut labels = vec![usize::MAX; n];
    let mut dists = vec![0.0; n];
    let mut iters = 0;
    for it in 0..max_iter {
        iters = it + 1;
        let (mut sums, mut counts, changed) = assign(x, d, centers, &mut labels, &mut dists);
        if !changed {
            break;
        }
        for c in 0..k {
            if counts[c] == 0 {
                // Re-seed an empty cluster at the worst-served sample.
                let far = (0..n).fold(0, |b, i| if dists[i] > dists[b] { i } else { b });
                sums[c * d..(c + 1) * d].copy_from_slice(&x[far * d..(far + 1) * d]);
                counts[c] = 1;
                dists[far] = 0.0;
            }
        }
        let mut shift = 0.0;
        for c in 0..k {
            for j in 0..d {
                let m = sums[c * d + j] / counts[c] as f64;
                shift += (m - centers[c * d + j]) * (m - centers[c * d + j]);
                centers[c * d + j] = m;
            }
        }
        if shift <= tol {
            break;
        }
    }
    // Final assignment against the final centres.
    assign(x, d, centers, &mut labels, &mut dists);
    let inertia = dists.iter().sum();
    (labels, inertia, iters)
}

impl<T: Scalar> Fit<T, ()> for KMeans {
    type Fitted = FittedKMeans<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedKMeans<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "KMeans::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), self.n_clusters);
        if k > n {
            return Err(Error::TooFewSamples { k, n });
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        // Absolute tolerance: tol times the mean feature variance.
        let mut mean = vec![0.0; d];
        crate::linalg::col_means(&xf, n, d, &mut mean);
        let mean_var = xf.chunks_exact(d).map(|r| sq_dist(r, &mean)).sum::<f64>() / (n * d) as f64;
        let tol = self.tol * mean_var;
        let mut rng = Rng::seed_from_u64(self.seed);
        let mut best: Option<(Vec<f64>, Vec<usize>, f64, usize)> = None;
        for run in 0..self.n_init {
            let mut r = rng.fork(run as u64);
            let mut centers = match self.init {
                KMeansInit::PlusPlus => plus_plus(&xf, n, d, k, &mut r),
                KMeansInit::Random => {
                    let mut idx: Vec<usize> = (0..n).collect();
                    r.shuffle(&mut idx);
                    idx[..k]
                        .iter()
                        .flat_map(|&i| xf[i * d..(i + 1) * d].iter().copied())
                        .collect()
                }
            };
            let (labels, inertia, iters) = lloyd(&xf, n, d, &mut centers, self.max_iter, tol);
            if best.as_ref().is_none_or(|b| inertia < b.2) {
                best = Some((centers, labels, inertia, iters));
            }
        }
        let (centers, labels, inertia, n_iter) =
            best.ok_or(Error::EmptyData { op: "KMeans::fit" })?;
        Ok(FittedKMeans {
            centroids: centers.iter().map(|v| T::from_f64_lossy(*v)).collect(),
            labels,
            inertia: T::from_f64_lossy(inertia),
            n_iter,
            n_features: d,
        })
    }
}

impl<T: Scalar> Predict<T, usize> for FittedKMeans<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.n_features, out.len(), "KMeans::predict")?;
        let d = self.n_features;
        let c: Vec<f64> = self.centroids.iter().map(|v| v.to_f64_lossless()).collect();
        let packed = Packed::new(&c, d);
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        centre_dists_rows(&xf, &packed, |i, dists| out[i] = argmin(dists).1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_three_blobs_and_reports_inertia() {
        // Blobs at 0, 10, 20 (1-D), each {c-1, c, c+1}: inertia = 3 * 2 = 6.
        let x = [-1.0f64, 0.0, 1.0, 9.0, 10.0, 11.0, 19.0, 20.0, 21.0];
        let m = KMeans::new(3)
            .seed(1)
            .fit(MatRef::new(&x, 9, 1).unwrap(), &[])
            .unwrap();
        assert!((m.inertia - 6.0).abs() < 1e-12, "{}", m.inertia);
        let l = &m.labels;
        assert!(l[0] == l[1] && l[1] == l[2] && l[3] == l[4] && l[6] == l[8]);
        assert!(l[0] != l[3] && l[3] != l[6] && l[0] != l[6]);
        let p = m.predict(MatRef::new(&[19.5, 0.2], 2, 1).unwrap()).unwrap();
        assert_eq!(p, vec![l[6], l[0]]);
    }
}
