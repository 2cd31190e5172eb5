//! 2-D max and average pooling on NCHW slices, with their backward passes, and global
//! average pooling. Semantics follow PyTorch's `max_pool2d` / `avg_pool2d` with
//! `ceil_mode = false`, `dilation = 1` and (for average pooling)
//! `count_include_pad = true`.
//!
//! For input `[n, c, h, w]` the output is `[n, c, out_h, out_w]` with
//! `out_h = (h + 2 * pad_h - k_h) / stride_h + 1` (likewise `out_w`).
//! - max: `y[b, c, i, j] = max` over the window (padding never wins); the flat input
//!   index of the winner is recorded for the backward pass, which routes each output
//!   gradient to it (overlapping windows add);
//! - average: `y = (sum over the window, padding counting as 0) / (k_h * k_w)`;
//!   the backward pass spreads each output gradient evenly over its window.
//!
//! ```
//! use dl_core::pool::{max_pool2d, Pool2dParams};
//! use dl_core::Shape;
//! let x = [1.0f32, 2.0, 3.0, 4.0]; // one 2x2 plane
//! let (mut y, mut arg) = ([0.0f32], [0usize]);
//! let out = max_pool2d(Shape::from([1, 1, 2, 2]), &x, Pool2dParams::default(), &mut y, &mut arg)
//!     .unwrap();
//! assert_eq!((out.dims(), y, arg), (&[1, 1, 1, 1][..], [4.0], [3]));
//! ```

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::Shape;

/// Hyper-parameters of 2-D pooling, each as `(height, width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size; `>= 1`.
    pub kernel: (usize, usize),
    /// Step between windows; `>= 1` (PyTorch's default is the kernel size).
    pub stride: (usize, usize),
    /// Implicit padding on each side; `<= kernel / 2`.
    pub padding: (usize, usize),
}

impl Default for Pool2dParams {
    /// A 2x2 window with stride 2 and no padding (halves height and width).
    fn default() -> Self {
        Pool2dParams::new(2, 2)
    }
}

impl Pool2dParams {
    /// A `kh x kw` window with stride equal to the window (PyTorch's default) and no
    /// padding.
    pub fn new(kh: usize, kw: usize) -> Self {
        Pool2dParams {
            kernel: (kh, kw),
            stride: (kh, kw),
            padding: (0, 0),
        }
    }

    /// The same parameters with stride `(sh, sw)`.
    pub fn with_stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }

    /// The same parameters with padding `(ph, pw)`.
    pub fn with_padding(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }

    /// Errors (naming the parameter) unless kernel and stride are `>= 1` and padding
    /// is at most half the kernel (PyTorch's rule: a window must overlap the input).
    pub fn validate(&self) -> Result<()> {
        let invalid = |name, value: usize, valid| Error::InvalidParameter {
            op: "Pool2dParams",
            name,
            value: value as f64,
            valid,
        };
        for (name, (a, b)) in [("kernel", self.kernel), ("stride", self.stride)] {
            for v in [a, b] {
                if v == 0 {
                    return Err(invalid(name, v, ">= 1"));
                }
            }
        }
        for (p, k) in [
            (self.padding.0, self.kernel.0),
            (self.padding.1, self.kernel.1),
        ] {
            if p > k / 2 {
                return Err(invalid("padding", p, "<= kernel / 2"));
            }
        }
        Ok(())
    }

    /// The output shape for an NCHW `input` (see [`Pool2dGeometry::new`]).
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        Ok(Pool2dGeometry::new(input, *self)?.output_shape())
    }
}

/// The sizes of one pooling, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Kernel, stride and padding.
    pub params: Pool2dParams,
}

impl Pool2dGeometry {
    /// Validates `params` and checks that `input` is NCHW with a padded height and
    /// width at least the kernel's (errors name `pool2d` and the shapes).
    pub fn new(input: Shape, params: Pool2dParams) -> Result<Self> {
        params.validate()?;
        input.check_rank(4, "pool2d", "4 (NCHW input)")?;
        let d = input.dims();
        let out_len = |size: usize, k: usize, s: usize, p: usize| {
            let padded = size + 2 * p;
            (size > 0 && padded >= k).then(|| (padded - k) / s + 1)
        };
        let (kh, kw) = params.kernel;
        let oh = out_len(d[2], kh, params.stride.0, params.padding.0);
        let ow = out_len(d[3], kw, params.stride.1, params.padding.1);
        let (Some(out_h), Some(out_w)) = (oh, ow) else {
            return Err(Error::ShapeMismatch {
                op: "pool2d",
                lhs: input,
                rhs: Shape::from([kh, kw]),
                why: "the kernel is larger than the padded input: empty output",
            });
        };
        Ok(Pool2dGeometry {
            n: d[0],
            c: d[1],
            h: d[2],
            w: d[3],
            out_h,
            out_w,
            params,
        })
    }

    /// `[n, c, h, w]`.
    pub fn input_shape(&self) -> Shape {
        Shape::from([self.n, self.c, self.h, self.w])
    }

    /// `[n, c, out_h, out_w]`.
    pub fn output_shape(&self) -> Shape {
        Shape::from([self.n, self.c, self.out_h, self.out_w])
    }

    /// Calls `visit(plane, output index, rows, cols)` for every output element, where
    /// `plane` indexes the `n * c` planes and `rows`/`cols` are the window clipped to
    /// the input (padding excluded). One walk for all four pooling kernels.
    fn for_each_window(
        &self,
        mut visit: impl FnMut(usize, usize, core::ops::Range<usize>, core::ops::Range<usize>),
    ) {
        let (kh, kw) = self.params.kernel;
        let (sh, sw) = self.params.stride;
        let (ph, pw) = self.params.padding;
        let mut o = 0;
        for plane in 0..self.n * self.c {
            for i in 0..self.out_h {
                let y0 = i * sh;
                let rows = y0.saturating_sub(ph)..(y0 + kh - ph).min(self.h);
                for j in 0..self.out_w {
                    let x0 = j * sw;
                    let cols = x0.saturating_sub(pw)..(x0 + kw - pw).min(self.w);
                    visit(plane, o, rows.clone(), cols);
                    o += 1;
                }
            }
        }
    }
}

fn check_len(op: &'static str, what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op,
            what,
            expected,
            actual,
        })
    }
}

/// Max pooling: writes each window's maximum to `out` and the flat index (into
/// `input`) of that maximum to `argmax`, for [`max_pool2d_backward`]. Ties go to the
/// first element in row-major order and a NaN wins (as in PyTorch). Returns the output
/// shape. Allocates nothing.
pub fn max_pool2d<T: Scalar>(
    input_shape: Shape,
    input: &[T],
    params: Pool2dParams,
    out: &mut [T],
    argmax: &mut [usize],
) -> Result<Shape> {
    const OP: &str = "max_pool2d";
    let g = Pool2dGeometry::new(input_shape, params)?;
    input_shape.check_len(input.len(), OP, "input")?;
    let out_shape = g.output_shape();
    out_shape.check_len(out.len(), OP, "output")?;
    out_shape.check_len(argmax.len(), OP, "argmax")?;
    let plane_len = g.h * g.w;
    g.for_each_window(|plane, o, rows, cols| {
        // padding <= kernel / 2 guarantees every window overlaps the input.
        let mut best_idx = plane * plane_len + rows.start * g.w + cols.start;
        let mut best = input[best_idx];
        for y in rows {
            let row = plane * plane_len + y * g.w;
            for x in cols.clone() {
                let v = input[row + x];
                if v > best || (v.is_nan() && !best.is_nan()) {
                    best = v;
                    best_idx = row + x;
                }
            }
        }
        out[o] = best;
        argmax[o] = best_idx;
    });
    Ok(out_shape)
}

/// Backward of [`max_pool2d`]: overwrites `grad_input` with zeros, then adds each
/// `grad_out[o]` at `argmax[o]` (windows that share a maximum add up). Errors if the
/// lengths disagree or an index is past `grad_input`.
pub fn max_pool2d_backward<T: Scalar>(
    grad_out: &[T],
    argmax: &[usize],
    grad_input: &mut [T],
) -> Result<()> {
    const OP: &str = "max_pool2d_backward";
    check_len(OP, "argmax", grad_out.len(), argmax.len())?;
    if let Some(&bad) = argmax.iter().find(|&&i| i >= grad_input.len()) {
        return Err(Error::IndexOutOfRange {
            op: OP,
            index: bad,
            bound: grad_input.len(),
        });
    }
    grad_input.fill(T::ZERO);
    for (&g, &i) in grad_out.iter().zip(argmax) {
        grad_input[i] = grad_input[i] + g;
    }
    Ok(())
}

/// Average pooling with `count_include_pad = true`: each output is the window's sum
/// (padding as 0) divided by `kh * kw`. Returns the output shape. Allocates nothing.
pub fn avg_pool2d<T: Scalar>(
    input_shape: Shape,
    input: &[T],
    params: Pool2dParams,
    out: &mut [T],
) -> Result<Shape> {
    const OP: &str = "avg_pool2d";
    let g = Pool2dGeometry::new(input_shape, params)?;
    input_shape.check_len(input.len(), OP, "input")?;
    let out_shape = g.output_shape();
    out_shape.check_len(out.len(), OP, "output")?;
    let inv = T::ONE / T::from_usize_lossy(params.kernel.0 * params.kernel.1);
    let plane_len = g.h * g.w;
    g.for_each_window(|plane, o, rows, cols| {
        let mut s = T::ZERO;
        for y in rows {
            let row = plane * plane_len + y * g.w;
            s = s + input[row + cols.start..row + cols.end]
                .iter()
                .copied()
                .sum::<T>();
        }
        out[o] = s * inv;
    });
    Ok(out_shape)
}

/// Backward of [`avg_pool2d`]: overwrites `grad_input` (shaped `input_shape`) so each
/// input pixel gets `grad_out / (kh * kw)` from every window that covers it.
pub fn avg_pool2d_backward<T: Scalar>(
    input_shape: Shape,
    grad_out: &[T],
    params: Pool2dParams,
    grad_input: &mut [T],
) -> Result<()> {
    const OP: &str = "avg_pool2d_backward";
    let g = Pool2dGeometry::new(input_shape, params)?;
    g.output_shape().check_len(grad_out.len(), OP, "grad_out")?;
    input_shape.check_len(grad_input.len(), OP, "grad_input")?;
    grad_input.fill(T::ZERO);
    let inv = T::ONE / T::from_usize_lossy(params.kernel.0 * params.kernel.1);
    let plane_len = g.h * g.w;
    g.for_each_window(|plane, o, rows, cols| {
        let share = grad_out[o] * inv;
        for y in rows {
            let row = plane * plane_len + y * g.w;
            for v in &mut grad_input[row + cols.start..row + cols.end] {
                *v = *v + share;
            }
        }
    });
    Ok(())
}

/// Global average pooling: `[n, c, h, w] -> [n, c, 1, 1]`, the mean of each plane.
/// Returns the output shape. Errors on a rank other than 4 or an empty plane.
pub fn global_avg_pool2d<T: Scalar>(
    input_shape: Shape,
    input: &[T],
    out: &mut [T],
) -> Result<Shape> {
    const OP: &str = "global_avg_pool2d";
    let (planes, plane_len) = global_geometry(input_shape, OP)?;
    input_shape.check_len(input.len(), OP, "input")?;
    check_len(OP, "output", planes, out.len())?;
    let inv = T::ONE / T::from_usize_lossy(plane_len);
    for (o, plane) in out.iter_mut().zip(input.chunks_exact(plane_len)) {
        *o = plane.iter().copied().sum::<T>() * inv;
    }
    let d = input_shape.dims();
    Ok(Shape::from([d[0], d[1], 1, 1]))
}

/// Backward of [`global_avg_pool2d`]: overwrites `grad_input` so every pixel of a plane
/// gets that plane's `grad_out / (h * w)`.
pub fn global_avg_pool2d_backward<T: Scalar>(
    input_shape: Shape,
    grad_out: &[T],
    grad_input: &mut [T],
) -> Result<()> {
    const OP: &str = "global_avg_pool2d_backward";
    let (planes, plane_len) = global_geometry(input_shape, OP)?;
    check_len(OP, "grad_out", planes, grad_out.len())?;
    input_shape.check_len(grad_input.len(), OP, "grad_input")?;
    let inv = T::ONE / T::from_usize_lossy(plane_len);
    for (&g, plane) in grad_out.iter().zip(grad_input.chunks_exact_mut(plane_len)) {
        plane.fill(g * inv);
    }
    Ok(())
}

/// `(n * c, h * w)` of an NCHW shape with non-empty planes.
fn global_geometry(input: Shape, op: &'static str) -> Result<(usize, usize)> {
    input.check_rank(4, op, "4 (NCHW input)")?;
    let d = input.dims();
    if d[2] == 0 || d[3] == 0 {
        return Err(Error::ShapeMismatch {
            op,
            lhs: input,
            rhs: Shape::from([1, 1]),
            why: "height and width must be non-zero to average over them",
        });
    }
    Ok((d[0] * d[1], d[2] * d[3]))
}

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;
    use alloc::vec;
    use alloc::vec::Vec;

    impl<T: Scalar> Tensor<T> {
        /// Max pooling of an NCHW tensor (see [`max_pool2d`]).
        ///
        /// ```
        /// use dl_core::{pool::Pool2dParams, Tensor};
        /// let x = Tensor::from_vec((0..16).map(|v| v as f32).collect(), &[1, 1, 4, 4]).unwrap();
        /// let y = x.max_pool2d(Pool2dParams::new(2, 2)).unwrap();
        /// assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
        /// ```
        pub fn max_pool2d(&self, params: Pool2dParams) -> Result<Tensor<T>> {
            Ok(self.max_pool2d_with_argmax(params)?.0)
        }

        /// Max pooling that also returns, for each output, the flat input index of its
        /// maximum (what [`max_pool2d_backward`] needs).
        pub fn max_pool2d_with_argmax(
            &self,
            params: Pool2dParams,
        ) -> Result<(Tensor<T>, Vec<usize>)> {
            let out_shape = params.output_shape(*self.shape())?;
            let mut out = vec![T::ZERO; out_shape.numel()];
            let mut argmax = vec![0; out_shape.numel()];
            max_pool2d(*self.shape(), self.data(), params, &mut out, &mut argmax)?;
            Ok((Tensor::from_shape_vec(out_shape, out)?, argmax))
        }

        /// Average pooling of an NCHW tensor, padding counted in the divisor (see
        /// [`avg_pool2d`]).
        pub fn avg_pool2d(&self, params: Pool2dParams) -> Result<Tensor<T>> {
            let out_shape = params.output_shape(*self.shape())?;
            let mut out = vec![T::ZERO; out_shape.numel()];
            avg_pool2d(*self.shape(), self.data(), params, &mut out)?;
            Tensor::from_shape_vec(out_shape, out)
        }

        /// Global average pooling `[n, c, h, w] -> [n, c, 1, 1]`.
        pub fn global_avg_pool2d(&self) -> Result<Tensor<T>> {
            let (planes, _) = global_geometry(*self.shape(), "global_avg_pool2d")?;
            let mut out = vec![T::ZERO; planes];
            let shape = global_avg_pool2d(*self.shape(), self.data(), &mut out)?;
            Tensor::from_shape_vec(shape, out)
        }
    }
}
