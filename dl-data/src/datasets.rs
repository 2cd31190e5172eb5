//! Small real data sets bundled in the crate (compiled in with `include_str!`, so
//! tests and examples work on a fresh machine without network or files):
//!
//! - [`digits`]: 1,797 8x8 images of handwritten digits, 64 integer features 0..=16,
//!   labels 0..=9 (UCI optical digits test set, as bundled with scikit-learn).
//! - [`iris`]: Fisher's iris, 150 rows, 4 features in cm, labels 0..=2.
//!
//! Provenance, license and checksums are in `dl-data/data/README.md`.

use dl_core::Scalar;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::io::csv::{parse_raw, CsvOptions, LabelColumn};

const DIGITS_CSV: &str = include_str!("../data/digits.csv");
const IRIS_CSV: &str = include_str!("../data/iris.csv");

fn load<T: Scalar>(text: &str, name: &str) -> Result<Dataset<T, usize>> {
    let opts = CsvOptions {
        label: LabelColumn::Name("label".into()),
        ..Default::default()
    };
    parse_raw::<T>(text.as_bytes(), &opts)
        .map_err(|e| e.at(name))?
        .into_classification()
}

/// The 8x8 digits set: 1,797 rows of 64 pixel intensities (0..=16), labels 0..=9.
pub fn digits<T: Scalar>() -> Result<Dataset<T, usize>> {
    load(DIGITS_CSV, "data/digits.csv")
}

/// Fisher's iris: 150 rows of sepal length, sepal width, petal length, petal width
/// (cm); labels 0 setosa, 1 versicolor, 2 virginica.
pub fn iris<T: Scalar>() -> Result<Dataset<T, usize>> {
    load(IRIS_CSV, "data/iris.csv")
}

/// Names of the iris classes, indexed by label.
pub const IRIS_CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_sets_have_their_documented_shape() {
        let d = digits::<f32>().unwrap();
        assert_eq!(
            (d.n_samples(), d.n_features(), d.n_classes()),
            (1797, 64, 10)
        );
        assert!(d.features().iter().all(|&v| (0.0..=16.0).contains(&v)));
        // First row of digits.csv (a 0): p2 = 5, p3 = 13, label 0.
        assert_eq!((d.row(0)[2], d.row(0)[3], d.targets()[0]), (5.0, 13.0, 0));
        let i = iris::<f64>().unwrap();
        assert_eq!((i.n_samples(), i.n_features()), (150, 4));
        assert_eq!(i.class_counts(), alloc::vec![50, 50, 50]);
        assert_eq!(i.row(0), &[5.1, 3.5, 1.4, 0.2]);
    }
}
