#![no_main]
//! IDX reader (raw and gzip): never panics, and never allocates out of proportion to
//! its input: at most 2x the input (plus a small constant) for raw files; for gzip
//! at most what deflate's 1032:1 ratio allows, plus the decoder's own state.

mod alloc_track;

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: alloc_track::Tracking = alloc_track::Tracking;

fuzz_target!(|data: &[u8]| {
    let (result, largest) = alloc_track::measure(|| dl_data::io::idx::parse(data));
    let bound = if dl_data::io::idx::is_gzip(data) {
        data.len() * dl_data::io::idx::MAX_DEFLATE_RATIO as usize + (256 << 10)
    } else {
        2 * data.len() + 1024
    };
    assert!(
        largest <= bound,
        "allocated {largest} bytes for a {}-byte input",
        data.len()
    );
    if let Ok(a) = result {
        // Whatever parses must describe exactly its data and re-encode identically
        // (raw input only: gzip re-encoding differs byte-wise).
        assert_eq!(a.dims.iter().product::<usize>(), a.data.len());
        if !dl_data::io::idx::is_gzip(data) {
            assert_eq!(dl_data::io::idx::to_bytes(&a.dims, &a.data).unwrap(), data);
        }
    }
});
