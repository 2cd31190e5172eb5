//! 2-D convolution layer, as `torch.nn.Conv2d`: input `[N, C_in, H, W]`, weight
//! `[C_out, C_in, kh, kw]`, bias `[C_out]`, output `[N, C_out, H_out, W_out]` with
//! `H_out = (H + 2 pad - dil (kh - 1) - 1) / stride + 1` (likewise `W_out`).

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
    /// Stride, padding and dilation.
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
        self.params.validate()?;
        Ok(())
    }

    /// The layer with PyTorch's default initialization (weights and bias
    /// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, `fan_in = C_in kh kw`).
    pub fn init<T: Scalar>(self, rng: &mut Rng) -> Result<Conv2d<T>> {
        self.validate()?;
        let (kh, kw) = self.kernel;
        let fan_in = self.in_channels * kh * kw;
        let mut w = Tensor::zeros(&[self.out_channels, self.in_channels, kh, kw])?;
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
    /// `[C_out, C_in, kh, kw]`.
    pub weight: Param<T>,
    /// `[C_out]`, if any.
    pub bias: Option<Param<T>>,
    /// Stride, padding, dilation.
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
