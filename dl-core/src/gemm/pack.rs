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
            // Each of the W source rows is contiguous along `p`: read them side by
            // side, so the panel is written in order.
            let lines: [&[T]; W] = core::array::from_fn(|w| {
                let first = (w0 + w) * src.rs + depth.start;
                &src.data[first..first + kc]
            });
            for (p, out) in panel.chunks_exact_mut(W).enumerate() {
                for (o, line) in out.iter_mut().zip(&lines) {
                    *o = line[p];
                }
            }
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
}
