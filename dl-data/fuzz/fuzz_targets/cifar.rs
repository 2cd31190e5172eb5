#![no_main]
//! CIFAR-10 batch reader: never panics; allocations stay within 2x the input.

mod alloc_track;

use libfuzzer_sys::fuzz_target;

#[global_allocator]
static GLOBAL: alloc_track::Tracking = alloc_track::Tracking;

fuzz_target!(|data: &[u8]| {
    let (result, largest) = alloc_track::measure(|| dl_data::io::cifar::parse(data));
    assert!(
        largest <= 2 * data.len() + 1024,
        "allocated {largest} bytes for a {}-byte input",
        data.len()
    );
    if let Ok(set) = result {
        assert_eq!(dl_data::io::cifar::to_bytes(&set).unwrap(), data);
    }
});
