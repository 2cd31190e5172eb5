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

/// Nearest centre (squared distance, index), the lower index on ties.
fn nearest(row: &[f64], centers: &[f64], d: usize) -> (f64, usize) {
    let mut best = (f64::INFINITY, 0);
    for (c, ctr) in centers.chunks_exact(d).enumerate() {
        let dist = sq_dist(row, ctr);
        if dist < best.0 {
            best = (dist, c);
        }
    }
    best
}

/// Greedy k-means++ seeding.
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
    let mut cand_dist = vec![0.0; n];
    let mut best_dist = vec![0.0; n];
    for _ in 1..k {
        let mut best: Option<(f64, usize)> = None;
        for _ in 0..trials {
            // Draw a sample with probability proportional to its D^2.
            let target = rng.next_f64() * pot;
            let mut acc = 0.0;
            let mut cand = n - 1;
            for (i, &c) in closest.iter().enumerate() {
                acc += c;
                if acc > target {
                    cand = i;
                    break;
                }
            }
            let cr = &x[cand * d..(cand + 1) * d];
            let mut p = 0.0;
            for (i, r) in x.chunks_exact(d).enumerate() {
                cand_dist[i] = closest[i].min(sq_dist(r, cr));
                p += cand_dist[i];
            }
            if best.is_none_or(|(bp, _)| p < bp) {
                best = Some((p, cand));
                best_dist.copy_from_slice(&cand_dist);
            }
        }
        let (p, cand) = best.unwrap_or((pot, 0));
        centers.extend_from_slice(&x[cand * d..(cand + 1) * d]);
        closest.copy_from_slice(&best_dist);
        pot = p;
    }
    centers
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
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    let mut iters = 0;
    for it in 0..max_iter {
        iters = it + 1;
        let mut changed = false;
        for (i, r) in x.chunks_exact(d).enumerate() {
            let (dist, c) = nearest(r, centers, d);
            dists[i] = dist;
            if labels[i] != c {
                labels[i] = c;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        sums.iter_mut().for_each(|v| *v = 0.0);
        counts.iter_mut().for_each(|v| *v = 0);
        for (i, r) in x.chunks_exact(d).enumerate() {
            counts[labels[i]] += 1;
            for j in 0..d {
                sums[labels[i] * d + j] += r[j];
            }
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
    let mut inertia = 0.0;
    for (i, r) in x.chunks_exact(d).enumerate() {
        let (dist, c) = nearest(r, centers, d);
        labels[i] = c;
        inertia += dist;
    }
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
        let mut row = vec![0.0; d];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            for (a, b) in row.iter_mut().zip(r) {
                *a = b.to_f64_lossless();
            }
            *o = nearest(&row, &c, d).1;
        }
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
