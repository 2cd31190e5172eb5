//! Mean-shift clustering with a flat kernel: every sample is a seed that moves to
//! the mean of the training points within `bandwidth` of it until it moves less than
//! `1e-3 * bandwidth`; converged seeds are ranked by how many points they hold,
//! near-duplicates (closer than `bandwidth` to a stronger centre) are dropped, and
//! each sample joins its nearest centre (scikit-learn's `MeanShift` with
//! `bin_seeding = False`, `cluster_all = True`).

use crate::error::{check_predict, param, Error, Result};
use crate::pca::check_unsupervised_y;
use alloc::vec;
use alloc::vec::Vec;
use dl_core::{Fit, MatRef, Predict, Scalar};

/// Mean-shift hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanShift {
    /// Kernel radius (> 0).
    pub bandwidth: f64,
    /// Iterations per seed (>= 1).
    pub max_iter: usize,
}

impl Default for MeanShift {
    fn default() -> Self {
        MeanShift {
            bandwidth: 1.0,
            max_iter: 300,
        }
    }
}

impl MeanShift {
    /// With radius `h`.
    pub fn new(h: f64) -> Self {
        MeanShift {
            bandwidth: h,
            ..Default::default()
        }
    }
    /// Checks every hyper-parameter.
    pub fn validate(&self) -> Result<()> {
        param(
            self.bandwidth > 0.0 && self.bandwidth.is_finite(),
            "bandwidth",
            self.bandwidth,
            "> 0",
        )?;
        param(self.max_iter >= 1, "max_iter", self.max_iter as f64, ">= 1")
    }
}

/// Fitted mean-shift: the cluster centres and the training labels.
#[derive(Clone, Debug)]
pub struct FittedMeanShift<T> {
    /// Centres, `k x d`, strongest first.
    pub centers: Vec<f64>,
    /// Cluster of each training sample.
    pub labels: Vec<usize>,
    d: usize,
    _t: core::marker::PhantomData<T>,
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(centers: &[f64], d: usize, q: &[f64]) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (c, ctr) in centers.chunks_exact(d).enumerate() {
        let v = dist2(ctr, q);
        if v < best.0 {
            best = (v, c);
        }
    }
    best.1
}

impl<T: Scalar> Fit<T, ()> for MeanShift {
    type Fitted = FittedMeanShift<T>;
    type Error = Error;

    fn fit(&self, x: MatRef<'_, T>, y: &[()]) -> Result<FittedMeanShift<T>> {
        self.validate()?;
        check_unsupervised_y(x, y.len(), "MeanShift::fit")?;
        let (n, d) = (x.rows(), x.cols());
        let xf: Vec<f64> = x.data().iter().map(|v| v.to_f64_lossless()).collect();
        let h2 = self.bandwidth * self.bandwidth;
        let stop = 1e-3 * self.bandwidth;
        // (centre, points within) per seed.
        let mut found: Vec<(Vec<f64>, usize)> = Vec::new();
        let mut mean = vec![0.0; d];
        for s in 0..n {
            let mut cur = xf[s * d..(s + 1) * d].to_vec();
            let mut count;
            let mut it = 0;
            loop {
                mean.iter_mut().for_each(|v| *v = 0.0);
                count = 0;
                for r in xf.chunks_exact(d) {
                    if dist2(r, &cur) <= h2 {
                        count += 1;
                        for (m, v) in mean.iter_mut().zip(r) {
                            *m += v;
                        }
                    }
                }
                if count == 0 {
                    break;
                }
                mean.iter_mut().for_each(|v| *v /= count as f64);
                let shift = libm::sqrt(dist2(&mean, &cur));
                cur.copy_from_slice(&mean);
                if shift <= stop || it == self.max_iter {
                    break;
                }
                it += 1;
            }
            if count > 0 {
                // Identical centres collapse into one entry, as in a dictionary.
                match found.iter_mut().find(|(c, _)| *c == cur) {
                    Some(e) => e.1 = count,
                    None => found.push((cur, count)),
                }
            }
        }
        // Strongest first; ties by the centre's coordinates, descending.
        found.sort_by(|a, b| {
            b.1.cmp(&a.1).then_with(|| {
                b.0.iter()
                    .zip(&a.0)
                    .map(|(p, q)| p.total_cmp(q))
                    .find(|o| o.is_ne())
                    .unwrap_or(core::cmp::Ordering::Equal)
            })
        });
        let mut unique = vec![true; found.len()];
        for i in 0..found.len() {
            if unique[i] {
                for j in 0..found.len() {
                    if dist2(&found[i].0, &found[j].0) <= h2 {
                        unique[j] = false;
                    }
                }
                unique[i] = true;
            }
        }
        let centers: Vec<f64> = found
            .iter()
            .zip(&unique)
            .filter(|(_, u)| **u)
            .flat_map(|(c, _)| c.0.iter().copied())
            .collect();
        if centers.is_empty() {
            return Err(Error::EmptyData {
                op: "MeanShift::fit",
            });
        }
        let labels = xf
            .chunks_exact(d)
            .map(|r| nearest(&centers, d, r))
            .collect();
        Ok(FittedMeanShift {
            centers,
            labels,
            d,
            _t: core::marker::PhantomData,
        })
    }
}

impl<T: Scalar> Predict<T, usize> for FittedMeanShift<T> {
    type Error = Error;
    fn predict_into(&self, x: MatRef<'_, T>, out: &mut [usize]) -> Result<()> {
        check_predict(x, self.d, out.len(), "MeanShift::predict")?;
        let mut q = vec![0.0; self.d];
        for (r, o) in x.iter_rows().zip(out.iter_mut()) {
            for (a, b) in q.iter_mut().zip(r) {
                *a = b.to_f64_lossless();
            }
            *o = nearest(&self.centers, self.d, &q);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_blobs_give_two_centres_at_their_means() {
        let x = [0.0f64, 0.2, 0.4, 10.0, 10.2, 10.4, 10.6];
        let m = MeanShift::new(1.0)
            .fit(MatRef::new(&x, 7, 1).unwrap(), &[])
            .unwrap();
        // The 4-point blob is stronger, so it comes first.
        assert_eq!(m.centers.len(), 2);
        assert!((m.centers[0] - 10.3).abs() < 1e-12 && (m.centers[1] - 0.2).abs() < 1e-12);
        assert_eq!(m.labels, vec![1, 1, 1, 0, 0, 0, 0]);
    }
}
