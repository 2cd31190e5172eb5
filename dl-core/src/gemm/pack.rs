//! Packing: copying a block of an operand into the panel layout the micro-kernel reads
//! with unit stride (see `kernel.rs`). Transposes are handled here, by reading the
//! source through its strides, so the kernel only ever sees one layout.

use super::kernel::Element;
use super::view::View;
use core::ops::Range;

/// Packs rows `rows` x columns `depth` of `src` into consecutive panels of `W` rows
/// each: panel `q` holds, for each column `p` of `depth`, the `W` values of rows
/// `rows.start + q * W ..` in that column, zero-padded past `rows.end`.
///
/// For A this is called with A's rows; for B with B's transpose, so that a B panel
/// holds `W` columns of B for each row `p`. `dst` must hold exactly
/// `ceil(rows.len() / W) * W * depth.len()` elements. `W` is a constant so that the
/// per-column copies compile to a few vector moves.
pub(super) fn pack_panels<T: Element, const W: usize>(
    dst: &mut [T],
    src: View<'_, T>,
    rows: Range<usize>,
    depth: Range<usize>,
) {
    let kc = depth.len();
    debug_assert_eq!(dst.len(), rows.len().div_ceil(W) * W * kc);
    for (panel, w0) in dst.chunks_exact_mut(W * kc).zip(rows.clone().step_by(W)) {
        let wl = W.min(rows.end - w0);
        if src.rs == 1 {
            // The panel's values for one `p` are contiguous in the source.
            for (p, out) in depth.clone().zip(panel.chunks_exact_mut(W)) {
                let start = w0 + p * src.cs;
                if wl == W {
                    out.copy_from_slice(&src.data[start..start + W]);
                } else {
                    out[..wl].copy_from_slice(&src.data[start..start + wl]);
                    out[wl..].fill(T::ZERO);
                }
            }
        } else if src.cs == 1 && wl == W {
            // Each of the W source rows is contiguous along `p`: a transpose of a
            // `W x kc` block, done in SIMD registers where the CPU allows.
            let lines: [&[T]; W] = core::array::from_fn(|w| {
                let first = (w0 + w) * src.rs + depth.start;
                &src.data[first..first + kc]
            });
            #[cfg(target_arch = "x86_64")]
            let done = x86::transpose_lines(panel, &lines);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            gather_lines(panel, &lines, done);
        } else {
            for (p, out) in depth.clone().zip(panel.chunks_exact_mut(W)) {
                for (w, o) in out.iter_mut().enumerate() {
                    *o = if w < wl {
                        src.data[(w0 + w) * src.rs + p * src.cs]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}

/// The scalar transpose of `W` lines into a panel (`panel[p * W + w] = lines[w][p]`)
/// for `p` from `from` on: all of it where no SIMD transpose applies, else the depth
/// tail the SIMD blocks leave. Reading the lines side by side writes the panel in
/// order.
fn gather_lines<T: Copy, const W: usize>(panel: &mut [T], lines: &[&[T]; W], from: usize) {
    for (p, out) in panel.chunks_exact_mut(W).enumerate().skip(from) {
        for (o, line) in out.iter_mut().zip(lines) {
            *o = line[p];
        }
    }
}

/// SIMD transposes for [`pack_panels`] on x86-64. Packing B of `x W^T` (a Linear
/// layer's weight stored `[out, in]`), and every row-major A, gathers `W` strided
/// values per packed row. Element by element that was about a tenth of
/// `gemm(false, true, 256, 128, 784)` and more at batch 64 (Zen 4, one thread);
/// `8 x 8` (f32) or `4 x 4` (f64) register transposes move whole vectors and pack
/// 1.3-2.7 times faster.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::any::TypeId;
    use core::arch::x86_64::*;

    // The same detection as the kernels' (`kernel_x86.rs`): at run time under std,
    // the compile-time target features without it.
    #[cfg(feature = "std")]
    macro_rules! has_feature {
        ($f:tt) => {
            std::is_x86_feature_detected!($f)
        };
    }
    #[cfg(not(feature = "std"))]
    macro_rules! has_feature {
        ($f:tt) => {
            cfg!(target_feature = $f)
        };
    }

    /// Transposes the leading whole blocks of `lines` into `panel` (as
    /// [`super::gather_lines`] would) when the element type, `W` and the CPU allow,
    /// and returns how many depth values `p` it packed (a multiple of the block,
    /// 0 when it did nothing); the caller packs the rest.
    pub(super) fn transpose_lines<T: 'static, const W: usize>(
        panel: &mut [T],
        lines: &[&[T]; W],
    ) -> usize {
        let f32_ok = TypeId::of::<T>() == TypeId::of::<f32>() && W.is_multiple_of(8);
        let f64_ok = TypeId::of::<T>() == TypeId::of::<f64>() && W.is_multiple_of(4);
        if !(f32_ok || f64_ok) || !has_feature!("avx") {
            return 0;
        }
        let (panel_ptr, len) = (panel.as_mut_ptr(), panel.len());
        let lines_ptr: *const [&[T]; W] = lines;
        if f32_ok {
            // SAFETY: `T` is `f32` (same `TypeId`), so both casts are to the very
            // types they came from, with the same lengths; the new borrows replace
            // `panel` and `lines`, which are not used again.
            let (panel, lines) = unsafe {
                (
                    core::slice::from_raw_parts_mut(panel_ptr.cast::<f32>(), len),
                    &*lines_ptr.cast::<[&[f32]; W]>(),
                )
            };
            // SAFETY: AVX was detected above.
            unsafe { transpose_f32::<W>(panel, lines) }
        } else {
            // SAFETY: as above, with `T` = `f64`.
            let (panel, lines) = unsafe {
                (
                    core::slice::from_raw_parts_mut(panel_ptr.cast::<f64>(), len),
                    &*lines_ptr.cast::<[&[f64]; W]>(),
                )
            };
            // SAFETY: AVX was detected above.
            unsafe { transpose_f64::<W>(panel, lines) }
        }
    }

    /// f32 with AVX: for each block of 8 depth values and each group of 8 lines, one
    /// `8 x 8` transpose. The first step is done by the loads (128-bit halves of rows
    /// `i` and `i + 4` share a register), so only in-lane shuffles follow, which are
    /// cheaper than cross-lane ones. Returns the depth done (`kc` rounded down to 8).
    // Macros rather than closures or helper functions keep the loop one function
    // even in the tests' opt-level 1 builds, where an outlined intrinsic made this
    // slower than the scalar gather.
    #[target_feature(enable = "avx")]
    fn transpose_f32<const W: usize>(panel: &mut [f32], lines: &[&[f32]; W]) -> usize {
        let kc = lines.first().map_or(0, |l| l.len());
        let done = kc - kc % 8;
        for p0 in (0..done).step_by(8) {
            let rows = &mut panel[p0 * W..(p0 + 8) * W];
            for g in 0..W / 8 {
                let group = &lines[8 * g..8 * g + 8];
                for h in [0, 4] {
                    // Row `i`'s values `p0 + h .. p0 + h + 4`, with row `i + 4`'s
                    // same values in the upper lane.
                    macro_rules! load {
                        ($i:literal) => {{
                            let lo = &group[$i][p0 + h..p0 + h + 4];
                            let hi = &group[$i + 4][p0 + h..p0 + h + 4];
                            // SAFETY: both slices hold 4 floats (checked by the
                            // slicing); the loads are unaligned; AVX is enabled.
                            unsafe {
                                _mm256_insertf128_ps::<1>(
                                    _mm256_castps128_ps256(_mm_loadu_ps(lo.as_ptr())),
                                    _mm_loadu_ps(hi.as_ptr()),
                                )
                            }
                        }};
                    }
                    // Packed row `p0 + h + j` gets the group's 8 values.
                    macro_rules! store {
                        ($j:literal, $v:expr) => {{
                            let dst = &mut rows[(h + $j) * W + 8 * g..][..8];
                            // SAFETY: `dst` holds 8 floats (checked by the slicing)
                            // and is a unique borrow; the store is unaligned; AVX
                            // is enabled.
                            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), $v) }
                        }};
                    }
                    let (t0, t1, t2, t3) = (load!(0), load!(1), load!(2), load!(3));
                    // The 4 x 4 transpose in each lane (`_MM_TRANSPOSE4_PS`).
                    let a = _mm256_unpacklo_ps(t0, t1);
                    let b = _mm256_unpacklo_ps(t2, t3);
                    let c = _mm256_unpackhi_ps(t0, t1);
                    let d = _mm256_unpackhi_ps(t2, t3);
                    store!(0, _mm256_shuffle_ps::<0x44>(a, b));
                    store!(1, _mm256_shuffle_ps::<0xEE>(a, b));
                    store!(2, _mm256_shuffle_ps::<0x44>(c, d));
                    store!(3, _mm256_shuffle_ps::<0xEE>(c, d));
                }
            }
        }
        done
    }

    /// f64 with AVX: `4 x 4` transposes, the 128-bit halves of rows `i` and `i + 2`
    /// loaded into one register so that two unpacks finish each pair of columns.
    /// Returns the depth done (`kc` rounded down to 4).
    // Macros for the reason given at `transpose_f32`.
    #[target_feature(enable = "avx")]
    fn transpose_f64<const W: usize>(panel: &mut [f64], lines: &[&[f64]; W]) -> usize {
        let kc = lines.first().map_or(0, |l| l.len());
        let done = kc - kc % 4;
        for p0 in (0..done).step_by(4) {
            let rows = &mut panel[p0 * W..(p0 + 4) * W];
            for g in 0..W / 4 {
                let group = &lines[4 * g..4 * g + 4];
                for h in [0, 2] {
                    // Row `i`'s values `p0 + h, p0 + h + 1`, with row `i + 2`'s in
                    // the upper lane.
                    macro_rules! load {
                        ($i:literal) => {{
                            let lo = &group[$i][p0 + h..p0 + h + 2];
                            let hi = &group[$i + 2][p0 + h..p0 + h + 2];
                            // SAFETY: both slices hold 2 doubles (checked by the
                            // slicing); the loads are unaligned; AVX is enabled.
                            unsafe {
                                _mm256_insertf128_pd::<1>(
                                    _mm256_castpd128_pd256(_mm_loadu_pd(lo.as_ptr())),
                                    _mm_loadu_pd(hi.as_ptr()),
                                )
                            }
                        }};
                    }
                    // Packed row `p0 + h + j` gets the group's 4 values.
                    macro_rules! store {
                        ($j:literal, $v:expr) => {{
                            let dst = &mut rows[(h + $j) * W + 4 * g..][..4];
                            // SAFETY: `dst` holds 4 doubles (checked by the slicing)
                            // and is a unique borrow; the store is unaligned; AVX
                            // is enabled.
                            unsafe { _mm256_storeu_pd(dst.as_mut_ptr(), $v) }
                        }};
                    }
                    let (t0, t1) = (load!(0), load!(1));
                    store!(0, _mm256_unpacklo_pd(t0, t1));
                    store!(1, _mm256_unpackhi_pd(t0, t1));
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_follow_the_documented_layout() {
        // 3 x 2 row-major matrix [[1, 2], [3, 4], [5, 6]], panels of width 2 over all
        // rows: panel 0 = rows 0-1 -> per column (1, 3), (2, 4); panel 1 = row 2 and a
        // zero row -> (5, 0), (6, 0).
        let m = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = View {
            data: &m,
            rs: 2,
            cs: 1,
        };
        let mut dst = [f32::NAN; 8];
        pack_panels::<f32, 2>(&mut dst, v, 0..3, 0..2);
        assert_eq!(dst, [1.0, 3.0, 2.0, 4.0, 5.0, 0.0, 6.0, 0.0]);
        // The transposed view (2 x 3, rows contiguous in the source): width 2 over
        // rows 0..2, depth 1..3 -> per column p = 1, 2: (3, 4), (5, 6).
        let mut dst = [f32::NAN; 4];
        pack_panels::<f32, 2>(&mut dst, v.t(), 0..2, 1..3);
        assert_eq!(dst, [3.0, 4.0, 5.0, 6.0]);
        // rows_from skips whole rows: rows 1.. of the 3 x 2 matrix, width 4 (padded).
        let mut dst = [f32::NAN; 8];
        pack_panels::<f32, 4>(&mut dst, v.rows_from(1), 0..2, 0..2);
        assert_eq!(dst, [3.0, 5.0, 0.0, 0.0, 4.0, 6.0, 0.0, 0.0]);
    }

    /// Panels element by element straight from the documented layout, as the
    /// reference the SIMD transposes must match bit for bit.
    fn pack_reference<T: Element, const W: usize>(
        src: View<'_, T>,
        rows: Range<usize>,
        depth: Range<usize>,
    ) -> Vec<T> {
        let panels = rows.len().div_ceil(W);
        let mut dst = Vec::with_capacity(panels * W * depth.len());
        for q in 0..panels {
            for p in depth.clone() {
                for w in 0..W {
                    let r = rows.start + q * W + w;
                    dst.push(if r < rows.end {
                        src.data[r * src.rs + p * src.cs]
                    } else {
                        T::ZERO
                    });
                }
            }
        }
        dst
    }

    /// Packs rows-with-contiguous-depth sources (the transposed B of `x W^T`, a
    /// row-major A) of many shapes with `pack_panels` and compares the bits with
    /// [`pack_reference`]: depths 1..70 (whole SIMD blocks and every tail), depth
    /// offsets, row strides beyond the depth, row counts that leave a partial panel.
    /// `values` makes the elements distinct, and includes NaN payloads and -0.0 so
    /// that only an exact copy passes.
    fn check_contiguous_lines<T: Element, const W: usize>(value: impl Fn(usize) -> T) {
        let to_bits =
            |v: &[T]| -> Vec<u64> { v.iter().map(|x| x.to_f64_lossless().to_bits()).collect() };
        for kc in 1..70 {
            for (start, extra, nrows) in
                [(0, 0, 2 * W), (3, 5, W), (1, 0, 3 * W + 1), (7, 13, W + 5)]
            {
                let rs = start + kc + extra;
                let data: Vec<T> = (0..nrows * rs).map(&value).collect();
                let src = View {
                    data: &data,
                    rs,
                    cs: 1,
                };
                for rows in [0..nrows, 1..nrows] {
                    let depth = start..start + kc;
                    let mut dst = vec![T::ZERO; rows.len().div_ceil(W) * W * kc];
                    pack_panels::<T, W>(&mut dst, src, rows.clone(), depth.clone());
                    let want = pack_reference::<T, W>(src, rows.clone(), depth);
                    assert_eq!(
                        to_bits(&dst),
                        to_bits(&want),
                        "W = {W}, kc = {kc}, start = {start}, rs = {rs}, rows = {rows:?}"
                    );
                }
            }
        }
    }

    /// Distinct values, with a few NaNs carrying payloads and negative zeros.
    fn f32_value(i: usize) -> f32 {
        match i % 17 {
            5 => f32::from_bits(0x7fc0_0000 | i as u32 & 0xffff),
            11 => -0.0,
            _ => i as f32 * 0.5 - 100.0,
        }
    }

    /// As [`f32_value`] for f64.
    fn f64_value(i: usize) -> f64 {
        match i % 17 {
            5 => f64::from_bits(0x7ff8_0000_0000_0000 | i as u64 & 0xffff),
            11 => -0.0,
            _ => i as f64 * 0.25 - 100.0,
        }
    }

    #[test]
    fn transposed_packing_matches_reference_f32() {
        check_contiguous_lines::<f32, 32>(f32_value);
        check_contiguous_lines::<f32, 16>(f32_value);
        check_contiguous_lines::<f32, 8>(f32_value);
        check_contiguous_lines::<f32, 6>(f32_value);
        check_contiguous_lines::<f32, 4>(f32_value);
    }

    #[test]
    fn transposed_packing_matches_reference_f64() {
        check_contiguous_lines::<f64, 16>(f64_value);
        check_contiguous_lines::<f64, 8>(f64_value);
        check_contiguous_lines::<f64, 6>(f64_value);
        check_contiguous_lines::<f64, 4>(f64_value);
    }
}
