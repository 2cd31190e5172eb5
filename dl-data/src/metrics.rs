//! Metrics, with scikit-learn's definitions and edge cases (checked against its
//! values in `tests/sklearn_metrics.rs`): classification (accuracy, precision /
//! recall / F1 per class and macro, confusion matrix as text and SVG heat map, log
//! loss), regression (MSE, MAE, R2) and clustering (adjusted Rand index, silhouette).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;
use dl_core::{MatRef, Scalar};

use crate::error::{Error, Result};

fn check_pair<A, B>(op: &'static str, a: &[A], b: &[B]) -> Result<()> {
    if a.is_empty() {
        return Err(Error::Empty { op, what: "y_true" });
    }
    if a.len() != b.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "y_pred",
            expected: a.len(),
            actual: b.len(),
        });
    }
    Ok(())
}

/// Fraction of predictions equal to the truth.
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    check_pair("accuracy", y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// Counts of (true class, predicted class) pairs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// Number of classes (rows and columns).
    pub n_classes: usize,
    /// `counts[t * n_classes + p]`: samples of true class `t` predicted as `p`.
    pub counts: Vec<usize>,
}

impl ConfusionMatrix {
    /// Builds the matrix for classes `0..n_classes` (`None`: one more than the
    /// largest label seen in either slice).
    pub fn new(y_true: &[usize], y_pred: &[usize], n_classes: Option<usize>) -> Result<Self> {
        check_pair("confusion_matrix", y_true, y_pred)?;
        let seen = y_true.iter().chain(y_pred).max().map_or(0, |m| m + 1);
        let n = n_classes.unwrap_or(seen);
        if let Some((index, &label)) = y_true
            .iter()
            .chain(y_pred)
            .enumerate()
            .find(|(_, &l)| l >= n)
        {
            return Err(Error::LabelOutOfRange {
                op: "confusion_matrix",
                index: index % y_true.len(),
                label,
                n_classes: n,
            });
        }
        let mut counts = vec![0usize; n * n];
        for (&t, &p) in y_true.iter().zip(y_pred) {
            counts[t * n + p] += 1;
        }
        Ok(ConfusionMatrix {
            n_classes: n,
            counts,
        })
    }

    /// The count for true class `t` predicted as `p`.
    pub fn get(&self, t: usize, p: usize) -> usize {
        self.counts[t * self.n_classes + p]
    }

    fn row_sum(&self, t: usize) -> usize {
        self.counts[t * self.n_classes..(t + 1) * self.n_classes]
            .iter()
            .sum()
    }

    fn col_sum(&self, p: usize) -> usize {
        (0..self.n_classes).map(|t| self.get(t, p)).sum()
    }

    /// A right-aligned text table: rows are true classes, columns predictions.
    pub fn to_text(&self) -> String {
        let width = self
            .counts
            .iter()
            .map(|c| format!("{c}").len())
            .max()
            .unwrap_or(1)
            .max(format!("{}", self.n_classes.saturating_sub(1)).len())
            .max(2);
        let mut s = String::new();
        let _ = write!(s, "{:>w$} |", "t\\p", w = width.max(3));
        for p in 0..self.n_classes {
            let _ = write!(s, " {p:>width$}");
        }
        s.push('\n');
        for t in 0..self.n_classes {
            let _ = write!(s, "{t:>w$} |", w = width.max(3));
            for p in 0..self.n_classes {
                let _ = write!(s, " {:>width$}", self.get(t, p));
            }
            s.push('\n');
        }
        s
    }

    /// An SVG heat map (cell shade proportional to the count, count printed in each
    /// cell; rows = true class, columns = predicted). `class_names` defaults to the
    /// class numbers.
    pub fn to_svg(&self, class_names: Option<&[&str]>) -> String {
        let n = self.n_classes;
        let cell = 40usize;
        let margin = 80usize;
        let size = margin + n * cell + 20;
        let max = self.counts.iter().copied().max().unwrap_or(0).max(1);
        let name = |i: usize| -> String {
            match class_names.and_then(|names| names.get(i)) {
                Some(s) => escape(s),
                None => format!("{i}"),
            }
        };
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"16\" text-anchor=\"middle\">Predicted</text>\n\
             <text x=\"14\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">True</text>\n",
            margin + n * cell / 2,
            margin + n * cell / 2,
            margin + n * cell / 2
        );
        for i in 0..n {
            let c = margin + i * cell + cell / 2;
            let _ = writeln!(
                s,
                "<text x=\"{c}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                margin - 8,
                name(i)
            );
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                margin - 8,
                c + 4,
                name(i)
            );
        }
        for t in 0..n {
            for p in 0..n {
                let v = self.get(t, p);
                // White (0) to dark blue (max): interpolate each channel.
                let f = v as f64 / max as f64;
                let ch = |lo: f64, hi: f64| (hi + (lo - hi) * f) as u8;
                let (r, g, b) = (ch(8.0, 255.0), ch(48.0, 255.0), ch(107.0, 255.0));
                let text = if f > 0.5 { "white" } else { "black" };
                let (x, y) = (margin + p * cell, margin + t * cell);
                let _ = writeln!(
                    s,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"#{r:02x}{g:02x}{b:02x}\" stroke=\"#ccc\"/>\
                     <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{text}\">{v}</text>",
                    x + cell / 2,
                    y + cell / 2 + 4
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }

    /// Writes [`Self::to_svg`] to a file.
    #[cfg(feature = "std")]
    pub fn write_svg(
        &self,
        path: impl AsRef<std::path::Path>,
        class_names: Option<&[&str]>,
    ) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_svg(class_names)).map_err(|source| Error::Io {
            path: format!("{}", path.display()),
            source,
        })
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Precision, recall, F1 and support of one class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// `tp / (tp + fp)` (0 when nothing was predicted as this class).
    pub precision: f64,
    /// `tp / (tp + fn)` (0 when the class never occurs).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Occurrences of the class in `y_true`.
    pub support: usize,
}

/// Per-class scores and their macro averages.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// Scores of classes `0..n`.
    pub per_class: Vec<ClassScores>,
    /// Unweighted mean over the classes present in `y_true` or `y_pred`.
    pub macro_precision: f64,
    /// Unweighted mean recall (same classes).
    pub macro_recall: f64,
    /// Unweighted mean F1 (same classes).
    pub macro_f1: f64,
}

/// Precision, recall and F1 per class and macro-averaged, with scikit-learn's
/// `zero_division=0` convention; the macro average runs over the labels present in
/// either slice, as `precision_recall_fscore_support(average="macro")` does.
pub fn precision_recall_f1(y_true: &[usize], y_pred: &[usize]) -> Result<ClassificationReport> {
    let cm = ConfusionMatrix::new(y_true, y_pred, None)?;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut per_class = Vec::with_capacity(cm.n_classes);
    let (mut sp, mut sr, mut sf, mut present) = (0.0, 0.0, 0.0, 0usize);
    for c in 0..cm.n_classes {
        let tp = cm.get(c, c);
        let (support, predicted) = (cm.row_sum(c), cm.col_sum(c));
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, support);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        per_class.push(ClassScores {
            precision,
            recall,
            f1,
            support,
        });
        if support + predicted > 0 {
            present += 1;
            sp += precision;
            sr += recall;
            sf += f1;
        }
    }
    let m = present as f64;
    Ok(ClassificationReport {
        per_class,
        macro_precision: sp / m,
        macro_recall: sr / m,
        macro_f1: sf / m,
    })
}

/// Mean negative log-likelihood of the true classes under predicted probabilities
/// `proba` (row-major `n x n_classes`), each clipped to `[eps, 1 - eps]` with `eps`
/// the f64 machine epsilon, as scikit-learn does.
pub fn log_loss(y_true: &[usize], proba: &[f64], n_classes: usize) -> Result<f64> {
    if y_true.is_empty() {
        return Err(Error::Empty {
            op: "log_loss",
            what: "y_true",
        });
    }
    if proba.len() != y_true.len() * n_classes {
        return Err(Error::LengthMismatch {
            op: "log_loss",
            what: "proba",
            expected: y_true.len() * n_classes,
            actual: proba.len(),
        });
    }
    let eps = f64::EPSILON;
    let mut total = 0.0;
    for (i, &t) in y_true.iter().enumerate() {
        if t >= n_classes {
            return Err(Error::LabelOutOfRange {
                op: "log_loss",
                index: i,
                label: t,
                n_classes,
            });
        }
        let p = proba[i * n_classes + t];
        if !p.is_finite() {
            return Err(Error::NonFinite {
                op: "log_loss",
                index: i * n_classes + t,
            });
        }
        total -= libm::log(p.clamp(eps, 1.0 - eps));
    }
    Ok(total / y_true.len() as f64)
}

/// Mean squared error.
pub fn mse<T: Scalar>(y_true: &[T], y_pred: &[T]) -> Result<f64> {
    check_pair("mse", y_true, y_pred)?;
    let s: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(&t, &p)| {
            let d = t.to_f64_lossless() - p.to_f64_lossless();
            d * d
        })
        .sum();
    Ok(s / y_true.len() as f64)
}

/// Mean absolute error.
pub fn mae<T: Scalar>(y_true: &[T], y_pred: &[T]) -> Result<f64> {
    check_pair("mae", y_true, y_pred)?;
    let s: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(&t, &p)| (t.to_f64_lossless() - p.to_f64_lossless()).abs())
        .sum();
    Ok(s / y_true.len() as f64)
}

/// Coefficient of determination `1 - SS_res / SS_tot`. For constant `y_true` it is
/// 1 if the predictions are perfect and 0 otherwise (scikit-learn's
/// `force_finite=True`).
pub fn r2<T: Scalar>(y_true: &[T], y_pred: &[T]) -> Result<f64> {
    check_pair("r2", y_true, y_pred)?;
    let n = y_true.len() as f64;
    let mean = y_true.iter().map(|v| v.to_f64_lossless()).sum::<f64>() / n;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for (&t, &p) in y_true.iter().zip(y_pred) {
        let (t, p) = (t.to_f64_lossless(), p.to_f64_lossless());
        ss_res += (t - p) * (t - p);
        ss_tot += (t - mean) * (t - mean);
    }
    Ok(if ss_tot == 0.0 {
        if ss_res == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - ss_res / ss_tot
    })
}

/// Adjusted Rand index between two clusterings (label values are arbitrary):
/// 1 for identical partitions, about 0 for independent ones. Computed from the pair
/// confusion matrix in exact integer arithmetic, as scikit-learn does.
pub fn adjusted_rand_index(labels_a: &[usize], labels_b: &[usize]) -> Result<f64> {
    check_pair("adjusted_rand_index", labels_a, labels_b)?;
    let relabel = |l: &[usize]| -> (Vec<usize>, usize) {
        let mut map: Vec<(usize, usize)> = Vec::new();
        let mut out = Vec::with_capacity(l.len());
        for &v in l {
            let code = match map.iter().find(|(k, _)| *k == v) {
                Some(&(_, c)) => c,
                None => {
                    map.push((v, map.len()));
                    map.len() - 1
                }
            };
            out.push(code);
        }
        (out, map.len())
    };
    let (a, na) = relabel(labels_a);
    let (b, nb) = relabel(labels_b);
    let mut table = vec![0i128; na * nb];
    for (&i, &j) in a.iter().zip(&b) {
        table[i * nb + j] += 1;
    }
    let n = a.len() as i128;
    let sum_sq: i128 = table.iter().map(|&v| v * v).sum();
    let rows: i128 = (0..na)
        .map(|i| table[i * nb..(i + 1) * nb].iter().sum::<i128>().pow(2))
        .sum();
    let cols: i128 = (0..nb)
        .map(|j| (0..na).map(|i| table[i * nb + j]).sum::<i128>().pow(2))
        .sum();
    let tp = sum_sq - n;
    let fp = cols - sum_sq; // same predicted cluster, different true
    let fneg = rows - sum_sq;
    let tn = n * n - fp - fneg - sum_sq;
    if fneg == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2.0 * ((tp * tn - fneg * fp) as f64);
    let den = ((tp + fneg) * (fneg + tn) + (tp + fp) * (fp + tn)) as f64;
    Ok(num / den)
}

/// Mean silhouette coefficient with Euclidean distance: per sample
/// `(b - a) / max(a, b)`, `a` the mean distance to its own cluster, `b` the smallest
/// mean distance to another cluster; 0 for samples alone in their cluster. Needs
/// between 2 and `n - 1` clusters.
pub fn silhouette_score<T: Scalar>(x: MatRef<'_, T>, labels: &[usize]) -> Result<f64> {
    let n = x.rows();
    if labels.len() != n {
        return Err(Error::LengthMismatch {
            op: "silhouette_score",
            what: "labels",
            expected: n,
            actual: labels.len(),
        });
    }
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let n_clusters = sizes.iter().filter(|&&s| s > 0).count();
    if n_clusters < 2 || n_clusters > n.saturating_sub(1) {
        return Err(Error::InvalidParameter {
            op: "silhouette_score",
            name: "number of clusters",
            value: n_clusters as f64,
            valid: "2..=n_samples-1",
        });
    }
    let mut sums = vec![0.0f64; k];
    let mut total = 0.0;
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        let xi = x.row(i);
        for j in 0..n {
            if i != j {
                let d: f64 = xi
                    .iter()
                    .zip(x.row(j))
                    .map(|(&a, &b)| {
                        let d = a.to_f64_lossless() - b.to_f64_lossless();
                        d * d
                    })
                    .sum();
                sums[labels[j]] += libm::sqrt(d);
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue; // s = 0
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        let m = a.max(b);
        if m > 0.0 {
            total += (b - a) / m;
        }
    }
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_values() {
        // y_true [0,0,1,1,2], y_pred [0,1,1,1,0]: class 0 tp 1, fp 1, fn 1 -> p=r=f=0.5;
        // class 1 tp 2, fp 1, fn 0 -> p 2/3, r 1, f 0.8; class 2 -> all 0.
        let r = precision_recall_f1(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0]).unwrap();
        assert_eq!(r.per_class[0].f1, 0.5);
        assert!((r.per_class[1].f1 - 0.8).abs() < 1e-15);
        assert!((r.macro_recall - 0.5).abs() < 1e-15);
        assert_eq!(accuracy(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0]).unwrap(), 0.6);
        assert!(accuracy(&[0], &[0, 1]).is_err());
        // Identical partitions up to renaming.
        assert_eq!(
            adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 2, 2]).unwrap(),
            1.0
        );
        assert_eq!(r2(&[1.0f64, 1.0], &[1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0f64, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
        assert_eq!(mse(&[1.0f32, 2.0], &[2.0, 4.0]).unwrap(), 2.5);
        assert_eq!(mae(&[1.0f32, 2.0], &[2.0, 4.0]).unwrap(), 1.5);
        let cm = ConfusionMatrix::new(&[0, 1, 1], &[1, 1, 0], None).unwrap();
        assert_eq!(cm.counts, vec![0, 1, 1, 1]);
        assert_eq!(cm.to_text(), "t\\p |  0  1\n  0 |  0  1\n  1 |  1  1\n");
        assert!(cm.to_svg(Some(&["a<b", "c"])).contains("a&lt;b"));
    }
}
