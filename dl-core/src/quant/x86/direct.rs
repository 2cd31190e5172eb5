//! A direct int8 convolution on the AVX-512 VNNI kernel for layers of at most sixteen
//! output channels (16 divisible by their number): no patch matrix, the
//! multiply-accumulates read the padded input image in place.
//!
//! A register's sixteen 32-bit lanes hold `P = 16 / c_out` adjacent output pixels of
//! one output row, `c_out` channels each, in the output's own NHWC order: one
//! requantization and one 16-byte store make `P` whole pixels (the general packed
//! kernel keeps one pixel per register, so a layer of 8 channels would leave half the
//! lanes, and half of each requantization, idle). For each row of taps and each group
//! of four of its bytes, the four input bytes of every pixel are fetched at once:
//! for `P = 1` one `vpbroadcastd`; for `P > 1`, sixteen bytes of the image row
//! broadcast to every 128-bit lane (`vbroadcasti32x4`) and `vpshufb` picks each lane's
//! pixel (`p * stride * c_in` bytes further), so the pixels of a register must lie
//! within those sixteen bytes. The weights are packed once per call to match: lane
//! `l` holds channel `l % c_out`'s four weights of the group, zero past the row of
//! taps (so whatever bytes follow a row in the image meet zero weights).
//!
//! As everywhere in the VNNI kernel the input is sign-flipped (`x ^ 0x80`, the
//! unsigned `x + 128` that `vpdpbusd` takes; the image is copied flipped into a
//! padded buffer whose border holds the flipped zero point) and `128 * sum(w)` is
//! taken off the bias, all in wrapping 32-bit arithmetic, and the output stage is
//! [`super::vnni`]'s vector form of TFLM's: the same bits as the portable kernel.
//! Eight registers of pixels are accumulated per pass, so each weight vector loaded
//! serves eight `vpdpbusd` and eight independent sums keep the unit busy. Batches
//! split their images over the gemm's threads (each image is computed the same way
//! on any thread).

// Tiles are indexed by pixel group.
#![allow(clippy::needless_range_loop)]

use super::super::conv::ConvGeometry;
use super::super::requant::Requant;
use super::vnni::{requant16, stage_lanes, store, Stage};
use super::{column_parts, flip_into, for_column_blocks, has_vnni};
use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// Bytes of the padded, flipped image kept on the stack (slack included).
const PADDED: usize = 16 * 1024;
/// Readable bytes after the padded image beyond the last pass's reach: its last
/// 16-byte fetch.
const SLACK: usize = 16;
/// Most weight vectors (`kh * ceil(kw * c_in / 4)`) packed on the stack.
const MAX_VECS: usize = 64;
/// Registers of pixels accumulated per pass.
const TILE: usize = 8;

/// The sizes the kernel works with, derived once per call.
#[derive(Clone, Copy)]
struct Plan {
    /// Pixels per register.
    p: usize,
    /// Groups of four bytes per row of taps.
    groups: usize,
    /// Padded image width.
    pw: usize,
    /// Bytes of the padded buffer, slack included.
    bytes: usize,
}

impl Plan {
    fn new(g: &ConvGeometry) -> Option<Self> {
        if g.groups != 1 || g.dilation.1 != 1 || g.c_out > 16 || 16 % g.c_out != 0 {
            return None;
        }
        let p = 16 / g.c_out;
        let groups = (g.kw * g.c_in).div_ceil(4);
        if g.kh.checked_mul(groups)? > MAX_VECS {
            return None;
        }
        // Every pixel of a register within the sixteen bytes fetched for the first.
        if p > 1 && (p - 1) * g.stride.1 * g.c_in + 3 >= 16 {
            return None;
        }
        // The farthest taps from the padded origin, as the input reaches.
        let ph = ((g.out_h - 1) * g.stride.0 + (g.kh - 1) * g.dilation.0 + 1).max(g.pad.0 + g.h);
        let pw = ((g.out_w - 1) * g.stride.1 + g.kw).max(g.pad.1 + g.w);
        // The last row's last pass reads up to `TILE * p` pixels from its start.
        let reach = (TILE * p).checked_mul(g.stride.1 * g.c_in)?;
        let bytes = ph
            .checked_mul(pw)?
            .checked_mul(g.c_in)?
            .checked_add(reach + 4 * groups + SLACK)?;
        (bytes <= PADDED).then_some(Plan {
            p,
            groups,
            pw,
            bytes,
        })
    }
}

/// The weights packed for the kernel, with the bias corrected for the flipped input.
struct Packed {
    /// Vector `u * groups + gi`: lane `l`'s four bytes are channel `l % c_out`'s
    /// weights `4 gi..4 gi + 4` of tap row `u` (zero past the row).
    w: [[u8; 64]; MAX_VECS],
    /// Lane `l`: `bias[l % c_out] - 128 * sum(w[l % c_out])` (wrapping).
    bias: [i32; 16],
}

/// [`super::super::conv2d_s8`] on the direct kernel; `false`, having done nothing, if
/// the CPU lacks VNNI or the layer is not one the kernel takes (see the module doc:
/// ungrouped, adjacent taps in a row, `16 % c_out == 0`, a padded image within
/// [`PADDED`] bytes). The caller has checked the geometry, the lengths (`x`, `w`,
/// `bias`, `y`) and validated `rq` for `c_out` channels.
pub(crate) fn conv2d(
    g: &ConvGeometry,
    x: &[i8],
    w: &[i8],
    bias: &[i32],
    input_zero_point: i8,
    rq: &Requant<'_>,
    y: &mut [i8],
) -> bool {
    if !has_vnni() {
        return false;
    }
    let Some(plan) = Plan::new(g) else {
        return false;
    };
    assert!(
        x.len() >= g.input_len()
            && w.len() >= g.weight_len()
            && bias.len() >= g.c_out
            && y.len() >= g.output_len()
            && (rq.multiplier.len() == 1 || rq.multiplier.len() >= g.c_out)
            && rq.shift.len() == rq.multiplier.len()
    );
    // SAFETY: the CPU has VNNI; the lengths are as asserted above.
    let packed = unsafe { pack(g, plan, w, bias) };
    let pad = input_zero_point as u8 ^ 0x80;
    let image_in = g.h * g.w * g.c_in;
    let image_out = g.out_h * g.out_w * g.c_out;
    for_column_blocks(
        column_parts(g.n, image_in),
        g.n,
        image_out,
        y,
        &|b0, n, part| {
            // SAFETY: the CPU has VNNI (checked above); `x` holds images `b0..b0 + n`
            // and `part` their outputs (asserted above, split by `for_column_blocks`);
            // `plan` fits the geometry.
            unsafe { images(g, plan, &packed, rq, pad, &x[b0 * image_in..], n, part) }
        },
    );
    true
}

/// Packs the weights and corrects the bias (see [`Packed`]): each vector one gather
/// of the sixteen lanes' four bytes (a byte at a time would cost as much as the
/// convolution of a small image), a row's last partial group byte by byte; the
/// weight sums by `vpdpbusd` of ones with the packed vectors (each lane sums its
/// channel's weights once; the padding adds nothing).
///
/// # Safety
/// The CPU has AVX-512F, BW and VNNI; `w` holds `c_out * kh * kw * c_in` bytes and
/// `bias` `c_out` values; `plan` is `Plan::new(g)`'s.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn pack(g: &ConvGeometry, plan: Plan, w: &[i8], bias: &[i32]) -> Packed {
    let row = g.kw * g.c_in;
    let k = g.kh * row;
    let mut packed = Packed {
        w: [[0; 64]; MAX_VECS],
        bias: [0; 16],
    };
    // Lane l: channel l % c_out, counted rather than divided for.
    let (mut start, mut lane_bias) = ([0i32; 16], [0i32; 16]);
    let mut o = 0;
    for l in 0..16 {
        // Fits: `Plan::new` bounds k by 4 * MAX_VECS and c_out by 16.
        start[l] = (o * k) as i32;
        lane_bias[l] = bias[o];
        o = if o + 1 == g.c_out { 0 } else { o + 1 };
    }
    let start = _mm512_loadu_si512(start.as_ptr().cast());
    let ones = _mm512_set1_epi8(1);
    let mut sums = _mm512_setzero_si512();
    for u in 0..g.kh {
        for gi in 0..plan.groups {
            let at = u * row + 4 * gi;
            let v = if 4 * gi + 4 <= row {
                // SAFETY: lane l reads bytes at..at + 4 of channel l % c_out's
                // weights, inside `w`.
                _mm512_i32gather_epi32::<1>(
                    _mm512_add_epi32(start, _mm512_set1_epi32(at as i32)),
                    w.as_ptr().cast(),
                )
            } else {
                let mut bytes = [0u8; 64];
                let mut o = 0;
                for l in 0..16 {
                    for t in 0..row - 4 * gi {
                        bytes[4 * l + t] = w[o * k + at + t] as u8;
                    }
                    o = if o + 1 == g.c_out { 0 } else { o + 1 };
                }
                _mm512_loadu_si512(bytes.as_ptr().cast())
            };
            sums = _mm512_dpbusd_epi32(sums, ones, v);
            _mm512_storeu_si512(packed.w[u * plan.groups + gi].as_mut_ptr().cast(), v);
        }
    }
    let corrected = _mm512_sub_epi32(
        _mm512_loadu_si512(lane_bias.as_ptr().cast()),
        _mm512_slli_epi32::<7>(sums),
    );
    _mm512_storeu_si512(packed.bias.as_mut_ptr().cast(), corrected);
    packed
}

/// `n` images from `x` into `y` (their outputs).
///
/// # Safety
/// The CPU has AVX-512F, BW and VNNI; `x` holds `n` images and `y` their outputs;
/// `plan` is `Plan::new(g)`'s.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn images(
    g: &ConvGeometry,
    plan: Plan,
    packed: &Packed,
    rq: &Requant<'_>,
    pad: u8,
    x: &[i8],
    n: usize,
    y: &mut [i8],
) {
    let st = stage_lanes(rq, g.c_out);
    let bias = _mm512_loadu_si512(packed.bias.as_ptr().cast());
    // Byte `t` of lane `l` is byte `t` of its pixel's four, `l / c_out` pixels on.
    // (Loops by pixel rather than divisions by `c_out`: a division per lane costs
    // as much as a few pixels at batch 1.)
    let mut ctrl = [0u8; 64];
    let px_bytes = g.stride.1 * g.c_in;
    for (px, lanes) in ctrl.chunks_exact_mut(4 * g.c_out).enumerate() {
        for (i, b) in lanes.iter_mut().enumerate() {
            *b = (px * px_bytes + i % 4) as u8;
        }
    }
    let ctrl = _mm512_loadu_si512(ctrl.as_ptr().cast());
    let mut space = MaybeUninit::<[u8; PADDED]>::uninit();
    let buf = space.as_mut_ptr().cast::<u8>();
    // The border (and slack) keeps the flipped zero point from image to image.
    buf.write_bytes(pad, plan.bytes);
    let c = g.c_in;
    let (image_in, image_out) = (g.h * g.w * c, g.out_h * g.out_w * g.c_out);
    let k = Pass {
        g,
        plan,
        w: packed.w.as_ptr().cast(),
        bias,
        ctrl,
        row_step: g.dilation.0 * plan.pw * c,
        px_step: g.stride.1 * c,
    };
    for b in 0..n {
        let image = &x[b * image_in..(b + 1) * image_in];
        let interior = core::slice::from_raw_parts_mut(buf, plan.bytes);
        for r in 0..g.h {
            let at = ((g.pad.0 + r) * plan.pw + g.pad.1) * c;
            flip_into(&image[r * g.w * c..(r + 1) * g.w * c], &mut interior[at..]);
        }
        for i in 0..g.out_h {
            let top = buf.add(i * g.stride.0 * plan.pw * c);
            let out = y.as_mut_ptr().add(b * image_out + i * g.out_w * g.c_out);
            if plan.p == 1 {
                k.row::<false>(top, out, &st);
            } else {
                k.row::<true>(top, out, &st);
            }
        }
    }
}

/// What one output row's passes share.
struct Pass<'g> {
    g: &'g ConvGeometry,
    plan: Plan,
    /// The packed weight vectors.
    w: *const __m512i,
    bias: __m512i,
    ctrl: __m512i,
    /// Bytes between rows of taps, and between adjacent output pixels' taps.
    row_step: usize,
    px_step: usize,
}

impl Pass<'_> {
    /// One output row: its taps start at `top`; results to `out`. `WIDE` is `p > 1`.
    ///
    /// # Safety
    /// As [`images`]; `top` is the first tap of the row in the padded buffer, `out`
    /// has room for the row's `out_w * c_out` bytes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn row<const WIDE: bool>(&self, top: *const u8, out: *mut i8, st: &Stage) {
        let (p, c_out, out_w) = (self.plan.p, self.g.c_out, self.g.out_w);
        let mut j = 0;
        // Whole passes to the row's end: the registers past it read bytes of the
        // buffer (the next rows, the slack) and are not stored.
        while j < out_w {
            let acc = self.tile::<TILE, WIDE>(top.add(j * self.px_step));
            for t in 0..TILE {
                let at = j + t * p;
                if at >= out_w {
                    break;
                }
                let live = p.min(out_w - at) * c_out;
                store(out.add(at * c_out), live, requant16(acc[t], st));
            }
            j += TILE * p;
        }
    }

    /// `T` registers of `p` pixels each, their first tap at `at`: the sums.
    ///
    /// # Safety
    /// As [`Pass::row`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile<const T: usize, const WIDE: bool>(&self, at: *const u8) -> [__m512i; T] {
        let mut acc = [self.bias; T];
        let step = self.plan.p * self.px_step;
        for u in 0..self.g.kh {
            let row = at.add(u * self.row_step);
            for gi in 0..self.plan.groups {
                let wv = _mm512_loadu_si512(self.w.add(u * self.plan.groups + gi).cast());
                for t in 0..T {
                    let src = row.add(t * step + 4 * gi);
                    let xv = if WIDE {
                        let v = _mm512_broadcast_i32x4(_mm_loadu_si128(src.cast()));
                        _mm512_shuffle_epi8(v, self.ctrl)
                    } else {
                        _mm512_set1_epi32(src.cast::<i32>().read_unaligned())
                    };
                    acc[t] = _mm512_dpbusd_epi32(acc[t], xv, wv);
                }
            }
        }
        acc
    }
}
