//! `Tensor<T>`: an owned, contiguous, row-major array with a [`Shape`] (needs `alloc`).
//!
//! Kernels live as plain functions on slices in their own modules; each module adds
//! the matching `Tensor` methods next to its kernels (e.g. `matmul` in `gemm.rs`).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::scalar::Scalar;
use crate::shape::Shape;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// An owned, contiguous, row-major tensor.
///
/// ```
/// use dl_core::Tensor;
/// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// assert_eq!(t.get(&[1, 2]).unwrap(), 6.0);
/// let r = t.reshape(&[3, 2]).unwrap();
/// assert_eq!(r.dims(), &[3, 2]);
/// assert!(t.reshape(&[4, 2]).is_err());
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<T: Scalar = f32> {
    data: Vec<T>,
    shape: Shape,
}

impl<T: Scalar> Tensor<T> {
    /// A tensor of the given shape filled with `value`.
    pub fn full(dims: &[usize], value: T) -> Result<Self> {
        let shape = Shape::new(dims)?;
        Ok(Tensor {
            data: vec![value; shape.numel()],
            shape,
        })
    }

    /// A tensor of zeros.
    pub fn zeros(dims: &[usize]) -> Result<Self> {
        Self::full(dims, T::ZERO)
    }

    /// A tensor of ones.
    pub fn ones(dims: &[usize]) -> Result<Self> {
        Self::full(dims, T::ONE)
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Tensor {
            data: vec![value],
            shape: Shape::scalar(),
        }
    }

    /// Wraps `data` (row-major) as a tensor of shape `dims`; errors if the length is
    /// not the product of `dims`.
    pub fn from_vec(data: Vec<T>, dims: &[usize]) -> Result<Self> {
        let shape = Shape::new(dims)?;
        shape.check_len(data.len(), "Tensor::from_vec", "data")?;
        Ok(Tensor { data, shape })
    }

    /// Wraps `data` with an already-built shape; errors on a length mismatch.
    pub fn from_shape_vec(shape: Shape, data: Vec<T>) -> Result<Self> {
        shape.check_len(data.len(), "Tensor::from_shape_vec", "data")?;
        Ok(Tensor { data, shape })
    }

    /// A tensor of shape `[0]` with no heap buffer: a placeholder that costs nothing
    /// to make (no check, no allocation).
    pub const fn empty() -> Self {
        Tensor {
            data: Vec::new(),
            shape: Shape::EMPTY,
        }
    }

    /// Gives the tensor `shape`, keeping its buffer (and capacity): the first elements
    /// keep their values, any added ones are zero. Reusing one tensor for values of
    /// changing shape this way allocates only when it grows past its capacity.
    ///
    /// ```
    /// use dl_core::{Shape, Tensor};
    /// let mut t = Tensor::<f32>::empty();
    /// assert_eq!((t.dims(), t.numel()), (&[0][..], 0));
    /// t.resize_to(Shape::new(&[2, 2]).unwrap());
    /// t.data_mut().copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
    /// t.resize_to(Shape::new(&[3]).unwrap());
    /// assert_eq!(t.data(), &[1.0, 2.0, 3.0]);
    /// t.resize_to(Shape::new(&[1, 4]).unwrap());
    /// assert_eq!(t.data(), &[1.0, 2.0, 3.0, 0.0]);
    /// ```
    pub fn resize_to(&mut self, shape: Shape) {
        self.data.resize(shape.numel(), T::ZERO);
        self.shape = shape;
    }

    /// A tensor from a slice (copied), shaped `dims`.
    pub fn from_slice(data: &[T], dims: &[usize]) -> Result<Self> {
        Self::from_vec(data.to_vec(), dims)
    }

    /// A 1-D tensor from an array.
    pub fn from_array<const N: usize>(a: [T; N]) -> Self {
        Tensor {
            data: a.to_vec(),
            shape: Shape::from([N]),
        }
    }

    /// A 2-D tensor from an array of rows.
    pub fn from_rows<const R: usize, const C: usize>(rows: [[T; C]; R]) -> Self {
        Tensor {
            data: rows.iter().flatten().copied().collect(),
            shape: Shape::from([R, C]),
        }
    }

    /// A tensor whose element at flat (row-major) index `i` is `f(i)`.
    pub fn from_fn(dims: &[usize], f: impl FnMut(usize) -> T) -> Result<Self> {
        let shape = Shape::new(dims)?;
        Ok(Tensor {
            data: (0..shape.numel()).map(f).collect(),
            shape,
        })
    }

    /// Elements drawn from `U(lo, hi)`.
    pub fn rand_uniform(dims: &[usize], lo: T, hi: T, rng: &mut Rng) -> Result<Self> {
        Self::from_fn(dims, |_| rng.uniform(lo, hi))
    }

    /// Elements drawn from `N(mean, std^2)`.
    pub fn rand_normal(dims: &[usize], mean: T, std: T, rng: &mut Rng) -> Result<Self> {
        Self::from_fn(dims, |_| rng.normal(mean, std))
    }

    /// The shape.
    #[inline]
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dimensions.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements in row-major order.
    #[inline]
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Gives up the buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The same elements viewed with a new shape of equal element count.
    pub fn reshape(&self, dims: &[usize]) -> Result<Self> {
        self.clone().into_reshape(dims)
    }

    /// Like [`Tensor::reshape`], reusing the buffer.
    pub fn into_reshape(self, dims: &[usize]) -> Result<Self> {
        let shape = Shape::new(dims)?;
        if shape.numel() != self.shape.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape,
                rhs: shape,
                why: "element counts differ",
            });
        }
        Ok(Tensor {
            data: self.data,
            shape,
        })
    }

    /// Flat row-major offset of a multi-index, checked against the shape.
    pub fn offset(&self, index: &[usize]) -> Result<usize> {
        if index.len() != self.rank() {
            return Err(Error::LengthMismatch {
                op: "Tensor::index",
                what: "index",
                expected: self.rank(),
                actual: index.len(),
            });
        }
        let strides = self.shape.strides();
        let mut off = 0;
        for (axis, (&i, &d)) in index.iter().zip(self.dims()).enumerate() {
            if i >= d {
                return Err(Error::IndexOutOfRange {
                    op: if axis == 0 {
                        "Tensor::index (axis 0)"
                    } else {
                        "Tensor::index"
                    },
                    index: i,
                    bound: d,
                });
            }
            off += i * strides[axis];
        }
        Ok(off)
    }

    /// The element at a multi-index.
    pub fn get(&self, index: &[usize]) -> Result<T> {
        Ok(self.data[self.offset(index)?])
    }

    /// Sets the element at a multi-index.
    pub fn set(&mut self, index: &[usize], value: T) -> Result<()> {
        let off = self.offset(index)?;
        self.data[off] = value;
        Ok(())
    }

    /// Applies `f` to every element, giving a new tensor of the same shape.
    pub fn map(&self, f: impl Fn(T) -> T) -> Self {
        Tensor {
            data: self.data.iter().map(|&x| f(x)).collect(),
            shape: self.shape,
        }
    }

    /// Largest absolute elementwise difference to `other` (for tests and checks).
    pub fn max_abs_diff(&self, other: &Self) -> Result<T> {
        if self.shape != other.shape {
            return Err(Error::ShapeMismatch {
                op: "max_abs_diff",
                lhs: self.shape,
                rhs: other.shape,
                why: "shapes must be equal",
            });
        }
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .fold(T::ZERO, |m, (&a, &b)| m.max((a - b).abs())))
    }
}

impl<T: Scalar> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        write!(f, "Tensor<{}>{} [", T::NAME, self.shape)?;
        for (i, x) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{x}")?;
        }
        if self.data.len() > SHOWN {
            write!(f, ", ... ({} more)", self.data.len() - SHOWN)?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_indexing() {
        let t = Tensor::from_rows([[1.0f64, 2.0], [3.0, 4.0]]);
        assert_eq!(t.get(&[1, 0]).unwrap(), 3.0);
        assert_eq!(Tensor::<f32>::zeros(&[2, 3]).unwrap().numel(), 6);
        assert_eq!(
            Tensor::from_vec(vec![1.0f32; 5], &[2, 3])
                .unwrap_err()
                .to_string(),
            "Tensor::from_vec: data has 5 elements, expected 6"
        );
        assert_eq!(
            t.get(&[0, 2]).unwrap_err().to_string(),
            "Tensor::index: index 2 is out of range (must be < 2)"
        );
        assert_eq!(
            t.reshape(&[3]).unwrap_err().to_string(),
            "reshape: shapes [2, 2] and [3] are incompatible (element counts differ)"
        );
        let mut u = t.map(|x| x * 2.0);
        u.set(&[0, 0], 9.0).unwrap();
        assert_eq!(u.data(), &[9.0, 4.0, 6.0, 8.0]);
    }
}
