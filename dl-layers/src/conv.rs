//! 2-D convolution layer, as `torch.nn.Conv2d`: input `[N, C_in, H, W]`, weight
//! `[C_out, C_in / groups, kh, kw]`, bias `[C_out]`, output `[N, C_out, H_out, W_out]`
//! with `H_out = (H + 2 pad - dil (kh - 1) - 1) / stride + 1` (likewise `W_out`).
//!
//! With `groups` channel groups (PyTorch's `groups`, default 1) the channels are cut
//! into `groups` equal runs and output run `k` sees only input run `k`:
//! `y[n, o] = b[o] + sum_{c < C_in/groups} W[o, c] (*) x[n, k C_in/groups + c]` with
//! `k = o / (C_out / groups)`. `groups == C_in` is a depthwise convolution
//! (MobileNet's), `C_out = m C_in` for a channel multiplier `m`.
//!
//! ```
//! use dl_core::{Rng, Tensor};
//! use dl_layers::{Conv2dConfig, Module};
//! // Depthwise 3x3 over 8 channels, padding 1: one 3x3 filter per channel.
//! let mut rng = Rng::seed_from_u64(0);
//! let conv = Conv2dConfig::new(8, 8, 3)
//!     .padding(1)
//!     .with_groups(8)
//!     .init::<f32>(&mut rng)
//!     .unwrap();
//! assert_eq!(conv.weight.value().dims(), &[8, 1, 3, 3]);
//! let x = Tensor::<f32>::ones(&[2, 8, 5, 5]).unwrap();
//! let mut y = Tensor::<f32>::zeros(&[1]).unwrap();
//! conv.infer(&x, &mut y).unwrap();
//! assert_eq!(y.dims(), &[2, 8, 5, 5]);
//! ```

use crate::error::{check, Result};
use crate::module::{visit_param, visit_param_mut, Ctx, Entry, EntryMut, Module, Path};
use dl_autograd::{Graph, Param, ParamSet, Var};
use dl_core::conv::Conv2dParams;
use dl_core::{init, Rng, Scalar, Tensor};

/// Configuration of a [`Conv2d`] layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dConfig {
    /// Input channels, >= 1.
    pub in_channels: usize,
    /// Output channels, >= 1.
    pub out_channels: usize,
    /// Kernel height and width, >= 1.
    pub kernel: (usize, usize),
    /// Stride, padding, dilation and channel groups (`params.groups`, default 1,
    /// dividing both channel counts).
    pub params: Conv2dParams,
    /// Whether to learn a bias (default true).
    pub bias: bool,
}

impl Conv2dConfig {
    /// A square `k x k` convolution, stride 1, no padding, with bias.
    pub fn new(in_channels: usize, out_channels: usize, k: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel: (k, k),
            params: Conv2dParams::default(),
            bias: true,
        }
    }
    /// Sets the stride (both directions).
    pub fn stride(mut self, s: usize) -> Self {
        self.params = self.params.with_stride(s, s);
        self
    }
    /// Sets the padding (both directions).
    pub fn padding(mut self, p: usize) -> Self {
        self.params = self.params.with_padding(p, p);
        self
    }
    /// With or without bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// Sets the number of channel groups (PyTorch's `groups`; `in_channels` for a
    /// depthwise convolution).
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.params = self.params.with_groups(groups);
        self
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        check(
            "Conv2d",
            "in_channels",
            self.in_channels as f64,
            self.in_channels >= 1,
            ">= 1",
        )?;
        check(
            "Conv2d",
            "out_channels",
            self.out_channels as f64,
            self.out_channels >= 1,
            ">= 1",
        )?;
        check(
            "Conv2d",
            "kernel",
            self.kernel.0.min(self.kernel.1) as f64,
            self.kernel.0 >= 1 && self.kernel.1 >= 1,
            ">= 1",
        )?;
        let groups = self.params.groups;
        check(
            "Conv2d",
            "groups",
            groups as f64,
            groups >= 1
                && self.in_channels.is_multiple_of(groups)
                && self.out_channels.is_multiple_of(groups),
            ">= 1, dividing in_channels and out_channels",
        )?;
        self.params.validate()?;
        Ok(())
    }

    /// The layer with PyTorch's default initialization (weights and bias
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = C_in / groups * kh * kw`).
    pub fn init<T: Scalar>(self, rng: &mut Rng) -> Result<Conv2d<T>> {
        self.validate()?;
        let (kh, kw) = self.kernel;
        let group_in = self.in_channels / self.params.groups;
        let fan_in = group_in * kh * kw;
        let mut w = Tensor::zeros(&[self.out_channels, group_in, kh, kw])?;
        init::kaiming_uniform(
            w.data_mut(),
            fan_in,
            init::leaky_relu_gain(libm::sqrt(5.0)),
            rng,
        );
        let bias = if self.bias {
            let bound = T::from_f64_lossy(1.0 / libm::sqrt(fan_in as f64));
            let mut b = Tensor::zeros(&[self.out_channels])?;
            init::uniform(b.data_mut(), -bound, bound, rng);
            Some(Param::new(b))
        } else {
            None
        };
        Ok(Conv2d {
            weight: Param::new(w),
            bias,
            params: self.params,
        })
    }
}

/// A 2-D convolution (see the module doc).
#[derive(Clone, Debug)]
pub struct Conv2d<T: Scalar = f32> {
    /// `[C_out, C_in / groups, kh, kw]`.
    pub weight: Param<T>,
    /// `[C_out]`, if any.
    pub bias: Option<Param<T>>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl<T: Scalar> ParamSet<T> for Conv2d<T> {
    fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<T>)) {
        f(&mut self.weight);
        if let Some(b) = &mut self.bias {
            f(b);
        }
    }
}

impl<T: Scalar> Module<T> for Conv2d<T> {
    fn forward<'p>(&'p self, g: &mut Graph<'p, T>, x: Var, _ctx: &mut Ctx) -> Result<Var> {
        let w = g.param(&self.weight);
        let b = self.bias.as_ref().map(|b| g.param(b));
        Ok(g.conv2d(x, w, b, self.params)?)
    }

    fn lower(
        &self,
        g: &mut dl_deploy::Graph,
        x: dl_deploy::TensorId,
    ) -> dl_deploy::Result<dl_deploy::TensorId> {
        let d = self.weight.value().dims();
        let w = crate::export::f32s(self.weight.value());
        let b = self.bias.as_ref().map(|b| crate::export::f32s(b.value()));
        let p = self.params;
        let params = dl_deploy::ConvParams {
            kernel: (d[2], d[3]),
            stride: p.stride,
            padding: p.padding,
            dilation: p.dilation,
            groups: p.groups,
        };
        g.conv2d(x, &w, b.as_deref(), d[0], params)
    }

    fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, T>)) {
        visit_param(path, "weight", &self.weight, f);
        if let Some(b) = &self.bias {
            visit_param(path, "bias", b, f);
        }
    }

    fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, T>)) {
        visit_param_mut(path, "weight", &mut self.weight, f);
        if let Some(b) = &mut self.bias {
            visit_param_mut(path, "bias", b, f);
        }
    }
}
