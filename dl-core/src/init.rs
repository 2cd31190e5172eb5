//! Weight initializers on slices: uniform, normal, Xavier/Glorot and He/Kaiming, as
//! `torch.nn.init` defines them (same bounds and standard deviations).

use crate::rng::Rng;
use crate::scalar::Scalar;

/// Fills `w` with `U(lo, hi)`.
pub fn uniform<T: Scalar>(w: &mut [T], lo: T, hi: T, rng: &mut Rng) {
    for x in w {
        *x = rng.uniform(lo, hi);
    }
}

/// Fills `w` with `N(mean, std^2)`.
pub fn normal<T: Scalar>(w: &mut [T], mean: T, std: T, rng: &mut Rng) {
    for x in w {
        *x = rng.normal(mean, std);
    }
}

/// Xavier/Glorot uniform: `U(-a, a)` with `a = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform<T: Scalar>(
    w: &mut [T],
    fan_in: usize,
    fan_out: usize,
    gain: f64,
    rng: &mut Rng,
) {
    let a = gain * libm::sqrt(6.0 / (fan_in + fan_out).max(1) as f64);
    uniform(w, T::from_f64_lossy(-a), T::from_f64_lossy(a), rng);
}

/// Xavier/Glorot normal: `N(0, std^2)` with `std = gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal<T: Scalar>(
    w: &mut [T],
    fan_in: usize,
    fan_out: usize,
    gain: f64,
    rng: &mut Rng,
) {
    let std = gain * libm::sqrt(2.0 / (fan_in + fan_out).max(1) as f64);
    normal(w, T::ZERO, T::from_f64_lossy(std), rng);
}

/// The gain torch uses for leaky ReLU with negative slope `a`: `sqrt(2 / (1 + a^2))`
/// (`a = 0` is plain ReLU, gain `sqrt(2)`).
pub fn leaky_relu_gain(a: f64) -> f64 {
    libm::sqrt(2.0 / (1.0 + a * a))
}

/// He/Kaiming uniform (fan-in mode): `U(-b, b)` with `b = gain * sqrt(3 / fan_in)`.
///
/// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights is this with
/// `gain = leaky_relu_gain(sqrt(5))`, i.e. `b = 1 / sqrt(fan_in)`.
pub fn kaiming_uniform<T: Scalar>(w: &mut [T], fan_in: usize, gain: f64, rng: &mut Rng) {
    let b = gain * libm::sqrt(3.0 / fan_in.max(1) as f64);
    uniform(w, T::from_f64_lossy(-b), T::from_f64_lossy(b), rng);
}

/// He/Kaiming normal (fan-in mode): `N(0, std^2)` with `std = gain / sqrt(fan_in)`.
pub fn kaiming_normal<T: Scalar>(w: &mut [T], fan_in: usize, gain: f64, rng: &mut Rng) {
    let std = gain / libm::sqrt(fan_in.max(1) as f64);
    normal(w, T::ZERO, T::from_f64_lossy(std), rng);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(x: &[f64]) -> f64 {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
    }

    #[test]
    fn variances_match_torch_formulas() {
        let mut rng = Rng::seed_from_u64(0);
        let mut w = [0.0f64; 100_000];
        // Uniform(-a, a) has variance a^2 / 3.
        xavier_uniform(&mut w, 300, 100, 1.0, &mut rng);
        let a2 = 6.0 / 400.0;
        assert!((var(&w) / (a2 / 3.0) - 1.0).abs() < 0.02);
        xavier_normal(&mut w, 300, 100, 1.0, &mut rng);
        assert!((var(&w) / (2.0 / 400.0) - 1.0).abs() < 0.02);
        kaiming_normal(&mut w, 50, leaky_relu_gain(0.0), &mut rng);
        assert!((var(&w) / (2.0 / 50.0) - 1.0).abs() < 0.02);
        // torch's Linear default: bound 1/sqrt(fan_in).
        kaiming_uniform(&mut w, 64, leaky_relu_gain(libm::sqrt(5.0)), &mut rng);
        let bound = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(bound <= 1.0 / 8.0 && bound > 0.124);
    }
}
