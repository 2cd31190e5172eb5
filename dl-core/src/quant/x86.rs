//! x86-64 multiply-accumulate kernels: AVX-512 VNNI and AVX2.
//!
//! - VNNI (`vpdpbusd`, unsigned x signed bytes into 32-bit lanes, non-saturating):
//!   the input is made unsigned by flipping its sign bit (`x ^ 0x80 = x + 128`), so
//!   each lane sums `(x + 128) * w`, and `128 * sum(w)` is taken off the bias (a
//!   `vpdpbusd` pass of the weights with a vector of ones). Every step wraps mod 2^32
//!   like the portable loop, so the result is the same bits. Sixteen output channels
//!   live in the lanes of one register and are requantized there (TFLM's output
//!   stage in vector form, bit for bit), so an output costs a fraction of an
//!   instruction beyond its multiply-accumulates; see [`vnni`] for its two loops (one
//!   input at a time, or a panel of inputs against weights packed per call), and
//!   [`mat_mul_vnni`] for when each runs and how large calls split over threads.
//! - AVX2: register tiles of 4 weight rows by 2 input vectors; `vpmovsxbw` widens 16
//!   bytes to 16 words and `vpmaddwd` multiplies and adds pairs into 32-bit lanes:
//!   exact, as an int8 product pair sums to at most 2^15 (`vpmaddubsw` would
//!   saturate at 16 bits, so it is not used); results go through the caller's
//!   scalar output stage.
//!
//! Detection runs once and is cached (`is_x86_feature_detected!` under `std`; the
//! compile-time target features without it).

use super::kernel::Kernel;
#[cfg(target_arch = "x86_64")]
use super::kernel::Out;

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn features() -> (bool, bool) {
    use core::sync::atomic::{AtomicU8, Ordering};
    const KNOWN: u8 = 0x80;
    static CACHE: AtomicU8 = AtomicU8::new(0);
    let mut bits = CACHE.load(Ordering::Relaxed);
    if bits & KNOWN == 0 {
        let avx2 = std::is_x86_feature_detected!("avx2");
        let vnni = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni");
        bits = KNOWN | u8::from(avx2) | (u8::from(vnni) << 1);
        CACHE.store(bits, Ordering::Relaxed);
    }
    (bits & 1 != 0, bits & 2 != 0)
}

#[cfg(all(target_arch = "x86_64", not(feature = "std")))]
fn features() -> (bool, bool) {
    (
        cfg!(target_feature = "avx2"),
        cfg!(all(
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        )),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn features() -> (bool, bool) {
    (false, false)
}

/// Whether the AVX2 kernel can run.
pub(crate) fn has_avx2() -> bool {
    features().0
}

/// Whether the AVX-512 VNNI kernel can run.
pub(crate) fn has_vnni() -> bool {
    features().1
}

/// The best x86 kernel this CPU runs, if any.
pub(crate) fn best() -> Option<Kernel> {
    match features() {
        (_, true) => Some(Kernel::Avx512Vnni),
        (true, false) => Some(Kernel::Avx2),
        _ => None,
    }
}

/// [`super::kernel::mat_mul`]'s loop for `Kernel::Avx2`, results through `emit`; the
/// caller has checked that the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_mul_avx2(
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    cols: usize,
    bias: &[i32],
    emit: &mut impl FnMut(usize, usize, i32),
) {
    assert!(
        w.len() >= rows * k && x.len() >= cols * k && bias.len() >= rows && rows > 0 && cols > 0
    );
    if has_avx2() {
        // SAFETY: the CPU has AVX2 (checked just above); the lengths the kernel's
        // pointer reads rely on are asserted above.
        unsafe { avx2::mat_mul(w, rows, k, x, cols, bias, emit) }
    }
}

/// Checks what the VNNI kernels' pointer reads and writes rely on (see
/// [`vnni::mat_mul_rows`]), apart from `x`.
#[cfg(target_arch = "x86_64")]
fn check_vnni(w: &[i8], rows: usize, k: usize, cols: usize, bias: &[i32], out: &Out<'_, '_>) {
    assert!(
        has_vnni()
            && rows > 0
            && cols > 0
            && w.len() >= rows * k
            && bias.len() >= rows
            && out.ldy >= rows
            && out.y.len() >= (cols - 1) * out.ldy + rows
    );
}

/// Most parts a call's columns are split into (the gemm's pool has at most 16
/// threads).
#[cfg(target_arch = "x86_64")]
const MAX_PARTS: usize = 16;

/// Input bytes (columns times `k`) from which a call splits its columns over the
/// gemm's threads: below, handing parts to the pool (about a microsecond, more when
/// the other cores are busy) costs more than it saves (the digits MLP's first layer
/// at batch 256, 16 KiB, stays on one thread; the MNIST CNN's layers at batch 256,
/// 200 KiB and more, split).
#[cfg(target_arch = "x86_64")]
const PARALLEL_BYTES: usize = 1 << 16;

/// Parts a call of `cols` input vectors of `k` bytes splits into: one below
/// [`PARALLEL_BYTES`], else one per thread with at least 16 columns each.
#[cfg(target_arch = "x86_64")]
fn column_parts(cols: usize, k: usize) -> usize {
    if cols.saturating_mul(k) < PARALLEL_BYTES {
        1
    } else {
        threads_for(cols)
    }
}

/// One part per thread of the gemm's pool, at most [`MAX_PARTS`], each with at
/// least 16 of the `cols` columns.
#[cfg(target_arch = "x86_64")]
fn threads_for(cols: usize) -> usize {
    crate::gemm::num_threads()
        .min(MAX_PARTS)
        .min(cols / 16)
        .max(1)
}

/// Runs `f(c0, n, y_part)` over `parts` blocks of the `cols` columns (at most
/// [`MAX_PARTS`]), on the gemm's threads (the caller's included) when there are
/// several, each block with the part of `y` its columns write (`ldy` bytes per
/// column). Every result is computed exactly as on one thread: the blocks share
/// nothing.
#[cfg(target_arch = "x86_64")]
fn for_column_blocks(
    parts: usize,
    cols: usize,
    ldy: usize,
    y: &mut [i8],
    f: &(dyn Fn(usize, usize, &mut [i8]) + Sync),
) {
    let parts = parts.min(MAX_PARTS);
    if parts <= 1 {
        return f(0, cols, y);
    }
    let per = cols.div_ceil(parts);
    let mut rest = Some(y);
    let mut blocks: [(usize, usize, Option<&mut [i8]>); MAX_PARTS] = core::array::from_fn(|p| {
        let (c0, c1) = ((p * per).min(cols), ((p + 1) * per).min(cols));
        let part = rest.take().map(|r| {
            let cut = if c1 == cols { r.len() } else { (c1 - c0) * ldy };
            let (part, r) = r.split_at_mut(cut.min(r.len()));
            rest = Some(r);
            part
        });
        (c0, c1 - c0, part)
    });
    crate::gemm::for_each_mut(&mut blocks[..parts], &|_, (c0, n, part)| {
        if let Some(part) = part {
            if *n > 0 {
                f(*c0, *n, part);
            }
        }
    });
}

/// [`super::kernel::mat_mul`] for `Kernel::Avx512Vnni`: the packed kernel for four
/// or more input vectors (a batch), the row kernel for fewer or for weights too large
/// to pack on the stack; large batches split over threads. The caller has checked
/// that the CPU has VNNI.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_mul_vnni(
    w: &[i8],
    rows: usize,
    k: usize,
    x: &[i8],
    cols: usize,
    bias: &[i32],
    out: &mut Out<'_, '_>,
) {
    check_vnni(w, rows, k, cols, bias, out);
    assert!(x.len() >= cols * k);
    let (rq, ch0, ldy) = (out.rq, out.ch0, out.ldy);
    let seg = vnni::Segments::one(k);
    if cols >= 4 && k > 0 && vnni::packable(rows, seg) {
        let k4 = seg.stride();
        let fill = |c0: usize, n: usize, panel: &mut [u8]| {
            let src = &x[c0 * k..(c0 + n) * k];
            if k4 == k {
                // Rows without padding: one run, 64 bytes per instruction.
                // SAFETY: the CPU has VNNI (so AVX-512F), checked by `check_vnni`.
                return unsafe { vector::flip_avx512(src, panel) };
            }
            for (src, dst) in src.chunks_exact(k).zip(panel.chunks_exact_mut(k4)) {
                flip_into(src, &mut dst[..k]);
            }
        };
        for_column_blocks(column_parts(cols, k), cols, ldy, out.y, &|c0, n, y| {
            let mut part = Out { rq, ch0, y, ldy };
            let mut fill = |c: usize, m: usize, panel: &mut [u8]| fill(c0 + c, m, panel);
            // SAFETY: the CPU has VNNI; the lengths are as checked above, and `y`
            // holds this block's columns.
            let done = unsafe { vnni::mat_mul_packed(w, rows, seg, n, bias, &mut part, &mut fill) };
            debug_assert!(done);
        });
    } else if cols.saturating_mul(k) < PARALLEL_BYTES {
        // One thread anyway: straight to the kernel (at batch 1 the detour through
        // the block splitter's closure is a measurable part of a small layer).
        // SAFETY: the CPU has VNNI; the lengths are as checked above.
        unsafe { vnni::mat_mul_rows(w, rows, k, x, cols, bias, out) }
    } else {
        for_column_blocks(column_parts(cols, k), cols, ldy, out.y, &|c0, n, y| {
            let mut part = Out { rq, ch0, y, ldy };
            let x = &x[c0 * k..(c0 + n) * k];
            // SAFETY: as above, and `x` holds this block's `n * k` bytes.
            unsafe { vnni::mat_mul_rows(w, rows, k, x, n, bias, &mut part) }
        });
    }
}

/// [`mat_mul_vnni`] on input vectors that `fill(c0, n, panel)` writes, `n` at a time,
/// sign-flipped ([`flip_into`]) into the kernel's panel as [`vnni::mat_mul_packed`]
/// lays it out for `seg` (a convolution's patches, gathered straight into it);
/// `fill` may run on several threads at once, for disjoint columns. The weights are
/// rows of `seg.count * seg.len` bytes. Returns `false`, having done nothing, if the
/// layer is too large for the packed kernel.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn mat_mul_vnni_filled(
    w: &[i8],
    rows: usize,
    seg: Segments,
    cols: usize,
    bias: &[i32],
    out: &mut Out<'_, '_>,
    fill: &(dyn Fn(usize, usize, &mut [u8]) + Sync),
) -> bool {
    let k = seg.count * seg.len;
    check_vnni(w, rows, k, cols, bias, out);
    if k == 0 || !vnni::packable(rows, seg) {
        return false;
    }
    let (rq, ch0, ldy) = (out.rq, out.ch0, out.ldy);
    for_column_blocks(column_parts(cols, k), cols, ldy, out.y, &|c0, n, y| {
        let mut part = Out { rq, ch0, y, ldy };
        let mut fill = |c: usize, m: usize, panel: &mut [u8]| fill(c0 + c, m, panel);
        // SAFETY: the CPU has VNNI; the lengths are as checked above, and `y` holds
        // this block's columns.
        let done = unsafe { vnni::mat_mul_packed(w, rows, seg, n, bias, &mut part, &mut fill) };
        debug_assert!(done);
    });
    true
}

#[cfg(target_arch = "x86_64")]
pub(crate) use vnni::Segments;

#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(all(target_arch = "x86_64", feature = "alloc"))]
mod packed;
#[cfg(target_arch = "x86_64")]
mod vector;

#[cfg(all(target_arch = "x86_64", feature = "alloc"))]
pub(crate) use packed::PackedVnni;

#[cfg(target_arch = "x86_64")]
pub(crate) use direct::conv2d as conv_direct;

/// [`super::quantize_f32_s8`]'s loop on `kernel`'s vector unit (AVX-512F for
/// `Avx512Vnni`, AVX2 for `Avx2`), `scalar` being the portable formula for one value
/// (the AVX2 loop's last few). Returns `false`, having done nothing, for the other
/// kernels or a CPU without the features. The same bits as `scalar` on every value.
#[cfg(target_arch = "x86_64")]
pub(crate) fn quantize_f32_s8(
    kernel: Kernel,
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
    scalar: impl Fn(f32) -> i8 + Sync,
) -> bool {
    assert!(y.len() >= x.len());
    // `quantize_part` checks the CPU's features itself.
    if !matches!(kernel, Kernel::Avx512Vnni | Kernel::Avx2) {
        return false;
    }
    let parts = if x.len() < QUANTIZE_PARALLEL {
        1
    } else {
        crate::gemm::num_threads().min(MAX_PARTS)
    };
    if parts <= 1 {
        return quantize_part(kernel, x, scale, zero_point, y, &scalar);
    }
    quantize_parts(kernel, parts, x, scale, zero_point, y, scalar)
}

/// [`quantize_f32_s8`] split over `parts` of the pool's threads: a function of its
/// own, so that the one-thread call above keeps a small stack frame (the array of
/// parts made it cost as much as the quantization of a 64-value input).
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn quantize_parts(
    kernel: Kernel,
    parts: usize,
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
    scalar: impl Fn(f32) -> i8 + Sync,
) -> bool {
    if !kernel.is_available() {
        return false;
    }
    // Whole vectors per part; each value is computed alone, so any split gives the
    // same bits.
    let per = x.len().div_ceil(parts).next_multiple_of(16);
    let mut rest = Some(&mut y[..x.len()]);
    let mut blocks: [(usize, Option<&mut [i8]>); MAX_PARTS] = core::array::from_fn(|p| {
        let start = (p * per).min(x.len());
        let part = rest.take().map(|r| {
            let (part, r) = r.split_at_mut(per.min(r.len()));
            rest = Some(r);
            part
        });
        (start, part)
    });
    crate::gemm::for_each_mut(&mut blocks[..parts], &|_, (start, part)| {
        if let Some(part) = part {
            let x = &x[*start..*start + part.len()];
            quantize_part(kernel, x, scale, zero_point, part, &scalar);
        }
    });
    true
}

/// Values from which [`quantize_f32_s8`] splits over the gemm's threads. Measured
/// on this 2-core Zen 4 (shared): AVX-512 quantizes about 3.4 values per nanosecond,
/// and handing half to the pool cost about 5 µs, so splitting the digits MLP's 16 Ki
/// inputs at batch 256 made the whole model 2.4x slower (22 µs, was 9.4), while the
/// MNIST CNN's 200 Ki at batch 256 (about 60 µs) gain some 25 µs. 64 Ki values
/// (about 19 µs) is the least that splits.
#[cfg(target_arch = "x86_64")]
const QUANTIZE_PARALLEL: usize = 1 << 16;

/// [`quantize_f32_s8`] on this thread.
#[cfg(target_arch = "x86_64")]
fn quantize_part(
    kernel: Kernel,
    x: &[f32],
    scale: f32,
    zero_point: i32,
    y: &mut [i8],
    scalar: &(impl Fn(f32) -> i8 + Sync),
) -> bool {
    match kernel {
        // SAFETY: the CPU has AVX-512F (VNNI implies it), and `y` is long enough.
        Kernel::Avx512Vnni if has_vnni() => unsafe {
            vector::quantize_avx512(x, scale, zero_point, y)
        },
        // SAFETY: the CPU has AVX2, and `y` is long enough.
        Kernel::Avx2 if has_avx2() => unsafe {
            vector::quantize_avx2(x, scale, zero_point, y, scalar)
        },
        _ => return false,
    }
    true
}

/// [`super::max_pool_s8`] for a 2x2 window, stride 2, no padding and every window
/// inside the input, on the AVX-512BW kernel ([`vector::max_pool_2x2_avx512`]) when
/// `kernel` is `Avx512Vnni` and the CPU has it. Returns `false`, having done nothing,
/// for any other geometry or kernel. The caller has checked the geometry and the
/// lengths.
#[cfg(target_arch = "x86_64")]
pub(crate) fn max_pool_s8(
    kernel: Kernel,
    g: &super::PoolGeometry,
    x: &[i8],
    act_min: i8,
    act_max: i8,
    y: &mut [i8],
) -> bool {
    let fits = (g.kh, g.kw, g.stride, g.pad) == (2, 2, (2, 2), (0, 0))
        && g.out_h * 2 <= g.h
        && g.out_w * 2 <= g.w;
    if kernel != Kernel::Avx512Vnni || !has_vnni() || !fits {
        return false;
    }
    assert!(x.len() >= g.input_len() && y.len() >= g.output_len());
    // SAFETY: the CPU has AVX-512F and BW (VNNI implies them); the lengths and the
    // geometry are as the kernel requires (checked above).
    unsafe {
        vector::max_pool_2x2_avx512(g.n, g.h, g.w, g.c, g.out_h, g.out_w, x, act_min, act_max, y)
    };
    true
}

/// `dst[i] = src[i] ^ 0x80` for `i < src.len()` (`dst` at least as long): int8 as the
/// unsigned `x + 128` that `vpdpbusd` takes. By words, without a loop for the short
/// runs a convolution's patch rows are (a library `memcpy` call costs more).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn flip_into(src: &[i8], dst: &mut [u8]) {
    const FLIP: u64 = 0x8080_8080_8080_8080;
    let n = src.len();
    assert!(dst.len() >= n);
    let (s, d) = (src.as_ptr().cast::<u8>(), dst.as_mut_ptr());
    let mut i = 0;
    // SAFETY: every access is inside `src[..n]` and `dst[..n]` (asserted above).
    unsafe {
        while i + 8 <= n {
            let v = s.add(i).cast::<u64>().read_unaligned();
            d.add(i).cast::<u64>().write_unaligned(v ^ FLIP);
            i += 8;
        }
        if n - i >= 4 {
            let v = s.add(i).cast::<u32>().read_unaligned();
            d.add(i).cast::<u32>().write_unaligned(v ^ FLIP as u32);
            i += 4;
        }
        if n - i >= 2 {
            let v = s.add(i).cast::<u16>().read_unaligned();
            d.add(i).cast::<u16>().write_unaligned(v ^ FLIP as u16);
            i += 2;
        }
        if n - i == 1 {
            *d.add(i) = *s.add(i) ^ 0x80;
        }
    }
}

/// `dst.fill(v)` by words, without a library `memset` call for a few bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn fill_bytes(dst: &mut [u8], v: u8) {
    let word = u64::from_ne_bytes([v; 8]);
    let mut words = dst.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&word.to_ne_bytes());
    }
    for b in words.into_remainder() {
        *b = v;
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod vnni {
    //! The AVX-512 VNNI kernel. Results are computed sixteen output channels at a time
    //! in the lanes of one register and requantized there ([`requant16`], TFLM's
    //! fixed-point output stage in vector form, bit for bit), so each output costs a
    //! fraction of an instruction beyond its multiply-accumulates:
    //!
    //! - [`mat_mul_rows`], for few input vectors (a dense layer at batch 1): sixteen
    //!   weight rows against one input, 64 bytes per `vpdpbusd`, then one reduction
    //!   tree ([`hsum16`]) turns the sixteen row accumulators into one vector of sums.
    //! - [`mat_mul_packed`], for many (a batch, a convolution's pixels): the weights
    //!   are packed once per call (on the stack) into VNNI order, four consecutive
    //!   inputs of sixteen rows per 64 bytes, and each group of four input bytes is
    //!   broadcast against them: no reduction at all, and `k` need not be a multiple
    //!   of 64 to fill the lanes (a 3x3 convolution over one channel has `k = 9`).
    //!   The inputs come as a panel of columns, sign-flipped by the caller's `fill`
    //!   (a copy of a dense layer's batch, or a convolution's gathered patches).

    // Tiles are indexed by row and column of the register block.
    #![allow(clippy::needless_range_loop)]

    use super::super::kernel::Out;
    use super::super::requant::Requant;
    use core::arch::x86_64::*;
    use core::mem::MaybeUninit;

    /// Bytes of packed weights [`mat_mul_packed`] keeps on the stack; larger layers
    /// take [`mat_mul_rows`].
    const PACK: usize = 32 * 1024;
    /// Bytes of the input panel [`mat_mul_packed`] fills per pass.
    pub(super) const PANEL: usize = 16 * 1024;
    /// Input vectors per register tile of [`mat_mul_packed`]: 8 accumulators, 8
    /// broadcasts and the weights take 17 of the 32 registers.
    pub(super) const TC: usize = 8;

    /// How [`mat_mul_packed`] lays out `k = count * len` inputs: `count` segments
    /// of `len`, each padded to whole groups of four bytes (a dense layer's one
    /// segment, or a convolution's `kh` rows of `kw * c_in` taps, so that each row of
    /// taps can be copied from the input with its group padding in one go).
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Segments {
        /// Segments per input vector.
        pub count: usize,
        /// Bytes per segment.
        pub len: usize,
    }

    impl Segments {
        /// One segment of `k` bytes.
        pub(crate) fn one(k: usize) -> Self {
            Segments { count: 1, len: k }
        }

        /// A segment's length rounded up to whole groups of four bytes.
        pub(crate) fn len4(self) -> usize {
            self.len.div_ceil(4) * 4
        }

        /// Bytes of one input vector in the panel, padding included.
        pub(crate) fn stride(self) -> usize {
            self.count.saturating_mul(self.len4())
        }
    }

    /// Whether [`mat_mul_packed`] takes a layer of `rows` outputs and inputs laid out
    /// as `seg`.
    pub(crate) fn packable(rows: usize, seg: Segments) -> bool {
        let stride = seg.stride();
        stride > 0 && stride <= PANEL && rows.div_ceil(16).saturating_mul(16 * stride) <= PACK
    }

    /// Input vectors [`mat_mul_packed`] asks `fill` for at a time.
    pub(crate) fn panel_cols(seg: Segments) -> usize {
        PANEL / seg.stride().max(4)
    }

    /// The output stage of sixteen channels, as vectors: multiplier, left and right
    /// shift, zero point, clamp; and what [`requant16`] derives from them, computed
    /// once per block of channels rather than per vector of results.
    #[derive(Clone, Copy)]
    pub(crate) struct Stage {
        m: __m512i,
        /// `m`'s odd lanes moved to the even ones (for `vpmuldq`).
        m_odd: __m512i,
        /// Lanes whose multiplier is `i32::MIN` (the one saturating product).
        m_min: __mmask16,
        left: __m512i,
        right: __m512i,
        /// `2^right - 1`, and half of it.
        rmask: __m512i,
        rhalf: __m512i,
        zp: __m512i,
        lo: __m512i,
        hi: __m512i,
    }

    /// The output stage of channels `ch..ch + live` of `out.rq` (validated).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn stage(out: &Out<'_, '_>, ch: usize, live: usize) -> Stage {
        let rq = out.rq;
        let (m, s) = if rq.multiplier.len() == 1 {
            (
                _mm512_set1_epi32(rq.multiplier[0]),
                _mm512_set1_epi32(i32::from(rq.shift[0])),
            )
        } else {
            assert!(ch + live <= rq.multiplier.len() && ch + live <= rq.shift.len());
            let mask = lanes(live);
            // SAFETY: the masked lanes are inside both slices (asserted above).
            (
                _mm512_maskz_loadu_epi32(mask, rq.multiplier.as_ptr().add(ch)),
                _mm512_cvtepi8_epi32(_mm512_castsi512_si128(_mm512_maskz_loadu_epi8(
                    u64::from(mask),
                    rq.shift.as_ptr().add(ch),
                ))),
            )
        };
        stage_from(m, s, rq)
    }

    /// The output stage whose lane `l` is channel `l % c_out` of `rq` (validated for
    /// `c_out` channels): `16 / c_out` pixels of a convolution in one register.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn stage_lanes(rq: &Requant<'_>, c_out: usize) -> Stage {
        let per_channel = rq.multiplier.len() != 1;
        let (mut m, mut s) = ([0i32; 16], [0i32; 16]);
        // The channel of each lane counted, not divided for (a division per lane
        // costs as much as a pixel).
        let mut o = 0;
        for l in 0..16 {
            let i = if per_channel { o } else { 0 };
            m[l] = rq.multiplier[i];
            s[l] = i32::from(rq.shift[i]);
            o = if o + 1 == c_out { 0 } else { o + 1 };
        }
        // SAFETY: both arrays hold sixteen lanes.
        let (m, s) = unsafe {
            (
                _mm512_loadu_si512(m.as_ptr().cast()),
                _mm512_loadu_si512(s.as_ptr().cast()),
            )
        };
        stage_from(m, s, rq)
    }

    /// The stage of multipliers `m` and shifts `s` (lane by lane) with `rq`'s zero
    /// point and clamp.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn stage_from(m: __m512i, s: __m512i, rq: &Requant<'_>) -> Stage {
        let zero = _mm512_setzero_si512();
        let one = _mm512_set1_epi32(1);
        let right = _mm512_max_epi32(_mm512_sub_epi32(zero, s), zero);
        let rmask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
        Stage {
            m,
            m_odd: _mm512_srli_epi64::<32>(m),
            m_min: _mm512_cmpeq_epi32_mask(m, _mm512_set1_epi32(i32::MIN)),
            left: _mm512_max_epi32(s, zero),
            right,
            rmask,
            rhalf: _mm512_srli_epi32::<1>(rmask),
            zp: _mm512_set1_epi32(rq.output_zero_point),
            lo: _mm512_set1_epi32(i32::from(rq.act_min)),
            hi: _mm512_set1_epi32(i32::from(rq.act_max)),
        }
    }

    /// The mask of the first `live` of 16 lanes.
    #[inline]
    pub(super) fn lanes(live: usize) -> u16 {
        if live >= 16 {
            u16::MAX
        } else {
            (1u16 << live) - 1
        }
    }

    /// [`super::super::Requant::apply`] on sixteen accumulators at once, the same
    /// bits: `MultiplyByQuantizedMultiplier` (left shift wrapping; gemmlowp's
    /// `SaturatingRoundingDoublingHighMul`, which for any product `p` is `(p + 2^30)
    /// >> 31` with a floor shift, saturating only `i32::MIN * i32::MIN`; then
    /// `RoundingDivideByPOT`), plus the zero point (wrapping), clamped (as 32-bit
    /// lanes, which [`store`] narrows).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn requant16(acc: __m512i, st: &Stage) -> __m512i {
        let a = _mm512_sllv_epi32(acc, st.left);
        let nudge = _mm512_set1_epi64(1 << 30);
        // 64-bit products of the even lanes, and of the odd ones shifted down.
        let even = _mm512_add_epi64(_mm512_mul_epi32(a, st.m), nudge);
        let odd = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_srli_epi64::<32>(a), st.m_odd),
            nudge,
        );
        // Bits 31..62 of each sum: low half of `even >> 31`, high half of `odd << 1`.
        let high = _mm512_mask_blend_epi32(
            0xAAAA,
            _mm512_srli_epi64::<31>(even),
            _mm512_slli_epi64::<1>(odd),
        );
        let high = if st.m_min == 0 {
            high
        } else {
            let min = _mm512_set1_epi32(i32::MIN);
            let both_min = _mm512_mask_cmpeq_epi32_mask(st.m_min, a, min);
            _mm512_mask_mov_epi32(high, both_min, _mm512_set1_epi32(i32::MAX))
        };
        // RoundingDivideByPOT: (x >> e) + (remainder > (mask >> 1) + (x < 0)).
        let one = _mm512_set1_epi32(1);
        let remainder = _mm512_and_si512(high, st.rmask);
        let threshold = _mm512_add_epi32(st.rhalf, _mm512_srli_epi32::<31>(high));
        let up = _mm512_cmpgt_epi32_mask(remainder, threshold);
        let q = _mm512_srav_epi32(high, st.right);
        let q = _mm512_mask_add_epi32(q, up, q, one);
        let y = _mm512_add_epi32(q, st.zp);
        _mm512_min_epi32(_mm512_max_epi32(y, st.lo), st.hi)
    }

    /// Lane `i` of the result is the (wrapping) sum of the sixteen lanes of `v[i]`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn hsum16(v: &[__m512i; 16]) -> __m512i {
        // Pairs of rows: per 128-bit lane [a0+a2, b0+b2, a1+a3, b1+b3].
        let t: [__m512i; 8] = core::array::from_fn(|i| {
            let (a, b) = (v[2 * i], v[2 * i + 1]);
            _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b))
        });
        // Quads: per 128-bit lane, one partial sum of each of four rows.
        let u: [__m512i; 4] = core::array::from_fn(|i| {
            let (a, b) = (t[2 * i], t[2 * i + 1]);
            _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b))
        });
        // Fold the four 128-bit lanes: first pairwise, then to whole sums.
        let fold = |a: __m512i, b: __m512i| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
            )
        };
        let z0 = fold(u[0], u[1]);
        let z1 = fold(u[2], u[3]);
        fold(z0, z1)
    }

    /// Stores the first `live` of sixteen clamped lanes at `y`, as bytes: narrowed
    /// in a register (`vpmovdb`), then a plain 16-byte store or, for fewer lanes, a
    /// masked byte store (AVX-512BW, no VL needed). `vpmovdb` straight to memory
    /// would do both in one instruction, but on AMD's Zen 4 that form costs several
    /// times the pair; an empty `asm!` holding the narrowed bytes in a register
    /// keeps the compiler from fusing the two back into it.
    ///
    /// # Safety
    /// `y .. y + live` is writable.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn store(y: *mut i8, live: usize, v: __m512i) {
        let mut bytes = _mm512_cvtepi32_epi8(v);
        core::arch::asm!(
            "/* {0} */",
            inout(xmm_reg) bytes,
            options(pure, nomem, nostack, preserves_flags)
        );
        if live >= 16 {
            _mm_storeu_si128(y.cast(), bytes);
        } else {
            _mm512_mask_storeu_epi8(y, (1u64 << live) - 1, _mm512_castsi128_si512(bytes));
        }
    }

    /// `out.y[c * ldy + r] = requant(bias[r] + dot(w[r], x[c]))` for `rows` rows of
    /// `k` bytes and `cols` input vectors, sixteen rows at a time against one input.
    ///
    /// Here the weights are the operand made unsigned (`w ^ 0x80 = w + 128`, one
    /// `vpxord` per load) and the input stays signed: each row sums `(w + 128) * x`,
    /// so `128 * sum(x)`, one number per input vector, comes off every row's sum
    /// (no pass over the weights for their sums, which a call at batch 1 would pay
    /// for as much as for the products). Wrapping, so the same bits.
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI; `w` holds `rows * k`, `x` `cols * k` bytes,
    /// `bias` `rows` values, `rows, cols >= 1`, and `out` has room for every result
    /// (`out.ldy >= rows`, `out.y.len() >= (cols - 1) * out.ldy + rows`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn mat_mul_rows(
        w: &[i8],
        rows: usize,
        k: usize,
        x: &[i8],
        cols: usize,
        bias: &[i32],
        out: &mut Out<'_, '_>,
    ) {
        let steps = k / 64;
        let tail = k % 64;
        let tail_mask: u64 = if tail == 0 { 0 } else { (1u64 << tail) - 1 };
        let ones = _mm512_set1_epi8(1);
        let flip = _mm512_set1_epi8(i8::MIN);
        let zero = _mm512_setzero_si512();
        let y = out.y.as_mut_ptr();
        let mut r0 = 0;
        while r0 < rows {
            let live = 16.min(rows - r0);
            // A partial block repeats the last row; its lanes are not stored.
            let wp: [*const i8; 16] =
                core::array::from_fn(|i| w.as_ptr().add((r0 + i).min(rows - 1) * k));
            let b = _mm512_maskz_loadu_epi32(lanes(live), bias.as_ptr().add(r0));
            let st = stage(out, out.ch0 + r0, live);
            for c in 0..cols {
                let xp = x.as_ptr().add(c * k);
                let mut acc = [zero; 16];
                // sum(x) in lanes, by `vpdpbusd` of ones with the signed input.
                let mut xsum = zero;
                for s in 0..steps {
                    let xv = _mm512_loadu_si512(xp.add(s * 64).cast());
                    xsum = _mm512_dpbusd_epi32(xsum, ones, xv);
                    for i in 0..16 {
                        let wv = _mm512_loadu_si512(wp[i].add(s * 64).cast());
                        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_xor_si512(wv, flip), xv);
                    }
                }
                if tail != 0 {
                    // Masked-off input lanes read 0: whatever the weight there, nothing.
                    let xv = _mm512_maskz_loadu_epi8(tail_mask, xp.add(steps * 64));
                    xsum = _mm512_dpbusd_epi32(xsum, ones, xv);
                    for i in 0..16 {
                        let wv = _mm512_maskz_loadu_epi8(tail_mask, wp[i].add(steps * 64));
                        acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_xor_si512(wv, flip), xv);
                    }
                }
                let offset = _mm512_reduce_add_epi32(xsum).wrapping_shl(7);
                let total =
                    _mm512_add_epi32(_mm512_sub_epi32(b, _mm512_set1_epi32(offset)), hsum16(&acc));
                store(y.add(c * out.ldy + r0), live, requant16(total, &st));
            }
            r0 += 16;
        }
    }

    /// [`mat_mul_rows`]'s results for `cols` input vectors that `fill(c0, n, panel)`
    /// writes, `n` at a time ([`panel_cols`] at most), with their sign bits flipped
    /// (`x ^ 0x80`, i.e. `x + 128` as unsigned): vector `j`'s segment `s` (see
    /// [`Segments`]) at `panel[j * seg.stride() + s * seg.len4()..][..seg.len]`. The
    /// padding bytes after each segment may hold anything (they meet zero weights).
    /// Weights are rows of `k = seg.count * seg.len` bytes. Returns `false`, having
    /// done nothing, unless [`packable`]`(rows, seg)`.
    ///
    /// # Safety
    /// As [`mat_mul_rows`] for `w`, `bias` and `out` (no `x`: `fill` provides it).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(crate) unsafe fn mat_mul_packed(
        w: &[i8],
        rows: usize,
        seg: Segments,
        cols: usize,
        bias: &[i32],
        out: &mut Out<'_, '_>,
        fill: &mut dyn FnMut(usize, usize, &mut [u8]),
    ) -> bool {
        if !packable(rows, seg) {
            return false;
        }
        let k4 = seg.stride();
        let groups = k4 / 4;
        let blocks = rows.div_ceil(16);
        // Weights in VNNI order (see `pack`), on the stack.
        let mut packed = MaybeUninit::<[u8; PACK]>::uninit();
        let pw = packed.as_mut_ptr().cast::<u8>();
        pack(w, rows, seg, pw);
        let packed = core::slice::from_raw_parts(pw, blocks * groups * 64);
        // The per-block bias minus 128 * sum(w), as in `mat_mul_rows`.
        let ones = _mm512_set1_epi8(1);
        let mut panel = MaybeUninit::<[u8; PANEL]>::uninit();
        let pp = panel.as_mut_ptr().cast::<u8>();
        // Panel bytes zeroed so far: each column's padding keeps a defined value
        // (which meets zero weights) whatever `fill` writes.
        let mut defined = 0;
        let per = panel_cols(seg);
        let y = out.y.as_mut_ptr();
        let mut c0 = 0;
        while c0 < cols {
            let n = per.min(cols - c0);
            if n * k4 > defined {
                pp.add(defined).write_bytes(0, n * k4 - defined);
                defined = n * k4;
            }
            fill(c0, n, core::slice::from_raw_parts_mut(pp, n * k4));
            for b in 0..blocks {
                let r0 = 16 * b;
                let live = 16.min(rows - r0);
                let wb = packed.as_ptr().add(b * groups * 64);
                let mut sums = _mm512_setzero_si512();
                for g in 0..groups {
                    sums =
                        _mm512_dpbusd_epi32(sums, ones, _mm512_loadu_si512(wb.add(g * 64).cast()));
                }
                let bv = _mm512_maskz_loadu_epi32(lanes(live), bias.as_ptr().add(r0));
                let corrected = _mm512_sub_epi32(bv, _mm512_slli_epi32::<7>(sums));
                let st = stage(out, out.ch0 + r0, live);
                let mut j = 0;
                while j + TC <= n {
                    tile::<TC>(
                        wb,
                        groups,
                        pp.add(j * k4),
                        k4,
                        corrected,
                        &st,
                        y.add((c0 + j) * out.ldy + r0),
                        out.ldy,
                        live,
                    );
                    j += TC;
                }
                while j < n {
                    tile::<1>(
                        wb,
                        groups,
                        pp.add(j * k4),
                        k4,
                        corrected,
                        &st,
                        y.add((c0 + j) * out.ldy + r0),
                        out.ldy,
                        live,
                    );
                    j += 1;
                }
            }
            c0 += n;
        }
        true
    }

    /// Writes `rows` weight rows of `seg.count * seg.len` bytes at `pw` in VNNI order:
    /// block `b`, group `g` at `(b * groups + g) * 64`, byte `4 * i + t` = the padded
    /// row `16 b + i`'s byte `4 g + t`, zero past the last row and in each segment's
    /// padding.
    ///
    /// # Safety
    /// `w` holds `rows * seg.count * seg.len` bytes; `pw` has room for
    /// `rows.div_ceil(16) * 16 * seg.stride()` bytes.
    #[inline]
    pub(super) unsafe fn pack(w: &[i8], rows: usize, seg: Segments, pw: *mut u8) {
        let (k, groups, blocks) = (seg.count * seg.len, seg.stride() / 4, rows.div_ceil(16));
        let (full, per_seg) = (seg.len / 4, seg.len4() / 4);
        for b in 0..blocks {
            for i in 0..16 {
                let r = 16 * b + i;
                let dst = pw.add(b * groups * 64 + 4 * i);
                if r >= rows {
                    for g in 0..groups {
                        dst.add(g * 64).cast::<u32>().write_unaligned(0);
                    }
                    continue;
                }
                for s in 0..seg.count {
                    let src = w.as_ptr().add(r * k + s * seg.len).cast::<u8>();
                    let dst = dst.add(s * per_seg * 64);
                    for g in 0..full {
                        let v = src.add(4 * g).cast::<u32>().read_unaligned();
                        dst.add(g * 64).cast::<u32>().write_unaligned(v);
                    }
                    if full < per_seg {
                        let mut v = [0u8; 4];
                        for (t, b) in v.iter_mut().enumerate().take(seg.len - 4 * full) {
                            *b = *src.add(4 * full + t);
                        }
                        dst.add(full * 64)
                            .cast::<u32>()
                            .write_unaligned(u32::from_le_bytes(v));
                    }
                }
            }
        }
    }

    /// `C` input columns of the panel (at `xp`, `k4` bytes apart) against one packed
    /// block of sixteen rows (`wb`, `groups` groups), requantized into `y`, `ldy`
    /// apart.
    ///
    /// # Safety
    /// As [`mat_mul_packed`]; the pointers cover what is read and written.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile<const C: usize>(
        wb: *const u8,
        groups: usize,
        xp: *const u8,
        k4: usize,
        corrected: __m512i,
        st: &Stage,
        y: *mut i8,
        ldy: usize,
        live: usize,
    ) {
        let mut acc = [corrected; C];
        for g in 0..groups {
            let wv = _mm512_loadu_si512(wb.add(g * 64).cast());
            for j in 0..C {
                let xv = xp.add(j * k4 + 4 * g).cast::<i32>().read_unaligned();
                acc[j] = _mm512_dpbusd_epi32(acc[j], _mm512_set1_epi32(xv), wv);
            }
        }
        for j in 0..C {
            store(y.add(j * ldy), live, requant16(acc[j], st));
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    // Tiles are indexed by row and column of the register block.
    #![allow(clippy::needless_range_loop)]

    use core::arch::x86_64::*;

    /// Rows per register tile; with 2 input vectors, 8 accumulators, 2 inputs and 1
    /// weight vector take 11 of the 16 registers.
    const TR: usize = 4;

    /// Sum of the eight 32-bit lanes (wrapping).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn hsum(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }

    /// # Safety
    /// The CPU has AVX2; `w` holds `rows * k`, `x` `cols * k` bytes, `bias` `rows`
    /// values, and `rows`, `cols` are nonzero.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mat_mul(
        w: &[i8],
        rows: usize,
        k: usize,
        x: &[i8],
        cols: usize,
        bias: &[i32],
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let mut r0 = 0;
        while r0 < rows {
            // A partial tile repeats the last row; its extra sums are not emitted.
            let mut wrow = [0usize; TR];
            for (i, r) in wrow.iter_mut().enumerate() {
                *r = (r0 + i).min(rows - 1);
            }
            let live_rows = TR.min(rows - r0);
            let mut c0 = 0;
            while c0 + 2 <= cols {
                tile::<2>(w, &wrow, x, k, c0, bias, live_rows, r0, emit);
                c0 += 2;
            }
            if c0 < cols {
                tile::<1>(w, &wrow, x, k, c0, bias, live_rows, r0, emit);
            }
            r0 += TR;
        }
    }

    /// The `TR x TC` block of results for rows `wrow` and input vectors `c0..c0 + TC`.
    ///
    /// # Safety
    /// As [`mat_mul`]; `wrow` are rows of `w`, and `x` holds the vectors
    /// `c0..c0 + TC`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const TC: usize>(
        w: &[i8],
        wrow: &[usize; TR],
        x: &[i8],
        k: usize,
        c0: usize,
        bias: &[i32],
        live_rows: usize,
        r0: usize,
        emit: &mut impl FnMut(usize, usize, i32),
    ) {
        let steps = k / 16;
        let done = steps * 16;
        let zero = _mm256_setzero_si256();
        let mut acc = [[zero; TC]; TR];
        for s in 0..steps {
            let mut xv = [zero; TC];
            for j in 0..TC {
                let p = x.as_ptr().add((c0 + j) * k + s * 16);
                xv[j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
            }
            for i in 0..TR {
                let p = w.as_ptr().add(wrow[i] * k + s * 16);
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast()));
                for j in 0..TC {
                    acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(wv, xv[j]));
                }
            }
        }
        for i in 0..live_rows {
            let wr = &w[wrow[i] * k..(wrow[i] + 1) * k];
            for j in 0..TC {
                let xc = &x[(c0 + j) * k..(c0 + j + 1) * k];
                let tail = wr[done..]
                    .iter()
                    .zip(&xc[done..])
                    .fold(0i32, |a, (&u, &v)| {
                        a.wrapping_add(i32::from(u) * i32::from(v))
                    });
                let acc = bias[wrow[i]]
                    .wrapping_add(hsum(acc[i][j]))
                    .wrapping_add(tail);
                emit(c0 + j, r0 + i, acc);
            }
        }
    }
}

/// The VNNI kernel's paths (rows, packed, the convolution's gathered panel) against
/// the portable kernel on shapes and output stages the property tests of
/// `tests/quant.rs` do not reach: batches and pixel counts past the packed kernel's
/// tiles and panels, weights too large to pack, and extreme requantization.
#[cfg(all(test, target_arch = "x86_64", feature = "std"))]
mod tests {
    use super::super::{conv2d_s8_with, dense_s8_with, ConvGeometry, Kernel, Requant};
    use crate::Rng;

    fn bytes(rng: &mut Rng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.next_u32() as i8).collect()
    }

    /// Multipliers and shifts across their whole ranges, the extremes included.
    fn stage(rng: &mut Rng, n: usize) -> (Vec<i32>, Vec<i8>) {
        (0..n)
            .map(|i| {
                // Every multiplier `Requant::validate` accepts: 0..=i32::MAX.
                let m = match i % 5 {
                    0 => i32::MAX,
                    1 => (rng.next_u32() >> 1) as i32,
                    2 => 0,
                    _ => (1 << 30) + (rng.next_u32() >> 2) as i32,
                };
                let s = match i % 7 {
                    0 => -31,
                    1 => 30,
                    _ => (rng.next_u32() % 62) as i8 - 31,
                };
                (m, s)
            })
            .unzip()
    }

    /// Enough values to split over threads (where there are several), every kind
    /// of value included: the same bytes as the portable loop.
    #[test]
    fn threaded_quantize_is_the_portable_loop() {
        use super::super::quantize_f32_s8_with;
        let mut rng = Rng::seed_from_u64(3);
        let n = super::QUANTIZE_PARALLEL * 2 + 37;
        let x: Vec<f32> = (0..n)
            .map(|i| match i % 11 {
                0 => f32::from_bits(rng.next_u32()),
                1 => (i % 300) as f32 * 0.5 * 0.02,
                _ => (rng.next_u32() as i32) as f32 * 1e-9,
            })
            .collect();
        let mut want = vec![0i8; n];
        quantize_f32_s8_with(Kernel::Portable, &x, 0.02, -7, &mut want).unwrap();
        for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
            if kernel.is_available() {
                let mut got = vec![0i8; n];
                quantize_f32_s8_with(kernel, &x, 0.02, -7, &mut got).unwrap();
                assert!(got == want, "{kernel:?}");
            }
        }
    }

    #[test]
    fn vnni_dense_is_the_portable_kernel() {
        if !Kernel::Avx512Vnni.is_available() {
            return;
        }
        let mut rng = Rng::seed_from_u64(7);
        let shapes = [
            (1, 64, 32),
            (3, 200, 17),
            (4, 9, 8),
            (5, 72, 16),
            (256, 64, 32),
            (256, 32, 10),
            (37, 784, 10),
            (9, 1, 33),
            (6, 0, 5),
            (300, 3, 3),
            (8, 3000, 20), // too large to pack: the row kernel with a batch
            (40, 50, 200),
        ];
        for (case, &(batch, inf, outf)) in shapes.iter().enumerate() {
            let x = bytes(&mut rng, batch * inf);
            let w = bytes(&mut rng, outf * inf);
            let bias: Vec<i32> = (0..outf)
                .map(|i| {
                    if i % 3 == 0 {
                        rng.next_u32() as i32
                    } else {
                        rng.next_u32() as i32 >> 12
                    }
                })
                .collect();
            for per_channel in [false, true] {
                let (m, s) = stage(&mut rng, if per_channel { outf } else { 1 });
                let act = [(-128, 127), (-5, 90), (3, 3)][case % 3];
                let rq = Requant {
                    multiplier: &m,
                    shift: &s,
                    output_zero_point: (rng.next_u32() % 256) as i32 - 128,
                    act_min: act.0,
                    act_max: act.1,
                };
                let mut want = vec![0i8; batch * outf];
                let mut got = vec![0i8; batch * outf];
                dense_s8_with(
                    Kernel::Portable,
                    &x,
                    &w,
                    &bias,
                    &rq,
                    batch,
                    inf,
                    outf,
                    &mut want,
                )
                .unwrap();
                dense_s8_with(
                    Kernel::Avx512Vnni,
                    &x,
                    &w,
                    &bias,
                    &rq,
                    batch,
                    inf,
                    outf,
                    &mut got,
                )
                .unwrap();
                assert_eq!(got, want, "batch {batch}, {inf} -> {outf}, {per_channel}");
            }
        }
    }

    #[test]
    fn vnni_conv_is_the_portable_kernel() {
        if !Kernel::Avx512Vnni.is_available() {
            return;
        }
        let mut rng = Rng::seed_from_u64(11);
        #[rustfmt::skip]
        let geometries = [
            // n, h, w, c_in, c_out, k, stride, pad, dilation, groups
            (2, 28, 28, 1, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1),
            (3, 14, 14, 8, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),
            (1, 9, 11, 3, 20, (3, 2), (2, 1), (2, 0), (1, 2), 1),
            (2, 7, 7, 5, 17, (5, 5), (1, 2), (3, 3), (1, 1), 1),
            (1, 6, 6, 4, 8, (3, 3), (1, 1), (1, 1), (1, 1), 2),
            (1, 5, 5, 300, 40, (3, 3), (1, 1), (1, 1), (1, 1), 1), // too large to pack
            (16, 14, 14, 8, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1), // split over threads
            // Too large to pad on the stack: patches gathered with their bounds.
            (1, 150, 140, 1, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1),
            (1, 70, 66, 4, 12, (3, 3), (2, 1), (1, 2), (1, 1), 1),
            (1, 60, 50, 8, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1),
        ];
        for &(n, h, w, c_in, c_out, k, stride, pad, dil, groups) in &geometries {
            let g = ConvGeometry::new(n, h, w, c_in, c_out, k.0, k.1, stride, pad, dil, groups)
                .unwrap();
            let x = bytes(&mut rng, g.input_len());
            let wt = bytes(&mut rng, g.weight_len());
            let bias: Vec<i32> = (0..c_out).map(|_| rng.next_u32() as i32 >> 12).collect();
            let (m, s) = stage(&mut rng, c_out);
            let rq = Requant {
                multiplier: &m,
                shift: &s,
                output_zero_point: -7,
                act_min: -128,
                act_max: 127,
            };
            let zp = (rng.next_u32() % 256) as i32 as i8;
            let mut scratch = vec![0i8; g.scratch_len()];
            let mut want = vec![0i8; g.output_len()];
            let mut got = vec![0i8; g.output_len()];
            conv2d_s8_with(
                Kernel::Portable,
                &g,
                &x,
                &wt,
                &bias,
                zp,
                &rq,
                &mut scratch,
                &mut want,
            )
            .unwrap();
            conv2d_s8_with(
                Kernel::Avx512Vnni,
                &g,
                &x,
                &wt,
                &bias,
                zp,
                &rq,
                &mut scratch,
                &mut got,
            )
            .unwrap();
            assert_eq!(got, want, "{g:?}");
        }
    }
}
