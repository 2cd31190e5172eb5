#![no_main]
//! CSV reader: never panics, whatever the bytes and options, and no single
//! allocation exceeds 2x the input (+1 KiB): the f32 feature buffer and the u32
//! labels are sized from the non-blank lines and bytes present, and the header names
//! are kept as one string.

mod alloc_track;

use dl_data::io::csv::{self, CsvOptions, LabelColumn};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: alloc_track::Tracking = alloc_track::Tracking;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the options, the rest is the file.
    let Some((&sel, body)) = data.split_first() else {
        return;
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
    let (result, largest) = alloc_track::measure(|| csv::parse::<f32>(body, &opts));
    assert!(
        largest <= 2 * body.len() + 1024,
        "allocated {largest} bytes for {} bytes",
        body.len()
    );
    if let Ok(t) = result {
        assert_eq!(t.features.len(), t.n_rows * t.n_features);
        let _ = if opts.class_labels {
            t.into_classification().map(|_| ())
        } else {
            t.into_regression().map(|_| ())
        };
    }
});
