//! Memory-bound kernels (elementwise maps, softmax rows, sums) split over the gemm's
//! threads when they are large. Each part is a contiguous block of whole rows, so
//! every element is computed exactly as on one thread; where parts are summed, the
//! blocks depend on the size alone, never on the thread count.
//!
//! Without `std` (or on one thread) the blocks run in order on the caller.

/// Elements below which a kernel stays on the calling thread: handing parts to the
/// pool costs about a microsecond, one memory-bound pass over 32K `f32` about ten.
pub(crate) const MIN_ELEMS: usize = 1 << 15;

/// Most blocks a kernel is split into.
pub(crate) const MAX_PARTS: usize = 16;

/// Blocks for `units` rows of `unit` elements each, by size alone: one below
/// [`MIN_ELEMS`], else [`MAX_PARTS`] (at most one per row). Used where blocks are
/// summed, so the result does not depend on the thread count.
pub(crate) fn blocks_by_size(units: usize, unit: usize) -> usize {
    if units.saturating_mul(unit) < MIN_ELEMS {
        1
    } else {
        MAX_PARTS.min(units).max(1)
    }
}

/// Blocks for `units` rows of `unit` elements each where nothing is summed across
/// blocks: one below [`MIN_ELEMS`] or on one thread, else one per thread.
fn blocks_by_threads(units: usize, unit: usize) -> usize {
    if units.saturating_mul(unit) < MIN_ELEMS {
        1
    } else {
        crate::gemm::num_threads().min(MAX_PARTS).min(units).max(1)
    }
}

/// Runs `f(first_row, rows)` over `blocks` consecutive, near-equal blocks of whole
/// rows of `items` (rows of `unit` items; `items.len()` a multiple of `unit`), on the
/// gemm's threads, and returns the sum of what `f` returns in block order.
pub(crate) fn for_blocks<P: Send>(
    items: &mut [P],
    unit: usize,
    blocks: usize,
    f: &(dyn Fn(usize, &mut [P]) -> f64 + Sync),
) -> f64 {
    let units = items.len().checked_div(unit).unwrap_or(0);
    if blocks <= 1 || units <= 1 {
        return f(0, items);
    }
    let blocks = blocks.min(MAX_PARTS).min(units);
    let per = units.div_ceil(blocks);
    let mut rest = Some(items);
    let mut parts: [(usize, Option<&mut [P]>, f64); MAX_PARTS] = core::array::from_fn(|i| {
        let block = rest.take().map(|r| {
            let (block, r) = r.split_at_mut((per * unit).min(r.len()));
            rest = Some(r);
            block
        });
        (i * per, block.filter(|b| !b.is_empty()), 0.0)
    });
    crate::gemm::for_each_mut(&mut parts[..blocks], &|_, (first, block, out)| {
        if let Some(block) = block {
            *out = f(*first, block);
        }
    });
    parts[..blocks].iter().map(|p| p.2).sum()
}

/// Runs `f(first_row, rows)` over blocks of whole rows of `items` (rows of `unit`
/// items), one block per thread when large (see [`for_blocks`]); for kernels that
/// sum nothing across rows.
pub(crate) fn for_each_block<P: Send>(
    items: &mut [P],
    unit: usize,
    f: &(dyn Fn(usize, &mut [P]) + Sync),
) {
    let units = items.len().checked_div(unit).unwrap_or(0);
    for_blocks(
        items,
        unit,
        blocks_by_threads(units, unit),
        &|first, block| {
            f(first, block);
            0.0
        },
    );
}

/// Runs `f(range)` over `blocks` consecutive, near-equal ranges of `0..units` on the
/// gemm's threads, and returns the sum of what `f` returns in range order.
pub(crate) fn for_ranges(
    units: usize,
    blocks: usize,
    f: &(dyn Fn(core::ops::Range<usize>) -> f64 + Sync),
) -> f64 {
    if blocks <= 1 || units <= 1 {
        return f(0..units);
    }
    let blocks = blocks.min(MAX_PARTS).min(units);
    let per = units.div_ceil(blocks);
    let mut parts: [(core::ops::Range<usize>, f64); MAX_PARTS] =
        core::array::from_fn(|i| ((i * per).min(units)..((i + 1) * per).min(units), 0.0));
    crate::gemm::for_each_mut(&mut parts[..blocks], &|_, (range, out)| {
        if range.start < range.end {
            *out = f(range.clone());
        }
    });
    parts[..blocks].iter().map(|p| p.1).sum()
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn blocks_cover_every_row_once_in_order() {
        for (rows, unit, blocks) in [(10, 3, 4), (7, 1, 16), (1, 5, 3), (33, 2, 2), (0, 4, 3)] {
            let mut items: Vec<usize> = (0..rows * unit).collect();
            let total = for_blocks(&mut items, unit, blocks, &|first, b| {
                for (i, v) in b.iter_mut().enumerate() {
                    assert_eq!(*v, first * unit + i);
                    *v = usize::MAX;
                }
                (b.len() / unit.max(1)) as f64
            });
            assert_eq!(total, rows as f64);
            assert!(items.iter().all(|&v| v == usize::MAX));
        }
        for (units, blocks) in [(10, 4), (7, 16), (1, 3), (0, 2)] {
            let seen: Vec<core::sync::atomic::AtomicUsize> = (0..units)
                .map(|_| core::sync::atomic::AtomicUsize::new(0))
                .collect();
            let total = for_ranges(units, blocks, &|r| {
                for i in r.clone() {
                    seen[i].fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                }
                r.len() as f64
            });
            assert_eq!(total, units as f64);
            assert!(seen
                .iter()
                .all(|s| s.load(core::sync::atomic::Ordering::Relaxed) == 1));
        }
        assert_eq!(blocks_by_size(100, 100), 1);
        assert_eq!(blocks_by_size(1000, 100), MAX_PARTS);
        assert_eq!(blocks_by_size(3, 1 << 20), 3);
    }
}
