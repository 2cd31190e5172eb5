//! Model inspection: permutation feature importance (Breiman 2001; scikit-learn's
//! `sklearn.inspection.permutation_importance`) for any fitted [`Predict`] model.
//!
//! A feature's importance is how much the score drops when that feature's column
//! is shuffled, breaking its link to the target while keeping its distribution:
//! `baseline - score(permuted)`, over `n_repeats` shuffles. Unlike the impurity
//! importances of tree ensembles it works for any model and on held-out data.
//!
//! ```
//! use dl_core::{MatRef, Predict};
//! use dl_data::{inspection::permutation_importance, metrics};
//! // A "model" that reads only feature 0.
//! struct Threshold;
//! impl Predict<f64, usize> for Threshold {
//!     type Error = dl_data::Error;
//!     fn predict_into(&self, x: MatRef<'_, f64>, out: &mut [usize]) -> Result<(), dl_data::Error> {
//!         for (o, r) in out.iter_mut().zip(x.iter_rows()) { *o = (r[0] > 0.5) as usize; }
//!         Ok(())
//!     }
//! }
//! let x: Vec<f64> = (0..200).flat_map(|i| [(i % 10) as f64 / 10.0, (i % 7) as f64]).collect();
//! let y: Vec<usize> = (0..200).map(|i| (i % 10 > 5) as usize).collect();
//! let imp = permutation_importance(&Threshold, MatRef::new(&x, 200, 2).unwrap(), &y, metrics::accuracy, 5, 0).unwrap();
//! assert_eq!(imp.baseline, 1.0);
//! assert!(imp.mean[0] > 0.2 && imp.mean[1] == 0.0);
//! ```

use alloc::vec;
use alloc::vec::Vec;
use dl_core::{MatRef, Predict, Rng, Scalar};

use crate::error::{Error, Result};
use crate::selection::{estimator_err, CvScore};

/// Permutation importances of every feature.
#[derive(Clone, Debug, PartialEq)]
pub struct PermutationImportance {
    /// The score on the unshuffled data.
    pub baseline: f64,
    /// Per feature, the mean over repeats of `baseline - score(shuffled)`.
    pub mean: Vec<f64>,
    /// Per feature, the population standard deviation over repeats.
    pub std: Vec<f64>,
    /// Every drop, `n_features x n_repeats`, row-major.
    pub importances: Vec<f64>,
}

/// Shuffles each column of `x` in turn `n_repeats` times and records how much
/// `scorer(y_true, y_pred)` ("higher is better", e.g.
/// [`crate::metrics::accuracy`]) drops from its value on `x`.
///
/// Feature `j`'s shuffles come from a generator seeded by `seed` and `j`, so the
/// result does not depend on the order features are visited in.
pub fn permutation_importance<T, Y, M, S>(
    model: &M,
    x: MatRef<'_, T>,
    y: &[Y],
    scorer: S,
    n_repeats: usize,
    seed: u64,
) -> Result<PermutationImportance>
where
    T: Scalar,
    Y: Clone + Default,
    M: Predict<T, Y>,
    S: Fn(&[Y], &[Y]) -> Result<f64>,
{
    const OP: &str = "permutation_importance";
    if n_repeats == 0 {
        return Err(Error::InvalidParameter {
            op: OP,
            name: "n_repeats",
            value: 0.0,
            valid: ">= 1",
        });
    }
    if y.len() != x.rows() {
        return Err(Error::LengthMismatch {
            op: OP,
            what: "y",
            expected: x.rows(),
            actual: y.len(),
        });
    }
    let (n, d) = (x.rows(), x.cols());
    let mut pred = vec![Y::default(); n];
    model
        .predict_into(x, &mut pred)
        .map_err(|e| estimator_err("predict", e))?;
    let baseline = scorer(y, &pred)?;
    let mut shuffled = x.data().to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let mut importances = vec![0.0; d * n_repeats];
    for j in 0..d {
        let mut rng = Rng::seed_from_u64(seed).fork(j as u64);
        for r in 0..n_repeats {
            rng.shuffle(&mut perm);
            for (i, &p) in perm.iter().enumerate() {
                shuffled[i * d + j] = x.data()[p * d + j];
            }
            model
                .predict_into(MatRef::new(&shuffled, n, d)?, &mut pred)
                .map_err(|e| estimator_err("predict", e))?;
            importances[j * n_repeats + r] = baseline - scorer(y, &pred)?;
        }
        // Put the column back before shuffling the next one.
        for i in 0..n {
            shuffled[i * d + j] = x.data()[i * d + j];
        }
    }
    // Mean and population std per feature, as a CV score summarizes its folds.
    let (mean, std) = importances
        .chunks_exact(n_repeats)
        .map(|v| {
            let s = CvScore::from_scores(v.to_vec());
            (s.mean, s.std)
        })
        .unzip();
    Ok(PermutationImportance {
        baseline,
        mean,
        std,
        importances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::accuracy;

    /// Predicts `x[0] > 0.5`, ignoring every other feature.
    struct FirstFeature;
    impl Predict<f64, usize> for FirstFeature {
        type Error = Error;
        fn predict_into(&self, x: MatRef<'_, f64>, out: &mut [usize]) -> Result<()> {
            for (o, r) in out.iter_mut().zip(x.iter_rows()) {
                *o = (r[0] > 0.5) as usize;
            }
            Ok(())
        }
    }

    fn data(n: usize) -> (Vec<f64>, Vec<usize>) {
        let mut rng = Rng::seed_from_u64(3);
        let x: Vec<f64> = (0..n * 3).map(|_| rng.next_f64()).collect();
        let y = x.chunks(3).map(|r| (r[0] > 0.5) as usize).collect();
        (x, y)
    }

    #[test]
    fn only_the_feature_the_model_reads_matters() {
        let (x, y) = data(2000);
        let xm = MatRef::new(&x, 2000, 3).unwrap();
        let imp = permutation_importance(&FirstFeature, xm, &y, accuracy, 8, 1).unwrap();
        assert_eq!(imp.baseline, 1.0);
        // Shuffled, feature 0 agrees with the labels about half the time.
        assert!((imp.mean[0] - 0.5).abs() < 0.05, "{:?}", imp.mean);
        assert!(imp.std[0] > 0.0 && imp.std[0] < 0.05, "{:?}", imp.std);
        assert_eq!((imp.mean[1], imp.mean[2], imp.std[1]), (0.0, 0.0, 0.0));
        assert_eq!(imp.importances.len(), 3 * 8);
        let again = permutation_importance(&FirstFeature, xm, &y, accuracy, 8, 1).unwrap();
        assert_eq!(imp, again);
        let other = permutation_importance(&FirstFeature, xm, &y, accuracy, 8, 2).unwrap();
        assert_ne!(imp.importances, other.importances);
    }

    #[test]
    fn bad_arguments_are_named() {
        let (x, y) = data(10);
        let xm = MatRef::new(&x, 10, 3).unwrap();
        let e = permutation_importance(&FirstFeature, xm, &y, accuracy, 0, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "n_repeats",
                    ..
                }
            ),
            "{e}"
        );
        let e = permutation_importance(&FirstFeature, xm, &y[..4], accuracy, 2, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LengthMismatch {
                    expected: 10,
                    actual: 4,
                    ..
                }
            ),
            "{e}"
        );
    }
}
