//! Elementwise kernels: unary ops and activations with their derivatives, binary ops
//! with NumPy broadcasting and their gradients, and the small vector helpers
//! optimizers use (`axpy`, `scale`, `fill`, `add_assign`, `dot`).
//!
//! Every op keeps its backward next to its forward: [`Unary::apply`] beside
//! [`Unary::derivative`], [`Binary::apply`] beside [`Binary::partials`].
//!
//! Loops are written to auto-vectorize: the op is matched once, outside the loop, and
//! each arm runs a monomorphized loop over contiguous slices. Broadcasting walks the
//! output row by row after merging dimensions that are contiguous in every operand,
//! so equal shapes, a scalar operand and a trailing-row (bias) operand all end up as
//! one tight loop per row.
//!
//! ```
//! use dl_core::elementwise::{binary, unary, Binary, Unary};
//! use dl_core::Shape;
//! // [2, 3] + [3]: the row is added to every row (a bias add).
//! let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [10.0f32, 20.0, 30.0];
//! let mut out = [0.0f32; 6];
//! let shape = binary(Binary::Add, &a, &Shape::from([2, 3]), &b, &Shape::from([3]), &mut out).unwrap();
//! assert_eq!(shape.dims(), &[2, 3]);
//! assert_eq!(out, [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
//! let mut r = [0.0f32; 3];
//! unary(Unary::Relu, &[-1.0, 0.0, 2.0], &mut r).unwrap();
//! assert_eq!(r, [0.0, 0.0, 2.0]);
//! ```

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::shape::{Shape, MAX_RANK};

// ---------------------------------------------------------------------------------
// Unary ops
// ---------------------------------------------------------------------------------

/// A unary elementwise function `y = f(x)`, activations included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `|x|`; derivative `sign(x)`, 0 at 0 (as PyTorch).
    Abs,
    /// `e^x`
    Exp,
    /// Natural logarithm `ln x`.
    Log,
    /// `sqrt(x)`
    Sqrt,
    /// `x^2`
    Square,
    /// `1 / x`
    Recip,
    /// `x^p` for a constant exponent `p`; derivative `p x^(p-1)` (0 when `p == 0`).
    PowConst(f64),
    /// Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow for large `|x|`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `max(x, 0)`; derivative 0 at 0 (as PyTorch). NaN passes through.
    Relu,
    /// `min(max(x, 0), 6)` (PyTorch's `relu6`, i.e. `hardtanh(x, 0, 6)`); derivative 1
    /// strictly inside `(0, 6)` and 0 elsewhere, at both kinks included (as PyTorch's
    /// `hardtanh_backward`). NaN passes through.
    Relu6,
    /// `x` for `x > 0`, else `slope * x`; derivative `slope` at 0 (as PyTorch).
    LeakyRelu(f64),
    /// `x` (a linear activation).
    Identity,
    /// GELU, exact form (PyTorch's default): `x Phi(x) = x/2 (1 + erf(x / sqrt 2))`.
    Gelu,
    /// SiLU / swish: `x sigmoid(x)`.
    Silu,
}

/// `min(max(x, 0), 6)`; both comparisons are false for NaN, which passes through (as
/// PyTorch's clamp).
#[inline(always)]
fn relu6<T: Scalar>(x: T) -> T {
    let six = T::from_f64_lossy(6.0);
    if x < T::ZERO {
        T::ZERO
    } else if x > six {
        six
    } else {
        x
    }
}

/// ReLU6's derivative as PyTorch's `hardtanh_backward` with bounds 0 and 6: 1 for
/// `0 < x < 6`, else 0 (the kinks themselves, and NaN, get 0).
#[inline(always)]
fn relu6_derivative<T: Scalar>(x: T) -> T {
    if x > T::ZERO && x < T::from_f64_lossy(6.0) {
        T::ONE
    } else {
        T::ZERO
    }
}

/// `1 / sqrt(2 pi)`, the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Numerically stable logistic sigmoid: never evaluates `e^t` for a large positive `t`.
#[inline(always)]
fn sigmoid<T: Scalar>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// The standard normal CDF `Phi(x) = (1 + erf(x / sqrt 2)) / 2`, through libm's `erf`
/// in f64 (num-traits' `Float` has no erf).
#[inline]
fn normal_cdf<T: Scalar>(x: T) -> T {
    let v = x.to_f64_lossless();
    T::from_f64_lossy(0.5 * (1.0 + libm::erf(v * core::f64::consts::FRAC_1_SQRT_2)))
}

impl Unary {
    /// The op's name as error messages show it, e.g. `"exp"`.
    pub fn name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Sqrt => "sqrt",
            Unary::Square => "square",
            Unary::Recip => "recip",
            Unary::PowConst(_) => "pow_const",
            Unary::Sigmoid => "sigmoid",
            Unary::Tanh => "tanh",
            Unary::Relu => "relu",
            Unary::Relu6 => "relu6",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Identity => "identity",
            Unary::Gelu => "gelu",
            Unary::Silu => "silu",
        }
    }

    /// The name of the op's backward pass, e.g. `"exp_backward"`.
    pub fn backward_name(self) -> &'static str {
        match self {
            Unary::Neg => "neg_backward",
            Unary::Abs => "abs_backward",
            Unary::Exp => "exp_backward",
            Unary::Log => "log_backward",
            Unary::Sqrt => "sqrt_backward",
            Unary::Square => "square_backward",
            Unary::Recip => "recip_backward",
            Unary::PowConst(_) => "pow_const_backward",
            Unary::Sigmoid => "sigmoid_backward",
            Unary::Tanh => "tanh_backward",
            Unary::Relu => "relu_backward",
            Unary::Relu6 => "relu6_backward",
            Unary::LeakyRelu(_) => "leaky_relu_backward",
            Unary::Identity => "identity_backward",
            Unary::Gelu => "gelu_backward",
            Unary::Silu => "silu_backward",
        }
    }

    /// `f(x)` for one element.
    #[inline(always)]
    pub fn apply<T: Scalar>(self, x: T) -> T {
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Sqrt => x.sqrt(),
            Unary::Square => x * x,
            Unary::Recip => T::ONE / x,
            Unary::PowConst(p) => x.powf(T::from_f64_lossy(p)),
            Unary::Sigmoid => sigmoid(x),
            Unary::Tanh => x.tanh(),
            // `x < 0` is false for NaN, so NaN passes through as in PyTorch.
            Unary::Relu => {
                if x < T::ZERO {
                    T::ZERO
                } else {
                    x
                }
            }
            Unary::Relu6 => relu6(x),
            Unary::LeakyRelu(slope) => {
                if x > T::ZERO {
                    x
                } else {
                    x * T::from_f64_lossy(slope)
                }
            }
            Unary::Identity => x,
            Unary::Gelu => x * normal_cdf(x),
            Unary::Silu => x * sigmoid(x),
        }
    }

    /// `f'(x)` for one element, given `x` and `y = f(x)` (sigmoid, tanh, exp, sqrt and
    /// recip read `y` instead of recomputing).
    #[inline(always)]
    pub fn derivative<T: Scalar>(self, x: T, y: T) -> T {
        let half = T::from_f64_lossy(0.5);
        match self {
            // d(-x) = -1
            Unary::Neg => -T::ONE,
            // d|x| = sign(x), 0 at the kink
            Unary::Abs => {
                if x > T::ZERO {
                    T::ONE
                } else if x < T::ZERO {
                    -T::ONE
                } else {
                    T::ZERO
                }
            }
            // d e^x = e^x = y
            Unary::Exp => y,
            // d ln x = 1/x
            Unary::Log => T::ONE / x,
            // d sqrt(x) = 1 / (2 sqrt x) = 0.5 / y
            Unary::Sqrt => half / y,
            // d x^2 = 2x
            Unary::Square => x + x,
            // d (1/x) = -1/x^2 = -y^2
            Unary::Recip => -(y * y),
            // d x^p = p x^(p-1); PyTorch gives 0 for p == 0 (even at x == 0)
            Unary::PowConst(p) => {
                if p == 0.0 {
                    T::ZERO
                } else {
                    T::from_f64_lossy(p) * x.powf(T::from_f64_lossy(p - 1.0))
                }
            }
            // d sigma = sigma (1 - sigma)
            Unary::Sigmoid => y * (T::ONE - y),
            // d tanh = 1 - tanh^2
            Unary::Tanh => T::ONE - y * y,
            // 1 for x > 0, else 0 (0 at the kink)
            Unary::Relu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            // 1 strictly inside (0, 6), else 0 (0 at both kinks, and for NaN)
            Unary::Relu6 => relu6_derivative(x),
            // 1 for x > 0, else slope (slope at the kink)
            Unary::LeakyRelu(slope) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64_lossy(slope)
                }
            }
            Unary::Identity => T::ONE,
            // d (x Phi(x)) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi)
            Unary::Gelu => {
                let pdf = T::from_f64_lossy(INV_SQRT_2PI) * (-(x * x) * half).exp();
                normal_cdf(x) + x * pdf
            }
            // d (x s(x)) = s + x s (1 - s)
            Unary::Silu => {
                let s = sigmoid(x);
                s * (T::ONE + x * (T::ONE - s))
            }
        }
    }
}

/// Checks that a buffer has `expected` elements.
#[inline]
pub(crate) fn check_len(
    op: &'static str,
    what: &'static str,
    expected: usize,
    actual: usize,
) -> Result<()> {
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

/// `out[i] = f(x[i])`; lengths are equal (checked by the caller).
#[inline(always)]
fn map_into<T: Scalar>(x: &[T], out: &mut [T], f: impl Fn(T) -> T) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

#[inline(always)]
fn map_inplace<T: Scalar>(x: &mut [T], f: impl Fn(T) -> T) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}

/// Runs `$run!(closure)` with a closure specialised to the op, so the cheap ops get
/// their own monomorphized loop that auto-vectorizes; the rest share one loop.
macro_rules! dispatch_unary {
    ($op:expr, $run:ident) => {
        match $op {
            Unary::Neg => $run!(|v: T| -v),
            Unary::Abs => $run!(|v: T| v.abs()),
            Unary::Square => $run!(|v: T| v * v),
            Unary::Relu => $run!(|v: T| if v < T::ZERO { T::ZERO } else { v }),
            Unary::Relu6 => $run!(relu6::<T>),
            Unary::Identity => $run!(|v: T| v),
            Unary::LeakyRelu(s) => {
                let s = T::from_f64_lossy(s);
                $run!(|v: T| if v > T::ZERO { v } else { v * s })
            }
            op => $run!(move |v: T| op.apply(v)),
        }
    };
}

/// `out = f(x)` elementwise. Errors if the lengths differ.
/// Large inputs are split over the gemm's threads (each element is computed the same
/// way on any thread).
pub fn unary<T: Scalar>(op: Unary, x: &[T], out: &mut [T]) -> Result<()> {
    check_len(op.name(), "output", x.len(), out.len())?;
    crate::par::for_each_block(out, 1, &|first, out| {
        unary_serial(op, &x[first..first + out.len()], out);
    });
    Ok(())
}

fn unary_serial<T: Scalar>(op: Unary, x: &[T], out: &mut [T]) {
    if matches!(op, Unary::Sigmoid | Unary::Tanh | Unary::Exp) {
        out.copy_from_slice(x);
        unary_inplace_serial(op, out);
        return;
    }
    macro_rules! run {
        ($f:expr) => {
            map_into(x, out, $f)
        };
    }
    dispatch_unary!(op, run);
}

/// `x = f(x)` elementwise, in place (split over threads as [`unary`]).
pub fn unary_inplace<T: Scalar>(op: Unary, x: &mut [T]) {
    crate::par::for_each_block(x, 1, &|_, x| {
        unary_inplace_serial(op, x);
    });
}

/// `e^x` in place: the vectorized exp where it is accurate (within 2e-7 relative on
/// `[-87.3, 88.3]`), the exact one elsewhere, so overflow still gives infinity and
/// tiny results are denormals rather than 0, as with `T::exp`.
fn exp_inplace<T: Scalar>(x: &mut [T]) {
    const CHUNK: usize = 64;
    let (lo, hi) = (T::from_f64_lossy(-87.3), T::from_f64_lossy(88.3));
    let mut orig = [T::ZERO; CHUNK];
    for c in x.chunks_mut(CHUNK) {
        let orig = &mut orig[..c.len()];
        orig.copy_from_slice(c);
        crate::vmath::exp_inplace(c);
        // One vectorizable pass decides whether the rare fix-up runs (NaN is left to
        // the vectorized exp, which keeps it).
        if orig.iter().fold(false, |bad, &v| bad | (v < lo) | (v > hi)) {
            for (y, &v) in c.iter_mut().zip(orig.iter()) {
                if v < lo || v > hi {
                    *y = v.exp();
                }
            }
        }
    }
}

fn unary_inplace_serial<T: Scalar>(op: Unary, x: &mut [T]) {
    // The vectorized versions (exact for f64; for f32 within 3e-7, saturating
    // exactly as these functions do, NaN in gives NaN out): libm per element is
    // twenty times slower.
    match op {
        Unary::Sigmoid => return crate::vmath::sigmoid_inplace(x),
        Unary::Tanh => return crate::vmath::tanh_inplace(x),
        Unary::Exp => return exp_inplace(x),
        _ => {}
    }
    macro_rules! run {
        ($f:expr) => {
            map_inplace(x, $f)
        };
    }
    dispatch_unary!(op, run);
}

/// Backward of a unary op: `dx += dy * f'(x)` (accumulates), where `y = f(x)` is the
/// forward output. All four buffers must have the same length.
pub fn unary_backward<T: Scalar>(
    op: Unary,
    x: &[T],
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) -> Result<()> {
    let name = op.backward_name();
    check_len(name, "y", x.len(), y.len())?;
    check_len(name, "dy", x.len(), dy.len())?;
    check_len(name, "dx", x.len(), dx.len())?;
    crate::par::for_each_block(dx, 1, &|first, dx| {
        let end = first + dx.len();
        unary_backward_serial(op, &x[first..end], &y[first..end], &dy[first..end], dx);
    });
    Ok(())
}

fn unary_backward_serial<T: Scalar>(op: Unary, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
    macro_rules! run {
        ($d:expr) => {{
            let d = $d;
            for (((g, &xv), &yv), &gy) in dx.iter_mut().zip(x).zip(y).zip(dy) {
                *g = *g + gy * d(xv, yv);
            }
        }};
    }
    // The common activations get a loop of their own (so it vectorizes); the rest
    // share one with the op matched per element.
    match op {
        Unary::Relu => run!(|xv: T, _: T| if xv > T::ZERO { T::ONE } else { T::ZERO }),
        Unary::Relu6 => run!(|xv: T, _: T| relu6_derivative(xv)),
        Unary::Identity => run!(|_: T, _: T| T::ONE),
        Unary::Sigmoid => run!(|_: T, yv: T| yv * (T::ONE - yv)),
        Unary::Tanh => run!(|_: T, yv: T| T::ONE - yv * yv),
        Unary::Exp => run!(|_: T, yv: T| yv),
        op => run!(move |xv: T, yv: T| op.derivative(xv, yv)),
    }
}

// ---------------------------------------------------------------------------------
// Broadcast iteration
// ---------------------------------------------------------------------------------

/// Walks the row-major iteration space `dims` one row at a time, for `K` operands that
/// address it through their own `strides` (0 along broadcast dimensions).
///
/// Before walking, dimensions of size 1 are dropped and neighbouring dimensions that
/// are contiguous in every operand are merged, so equal shapes become one row, a
/// scalar operand a row with stride 0, and `[n, c] + [c]` `n` rows of `c`.
/// `f(offsets, len, inner_strides)` gets each operand's offset of the row start, the
/// row length and each operand's stride along the row. Nothing is called when the
/// space is empty; a rank-0 space is one row of length 1.
pub(crate) fn for_each_row<const K: usize>(
    dims: &[usize],
    strides: &[[usize; MAX_RANK]; K],
    mut f: impl FnMut(&[usize; K], usize, &[usize; K]),
) {
    let Some((r, cd, cs)) = coalesce(dims, strides) else {
        return;
    };
    if r == 0 {
        f(&[0; K], 1, &[0; K]);
        return;
    }
    let len = cd[r - 1];
    let inner: [usize; K] = core::array::from_fn(|k| cs[k][r - 1]);
    let outer_rank = r - 1;
    let mut idx = [0usize; MAX_RANK];
    let mut off = [0usize; K];
    loop {
        f(&off, len, &inner);
        // Odometer increment over the outer dimensions, updating offsets incrementally.
        let mut ax = outer_rank;
        loop {
            if ax == 0 {
                return;
            }
            ax -= 1;
            idx[ax] += 1;
            for k in 0..K {
                off[k] += cs[k][ax];
            }
            if idx[ax] < cd[ax] {
                break;
            }
            for k in 0..K {
                off[k] -= cs[k][ax] * cd[ax];
            }
            idx[ax] = 0;
        }
    }
}

/// Drops dimensions of size 1 and merges neighbours that are contiguous in every
/// operand: returns the reduced rank, dimensions and per-operand strides, or `None`
/// for an empty space.
#[allow(clippy::type_complexity)]
pub(crate) fn coalesce<const K: usize>(
    dims: &[usize],
    strides: &[[usize; MAX_RANK]; K],
) -> Option<(usize, [usize; MAX_RANK], [[usize; MAX_RANK]; K])> {
    if dims.contains(&0) {
        return None;
    }
    let mut cd = [0usize; MAX_RANK];
    let mut cs = [[0usize; MAX_RANK]; K];
    let mut r = 0;
    for (axis, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = r > 0 && (0..K).all(|k| cs[k][r - 1] == strides[k][axis] * d);
        if mergeable {
            cd[r - 1] *= d;
            for k in 0..K {
                cs[k][r - 1] = strides[k][axis];
            }
        } else {
            cd[r] = d;
            for k in 0..K {
                cs[k][r] = strides[k][axis];
            }
            r += 1;
        }
    }
    Some((r, cd, cs))
}

/// Contiguous row-major strides of `shape`, as an operand of its own iteration space.
#[inline]
pub(crate) fn own_strides(shape: &Shape) -> [usize; MAX_RANK] {
    shape.strides()
}

// ---------------------------------------------------------------------------------
// Binary ops
// ---------------------------------------------------------------------------------

/// A binary elementwise function `y = f(a, b)`, broadcasting as NumPy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `max(a, b)`, NaN-propagating (as `torch.maximum`); on ties the gradient is
    /// split evenly between the two inputs, as PyTorch does.
    Max,
    /// `min(a, b)`, NaN-propagating (as `torch.minimum`); ties split the gradient.
    Min,
    /// `a ^ b`
    Pow,
}

impl Binary {
    /// The op's name as error messages show it, e.g. `"add"`.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Max => "maximum",
            Binary::Min => "minimum",
            Binary::Pow => "pow",
        }
    }

    /// The name of the op's backward pass, e.g. `"add_backward"`.
    pub fn backward_name(self) -> &'static str {
        match self {
            Binary::Add => "add_backward",
            Binary::Sub => "sub_backward",
            Binary::Mul => "mul_backward",
            Binary::Div => "div_backward",
            Binary::Max => "maximum_backward",
            Binary::Min => "minimum_backward",
            Binary::Pow => "pow_backward",
        }
    }

    /// `f(a, b)` for one pair of elements.
    #[inline(always)]
    pub fn apply<T: Scalar>(self, a: T, b: T) -> T {
        match self {
            Binary::Add => a + b,
            Binary::Sub => a - b,
            Binary::Mul => a * b,
            Binary::Div => a / b,
            Binary::Max => max_nan(a, b),
            Binary::Min => min_nan(a, b),
            Binary::Pow => a.powf(b),
        }
    }

    /// `(df/da, df/db)` at one pair of elements.
    #[inline(always)]
    pub fn partials<T: Scalar>(self, a: T, b: T) -> (T, T) {
        (self.partial_a(a, b), self.partial_b(a, b))
    }

    /// `df/da` at `(a, b)`.
    #[inline(always)]
    fn partial_a<T: Scalar>(self, a: T, b: T) -> T {
        match self {
            // d(a + b)/da = 1, d(a - b)/da = 1
            Binary::Add | Binary::Sub => T::ONE,
            // d(ab)/da = b
            Binary::Mul => b,
            // d(a/b)/da = 1/b
            Binary::Div => T::ONE / b,
            Binary::Max => tie_split(a > b, a == b),
            Binary::Min => tie_split(a < b, a == b),
            // d(a^b)/da = b a^(b-1); PyTorch gives 0 for b == 0 (even at a == 0)
            Binary::Pow => {
                if b == T::ZERO {
                    T::ZERO
                } else {
                    b * a.powf(b - T::ONE)
                }
            }
        }
    }

    /// `df/db` at `(a, b)`.
    #[inline(always)]
    fn partial_b<T: Scalar>(self, a: T, b: T) -> T {
        match self {
            Binary::Add => T::ONE,
            Binary::Sub => -T::ONE,
            Binary::Mul => a,
            // d(a/b)/db = -a/b^2
            Binary::Div => -a / (b * b),
            Binary::Max => tie_split(b > a, a == b),
            Binary::Min => tie_split(b < a, a == b),
            // d(a^b)/db = a^b ln a; PyTorch gives 0 where a == 0 and b >= 0
            Binary::Pow => {
                if a == T::ZERO && b >= T::ZERO {
                    T::ZERO
                } else {
                    a.powf(b) * a.ln()
                }
            }
        }
    }
}

/// `max(a, b)` that returns NaN if either is NaN (core's `max` drops NaN).
#[inline(always)]
fn max_nan<T: Scalar>(a: T, b: T) -> T {
    if a > b || a.is_nan() {
        a
    } else {
        b
    }
}

/// `min(a, b)` that returns NaN if either is NaN.
#[inline(always)]
fn min_nan<T: Scalar>(a: T, b: T) -> T {
    if a < b || a.is_nan() {
        a
    } else {
        b
    }
}

/// Gradient share of a max/min input: all of it when it won, half on a tie.
#[inline(always)]
fn tie_split<T: Scalar>(wins: bool, tie: bool) -> T {
    if wins {
        T::ONE
    } else if tie {
        T::from_f64_lossy(0.5)
    } else {
        T::ZERO
    }
}

/// Runs `$run!(closure)` with `f(a, b)` specialised to the op.
macro_rules! dispatch_binary {
    ($op:expr, $run:ident) => {
        match $op {
            Binary::Add => $run!(|x: T, y: T| x + y),
            Binary::Sub => $run!(|x: T, y: T| x - y),
            Binary::Mul => $run!(|x: T, y: T| x * y),
            Binary::Div => $run!(|x: T, y: T| x / y),
            Binary::Max => $run!(max_nan::<T>),
            Binary::Min => $run!(min_nan::<T>),
            Binary::Pow => $run!(|x: T, y: T| x.powf(y)),
        }
    };
}

/// `out = f(a, b)` with NumPy broadcasting; returns the output shape.
///
/// `a` and `b` hold `a_shape` and `b_shape` (row-major); `out` must hold the
/// broadcast shape. Errors (naming the op and both shapes) if the shapes do not
/// broadcast, or if a buffer's length disagrees with its shape.
pub fn binary<T: Scalar>(
    op: Binary,
    a: &[T],
    a_shape: &Shape,
    b: &[T],
    b_shape: &Shape,
    out: &mut [T],
) -> Result<Shape> {
    let name = op.name();
    let shape = a_shape.broadcast(b_shape, name)?;
    check_len(name, "lhs", a_shape.numel(), a.len())?;
    check_len(name, "rhs", b_shape.numel(), b.len())?;
    check_len(name, "output", shape.numel(), out.len())?;
    macro_rules! run {
        ($f:expr) => {
            binary_loop(a, a_shape, b, b_shape, &shape, out, $f)
        };
    }
    dispatch_binary!(op, run);
    Ok(shape)
}

/// The broadcasting loop of [`binary`] for one op (lengths already checked).
#[inline(always)]
fn binary_loop<T: Scalar, F: Fn(T, T) -> T + Sync>(
    a: &[T],
    a_shape: &Shape,
    b: &[T],
    b_shape: &Shape,
    shape: &Shape,
    out: &mut [T],
    f: F,
) {
    let n = out.len();
    // Fast paths, split over threads when large: an operand with as many elements as
    // the output has its layout (broadcasting only inserted dimensions of size 1); a
    // one-element operand is a scalar; an operand that is one row of the output's
    // last dimension (a bias) repeats along the rows.
    let whole = |x: &[T], y: &[T]| x.len() == n && (y.len() == n || y.len() == 1);
    if whole(a, b) || whole(b, a) {
        crate::par::for_each_block(out, 1, &|first, out| {
            let end = first + out.len();
            match (a.len() == n, b.len() == n) {
                (true, true) => {
                    for ((o, &x), &y) in out.iter_mut().zip(&a[first..end]).zip(&b[first..end]) {
                        *o = f(x, y);
                    }
                }
                (true, false) => {
                    for (o, &x) in out.iter_mut().zip(&a[first..end]) {
                        *o = f(x, b[0]);
                    }
                }
                _ => {
                    for (o, &y) in out.iter_mut().zip(&b[first..end]) {
                        *o = f(a[0], y);
                    }
                }
            }
        });
        return;
    }
    let cols = shape.dims().last().copied().unwrap_or(1);
    let is_row = |x: &[T], s: &Shape| x.len() == cols && s.dims().last() == Some(&cols);
    if cols > 1 && ((a.len() == n && is_row(b, b_shape)) || (b.len() == n && is_row(a, a_shape))) {
        crate::par::for_each_block(out, cols, &|first, out| {
            let full = &(if a.len() == n { a } else { b })[first * cols..];
            for (o_row, f_row) in out.chunks_exact_mut(cols).zip(full.chunks_exact(cols)) {
                if a.len() == n {
                    for ((o, &x), &y) in o_row.iter_mut().zip(f_row).zip(b) {
                        *o = f(x, y);
                    }
                } else {
                    for ((o, &x), &y) in o_row.iter_mut().zip(a).zip(f_row) {
                        *o = f(x, y);
                    }
                }
            }
        });
        return;
    }
    let strides = [
        a_shape.broadcast_strides(shape),
        b_shape.broadcast_strides(shape),
        own_strides(shape),
    ];
    for_each_row(shape.dims(), &strides, |off, len, inner| {
        let out_row = &mut out[off[2]..off[2] + len];
        match (inner[0], inner[1]) {
            (1, 1) => {
                for ((o, &x), &y) in out_row
                    .iter_mut()
                    .zip(&a[off[0]..off[0] + len])
                    .zip(&b[off[1]..off[1] + len])
                {
                    *o = f(x, y);
                }
            }
            (1, 0) => {
                let y = b[off[1]];
                for (o, &x) in out_row.iter_mut().zip(&a[off[0]..off[0] + len]) {
                    *o = f(x, y);
                }
            }
            (0, 1) => {
                let x = a[off[0]];
                for (o, &y) in out_row.iter_mut().zip(&b[off[1]..off[1] + len]) {
                    *o = f(x, y);
                }
            }
            (sa, sb) => {
                for (i, o) in out_row.iter_mut().enumerate() {
                    *o = f(a[off[0] + i * sa], b[off[1] + i * sb]);
                }
            }
        }
    });
}

/// Backward of [`binary`]: accumulates `da += sum_broadcast(dy * df/da)` and
/// `db += sum_broadcast(dy * df/db)`, each reduced back to its input's shape (summed
/// over the axes broadcasting expanded). Pass `None` for a gradient not needed.
///
/// `dy` holds the broadcast output shape; `da`/`db` hold `a_shape`/`b_shape`.
#[allow(clippy::too_many_arguments)]
pub fn binary_backward<T: Scalar>(
    op: Binary,
    a: &[T],
    a_shape: &Shape,
    b: &[T],
    b_shape: &Shape,
    dy: &[T],
    da: Option<&mut [T]>,
    db: Option<&mut [T]>,
) -> Result<()> {
    let name = op.backward_name();
    let shape = a_shape.broadcast(b_shape, name)?;
    check_len(name, "lhs", a_shape.numel(), a.len())?;
    check_len(name, "rhs", b_shape.numel(), b.len())?;
    check_len(name, "dy", shape.numel(), dy.len())?;
    if let Some(da) = &da {
        check_len(name, "lhs gradient", a.len(), da.len())?;
    }
    if let Some(db) = &db {
        check_len(name, "rhs gradient", b.len(), db.len())?;
    }
    let operands = Operands {
        a,
        b,
        dy,
        strides: [
            a_shape.broadcast_strides(&shape),
            b_shape.broadcast_strides(&shape),
            own_strides(&shape),
        ],
        shape: &shape,
    };
    if let Some(da) = da {
        match op {
            Binary::Add | Binary::Sub => operands.accumulate(da, 0, |_: T, _: T| T::ONE),
            Binary::Mul => operands.accumulate(da, 0, |_: T, y: T| y),
            op => operands.accumulate(da, 0, move |x: T, y: T| op.partial_a(x, y)),
        }
    }
    if let Some(db) = db {
        match op {
            Binary::Add => operands.accumulate(db, 1, |_: T, _: T| T::ONE),
            Binary::Sub => operands.accumulate(db, 1, |_: T, _: T| -T::ONE),
            Binary::Mul => operands.accumulate(db, 1, |x: T, _: T| x),
            op => operands.accumulate(db, 1, move |x: T, y: T| op.partial_b(x, y)),
        }
    }
    Ok(())
}

/// The inputs of a binary backward pass, with their strides in the output's frame.
struct Operands<'a, T> {
    a: &'a [T],
    b: &'a [T],
    dy: &'a [T],
    /// Strides of `a`, `b` and `dy` in the broadcast shape.
    strides: [[usize; MAX_RANK]; 3],
    shape: &'a Shape,
}

impl<T: Scalar> Operands<'_, T> {
    /// `g += sum_broadcast(dy * d(a, b))`, where `g` has the shape of operand `which`
    /// (0 for `a`, 1 for `b`).
    #[inline(always)]
    fn accumulate(&self, g: &mut [T], which: usize, d: impl Fn(T, T) -> T) {
        let (a, b, dy) = (self.a, self.b, self.dy);
        if a.len() == dy.len() && b.len() == dy.len() {
            for (((gi, &x), &y), &gy) in g.iter_mut().zip(a).zip(b).zip(dy) {
                *gi = *gi + gy * d(x, y);
            }
            return;
        }
        for_each_row(self.shape.dims(), &self.strides, |off, len, inner| {
            let (oa, ob, oy) = (off[0], off[1], off[2]);
            let (sa, sb) = (inner[0], inner[1]);
            let (og, sg) = (off[which], inner[which]);
            let dy_row = &dy[oy..oy + len];
            // Rows read each operand either contiguously (stride 1) or as one
            // repeated value (stride 0); each combination gets a loop over slices
            // and `repeat` so that it vectorizes.
            macro_rules! with_rows {
                (|$ai:ident, $bi:ident| $body:expr) => {
                    match (sa, sb) {
                        (1, 1) => {
                            let $ai = a[oa..oa + len].iter().copied();
                            let $bi = b[ob..ob + len].iter().copied();
                            $body
                        }
                        (1, 0) => {
                            let $ai = a[oa..oa + len].iter().copied();
                            let $bi = core::iter::repeat(b[ob]);
                            $body
                        }
                        (0, 1) => {
                            let $ai = core::iter::repeat(a[oa]);
                            let $bi = b[ob..ob + len].iter().copied();
                            $body
                        }
                        _ => {
                            let $ai = (0..len).map(|i| a[oa + i * sa]);
                            let $bi = (0..len).map(|i| b[ob + i * sb]);
                            $body
                        }
                    }
                };
            }
            if sg == 0 {
                // The whole row reduces into one gradient element.
                let acc = with_rows!(|ai, bi| row_sum(dy_row, ai, bi, &d));
                g[og] = g[og] + acc;
            } else if sg == 1 {
                let g_row = &mut g[og..og + len];
                with_rows!(|ai, bi| row_accumulate(g_row, dy_row, ai, bi, &d));
            } else {
                // Not produced by contiguous operands (their row stride is 0 or 1);
                // kept so any stride stays correct.
                for (i, &gy) in dy_row.iter().enumerate() {
                    let gi = &mut g[og + i * sg];
                    *gi = *gi + gy * d(a[oa + i * sa], b[ob + i * sb]);
                }
            }
        });
    }
}

/// `sum_i dy_i d(a_i, b_i)` over one row.
#[inline(always)]
fn row_sum<T: Scalar>(
    dy: &[T],
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T>,
    d: &impl Fn(T, T) -> T,
) -> T {
    let mut acc = T::ZERO;
    for ((&gy, x), y) in dy.iter().zip(a).zip(b) {
        acc = acc + gy * d(x, y);
    }
    acc
}

/// `g_i += dy_i d(a_i, b_i)` over one row.
#[inline(always)]
fn row_accumulate<T: Scalar>(
    g: &mut [T],
    dy: &[T],
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T>,
    d: &impl Fn(T, T) -> T,
) {
    for (((gi, &gy), x), y) in g.iter_mut().zip(dy).zip(a).zip(b) {
        *gi = *gi + gy * d(x, y);
    }
}

// ---------------------------------------------------------------------------------
// Vector helpers
// ---------------------------------------------------------------------------------

/// `y += alpha * x` (BLAS axpy). Errors if the lengths differ.
pub fn axpy<T: Scalar>(alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
    check_len("axpy", "y", x.len(), y.len())?;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = *yi + alpha * xi;
    }
    Ok(())
}

/// `x *= alpha`.
pub fn scale<T: Scalar>(alpha: T, x: &mut [T]) {
    for v in x {
        *v = *v * alpha;
    }
}

/// Sets every element of `x` to `value`.
pub fn fill<T: Scalar>(x: &mut [T], value: T) {
    x.fill(value);
}

/// `y += x` elementwise. Errors if the lengths differ.
pub fn add_assign<T: Scalar>(y: &mut [T], x: &[T]) -> Result<()> {
    check_len("add_assign", "x", y.len(), x.len())?;
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = *yi + xi;
    }
    Ok(())
}

/// The inner product `sum_i x_i y_i`. Errors if the lengths differ.
pub fn dot<T: Scalar>(x: &[T], y: &[T]) -> Result<T> {
    check_len("dot", "y", x.len(), y.len())?;
    Ok(dot_kernel(x, y))
}

/// Lanes of the multi-accumulator reductions: enough independent sums to fill the
/// SIMD registers and hide the add latency (LLVM does not reassociate float sums).
pub(crate) const LANES: usize = 16;

/// Sums `f(x_i, y_i)` over equal-length slices with [`LANES`] independent
/// accumulators, so the loop vectorizes.
#[inline(always)]
pub(crate) fn lane_sum2<T: Scalar>(x: &[T], y: &[T], f: impl Fn(T, T) -> T) -> T {
    debug_assert_eq!(x.len(), y.len());
    let mut acc = [T::ZERO; LANES];
    let cx = x.chunks_exact(LANES);
    let cy = y.chunks_exact(LANES);
    let (rx, ry) = (cx.remainder(), cy.remainder());
    for (bx, by) in cx.zip(cy) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(bx[l], by[l]);
        }
    }
    let mut tail = T::ZERO;
    for (&u, &v) in rx.iter().zip(ry) {
        tail = tail + f(u, v);
    }
    tree_sum(&acc) + tail
}

/// Sums the lanes pairwise (the same rounding on every call).
#[inline(always)]
pub(crate) fn tree_sum<T: Scalar>(acc: &[T; LANES]) -> T {
    let mut v = *acc;
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            v[l] = v[l] + v[l + w];
        }
    }
    v[0]
}

/// Unchecked inner product (equal lengths).
#[inline]
pub(crate) fn dot_kernel<T: Scalar>(x: &[T], y: &[T]) -> T {
    lane_sum2(x, y, |u, v| u * v)
}

// ---------------------------------------------------------------------------------
// Tensor methods
// ---------------------------------------------------------------------------------

#[cfg(feature = "alloc")]
mod tensor_ops {
    use super::*;
    use crate::tensor::Tensor;
    use alloc::vec;

    impl<T: Scalar> Tensor<T> {
        /// `f(self, rhs)` elementwise with NumPy broadcasting.
        pub fn binary_op(&self, op: Binary, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            let shape = self.shape().broadcast(rhs.shape(), op.name())?;
            let mut data = vec![T::ZERO; shape.numel()];
            binary(
                op,
                self.data(),
                self.shape(),
                rhs.data(),
                rhs.shape(),
                &mut data,
            )?;
            Tensor::from_shape_vec(shape, data)
        }

        /// `self + rhs` with broadcasting.
        ///
        /// ```
        /// use dl_core::Tensor;
        /// let x = Tensor::from_rows([[1.0f32, 2.0], [3.0, 4.0]]);
        /// let b = Tensor::from_array([10.0f32, 20.0]);
        /// assert_eq!(x.add(&b).unwrap().data(), &[11.0, 22.0, 13.0, 24.0]);
        /// assert!(x.add(&Tensor::from_array([1.0f32, 2.0, 3.0])).is_err());
        /// ```
        pub fn add(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Add, rhs)
        }

        /// `self - rhs` with broadcasting.
        pub fn sub(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Sub, rhs)
        }

        /// `self * rhs` (elementwise) with broadcasting.
        pub fn mul(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Mul, rhs)
        }

        /// `self / rhs` (elementwise) with broadcasting.
        pub fn div(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Div, rhs)
        }

        /// Elementwise `max(self, rhs)` with broadcasting (NaN-propagating).
        pub fn maximum(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Max, rhs)
        }

        /// Elementwise `min(self, rhs)` with broadcasting (NaN-propagating).
        pub fn minimum(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Min, rhs)
        }

        /// Elementwise `self ^ rhs` with broadcasting.
        pub fn pow(&self, rhs: &Tensor<T>) -> Result<Tensor<T>> {
            self.binary_op(Binary::Pow, rhs)
        }

        /// `self + s` for a scalar `s`.
        pub fn add_scalar(&self, s: T) -> Tensor<T> {
            self.map(|v| v + s)
        }

        /// `self * s` for a scalar `s`.
        pub fn mul_scalar(&self, s: T) -> Tensor<T> {
            let mut out = self.clone();
            scale(s, out.data_mut());
            out
        }

        /// `f(self)` elementwise.
        pub fn map_unary(&self, op: Unary) -> Tensor<T> {
            let mut out = self.clone();
            unary_inplace(op, out.data_mut());
            out
        }

        /// `-self`.
        pub fn neg(&self) -> Tensor<T> {
            self.map_unary(Unary::Neg)
        }

        /// `|self|`.
        pub fn abs(&self) -> Tensor<T> {
            self.map_unary(Unary::Abs)
        }

        /// `e^self`.
        pub fn exp(&self) -> Tensor<T> {
            self.map_unary(Unary::Exp)
        }

        /// Natural logarithm.
        pub fn log(&self) -> Tensor<T> {
            self.map_unary(Unary::Log)
        }

        /// Square root.
        pub fn sqrt(&self) -> Tensor<T> {
            self.map_unary(Unary::Sqrt)
        }

        /// `self^2`.
        pub fn square(&self) -> Tensor<T> {
            self.map_unary(Unary::Square)
        }

        /// `1 / self`.
        pub fn recip(&self) -> Tensor<T> {
            self.map_unary(Unary::Recip)
        }

        /// `self^p` for a constant `p`.
        pub fn powf(&self, p: f64) -> Tensor<T> {
            self.map_unary(Unary::PowConst(p))
        }

        /// Logistic sigmoid.
        pub fn sigmoid(&self) -> Tensor<T> {
            self.map_unary(Unary::Sigmoid)
        }

        /// Hyperbolic tangent.
        pub fn tanh(&self) -> Tensor<T> {
            self.map_unary(Unary::Tanh)
        }

        /// ReLU, `max(self, 0)`.
        pub fn relu(&self) -> Tensor<T> {
            self.map_unary(Unary::Relu)
        }

        /// ReLU6, `min(max(self, 0), 6)`.
        pub fn relu6(&self) -> Tensor<T> {
            self.map_unary(Unary::Relu6)
        }

        /// Leaky ReLU with negative slope `slope`.
        pub fn leaky_relu(&self, slope: f64) -> Tensor<T> {
            self.map_unary(Unary::LeakyRelu(slope))
        }

        /// GELU (exact erf form).
        pub fn gelu(&self) -> Tensor<T> {
            self.map_unary(Unary::Gelu)
        }

        /// SiLU / swish, `x sigmoid(x)`.
        pub fn silu(&self) -> Tensor<T> {
            self.map_unary(Unary::Silu)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_overflows_to_infinity_and_keeps_denormals() {
        let x = [
            0.0f32,
            1.0,
            -1.0,
            10.0,
            88.5,
            89.0,
            -100.0,
            -104.0,
            f32::NAN,
            -88.0,
        ];
        let mut y = [0.0f32; 10];
        unary(Unary::Exp, &x, &mut y).unwrap();
        for (&v, &e) in x.iter().zip(&y) {
            let want = libm::expf(v);
            if v.is_nan() {
                assert!(e.is_nan());
            } else if (-87.3..=88.3).contains(&v) {
                assert!(
                    (e - want).abs() <= 2e-7 * want,
                    "exp({v}) = {e}, want {want}"
                );
            } else {
                assert_eq!(e.to_bits(), want.to_bits(), "exp({v})");
            }
        }
        assert!(y[5].is_infinite() && y[6] > 0.0 && y[6] < f32::MIN_POSITIVE);
    }

    /// The fast paths (same shape, scalar, a bias row either side), small and split
    /// over threads, agree with the definition element by element.
    #[cfg(feature = "alloc")]
    #[test]
    fn broadcast_fast_paths_match_the_definition() {
        use alloc::vec::Vec;
        let mut rng = crate::rng::Rng::seed_from_u64(6);
        for rows in [3usize, 300] {
            let cols = 257;
            let full: Vec<f32> = (0..rows * cols)
                .map(|_| rng.uniform(-2.0f32, 2.0))
                .collect();
            let other: Vec<f32> = (0..rows * cols)
                .map(|_| rng.uniform(-2.0f32, 2.0))
                .collect();
            let row: Vec<f32> = (0..cols).map(|_| rng.uniform(-2.0f32, 2.0)).collect();
            let s_full = Shape::new(&[rows, cols]).unwrap();
            let cases: [(&[f32], Shape, &[f32], Shape); 5] = [
                (&full, s_full, &other, s_full),
                (&full, s_full, &row, Shape::new(&[cols]).unwrap()),
                (&row, Shape::new(&[1, cols]).unwrap(), &full, s_full),
                (&full, s_full, &row[..1], Shape::scalar()),
                (&row[..1], Shape::new(&[1, 1]).unwrap(), &full, s_full),
            ];
            for (a, sa, b, sb) in cases {
                let mut out = alloc::vec![0.0f32; rows * cols];
                binary(Binary::Sub, a, &sa, b, &sb, &mut out).unwrap();
                for r in 0..rows {
                    for c in 0..cols {
                        let pick = |x: &[f32]| match x.len() {
                            1 => x[0],
                            n if n == cols => x[c],
                            _ => x[r * cols + c],
                        };
                        assert_eq!(
                            out[r * cols + c],
                            pick(a) - pick(b),
                            "{sa} - {sb} at {r},{c}"
                        );
                    }
                }
            }
        }
    }

    /// Large inputs are split over threads: every element comes out as it does
    /// from a small call.
    #[cfg(feature = "alloc")]
    #[test]
    fn split_unary_ops_match_small_calls() {
        use alloc::vec::Vec;
        let n = 3 * crate::par::MIN_ELEMS + 5;
        let mut rng = crate::rng::Rng::seed_from_u64(4);
        let x: Vec<f32> = (0..n).map(|_| rng.uniform(-5.0f32, 5.0)).collect();
        let dy: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0f32, 1.0)).collect();
        for op in [
            Unary::Relu,
            Unary::Sigmoid,
            Unary::Tanh,
            Unary::Exp,
            Unary::Gelu,
        ] {
            let mut big = alloc::vec![0.0f32; n];
            unary(op, &x, &mut big).unwrap();
            let mut inplace = x.clone();
            unary_inplace(op, &mut inplace);
            let mut dx = alloc::vec![0.5f32; n];
            unary_backward(op, &x, &big, &dy, &mut dx).unwrap();
            for i in (0..n).step_by(997) {
                let mut one = [0.0f32];
                unary(op, &x[i..i + 1], &mut one).unwrap();
                assert_eq!(big[i].to_bits(), one[0].to_bits(), "{op:?} at {i}");
                assert_eq!(inplace[i].to_bits(), one[0].to_bits(), "{op:?} at {i}");
                let mut d = [0.5f32];
                unary_backward(op, &x[i..i + 1], &one, &dy[i..i + 1], &mut d).unwrap();
                assert_eq!(dx[i].to_bits(), d[0].to_bits(), "{op:?} at {i}");
            }
        }
    }

    #[test]
    fn activations_match_reference_values() {
        // Phi(1) = 0.8413447460685429, so gelu(1) = Phi(1), gelu(-1) = -(1 - Phi(1)).
        let phi1 = 0.841_344_746_068_542_9;
        assert!((Unary::Gelu.apply(1.0f64) - phi1).abs() < 1e-15);
        assert!((Unary::Gelu.apply(-1.0f64) + (1.0 - phi1)).abs() < 1e-15);
        // sigmoid(1) = 1 / (1 + e^-1) = 0.7310585786300049; silu(2) = 2 sigmoid(2).
        let s1 = 0.731_058_578_630_004_9;
        assert!((Unary::Sigmoid.apply(1.0f64) - s1).abs() < 1e-15);
        assert!((Unary::Silu.apply(2.0f64) - 2.0 * 0.880_797_077_977_882_3).abs() < 1e-15);
        // Large inputs do not overflow.
        assert_eq!(Unary::Sigmoid.apply(-1000.0f32), 0.0);
        assert_eq!(Unary::Sigmoid.apply(1000.0f32), 1.0);
        assert_eq!(Unary::LeakyRelu(0.1).apply(-2.0f64), -0.2);
        assert!(Unary::Relu.apply(f32::NAN).is_nan());
    }

    #[test]
    fn derivatives_at_kinks_follow_pytorch() {
        assert_eq!(Unary::Relu.derivative(0.0f64, 0.0), 0.0);
        assert_eq!(Unary::Abs.derivative(0.0f64, 0.0), 0.0);
        assert_eq!(Unary::LeakyRelu(0.2).derivative(0.0f64, 0.0), 0.2);
        assert_eq!(Unary::PowConst(0.0).derivative(0.0f64, 1.0), 0.0);
        assert_eq!(Binary::Max.partials(1.0f64, 1.0), (0.5, 0.5));
        assert_eq!(Binary::Min.partials(1.0f64, 2.0), (1.0, 0.0));
        assert_eq!(Binary::Pow.partials(0.0f64, 2.0), (0.0, 0.0));
    }

    #[test]
    fn unary_inplace_matches_unary() {
        let x = [-2.0f32, -0.5, 0.0, 0.5, 3.0];
        for op in [
            Unary::Neg,
            Unary::Relu,
            Unary::LeakyRelu(0.01),
            Unary::Exp,
            Unary::Gelu,
        ] {
            let mut a = [0.0f32; 5];
            unary(op, &x, &mut a).unwrap();
            let mut b = x;
            unary_inplace(op, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn binary_broadcasts_scalar_column_and_row() {
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 6];
        // [2, 3] * scalar
        binary(
            Binary::Mul,
            &a,
            &Shape::from([2, 3]),
            &[2.0],
            &Shape::scalar(),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        // [2, 3] - [2, 1] (a column)
        binary(
            Binary::Sub,
            &a,
            &Shape::from([2, 3]),
            &[1.0, 4.0],
            &Shape::from([2, 1]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
        // [3, 1] + [1, 2] -> [3, 2] (an outer sum)
        let s = binary(
            Binary::Add,
            &[1.0, 2.0, 3.0],
            &Shape::from([3, 1]),
            &[10.0, 20.0],
            &Shape::from([1, 2]),
            &mut out,
        )
        .unwrap();
        assert_eq!(s, Shape::from([3, 2]));
        assert_eq!(out, [11.0, 21.0, 12.0, 22.0, 13.0, 23.0]);
    }

    #[test]
    fn binary_backward_reduces_bias_gradient() {
        // y = x + b with x [2, 3], b [3]: db = column sums of dy, dx = dy.
        let x = [0.0f64; 6];
        let b = [0.0f64; 3];
        let dy = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dx = [1.0; 6];
        let mut db = [0.0; 3];
        binary_backward(
            Binary::Add,
            &x,
            &Shape::from([2, 3]),
            &b,
            &Shape::from([3]),
            &dy,
            Some(&mut dx),
            Some(&mut db),
        )
        .unwrap();
        assert_eq!(db, [5.0, 7.0, 9.0]);
        // accumulated onto the 1.0 already there
        assert_eq!(dx, [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    }

    #[test]
    fn errors_name_the_op_and_shapes() {
        let mut out = [0.0f32; 6];
        let e = binary(
            Binary::Add,
            &[0.0; 6],
            &Shape::from([2, 3]),
            &[0.0; 2],
            &Shape::from([2]),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [2] are incompatible (broadcasting needs equal sizes or 1)"
        );
        let e = binary(
            Binary::Mul,
            &[0.0; 5],
            &Shape::from([2, 3]),
            &[0.0; 3],
            &Shape::from([3]),
            &mut out,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "mul: lhs has 5 elements, expected 6");
        let e = binary(
            Binary::Div,
            &[0.0; 6],
            &Shape::from([2, 3]),
            &[0.0; 3],
            &Shape::from([3]),
            &mut out[..4],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "div: output has 4 elements, expected 6");
        let e = binary_backward(
            Binary::Max,
            &[0.0f32; 6],
            &Shape::from([2, 3]),
            &[0.0; 3],
            &Shape::from([1, 2]),
            &[0.0; 6],
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "maximum_backward: shapes [2, 3] and [1, 2] are incompatible (broadcasting needs equal sizes or 1)"
        );
        let mut db = [0.0f32; 2];
        let e = binary_backward(
            Binary::Mul,
            &[0.0f32; 6],
            &Shape::from([2, 3]),
            &[0.0; 3],
            &Shape::from([3]),
            &[0.0; 6],
            None,
            Some(&mut db),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "mul_backward: rhs gradient has 2 elements, expected 3"
        );
        let e = binary_backward(
            Binary::Sub,
            &[0.0f32; 6],
            &Shape::from([2, 3]),
            &[0.0; 3],
            &Shape::from([3]),
            &[0.0; 5],
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "sub_backward: dy has 5 elements, expected 6");
        let e = unary(Unary::Exp, &[0.0f32; 3], &mut out).unwrap_err();
        assert_eq!(e.to_string(), "exp: output has 6 elements, expected 3");
        let e = unary_backward(
            Unary::Tanh,
            &[0.0f32; 3],
            &[0.0; 3],
            &[0.0; 2],
            &mut [0.0; 3],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "tanh_backward: dy has 2 elements, expected 3"
        );
        let e = axpy(2.0f32, &[1.0; 3], &mut out).unwrap_err();
        assert_eq!(e.to_string(), "axpy: y has 6 elements, expected 3");
        let e = add_assign(&mut out, &[1.0; 3]).unwrap_err();
        assert_eq!(e.to_string(), "add_assign: x has 3 elements, expected 6");
        let e = dot(&[1.0f32; 3], &[1.0; 4]).unwrap_err();
        assert_eq!(e.to_string(), "dot: y has 4 elements, expected 3");
    }

    #[test]
    fn vector_helpers() {
        let mut y = [1.0f64, 2.0, 3.0];
        axpy(2.0, &[1.0, 1.0, 1.0], &mut y).unwrap();
        assert_eq!(y, [3.0, 4.0, 5.0]);
        scale(0.5, &mut y);
        assert_eq!(y, [1.5, 2.0, 2.5]);
        add_assign(&mut y, &[0.5, 0.0, -0.5]).unwrap();
        assert_eq!(y, [2.0, 2.0, 2.0]);
        fill(&mut y, 7.0);
        assert_eq!(y, [7.0; 3]);
        // 1*1 + 2*2 + ... + 40*40 = 40*41*81/6 = 22140 (exercises the lanes and tail)
        let v: [f64; 40] = core::array::from_fn(|i| (i + 1) as f64);
        assert_eq!(dot(&v, &v).unwrap(), 22140.0);
    }
}
