//! Spectral clustering (Ng, Jordan & Weiss 2001; von Luxburg 2007): build an
//! affinity graph `A`, take the `k` eigenvectors of the normalized Laplacian
//! `L = I - D^-1/2 A D^-1/2` with the smallest eigenvalues, divide each row by
//! `sqrt(degree)` (scikit-learn's embedding), and run k-means on the rows.
//!
//! - Affinities: RBF `exp(-gamma ||x_i - x_j||^2)`, or the symmetrized k-nearest-
//!   neighbour graph `(C + C^T) / 2` (`C_ij = 1` if `j` is among the `k` nearest of
//!   `i`, itself included).
//! - Eigenvectors: the top-`k` of `M = D^-1/2 A D^-1/2 + I` (same vectors, spectrum
//!   shifted into `[0, 2]`) by subspace iteration with Rayleigh-Ritz, which needs
//!   only products with `M` (cheap for a sparse k-NN graph); small problems
//!   (`n <= 200`) use the dense Jacobi eigendecomposition.

use crate::error::{param, Error, Result};
use crate::kmeans::KMeans;
use crate::linalg;
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Rng, Scalar};

/// How the affinity graph is built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Affinity {
    /// `exp(-gamma ||x_i - x_j||^2)`.
    Rbf {
        /// Scale (> 0).
        gamma: f64,
    },
    /// Symmetrized k-nearest-neighbour connectivity.
    NearestNeighbors {
        /// Neighbours per sample, itself included (>= 1).
        n_neighbors: usize,
    },
}

/// Spectral clustering hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectralClustering {
    /// Clusters `k` (>= 1).
    pub n_clusters: usize,
    /// Affinity graph.
    pub affinity: Affinity,
    /// k-means restarts on the embedding (>= 1).
    pub n_init: usize,
    /// Seed (subspace start and k-means).
    pub seed: u64,
}

impl Default for SpectralClustering {
    fn default() -> Self {
        SpectralClustering {
            n_clusters: 8,
            affinity: Affinity::Rbf { gamma: 1.0 },
            n_init: 10,
            seed: 0,
        }
    }
}

impl SpectralClustering {
    /// Defaults with `k` clusters.
    pub fn new(k: usize) -> Self {
        SpectralClustering {
            n_clusters: k,
            ..Default::default()
        }
    }
    /// Sets the affinity.
    pub fn affinity(mut self, a: Affinity) -> Self {
        self.affinity = a;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
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
        match self.affinity {
            Affinity::Rbf { gamma } => {
                param(gamma > 0.0 && gamma.is_finite(), "gamma", gamma, "> 0")
            }
            Affinity::NearestNeighbors { n_neighbors } => {
                param(n_neighbors >= 1, "n_neighbors", n_neighbors as f64, ">= 1")
            }
        }
    }
}

/// The clustering: labels and the spectral embedding.
#[derive(Clone, Debug)]
pub struct FittedSpectralClustering<T> {
    /// Cluster of each sample.
    pub labels: Vec<usize>,
    /// The embedding, `n x k`.
    pub embedding: Vec<f64>,
    _t: core::marker::PhantomData<T>,
}

/// Sparse symmetric affinity as adjacency lists (`(j, a_ij)`), or dense.
fn affinity_rows(x: &[f64], n: usize, d: usize, a: Affinity) -> Vec<Vec<(usize, f64)>> {
    let dist2 = |i: usize, j: usize| -> f64 {
        (0..d)
            .map(|c| (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]))
            .sum()
    };
    match a {
        Affinity::Rbf { gamma } => (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (j, libm::exp(-gamma * dist2(i, j))))
                    .collect()
            })
            .collect(),
        Affinity::NearestNeighbors { n_neighbors } => {
            let k = n_neighbors.min(n);
            let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
            let mut cand: Vec<(f64, usize)> = vec![(0.0, 0); n];
            for i in 0..n {
                for (j, c) in cand.iter_mut().enumerate() {
                    *c = (dist2(i, j), j);
                }
                // Itself first on ties (distance 0), then the lower index.
                cand.sort_by(|p, q| {
                    p.0.total_cmp(&q.0)
                        .then((p.1 != i).cmp(&(q.1 != i)))
                        .then(p.1.cmp(&q.1))
                });
                for &(_, j) in &cand[..k] {
                    rows[i].push((j, 0.5));
                    rows[j].push((i, 0.5));
                }
            }
            // Merge duplicate entries (mutual neighbours sum to 1).
            for r in rows.iter_mut() {
                r.sort_by_key(|e| e.0);
                let mut merged: Vec<(usize, f64)> = Vec::with_capacity(r.len());
                for &(j, v) in r.iter() {
                    match merged.last_mut() {
                        Some(last) if last.0 == j => last.1 += v,
                        _ => merged.push((j, v)),
                    }
                }
                *r = merged;
            }
            rows
        }
    }
}

impl<T: Scalar> Fit<T, ()> for SpectralClustering {
    type Fitted = FittedSpectralClustering<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedSpectralClustering<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "SpectralClustering::fit")?;
        let (n, d, k) = (x.rows(), x.cols(), self.n_clusters);
        if k > n {
            return Err(Error::TooFewSamples { k, n });
        }
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let rows = affinity_rows(&xf, n, d, self.affinity);
        let deg: Vec<f64> = rows
            .iter()
            .map(|r| r.iter().map(|e| e.1).sum::<f64>())
            .collect();
        let dd: Vec<f64> = deg
            .iter()
            .map(|v| libm::sqrt(v.max(f64::MIN_POSITIVE)))
            .collect();
        // q = M v with M = D^-1/2 A D^-1/2 + I.
        let apply = |v: &[f64], out: &mut [f64], cols: usize| {
            for i in 0..n {
                for c in 0..cols {
                    let mut s = v[i * cols + c];
                    for &(j, a) in &rows[i] {
                        s += a / (dd[i] * dd[j]) * v[j * cols + c];
                    }
                    out[i * cols + c] = s;
                }
            }
        };
        let mut basis = vec![0.0; n * k];
        if n <= 200 {
            let mut m = vec![0.0; n * n];
            let eye: Vec<f64> = (0..n * n)
                .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
                .collect();
            apply(&eye, &mut m, n);
            let mut w = vec![0.0; n];
            let mut v = vec![0.0; n * n];
            linalg::sym_eig(&mut m, n, &mut w, &mut v);
            for i in 0..n {
                basis[i * k..(i + 1) * k].copy_from_slice(&v[i * n..i * n + k]);
            }
        } else {
            let mut rng = Rng::seed_from_u64(self.seed);
            basis.iter_mut().for_each(|v| *v = rng.normal(0.0, 1.0));
            orthonormalize(&mut basis, n, k);
            let mut next = vec![0.0; n * k];
            let mut prev_ritz = vec![0.0; k];
            for _ in 0..5000 {
                apply(&basis, &mut next, k);
                // Rayleigh-Ritz on the subspace: H = B^T M B, rotate B by H's vectors.
                let mut h = vec![0.0; k * k];
                for a in 0..k {
                    for b in 0..k {
                        h[a * k + b] = (0..n).map(|i| basis[i * k + a] * next[i * k + b]).sum();
                    }
                }
                let mut ritz = vec![0.0; k];
                let mut rot = vec![0.0; k * k];
                linalg::sym_eig(&mut h, k, &mut ritz, &mut rot);
                core::mem::swap(&mut basis, &mut next);
                orthonormalize(&mut basis, n, k);
                let change = ritz
                    .iter()
                    .zip(&prev_ritz)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                prev_ritz = ritz;
                if change < 1e-12 {
                    break;
                }
            }
        }
        let mut emb = basis;
        for i in 0..n {
            for c in 0..k {
                emb[i * k + c] /= dd[i];
            }
        }
        let km = KMeans::new(k)
            .n_init(self.n_init)
            .seed(self.seed)
            .fit(MatRef::new(&emb, n, k)?, &[])?;
        Ok(FittedSpectralClustering {
            labels: km.labels,
            embedding: emb,
            _t: core::marker::PhantomData,
        })
    }
}

/// Modified Gram-Schmidt on the `k` columns of the `n x k` matrix `b`.
fn orthonormalize(b: &mut [f64], n: usize, k: usize) {
    for c in 0..k {
        for p in 0..c {
            let dotp: f64 = (0..n).map(|i| b[i * k + c] * b[i * k + p]).sum();
            for i in 0..n {
                b[i * k + c] -= dotp * b[i * k + p];
            }
        }
        let norm = libm::sqrt((0..n).map(|i| b[i * k + c] * b[i * k + c]).sum::<f64>());
        if norm > 0.0 {
            for i in 0..n {
                b[i * k + c] /= norm;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_rings_are_separated_where_kmeans_fails() {
        // Concentric circles of radius 1 and 5: k-NN spectral clustering separates
        // them (k-means on raw coordinates cannot).
        let mut x = Vec::new();
        for r in [1.0f64, 5.0] {
            for t in 0..40 {
                let a = t as f64 / 40.0 * core::f64::consts::TAU;
                x.push(r * a.cos());
                x.push(r * a.sin());
            }
        }
        let m = SpectralClustering::new(2)
            .affinity(Affinity::NearestNeighbors { n_neighbors: 5 })
            .fit(MatRef::new(&x, 80, 2).unwrap(), &[])
            .unwrap();
        let first = m.labels[0];
        assert!(m.labels[..40].iter().all(|&l| l == first));
        assert!(m.labels[40..].iter().all(|&l| l != first));
    }
}
