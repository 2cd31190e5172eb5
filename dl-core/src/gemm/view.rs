//! Matrix views for the packed gemm: [`View`], a strided read-only operand (so that a
//! transpose is just swapped strides), and [`MatMut`], a mutable row-major block of C
//! that can be split by rows or by columns into blocks for different threads.

use core::marker::PhantomData;

/// A strided read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`. A
/// row-major matrix has `(rs, cs) = (cols, 1)`; its transpose swaps the two.
#[derive(Clone, Copy)]
pub(super) struct View<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<T> View<'_, T> {
    /// The view of rows `r0..`.
    // Splitting into blocks for threads needs std.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub fn rows_from(self, r0: usize) -> Self {
        Self {
            data: &self.data[(r0 * self.rs).min(self.data.len())..],
            ..self
        }
    }

    /// The view of columns `c0..`.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub fn cols_from(self, c0: usize) -> Self {
        self.t().rows_from(c0).t()
    }

    /// The transposed view (same data).
    pub fn t(self) -> Self {
        Self {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A `rows x cols` block of a row-major matrix with row stride `rs`, borrowed
/// mutably: what `&mut [T]` would be if a slice could skip the columns between rows.
/// Blocks split off one matrix never overlap, so they can be written from different
/// threads.
///
/// Invariant: for `i < rows` and `j < cols`, `ptr + i * rs + j` lies in an allocation
/// borrowed uniquely by this view for `'a`, and `cols <= rs` (rows do not overlap).
pub(super) struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    rs: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `MatMut` is a unique borrow of its elements, like `&mut [T]`, which is
// `Send` when `T` is.
unsafe impl<T: Send> Send for MatMut<'_, T> {}

impl<'a, T> MatMut<'a, T> {
    /// The whole of a contiguous row-major `rows x cols` matrix.
    pub fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        assert_eq!(data.len(), rows * cols, "MatMut: length is not rows * cols");
        Self {
            ptr: data.as_mut_ptr(),
            rows,
            cols,
            rs: cols,
            _borrow: PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Rows `..i` and rows `i..`.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub fn split_at_row(self, i: usize) -> (Self, Self) {
        assert!(i <= self.rows, "MatMut: row split out of range");
        let rest = Self {
            // In bounds whenever a row is left to address; only ever dereferenced
            // through `row`, so a wrapping offset is enough.
            ptr: self.ptr.wrapping_add(i * self.rs),
            rows: self.rows - i,
            ..self
        };
        (Self { rows: i, ..self }, rest)
    }

    /// Columns `..j` and columns `j..`.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub fn split_at_col(self, j: usize) -> (Self, Self) {
        assert!(j <= self.cols, "MatMut: column split out of range");
        let rest = Self {
            ptr: self.ptr.wrapping_add(j),
            cols: self.cols - j,
            ..self
        };
        (Self { cols: j, ..self }, rest)
    }

    /// The `rows x cols` block at `(r0, c0)`, borrowed from this one.
    pub fn block(&mut self, r0: usize, c0: usize, rows: usize, cols: usize) -> MatMut<'_, T> {
        assert!(
            r0 + rows <= self.rows && c0 + cols <= self.cols,
            "MatMut: block out of range"
        );
        MatMut {
            ptr: self.ptr.wrapping_add(r0 * self.rs + c0),
            rows,
            cols,
            rs: self.rs,
            _borrow: PhantomData,
        }
    }

    /// Row `i` as a slice of `cols` elements.
    pub fn row(&mut self, i: usize) -> &mut [T] {
        assert!(i < self.rows, "MatMut: row out of range");
        // SAFETY: by the invariant, the `cols` elements from `ptr + i * rs` lie in the
        // allocation this view borrows uniquely, and no other row or view overlaps
        // them; the returned borrow is tied to `&mut self`.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.wrapping_add(i * self.rs), self.cols) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_blocks_address_the_right_elements() {
        // 3 x 4 matrix holding 0..12.
        let mut data: [i32; 12] = core::array::from_fn(|i| i as i32);
        let m = MatMut::new(&mut data, 3, 4);
        let (left, right) = m.split_at_col(1);
        let (mut top_right, mut bottom_right) = right.split_at_row(2);
        assert_eq!(top_right.row(1), &[5, 6, 7]);
        assert_eq!(bottom_right.row(0), &[9, 10, 11]);
        let mut left = left;
        assert_eq!(left.row(2), &[8]);
        let mut b = top_right.block(0, 1, 2, 2);
        b.row(1)[1] = -1;
        assert_eq!(data[7], -1);
        let v = View {
            data: &data,
            rs: 4,
            cs: 1,
        };
        assert_eq!(v.cols_from(2).rows_from(1).data[0], 6);
    }
}
