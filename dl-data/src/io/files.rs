//! File access for the readers (std): whole-file reads, gzip writing, and the
//! directory loaders that find the standard file names.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use dl_core::Scalar;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::csv::{CsvOptions, CsvTable};
use super::idx::IdxArray;
use super::{cifar, idx, FormatError, ImageSet, TrainTest};
use crate::error::{Error, FormatKind, Result};

fn display(path: &Path) -> String {
    format!("{}", path.display())
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: display(path),
        source,
    }
}

/// Reads a whole file (its size is what it is: no header is trusted here).
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|e| io_err(path, e))
}

fn write_bytes(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    let res = if gzip {
        let mut enc = flate2::write::GzEncoder::new(&mut w, flate2::Compression::default());
        enc.write_all(bytes).and_then(|_| enc.finish().map(|_| ()))
    } else {
        w.write_all(bytes)
    };
    res.and_then(|_| w.flush()).map_err(|e| io_err(path, e))
}

/// Reads an IDX file, raw or gzip (detected by its magic, not its name).
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    idx::parse_any(&bytes).map_err(|e| e.at(&display(path)))
}

/// Writes an unsigned-byte IDX file, gzip-compressed if `gzip`.
pub fn write_idx(path: impl AsRef<Path>, dims: &[usize], data: &[u8], gzip: bool) -> Result<()> {
    let bytes = idx::to_bytes(dims, data)?;
    write_bytes(path.as_ref(), &bytes, gzip)
}

/// Reads one CIFAR-10 binary batch.
pub fn read_cifar(path: impl AsRef<Path>) -> Result<ImageSet> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    cifar::parse_raw(&bytes).map_err(|e| e.at(&display(path)))
}

/// Writes images as one CIFAR-10 binary batch.
pub fn write_cifar(path: impl AsRef<Path>, set: &ImageSet) -> Result<()> {
    let bytes = cifar::to_bytes(set)?;
    write_bytes(path.as_ref(), &bytes, false)
}

/// Reads a CSV file (see [`super::csv`]).
pub fn read_csv<T: Scalar>(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<CsvTable<T>> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    super::csv::parse_raw(&bytes, opts).map_err(|e| e.at(&display(path)))
}

/// The first of `names` (each tried as is and with `.gz`) that exists in `dir`.
fn find(dir: &Path, names: &[&str]) -> Result<PathBuf> {
    for n in names {
        for candidate in [String::from(*n), format!("{n}.gz")] {
            let p = dir.join(&candidate);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::MissingFile {
        dir: display(dir),
        tried: names.join(", ") + " (each also with .gz)",
    })
}

/// Reads an images file and a labels file and checks they describe the same items.
fn read_idx_pair(images: &Path, labels: &Path) -> Result<ImageSet> {
    let im = read_idx(images)?;
    let lb = read_idx(labels)?;
    let at =
        |p: &Path, offset: u64, kind: FormatKind| FormatError::new(offset, kind).at(&display(p));
    if im.dims.len() != 3 {
        return Err(at(
            images,
            3,
            FormatKind::BadHeaderField {
                field: "rank",
                value: im.dims.len() as u64,
                valid: "3 for an images file",
            },
        ));
    }
    if lb.dims.len() != 1 {
        return Err(at(
            labels,
            3,
            FormatKind::BadHeaderField {
                field: "rank",
                value: lb.dims.len() as u64,
                valid: "1 for a labels file",
            },
        ));
    }
    if im.dims[0] != lb.dims[0] {
        return Err(at(
            labels,
            4,
            FormatKind::CountMismatch {
                what: "labels vs images",
                expected: im.dims[0] as u64,
                found: lb.dims[0] as u64,
            },
        ));
    }
    if let Some(i) = lb.data.iter().position(|&l| l >= 10) {
        return Err(at(
            labels,
            8 + i as u64,
            FormatKind::LabelOutOfRange {
                label: u64::from(lb.data[i]),
                n_classes: 10,
            },
        ));
    }
    Ok(ImageSet {
        pixels: im.data,
        labels: lb.data,
        channels: 1,
        height: im.dims[1],
        width: im.dims[2],
    })
}

/// Loads MNIST or Fashion-MNIST (same file names) from `dir`: the files
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each raw or `.gz` (the dotted variants
/// `train-images.idx3-ubyte` are accepted too). Labels must be < 10 and each pair's
/// counts must agree.
pub fn mnist(dir: impl AsRef<Path>) -> Result<TrainTest> {
    let dir = dir.as_ref();
    let f = |a: &str, b: &str| find(dir, &[a, b]);
    let train = read_idx_pair(
        &f("train-images-idx3-ubyte", "train-images.idx3-ubyte")?,
        &f("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")?,
    )?;
    let test = read_idx_pair(
        &f("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")?,
        &f("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")?,
    )?;
    Ok(TrainTest { train, test })
}

/// Loads CIFAR-10 from `dir` (or its `cifar-10-batches-bin` subdirectory):
/// `data_batch_1.bin` .. `data_batch_5.bin` joined as the training set and
/// `test_batch.bin` as the test set.
pub fn cifar10(dir: impl AsRef<Path>) -> Result<TrainTest> {
    let mut dir = dir.as_ref().to_path_buf();
    let nested = dir.join("cifar-10-batches-bin");
    if !dir.join("test_batch.bin").is_file() && nested.is_dir() {
        dir = nested;
    }
    let mut train = read_cifar(find(&dir, &["data_batch_1.bin"])?)?;
    for i in 2..=5 {
        let b = read_cifar(find(&dir, &[&format!("data_batch_{i}.bin")])?)?;
        train.extend(&b)?;
    }
    let test = read_cifar(find(&dir, &["test_batch.bin"])?)?;
    Ok(TrainTest { train, test })
}

/// The environment variable that turns a missing data set into an error in
/// [`data_dir_or_skip`]; CI sets it to `1` for the tests whose data it has.
pub const REQUIRE_DATA: &str = "DL_REQUIRE_DATA";

/// The data set directory `dir` for a test that needs data the repository does not
/// carry: `Ok(Some(dir))` when it exists. When it does not, `Ok(None)` after printing
/// `skipped: <dir> not found` (the caller returns), or, with `DL_REQUIRE_DATA=1`, an
/// [`Error::Io`] of kind `NotFound`, so a run that promised the data fails instead of
/// passing without it. Such tests are `#[ignore = "needs <dir>"]`, so a plain
/// `cargo test` lists them as ignored rather than reporting a skip as a pass.
pub fn data_dir_or_skip(dir: impl AsRef<Path>) -> Result<Option<PathBuf>> {
    let require = std::env::var(REQUIRE_DATA).is_ok_and(|v| v == "1");
    present_dir(dir.as_ref(), require)
}

/// [`data_dir_or_skip`] with the variable read.
fn present_dir(dir: &Path, require: bool) -> Result<Option<PathBuf>> {
    if dir.is_dir() {
        return Ok(Some(dir.to_path_buf()));
    }
    if require {
        let why = format!("data set not found, and {REQUIRE_DATA}=1 requires it");
        return Err(io_err(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, why),
        ));
    }
    std::println!("skipped: {} not found", dir.display());
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_data_dir_is_a_skip_or_under_require_data_an_error() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        for require in [false, true] {
            assert_eq!(present_dir(here, require).unwrap().as_deref(), Some(here));
        }
        let missing = here.join("no-such-data-set");
        assert!(present_dir(&missing, false).unwrap().is_none());
        match present_dir(&missing, true).unwrap_err() {
            Error::Io { path, source } => {
                assert!(path.ends_with("no-such-data-set"), "{path}");
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                assert!(
                    format!("{source}").contains("DL_REQUIRE_DATA=1"),
                    "{source}"
                );
            }
            e => panic!("{e}"),
        }
    }
}
