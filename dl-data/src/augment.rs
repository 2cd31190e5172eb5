//! Image augmentation for training (CIFAR style): random crop after zero padding and
//! random horizontal flip. Kernels work on one channels-first image (`[c, h, w]`) in
//! caller-owned buffers and allocate nothing; randomness comes from a seeded
//! [`dl_core::Rng`].

use dl_core::Rng;

use crate::error::{Error, Result};

/// Which augmentations to apply to each training image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Channels of each image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Zero padding on every side before a random `height x width` crop (0 = no crop).
    pub crop_padding: usize,
    /// Probability of a horizontal flip.
    pub flip_probability: f64,
}

impl Augment {
    /// The usual CIFAR-10 recipe: pad 4, random 32x32 crop, flip with probability 0.5.
    pub fn cifar10() -> Self {
        Augment {
            channels: 3,
            height: 32,
            width: 32,
            crop_padding: 4,
            flip_probability: 0.5,
        }
    }

    /// Checks the sizes and the probability.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("channels", self.channels),
            ("height", self.height),
            ("width", self.width),
        ] {
            if v == 0 {
                return Err(Error::InvalidParameter {
                    op: "Augment",
                    name,
                    value: 0.0,
                    valid: ">= 1",
                });
            }
        }
        if !(0.0..=1.0).contains(&self.flip_probability) {
            return Err(Error::InvalidParameter {
                op: "Augment",
                name: "flip_probability",
                value: self.flip_probability,
                valid: "[0, 1]",
            });
        }
        Ok(())
    }

    /// Pixels per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Augments `image` in place, using `scratch` (same length) as work space.
    /// Draws the crop offsets, then the flip, from `rng`.
    pub fn apply<T: Copy + Default>(&self, image: &mut [T], scratch: &mut [T], rng: &mut Rng) {
        debug_assert_eq!(image.len(), self.image_len());
        if self.crop_padding > 0 {
            let span = 2 * self.crop_padding + 1;
            let dy = rng.below(span) as isize - self.crop_padding as isize;
            let dx = rng.below(span) as isize - self.crop_padding as isize;
            scratch.copy_from_slice(image);
            shift_into(
                scratch,
                image,
                self.channels,
                self.height,
                self.width,
                dy,
                dx,
            );
        }
        if self.flip_probability > 0.0 && rng.bernoulli(self.flip_probability) {
            hflip(image, self.channels, self.height, self.width);
        }
    }
}

/// Crop of the zero-padded image: `dst[c, y, x] = src[c, y + dy, x + dx]`, zero where
/// that falls outside. A crop at offset `(p + dy, p + dx)` of an image padded by `p`
/// is exactly this shift.
pub fn shift_into<T: Copy + Default>(
    src: &[T],
    dst: &mut [T],
    channels: usize,
    height: usize,
    width: usize,
    dy: isize,
    dx: isize,
) {
    let plane = height * width;
    for c in 0..channels {
        for y in 0..height {
            let sy = y as isize + dy;
            let row = &mut dst[c * plane + y * width..c * plane + (y + 1) * width];
            if sy < 0 || sy >= height as isize {
                row.fill(T::default());
                continue;
            }
            let src_row =
                &src[c * plane + sy as usize * width..c * plane + (sy as usize + 1) * width];
            for (x, d) in row.iter_mut().enumerate() {
                let sx = x as isize + dx;
                *d = if sx < 0 || sx >= width as isize {
                    T::default()
                } else {
                    src_row[sx as usize]
                };
            }
        }
    }
}

/// Mirrors every row of a channels-first image in place.
pub fn hflip<T>(image: &mut [T], channels: usize, height: usize, width: usize) {
    for row in image.chunks_exact_mut(width.max(1)).take(channels * height) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_and_flip_by_hand() {
        // 1 channel, 2x3: [[1,2,3],[4,5,6]]
        let src = [1, 2, 3, 4, 5, 6];
        let mut dst = [0; 6];
        shift_into(&src, &mut dst, 1, 2, 3, 1, -1);
        // dst[y][x] = src[y+1][x-1]: row 0 -> [0, 4, 5], row 1 -> zeros.
        assert_eq!(dst, [0, 4, 5, 0, 0, 0]);
        let mut img = src;
        hflip(&mut img, 1, 2, 3);
        assert_eq!(img, [3, 2, 1, 6, 5, 4]);
    }

    #[test]
    fn seeded_augmentation_is_reproducible_and_keeps_pixels_of_the_image() {
        let a = Augment {
            channels: 1,
            height: 4,
            width: 4,
            crop_padding: 1,
            flip_probability: 0.5,
        };
        a.validate().unwrap();
        let base: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        let run = |seed| {
            let mut rng = Rng::seed_from_u64(seed);
            let mut img = base;
            let mut s = [0u8; 16];
            a.apply(&mut img, &mut s, &mut rng);
            img
        };
        assert_eq!(run(5), run(5));
        for seed in 0..20 {
            for v in run(seed) {
                assert!(v == 0 || base.contains(&v));
            }
        }
        assert!(Augment {
            flip_probability: 1.5,
            ..a
        }
        .validate()
        .is_err());
    }
}
