//! Splitting an op's work into blocks of independent rows (batch entries) run as
//! parts on dl-core's gemm threads: each part gets its own slices of every buffer,
//! so the parts need no synchronization, and every row is computed the same way
//! whatever the split, so results do not depend on the thread count.

use crate::error::Result;

/// Parts `rows` rows are split into: one per thread, as long as each part gets at
/// least `min_rows` rows and the op has work enough (`macs` multiply-adds per row)
/// to pay for waking the threads; else one.
pub(crate) fn row_parts(rows: usize, macs: usize, min_rows: usize) -> usize {
    let threads = dl_core::gemm::num_threads().min(MAX_PARTS);
    let parts = threads.min(rows / min_rows.max(1));
    if parts > 1 && rows.saturating_mul(macs) >= 1 << 20 {
        parts
    } else {
        1
    }
}

/// At most this many parts (the gemm pool's thread cap).
pub(crate) const MAX_PARTS: usize = 16;

/// Runs `f` on each block of rows (at most [`MAX_PARTS`]) as parts on the gemm's
/// threads; the first error wins.
pub(crate) fn run_rows<P: Send>(
    parts: impl Iterator<Item = P>,
    f: &(dyn Fn(&mut P) -> Result<()> + Sync),
) -> Result<()> {
    let mut parts = parts.map(|p| (Some(p), Ok(())));
    let mut slots: [(Option<P>, Result<()>); MAX_PARTS] =
        core::array::from_fn(|_| parts.next().unwrap_or((None, Ok(()))));
    dl_core::gemm::for_each_mut(&mut slots, &|_, (rows, result)| {
        if let Some(rows) = rows {
            *result = f(rows);
        }
    });
    slots.into_iter().try_for_each(|(_, r)| r)
}

/// `s` in consecutive blocks of `size`, then empty slices forever (an empty buffer,
/// such as `saved` when nothing needs gradients, gives every part an empty block).
pub(crate) fn rows_of<T>(s: &[T], size: usize) -> impl Iterator<Item = &[T]> {
    s.chunks(size.max(1)).chain(core::iter::repeat(&[][..]))
}

/// [`rows_of`] for mutable buffers.
pub(crate) fn rows_of_mut<T>(s: &mut [T], size: usize) -> impl Iterator<Item = &mut [T]> {
    s.chunks_mut(size.max(1))
        .chain(core::iter::repeat_with(|| &mut [][..]))
}
