//! The element type: `f32` (the default everywhere) or `f64` (for exact classic
//! methods and finite-difference gradient checks).

use core::fmt::{Debug, Display};
use core::iter::Sum;
use num_traits::{Float, FromPrimitive};

/// A floating-point element type the kernels run on: implemented for `f32` and `f64`.
///
/// Built on num-traits' [`Float`] (with its `libm` feature, so it works without std).
pub trait Scalar:
    Float + FromPrimitive + Default + Debug + Display + Sum + Send + Sync + 'static
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Machine epsilon of the type.
    const EPSILON: Self;
    /// A short name (`"f32"` / `"f64"`) for benchmark labels and file headers.
    const NAME: &'static str;

    /// Converts from `f64`, rounding to the nearest representable value.
    fn from_f64_lossy(v: f64) -> Self;
    /// Widens to `f64` (exact for both implementors).
    fn to_f64_lossless(self) -> f64;
    /// Converts a count or index to the element type.
    fn from_usize_lossy(n: usize) -> Self;

    /// Raw strided GEMM through matrixmultiply: `C = alpha * A B + beta * C`, with
    /// `A` of shape `m x k`, `B` of shape `k x n`, `C` of shape `m x n`, each given by a
    /// pointer and row/column strides in elements.
    ///
    /// # Safety
    /// Every element addressed by the sizes and strides must lie inside a live
    /// allocation; `c` must not alias `a` or `b`. Use [`crate::gemm::gemm`] instead,
    /// which checks all of this.
    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_scalar {
    ($t:ty, $name:literal, $gemm:ident) => {
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64_lossy(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64_lossless(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_usize_lossy(n: usize) -> Self {
                n as $t
            }

            #[cfg(feature = "alloc")]
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded contract; the caller guarantees the bounds.
                unsafe {
                    matrixmultiply::$gemm(
                        m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc,
                    )
                }
            }
        }
    };
}

impl_scalar!(f32, "f32", sgemm);
impl_scalar!(f64, "f64", dgemm);
