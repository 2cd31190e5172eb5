//! A small seeded random number generator (xoshiro256++ seeded through SplitMix64),
//! no_std and allocation-free, implementing rand_core's `RngCore` and `SeedableRng`.
//!
//! Every random thing in the library takes one of these, so the same seed gives the
//! same result on every machine.

use crate::scalar::Scalar;

/// xoshiro256++: fast, 256 bits of state, passes BigCrush; not cryptographic.
///
/// ```
/// use dl_core::Rng;
/// let mut a = Rng::seed_from_u64(42);
/// let mut b = Rng::seed_from_u64(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// let x: f32 = a.uniform(-1.0, 1.0);
/// assert!((-1.0..1.0).contains(&x));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
    /// The second Box-Muller deviate, kept for the next `normal` call.
    spare_normal: Option<u64>,
}

/// SplitMix64 step: spreads a 64-bit seed over the 256-bit state.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// An independent generator for sub-task `stream` (e.g. one per thread or per
    /// tree), derived from this one's next output so results do not depend on the
    /// order in which sub-tasks run.
    pub fn fork(&mut self, stream: u64) -> Rng {
        let base = self.next_u64();
        Rng::seed_from_u64(base ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// The next 32 random bits (the high half, the better-mixed one).
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform `f64` in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform value in `[lo, hi)`.
    #[inline]
    pub fn uniform<T: Scalar>(&mut self, lo: T, hi: T) -> T {
        let u = T::from_f64_lossy(self.next_f64());
        let v = lo + (hi - lo) * u;
        // Rounding to f32 can land exactly on `hi`; keep the interval half-open.
        if v >= hi {
            lo
        } else {
            v
        }
    }

    /// Normal deviate with the given mean and standard deviation (Box-Muller).
    pub fn normal<T: Scalar>(&mut self, mean: T, std: T) -> T {
        let z = if let Some(bits) = self.spare_normal.take() {
            f64::from_bits(bits)
        } else {
            // u1 in (0, 1] so the log is finite.
            let u1 = 1.0 - self.next_f64();
            let u2 = self.next_f64();
            let r = libm::sqrt(-2.0 * libm::log(u1));
            let theta = 2.0 * core::f64::consts::PI * u2;
            self.spare_normal = Some((r * libm::sin(theta)).to_bits());
            r * libm::cos(theta)
        };
        mean + std * T::from_f64_lossy(z)
    }

    /// Uniform integer in `0..n` without modulo bias (Lemire's method); `n` must be > 0.
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0, "Rng::below(0)");
        let n = n as u64;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as usize;
            }
        }
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<E>(&mut self, items: &mut [E]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// `true` with probability `p`.
    #[inline]
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }
}

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        Rng::next_u32(self)
    }
    fn next_u64(&mut self) -> u64 {
        Rng::next_u64(self)
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = Rng::next_u64(self).to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

impl rand_core::SeedableRng for Rng {
    type Seed = [u8; 32];
    fn from_seed(seed: Self::Seed) -> Self {
        let mut s = [0u64; 4];
        for (i, w) in s.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seed[i * 8..i * 8 + 8]);
            *w = u64::from_le_bytes(b);
        }
        if s == [0; 4] {
            // The all-zero state is a fixed point of xoshiro.
            return Rng::seed_from_u64(0);
        }
        Rng {
            s,
            spare_normal: None,
        }
    }
    fn seed_from_u64(seed: u64) -> Self {
        Rng::seed_from_u64(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let mut a = Rng::seed_from_u64(7);
        let mut b = Rng::seed_from_u64(7);
        let mut c = Rng::seed_from_u64(8);
        let xs: [u64; 4] = core::array::from_fn(|_| a.next_u64());
        let ys: [u64; 4] = core::array::from_fn(|_| b.next_u64());
        let zs: [u64; 4] = core::array::from_fn(|_| c.next_u64());
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn uniform_and_normal_moments() {
        let mut r = Rng::seed_from_u64(1);
        let n = 200_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let x: f64 = r.normal(2.0, 3.0);
            s += x;
            s2 += x * x;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!((mean - 2.0).abs() < 0.03, "mean {mean}");
        assert!((var - 9.0).abs() < 0.1, "var {var}");
        let mut su = 0.0;
        for _ in 0..n {
            let u: f64 = r.uniform(-1.0, 3.0);
            assert!((-1.0..3.0).contains(&u));
            su += u;
        }
        assert!((su / n as f64 - 1.0).abs() < 0.01);
    }

    #[test]
    fn below_is_unbiased_and_shuffle_permutes() {
        let mut r = Rng::seed_from_u64(3);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            counts[r.below(6)] += 1;
        }
        for c in counts {
            assert!((9_500..10_500).contains(&c), "{counts:?}");
        }
        let mut v = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        r.shuffle(&mut v);
        let mut sorted = v;
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_ne!(v, sorted);
    }
}
