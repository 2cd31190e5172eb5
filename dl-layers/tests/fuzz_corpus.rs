//! Replays the committed fuzz corpus of `checkpoint::from_bytes`
//! (dl-layers/fuzz/corpus/checkpoint/) and the inputs the fuzzer found
//! (dl-layers/fuzz/regressions/checkpoint/) on stable Rust, through the fuzz
//! target's own harness (`fuzz/common/harness.rs`) and dl-deploy's replay helper
//! (`dl-deploy/fuzz/common/replay.rs`): no input panics, allocates more than the
//! harness's bound, or leaves the model changed after an error. The counting
//! allocator is installed here as in the fuzz target, so the bound is checked too.

#[path = "../fuzz/common/harness.rs"]
mod harness;
#[path = "../../dl-deploy/fuzz/common/replay.rs"]
mod replay;

use std::path::Path;

#[global_allocator]
static ALLOC: harness::CountingAlloc = harness::CountingAlloc;

#[test]
fn checkpoint_corpus() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let outcomes = replay::replay(&fuzz_dir, "checkpoint", 16, harness::check);
    let mut loaded = [0usize; 2];
    let (mut worst, mut largest) = (0.0f64, 0usize);
    for (path, o) in &outcomes {
        let peak = o.peak.expect("the counting allocator is installed");
        let len = std::fs::metadata(path).unwrap().len() as usize;
        worst = worst.max(peak as f64 / harness::alloc_bound(len) as f64);
        largest = largest.max(peak);
        for (n, r) in loaded.iter_mut().zip(&o.results) {
            *n += r.is_ok() as usize;
        }
    }
    println!(
        "checkpoint: {} inputs replayed, {} load into the f32 model, {} into the f64 \
         model; largest peak allocation {largest} bytes, {:.0}% of its input's bound at most",
        outcomes.len(),
        loaded[0],
        loaded[1],
        100.0 * worst
    );
    // A corpus of which nothing loads fuzzes nothing past the checks: regenerate the
    // seeds (cargo run --manifest-path dl-layers/fuzz/Cargo.toml --example gen_corpus).
    assert!(loaded[0] > 0 && loaded[1] > 0, "no input loads: {loaded:?}");
}

/// A safetensors file whose JSON header is `header` and whose data is `data`.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Headers far larger than the fuzzer's inputs (it stops at 4 KiB), built to make
/// the parser allocate the most per byte: a shape of 2^17 + 1 zeros (2 bytes of JSON
/// each, buffered by serde as 32-byte values in a vector that has just doubled: the
/// worst case `harness::alloc_bound` is derived for), 20,000 empty tensors
/// (hash-map entries), 20,000 metadata strings. Each must be refused within the
/// harness's bound (checked by `harness::check`), model unchanged.
#[test]
fn large_headers_stay_within_the_allocation_bound() {
    let zeros = vec!["0"; (1 << 17) + 1].join(",");
    let long_shape = format!(r#"{{"a":{{"dtype":"F32","shape":[{zeros}],"data_offsets":[0,0]}}}}"#);
    let many: Vec<String> = (0..20_000)
        .map(|i| format!(r#""t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#))
        .collect();
    let many = format!("{{{}}}", many.join(","));
    let meta: Vec<String> = (0..20_000).map(|i| format!(r#""k{i}":"v""#)).collect();
    let meta = format!(r#"{{"__metadata__":{{{}}}}}"#, meta.join(","));
    for (what, header) in [
        ("long shape", long_shape),
        ("many tensors", many),
        ("metadata", meta),
    ] {
        let bytes = file(&header, &[]);
        let o = harness::check(&bytes);
        assert!(o.results.iter().all(|r| r.is_err()), "{what}: {o:?}");
        let peak = o.peak.unwrap();
        println!(
            "{what}: {} bytes, peak allocation {peak} bytes ({:.1} per input byte)",
            bytes.len(),
            peak as f64 / bytes.len() as f64
        );
    }
}
