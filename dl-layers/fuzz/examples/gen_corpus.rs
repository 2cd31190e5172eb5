//! Writes the seed checkpoints (`common/seeds.rs`) into `corpus/checkpoint` (or the
//! directory given as argument):
//!
//! ```text
//! cargo run --manifest-path dl-layers/fuzz/Cargo.toml --example gen_corpus
//! ```

#[path = "../common/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "../common/seeds.rs"]
mod seeds;

use std::path::PathBuf;

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/checkpoint"));
    let seeds = seeds::seeds();
    let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    println!("{}: {} seeds, {total} bytes", dir.display(), seeds.len());
}
