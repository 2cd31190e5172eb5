//! Distances between vectors and all-pairs distance matrices: L1 (Manhattan), L2
//! (Euclidean) and squared L2, as kNN and k-means need them.
//!
//! [`pairwise`] computes an `n x m` matrix between the rows of two row-major
//! matrices. Squared L2 on large inputs uses the GEMM expansion
//! `||x - y||^2 = ||x||^2 + ||y||^2 - 2 x.y` (one [`crate::gemm::gemm`] call does the
//! `n m d` work), clamped at 0; small inputs and L1 use direct loops with independent
//! accumulators that auto-vectorize, blocked over `y` so its rows stay in cache (and
//! spread over threads with `std`).
//!
//! ```
//! use dl_core::distance::{l1, l2, pairwise, Metric};
//! assert_eq!(l1(&[1.0f32, 2.0], &[4.0, 6.0]).unwrap(), 7.0);
//! assert_eq!(l2(&[1.0f32, 2.0], &[4.0, 6.0]).unwrap(), 5.0);
//! // Two points against three: a 2 x 3 matrix of squared distances.
//! let x = [0.0f64, 0.0, 1.0, 1.0];
//! let y = [0.0f64, 0.0, 3.0, 4.0, 1.0, 0.0];
//! let mut d = [0.0f64; 6];
//! pairwise(Metric::SqL2, &x, 2, &y, 3, 2, &mut d).unwrap();
//! assert_eq!(d, [0.0, 25.0, 1.0, 2.0, 13.0, 1.0]);
//! ```

use crate::elementwise::{check_len, lane_sum2};
use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// A distance between two vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Manhattan distance `sum |a_i - b_i|`.
    L1,
    /// Euclidean distance `sqrt(sum (a_i - b_i)^2)`.
    L2,
    /// Squared Euclidean distance `sum (a_i - b_i)^2` (same ranking as L2, no sqrt).
    SqL2,
}

impl Metric {
    /// The metric's name, e.g. `"l1"`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::L1 => "l1",
            Metric::L2 => "l2",
            Metric::SqL2 => "sq_l2",
        }
    }

    /// The distance between two equal-length vectors; errors if the lengths differ.
    pub fn distance<T: Scalar>(self, a: &[T], b: &[T]) -> Result<T> {
        check_len(self.name(), "b", a.len(), b.len())?;
        Ok(match self {
            Metric::L1 => l1_kernel(a, b),
            Metric::L2 => sq_l2_kernel(a, b).sqrt(),
            Metric::SqL2 => sq_l2_kernel(a, b),
        })
    }
}

#[inline]
fn l1_kernel<T: Scalar>(a: &[T], b: &[T]) -> T {
    lane_sum2(a, b, |u, v| (u - v).abs())
}

#[inline]
fn sq_l2_kernel<T: Scalar>(a: &[T], b: &[T]) -> T {
    lane_sum2(a, b, |u, v| {
        let d = u - v;
        d * d
    })
}

#[inline]
fn sq_norm<T: Scalar>(a: &[T]) -> T {
    lane_sum2(a, a, |u, v| u * v)
}

/// L1 (Manhattan) distance `sum |a_i - b_i|`; errors if the lengths differ.
pub fn l1<T: Scalar>(a: &[T], b: &[T]) -> Result<T> {
    Metric::L1.distance(a, b)
}

/// L2 (Euclidean) distance; errors if the lengths differ.
pub fn l2<T: Scalar>(a: &[T], b: &[T]) -> Result<T> {
    Metric::L2.distance(a, b)
}

/// Squared L2 distance; errors if the lengths differ.
pub fn sq_l2<T: Scalar>(a: &[T], b: &[T]) -> Result<T> {
    Metric::SqL2.distance(a, b)
}

/// Below this much work (`n * m * d` multiply-adds) or this dimension, squared L2
/// runs direct loops: GEMM's packing overhead would dominate, and the direct form has
/// no cancellation error.
const GEMM_MIN_WORK: usize = 1 << 15;
const GEMM_MIN_DIM: usize = 8;

/// Bytes of `y` rows processed together, so they stay in L2 cache while every row of
/// the current `x` block passes over them.
const Y_BLOCK_BYTES: usize = 128 * 1024;
/// Bytes of `x` rows per block: `y` is streamed from memory once per block, and the
/// block itself stays in the last-level cache.
const X_BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// All-pairs distances between the `n` rows of `x` and the `m` rows of `y` (both
/// row-major with `d` columns) into `out` (`n x m`, row-major:
/// `out[i * m + j] = dist(x_i, y_j)`).
///
/// Squared L2 and L2 on large inputs go through GEMM (`||x||^2 + ||y||^2 - 2 x.y`,
/// clamped at 0): fast, but with an absolute error of about `eps * (||x||^2 +
/// ||y||^2)`, so a point's distance to itself may come out slightly above 0. L1 and
/// small inputs are computed directly. Errors if a buffer's length is wrong.
pub fn pairwise<T: Scalar>(
    metric: Metric,
    x: &[T],
    n: usize,
    y: &[T],
    m: usize,
    d: usize,
    out: &mut [T],
) -> Result<()> {
    const OP: &str = "pairwise";
    let overflow = Error::Overflow { op: OP };
    check_len(OP, "x", n.checked_mul(d).ok_or(overflow)?, x.len())?;
    check_len(OP, "y", m.checked_mul(d).ok_or(overflow)?, y.len())?;
    check_len(OP, "output", n.checked_mul(m).ok_or(overflow)?, out.len())?;
    if out.is_empty() {
        return Ok(());
    }
    if d == 0 {
        out.fill(T::ZERO);
        return Ok(());
    }
    match metric {
        Metric::L1 => pairwise_direct(x, y, m, d, out, l1_kernel::<T>),
        Metric::L2 | Metric::SqL2 => {
            let work = n.saturating_mul(m).saturating_mul(d);
            if work >= GEMM_MIN_WORK && d >= GEMM_MIN_DIM {
                sq_l2_by_gemm(x, n, y, m, d, out)?;
            } else {
                pairwise_direct(x, y, m, d, out, sq_l2_kernel::<T>);
            }
            if metric == Metric::L2 {
                for v in out.iter_mut() {
                    *v = v.sqrt();
                }
            }
        }
    }
    Ok(())
}

/// Squared distances as `||x_i||^2 + ||y_j||^2 - 2 x_i . y_j`: the norms are written
/// into `out` first, then one GEMM with `beta = 1` subtracts `2 X Y^T`. Allocates
/// nothing beyond what the GEMM backend does.
fn sq_l2_by_gemm<T: Scalar>(
    x: &[T],
    n: usize,
    y: &[T],
    m: usize,
    d: usize,
    out: &mut [T],
) -> Result<()> {
    let (first, rest) = out.split_at_mut(m);
    // Row 0 holds ||y_j||^2 until every other row has been filled from it.
    for (v, yr) in first.iter_mut().zip(y.chunks_exact(d)) {
        *v = sq_norm(yr);
    }
    for (row, xr) in rest.chunks_exact_mut(m).zip(x.chunks_exact(d).skip(1)) {
        let xn = sq_norm(xr);
        for (o, &yn) in row.iter_mut().zip(first.iter()) {
            *o = yn + xn;
        }
    }
    let xn0 = sq_norm(&x[..d]);
    for v in first.iter_mut() {
        *v = *v + xn0;
    }
    crate::gemm::gemm(
        false,
        true,
        n,
        m,
        d,
        T::from_f64_lossy(-2.0),
        x,
        y,
        T::ONE,
        out,
    )?;
    // Cancellation can leave tiny negatives; a distance is never below 0 (NaN stays).
    for v in out.iter_mut() {
        if *v < T::ZERO {
            *v = T::ZERO;
        }
    }
    Ok(())
}

/// `out[i, j] = k(x_i, y_j)` directly. With `std` and enough work the rows of `out`
/// are split among threads (or, for fewer rows than threads, the columns of each
/// row), so each thread streams `y` through its cache once per block of its rows.
fn pairwise_direct<T: Scalar>(
    x: &[T],
    y: &[T],
    m: usize,
    d: usize,
    out: &mut [T],
    k: impl Fn(&[T], &[T]) -> T + Sync + Copy,
) {
    #[cfg(feature = "std")]
    {
        use rayon::prelude::*;
        /// Below this many element operations, waking threads costs more than it saves.
        const PAR_MIN_WORK: usize = 1 << 20;
        let n = x.len() / d;
        let threads = rayon::current_num_threads();
        if threads > 1 && n.saturating_mul(m).saturating_mul(d) >= PAR_MIN_WORK {
            if n >= threads {
                let rows = n.div_ceil(threads);
                out.par_chunks_mut(m * rows)
                    .zip(x.par_chunks(d * rows))
                    .for_each(|(o, xs)| pairwise_block(xs, y, m, d, o, k));
            } else {
                let cols = m.div_ceil(threads);
                for (xi, orow) in x.chunks_exact(d).zip(out.chunks_exact_mut(m)) {
                    orow.par_chunks_mut(cols)
                        .zip(y.par_chunks(d * cols))
                        .for_each(|(o, ys)| pairwise_block(xi, ys, o.len(), d, o, k));
                }
            }
            return;
        }
    }
    pairwise_block(x, y, m, d, out, k);
}

/// The single-threaded body of [`pairwise_direct`]: blocks of `x` rows (kept in the
/// last-level cache) against blocks of `y` rows (kept in L2).
fn pairwise_block<T: Scalar>(
    x: &[T],
    y: &[T],
    m: usize,
    d: usize,
    out: &mut [T],
    k: impl Fn(&[T], &[T]) -> T,
) {
    let row_bytes = d * core::mem::size_of::<T>();
    let y_rows = (Y_BLOCK_BYTES / row_bytes).max(1);
    let x_rows = (X_BLOCK_BYTES / row_bytes).max(1);
    for (xs, os) in x.chunks(x_rows * d).zip(out.chunks_mut(x_rows * m)) {
        let mut j0 = 0;
        while j0 < m {
            let j1 = (j0 + y_rows).min(m);
            let yb = &y[j0 * d..j1 * d];
            for (xi, orow) in xs.chunks_exact(d).zip(os.chunks_exact_mut(m)) {
                for (o, yj) in orow[j0..j1].iter_mut().zip(yb.chunks_exact(d)) {
                    *o = k(xi, yj);
                }
            }
            j0 = j1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CS231n's nearest-neighbour example: a 4x4 test image and a training image,
    /// whose L1 distance is 456.
    #[test]
    fn l1_fixture_is_456() {
        let test = [
            56.0f32, 32.0, 10.0, 18.0, 90.0, 23.0, 128.0, 133.0, 24.0, 26.0, 178.0, 200.0, 2.0,
            0.0, 255.0, 220.0,
        ];
        let train = [
            10.0f32, 20.0, 24.0, 17.0, 8.0, 10.0, 89.0, 100.0, 12.0, 16.0, 178.0, 170.0, 4.0, 32.0,
            233.0, 112.0,
        ];
        assert_eq!(l1(&test, &train).unwrap(), 456.0);
        let mut both = [0.0f32; 32];
        both[..16].copy_from_slice(&train);
        both[16..].copy_from_slice(&test);
        let mut out = [0.0f32; 2];
        pairwise(Metric::L1, &test, 1, &both, 2, 16, &mut out).unwrap();
        assert_eq!(out, [456.0, 0.0]);
    }

    #[test]
    fn errors_name_the_op() {
        assert_eq!(
            l1(&[1.0f32; 3], &[1.0; 4]).unwrap_err().to_string(),
            "l1: b has 4 elements, expected 3"
        );
        assert_eq!(
            l2(&[1.0f32; 3], &[1.0; 2]).unwrap_err().to_string(),
            "l2: b has 2 elements, expected 3"
        );
        assert_eq!(
            sq_l2(&[1.0f32; 1], &[1.0; 2]).unwrap_err().to_string(),
            "sq_l2: b has 2 elements, expected 1"
        );
        let mut out = [0.0f32; 6];
        assert_eq!(
            pairwise(Metric::L1, &[0.0f32; 5], 2, &[0.0; 6], 3, 2, &mut out)
                .unwrap_err()
                .to_string(),
            "pairwise: x has 5 elements, expected 4"
        );
        assert_eq!(
            pairwise(Metric::L2, &[0.0f32; 4], 2, &[0.0; 7], 3, 2, &mut out)
                .unwrap_err()
                .to_string(),
            "pairwise: y has 7 elements, expected 6"
        );
        assert_eq!(
            pairwise(
                Metric::SqL2,
                &[0.0f32; 4],
                2,
                &[0.0; 6],
                3,
                2,
                &mut out[..5]
            )
            .unwrap_err()
            .to_string(),
            "pairwise: output has 5 elements, expected 6"
        );
    }

    #[test]
    fn zero_dimension_gives_zero_distances() {
        let mut out = [1.0f64; 6];
        pairwise(Metric::L2, &[], 2, &[], 3, 0, &mut out).unwrap();
        assert_eq!(out, [0.0; 6]);
    }
}
