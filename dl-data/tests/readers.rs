//! Reader round trips (the crate's own writers, read back identically), the
//! standard directory loaders on the shared MNIST files, and the errors a corrupt
//! file gives (path, byte offset, what is wrong).
//!
//! The MNIST tests need `../shared/data` beside the repository, so they are ignored
//! by default: `cargo test -p dl-data --test readers -- --include-ignored` runs them
//! (skipping with a message when the data is absent; `DL_REQUIRE_DATA=1` makes that
//! a failure, as `cargo xtask test` does where the data is present).

use std::path::{Path, PathBuf};

use dl_data::error::FormatKind;
use dl_data::io::{self, cifar, idx, ImageSet};
use dl_data::Error;

/// A fresh scratch directory per test (no external tempdir crate needed).
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dl-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `../shared/data` relative to the repository root.
fn shared(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(sub)
}

fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut r = dl_core::Rng::seed_from_u64(seed);
    (0..n).map(|_| r.next_u32() as u8).collect()
}

#[test]
fn idx_round_trip_raw_and_gzip() {
    let dir = scratch("idx");
    let images = pseudo_random_bytes(7 * 28 * 28, 1);
    let labels: Vec<u8> = (0..7).map(|i| (i * 3 % 10) as u8).collect();
    for gz in [false, true] {
        let ext = if gz { ".gz" } else { "" };
        let (pi, pl) = (
            dir.join(format!("train-images-idx3-ubyte{ext}")),
            dir.join(format!("train-labels-idx1-ubyte{ext}")),
        );
        io::write_idx(&pi, &[7, 28, 28], &images, gz).unwrap();
        io::write_idx(&pl, &[7], &labels, gz).unwrap();
        let raw = std::fs::read(&pi).unwrap();
        assert_eq!(idx::is_gzip(&raw), gz);
        let a = io::read_idx(&pi).unwrap();
        assert_eq!(a.dims, vec![7, 28, 28]);
        assert_eq!(a.data, images);
        assert_eq!(io::read_idx(&pl).unwrap().data, labels);
        if !gz {
            // Raw bytes are exactly the header then the data.
            assert_eq!(&raw[..4], &[0, 0, 8, 3]);
            assert_eq!(raw.len(), 16 + images.len());
        }
    }
    // The directory loader with t10k files too (gzip ones are found by `.gz`).
    let _ = std::fs::remove_file(dir.join("train-images-idx3-ubyte"));
    let _ = std::fs::remove_file(dir.join("train-labels-idx1-ubyte"));
    io::write_idx(
        dir.join("t10k-images-idx3-ubyte"),
        &[2, 28, 28],
        &images[..2 * 784],
        false,
    )
    .unwrap();
    io::write_idx(dir.join("t10k-labels-idx1-ubyte"), &[2], &[9, 0], false).unwrap();
    let m = io::mnist(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (7, 2));
    assert_eq!(m.train.image(6), &images[6 * 784..]);
    assert_eq!(m.test.labels, vec![9, 0]);
}

#[test]
fn cifar_round_trip_and_directory_loader() {
    let dir = scratch("cifar");
    let mut all = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        height: 32,
        width: 32,
    };
    for (i, name) in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ]
    .iter()
    .enumerate()
    {
        let set = ImageSet {
            pixels: pseudo_random_bytes(3 * 3072, i as u64 + 10),
            labels: vec![i as u8, 9, (i * 7 % 10) as u8],
            channels: 3,
            height: 32,
            width: 32,
        };
        io::write_cifar(dir.join(name), &set).unwrap();
        let back = io::read_cifar(dir.join(name)).unwrap();
        assert_eq!(back, set);
        assert_eq!(std::fs::metadata(dir.join(name)).unwrap().len(), 3 * 3073);
        if i < 5 {
            all.extend(&set).unwrap();
        }
    }
    let c = io::cifar10(&dir).unwrap();
    assert_eq!(c.train, all);
    assert_eq!(c.test.len(), 3);
    // A label of 10 in a written file is reported with the path and the record offset.
    let mut bytes = std::fs::read(dir.join("test_batch.bin")).unwrap();
    bytes[2 * cifar::RECORD_BYTES] = 10;
    std::fs::write(dir.join("bad.bin"), &bytes).unwrap();
    match io::read_cifar(dir.join("bad.bin")).unwrap_err() {
        Error::Format { path, offset, kind } => {
            assert!(path.ends_with("bad.bin"), "{path}");
            assert_eq!(offset, 2 * 3073);
            assert_eq!(
                kind,
                FormatKind::LabelOutOfRange {
                    label: 10,
                    n_classes: 10
                }
            );
        }
        e => panic!("{e}"),
    }
}

#[test]
fn corrupt_files_give_named_errors_with_path_and_offset() {
    let dir = scratch("corrupt");
    let images = pseudo_random_bytes(3 * 4, 2);
    io::write_idx(dir.join("a"), &[3, 2, 2], &images, false).unwrap();
    let good = std::fs::read(dir.join("a")).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let expect = |p: PathBuf| -> (u64, FormatKind) {
        match io::read_idx(&p).unwrap_err() {
            Error::Format { path, offset, kind } => {
                assert_eq!(path, p.display().to_string());
                let msg = Error::Format {
                    path,
                    offset,
                    kind: kind.clone(),
                }
                .to_string();
                assert!(msg.contains("byte offset"), "{msg}");
                (offset, kind)
            }
            e => panic!("{e}"),
        }
    };
    assert!(matches!(
        expect(write("magic", &[&[1u8, 0][..], &good[2..]].concat())),
        (0, FormatKind::BadMagic { .. })
    ));
    assert_eq!(
        expect(write("trunc", &good[..good.len() - 1])).1,
        FormatKind::Truncated {
            needed: 28,
            available: 27
        }
    );
    // A gzip file cut short: reported as a gzip error or truncation, never a panic.
    io::write_idx(dir.join("z.gz"), &[3, 2, 2], &images, true).unwrap();
    let gz = std::fs::read(dir.join("z.gz")).unwrap();
    let (_, k) = expect(write("cut.gz", &gz[..gz.len() - 12]));
    assert!(
        matches!(k, FormatKind::Gzip { .. } | FormatKind::Truncated { .. }),
        "{k:?}"
    );
    // A gzip header claiming 2^32-1 images of 28x28 in a tiny file: refused up front.
    let mut lying = vec![0u8, 0, 8, 3];
    lying.extend_from_slice(&u32::MAX.to_be_bytes());
    lying.extend_from_slice(&28u32.to_be_bytes());
    lying.extend_from_slice(&28u32.to_be_bytes());
    let p = dir.join("lying.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&lying).unwrap();
        std::fs::write(&p, e.finish().unwrap()).unwrap();
    }
    assert!(matches!(expect(p), (4, FormatKind::ImpossibleSize { .. })));
    // Images and labels that disagree on the count.
    let m = scratch("mismatch");
    io::write_idx(
        m.join("train-images-idx3-ubyte"),
        &[3, 2, 2],
        &images,
        false,
    )
    .unwrap();
    io::write_idx(m.join("train-labels-idx1-ubyte"), &[2], &[1, 2], false).unwrap();
    match io::mnist(&m).unwrap_err() {
        Error::Format {
            offset: 4,
            kind:
                FormatKind::CountMismatch {
                    expected: 3,
                    found: 2,
                    ..
                },
            path,
        } => {
            assert!(path.ends_with("train-labels-idx1-ubyte"))
        }
        e => panic!("{e}"),
    }
    // Labels of 10 or more in a labels file.
    io::write_idx(m.join("train-labels-idx1-ubyte"), &[3], &[1, 12, 2], false).unwrap();
    match io::mnist(&m).unwrap_err() {
        Error::Format {
            offset,
            kind: FormatKind::LabelOutOfRange { label: 12, .. },
            ..
        } => assert_eq!(offset, 9),
        e => panic!("{e}"),
    }
    // No files at all.
    assert!(matches!(
        io::mnist(scratch("empty")).unwrap_err(),
        Error::MissingFile { .. }
    ));
}

#[test]
#[ignore = "needs ../shared/data/mnist"]
fn full_mnist_counts_and_shapes() {
    let Some(dir) = io::data_dir_or_skip(shared("mnist")).expect("DL_REQUIRE_DATA=1") else {
        return;
    };
    let m = io::mnist(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (60_000, 10_000));
    assert_eq!((m.train.height, m.train.width), (28, 28));
}

#[test]
#[ignore = "needs ../shared/data/mnist5k"]
fn mnist5k_counts_and_known_values() {
    let Some(dir) = io::data_dir_or_skip(shared("mnist5k")).expect("DL_REQUIRE_DATA=1") else {
        return;
    };
    let m = io::mnist(&dir).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (4_000, 1_000));
    assert_eq!(
        (m.train.channels, m.train.height, m.train.width),
        (1, 28, 28)
    );
    // Values read independently with Python's gzip + struct (see tests/fixtures/README.md):
    // train label 0 = 4, label 3999 = 1; train image 0 has pixel (16, 14) = 255 (its
    // maximum) and sum 20768; test label 0 = 3, label 999 = 1; test image 999 has
    // pixel (10, 15) = 246 and sum 16854; per-class train counts below.
    assert_eq!((m.train.labels[0], m.train.labels[3999]), (4, 1));
    let img0 = m.train.image(0);
    assert_eq!(img0[16 * 28 + 14], 255);
    assert_eq!(img0.iter().map(|&p| u32::from(p)).sum::<u32>(), 20_768);
    assert_eq!((m.test.labels[0], m.test.labels[999]), (3, 1));
    let t = m.test.image(999);
    assert_eq!(t[10 * 28 + 15], 246);
    assert_eq!(t.iter().map(|&p| u32::from(p)).sum::<u32>(), 16_854);
    let mut counts = [0usize; 10];
    m.train
        .labels
        .iter()
        .for_each(|&l| counts[usize::from(l)] += 1);
    assert_eq!(counts, [396, 387, 403, 414, 398, 391, 392, 395, 408, 416]);
    // Pixel scaling to [0, 1] on conversion.
    let d = m.test.to_dataset::<f32>(true).unwrap();
    assert_eq!(d.row(999)[10 * 28 + 15], 246.0 / 255.0);
}

#[test]
fn csv_file_reader_reports_path() {
    let dir = scratch("csv");
    let p = dir.join("d.csv");
    std::fs::write(&p, "x,label\n1,0\n2,oops\n").unwrap();
    match io::read_csv::<f32>(&p, &Default::default()).unwrap_err() {
        Error::Format { path, offset, .. } => {
            assert!(path.ends_with("d.csv"));
            assert_eq!(offset, 14);
        }
        e => panic!("{e}"),
    }
    let iris = io::read_csv::<f64>(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv"),
        &Default::default(),
    )
    .unwrap()
    .into_classification()
    .unwrap();
    assert_eq!(iris, dl_data::datasets::iris::<f64>().unwrap());
}
