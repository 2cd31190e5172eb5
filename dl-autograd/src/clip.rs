//! Gradient clipping over a set of parameters, as `torch.nn.utils.clip_grad_value_`
//! and `clip_grad_norm_`.

use crate::error::{invalid_parameter, Result};
use crate::param::Param;
use dl_core::Scalar;

/// Clamps every gradient element into `[-clip, clip]`. Errors unless `clip >= 0`
/// and finite.
pub fn clip_grad_value<T: Scalar>(params: &mut [&mut Param<T>], clip: T) -> Result<()> {
    let c = clip.to_f64_lossless();
    if !(c >= 0.0 && c.is_finite()) {
        return Err(invalid_parameter(
            "clip_grad_value",
            "clip",
            c,
            ">= 0 and finite",
        ));
    }
    for p in params.iter_mut() {
        for g in p.grad_mut().data_mut() {
            *g = g.max(-clip).min(clip);
        }
    }
    Ok(())
}

/// Scales all gradients together so their global L2 norm is at most `max_norm`
/// (by `max_norm / (norm + 1e-6)`, as PyTorch) and returns the norm *before*
/// clipping. Errors unless `max_norm >= 0` and finite.
///
/// ```
/// use dl_autograd::{clip_grad_norm, Param};
/// use dl_core::Tensor;
/// let mut a = Param::new(Tensor::from_array([0.0f64, 0.0]));
/// let mut b = Param::new(Tensor::from_array([0.0f64]));
/// a.grad_mut().data_mut().copy_from_slice(&[3.0, 0.0]);
/// b.grad_mut().data_mut()[0] = 4.0;
/// let norm = clip_grad_norm(&mut [&mut a, &mut b], 1.0).unwrap();
/// assert_eq!(norm, 5.0);
/// assert!((a.grad().data()[0] - 0.6).abs() < 1e-6);
/// ```
pub fn clip_grad_norm<T: Scalar>(params: &mut [&mut Param<T>], max_norm: T) -> Result<T> {
    let m = max_norm.to_f64_lossless();
    if !(m >= 0.0 && m.is_finite()) {
        return Err(invalid_parameter(
            "clip_grad_norm",
            "max_norm",
            m,
            ">= 0 and finite",
        ));
    }
    // Accumulated in f64 so many small f32 gradients do not lose digits.
    let mut sq = 0.0f64;
    for p in params.iter_mut() {
        for &g in p.grad_mut().data() {
            let g = g.to_f64_lossless();
            sq += g * g;
        }
    }
    let norm = libm::sqrt(sq);
    let scale = m / (norm + 1e-6);
    if scale < 1.0 {
        let s = T::from_f64_lossy(scale);
        for p in params.iter_mut() {
            for g in p.grad_mut().data_mut() {
                *g = *g * s;
            }
        }
    }
    Ok(T::from_f64_lossy(norm))
}
