//! Numeric CSV with a header line: every column is a feature except the label
//! column, chosen by name, index or as the last one. Fields are trimmed; header names
//! may be quoted; blank lines are skipped; `\r\n` line ends are accepted. Errors give
//! the line, column and byte offset of the offending field.
//!
//! Allocation is sized from the number of lines actually present, never from
//! anything the file claims.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use dl_core::Scalar;

use super::{FormatError, BYTES};
use crate::dataset::Dataset;
use crate::error::{CsvProblem, Error, FormatKind, Result};

/// Largest class label accepted (keeps a corrupt label from sizing a huge count table).
pub const MAX_CLASS_LABEL: usize = 65_535;

/// Which column holds the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The column with this header name.
    Name(String),
    /// The column at this 0-based index.
    Index(usize),
    /// The last column (the usual layout; the default).
    Last,
    /// No target column: every column is a feature.
    None,
}

/// How to read a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The target column.
    pub label: LabelColumn,
    /// Field separator (default `b','`).
    pub delimiter: u8,
    /// Parse targets as class labels (non-negative integers, default) rather than
    /// numbers.
    pub class_labels: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label: LabelColumn::Last,
            delimiter: b',',
            class_labels: true,
        }
    }
}

/// The targets read from the label column.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets<T> {
    /// No label column was requested.
    None,
    /// Class labels (at most [`MAX_CLASS_LABEL`], so `u32` holds them at half the
    /// memory of `usize`).
    Classes(Vec<u32>),
    /// Numeric targets (regression).
    Values(Vec<T>),
}

/// A parsed CSV file.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvTable<T> {
    /// The header's column names (unquoted), joined by `'\n'`: one string rather than
    /// one allocation per column keeps a header of many short names from costing
    /// more memory than the file.
    column_names: String,
    /// Index of the label column, if any.
    label_column: Option<usize>,
    /// Features, row-major (`n_rows x n_features`).
    pub features: Vec<T>,
    /// The targets.
    pub targets: Targets<T>,
    /// Number of data rows.
    pub n_rows: usize,
    /// Number of feature columns.
    pub n_features: usize,
}

impl<T: Scalar> CsvTable<T> {
    /// Every column name in file order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.column_names.split('\n')
    }

    /// The feature columns' names in order.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        let label = self.label_column;
        self.column_names()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != label)
            .map(|(_, n)| n)
    }

    /// The label column's name, if there is one.
    pub fn label_name(&self) -> Option<&str> {
        self.label_column.and_then(|l| self.column_names().nth(l))
    }

    /// The label column's index, if there is one.
    pub fn label_column(&self) -> Option<usize> {
        self.label_column
    }

    /// A classification [`Dataset`] (needs `class_labels: true` and a label column).
    pub fn into_classification(self) -> Result<Dataset<T, usize>> {
        let n = self.n_features;
        match self.targets {
            Targets::Classes(y) => Dataset::new(
                self.features,
                y.into_iter().map(|v| v as usize).collect(),
                n,
            ),
            _ => Err(Error::InvalidParameter {
                op: "CsvTable::into_classification",
                name: "class_labels",
                value: 0.0,
                valid: "read with a label column and class_labels = true",
            }),
        }
    }

    /// A regression [`Dataset`] (needs `class_labels: false` and a label column).
    pub fn into_regression(self) -> Result<Dataset<T, T>> {
        let n = self.n_features;
        match self.targets {
            Targets::Values(y) => Dataset::new(self.features, y, n),
            _ => Err(Error::InvalidParameter {
                op: "CsvTable::into_regression",
                name: "class_labels",
                value: 1.0,
                valid: "read with a label column and class_labels = false",
            }),
        }
    }
}

/// Parses CSV text held in memory.
///
/// ```
/// use dl_data::io::csv::{self, CsvOptions, LabelColumn};
/// let text = b"a,b,y\n1,2,0\n3,4.5,1\n";
/// let opts = CsvOptions { label: LabelColumn::Name("y".into()), ..Default::default() };
/// let d = csv::parse::<f64>(text, &opts).unwrap().into_classification().unwrap();
/// assert_eq!(d.features(), &[1.0, 2.0, 3.0, 4.5]);
/// assert_eq!(d.targets(), &[0, 1]);
/// ```
pub fn parse<T: Scalar>(bytes: &[u8], opts: &CsvOptions) -> Result<CsvTable<T>> {
    parse_raw(bytes, opts).map_err(|e| e.at(BYTES))
}

fn csv_err(offset: usize, line: usize, column: usize, problem: CsvProblem) -> FormatError {
    FormatError::new(
        offset as u64,
        FormatKind::Csv {
            line: line as u64,
            column: column as u64,
            problem,
        },
    )
}

/// Keeps error messages short whatever the field holds.
fn excerpt(field: &str) -> String {
    field.chars().take(32).collect()
}

fn unquote(name: &str) -> &str {
    let t = name.trim();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        &t[1..t.len() - 1]
    } else {
        t
    }
}

/// Splits `text` into (byte offset, line number, line) for non-blank lines.
fn lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0usize;
    text.split('\n').enumerate().filter_map(move |(i, raw)| {
        let start = offset;
        offset += raw.len() + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            None
        } else {
            Some((start, i + 1, line))
        }
    })
}

pub(crate) fn parse_raw<T: Scalar>(
    bytes: &[u8],
    opts: &CsvOptions,
) -> core::result::Result<CsvTable<T>, FormatError> {
    let text = core::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        csv_err(at, line, 0, CsvProblem::NotUtf8)
    })?;
    let delim = char::from(opts.delimiter);
    let mut rows = lines(text);
    let (_, header_line, header) = rows
        .next()
        .ok_or_else(|| csv_err(0, 1, 0, CsvProblem::MissingHeader))?;
    // Iterated, not collected: the names are kept as one joined string below.
    let names = || header.split(delim).map(unquote);
    let n_fields = names().count();
    let label_col = match &opts.label {
        LabelColumn::None => None,
        LabelColumn::Last => Some(n_fields - 1),
        LabelColumn::Index(i) if *i < n_fields => Some(*i),
        LabelColumn::Name(n) if names().any(|h| h == n) => names().position(|h| h == n),
        other => {
            let wanted = match other {
                LabelColumn::Name(n) => n.clone(),
                LabelColumn::Index(i) => i.to_string(),
                _ => String::new(),
            };
            return Err(csv_err(
                0,
                header_line,
                0,
                CsvProblem::NoSuchLabelColumn { wanted },
            ));
        }
    };
    let n_features = n_fields - usize::from(label_col.is_some());
    // Upper bounds from the input actually present, never from a claim in it: rows
    // from the non-blank lines (so blank lines cannot inflate it; each row takes at
    // least 2 bytes with its newline), and numbers from the bytes (each takes at least
    // one byte plus a separator). So the feature buffer is at most
    // `size_of::<T>() / 2` times the input, and the u32 labels at most 2x.
    let max_rows = lines(text).count();
    let max_numbers = max_rows.saturating_mul(n_features).min(bytes.len() / 2 + 1);
    let mut features: Vec<T> = Vec::with_capacity(max_numbers);
    let mut classes: Vec<u32> = Vec::new();
    let mut values: Vec<T> = Vec::new();
    if label_col.is_some() {
        if opts.class_labels {
            classes.reserve_exact(max_rows);
        } else {
            values.reserve_exact(max_rows);
        }
    }
    let mut n_rows = 0usize;
    for (start, line_no, line) in rows {
        let mut found = 0usize;
        let mut field_start = start;
        for (col, field) in line.split(delim).enumerate() {
            let at = field_start;
            field_start += field.len() + delim.len_utf8();
            found += 1;
            if col >= n_fields {
                continue; // counted, reported below
            }
            let f = field.trim();
            if Some(col) == label_col && opts.class_labels {
                match f.parse::<usize>() {
                    Ok(v) if v <= MAX_CLASS_LABEL => classes.push(v as u32),
                    _ => {
                        return Err(csv_err(
                            at,
                            line_no,
                            col,
                            CsvProblem::BadLabel { field: excerpt(f) },
                        ));
                    }
                }
                continue;
            }
            let v = match f.parse::<f64>() {
                Ok(v) if v.is_finite() => T::from_f64_lossy(v),
                _ => {
                    return Err(csv_err(
                        at,
                        line_no,
                        col,
                        CsvProblem::NotANumber { field: excerpt(f) },
                    ));
                }
            };
            if Some(col) == label_col {
                values.push(v);
            } else {
                features.push(v);
            }
        }
        if found != n_fields {
            return Err(csv_err(
                start,
                line_no,
                found.min(n_fields),
                CsvProblem::FieldCount {
                    expected: n_fields as u64,
                    found: found as u64,
                },
            ));
        }
        n_rows += 1;
    }
    let mut column_names = String::with_capacity(header.len());
    for (i, n) in names().enumerate() {
        if i > 0 {
            column_names.push('\n');
        }
        column_names.push_str(n);
    }
    let targets = match (label_col, opts.class_labels) {
        (None, _) => Targets::None,
        (Some(_), true) => Targets::Classes(classes),
        (Some(_), false) => Targets::Values(values),
    };
    Ok(CsvTable {
        column_names,
        label_column: label_col,
        features,
        targets,
        n_rows,
        n_features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn problem(e: Error) -> (u64, u64, u64, CsvProblem) {
        match e {
            Error::Format {
                offset,
                kind:
                    FormatKind::Csv {
                        line,
                        column,
                        problem,
                    },
                ..
            } => (offset, line, column, problem),
            e => panic!("{e}"),
        }
    }

    #[test]
    fn label_by_index_and_regression_targets() {
        let t = b"\"y\",x1,x2\r\n1.5,2,3\r\n\r\n-2,4,5\r\n";
        let opts = CsvOptions {
            label: LabelColumn::Index(0),
            class_labels: false,
            ..Default::default()
        };
        let tab = parse::<f32>(t, &opts).unwrap();
        assert_eq!(tab.label_name(), Some("y"));
        assert_eq!(tab.feature_names().collect::<Vec<_>>(), vec!["x1", "x2"]);
        assert_eq!(tab.label_column(), Some(0));
        let d = tab.into_regression().unwrap();
        assert_eq!(d.features(), &[2.0, 3.0, 4.0, 5.0]);
        assert_eq!(d.targets(), &[1.5, -2.0]);
    }

    #[test]
    fn errors_locate_the_field() {
        let o = CsvOptions::default();
        assert_eq!(
            problem(parse::<f32>(b"a,y\n1,0\n2,x\n", &o).unwrap_err()),
            (10, 3, 1, CsvProblem::BadLabel { field: "x".into() })
        );
        assert_eq!(
            problem(parse::<f32>(b"a,y\n1,0\nnan,1\n", &o).unwrap_err()),
            (
                8,
                3,
                0,
                CsvProblem::NotANumber {
                    field: "nan".into()
                }
            )
        );
        assert_eq!(
            problem(parse::<f32>(b"a,y\n1,0,3\n", &o).unwrap_err()).3,
            CsvProblem::FieldCount {
                expected: 2,
                found: 3
            }
        );
        assert_eq!(
            problem(parse::<f32>(b"", &o).unwrap_err()).3,
            CsvProblem::MissingHeader
        );
        let named = CsvOptions {
            label: LabelColumn::Name("z".into()),
            ..Default::default()
        };
        assert!(matches!(
            problem(parse::<f32>(b"a,y\n1,0\n", &named).unwrap_err()).3,
            CsvProblem::NoSuchLabelColumn { .. }
        ));
        assert_eq!(
            problem(parse::<f32>(b"a,y\n1,\xff\n", &o).unwrap_err()),
            (6, 2, 0, CsvProblem::NotUtf8)
        );
    }
}
