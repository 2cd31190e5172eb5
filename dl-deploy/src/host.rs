//! Desktop conveniences for running blobs with a heap: aligned storage for a blob
//! read from a file, and an arena on the heap.

use alloc::vec;
use alloc::vec::Vec;

/// A blob's bytes in 8-byte-aligned storage, as [`crate::Model::from_bytes`] needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignedBlob {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBlob {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBlob {
            words,
            len: bytes.len(),
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}

/// An arena on the heap, aligned for every model: `HeapArena::new(model.arena_len())`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeapArena {
    words: Vec<u64>,
    len: usize,
}

impl HeapArena {
    /// A zeroed arena of `len` bytes.
    pub fn new(len: usize) -> Self {
        HeapArena {
            words: vec![0; len.div_ceil(8)],
            len,
        }
    }

    /// The arena's bytes, for [`crate::Model::run`].
    pub fn bytes(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[..self.len]
    }
}
