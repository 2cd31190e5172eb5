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
    if params == Pool2dParams::new(2, 2) {
        max_pool_2x2(&g, input, out, argmax);
        return Ok(out_shape);
    }
    g.for_each_window(|plane, o, rows, cols| {
        // padding <= kernel / 2 guarantees every window overlaps the input.
        let mut best_idx = plane * plane_len + rows.start * g.w + cols.start;
        let mut best = input[best_idx];
        for y in rows {
            let row = plane * plane_len + y * g.w;
            for x in cols.clone() {
                let v = input[row + x];
                if wins(v, best) {
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

/// Whether `v` replaces `best` as a window's maximum: larger, or the first NaN (ties
/// keep the earlier element).
#[inline(always)]
fn wins<T: Scalar>(v: T, best: T) -> bool {
    v > best || (v.is_nan() && !best.is_nan())
}

/// [`wins`] without short-circuit evaluation, so it compiles to flag arithmetic and
/// selects rather than branches.
#[inline(always)]
fn wins_flat<T: Scalar>(v: T, best: T) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// [`max_pool2d`] for the common 2x2 window with stride 2 and no padding: the same
/// results as the general walk (same visiting order, ties and NaN rule), with the
/// window's two input rows read directly.
fn max_pool_2x2<T: Scalar>(g: &Pool2dGeometry, input: &[T], out: &mut [T], argmax: &mut [usize]) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx512f") {
        use core::any::TypeId;
        if TypeId::of::<T>() == TypeId::of::<f32>() {
            // SAFETY: `T` is f32, so the slices are reinterpreted as themselves.
            let (x, y) = unsafe {
                (
                    core::slice::from_raw_parts(input.as_ptr().cast::<f32>(), input.len()),
                    core::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()),
                )
            };
            // SAFETY: AVX-512F was detected just above.
            return unsafe { avx512::max_pool_2x2_f32(g, x, y, argmax) };
        }
    }
    let (w, ow) = (g.w, g.out_w);
    let planes = input.chunks_exact(g.h * w);
    let outs = out.chunks_exact_mut(g.out_h * ow);
    let args = argmax.chunks_exact_mut(g.out_h * ow);
    for (p, ((x, y), a)) in planes.zip(outs).zip(args).enumerate() {
        let base = p * g.h * w;
        for (i, (y, a)) in y
            .chunks_exact_mut(ow)
            .zip(a.chunks_exact_mut(ow))
            .enumerate()
        {
            let (r0, r1) = (&x[2 * i * w..][..2 * ow], &x[(2 * i + 1) * w..][..2 * ow]);
            let (i0, i1) = (base + 2 * i * w, base + (2 * i + 1) * w);
            for j in 0..ow {
                // Branch-free selects: which element wins is data-dependent, and a
                // mispredicted branch per comparison cost more than the whole window.
                let (mut best, mut top_left) = (r0[2 * j], i0 + 2 * j);
                let (v, at) = (r0[2 * j + 1], i0 + 2 * j + 1);
                let win = wins_flat(v, best);
                best = if win { v } else { best };
                top_left = if win { at } else { top_left };
                let (v, at) = (r1[2 * j], i1 + 2 * j);
                let win = wins_flat(v, best);
                best = if win { v } else { best };
                top_left = if win { at } else { top_left };
                let (v, at) = (r1[2 * j + 1], i1 + 2 * j + 1);
                let win = wins_flat(v, best);
                y[j] = if win { v } else { best };
                a[j] = if win { at } else { top_left };
            }
        }
    }
}

/// [`max_pool_2x2`] for f32 with AVX-512F: 16 windows at a time, the even and odd
/// columns of each input row pair split by permutes, the same comparisons as
/// [`wins`] done on masks (ties keep the earlier element; a NaN wins, then keeps).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod avx512 {
    use super::Pool2dGeometry;
    use core::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F; the slices are sized for `g` (checked by
    /// [`super::max_pool2d`]).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_pool_2x2_f32(
        g: &Pool2dGeometry,
        input: &[f32],
        out: &mut [f32],
        argmax: &mut [usize],
    ) {
        let (w, ow, oh) = (g.w, g.out_w, g.out_h);
        let planes = g.n * g.c;
        assert!(input.len() >= planes * g.h * w && 2 * oh <= g.h && 2 * ow <= w);
        assert!(out.len() >= planes * oh * ow && argmax.len() >= planes * oh * ow);
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        let lane = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        let (xp, yp, ap) = (input.as_ptr(), out.as_mut_ptr(), argmax.as_mut_ptr());
        for p in 0..planes {
            for i in 0..oh {
                let row0 = p * g.h * w + 2 * i * w;
                let row1 = row0 + w;
                let o = (p * oh + i) * ow;
                for j0 in (0..ow).step_by(16) {
                    let n = (ow - j0).min(16);
                    let m: __mmask16 = if n == 16 {
                        0xffff
                    } else {
                        ((1u32 << n) - 1) as u16
                    };
                    let (n_lo, n_hi) = ((2 * n).min(16), (2 * n).saturating_sub(16));
                    let m_lo: __mmask16 = if n_lo == 16 {
                        0xffff
                    } else {
                        ((1u32 << n_lo) - 1) as u16
                    };
                    let m_hi: __mmask16 = ((1u32 << n_hi) - 1) as u16;
                    let load = |row: usize| {
                        let at = xp.wrapping_add(row + 2 * j0);
                        let lo = _mm512_maskz_loadu_ps(m_lo, at);
                        let hi = _mm512_maskz_loadu_ps(m_hi, at.wrapping_add(16));
                        (
                            _mm512_permutex2var_ps(lo, even, hi),
                            _mm512_permutex2var_ps(lo, odd, hi),
                        )
                    };
                    let (a, b) = load(row0);
                    let (c, d) = load(row1);
                    let mut best = a;
                    let mut code = _mm512_setzero_si512();
                    for (v, k) in [(b, 1), (c, 2), (d, 3)] {
                        // wins(v, best) = !(v <= best) && best is not NaN.
                        let le = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, best);
                        let ord = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best);
                        let win = !le & ord;
                        best = _mm512_mask_mov_ps(best, win, v);
                        code = _mm512_mask_mov_epi32(code, win, _mm512_set1_epi32(k));
                    }
                    _mm512_mask_storeu_ps(yp.wrapping_add(o + j0), m, best);
                    // Index = row0 + 2j + (code & 1) + (code >> 1) * w, in 64 bits.
                    for half in 0..2 {
                        let c32 = if half == 0 {
                            _mm512_castsi512_si256(code)
                        } else {
                            _mm512_extracti64x4_epi64::<1>(code)
                        };
                        let c64 = _mm512_cvtepu32_epi64(c32);
                        let col = _mm512_add_epi64(
                            _mm512_set1_epi64((row0 + 2 * (j0 + 8 * half)) as i64),
                            lane,
                        );
                        let right = _mm512_and_si512(c64, _mm512_set1_epi64(1));
                        let idx = _mm512_add_epi64(col, right);
                        // Codes 2 and 3 are in the second row.
                        let second = _mm512_cmpge_epu64_mask(c64, _mm512_set1_epi64(2));
                        let idx =
                            _mm512_mask_add_epi64(idx, second, idx, _mm512_set1_epi64(w as i64));
                        let mh = ((m >> (8 * half)) & 0xff) as __mmask8;
                        let at = ap.wrapping_add(o + j0 + 8 * half).cast::<i64>();
                        _mm512_mask_storeu_epi64(at, mh, idx);
                    }
                }
            }
        }
    }

    /// The windows' cells of [`super::max_pool2d_2x2_backward`], 16 windows at a time;
    /// returns false (having written part of `grad_input`) if an index is not in its
    /// window.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; the slices are sized for `g` (checked by the
    /// caller).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn max_pool_2x2_backward_f32(
        g: &Pool2dGeometry,
        grad_out: &[f32],
        argmax: &[usize],
        grad_input: &mut [f32],
    ) -> bool {
        let (w, ow, oh) = (g.w, g.out_w, g.out_h);
        let planes = g.n * g.c;
        assert!(grad_input.len() >= planes * g.h * w && 2 * oh <= g.h && 2 * ow <= w);
        assert!(grad_out.len() >= planes * oh * ow && argmax.len() >= planes * oh * ow);
        // Lane 2k of the low half takes even[k], lane 2k + 1 odd[k]; the high half k + 8.
        let lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        let hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
        let lane = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        let (w32, w1) = (_mm512_set1_epi32(w as i32), _mm512_set1_epi32(w as i32 + 1));
        let (gp, ap, xp) = (grad_out.as_ptr(), argmax.as_ptr(), grad_input.as_mut_ptr());
        for p in 0..planes {
            for i in 0..oh {
                let row0 = p * g.h * w + 2 * i * w;
                let o = (p * oh + i) * ow;
                for j0 in (0..ow).step_by(16) {
                    let n = (ow - j0).min(16);
                    let m: __mmask16 = if n == 16 {
                        0xffff
                    } else {
                        ((1u32 << n) - 1) as u16
                    };
                    let gv = _mm512_maskz_loadu_ps(m, gp.wrapping_add(o + j0));
                    // code = argmax - (row0 + 2j), as 32-bit lanes.
                    let mut halves = [_mm256_setzero_si256(); 2];
                    for (half, out) in halves.iter_mut().enumerate() {
                        let mh = ((m >> (8 * half)) & 0xff) as __mmask8;
                        let at = ap.wrapping_add(o + j0 + 8 * half).cast::<i64>();
                        let a = _mm512_maskz_loadu_epi64(mh, at);
                        let base = _mm512_add_epi64(
                            _mm512_set1_epi64((row0 + 2 * (j0 + 8 * half)) as i64),
                            lane,
                        );
                        // Saturating: a far-off index cannot wrap onto a window cell.
                        *out = _mm512_cvtsepi64_epi32(_mm512_sub_epi64(a, base));
                    }
                    let code =
                        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(halves[0]), halves[1]);
                    let zero = _mm512_setzero_si512();
                    let c0 = _mm512_cmpeq_epi32_mask(code, zero);
                    let c1 = _mm512_cmpeq_epi32_mask(code, _mm512_set1_epi32(1));
                    let cw = _mm512_cmpeq_epi32_mask(code, w32);
                    let cw1 = _mm512_cmpeq_epi32_mask(code, w1);
                    if (c0 | c1 | cw | cw1) & m != m {
                        return false;
                    }
                    let rows = [
                        (
                            row0,
                            _mm512_maskz_mov_ps(c0, gv),
                            _mm512_maskz_mov_ps(c1, gv),
                        ),
                        (
                            row0 + w,
                            _mm512_maskz_mov_ps(cw, gv),
                            _mm512_maskz_mov_ps(cw1, gv),
                        ),
                    ];
                    let (n_lo, n_hi) = ((2 * n).min(16), (2 * n).saturating_sub(16));
                    let m_lo: __mmask16 = if n_lo == 16 {
                        0xffff
                    } else {
                        ((1u32 << n_lo) - 1) as u16
                    };
                    let m_hi: __mmask16 = ((1u32 << n_hi) - 1) as u16;
                    for (start, even, odd) in rows {
                        let at = xp.wrapping_add(start + 2 * j0);
                        _mm512_mask_storeu_ps(at, m_lo, _mm512_permutex2var_ps(even, lo_idx, odd));
                        let hi = _mm512_permutex2var_ps(even, hi_idx, odd);
                        _mm512_mask_storeu_ps(at.wrapping_add(16), m_hi, hi);
                    }
                }
            }
        }
        true
    }
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

/// [`max_pool2d_backward`] for the 2x2 window with stride 2 and no padding (the
/// windows do not overlap): each window's four cells are written at once (its
/// gradient on the recorded maximum, zeros elsewhere) and rows or columns no window
/// covers are zeroed, so `grad_input` is written once instead of zeroed and then
/// scattered into. `input_shape` is the pooled input's NCHW shape. The same result
/// as [`max_pool2d_backward`]; an index outside its window (not from
/// [`max_pool2d`]) sends the call to that general routine, which checks it.
pub fn max_pool2d_2x2_backward<T: Scalar>(
    input_shape: Shape,
    grad_out: &[T],
    argmax: &[usize],
    grad_input: &mut [T],
) -> Result<()> {
    const OP: &str = "max_pool2d_backward";
    let g = Pool2dGeometry::new(input_shape, Pool2dParams::new(2, 2))?;
    input_shape.check_len(grad_input.len(), OP, "grad_input")?;
    g.output_shape().check_len(grad_out.len(), OP, "grad_out")?;
    check_len(OP, "argmax", grad_out.len(), argmax.len())?;
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx512f")
        && core::any::TypeId::of::<T>() == core::any::TypeId::of::<f32>()
    {
        // SAFETY: `T` is f32, so the slices are reinterpreted as themselves.
        let (gy, gx) = unsafe {
            (
                core::slice::from_raw_parts(grad_out.as_ptr().cast::<f32>(), grad_out.len()),
                core::slice::from_raw_parts_mut(
                    grad_input.as_mut_ptr().cast::<f32>(),
                    grad_input.len(),
                ),
            )
        };
        // SAFETY: AVX-512F was detected just above.
        if unsafe { avx512::max_pool_2x2_backward_f32(&g, gy, argmax, gx) } {
            zero_uncovered(&g, grad_input);
            return Ok(());
        }
        return max_pool2d_backward(grad_out, argmax, grad_input);
    }
    let (h, w, ow) = (g.h, g.w, g.out_w);
    for (o, (&gv, &a)) in grad_out.iter().zip(argmax).enumerate() {
        let (plane, rest) = (o / (g.out_h * ow), o % (g.out_h * ow));
        let (i, j) = (rest / ow, rest % ow);
        let base = plane * h * w + 2 * i * w + 2 * j;
        if ![base, base + 1, base + w, base + w + 1].contains(&a) {
            return max_pool2d_backward(grad_out, argmax, grad_input);
        }
        for cell in [base, base + 1, base + w, base + w + 1] {
            grad_input[cell] = if cell == a { gv } else { T::ZERO };
        }
    }
    zero_uncovered(&g, grad_input);
    Ok(())
}

/// Zeroes the last row and column of each plane when no 2x2 window covers them (odd
/// height or width).
fn zero_uncovered<T: Scalar>(g: &Pool2dGeometry, grad_input: &mut [T]) {
    for plane in grad_input.chunks_exact_mut(g.h * g.w) {
        if g.h % 2 == 1 {
            plane[(g.h - 1) * g.w..].fill(T::ZERO);
        }
        if g.w % 2 == 1 {
            for row in plane.chunks_exact_mut(g.w) {
                row[g.w - 1] = T::ZERO;
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use alloc::vec;
    use alloc::vec::Vec;

    /// The 2x2 / stride 2 fast paths (the AVX-512 one for f32 where the CPU has it)
    /// agree with the window walk by the definition, ties and NaNs included.
    #[test]
    fn max_pool_2x2_fast_path_matches_the_definition() {
        let mut rng = Rng::seed_from_u64(1);
        for _ in 0..200 {
            let (n, c) = (1 + rng.below(2), 1 + rng.below(3));
            let (h, w) = (2 + rng.below(40), 2 + rng.below(40));
            // Few distinct values make ties common; a few NaNs test the NaN rule.
            let x: Vec<f32> = (0..n * c * h * w)
                .map(|_| match rng.below(50) {
                    0 => f32::NAN,
                    v => (v % 5) as f32 - 2.0,
                })
                .collect();
            let shape = Shape::from([n, c, h, w]);
            let g = Pool2dGeometry::new(shape, Pool2dParams::new(2, 2)).unwrap();
            let len = g.output_shape().numel();
            let (mut y, mut arg) = (vec![0.0f32; len], vec![0usize; len]);
            max_pool2d(shape, &x, Pool2dParams::new(2, 2), &mut y, &mut arg).unwrap();
            let mut o = 0;
            for p in 0..n * c {
                for i in 0..g.out_h {
                    for j in 0..g.out_w {
                        let mut best_idx = (p * h + 2 * i) * w + 2 * j;
                        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                            let idx = (p * h + 2 * i + dy) * w + 2 * j + dx;
                            if wins(x[idx], x[best_idx]) {
                                best_idx = idx;
                            }
                        }
                        assert_eq!(arg[o], best_idx, "window {o} of {shape:?}");
                        assert_eq!(y[o].to_bits(), x[best_idx].to_bits());
                        o += 1;
                    }
                }
            }
            // The one-pass backward writes what zeroing and scattering write.
            let gy: Vec<f32> = (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let (mut gx, mut want) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            max_pool2d_2x2_backward(shape, &gy, &arg, &mut gx).unwrap();
            max_pool2d_backward(&gy, &arg, &mut want).unwrap();
            assert_eq!(gx, want, "{shape:?}");
            let gy64: Vec<f64> = gy.iter().map(|&v| v as f64).collect();
            let (mut gx64, mut want64) = (vec![f64::NAN; x.len()], vec![f64::NAN; x.len()]);
            max_pool2d_2x2_backward(shape, &gy64, &arg, &mut gx64).unwrap();
            max_pool2d_backward(&gy64, &arg, &mut want64).unwrap();
            assert_eq!(gx64, want64, "{shape:?}");
        }
    }

    /// Indices outside their window go to the general backward, which checks them.
    #[test]
    fn max_pool_2x2_backward_falls_back_on_foreign_indices() {
        let shape = Shape::from([1, 1, 4, 4]);
        let gy = [1.0f32, 2.0, 3.0, 4.0];
        // Window 0 records cell 15 (another window's): the general routine adds there.
        let arg = [15usize, 2, 8, 15];
        let (mut gx, mut want) = (vec![f32::NAN; 16], vec![f32::NAN; 16]);
        max_pool2d_2x2_backward(shape, &gy, &arg, &mut gx).unwrap();
        max_pool2d_backward(&gy, &arg, &mut want).unwrap();
        assert_eq!(gx, want);
        assert_eq!(gx[15], 5.0);
        let bad = [1usize << 40, 2, 8, 15];
        let err = max_pool2d_2x2_backward(shape, &gy, &bad, &mut gx).unwrap_err();
        assert!(
            err.to_string().starts_with("max_pool2d_backward: index"),
            "{err}"
        );
    }
}
