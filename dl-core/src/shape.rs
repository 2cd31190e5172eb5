//! `Shape`: dimensions of a row-major tensor, held inline (rank <= 6, no allocation),
//! with row-major strides and NumPy broadcasting.

use crate::error::{Error, Result};
use core::fmt;

/// The largest rank a [`Shape`] can hold.
pub const MAX_RANK: usize = 6;

/// Dimensions of a contiguous row-major tensor, stored inline without allocation.
///
/// ```
/// use dl_core::Shape;
/// let s = Shape::new(&[2, 3, 4]).unwrap();
/// assert_eq!(s.numel(), 24);
/// assert_eq!(&s.strides()[..3], &[12, 4, 1]);
/// let b = Shape::new(&[3, 1]).unwrap();
/// assert_eq!(s.broadcast(&b, "add").unwrap().dims(), &[2, 3, 4]);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: usize,
}

impl Shape {
    /// `[0]`: rank 1, no elements.
    #[cfg(feature = "alloc")]
    pub(crate) const EMPTY: Shape = Shape {
        dims: [0; MAX_RANK],
        rank: 1,
    };

    /// A shape with the given dimensions; errors if the rank exceeds [`MAX_RANK`] or
    /// the element count overflows `usize`.
    pub fn new(dims: &[usize]) -> Result<Self> {
        if dims.len() > MAX_RANK {
            return Err(Error::RankTooLarge {
                op: "Shape::new",
                rank: dims.len(),
            });
        }
        let mut out = Shape {
            dims: [0; MAX_RANK],
            rank: dims.len(),
        };
        out.dims[..dims.len()].copy_from_slice(dims);
        out.checked_numel()
            .ok_or(Error::Overflow { op: "Shape::new" })?;
        Ok(out)
    }

    /// The rank-0 shape of a scalar (one element).
    pub const fn scalar() -> Self {
        Shape {
            dims: [0; MAX_RANK],
            rank: 0,
        }
    }

    /// The dimensions, outermost first.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of elements (1 for a scalar).
    #[inline]
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    fn checked_numel(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Size of dimension `axis`, or an error naming `op` if `axis >= rank`.
    pub fn dim(&self, axis: usize, op: &'static str) -> Result<usize> {
        self.check_axis(axis, op)?;
        Ok(self.dims[axis])
    }

    /// Errors unless `axis < rank`.
    pub fn check_axis(&self, axis: usize, op: &'static str) -> Result<()> {
        if axis < self.rank {
            Ok(())
        } else {
            Err(Error::AxisOutOfRange {
                op,
                axis,
                shape: *self,
            })
        }
    }

    /// Errors unless this shape has exactly `rank` dimensions; `expected` describes
    /// it for the message, e.g. `"4 (NCHW)"`.
    pub fn check_rank(&self, rank: usize, op: &'static str, expected: &'static str) -> Result<()> {
        if self.rank == rank {
            Ok(())
        } else {
            Err(Error::RankMismatch {
                op,
                expected,
                shape: *self,
            })
        }
    }

    /// Errors unless a buffer of `len` elements holds exactly this shape.
    pub fn check_len(&self, len: usize, op: &'static str, what: &'static str) -> Result<()> {
        if self.numel() == len {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                op,
                what,
                expected: self.numel(),
                actual: len,
            })
        }
    }

    /// Row-major strides in elements; entries past `rank` are 0.
    pub fn strides(&self) -> [usize; MAX_RANK] {
        let mut s = [0; MAX_RANK];
        let mut acc = 1;
        for i in (0..self.rank).rev() {
            s[i] = acc;
            acc *= self.dims[i];
        }
        s
    }

    /// The same shape with `axis` removed (for reductions without keepdim).
    pub fn remove_axis(&self, axis: usize, op: &'static str) -> Result<Self> {
        self.check_axis(axis, op)?;
        let mut out = Shape::scalar();
        for (i, &d) in self.dims().iter().enumerate() {
            if i != axis {
                out.dims[out.rank] = d;
                out.rank += 1;
            }
        }
        Ok(out)
    }

    /// The same shape with dimension `axis` set to `size`.
    pub fn with_dim(&self, axis: usize, size: usize, op: &'static str) -> Result<Self> {
        self.check_axis(axis, op)?;
        let mut out = *self;
        out.dims[axis] = size;
        out.checked_numel().ok_or(Error::Overflow { op })?;
        Ok(out)
    }

    /// The shape after NumPy broadcasting of `self` with `other`: dimensions are
    /// aligned from the right; each pair must be equal or one of them 1.
    pub fn broadcast(&self, other: &Shape, op: &'static str) -> Result<Shape> {
        let rank = self.rank.max(other.rank);
        let mut out = Shape {
            dims: [0; MAX_RANK],
            rank,
        };
        for i in 0..rank {
            let a = self.dim_from_right(i);
            let b = other.dim_from_right(i);
            out.dims[rank - 1 - i] = match (a, b) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: *self,
                        rhs: *other,
                        why: "broadcasting needs equal sizes or 1",
                    })
                }
            };
        }
        Ok(out)
    }

    /// Size of the `i`-th dimension counted from the right (1 past the rank, as
    /// broadcasting treats missing leading dimensions).
    #[inline]
    fn dim_from_right(&self, i: usize) -> usize {
        if i < self.rank {
            self.dims[self.rank - 1 - i]
        } else {
            1
        }
    }

    /// Strides for reading a tensor of this shape as if it had the (broadcast) shape
    /// `target`: aligned to `target`'s rank, 0 along broadcast dimensions. `target`
    /// must be a broadcast of `self` (see [`Shape::broadcast`]).
    pub fn broadcast_strides(&self, target: &Shape) -> [usize; MAX_RANK] {
        debug_assert!(target.rank >= self.rank);
        let own = self.strides();
        let mut s = [0; MAX_RANK];
        let offset = target.rank - self.rank;
        for i in 0..self.rank {
            s[offset + i] = if self.dims[i] == 1 && target.dims[offset + i] != 1 {
                0
            } else {
                own[i]
            };
        }
        s
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    /// Builds a shape from an array; the rank limit is checked at compile time.
    /// Panics only if the element count overflows `usize`.
    fn from(dims: [usize; N]) -> Self {
        const { assert!(N <= MAX_RANK, "Shape: rank exceeds MAX_RANK") };
        Shape::new(&dims).expect("Shape::from: element count overflows usize")
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        let s = Shape::from([2, 3, 4]);
        assert_eq!(&s.strides()[..3], &[12, 4, 1]);
        assert_eq!(s.numel(), 24);
        assert_eq!(Shape::scalar().numel(), 1);
    }

    #[test]
    fn broadcast_follows_numpy() {
        let a = Shape::from([8, 1, 6, 1]);
        let b = Shape::from([7, 1, 5]);
        assert_eq!(a.broadcast(&b, "add").unwrap(), Shape::from([8, 7, 6, 5]));
        let e = Shape::from([2, 3])
            .broadcast(&Shape::from([4]), "mul")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "mul: shapes [2, 3] and [4] are incompatible (broadcasting needs equal sizes or 1)"
        );
    }

    #[test]
    fn broadcast_strides_zero_on_expanded_axes() {
        let b = Shape::from([3, 1]);
        let t = Shape::from([2, 3, 4]);
        assert_eq!(&b.broadcast_strides(&t)[..3], &[0, 1, 0]);
    }

    #[test]
    fn bad_shapes_are_named_errors() {
        assert_eq!(
            Shape::new(&[1; 7]).unwrap_err().to_string(),
            "Shape::new: rank 7 exceeds the maximum rank 6"
        );
        assert!(matches!(
            Shape::new(&[usize::MAX, 2]),
            Err(Error::Overflow { .. })
        ));
        let s = Shape::from([2, 3]);
        assert_eq!(
            s.dim(2, "sum").unwrap_err().to_string(),
            "sum: axis 2 is out of range for shape [2, 3] (rank 2)"
        );
        assert_eq!(
            s.check_len(5, "softmax", "input").unwrap_err().to_string(),
            "softmax: input has 5 elements, expected 6"
        );
        assert_eq!(s.remove_axis(0, "sum").unwrap(), Shape::from([3]));
    }
}
