//! Int8 kernels following TensorFlow Lite's quantization spec, bit-exact with TFLite
//! Micro's reference kernels, as plain functions on slices: no allocation, no panics
//! (every size and parameter is checked up front and reported as an [`Error`]), the
//! same code on a Cortex-M0 and on a desktop.
//!
//! A real value is `scale * (q - zero_point)` with `q` an int8. Layouts are TFLite's:
//! NHWC activations, convolution weights OHWI `[c_out, kh, kw, c_in / groups]`, dense
//! weights `[out, in]`; weights are symmetric (zero point 0), per channel or per
//! tensor; biases are int32 with scale `input_scale * weight_scale`.
//!
//! | here | TFLM source it follows |
//! |---|---|
//! | [`quantize_multiplier`] | `QuantizeMultiplier`, `kernels/internal/quantization_util.cc` |
//! | [`saturating_rounding_doubling_high_mul`], [`rounding_divide_by_pot`] | gemmlowp `fixedpoint/fixedpoint.h` |
//! | [`multiply_by_quantized_multiplier`] | `MultiplyByQuantizedMultiplier(int32_t, ...)`, `kernels/internal/common.cc` (double rounding, the default) |
//! | [`dense_s8`] | `reference_integer_ops::FullyConnectedPerChannel` / `FullyConnected`, `reference/integer_ops/fully_connected.h` |
//! | [`conv2d_s8`] | `reference_integer_ops::ConvPerChannel` (`conv.h`) and `DepthwiseConvPerChannel` (`depthwise_conv.h`) |
//! | [`max_pool_s8`], [`avg_pool_s8`] | `reference_integer_ops::MaxPool` / `AveragePool`, `reference/integer_ops/pooling.h` |
//! | [`mean_params`], [`mean_hw_s8`] | `micro/kernels/reduce_common.cc`, `reference_ops::QuantizedMeanOrSum` (`reference/reduce.h`) |
//! | [`add_params`], [`add_s8`] | `CalculateOpDataAdd` (`micro/kernels/add_common.cc`), `reference_integer_ops::AddFunc` (`reference/integer_ops/add.h`) |
//! | [`softmax_params`], [`softmax_s8`] | `CalculateSoftmaxParams` (`micro/kernels/softmax_common.cc`), `reference_ops::Softmax` (`reference/softmax.h`) |
//! | [`quantize_f32_s8`], [`dequantize_s8_f32`] | `reference_ops::AffineQuantize` / `Dequantize` (`reference/quantize.h`, `dequantize.h`) |
//! | [`lut_s8`] | `LUTLookup` for int8 (`kernels/internal/common.h`) |
//!
//! TFLM's `int32_t` arithmetic wraps where it overflows (undefined in C++, wrapping
//! once compiled); these kernels wrap explicitly, so they agree with TFLM's binaries
//! even there. `tests/quant_tflm.rs` compiles TFLM's reference kernels into a referee
//! and compares the functions above (all but the trivial `lut_s8`) with them, byte
//! for byte, on random cases.
//!
//! ## Dense and convolution: one multiply-accumulate core, several instruction sets
//!
//! [`fold_input_offset`] moves the input zero point into the bias once, so the inner
//! loop multiplies raw int8 inputs by int8 weights (as CMSIS-NN does); convolution
//! copies each output pixel's receptive field into a caller-owned scratch
//! ([`ConvGeometry::scratch_len`] bytes), padding with the input zero point, and both
//! layers run `out[o] = bias[o] + dot(w[o], x)` on one [`Kernel`]:
//!
//! - [`Kernel::Portable`]: plain Rust, two output rows per pass.
//! - [`Kernel::Dsp`]: Cortex-M4/M7 `SXTB16` + `SMLAD` through `asm!` (see
//!   [`Kernel::Dsp`] for how it is enabled). The input is sign-extended once per span
//!   (`SXTB16` and `SXTB16 ROR #8` of each word, kept in a stack buffer), then three
//!   weight rows per pass share each expanded word, sixteen bytes per row per
//!   iteration. Measured on the disassembly (`arm-none-eabi-objdump -d`) of
//!   `thumbv7em-none-eabihf` release code: **1.375 instructions per
//!   multiply-accumulate** in the main loop (66 instructions for 48 MACs: 4 `LDRD`s of
//!   the expanded input, 12 weight loads, 24 `SXTB16`, 24 `SMLAD`, `SUBS` + `BNE`).
//!   The digits MLP (64-32-10) runs 6,940 instructions per inference under QEMU
//!   (`mps2-an386`, `-icount shift=0`), input quantization, output stage and the
//!   firmware's checks included.
//! - [`Kernel::DspEmulated`]: the same loop on exact plain-Rust models of the three
//!   instructions ([`sxtb16`], [`sxtb16_ror8`], [`smlad`]), run by the host's tests.
//! - [`Kernel::Avx2`] and [`Kernel::Avx512Vnni`] on x86-64, picked at run time.
//!
//! All give identical bytes (property-tested). [`dense_s8`] and [`conv2d_s8`] use
//! [`Kernel::best`]; [`dense_s8_with`] and [`conv2d_s8_with`] take one.
//!
//! ```
//! use dl_core::quant::{dequantize_s8_f32, quantize_f32_s8};
//! let mut q = [0i8; 3];
//! quantize_f32_s8(&[-1.0, 0.0, 0.5], 1.0 / 64.0, -10, &mut q).unwrap();
//! assert_eq!(q, [-74, -10, 22]);
//! let mut back = [0.0f32; 3];
//! dequantize_s8_f32(&q, 1.0 / 64.0, -10, &mut back).unwrap();
//! assert_eq!(back, [-1.0, 0.0, 0.5]);
//! ```
//!
//! [`Error`]: crate::Error

mod add;
mod conv;
mod convert;
mod dense;
mod dsp;
mod fixed;
mod kernel;
mod pool;
mod requant;
mod softmax;
mod x86;

pub use add::{add_params, add_s8, AddParams};
pub use conv::{conv2d_s8, conv2d_s8_with, ConvGeometry};
pub use convert::{
    argmax_s8, dequantize_s8_f32, lut_s8, quantize_f32_s8, quantize_f32_s8_validated,
    quantize_f32_s8_with,
};
#[cfg(feature = "alloc")]
pub use dense::PackedDense;
pub use dense::{dense_s8, dense_s8_validated, dense_s8_with};
pub use dsp::{smlad, sxtb16, sxtb16_ror8};
pub use fixed::{
    multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};
pub use kernel::Kernel;
pub use pool::{
    avg_pool_s8, max_pool_s8, max_pool_s8_with, mean_hw_s8, mean_params, MeanParams, PoolGeometry,
};
pub use requant::{fold_input_offset, Requant};
pub use softmax::{softmax_params, softmax_s8, SoftmaxParams};
