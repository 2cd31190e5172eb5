//! Writes the seed blobs (`common/seeds.rs`) into `corpus/blob` and
//! `corpus/blob_crc` (or the directories given as arguments):
//!
//! ```text
//! cargo run --manifest-path dl-deploy/fuzz/Cargo.toml --example gen_corpus
//! ```

#[path = "../common/seeds.rs"]
mod seeds;

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs = vec![root.join("corpus/blob"), root.join("corpus/blob_crc")];
    }
    let seeds = seeds::seeds().expect("building the seed graphs");
    let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
    for dir in &dirs {
        std::fs::create_dir_all(dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        println!("{}: {} seeds, {total} bytes", dir.display(), seeds.len());
    }
}
