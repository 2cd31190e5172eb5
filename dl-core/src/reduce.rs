//! Reductions: along one axis ([`reduce_axis`], [`argmax_axis`], [`argmin_axis`]),
//! over everything ([`sum_all`], [`max_all`], ...), and [`sum_to_shape`], the adjoint
//! of broadcasting that autograd uses to reduce gradients.
//!
//! A tensor reduced along `axis` is viewed as `[outer, n, inner]`: for `inner > 1` each
//! of the `n` rows of length `inner` is folded into the output row with a contiguous,
//! vectorizable loop; for `inner == 1` each run of `n` contiguous elements is reduced
//! with independent accumulators and pairwise blocks (accurate and vectorizable).
//!
//! ```
//! use dl_core::reduce::{reduce_axis, Reduce};
//! use dl_core::Shape;
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
//! let mut out = [0.0f32; 3];
//! let s = reduce_axis(Reduce::Sum, &x, &Shape::from([2, 3]), 0, &mut out).unwrap();
//! assert_eq!((s.dims(), out), (&[3][..], [5.0, 7.0, 9.0]));
//! let mut row_max = [0.0f32; 2];
//! reduce_axis(Reduce::Max, &x, &Shape::from([2, 3]), 1, &mut row_max).unwrap();
//! assert_eq!(row_max, [3.0, 6.0]);
//! ```

use crate::elementwise::{check_len, for_each_row, own_strides, tree_sum, LANES};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::Shape;

/// A reduction along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum (0 over an empty axis).
    Sum,
    /// Arithmetic mean (NaN over an empty axis, as PyTorch).
    Mean,
    /// Maximum, NaN-propagating; an empty axis is an error.
    Max,
    /// Minimum, NaN-propagating; an empty axis is an error.
    Min,
    /// Variance `sum (x - mean)^2 / (n - ddof)` (two-pass); `ddof = 0` is the
    /// population variance, `ddof = 1` the unbiased one (PyTorch's default). With
    /// `n <= ddof` the result is NaN or infinite, as in PyTorch.
    Var {
        /// Delta degrees of freedom subtracted from `n` in the divisor.
        ddof: usize,
    },
}

impl Reduce {
    /// The op's name as error messages show it, e.g. `"sum"`.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Mean => "mean",
            Reduce::Max => "max",
            Reduce::Min => "min",
            Reduce::Var { .. } => "var",
        }
    }
}

/// `[outer, n, inner]` view of a shape reduced along `axis`.
fn split_at_axis(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let dims = shape.dims();
    let outer = dims[..axis].iter().product();
    let inner = dims[axis + 1..].iter().product();
    (outer, dims[axis], inner)
}

/// Checks the buffers of an axis reduction and returns the output shape and the
/// `[outer, n, inner]` view.
fn check_axis_reduction(
    op: &'static str,
    x_len: usize,
    shape: &Shape,
    axis: usize,
    out_len: usize,
) -> Result<(Shape, (usize, usize, usize))> {
    let out_shape = shape.remove_axis(axis, op)?;
    check_len(op, "input", shape.numel(), x_len)?;
    check_len(op, "output", out_shape.numel(), out_len)?;
    Ok((out_shape, split_at_axis(shape, axis)))
}

/// An error for max/min/argmax over an axis of size 0 (there is no answer).
fn empty_axis(op: &'static str) -> Error {
    Error::InvalidParameter {
        op,
        name: "size of the reduced axis",
        value: 0.0,
        valid: ">= 1",
    }
}

/// Reduces `x` (of `shape`) along `axis` into `out`, whose shape is `shape` without
/// `axis` (returned). Errors if `axis` is out of range, a buffer's length disagrees
/// with its shape, or (for max/min) the axis is empty.
pub fn reduce_axis<T: Scalar>(
    op: Reduce,
    x: &[T],
    shape: &Shape,
    axis: usize,
    out: &mut [T],
) -> Result<Shape> {
    let name = op.name();
    let (out_shape, (outer, n, inner)) =
        check_axis_reduction(name, x.len(), shape, axis, out.len())?;
    if out.is_empty() {
        return Ok(out_shape);
    }
    match op {
        Reduce::Sum => sum_axis(x, outer, n, inner, out),
        Reduce::Mean => {
            sum_axis(x, outer, n, inner, out);
            // 0 / 0 gives NaN for an empty axis, as PyTorch.
            let count = T::from_usize_lossy(n);
            for v in out.iter_mut() {
                *v = *v / count;
            }
        }
        Reduce::Max => {
            if n == 0 {
                return Err(empty_axis(name));
            }
            fold_axis(x, outer, n, inner, out, max_nan);
        }
        Reduce::Min => {
            if n == 0 {
                return Err(empty_axis(name));
            }
            fold_axis(x, outer, n, inner, out, min_nan);
        }
        Reduce::Var { ddof } => var_axis(x, outer, n, inner, ddof, out),
    }
    Ok(out_shape)
}

#[inline(always)]
fn max_nan<T: Scalar>(m: T, v: T) -> T {
    // Once `m` is NaN no comparison is true, so it stays NaN.
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

#[inline(always)]
fn min_nan<T: Scalar>(m: T, v: T) -> T {
    if v < m || v.is_nan() {
        v
    } else {
        m
    }
}

fn sum_axis<T: Scalar>(x: &[T], outer: usize, n: usize, inner: usize, out: &mut [T]) {
    if inner == 1 {
        for (o, v) in out.iter_mut().enumerate() {
            *v = sum_slice(&x[o * n..(o + 1) * n]);
        }
        return;
    }
    for (o, dst) in out.chunks_exact_mut(inner).enumerate().take(outer) {
        dst.fill(T::ZERO);
        for row in x[o * n * inner..(o + 1) * n * inner].chunks_exact(inner) {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = *d + v;
            }
        }
    }
}

/// Folds `f` over the axis; `n >= 1`.
fn fold_axis<T: Scalar>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    out: &mut [T],
    f: impl Fn(T, T) -> T + Copy,
) {
    if inner == 1 {
        for (o, v) in out.iter_mut().enumerate() {
            *v = fold_slice(&x[o * n..(o + 1) * n], f);
        }
        return;
    }
    for (o, dst) in out.chunks_exact_mut(inner).enumerate().take(outer) {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        dst.copy_from_slice(&block[..inner]);
        for row in block[inner..].chunks_exact(inner) {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = f(*d, v);
            }
        }
    }
}

/// Folds `f` (an associative, commutative max or min) over a non-empty slice with
/// [`LANES`] independent lanes, so the loop vectorizes.
fn fold_slice<T: Scalar>(x: &[T], f: impl Fn(T, T) -> T + Copy) -> T {
    let mut acc = [x[0]; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = f(acc[l], c[l]);
        }
    }
    let lanes = acc.iter().fold(x[0], |m, &v| f(m, v));
    rest.iter().fold(lanes, |m, &v| f(m, v))
}

/// Columns of a `[n, inner]` block whose variance is computed together, with the
/// running means on the stack (no allocation).
const VAR_CHUNK: usize = 64;

fn var_axis<T: Scalar>(x: &[T], outer: usize, n: usize, inner: usize, ddof: usize, out: &mut [T]) {
    let count = T::from_usize_lossy(n);
    // max(0, n - ddof), as PyTorch: n <= ddof gives 0/0 = NaN or m2/0 = inf.
    let divisor = T::from_usize_lossy(n.saturating_sub(ddof));
    for o in 0..outer {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        let dst = &mut out[o * inner..(o + 1) * inner];
        let mut c0 = 0;
        while c0 < inner {
            let w = VAR_CHUNK.min(inner - c0);
            // Pass 1: means of the columns c0..c0+w.
            let mut mean = [T::ZERO; VAR_CHUNK];
            for k in 0..n {
                let row = &block[k * inner + c0..k * inner + c0 + w];
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m = *m + v;
                }
            }
            for m in mean.iter_mut().take(w) {
                *m = *m / count;
            }
            // Pass 2: sums of squared deviations (accurate where one pass cancels).
            let mut m2 = [T::ZERO; VAR_CHUNK];
            for k in 0..n {
                let row = &block[k * inner + c0..k * inner + c0 + w];
                for ((s, &m), &v) in m2.iter_mut().zip(&mean).zip(row) {
                    let d = v - m;
                    *s = *s + d * d;
                }
            }
            for (d, &s) in dst[c0..c0 + w].iter_mut().zip(&m2) {
                *d = s / divisor;
            }
            c0 += w;
        }
    }
}

/// Sum of a slice: blocks of 256 summed with [`LANES`] accumulators, combined
/// pairwise (error grows like `log n`, as NumPy's pairwise sum).
pub(crate) fn sum_slice<T: Scalar>(x: &[T]) -> T {
    if x.len() <= SUM_BLOCK {
        let mut acc = [T::ZERO; LANES];
        let chunks = x.chunks_exact(LANES);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..LANES {
                acc[l] = acc[l] + c[l];
            }
        }
        let mut tail = T::ZERO;
        for &v in rest {
            tail = tail + v;
        }
        tree_sum(&acc) + tail
    } else {
        let mid = sum_split(x.len());
        sum_slice(&x[..mid]) + sum_slice(&x[mid..])
    }
}

/// Leaf size of [`sum_slice`]'s pairwise tree.
const SUM_BLOCK: usize = 256;

/// Where [`sum_slice`] splits a slice longer than [`SUM_BLOCK`]: at a multiple of the
/// block, so the leaves are full blocks.
fn sum_split(len: usize) -> usize {
    len.div_ceil(2 * SUM_BLOCK) * SUM_BLOCK
}

/// The top `depth` levels of [`sum_slice`]'s tree over `len` elements from `off`:
/// appends the subtrees below them as `(start, end, sum)` with the sum still 0, left
/// to right.
fn sum_subtrees<T: Scalar>(
    len: usize,
    off: usize,
    depth: u32,
    out: &mut [(usize, usize, T)],
    n: &mut usize,
) {
    if depth == 0 || len <= SUM_BLOCK {
        out[*n] = (off, off + len, T::ZERO);
        *n += 1;
    } else {
        let mid = sum_split(len);
        sum_subtrees(mid, off, depth - 1, out, n);
        sum_subtrees(len - mid, off + mid, depth - 1, out, n);
    }
}

/// Adds the subtree sums of [`sum_subtrees`] back up the same top levels.
fn sum_combine<T: Scalar>(
    len: usize,
    depth: u32,
    parts: &[(usize, usize, T)],
    next: &mut usize,
) -> T {
    if depth == 0 || len <= SUM_BLOCK {
        *next += 1;
        parts[*next - 1].2
    } else {
        let mid = sum_split(len);
        let left = sum_combine(mid, depth - 1, parts, next);
        left + sum_combine(len - mid, depth - 1, parts, next)
    }
}

/// Sum of all elements (0 for an empty slice), pairwise (see `sum_slice`). Large
/// slices sum the subtrees under the top levels of the tree on the gemm's threads
/// and add them up the same tree: the same additions in the same order, so the same
/// bits on any number of threads.
pub fn sum_all<T: Scalar>(x: &[T]) -> T {
    let threads = crate::gemm::num_threads();
    if threads < 2 || x.len() < 2 * crate::par::MIN_ELEMS {
        return sum_slice(x);
    }
    // 2^depth subtrees, at least one per thread (at most 16).
    let depth = threads.next_power_of_two().trailing_zeros().min(4);
    let mut parts = [(0usize, 0usize, T::ZERO); 16];
    let mut n = 0;
    sum_subtrees(x.len(), 0, depth, &mut parts, &mut n);
    crate::gemm::for_each_mut(&mut parts[..n], &|_, (a, b, s)| *s = sum_slice(&x[*a..*b]));
    sum_combine(x.len(), depth, &parts[..n], &mut 0)
}

/// Mean of all elements (NaN for an empty slice, as PyTorch).
pub fn mean_all<T: Scalar>(x: &[T]) -> T {
    sum_all(x) / T::from_usize_lossy(x.len())
}

/// Largest element, NaN if any is NaN; errors on an empty slice.
pub fn max_all<T: Scalar>(x: &[T]) -> Result<T> {
    if x.is_empty() {
        return Err(empty_axis("max_all"));
    }
    Ok(fold_slice(x, max_nan))
}

/// Smallest element, NaN if any is NaN; errors on an empty slice.
pub fn min_all<T: Scalar>(x: &[T]) -> Result<T> {
    if x.is_empty() {
        return Err(empty_axis("min_all"));
    }
    Ok(fold_slice(x, min_nan))
}

/// Index along `axis` of the largest element, for every position of the other axes
/// (`out` has `shape` without `axis`, returned). Ties give the first index and NaN
/// counts as the largest, as NumPy and PyTorch do. Errors on an empty axis.
pub fn argmax_axis<T: Scalar>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    out: &mut [usize],
) -> Result<Shape> {
    arg_extreme("argmax", x, shape, axis, out, |v, best| {
        v > best || (v.is_nan() && !best.is_nan())
    })
}

/// Index along `axis` of the smallest element (first on ties, NaN counts as the
/// smallest), like [`argmax_axis`].
pub fn argmin_axis<T: Scalar>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    out: &mut [usize],
) -> Result<Shape> {
    arg_extreme("argmin", x, shape, axis, out, |v, best| {
        v < best || (v.is_nan() && !best.is_nan())
    })
}

/// Shared body of argmax/argmin: `better(v, best)` is true when `v` should replace
/// the current best (strictly, so the first index wins ties).
fn arg_extreme<T: Scalar>(
    op: &'static str,
    x: &[T],
    shape: &Shape,
    axis: usize,
    out: &mut [usize],
    better: impl Fn(T, T) -> bool,
) -> Result<Shape> {
    let (out_shape, (outer, n, inner)) = check_axis_reduction(op, x.len(), shape, axis, out.len())?;
    if out.is_empty() {
        return Ok(out_shape);
    }
    if n == 0 {
        return Err(empty_axis(op));
    }
    for (o, dst) in out.chunks_exact_mut(inner).enumerate().take(outer) {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        dst.fill(0);
        for k in 1..n {
            let row = &block[k * inner..(k + 1) * inner];
            for (j, (d, &v)) in dst.iter_mut().zip(row).enumerate() {
                if better(v, block[*d * inner + j]) {
                    *d = k;
                }
            }
        }
    }
    Ok(out_shape)
}

/// Sums `x` (of `x_shape`) down to `target`, the adjoint of broadcasting `target` to
/// `x_shape`: every axis that broadcasting expanded (a missing leading axis, or a 1
/// in `target`) is summed. `target` must broadcast to exactly `x_shape`. OVERWRITES
/// `out` (which holds `target`).
///
/// ```
/// use dl_core::reduce::sum_to_shape;
/// use dl_core::Shape;
/// // The gradient of a bias [3] added to a [2, 3] batch is the column sum.
/// let g = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut db = [0.0f32; 3];
/// sum_to_shape(&g, &Shape::from([2, 3]), &Shape::from([3]), &mut db).unwrap();
/// assert_eq!(db, [5.0, 7.0, 9.0]);
/// ```
pub fn sum_to_shape<T: Scalar>(
    x: &[T],
    x_shape: &Shape,
    target: &Shape,
    out: &mut [T],
) -> Result<()> {
    const OP: &str = "sum_to_shape";
    let not_a_broadcast = || Error::ShapeMismatch {
        op: OP,
        lhs: *x_shape,
        rhs: *target,
        why: "the target must broadcast to the input's shape",
    };
    if target.rank() > x_shape.rank()
        || target
            .broadcast(x_shape, OP)
            .map_err(|_| not_a_broadcast())?
            != *x_shape
    {
        return Err(not_a_broadcast());
    }
    check_len(OP, "input", x_shape.numel(), x.len())?;
    check_len(OP, "output", target.numel(), out.len())?;
    if out.len() == x.len() {
        out.copy_from_slice(x);
        return Ok(());
    }
    if out.len() == 1 {
        out[0] = sum_slice(x);
        return Ok(());
    }
    out.fill(T::ZERO);
    let strides = [own_strides(x_shape), target.broadcast_strides(x_shape)];
    for_each_row(x_shape.dims(), &strides, |off, len, inner| {
        let row = &x[off[0]..off[0] + len];
        if inner[1] == 0 {
            out[off[1]] = out[off[1]] + sum_slice(row);
        } else {
            for (d, &v) in out[off[1]..off[1] + len].iter_mut().zip(row) {
                *d = *d + v;
            }
        }
    });
    Ok(())
}

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;
    use alloc::vec;
    use alloc::vec::Vec;

    impl<T: Scalar> Tensor<T> {
        /// Reduces along `axis` with `op`; the result drops that axis.
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let x = Tensor::from_rows([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        /// assert_eq!(x.sum(0).unwrap().data(), &[5.0, 7.0, 9.0]);
        /// assert_eq!(x.mean(1).unwrap().data(), &[2.0, 5.0]);
        /// assert_eq!(x.var(1, 1).unwrap().data(), &[1.0, 1.0]);
        /// assert_eq!(x.argmax(1).unwrap(), vec![2, 2]);
        /// assert!(x.sum(2).is_err());
        /// ```
        pub fn reduce(&self, op: Reduce, axis: usize) -> Result<Tensor<T>> {
            let out_shape = self.shape().remove_axis(axis, op.name())?;
            let mut data = vec![T::ZERO; out_shape.numel()];
            reduce_axis(op, self.data(), self.shape(), axis, &mut data)?;
            Tensor::from_shape_vec(out_shape, data)
        }

        /// Sum along `axis`.
        pub fn sum(&self, axis: usize) -> Result<Tensor<T>> {
            self.reduce(Reduce::Sum, axis)
        }

        /// Mean along `axis`.
        pub fn mean(&self, axis: usize) -> Result<Tensor<T>> {
            self.reduce(Reduce::Mean, axis)
        }

        /// Maximum along `axis`.
        pub fn max(&self, axis: usize) -> Result<Tensor<T>> {
            self.reduce(Reduce::Max, axis)
        }

        /// Minimum along `axis`.
        pub fn min(&self, axis: usize) -> Result<Tensor<T>> {
            self.reduce(Reduce::Min, axis)
        }

        /// Variance along `axis` with `ddof` delta degrees of freedom.
        pub fn var(&self, axis: usize, ddof: usize) -> Result<Tensor<T>> {
            self.reduce(Reduce::Var { ddof }, axis)
        }

        /// Indices of the maxima along `axis` (first on ties), row-major over the
        /// remaining axes.
        pub fn argmax(&self, axis: usize) -> Result<Vec<usize>> {
            let out_shape = self.shape().remove_axis(axis, "argmax")?;
            let mut idx = vec![0; out_shape.numel()];
            argmax_axis(self.data(), self.shape(), axis, &mut idx)?;
            Ok(idx)
        }

        /// Indices of the minima along `axis` (first on ties).
        pub fn argmin(&self, axis: usize) -> Result<Vec<usize>> {
            let out_shape = self.shape().remove_axis(axis, "argmin")?;
            let mut idx = vec![0; out_shape.numel()];
            argmin_axis(self.data(), self.shape(), axis, &mut idx)?;
            Ok(idx)
        }

        /// Sum of all elements.
        pub fn sum_all(&self) -> T {
            sum_all(self.data())
        }

        /// Mean of all elements.
        pub fn mean_all(&self) -> T {
            mean_all(self.data())
        }

        /// Largest element; errors on an empty tensor.
        pub fn max_all(&self) -> Result<T> {
            max_all(self.data())
        }

        /// Smallest element; errors on an empty tensor.
        pub fn min_all(&self) -> Result<T> {
            min_all(self.data())
        }

        /// Sums down to `target` (the adjoint of broadcasting to this shape).
        pub fn sum_to_shape(&self, target: &Shape) -> Result<Tensor<T>> {
            let mut data = vec![T::ZERO; target.numel()];
            sum_to_shape(self.data(), self.shape(), target, &mut data)?;
            Tensor::from_shape_vec(*target, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_and_mean_fixture() {
        // Columns of [[1, 2], [3, 6], [5, 10]]: means 3 and 6; sums of squared
        // deviations 8 and 32; ddof 1 gives 4 and 16.
        let x = [1.0f64, 2.0, 3.0, 6.0, 5.0, 10.0];
        let s = Shape::from([3, 2]);
        let mut out = [0.0; 2];
        reduce_axis(Reduce::Var { ddof: 1 }, &x, &s, 0, &mut out).unwrap();
        assert_eq!(out, [4.0, 16.0]);
        reduce_axis(Reduce::Var { ddof: 0 }, &x, &s, 0, &mut out).unwrap();
        assert_eq!(out, [8.0 / 3.0, 32.0 / 3.0]);
        reduce_axis(Reduce::Mean, &x, &s, 0, &mut out).unwrap();
        assert_eq!(out, [3.0, 6.0]);
        // A single element with ddof 1 is NaN, as torch.var.
        let mut one = [0.0];
        reduce_axis(
            Reduce::Var { ddof: 1 },
            &[2.0f64],
            &Shape::from([1]),
            0,
            &mut one,
        )
        .unwrap();
        assert!(one[0].is_nan());
    }

    #[test]
    fn variance_is_accurate_with_a_large_offset() {
        // Values 1e8 + {0, 1, 2, 3}: variance (ddof 0) 1.25; one-pass formulas lose it.
        let x = [1e8f64, 1e8 + 1.0, 1e8 + 2.0, 1e8 + 3.0];
        let mut out = [0.0];
        reduce_axis(Reduce::Var { ddof: 0 }, &x, &Shape::from([4]), 0, &mut out).unwrap();
        assert_eq!(out[0], 1.25);
    }

    #[test]
    fn max_min_argmax_handle_ties_and_nan() {
        let x = [1.0f32, 3.0, 3.0, 2.0];
        let mut i = [9usize];
        argmax_axis(&x, &Shape::from([4]), 0, &mut i).unwrap();
        assert_eq!(i, [1]);
        argmin_axis(&x, &Shape::from([4]), 0, &mut i).unwrap();
        assert_eq!(i, [0]);
        let y = [1.0f32, f32::NAN, 5.0];
        argmax_axis(&y, &Shape::from([3]), 0, &mut i).unwrap();
        assert_eq!(i, [1]);
        assert!(max_all(&y).unwrap().is_nan());
        let mut m = [0.0f32];
        reduce_axis(Reduce::Max, &y, &Shape::from([3]), 0, &mut m).unwrap();
        assert!(m[0].is_nan());
        assert_eq!(max_all(&x).unwrap(), 3.0);
        assert_eq!(min_all(&x).unwrap(), 1.0);
    }

    /// The threaded sum adds the same subtrees in the same order as one thread.
    #[test]
    fn threaded_sum_is_bit_identical_to_the_pairwise_tree() {
        let mut rng = crate::rng::Rng::seed_from_u64(5);
        for len in [65536usize, 65537, 100_000, 1 << 20, 3 * 65536 + 17] {
            let x: alloc::vec::Vec<f32> = (0..len).map(|_| rng.uniform(-1.0f32, 1.0)).collect();
            assert_eq!(sum_all(&x).to_bits(), sum_slice(&x).to_bits(), "len {len}");
            for depth in 0..5 {
                let (mut parts, mut n) = ([(0usize, 0usize, 0.0f32); 16], 0);
                sum_subtrees(len, 0, depth, &mut parts, &mut n);
                assert_eq!(n, 1 << depth);
                for p in &mut parts[..n] {
                    p.2 = sum_slice(&x[p.0..p.1]);
                }
                let s = sum_combine(len, depth, &parts[..n], &mut 0);
                assert_eq!(
                    s.to_bits(),
                    sum_slice(&x).to_bits(),
                    "len {len} depth {depth}"
                );
            }
        }
    }

    #[test]
    fn pairwise_sum_is_accurate() {
        // 65536 copies of 0.1f32 (= 0.100000001490116): the exact sum is 6553.6001;
        // a sequential f32 sum drifts by about 0.5, the pairwise one stays within a few
        // ulps (an ulp is 0.0005 here).
        let x = [0.1f32; 65536];
        let naive = x.iter().fold(0.0f32, |s, &v| s + v);
        let s = sum_all(&x[..]);
        assert!((s - 6553.6).abs() < 2e-3, "{s}");
        assert!((naive - 6553.6).abs() > 0.1, "{naive}");
        assert!(mean_all::<f32>(&[]).is_nan());
        assert_eq!(sum_all::<f32>(&[]), 0.0);
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let s = Shape::from([2, 3]);
        let x = [0.0f32; 6];
        let mut out = [0.0f32; 3];
        assert_eq!(
            reduce_axis(Reduce::Sum, &x, &s, 2, &mut out)
                .unwrap_err()
                .to_string(),
            "sum: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        assert_eq!(
            reduce_axis(Reduce::Mean, &x[..5], &s, 0, &mut out)
                .unwrap_err()
                .to_string(),
            "mean: input has 5 elements, expected 6"
        );
        assert_eq!(
            reduce_axis(Reduce::Var { ddof: 1 }, &x, &s, 1, &mut out)
                .unwrap_err()
                .to_string(),
            "var: output has 3 elements, expected 2"
        );
        assert_eq!(
            reduce_axis(
                Reduce::Max,
                &[0.0f32; 0],
                &Shape::from([2, 0]),
                1,
                &mut [0.0; 2]
            )
            .unwrap_err()
            .to_string(),
            "max: invalid size of the reduced axis = 0, valid range: >= 1"
        );
        let mut idx = [0usize; 3];
        assert_eq!(
            argmax_axis(&x, &s, 1, &mut idx).unwrap_err().to_string(),
            "argmax: output has 3 elements, expected 2"
        );
        assert_eq!(
            argmin_axis(&x, &s, 3, &mut idx).unwrap_err().to_string(),
            "argmin: axis 3 is out of range for shape [2, 3] (rank 2)"
        );
        assert_eq!(
            max_all::<f32>(&[]).unwrap_err().to_string(),
            "max_all: invalid size of the reduced axis = 0, valid range: >= 1"
        );
        assert_eq!(
            min_all::<f32>(&[]).unwrap_err().to_string(),
            "min_all: invalid size of the reduced axis = 0, valid range: >= 1"
        );
        assert_eq!(
            sum_to_shape(&x, &s, &Shape::from([2]), &mut out).unwrap_err().to_string(),
            "sum_to_shape: shapes [2, 3] and [2] are incompatible (the target must broadcast to the input's shape)"
        );
        assert_eq!(
            sum_to_shape(&x, &s, &Shape::from([1, 2, 3]), &mut [0.0; 6]).unwrap_err().to_string(),
            "sum_to_shape: shapes [2, 3] and [1, 2, 3] are incompatible (the target must broadcast to the input's shape)"
        );
        assert_eq!(
            sum_to_shape(&x, &s, &Shape::from([2, 1]), &mut out)
                .unwrap_err()
                .to_string(),
            "sum_to_shape: output has 3 elements, expected 2"
        );
    }
}
