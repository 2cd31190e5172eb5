//! Elementwise ops: unary functions and activations (`y = f(x)`, `dx += dy f'(x)`)
//! and binary arithmetic with NumPy broadcasting (gradients summed back to each
//! input's shape). The math of every derivative sits in dl-core's
//! `Unary::derivative` and `Binary::partials`.

use crate::error::Result;
use crate::graph::{BackwardCtx, GradMut, Grads, Graph, Var};
use crate::op::Op;
use dl_core::elementwise::{self as kern, Binary, Unary};
use dl_core::{Scalar, Shape};

impl<T: Scalar> Graph<'_, T> {
    /// `y = f(x)` elementwise for any [`Unary`] function.
    pub fn unary(&mut self, op: Unary, x: Var) -> Result<Var> {
        let shape = self.shape_of(x, op.name())?;
        if let Unary::LeakyRelu(s) | Unary::PowConst(s) = op {
            if !s.is_finite() {
                return Err(crate::error::invalid_parameter(
                    op.name(),
                    "parameter",
                    s,
                    "finite",
                ));
            }
        }
        let mut b = self.begin(shape);
        kern::unary(op, self.val(x).data(), b.value.data_mut())?;
        let needs = self.needs_grad(&[x]);
        Ok(self.finish(Op::Unary { op, x }, b, needs))
    }

    /// `y = f(a, b)` elementwise with NumPy broadcasting, for any [`Binary`]
    /// function. Errors (naming the op and both shapes) if the shapes do not
    /// broadcast.
    pub fn binary(&mut self, op: Binary, a: Var, b: Var) -> Result<Var> {
        let sa = self.shape_of(a, op.name())?;
        let sb = self.shape_of(b, op.name())?;
        let out_shape = sa.broadcast(&sb, op.name())?;
        let mut node = self.begin(out_shape);
        kern::binary(
            op,
            self.val(a).data(),
            &sa,
            self.val(b).data(),
            &sb,
            node.value.data_mut(),
        )?;
        let needs = self.needs_grad(&[a, b]);
        Ok(self.finish(Op::Binary { op, a, b }, node, needs))
    }

    /// `a + b` (broadcasting).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Add, a, b)
    }

    /// `a - b` (broadcasting).
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Sub, a, b)
    }

    /// `a * b` elementwise (broadcasting).
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Mul, a, b)
    }

    /// `a / b` elementwise (broadcasting).
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Div, a, b)
    }

    /// `a ^ b` elementwise (broadcasting); `dy/da = b a^(b-1)`, `dy/db = a^b ln a`.
    pub fn pow(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Pow, a, b)
    }

    /// `max(a, b)` elementwise (broadcasting); ties split the gradient.
    pub fn maximum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Max, a, b)
    }

    /// `min(a, b)` elementwise (broadcasting); ties split the gradient.
    pub fn minimum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(Binary::Min, a, b)
    }

    /// `x * c` for a constant `c`.
    pub fn mul_scalar(&mut self, x: Var, c: T) -> Result<Var> {
        let s = self.scalar(c);
        self.mul(x, s)
    }

    /// `x + c` for a constant `c`.
    pub fn add_scalar(&mut self, x: Var, c: T) -> Result<Var> {
        let s = self.scalar(c);
        self.add(x, s)
    }

    /// `-x`.
    pub fn neg(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Neg, x)
    }

    /// `e^x`.
    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Exp, x)
    }

    /// `ln x`.
    pub fn log(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Log, x)
    }

    /// `sqrt(x)`.
    pub fn sqrt(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Sqrt, x)
    }

    /// `x^2`.
    pub fn square(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Square, x)
    }

    /// `x^p` for a constant exponent `p` (finite).
    pub fn pow_const(&mut self, x: Var, p: f64) -> Result<Var> {
        self.unary(Unary::PowConst(p), x)
    }

    /// `|x|` (gradient 0 at 0, as PyTorch).
    pub fn abs(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Abs, x)
    }

    /// Logistic sigmoid `1 / (1 + e^-x)`.
    pub fn sigmoid(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Sigmoid, x)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Tanh, x)
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Relu, x)
    }

    /// `min(max(x, 0), 6)`; the gradient passes only strictly inside `(0, 6)` (as
    /// PyTorch's `relu6`).
    pub fn relu6(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Relu6, x)
    }

    /// `x` for `x > 0`, else `slope * x` (finite slope).
    pub fn leaky_relu(&mut self, x: Var, slope: f64) -> Result<Var> {
        self.unary(Unary::LeakyRelu(slope), x)
    }

    /// `x` (a linear activation; still a node, so it shows in the graph).
    pub fn identity(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Identity, x)
    }

    /// GELU, exact form: `x Phi(x)`.
    pub fn gelu(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Gelu, x)
    }

    /// SiLU (swish): `x sigmoid(x)`.
    pub fn silu(&mut self, x: Var) -> Result<Var> {
        self.unary(Unary::Silu, x)
    }
}

/// `dx += dy * f'(x)`.
pub(crate) fn unary_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    op: Unary,
    x: Var,
) -> Result<()> {
    let xv = ctx.vals.get(x).data();
    if let Some(dx) = grads.get(x) {
        kern::unary_backward(op, xv, ctx.node.value.data(), ctx.dy, dx.zeroed())?;
    }
    Ok(())
}

/// `da += reduce(dy * df/da)`, `db += reduce(dy * df/db)`; when both inputs are the
/// same node (`x * x`) the two contributions are added one after the other.
pub(crate) fn binary_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    op: Binary,
    a: Var,
    b: Var,
) -> Result<()> {
    let (av, bv) = (ctx.vals.get(a), ctx.vals.get(b));
    let (ad, sa, bd, sb) = (av.data(), av.shape(), bv.data(), bv.shape());
    if a == b {
        if let Some(da) = grads.get(a) {
            let da = da.zeroed();
            kern::binary_backward(op, ad, sa, bd, sb, ctx.dy, Some(&mut *da), None)?;
            kern::binary_backward(op, ad, sa, bd, sb, ctx.dy, None, Some(da))?;
        }
        return Ok(());
    }
    let (da, db) = grads.get2(a, b);
    // Add / Sub into a fresh gradient of the output's own shape is just `+-dy`:
    // write it directly instead of zero-filling and accumulating.
    let out_shape = ctx.node.value.shape();
    let (da, db) = match op {
        Binary::Add => (
            write_direct(da, sa, out_shape, ctx.dy, false),
            write_direct(db, sb, out_shape, ctx.dy, false),
        ),
        Binary::Sub => (
            write_direct(da, sa, out_shape, ctx.dy, false),
            write_direct(db, sb, out_shape, ctx.dy, true),
        ),
        _ => (da, db),
    };
    let da = da.map(|g| g.zeroed());
    let db = db.map(|g| g.zeroed());
    if da.is_none() && db.is_none() {
        return Ok(());
    }
    kern::binary_backward(op, ad, sa, bd, sb, ctx.dy, da, db)?;
    Ok(())
}

/// If `g` is fresh and its input has the output's shape (no broadcasting), writes
/// `dy` (or `-dy`) into it and returns `None` (done); otherwise hands `g` back.
fn write_direct<'g, T: Scalar>(
    g: Option<GradMut<'g, T>>,
    shape: &Shape,
    out_shape: &Shape,
    dy: &[T],
    negate: bool,
) -> Option<GradMut<'g, T>> {
    match g {
        Some(g) if g.fresh && shape == out_shape => {
            if negate {
                for (d, &v) in g.data.iter_mut().zip(dy) {
                    *d = -v;
                }
            } else {
                g.data.copy_from_slice(dy);
            }
            None
        }
        other => other,
    }
}
