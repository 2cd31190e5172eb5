//! Replays the committed fuzz corpora (dl-data/fuzz/corpus/<target>/) and the
//! regression inputs the fuzzers found (dl-data/fuzz/regressions/<target>/) on
//! stable Rust, with the same checks as the fuzz targets: no panic, and no single
//! allocation out of proportion to the input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use dl_data::io::csv::{self, CsvOptions, LabelColumn};
use dl_data::io::{cifar, idx};

/// Records the largest allocation made by the current thread while measuring
/// (thread-local, so tests running in parallel do not disturb each other).
struct Tracking;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ACTIVE.try_with(|a| {
        if a.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|l| l.set(0));
    ACTIVE.with(|a| a.set(true));
    let r = f();
    ACTIVE.with(|a| a.set(false));
    (r, LARGEST.with(|l| l.get()))
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_file() {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn idx_corpus() {
    let files = inputs("idx");
    assert!(files.len() >= 4, "corpus missing: {} files", files.len());
    let mut ok = 0;
    for (p, data) in &files {
        let (result, largest) = measure(|| idx::parse(data));
        let bound = if idx::is_gzip(data) {
            data.len() * idx::MAX_DEFLATE_RATIO as usize + (256 << 10)
        } else {
            2 * data.len() + 1024
        };
        assert!(
            largest <= bound,
            "{}: allocated {largest} for {} bytes",
            p.display(),
            data.len()
        );
        if let Ok(a) = result {
            ok += 1;
            assert_eq!(
                a.dims.iter().product::<usize>(),
                a.data.len(),
                "{}",
                p.display()
            );
            if !idx::is_gzip(data) {
                assert_eq!(&idx::to_bytes(&a.dims, &a.data).unwrap(), data);
            }
        }
    }
    println!("idx: {} inputs replayed, {ok} parse", files.len());
}

#[test]
fn cifar_corpus() {
    let files = inputs("cifar");
    assert!(files.len() >= 2, "corpus missing");
    for (p, data) in &files {
        let (result, largest) = measure(|| cifar::parse(data));
        assert!(
            largest <= 2 * data.len() + 1024,
            "{}: allocated {largest}",
            p.display()
        );
        if let Ok(set) = result {
            assert_eq!(&cifar::to_bytes(&set).unwrap(), data);
        }
    }
    println!("cifar: {} inputs replayed", files.len());
}

#[test]
fn csv_corpus() {
    let files = inputs("csv");
    assert!(files.len() >= 3, "corpus missing");
    for (p, data) in &files {
        let Some((&sel, body)) = data.split_first() else {
            continue;
        };
        let label = match sel % 4 {
            0 => LabelColumn::Last,
            1 => LabelColumn::Index(usize::from(sel >> 4)),
            2 => LabelColumn::Name("label".into()),
            _ => LabelColumn::None,
        };
        let opts = CsvOptions {
            label,
            delimiter: if sel & 4 == 0 { b',' } else { b';' },
            class_labels: sel & 8 == 0,
        };
        let (result, largest) = measure(|| csv::parse::<f32>(body, &opts));
        assert!(
            largest <= 2 * body.len() + 1024,
            "{}: allocated {largest}",
            p.display()
        );
        if let Ok(t) = result {
            assert_eq!(t.features.len(), t.n_rows * t.n_features);
        }
    }
    println!("csv: {} inputs replayed", files.len());
}
