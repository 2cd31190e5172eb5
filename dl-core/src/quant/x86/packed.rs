//! A dense layer prepared once for the VNNI kernel ([`PackedVnni`]): the work that
//! [`super::vnni::mat_mul_packed`] redoes on every call (packing the weights into
//! VNNI order, `bias - 128 * sum(w)`, the output stage's vectors) done when the layer
//! is built, so a call is only the flip of its inputs and the tiles. At batch 1 that
//! is most of the call: a 64-input, 32-output layer is 32 `vpdpbusd`s.

use super::super::requant::Requant;
use super::vnni::{self, Segments, Stage, PANEL, TC};
use super::{for_column_blocks, has_vnni, threads_for};
use alloc::vec;
use alloc::vec::Vec;
use core::arch::x86_64::*;
use core::mem::MaybeUninit;

/// Multiply-accumulates of a call (its padded rows times padded inputs times
/// columns) from which it splits its columns over the gemm's threads. Measured on
/// this 2-core Zen 4 (shared): handing half a call to the pool cost about 5 µs, so
/// splitting the digits MLP's 32 x 64 layer at batch 256 (512 Ki MACs, about 2.5
/// µs) made the model 1.5x slower (14.4 µs, was 9.5). 4 Mi MACs (about 18 µs of
/// `vpdpbusd`) is the least that splits; the MNIST CNN's 10 x 784 layer at batch 256
/// (3.2 Mi) stays on one thread too.
const PARALLEL_MACS: usize = 1 << 22;

/// Panel bytes of a small call (see [`PackedVnni::run`]).
const SMALL_PANEL: usize = 1024;

/// A dense layer's weights in VNNI order with everything else a call needs
/// precomputed: see the module doc. The results are [`super::mat_mul_vnni`]'s, bit
/// for bit (the same packing, correction and output stage).
pub(crate) struct PackedVnni {
    rows: usize,
    k: usize,
    /// Input bytes per column in the panel (`k` rounded up to whole groups of four).
    k4: usize,
    /// `rows.div_ceil(16)` blocks of `k4 / 4` groups of 64 bytes ([`vnni::pack`]).
    packed: Vec<u8>,
    /// `bias[r] - 128 * sum(w[r])` (wrapping), zero past the last row.
    corrected: Vec<i32>,
    /// The output stage of each block of sixteen rows.
    stages: Vec<Stage>,
}

impl core::fmt::Debug for PackedVnni {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PackedVnni")
            .field("rows", &self.rows)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl Clone for PackedVnni {
    fn clone(&self) -> Self {
        PackedVnni {
            packed: self.packed.clone(),
            corrected: self.corrected.clone(),
            stages: self.stages.clone(),
            ..*self
        }
    }
}

impl PackedVnni {
    /// The layer of `rows` weight rows of `k` bytes (`w`), `bias` and the output
    /// stage `rq` (validated for `rows` channels), or `None` where this kernel does
    /// not run: no VNNI, an empty layer, or inputs longer than a panel column.
    pub(crate) fn new(
        w: &[i8],
        rows: usize,
        k: usize,
        bias: &[i32],
        rq: &Requant<'_>,
    ) -> Option<Self> {
        let seg = Segments::one(k);
        let k4 = seg.stride();
        if !has_vnni() || rows == 0 || k == 0 || k4 > PANEL {
            return None;
        }
        if w.len() < rows.checked_mul(k)? || bias.len() < rows {
            return None;
        }
        let blocks = rows.div_ceil(16);
        let mut packed = vec![0u8; blocks * 16 * k4];
        // SAFETY: `w` holds `rows * k` bytes (checked above); `packed` is exactly the
        // size `pack` fills.
        unsafe { vnni::pack(w, rows, seg, packed.as_mut_ptr()) };
        let corrected = (0..blocks * 16)
            .map(|r| {
                if r >= rows {
                    return 0;
                }
                let sum = w[r * k..(r + 1) * k]
                    .iter()
                    .fold(0i32, |a, &v| a.wrapping_add(i32::from(v)));
                bias[r].wrapping_sub(sum.wrapping_shl(7))
            })
            .collect();
        let stages = (0..blocks)
            .map(|b| {
                // Lanes past the last row get channel 0's stage (never stored).
                let (mut m, mut s) = ([0i32; 16], [0i32; 16]);
                for l in 0..16 {
                    let r = if 16 * b + l < rows { 16 * b + l } else { 0 };
                    let (mr, sr) = rq.channel(r);
                    (m[l], s[l]) = (mr, sr);
                }
                // SAFETY: the CPU has AVX-512F, BW and VNNI (checked above); both
                // arrays hold sixteen lanes.
                unsafe {
                    vnni::stage_from(
                        _mm512_loadu_si512(m.as_ptr().cast()),
                        _mm512_loadu_si512(s.as_ptr().cast()),
                        rq,
                    )
                }
            })
            .collect();
        Some(PackedVnni {
            rows,
            k,
            k4,
            packed,
            corrected,
            stages,
        })
    }

    /// `y[c * rows + r] = requant(bias[r] + dot(w[r], x[c]))` for `cols` input
    /// vectors; large calls split their columns over the gemm's threads, each
    /// result computed as on one thread.
    pub(crate) fn run(&self, x: &[i8], cols: usize, y: &mut [i8]) {
        let (k, rows) = (self.k, self.rows);
        assert!(x.len() >= cols * k && y.len() >= cols * rows);
        let parts = if self.packed.len().saturating_mul(cols) < PARALLEL_MACS {
            1
        } else {
            threads_for(cols)
        };
        if parts <= 1 {
            // SAFETY: the CPU has VNNI (checked at construction); lengths as asserted.
            // A small call (batch 1) takes a small panel: a 16 KiB stack frame costs
            // its page probes on every call.
            return unsafe {
                if cols * self.k4 <= SMALL_PANEL {
                    self.run_block::<SMALL_PANEL>(x, cols, y)
                } else {
                    self.run_block::<PANEL>(x, cols, y)
                }
            };
        }
        for_column_blocks(parts, cols, rows, y, &|c0, n, y| {
            // SAFETY: as above; `x` holds this block's `n` columns and `y` their
            // results.
            unsafe { self.run_block::<PANEL>(&x[c0 * k..(c0 + n) * k], n, y) }
        });
    }

    /// [`PackedVnni::run`] on this thread.
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI; `x` holds `cols * k` bytes, `y` `cols *
    /// rows`.
    /// `P` is the panel's size in bytes (at least `k4`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn run_block<const P: usize>(&self, x: &[i8], cols: usize, y: &mut [i8]) {
        let (k, k4, rows) = (self.k, self.k4, self.rows);
        let groups = k4 / 4;
        let mut panel = MaybeUninit::<[u8; P]>::uninit();
        let pp = panel.as_mut_ptr().cast::<u8>();
        // (A division, so only when there are more columns than a tile.)
        let per = if cols < TC && k == k4 { cols } else { P / k4 };
        let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
        let mut c0 = 0;
        while c0 < cols {
            let n = per.min(cols - c0);
            // Too few columns for a tile, in whole groups of four: the broadcasts read
            // the input in place and flip it in a register (a panel written just
            // before would be read back through memory: a masked store does not
            // forward to the loads that follow).
            let in_place = n < TC && k == k4;
            let (src, stride, flip) = if in_place {
                (xp.add(c0 * k).cast::<u8>(), k, _mm512_set1_epi8(i8::MIN))
            } else {
                flip_panel(xp.add(c0 * k), n, k, k4, pp);
                (pp.cast_const(), k4, _mm512_setzero_si512())
            };
            if n < TC {
                // Each column against two blocks at once, so their chains of
                // `vpdpbusd`s and output stages overlap.
                for j in 0..n {
                    let (xp, y) = (src.add(j * stride), yp.add((c0 + j) * rows));
                    let mut b = 0;
                    while b + 2 <= self.stages.len() {
                        self.tile1x2(b, groups, xp, flip, y);
                        b += 2;
                    }
                    if b < self.stages.len() {
                        let wb = self.packed.as_ptr().add(b * groups * 64);
                        let corrected =
                            _mm512_loadu_si512(self.corrected.as_ptr().add(16 * b).cast());
                        let live = 16.min(rows - 16 * b);
                        tile1(
                            wb,
                            groups,
                            xp,
                            flip,
                            corrected,
                            &self.stages[b],
                            y.add(16 * b),
                            live,
                        );
                    }
                }
                c0 += n;
                continue;
            }
            for (b, st) in self.stages.iter().enumerate() {
                let r0 = 16 * b;
                let live = 16.min(rows - r0);
                let wb = self.packed.as_ptr().add(b * groups * 64);
                let corrected = _mm512_loadu_si512(self.corrected.as_ptr().add(r0).cast());
                let mut j = 0;
                while j + TC <= n {
                    let y = yp.add((c0 + j) * rows + r0);
                    vnni::tile::<TC>(wb, groups, pp.add(j * k4), k4, corrected, st, y, rows, live);
                    j += TC;
                }
                while j < n {
                    let y = yp.add((c0 + j) * rows + r0);
                    tile1(
                        wb,
                        groups,
                        pp.add(j * k4),
                        _mm512_setzero_si512(),
                        corrected,
                        st,
                        y,
                        live,
                    );
                    j += 1;
                }
            }
            c0 += n;
        }
    }
}

impl PackedVnni {
    /// One input column (at `xp`: the panel, `flip` zero; or the signed input in
    /// place, `flip` 0x80 bytes, xored into each broadcast) against blocks `b` and `b + 1`, four
    /// accumulators each (chains of a quarter of the groups, so their latency
    /// overlaps), written at `y` (the column's results).
    ///
    /// # Safety
    /// The CPU has AVX-512F, BW and VNNI; `b + 1` is a block; `xp` holds `4 *
    /// groups` bytes and `y` the column's `rows` results.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile1x2(&self, b: usize, groups: usize, xp: *const u8, flip: __m512i, y: *mut i8) {
        let w0 = self.packed.as_ptr().add(b * groups * 64);
        let w1 = w0.add(groups * 64);
        let c = self.corrected.as_ptr().add(16 * b);
        let zero = _mm512_setzero_si512();
        let mut a0 = [_mm512_loadu_si512(c.cast()), zero, zero, zero];
        let mut a1 = [_mm512_loadu_si512(c.add(16).cast()), zero, zero, zero];
        let mut dot = |t: usize, g: usize| {
            let xv = _mm512_set1_epi32(xp.add(4 * g).cast::<i32>().read_unaligned());
            let xv = _mm512_xor_si512(xv, flip);
            a0[t] = _mm512_dpbusd_epi32(a0[t], xv, _mm512_loadu_si512(w0.add(g * 64).cast()));
            a1[t] = _mm512_dpbusd_epi32(a1[t], xv, _mm512_loadu_si512(w1.add(g * 64).cast()));
        };
        let mut g = 0;
        while g + 4 <= groups {
            for t in 0..4 {
                dot(t, g + t);
            }
            g += 4;
        }
        for t in 0..groups - g {
            dot(t, g + t);
        }
        let sum = |a: [__m512i; 4]| {
            _mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3]))
        };
        let (s0, s1) = (sum(a0), sum(a1));
        let r1 = 16 * (b + 1);
        vnni::store(y.add(16 * b), 16, vnni::requant16(s0, &self.stages[b]));
        let live = 16.min(self.rows - r1);
        vnni::store(y.add(r1), live, vnni::requant16(s1, &self.stages[b + 1]));
    }
}

/// Writes `n` input vectors of `k` bytes (at `src`, back to back) into the panel at
/// `dst`, `k4` bytes apart, sign-flipped (`x ^ 0x80`); each vector's padding bytes get
/// 0x80 (they meet zero weights): every panel byte the tiles read is written.
///
/// # Safety
/// The CPU has AVX-512F and BW; `src` holds `n * k` bytes, `dst` has room for `n *
/// k4`, `k <= k4`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn flip_panel(src: *const i8, n: usize, k: usize, k4: usize, dst: *mut u8) {
    let flip = _mm512_set1_epi8(i8::MIN);
    let mask = |len: usize| {
        if len >= 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        }
    };
    if k == k4 {
        // One run, 64 bytes per instruction.
        let len = n * k;
        let mut i = 0;
        while i + 64 <= len {
            let v = _mm512_loadu_si512(src.add(i).cast());
            _mm512_storeu_si512(dst.add(i).cast(), _mm512_xor_si512(v, flip));
            i += 64;
        }
        if i < len {
            let m = mask(len - i);
            let v = _mm512_maskz_loadu_epi8(m, src.add(i));
            _mm512_mask_storeu_epi8(dst.add(i).cast(), m, _mm512_xor_si512(v, flip));
        }
        return;
    }
    for c in 0..n {
        let (s, d) = (src.add(c * k), dst.add(c * k4));
        let mut i = 0;
        while i < k4 {
            // Masked-off input bytes read 0, so the padding gets 0 ^ 0x80.
            let v = _mm512_maskz_loadu_epi8(mask(k.saturating_sub(i)), s.add(i));
            _mm512_mask_storeu_epi8(d.add(i).cast(), mask(k4 - i), _mm512_xor_si512(v, flip));
            i += 64;
        }
    }
}

/// One input column (at `xp`, flipped by `flip` as in [`PackedVnni::tile1x2`])
/// against one packed block of sixteen rows: four
/// accumulators over the groups in turn, so a short layer (batch 1) is not one long
/// chain of dependent `vpdpbusd`s; their wrapping sum is the one accumulator's.
///
/// # Safety
/// As [`vnni::tile`] with `C = 1`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile1(
    wb: *const u8,
    groups: usize,
    xp: *const u8,
    flip: __m512i,
    corrected: __m512i,
    st: &Stage,
    y: *mut i8,
    live: usize,
) {
    let zero = _mm512_setzero_si512();
    let mut acc = [corrected, zero, zero, zero];
    let dot = |acc: __m512i, g: usize| {
        let xv = xp.add(4 * g).cast::<i32>().read_unaligned();
        let xv = _mm512_xor_si512(_mm512_set1_epi32(xv), flip);
        let wv = _mm512_loadu_si512(wb.add(g * 64).cast());
        _mm512_dpbusd_epi32(acc, xv, wv)
    };
    let mut g = 0;
    while g + 4 <= groups {
        for (t, a) in acc.iter_mut().enumerate() {
            *a = dot(*a, g + t);
        }
        g += 4;
    }
    while g < groups {
        acc[0] = dot(acc[0], g);
        g += 1;
    }
    let sum = _mm512_add_epi32(
        _mm512_add_epi32(acc[0], acc[1]),
        _mm512_add_epi32(acc[2], acc[3]),
    );
    vnni::store(y, live, vnni::requant16(sum, st));
}
