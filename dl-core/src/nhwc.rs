//! f32 inference kernels on channels-last (NHWC) activations: the float half of the
//! deployment engine, beside the int8 kernels of [`crate::quant`], sharing their
//! geometry types. Training keeps PyTorch's NCHW ([`crate::conv`]); deployment uses
//! TensorFlow Lite's NHWC, where a pixel's channels and a filter's taps are
//! contiguous.
//!
//! Each output is summed in one fixed order (bias first, then the taps in memory
//! order), the same on every core.

use crate::error::{Error, Result};
use crate::quant::{ConvGeometry, PoolGeometry};

fn check_len(op: &'static str, what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op,
            what,
            expected,
            actual,
        })
    }
}

/// Clamps `v` to `[lo, hi]` and keeps a NaN (which `max`/`min` would turn into a
/// bound), so non-finite inputs surface as they do on the desktop.
#[inline(always)]
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// `y[b, o] = clamp(bias[o] + sum_k x[b, k] * w[o, k], lo, hi)`: a dense layer on
/// `batch` rows, `w: [outputs, inputs]` (PyTorch's layout); `lo`/`hi` fuse ReLU
/// (`0, inf`), ReLU6 (`0, 6`) or nothing (`-inf, inf`).
#[allow(clippy::too_many_arguments)]
pub fn dense(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    batch: usize,
    inputs: usize,
    outputs: usize,
    lo: f32,
    hi: f32,
    y: &mut [f32],
) -> Result<()> {
    const OP: &str = "dense";
    check_len(OP, "input", batch * inputs, x.len())?;
    check_len(OP, "weights", outputs * inputs, w.len())?;
    check_len(OP, "output", batch * outputs, y.len())?;
    if let Some(b) = bias {
        check_len(OP, "bias", outputs, b.len())?;
    }
    if inputs == 0 {
        for row in y.chunks_exact_mut(outputs.max(1)) {
            for (o, v) in row.iter_mut().enumerate() {
                *v = clamp(bias.map_or(0.0, |b| b[o]), lo, hi);
            }
        }
        return Ok(());
    }
    for (xr, yr) in x
        .chunks_exact(inputs)
        .zip(y.chunks_exact_mut(outputs.max(1)))
    {
        // Two weight rows per pass share each input load.
        let mut rows = w.chunks_exact(2 * inputs);
        let mut o = 0;
        for pair in &mut rows {
            let (w0, w1) = pair.split_at(inputs);
            let (mut a0, mut a1) = match bias {
                Some(b) => (b[o], b[o + 1]),
                None => (0.0, 0.0),
            };
            for ((&xv, &u), &v) in xr.iter().zip(w0).zip(w1) {
                a0 += xv * u;
                a1 += xv * v;
            }
            yr[o] = clamp(a0, lo, hi);
            yr[o + 1] = clamp(a1, lo, hi);
            o += 2;
        }
        let last = rows.remainder();
        if !last.is_empty() {
            let mut a = bias.map_or(0.0, |b| b[o]);
            for (&xv, &u) in xr.iter().zip(last) {
                a += xv * u;
            }
            yr[o] = clamp(a, lo, hi);
        }
    }
    Ok(())
}

/// Convolution on NHWC input with OHWI weights (`[c_out, kh, kw, c_in / groups]`),
/// zero padding, groups (depthwise when `groups == c_in`), a fused clamp.
pub fn conv2d(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    lo: f32,
    hi: f32,
    y: &mut [f32],
) -> Result<()> {
    const OP: &str = "conv2d_nhwc";
    let cpg = g.c_in / g.groups.max(1);
    let opg = g.c_out / g.groups.max(1);
    check_len(OP, "input", g.n * g.h * g.w * g.c_in, x.len())?;
    check_len(OP, "weights", g.c_out * g.kh * g.kw * cpg, w.len())?;
    check_len(OP, "output", g.n * g.out_h * g.out_w * g.c_out, y.len())?;
    if let Some(b) = bias {
        check_len(OP, "bias", g.c_out, b.len())?;
    }
    let taps = g.kh * g.kw * cpg;
    let mut yi = 0;
    for n in 0..g.n {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for oc in 0..g.c_out {
                    let grp = oc / opg.max(1);
                    let wrow = &w[oc * taps..(oc + 1) * taps];
                    let mut acc = bias.map_or(0.0, |b| b[oc]);
                    for ky in 0..g.kh {
                        let iy = (oy * g.stride.0 + ky * g.dilation.0) as isize - g.pad.0 as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kx in 0..g.kw {
                            let ix =
                                (ox * g.stride.1 + kx * g.dilation.1) as isize - g.pad.1 as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            let px =
                                ((n * g.h + iy as usize) * g.w + ix as usize) * g.c_in + grp * cpg;
                            let wk = (ky * g.kw + kx) * cpg;
                            for (&a, &b) in x[px..px + cpg].iter().zip(&wrow[wk..wk + cpg]) {
                                acc += a * b;
                            }
                        }
                    }
                    y[yi] = clamp(acc, lo, hi);
                    yi += 1;
                }
            }
        }
    }
    Ok(())
}

/// Visits each output of a pooling window: `f(output index, taps)` where `taps`
/// yields the input indices of the in-bounds taps, and the window's full size.
fn pool_windows(g: &PoolGeometry, mut f: impl FnMut(usize, &mut dyn Iterator<Item = usize>)) {
    let mut yi = 0;
    for n in 0..g.n {
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                for c in 0..g.c {
                    let y0 = (oy * g.stride.0) as isize - g.pad.0 as isize;
                    let x0 = (ox * g.stride.1) as isize - g.pad.1 as isize;
                    let mut taps = (0..g.kh)
                        .flat_map(move |ky| {
                            (0..g.kw).map(move |kx| (y0 + ky as isize, x0 + kx as isize))
                        })
                        .filter(|&(iy, ix)| {
                            iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w
                        })
                        .map(|(iy, ix)| ((n * g.h + iy as usize) * g.w + ix as usize) * g.c + c);
                    f(yi, &mut taps);
                    yi += 1;
                }
            }
        }
    }
}

fn check_pool(op: &'static str, g: &PoolGeometry, x: usize, y: usize) -> Result<()> {
    check_len(op, "input", g.n * g.h * g.w * g.c, x)?;
    check_len(op, "output", g.n * g.out_h * g.out_w * g.c, y)
}

/// Max pooling on NHWC; padded taps never win (as PyTorch and TensorFlow Lite).
pub fn max_pool(g: &PoolGeometry, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_pool("max_pool_nhwc", g, x.len(), y.len())?;
    pool_windows(g, |i, taps| {
        y[i] = taps.map(|t| x[t]).fold(f32::NEG_INFINITY, f32::max);
    });
    Ok(())
}

/// Average pooling on NHWC: divides by the window's full size when
/// `count_include_pad` (PyTorch's default), else by its in-bounds taps (TensorFlow
/// Lite's rule).
pub fn avg_pool(g: &PoolGeometry, x: &[f32], count_include_pad: bool, y: &mut [f32]) -> Result<()> {
    check_pool("avg_pool_nhwc", g, x.len(), y.len())?;
    let full = (g.kh * g.kw) as f32;
    pool_windows(g, |i, taps| {
        let (mut sum, mut count) = (0.0f32, 0usize);
        for t in taps {
            sum += x[t];
            count += 1;
        }
        y[i] = sum
            / if count_include_pad {
                full
            } else {
                count.max(1) as f32
            };
    });
    Ok(())
}

/// Global average pooling: `y[n, c]` is the mean of `x[n, :, :, c]` over `hw`
/// pixels.
pub fn mean_hw(x: &[f32], n: usize, hw: usize, c: usize, y: &mut [f32]) -> Result<()> {
    check_len("mean_hw", "input", n * hw * c, x.len())?;
    check_len("mean_hw", "output", n * c, y.len())?;
    for b in 0..n {
        let out = &mut y[b * c..(b + 1) * c];
        out.fill(0.0);
        for p in 0..hw {
            let px = &x[(b * hw + p) * c..(b * hw + p + 1) * c];
            for (o, &v) in out.iter_mut().zip(px) {
                *o += v;
            }
        }
        for o in out.iter_mut() {
            *o /= hw as f32;
        }
    }
    Ok(())
}

/// `y = clamp(a + b, lo, hi)` element-wise (a residual connection).
pub fn add(a: &[f32], b: &[f32], lo: f32, hi: f32, y: &mut [f32]) -> Result<()> {
    check_len("add", "second addend", a.len(), b.len())?;
    check_len("add", "output", a.len(), y.len())?;
    for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
        *o = clamp(u + v, lo, hi);
    }
    Ok(())
}
