//! Adam (with bias correction, optional AMSGrad and L2 weight decay) and AdamW
//! (decoupled weight decay), exactly as `torch.optim.Adam` / `torch.optim.AdamW`:
//!
//! ```text
//! AdamW only:  w = w * (1 - lr * weight_decay)
//! Adam only:   g = grad + weight_decay * w
//! m = beta1 * m + (1 - beta1) * g
//! v = beta2 * v + (1 - beta2) * g^2          (AMSGrad: v_max = max(v_max, v), used below)
//! w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```

use crate::error::Result;
use crate::optimizer::{check, Optimizer, State};
use crate::params::ParamSet;
use dl_core::Scalar;

/// Adam's and AdamW's hyper-parameters (torch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate, >= 0 (default 1e-3).
    pub lr: f64,
    /// Decay of the first moment, in [0, 1) (default 0.9).
    pub beta1: f64,
    /// Decay of the second moment, in [0, 1) (default 0.999).
    pub beta2: f64,
    /// Added to the denominator, > 0 (default 1e-8).
    pub eps: f64,
    /// Weight decay, >= 0: an L2 term in the gradient for Adam, decoupled for AdamW
    /// (defaults 0 for Adam, 0.01 for AdamW).
    pub weight_decay: f64,
    /// AMSGrad: divide by the running maximum of the second moment.
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// Adam with learning rate `lr` and the other defaults.
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            ..Default::default()
        }
    }
    /// Sets the moment decays.
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.beta1 = beta1;
        self.beta2 = beta2;
        self
    }
    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Sets the weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Turns AMSGrad on or off.
    pub fn amsgrad(mut self, on: bool) -> Self {
        self.amsgrad = on;
        self
    }

    /// Checks every hyper-parameter, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        check::lr("Adam", self.lr)?;
        check::unit("Adam", "beta1", self.beta1)?;
        check::unit("Adam", "beta2", self.beta2)?;
        check::eps("Adam", self.eps)?;
        check::weight_decay("Adam", self.weight_decay)
    }

    /// Adam (weight decay as an L2 gradient term), after validating.
    pub fn build<T: Scalar>(self) -> Result<Adam<T>> {
        self.validate()?;
        Ok(Adam {
            config: self,
            decoupled: false,
            state: State::new("Adam"),
        })
    }

    /// AdamW (decoupled weight decay), after validating. torch's AdamW default
    /// weight decay is 0.01: set it explicitly.
    pub fn build_adamw<T: Scalar>(self) -> Result<Adam<T>> {
        self.validate()?;
        Ok(Adam {
            config: self,
            decoupled: true,
            state: State::new("AdamW"),
        })
    }
}

/// The per-step constants of the update.
struct Coefficients<T> {
    step_size: T,
    bc2_sqrt: T,
    /// `1 - beta1`, rounded once from f64 as torch rounds it (`1 - beta1` rounded in f32
    /// is another number: 1 - 0.9f32 is 0.100000024).
    one_minus_b1: T,
    b2: T,
    /// `1 - beta2`, rounded once from f64 (1 - 0.999f32 is 0.0009999871, 1.3e-5 from
    /// torch's 0.001f32).
    one_minus_b2: T,
    eps: T,
    wd: T,
    shrink: T,
}

/// Parameters at least this long are updated in blocks on several threads (a square
/// root and a division per element make Adam compute-bound, about 0.5 ns per element
/// on one core, so a 100k-weight layer is worth splitting).
#[cfg(feature = "std")]
const PARALLEL_MIN: usize = 1 << 15;

/// One parameter's update: elementwise, so large parameters are split into blocks run
/// on dl-core's threads (the result does not depend on the split).
fn update<T: Scalar, const DECOUPLED: bool, const AMSGRAD: bool>(
    k: &Coefficients<T>,
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
) {
    #[cfg(feature = "std")]
    {
        const MAX: usize = 8;
        let (n, parts) = (w.len(), dl_core::gemm::num_threads().min(MAX));
        if parts > 1 && n >= PARALLEL_MIN {
            // Blocks of whole cache lines.
            let size = n.div_ceil(parts).next_multiple_of(64);
            let vm_size = if v_max.is_empty() { 1 } else { size };
            let mut vm = v_max
                .chunks_mut(vm_size)
                .chain(core::iter::repeat_with(|| &mut [][..]));
            let mut it = w
                .chunks_mut(size)
                .zip(g.chunks(size))
                .zip(m.chunks_mut(size))
                .zip(v.chunks_mut(size))
                .map(|(((w, g), m), v)| (w, g, m, v, vm.next().unwrap_or(&mut [])));
            let mut blocks: [Option<Block<'_, T>>; MAX] = core::array::from_fn(|_| it.next());
            dl_core::gemm::for_each_mut(&mut blocks, &|_, block| {
                if let Some((w, g, m, v, vm)) = block {
                    update_block::<T, DECOUPLED, AMSGRAD>(k, w, g, m, v, vm);
                }
            });
            return;
        }
    }
    update_block::<T, DECOUPLED, AMSGRAD>(k, w, g, m, v, v_max)
}

/// One block of a parameter: weights, gradient, first and second moments, running
/// maximum of the second moment (empty without AMSGrad).
#[cfg(feature = "std")]
type Block<'a, T> = (&'a mut [T], &'a [T], &'a mut [T], &'a mut [T], &'a mut [T]);

/// The update of one block, compiled for AVX-512 or AVX2 where the CPU has them (the
/// two divisions per element, kept to round as torch's update does, are the cost).
#[inline(never)]
fn update_block<T: Scalar, const DECOUPLED: bool, const AMSGRAD: bool>(
    k: &Coefficients<T>,
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<T: Scalar, const D: bool, const A: bool>(
            k: &Coefficients<T>,
            w: &mut [T],
            g: &[T],
            m: &mut [T],
            v: &mut [T],
            v_max: &mut [T],
        ) {
            update_body::<T, D, A>(k, w, g, m, v, v_max)
        }
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<T: Scalar, const D: bool, const A: bool>(
            k: &Coefficients<T>,
            w: &mut [T],
            g: &[T],
            m: &mut [T],
            v: &mut [T],
            v_max: &mut [T],
        ) {
            update_body::<T, D, A>(k, w, g, m, v, v_max)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { avx512::<T, DECOUPLED, AMSGRAD>(k, w, g, m, v, v_max) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { avx2::<T, DECOUPLED, AMSGRAD>(k, w, g, m, v, v_max) };
        }
    }
    update_body::<T, DECOUPLED, AMSGRAD>(k, w, g, m, v, v_max)
}

/// The update of [`update_block`]. The slices are arguments and re-cut to one length, so
/// the compiler sees no aliasing and no bounds checks, and vectorizes the loop.
/// (FMA contraction is not allowed implicitly, so the rounding is the same on every
/// path.)
#[inline(always)]
fn update_body<T: Scalar, const DECOUPLED: bool, const AMSGRAD: bool>(
    k: &Coefficients<T>,
    w: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    v_max: &mut [T],
) {
    let n = w.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    let v_max = if AMSGRAD {
        &mut v_max[..n]
    } else {
        &mut v_max[..0]
    };
    for i in 0..n {
        let mut gi = g[i];
        let mut wi = w[i];
        if DECOUPLED {
            wi = wi * k.shrink;
        } else {
            gi = gi + k.wd * wi;
        }
        let mi = m[i] + k.one_minus_b1 * (gi - m[i]);
        let vi = k.b2 * v[i] + k.one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        let second = if AMSGRAD {
            let vm = v_max[i].max(vi);
            v_max[i] = vm;
            vm
        } else {
            vi
        };
        let denom = second.sqrt() / k.bc2_sqrt + k.eps;
        w[i] = wi - k.step_size * mi / denom;
    }
}

/// Adam or AdamW (see the module doc for the update).
#[derive(Clone, Debug)]
pub struct Adam<T: Scalar = f32> {
    config: AdamConfig,
    decoupled: bool,
    /// First moment, second moment, running max of the second moment (AMSGrad).
    state: State<T, 3>,
}

impl<T: Scalar> Optimizer<T> for Adam<T> {
    fn step(&mut self, params: &mut dyn ParamSet<T>) -> Result<()> {
        let c = self.config;
        let t = (self.state.t + 1) as i32;
        let step_size = T::from_f64_lossy(c.lr / (1.0 - libm::pow(c.beta1, t as f64)));
        let bc2_sqrt = T::from_f64_lossy(libm::sqrt(1.0 - libm::pow(c.beta2, t as f64)));
        let eps = T::from_f64_lossy(c.eps);
        let wd = T::from_f64_lossy(c.weight_decay);
        let shrink = T::from_f64_lossy(1.0 - c.lr * c.weight_decay);
        let decoupled = self.decoupled;
        let k = Coefficients {
            step_size,
            bc2_sqrt,
            one_minus_b1: T::from_f64_lossy(1.0 - c.beta1),
            b2: T::from_f64_lossy(c.beta2),
            one_minus_b2: T::from_f64_lossy(1.0 - c.beta2),
            eps,
            wd,
            shrink,
        };
        self.state.drive(params, |w, g, [m, v, v_max]| {
            // The variants as separate loops, so each one vectorizes.
            match (decoupled, c.amsgrad) {
                (false, false) => update::<T, false, false>(&k, w, g, m, v, v_max),
                (false, true) => update::<T, false, true>(&k, w, g, m, v, v_max),
                (true, false) => update::<T, true, false>(&k, w, g, m, v, v_max),
                (true, true) => update::<T, true, true>(&k, w, g, m, v, v_max),
            }
        })
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use dl_autograd::Param;
    use dl_core::{Rng, Tensor};

    /// A large parameter is updated in blocks on several threads; the update is
    /// elementwise, so it must match, bit for bit, the same values held in small
    /// parameters updated whole, for every variant.
    #[test]
    fn blocked_update_of_a_large_parameter_matches_small_ones() {
        let n = 3 * PARALLEL_MIN + 123;
        let piece = 1000;
        let mut rng = Rng::seed_from_u64(4);
        let w0: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        for (decoupled, amsgrad) in [(false, false), (true, false), (false, true), (true, true)] {
            let cfg = AdamConfig::new(0.01).weight_decay(0.1).amsgrad(amsgrad);
            let build = || {
                if decoupled {
                    cfg.build_adamw::<f32>()
                } else {
                    cfg.build::<f32>()
                }
            };
            let (mut big_opt, mut small_opt) = (build().unwrap(), build().unwrap());
            let mut big = Param::new(Tensor::from_vec(w0.clone(), &[n]).unwrap());
            let mut small: Vec<Param<f32>> = w0
                .chunks(piece)
                .map(|c| Param::new(Tensor::from_vec(c.to_vec(), &[c.len()]).unwrap()))
                .collect();
            for step in 0..3 {
                let grad = |i: usize| ((i * 7 + step * 13) % 101) as f32 / 50.0 - 1.0;
                big.grad_mut()
                    .data_mut()
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, g)| *g = grad(i));
                for (p, s) in small.iter_mut().enumerate() {
                    let off = p * piece;
                    s.grad_mut()
                        .data_mut()
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, g)| *g = grad(off + i));
                }
                big_opt.step(&mut big).unwrap();
                small_opt.step(&mut small).unwrap();
            }
            let joined: Vec<f32> = small
                .iter()
                .flat_map(|p| p.value().data().to_vec())
                .collect();
            assert!(
                joined == big.value().data(),
                "decoupled={decoupled} amsgrad={amsgrad}: blocked update differs"
            );
        }
    }
}
