//! Layout changes: 2-D transpose (cache-blocked), axis permutation, concatenation and
//! its adjoint (split), slicing along an axis, and row gathers (`index_select`, for
//! embeddings) with their adjoints. Each backward accumulates into its gradient.
//!
//! ```
//! use dl_core::layout::{concat, permute, transpose2d};
//! use dl_core::Shape;
//! let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
//! let mut t = [0.0f32; 6];
//! transpose2d(&x, 2, 3, &mut t).unwrap();
//! assert_eq!(t, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
//! let s = permute(&x, &Shape::from([2, 3]), &[1, 0], &mut t).unwrap();
//! assert_eq!((s.dims(), t), (&[3, 2][..], [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
//! let mut c = [0.0f32; 8];
//! let s = concat(&[(&x[..], Shape::from([2, 3])), (&[7.0, 8.0][..], Shape::from([2, 1]))], 1, &mut c).unwrap();
//! assert_eq!((s.dims(), c), (&[2, 4][..], [1.0, 2.0, 3.0, 7.0, 4.0, 5.0, 6.0, 8.0]));
//! ```

use crate::elementwise::{check_len, coalesce, for_each_row, own_strides};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::{Shape, MAX_RANK};

/// Side of the square tiles of [`transpose2d`]: a 32 x 32 tile of f64 is 8 KiB, so a
/// source tile and a destination tile fit in L1 together.
const TILE: usize = 32;

/// `out = x^T` for a row-major `rows x cols` matrix `x` (`out` is `cols x rows`),
/// in cache-sized tiles. Errors if a length is not `rows * cols`.
pub fn transpose2d<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    const OP: &str = "transpose2d";
    let n = rows.checked_mul(cols).ok_or(Error::Overflow { op: OP })?;
    check_len(OP, "input", n, x.len())?;
    check_len(OP, "output", n, out.len())?;
    transpose_tiles(x, rows, cols, out);
    Ok(())
}

/// The unchecked body of [`transpose2d`].
fn transpose_tiles<T: Scalar>(x: &[T], rows: usize, cols: usize, out: &mut [T]) {
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            // Contiguous writes, strided reads: a strided store costs more (each one
            // pulls its whole cache line in before writing).
            for c in c0..c1 {
                let dst = &mut out[c * rows + r0..c * rows + r1];
                for (d, src) in dst.iter_mut().zip(x[r0 * cols + c..].iter().step_by(cols)) {
                    *d = *src;
                }
            }
        }
    }
}

/// Reorders the axes of `x` (of `shape`): output axis `i` is input axis `axes[i]`
/// (as `torch.permute`). Returns the output shape. Errors if `axes` is not a
/// permutation of `0..rank` or a length is wrong.
pub fn permute<T: Scalar>(x: &[T], shape: &Shape, axes: &[usize], out: &mut [T]) -> Result<Shape> {
    const OP: &str = "permute";
    let rank = shape.rank();
    check_len(OP, "axes", rank, axes.len())?;
    let mut seen = [false; MAX_RANK];
    let mut dims = [0usize; MAX_RANK];
    let src = shape.strides();
    let mut strides = [0usize; MAX_RANK];
    for (i, &a) in axes.iter().enumerate() {
        shape.check_axis(a, OP)?;
        if seen[a] {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "axes (repeated axis)",
                value: a as f64,
                valid: "each axis of 0..rank exactly once",
            });
        }
        seen[a] = true;
        dims[i] = shape.dims()[a];
        strides[i] = src[a];
    }
    let out_shape = Shape::new(&dims[..rank])?;
    check_len(OP, "input", shape.numel(), x.len())?;
    check_len(OP, "output", out_shape.numel(), out.len())?;
    let all_strides = [strides, own_strides(&out_shape)];
    // After merging, a permutation that moves a contiguous axis last is a batch of
    // 2-D transposes: the last two merged output axes [k, l] read a contiguous
    // [l, k] block of the input. That gets the tiled kernel instead of a gather.
    if let Some((r, cd, cs)) = coalesce(out_shape.dims(), &all_strides) {
        let src = &cs[0];
        if r >= 2 && src[r - 1] != 1 && src[r - 2] == 1 && src[r - 1] == cd[r - 2] {
            let (k, l) = (cd[r - 2], cd[r - 1]);
            let plane = k * l;
            for_each_row(&cd[..r - 2], &cs, |off, len, inner| {
                for i in 0..len {
                    let (s0, d0) = (off[0] + i * inner[0], off[1] + i * inner[1]);
                    transpose_tiles(&x[s0..s0 + plane], l, k, &mut out[d0..d0 + plane]);
                }
            });
            return Ok(out_shape);
        }
    }
    for_each_row(out_shape.dims(), &all_strides, |off, len, inner| {
        let dst = &mut out[off[1]..off[1] + len];
        if inner[0] == 1 {
            dst.copy_from_slice(&x[off[0]..off[0] + len]);
        } else {
            for (i, o) in dst.iter_mut().enumerate() {
                *o = x[off[0] + i * inner[0]];
            }
        }
    });
    Ok(out_shape)
}

/// `(outer, inner)`: the products of the dimensions before and after `axis`.
fn outer_inner(shape: &Shape, axis: usize) -> (usize, usize) {
    let d = shape.dims();
    (d[..axis].iter().product(), d[axis + 1..].iter().product())
}

/// The shape of the concatenation of `parts` (buffer length, shape) along `axis`,
/// checking each part's length and that all other dimensions agree.
fn concat_shape<'a>(
    op: &'static str,
    axis: usize,
    parts: impl Iterator<Item = (usize, &'a Shape)>,
) -> Result<Shape> {
    let mut first: Option<Shape> = None;
    let mut total = Shape::scalar();
    for (len, s) in parts {
        s.check_len(len, op, "input")?;
        match first {
            None => {
                s.check_axis(axis, op)?;
                first = Some(*s);
                total = *s;
            }
            Some(f) => {
                let agree = f.rank() == s.rank()
                    && f.dims()
                        .iter()
                        .zip(s.dims())
                        .enumerate()
                        .all(|(i, (a, b))| i == axis || a == b);
                if !agree {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: f,
                        rhs: *s,
                        why: "all dimensions but the concatenation axis must agree",
                    });
                }
                let size = total.dims()[axis]
                    .checked_add(s.dims()[axis])
                    .ok_or(Error::Overflow { op })?;
                total = total.with_dim(axis, size, op)?;
            }
        }
    }
    if first.is_none() {
        return Err(Error::InvalidParameter {
            op,
            name: "number of inputs",
            value: 0.0,
            valid: ">= 1",
        });
    }
    Ok(total)
}

/// Concatenates `inputs` (each a buffer and its shape) along `axis` into `out`;
/// returns the output shape. All inputs have the same rank and agree on every
/// dimension but `axis`. Errors otherwise, or if there are no inputs or a length is
/// wrong.
pub fn concat<T: Scalar>(inputs: &[(&[T], Shape)], axis: usize, out: &mut [T]) -> Result<Shape> {
    const OP: &str = "concat";
    let out_shape = concat_shape(OP, axis, inputs.iter().map(|(d, s)| (d.len(), s)))?;
    check_len(OP, "output", out_shape.numel(), out.len())?;
    let (outer, inner) = outer_inner(&out_shape, axis);
    let mut pos = 0;
    for o in 0..outer {
        for (data, s) in inputs {
            let chunk = s.dims()[axis] * inner;
            out[pos..pos + chunk].copy_from_slice(&data[o * chunk..(o + 1) * chunk]);
            pos += chunk;
        }
    }
    Ok(out_shape)
}

/// Splits `x` (of `shape`) along `axis` into `outs` (each a buffer and its shape),
/// OVERWRITING them; the inverse of [`concat()`]. The parts' shapes must concatenate
/// to `shape`.
pub fn split<T: Scalar>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    outs: &mut [(&mut [T], Shape)],
) -> Result<()> {
    split_into("split", x, shape, axis, outs, false)
}

/// Backward of [`concat()`]: each input's gradient ACCUMULATES its part of `dy` (of
/// `dy_shape`, the concatenated shape). `grads` hold the inputs' shapes.
pub fn concat_backward<T: Scalar>(
    dy: &[T],
    dy_shape: &Shape,
    axis: usize,
    grads: &mut [(&mut [T], Shape)],
) -> Result<()> {
    split_into("concat_backward", dy, dy_shape, axis, grads, true)
}

fn split_into<T: Scalar>(
    op: &'static str,
    x: &[T],
    shape: &Shape,
    axis: usize,
    outs: &mut [(&mut [T], Shape)],
    accumulate: bool,
) -> Result<()> {
    shape.check_axis(axis, op)?;
    let parts = concat_shape(op, axis, outs.iter().map(|(d, s)| (d.len(), s)))?;
    if parts != *shape {
        return Err(Error::ShapeMismatch {
            op,
            lhs: *shape,
            rhs: parts,
            why: "the parts must concatenate to the whole",
        });
    }
    check_len(op, "input", shape.numel(), x.len())?;
    let (outer, inner) = outer_inner(shape, axis);
    let mut pos = 0;
    for o in 0..outer {
        for (data, s) in outs.iter_mut() {
            let chunk = s.dims()[axis] * inner;
            let src = &x[pos..pos + chunk];
            let dst = &mut data[o * chunk..(o + 1) * chunk];
            if accumulate {
                add_into(dst, src);
            } else {
                dst.copy_from_slice(src);
            }
            pos += chunk;
        }
    }
    Ok(())
}

#[inline]
fn add_into<T: Scalar>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = *d + s;
    }
}

/// Checks `start <= end <= shape[axis]`; returns the `[outer, inner]` view and the
/// sliced shape.
fn check_slice(
    op: &'static str,
    shape: &Shape,
    axis: usize,
    start: usize,
    end: usize,
) -> Result<(Shape, usize, usize, usize)> {
    let dim = shape.dim(axis, op)?;
    if end > dim {
        return Err(Error::IndexOutOfRange {
            op,
            index: end,
            bound: dim + 1,
        });
    }
    if start > end {
        return Err(Error::InvalidParameter {
            op,
            name: "start",
            value: start as f64,
            valid: "<= end",
        });
    }
    let out_shape = shape.with_dim(axis, end - start, op)?;
    let (outer, inner) = outer_inner(shape, axis);
    Ok((out_shape, outer, dim, inner))
}

/// `out = x[.., start..end, ..]` along `axis`; returns the output shape. Errors if
/// `axis` is out of range, `end > shape[axis]` (reported as an index past
/// `shape[axis] + 1`, since `end` is exclusive), `start > end` or a length is wrong.
pub fn slice_axis<T: Scalar>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    start: usize,
    end: usize,
    out: &mut [T],
) -> Result<Shape> {
    const OP: &str = "slice_axis";
    let (out_shape, outer, dim, inner) = check_slice(OP, shape, axis, start, end)?;
    check_len(OP, "input", shape.numel(), x.len())?;
    check_len(OP, "output", out_shape.numel(), out.len())?;
    let chunk = (end - start) * inner;
    for o in 0..outer {
        let src = (o * dim + start) * inner;
        out[o * chunk..(o + 1) * chunk].copy_from_slice(&x[src..src + chunk]);
    }
    Ok(out_shape)
}

/// Backward of [`slice_axis`]: `dx[.., start..end, ..] += dy` (accumulates), where
/// `dx` has the input's shape `x_shape`.
pub fn slice_axis_backward<T: Scalar>(
    dy: &[T],
    x_shape: &Shape,
    axis: usize,
    start: usize,
    end: usize,
    dx: &mut [T],
) -> Result<()> {
    const OP: &str = "slice_axis_backward";
    let (dy_shape, outer, dim, inner) = check_slice(OP, x_shape, axis, start, end)?;
    check_len(OP, "dy", dy_shape.numel(), dy.len())?;
    check_len(OP, "dx", x_shape.numel(), dx.len())?;
    let chunk = (end - start) * inner;
    for o in 0..outer {
        let dst = (o * dim + start) * inner;
        add_into(&mut dx[dst..dst + chunk], &dy[o * chunk..(o + 1) * chunk]);
    }
    Ok(())
}

/// `(rows, row_len)` of a shape seen as rows along axis 0.
fn rows_of(op: &'static str, shape: &Shape) -> Result<(usize, usize)> {
    let rows = shape.dim(0, op)?;
    Ok((rows, shape.dims()[1..].iter().product()))
}

fn check_indices(op: &'static str, indices: &[usize], rows: usize) -> Result<()> {
    match indices.iter().find(|&&i| i >= rows) {
        Some(&bad) => Err(Error::IndexOutOfRange {
            op,
            index: bad,
            bound: rows,
        }),
        None => Ok(()),
    }
}

/// Gathers rows along axis 0: `out[k, ..] = x[indices[k], ..]` (an embedding lookup).
/// Returns the output shape `[indices.len(), shape[1..]]`. Errors if `x` has rank 0,
/// an index is `>= shape[0]` or a length is wrong.
pub fn index_select<T: Scalar>(
    x: &[T],
    shape: &Shape,
    indices: &[usize],
    out: &mut [T],
) -> Result<Shape> {
    const OP: &str = "index_select";
    let (rows, row) = rows_of(OP, shape)?;
    let out_shape = shape.with_dim(0, indices.len(), OP)?;
    check_len(OP, "input", shape.numel(), x.len())?;
    check_len(OP, "output", out_shape.numel(), out.len())?;
    check_indices(OP, indices, rows)?;
    if row == 0 {
        return Ok(out_shape);
    }
    for (dst, &i) in out.chunks_exact_mut(row).zip(indices) {
        dst.copy_from_slice(&x[i * row..(i + 1) * row]);
    }
    Ok(out_shape)
}

/// The adjoint of [`index_select`]: `dst[indices[k], ..] += src[k, ..]` (accumulates;
/// repeated indices add up). `dst` has `dst_shape`; `src` has
/// `[indices.len(), dst_shape[1..]]`.
pub fn index_add<T: Scalar>(
    dst: &mut [T],
    dst_shape: &Shape,
    indices: &[usize],
    src: &[T],
) -> Result<()> {
    const OP: &str = "index_add";
    let (rows, row) = rows_of(OP, dst_shape)?;
    let src_shape = dst_shape.with_dim(0, indices.len(), OP)?;
    check_len(OP, "destination", dst_shape.numel(), dst.len())?;
    check_len(OP, "source", src_shape.numel(), src.len())?;
    check_indices(OP, indices, rows)?;
    if row == 0 {
        return Ok(());
    }
    for (s, &i) in src.chunks_exact(row).zip(indices) {
        add_into(&mut dst[i * row..(i + 1) * row], s);
    }
    Ok(())
}

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;
    use alloc::vec;
    use alloc::vec::Vec;

    impl<T: Scalar> Tensor<T> {
        /// The transpose of a 2-D tensor.
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let t = Tensor::from_rows([[1.0f32, 2.0, 3.0]]).transpose().unwrap();
        /// assert_eq!(t.dims(), &[3, 1]);
        /// ```
        pub fn transpose(&self) -> Result<Tensor<T>> {
            self.shape().check_rank(2, "transpose", "2")?;
            let (r, c) = (self.dims()[0], self.dims()[1]);
            let mut data = vec![T::ZERO; self.numel()];
            transpose2d(self.data(), r, c, &mut data)?;
            Tensor::from_vec(data, &[c, r])
        }

        /// Reorders the axes: output axis `i` is input axis `axes[i]`.
        pub fn permute(&self, axes: &[usize]) -> Result<Tensor<T>> {
            let mut data = vec![T::ZERO; self.numel()];
            let shape = permute(self.data(), self.shape(), axes, &mut data)?;
            Tensor::from_shape_vec(shape, data)
        }

        /// Concatenates tensors along `axis`.
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let a = Tensor::from_rows([[1.0f32, 2.0]]);
        /// let b = Tensor::from_rows([[3.0f32, 4.0]]);
        /// let c = Tensor::concat(&[&a, &b], 0).unwrap();
        /// assert_eq!((c.dims(), c.data()), (&[2, 2][..], &[1.0, 2.0, 3.0, 4.0][..]));
        /// ```
        pub fn concat(tensors: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
            let inputs: Vec<(&[T], Shape)> =
                tensors.iter().map(|t| (t.data(), *t.shape())).collect();
            let shape = concat_shape("concat", axis, inputs.iter().map(|(d, s)| (d.len(), s)))?;
            let mut data = vec![T::ZERO; shape.numel()];
            concat(&inputs, axis, &mut data)?;
            Tensor::from_shape_vec(shape, data)
        }

        /// Splits along `axis` into parts of the given sizes (which must sum to the
        /// axis' size).
        pub fn split(&self, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor<T>>> {
            let mut parts = Vec::with_capacity(sizes.len());
            for &s in sizes {
                let shape = self.shape().with_dim(axis, s, "split")?;
                parts.push((vec![T::ZERO; shape.numel()], shape));
            }
            {
                let mut views: Vec<(&mut [T], Shape)> = parts
                    .iter_mut()
                    .map(|(d, s)| (d.as_mut_slice(), *s))
                    .collect();
                split(self.data(), self.shape(), axis, &mut views)?;
            }
            parts
                .into_iter()
                .map(|(d, s)| Tensor::from_shape_vec(s, d))
                .collect()
        }

        /// `self[.., start..end, ..]` along `axis`.
        pub fn slice(&self, axis: usize, start: usize, end: usize) -> Result<Tensor<T>> {
            let (shape, ..) = check_slice("slice_axis", self.shape(), axis, start, end)?;
            let mut data = vec![T::ZERO; shape.numel()];
            slice_axis(self.data(), self.shape(), axis, start, end, &mut data)?;
            Tensor::from_shape_vec(shape, data)
        }

        /// Rows `indices` along axis 0 (an embedding lookup).
        pub fn index_select(&self, indices: &[usize]) -> Result<Tensor<T>> {
            let shape = self.shape().with_dim(0, indices.len(), "index_select")?;
            let mut data = vec![T::ZERO; shape.numel()];
            index_select(self.data(), self.shape(), indices, &mut data)?;
            Tensor::from_shape_vec(shape, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_their_backward() {
        // [3, 2], rows 1..3
        let x = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let s = Shape::from([3, 2]);
        let mut out = [0.0; 4];
        let o = slice_axis(&x, &s, 0, 1, 3, &mut out).unwrap();
        assert_eq!((o, out), (Shape::from([2, 2]), [3.0, 4.0, 5.0, 6.0]));
        let mut col = [0.0; 3];
        slice_axis(&x, &s, 1, 1, 2, &mut col).unwrap();
        assert_eq!(col, [2.0, 4.0, 6.0]);
        let mut dx = [1.0; 6];
        slice_axis_backward(&[10.0, 20.0, 30.0], &s, 1, 1, 2, &mut dx).unwrap();
        assert_eq!(dx, [1.0, 11.0, 1.0, 21.0, 1.0, 31.0]);
    }

    #[test]
    fn index_select_and_index_add() {
        let table = [0.0f32, 1.0, 10.0, 11.0, 20.0, 21.0]; // [3, 2]
        let s = Shape::from([3, 2]);
        let mut out = [0.0; 6];
        let o = index_select(&table, &s, &[2, 0, 2], &mut out).unwrap();
        assert_eq!(
            (o, out),
            (Shape::from([3, 2]), [20.0, 21.0, 0.0, 1.0, 20.0, 21.0])
        );
        let mut g = [0.0f32; 6];
        index_add(&mut g, &s, &[2, 0, 2], &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]).unwrap();
        // row 2 receives rows 0 and 2 of the source: 1 + 3
        assert_eq!(g, [2.0, 2.0, 0.0, 0.0, 4.0, 4.0]);
    }

    #[test]
    fn split_inverts_concat_and_backward_accumulates() {
        let a = [1.0f32, 2.0, 3.0, 4.0]; // [2, 2]
        let b = [5.0f32, 6.0]; // [2, 1]
        let mut c = [0.0f32; 6];
        let s = concat(
            &[(&a[..], Shape::from([2, 2])), (&b[..], Shape::from([2, 1]))],
            1,
            &mut c,
        )
        .unwrap();
        assert_eq!(c, [1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        let (mut a2, mut b2) = ([0.0f32; 4], [0.0f32; 2]);
        split(
            &c,
            &s,
            1,
            &mut [
                (&mut a2[..], Shape::from([2, 2])),
                (&mut b2[..], Shape::from([2, 1])),
            ],
        )
        .unwrap();
        assert_eq!((a2, b2), (a, b));
        concat_backward(
            &c,
            &s,
            1,
            &mut [
                (&mut a2[..], Shape::from([2, 2])),
                (&mut b2[..], Shape::from([2, 1])),
            ],
        )
        .unwrap();
        assert_eq!((a2, b2), ([2.0, 4.0, 6.0, 8.0], [10.0, 12.0]));
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let x = [0.0f32; 6];
        let s = Shape::from([2, 3]);
        let mut out = [0.0f32; 6];
        assert_eq!(
            transpose2d(&x, 2, 2, &mut out).unwrap_err().to_string(),
            "transpose2d: input has 6 elements, expected 4"
        );
        assert_eq!(
            transpose2d(&x, 2, 3, &mut out[..5])
                .unwrap_err()
                .to_string(),
            "transpose2d: output has 5 elements, expected 6"
        );
        assert_eq!(
            permute(&x, &s, &[0, 0], &mut out).unwrap_err().to_string(),
            "permute: invalid axes (repeated axis) = 0, valid range: each axis of 0..rank exactly once"
        );
        assert_eq!(
            permute(&x, &s, &[0, 2], &mut out).unwrap_err().to_string(),
            "permute: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        assert_eq!(
            permute(&x, &s, &[0], &mut out).unwrap_err().to_string(),
            "permute: axes has 1 elements, expected 2"
        );
        assert_eq!(
            concat(&[(&x[..], s), (&x[..4], Shape::from([4, 1]))], 1, &mut [0.0; 10]).unwrap_err().to_string(),
            "concat: shapes [2, 3] and [4, 1] are incompatible (all dimensions but the concatenation axis must agree)"
        );
        assert_eq!(
            concat(&[(&x[..5], s)], 0, &mut out)
                .unwrap_err()
                .to_string(),
            "concat: input has 5 elements, expected 6"
        );
        assert_eq!(
            concat::<f32>(&[], 0, &mut out).unwrap_err().to_string(),
            "concat: invalid number of inputs = 0, valid range: >= 1"
        );
        assert_eq!(
            concat(&[(&x[..], s)], 2, &mut out).unwrap_err().to_string(),
            "concat: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        let mut p = [0.0f32; 2];
        assert_eq!(
            split(&x, &s, 1, &mut [(&mut p[..], Shape::from([2, 1]))]).unwrap_err().to_string(),
            "split: shapes [2, 3] and [2, 1] are incompatible (the parts must concatenate to the whole)"
        );
        assert_eq!(
            concat_backward(&x[..4], &s, 1, &mut [(&mut out[..], s)])
                .unwrap_err()
                .to_string(),
            "concat_backward: input has 4 elements, expected 6"
        );
        assert_eq!(
            slice_axis(&x, &s, 1, 1, 4, &mut out)
                .unwrap_err()
                .to_string(),
            "slice_axis: index 4 is out of range (must be < 4)"
        );
        assert_eq!(
            slice_axis(&x, &s, 1, 2, 1, &mut out)
                .unwrap_err()
                .to_string(),
            "slice_axis: invalid start = 2, valid range: <= end"
        );
        assert_eq!(
            slice_axis(&x, &s, 2, 0, 1, &mut out)
                .unwrap_err()
                .to_string(),
            "slice_axis: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        assert_eq!(
            slice_axis_backward(&x[..3], &s, 1, 0, 2, &mut out)
                .unwrap_err()
                .to_string(),
            "slice_axis_backward: dy has 3 elements, expected 4"
        );
        assert_eq!(
            index_select(&x, &s, &[0, 2], &mut out)
                .unwrap_err()
                .to_string(),
            "index_select: index 2 is out of range (must be < 2)"
        );
        assert_eq!(
            index_select(&x, &Shape::scalar(), &[0], &mut out)
                .unwrap_err()
                .to_string(),
            "index_select: axis 0 is out of range for shape [] (rank 0)"
        );
        assert_eq!(
            index_select(&x, &s, &[0], &mut out)
                .unwrap_err()
                .to_string(),
            "index_select: output has 6 elements, expected 3"
        );
        assert_eq!(
            index_add(&mut out, &s, &[5], &x[..3])
                .unwrap_err()
                .to_string(),
            "index_add: index 5 is out of range (must be < 2)"
        );
        assert_eq!(
            index_add(&mut out, &s, &[1], &x).unwrap_err().to_string(),
            "index_add: source has 6 elements, expected 3"
        );
    }
}
