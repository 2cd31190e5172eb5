//! Small ResNets built from [`ResidualBlock`]s, as examples of depth:
//! - [`resnet20`]: the CIFAR-10 ResNet-20 of He et al. (2016), 3x32x32 input: a 3x3
//!   stem with 16 channels, three stages of 3 blocks (16, 32, 64 channels; stride 2 at
//!   the start of stages 2 and 3), global average pooling, a 10-way linear layer
//!   (about 0.27 M parameters).
//! - [`resnet18`]: the ImageNet ResNet-18 layout: 7x7 stride-2 stem with 64 channels,
//!   3x3 stride-2 max pool, four stages of 2 blocks (64, 128, 256, 512), global
//!   average pooling, a linear classifier (about 11.7 M parameters for 1000 classes).

use crate::activation::{Activation, Flatten};
use crate::conv::Conv2dConfig;
use crate::error::Result;
use crate::linear::LinearConfig;
use crate::norm::BatchNorm;
use crate::pool::Pool2d;
use crate::residual::ResidualBlock;
use crate::sequential::Sequential;
use dl_core::pool::Pool2dParams;
use dl_core::{Rng, Scalar};

fn stages<T: Scalar>(
    mut net: Sequential<T>,
    mut c_in: usize,
    widths: &[usize],
    blocks: usize,
    rng: &mut Rng,
) -> Result<(Sequential<T>, usize)> {
    for (i, &w) in widths.iter().enumerate() {
        for b in 0..blocks {
            let stride = if i > 0 && b == 0 { 2 } else { 1 };
            net = net.push(ResidualBlock::new(c_in, w, stride, rng)?);
            c_in = w;
        }
    }
    Ok((net, c_in))
}

/// ResNet-20 for 3x32x32 images (see the module doc).
pub fn resnet20<T: Scalar>(classes: usize, rng: &mut Rng) -> Result<Sequential<T>> {
    let net = Sequential::new()
        .push(
            Conv2dConfig::new(3, 16, 3)
                .padding(1)
                .bias(false)
                .init(rng)?,
        )
        .push(BatchNorm::new(16)?)
        .push(Activation::Relu);
    let (net, c) = stages(net, 16, &[16, 32, 64], 3, rng)?;
    Ok(net
        .push(Pool2d::GlobalAvg)
        .push(LinearConfig::new(c, classes).init(rng)?))
}

/// ResNet-18 (ImageNet layout) for 3-channel images (see the module doc).
pub fn resnet18<T: Scalar>(classes: usize, rng: &mut Rng) -> Result<Sequential<T>> {
    let stem_pool = Pool2dParams::new(3, 3).with_stride(2, 2).with_padding(1, 1);
    stem_pool.validate()?;
    let net = Sequential::new()
        .push(
            Conv2dConfig::new(3, 64, 7)
                .stride(2)
                .padding(3)
                .bias(false)
                .init(rng)?,
        )
        .push(BatchNorm::new(64)?)
        .push(Activation::Relu)
        .push(Pool2d::Max(stem_pool));
    let (net, c) = stages(net, 64, &[64, 128, 256, 512], 2, rng)?;
    Ok(net
        .push(Pool2d::GlobalAvg)
        .push(Flatten)
        .push(LinearConfig::new(c, classes).init(rng)?))
}
