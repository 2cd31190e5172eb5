//! Splitting sample indices: train/validation/test (optionally stratified), k-fold,
//! and stratified k-fold. Without a shuffle seed, [`KFold`] and [`StratifiedKFold`]
//! assign folds exactly as scikit-learn's `KFold` / `StratifiedKFold(shuffle=False)`
//! do, so cross-validation scores can be compared fold for fold. With a seed the
//! shuffle uses [`dl_core::Rng`] (reproducible here, not identical to numpy's).

use alloc::vec;
use alloc::vec::Vec;
use dl_core::Rng;

use crate::error::{Error, Result};

/// One cross-validation fold: training and test indices, each in ascending order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Indices to fit on.
    pub train: Vec<usize>,
    /// Indices to score on.
    pub test: Vec<usize>,
}

/// Builds folds from a fold number per sample.
fn folds_from_assignment(test_fold: &[usize], n_splits: usize) -> Vec<Fold> {
    (0..n_splits)
        .map(|k| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..test_fold.len()).partition(|&i| test_fold[i] == k);
            Fold { train, test }
        })
        .collect()
}

fn check_splits(op: &'static str, n_splits: usize, n_samples: usize) -> Result<()> {
    if n_splits < 2 {
        return Err(Error::InvalidParameter {
            op,
            name: "n_splits",
            value: n_splits as f64,
            valid: ">= 2",
        });
    }
    if n_splits > n_samples {
        return Err(Error::TooFewSamples {
            op,
            what: "the data",
            needed: n_splits,
            actual: n_samples,
        });
    }
    Ok(())
}

/// k-fold: contiguous test blocks; the first `n % k` folds get one extra sample
/// (scikit-learn's `KFold`). An optional seed shuffles the samples first.
///
/// ```
/// use dl_data::split::KFold;
/// let f = KFold::new(3).split(7).unwrap();
/// assert_eq!(f[0].test, vec![0, 1, 2]);
/// assert_eq!(f[1].test, vec![3, 4]);
/// assert_eq!(f[2].train, vec![0, 1, 2, 3, 4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KFold {
    /// Number of folds (>= 2).
    pub n_splits: usize,
    /// Shuffle the samples with this seed before splitting (`None`: keep order).
    pub shuffle_seed: Option<u64>,
}

impl Default for KFold {
    fn default() -> Self {
        KFold {
            n_splits: 5,
            shuffle_seed: None,
        }
    }
}

impl KFold {
    /// `n_splits` folds, no shuffle.
    pub fn new(n_splits: usize) -> Self {
        KFold {
            n_splits,
            shuffle_seed: None,
        }
    }

    /// Shuffles with `seed` before splitting.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    /// The folds of `n_samples` samples.
    pub fn split(&self, n_samples: usize) -> Result<Vec<Fold>> {
        check_splits("KFold", self.n_splits, n_samples)?;
        let mut order: Vec<usize> = (0..n_samples).collect();
        if let Some(seed) = self.shuffle_seed {
            Rng::seed_from_u64(seed).shuffle(&mut order);
        }
        let mut test_fold = vec![0usize; n_samples];
        let (base, extra) = (n_samples / self.n_splits, n_samples % self.n_splits);
        let mut start = 0;
        for k in 0..self.n_splits {
            let size = base + usize::from(k < extra);
            for &i in &order[start..start + size] {
                test_fold[i] = k;
            }
            start += size;
        }
        Ok(folds_from_assignment(&test_fold, self.n_splits))
    }
}

/// Stratified k-fold: each fold keeps the class proportions. Without a seed this is
/// scikit-learn's `StratifiedKFold(shuffle=False)` exactly: classes are numbered by
/// first appearance, the per-fold count of each class comes from dealing the sorted
/// labels round-robin over the folds, and each class's samples (in data order) fill
/// fold 0 first, then fold 1, and so on. With a seed, each class's fold sequence is
/// shuffled, as scikit-learn does with `shuffle=True`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StratifiedKFold {
    /// Number of folds (>= 2).
    pub n_splits: usize,
    /// Shuffle each class's fold assignment with this seed (`None`: deterministic).
    pub shuffle_seed: Option<u64>,
}

impl Default for StratifiedKFold {
    fn default() -> Self {
        StratifiedKFold {
            n_splits: 5,
            shuffle_seed: None,
        }
    }
}

impl StratifiedKFold {
    /// `n_splits` folds, no shuffle.
    pub fn new(n_splits: usize) -> Self {
        StratifiedKFold {
            n_splits,
            shuffle_seed: None,
        }
    }

    /// Shuffles each class's fold assignment with `seed`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle_seed = Some(seed);
        self
    }

    /// The fold number of each sample (scikit-learn's `_make_test_folds`).
    pub fn test_folds(&self, y: &[usize]) -> Result<Vec<usize>> {
        let k = self.n_splits;
        check_splits("StratifiedKFold", k, y.len())?;
        // Encode classes by order of first appearance.
        let max = y.iter().copied().max().unwrap_or(0);
        let mut code = vec![usize::MAX; max + 1];
        let mut n_classes = 0;
        let mut encoded = Vec::with_capacity(y.len());
        for &label in y {
            if code[label] == usize::MAX {
                code[label] = n_classes;
                n_classes += 1;
            }
            encoded.push(code[label]);
        }
        let mut counts = vec![0usize; n_classes];
        for &c in &encoded {
            counts[c] += 1;
        }
        if counts.iter().all(|&c| c < k) {
            return Err(Error::TooFewSamples {
                op: "StratifiedKFold",
                what: "every class",
                needed: k,
                actual: counts.iter().copied().max().unwrap_or(0),
            });
        }
        // allocation[f][c]: samples of class c in test fold f, from dealing the sorted
        // encoded labels round-robin (position p goes to fold p % k).
        let mut allocation = vec![0usize; k * n_classes];
        let mut p = 0;
        for (c, &count) in counts.iter().enumerate() {
            for _ in 0..count {
                allocation[(p % k) * n_classes + c] += 1;
                p += 1;
            }
        }
        let mut rng = self.shuffle_seed.map(Rng::seed_from_u64);
        let mut test_fold = vec![0usize; y.len()];
        let mut folds_for_class = Vec::new();
        for c in 0..n_classes {
            folds_for_class.clear();
            for f in 0..k {
                folds_for_class.extend(core::iter::repeat_n(f, allocation[f * n_classes + c]));
            }
            if let Some(r) = rng.as_mut() {
                r.shuffle(&mut folds_for_class);
            }
            let mut next = folds_for_class.iter();
            for (i, &e) in encoded.iter().enumerate() {
                if e == c {
                    // Exactly counts[c] entries were generated for class c.
                    test_fold[i] = *next.next().unwrap_or(&0);
                }
            }
        }
        Ok(test_fold)
    }

    /// The folds for labels `y`.
    pub fn split(&self, y: &[usize]) -> Result<Vec<Fold>> {
        let test_fold = self.test_folds(y)?;
        Ok(folds_from_assignment(&test_fold, self.n_splits))
    }
}

/// Train / validation / test indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainValTest {
    /// Training indices.
    pub train: Vec<usize>,
    /// Validation indices.
    pub validation: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

/// How to split into train / validation / test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitConfig {
    /// Fraction for validation, in `[0, 1)`.
    pub validation: f64,
    /// Fraction for test, in `[0, 1)`.
    pub test: f64,
    /// Shuffle with this seed (`None`: keep order: train first, then validation, then
    /// test, within each class when stratified).
    pub shuffle_seed: Option<u64>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            validation: 0.1,
            test: 0.2,
            shuffle_seed: Some(0),
        }
    }
}

impl SplitConfig {
    /// Checks the fractions (each in `[0, 1)`, sum below 1).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("validation", self.validation), ("test", self.test)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::InvalidParameter {
                    op: "SplitConfig",
                    name,
                    value: v,
                    valid: "[0, 1)",
                });
            }
        }
        if self.validation + self.test >= 1.0 {
            return Err(Error::InvalidParameter {
                op: "SplitConfig",
                name: "validation + test",
                value: self.validation + self.test,
                valid: "< 1 (something must be left to train on)",
            });
        }
        Ok(())
    }

    /// Sizes for `n` items: test and validation round up (as scikit-learn's
    /// `train_test_split` does for the test part); train gets the rest.
    fn sizes(&self, n: usize) -> (usize, usize) {
        let n_test = libm::ceil(self.test * n as f64) as usize;
        let n_val = libm::ceil(self.validation * n as f64) as usize;
        (n_val.min(n), n_test.min(n - n_val.min(n)))
    }

    /// Splits `n_samples` indices.
    ///
    /// ```
    /// use dl_data::split::SplitConfig;
    /// let s = SplitConfig { validation: 0.2, test: 0.2, shuffle_seed: None }.split(10).unwrap();
    /// assert_eq!((s.train.len(), s.validation, s.test), (6, vec![6, 7], vec![8, 9]));
    /// ```
    pub fn split(&self, n_samples: usize) -> Result<TrainValTest> {
        self.validate()?;
        let mut order: Vec<usize> = (0..n_samples).collect();
        if let Some(seed) = self.shuffle_seed {
            Rng::seed_from_u64(seed).shuffle(&mut order);
        }
        let (n_val, n_test) = self.sizes(n_samples);
        let n_train = n_samples - n_val - n_test;
        if n_train == 0 {
            return Err(Error::TooFewSamples {
                op: "SplitConfig::split",
                what: "the training part",
                needed: 1,
                actual: 0,
            });
        }
        let mut out = TrainValTest {
            train: order[..n_train].to_vec(),
            validation: order[n_train..n_train + n_val].to_vec(),
            test: order[n_train + n_val..].to_vec(),
        };
        out.train.sort_unstable();
        out.validation.sort_unstable();
        out.test.sort_unstable();
        Ok(out)
    }

    /// Splits so each part keeps the class proportions of `y`: the fractions are
    /// applied within each class (rounding up the validation and test parts).
    pub fn split_stratified(&self, y: &[usize]) -> Result<TrainValTest> {
        self.validate()?;
        let n_classes = y.iter().max().map_or(0, |m| m + 1);
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (i, &c) in y.iter().enumerate() {
            by_class[c].push(i);
        }
        let mut rng = self.shuffle_seed.map(Rng::seed_from_u64);
        let mut out = TrainValTest {
            train: Vec::new(),
            validation: Vec::new(),
            test: Vec::new(),
        };
        for members in &mut by_class {
            if let Some(r) = rng.as_mut() {
                r.shuffle(members);
            }
            let (n_val, n_test) = self.sizes(members.len());
            let n_train = members.len() - n_val - n_test;
            out.train.extend_from_slice(&members[..n_train]);
            out.validation
                .extend_from_slice(&members[n_train..n_train + n_val]);
            out.test.extend_from_slice(&members[n_train + n_val..]);
        }
        if out.train.is_empty() {
            return Err(Error::TooFewSamples {
                op: "SplitConfig::split_stratified",
                what: "the training part",
                needed: 1,
                actual: 0,
            });
        }
        out.train.sort_unstable();
        out.validation.sort_unstable();
        out.test.sort_unstable();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_kfold_by_hand() {
        // y = [1,1,1,0,0,0,0,1,1,1] with 3 folds. Class 1 appears first (code 0, 6
        // members), class 0 second (code 1, 4 members). Sorted codes
        // [0,0,0,0,0,0,1,1,1,1] dealt round-robin: fold 0 gets positions 0,3,6,9 ->
        // two of code 0 and two of code 1; fold 1 gets 1,4,7 -> 2 + 1; fold 2 gets
        // 2,5,8 -> 2 + 1. Code 0 folds: [0,0,1,1,2,2] over indices 0,1,2,7,8,9;
        // code 1 folds: [0,0,1,2] over indices 3,4,5,6.
        let y = [1, 1, 1, 0, 0, 0, 0, 1, 1, 1];
        let f = StratifiedKFold::new(3).test_folds(&y).unwrap();
        assert_eq!(f, vec![0, 0, 1, 0, 0, 1, 2, 1, 2, 2]);
        let folds = StratifiedKFold::new(3).split(&y).unwrap();
        assert_eq!(folds[0].test, vec![0, 1, 3, 4]);
        assert!(StratifiedKFold::new(7).split(&y).is_err());
        assert!(StratifiedKFold::new(1).split(&y).is_err());
        // A shuffled assignment keeps the per-class counts per fold.
        let s = StratifiedKFold::new(3).shuffle(9).test_folds(&y).unwrap();
        for k in 0..3 {
            let count = |c| (0..10).filter(|&i| y[i] == c && s[i] == k).count();
            let expect = |c| (0..10).filter(|&i| y[i] == c && f[i] == k).count();
            assert_eq!((count(0), count(1)), (expect(0), expect(1)));
        }
    }

    #[test]
    fn splits_partition_the_indices() {
        let y: Vec<usize> = (0..100).map(|i| usize::from(i % 4 == 0)).collect();
        let cfg = SplitConfig {
            validation: 0.2,
            test: 0.2,
            shuffle_seed: Some(3),
        };
        for s in [cfg.split(100).unwrap(), cfg.split_stratified(&y).unwrap()] {
            let mut all: Vec<usize> = s
                .train
                .iter()
                .chain(&s.validation)
                .chain(&s.test)
                .copied()
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..100).collect::<Vec<_>>());
            assert_eq!((s.validation.len(), s.test.len()), (20, 20));
        }
        let st = cfg.split_stratified(&y).unwrap();
        assert_eq!(st.test.iter().filter(|&&i| y[i] == 1).count(), 5);
        assert!(SplitConfig { test: 1.0, ..cfg }.validate().is_err());
        assert!(SplitConfig {
            validation: 0.6,
            test: 0.5,
            ..cfg
        }
        .validate()
        .is_err());
    }
}
