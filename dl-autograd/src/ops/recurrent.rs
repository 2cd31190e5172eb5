//! A whole recurrent layer (vanilla RNN, LSTM or GRU) over a sequence as one node:
//! the fused forward and a hand-written backpropagation through time.
//!
//! Composing a cell from slices, sigmoids and products records about twenty nodes
//! per time step, each with its own buffer and pass over memory; here a step is one
//! gemm (`h W_hh^T`) and one pass over the gates, and backward does one gemm per step
//! for the state's gradient and a single gemm over all steps for `dW_hh` (the
//! per-step weight gradients are summed by the product's depth, as cuDNN does).
//!
//! Inputs: `xw: [B, T, G*H]` (or the same rows as `[B*T, G*H]`), the input projection `x W_ih^T + b_ih` of every step
//! (computed beforehand in one product); `w_hh: [G*H, H]`, `b_hh: [G*H]` in
//! PyTorch's layout and gate order (LSTM i, f, g, o; GRU r, z, n); initial states
//! `h0` (and `c0` for the LSTM) `[B, H]`. Output `[B, T + S, H]`: rows `0..T` are the
//! hidden states at each step (zero past a sequence's length), row `T` the final
//! hidden state and, for the LSTM (`S = 2`), row `T + 1` the final memory cell.
//!
//! With `lengths`, batch entry `b` only steps while `t < lengths[b]`; past its end its
//! state is frozen (PyTorch's packed-sequence semantics, in either direction).
//! `truncate = Some(k)` cuts the gradient through the state every `k` steps
//! (truncated BPTT; the forward values are unchanged).

use crate::error::{invalid_parameter, shape_mismatch, Result};
use crate::graph::{sized, zeroed, BackwardCtx, Grads, Graph, Scratch, Var};
use crate::op::Op;
use crate::ops::parts::{row_parts, rows_of, rows_of_mut, run_rows};
use dl_core::gemm::{gemm, PackedB};
use dl_core::vmath::{sigmoid_inplace, tanh_inplace};
use dl_core::{Scalar, Shape};

const OP: &str = "recurrent";

/// The cell a fused recurrent layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentCell {
    /// `h' = tanh(pre)`.
    RnnTanh,
    /// `h' = max(0, pre)`.
    RnnRelu,
    /// Long short-term memory (gates i, f, g, o).
    Lstm,
    /// Gated recurrent unit (gates r, z, n).
    Gru,
}

impl RecurrentCell {
    /// Gate blocks `G` stacked in the weights.
    pub fn gates(self) -> usize {
        match self {
            RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => 1,
            RecurrentCell::Lstm => 4,
            RecurrentCell::Gru => 3,
        }
    }

    /// State tensors `S` (2 for the LSTM's `h` and `c`, else 1).
    pub fn states(self) -> usize {
        if self == RecurrentCell::Lstm {
            2
        } else {
            1
        }
    }

    /// Saved floats per `(b, t)` and hidden unit, after the `H` of `h_{t-1}`.
    fn saved_per_unit(self) -> usize {
        match self {
            // the new hidden state
            RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => 1,
            // i, f, g, o, c_{t-1}, c_t
            RecurrentCell::Lstm => 6,
            // r, z, n, W_hn h + b_hn
            RecurrentCell::Gru => 4,
        }
    }
}

/// The tensors a fused recurrent layer reads (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentInputs {
    /// `[B, T, G*H]`: every step's input projection.
    pub xw: Var,
    /// `[G*H, H]`.
    pub w_hh: Var,
    /// `[G*H]`, if biased.
    pub b_hh: Option<Var>,
    /// `[B, H]`.
    pub h0: Var,
    /// `[B, H]`, LSTM only.
    pub c0: Option<Var>,
}

/// How a fused recurrent layer steps (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentSpec {
    /// The cell.
    pub cell: RecurrentCell,
    /// Run from the last step to the first (outputs stay in time order).
    pub reverse: bool,
    /// Cut the state's gradient every `k >= 1` steps.
    pub truncate: Option<usize>,
}

/// Sizes `(B, T, H)` after checking every input's shape.
fn dims(
    cell: RecurrentCell,
    xw: Shape,
    w: Shape,
    b: Option<Shape>,
    h0: Shape,
    c0: Option<Shape>,
) -> Result<(usize, usize, usize)> {
    let (bs, t, gh) = match (xw.dims(), h0.dims()) {
        (&[b, t, gh], _) => (b, t, gh),
        // [B*T, G*H] rows in (b, t) order: B from h0.
        (&[bt, gh], &[b, _]) if b > 0 && bt % b == 0 => (b, bt / b, gh),
        _ => {
            return Err(shape_mismatch(
                OP,
                xw,
                h0,
                "xw must be [batch, time, gates*hidden] or [batch*time, gates*hidden]",
            ))
        }
    };
    let h = match *w.dims() {
        [g, h] if g == cell.gates() * h && g == gh => h,
        _ => {
            return Err(shape_mismatch(
                OP,
                xw,
                w,
                "w_hh must be [gates*hidden, hidden] with gates*hidden = xw's last axis",
            ))
        }
    };
    if let Some(b) = b {
        if b.dims() != [gh] {
            return Err(shape_mismatch(OP, w, b, "b_hh must be [gates*hidden]"));
        }
    }
    if h0.dims() != [bs, h] {
        return Err(shape_mismatch(OP, xw, h0, "h0 must be [batch, hidden]"));
    }
    match (cell, c0) {
        (RecurrentCell::Lstm, Some(c)) if c.dims() == [bs, h] => {}
        (RecurrentCell::Lstm, Some(c)) => {
            return Err(shape_mismatch(OP, h0, c, "c0 must be [batch, hidden]"))
        }
        (RecurrentCell::Lstm, None) => {
            return Err(shape_mismatch(OP, h0, h0, "the LSTM needs c0"));
        }
        (_, Some(c)) => return Err(shape_mismatch(OP, h0, c, "only the LSTM takes c0")),
        (_, None) => {}
    }
    Ok((bs, t, h))
}

/// Whether entry `b` is past its end at time index `step`.
#[inline]
fn frozen(lengths: &[usize], b: usize, step: usize) -> bool {
    !lengths.is_empty() && step >= lengths[b]
}

impl<T: Scalar> Graph<'_, T> {
    /// A whole recurrent layer over a sequence (see the module doc). Errors name
    /// `recurrent` and the offending shapes, or the bad length.
    pub fn recurrent(
        &mut self,
        spec: RecurrentSpec,
        inputs: RecurrentInputs,
        lengths: Option<&[usize]>,
    ) -> Result<Var> {
        let RecurrentInputs {
            xw,
            w_hh,
            b_hh,
            h0,
            c0,
        } = inputs;
        let cell = spec.cell;
        let sb = match b_hh {
            Some(b) => Some(self.shape_of(b, OP)?),
            None => None,
        };
        let sc = match c0 {
            Some(c) => Some(self.shape_of(c, OP)?),
            None => None,
        };
        let (bs, t, h) = dims(
            cell,
            self.shape_of(xw, OP)?,
            self.shape_of(w_hh, OP)?,
            sb,
            self.shape_of(h0, OP)?,
            sc,
        )?;
        if let Some(len) = lengths {
            if len.len() != bs {
                return Err(dl_core::Error::LengthMismatch {
                    op: OP,
                    what: "lengths",
                    expected: bs,
                    actual: len.len(),
                }
                .into());
            }
            if let Some(&bad) = len.iter().find(|&&n| n > t) {
                return Err(invalid_parameter(
                    OP,
                    "lengths[i]",
                    bad as f64,
                    "<= time steps",
                ));
            }
        }
        if spec.truncate == Some(0) {
            return Err(invalid_parameter(OP, "truncate", 0.0, ">= 1"));
        }
        let states = cell.states();
        let gh = cell.gates() * h;
        let mut inputs_list = [xw, w_hh, h0, h0, h0];
        let mut count = 3;
        for v in [b_hh, c0].into_iter().flatten() {
            inputs_list[count] = v;
            count += 1;
        }
        let needs = self.needs_grad(&inputs_list[..count]);

        let mut node = self.begin(Shape::new(&[bs, t + states, h])?);
        node.saved_idx.clear();
        if let Some(len) = lengths {
            node.saved_idx.extend_from_slice(len);
        }
        let per = cell.saved_per_unit();
        let saved = sized(
            &mut node.saved,
            if needs { bs * t * h * (1 + per) } else { 0 },
        );
        let mut scratch = core::mem::take(&mut self.scratch);
        let state = zeroed(&mut scratch.a, states * bs * h);
        let work = sized(&mut scratch.b, 2 * bs * gh);
        let (hstate, cstate) = state.split_at_mut(bs * h);
        hstate.copy_from_slice(self.val(h0).data());
        if let Some(c0) = c0 {
            cstate.copy_from_slice(self.val(c0).data());
        }
        // W_hh^T packed once for all steps (and all rows).
        let packed = &mut scratch.packed;
        let result = packed
            .pack(true, h, gh, self.val(w_hh).data())
            .map_err(Into::into);
        let packed = &scratch.packed;
        let xwv = self.val(xw).data();
        let bias = b_hh.map(|b| self.val(b).data());
        let len = &node.saved_idx[..];
        let out = node.value.data_mut();
        let step = StepSizes {
            cell,
            t,
            h,
            reverse: spec.reverse,
        };
        let result = result.and_then(|()| {
            // Each part owns a block of batch rows through every step: rows never
            // interact, so the parts need no synchronization until the end.
            let rows = bs.div_ceil(row_parts(bs, gh * h * t, 4));
            let parts = rows_of(xwv, rows * t * gh)
                .zip(rows_of(len, rows))
                .zip(rows_of_mut(hstate, rows * h))
                .zip(rows_of_mut(cstate, rows * h))
                .zip(rows_of_mut(work, rows * 2 * gh))
                .zip(rows_of_mut(saved, rows * t * h * (1 + per)))
                .zip(rows_of_mut(out, rows * (t + states) * h))
                .take(bs.div_ceil(rows))
                .map(|((((((xw, len), h), c), work), saved), out)| ForwardRows {
                    xw,
                    len,
                    h,
                    c,
                    work,
                    saved,
                    out,
                });
            run_rows(parts, &|rows| forward_rows(rows, step, bias, packed))
        });
        self.scratch = scratch;
        result?;
        let op = Op::Recurrent {
            xw,
            w_hh,
            b_hh,
            h0,
            c0,
            spec,
        };
        Ok(self.finish(op, node, needs))
    }
}

/// The sizes every part of a layer shares.
#[derive(Clone, Copy)]
struct StepSizes {
    cell: RecurrentCell,
    t: usize,
    h: usize,
    reverse: bool,
}

/// One part's rows of every forward buffer (see [`Graph::recurrent`]).
struct ForwardRows<'a, T> {
    /// `[rows, T, G*H]`.
    xw: &'a [T],
    /// `[rows]`, or empty without lengths.
    len: &'a [usize],
    /// Hidden state `[rows, H]`.
    h: &'a mut [T],
    /// Memory cell `[rows, H]` (LSTM), else empty.
    c: &'a mut [T],
    /// `[rows, 2 G*H]`: gates and `h W_hh^T`.
    work: &'a mut [T],
    /// `[rows, T, H (1 + per)]`, or empty when nothing needs gradients.
    saved: &'a mut [T],
    /// `[rows, T + S, H]`.
    out: &'a mut [T],
}

/// The forward pass of one part's rows over all steps.
fn forward_rows<T: Scalar>(
    p: &mut ForwardRows<'_, T>,
    sizes: StepSizes,
    bias: Option<&[T]>,
    w: &PackedB<T>,
) -> Result<()> {
    let StepSizes {
        cell,
        t,
        h,
        reverse,
    } = sizes;
    let (states, per, gh) = (cell.states(), cell.saved_per_unit(), cell.gates() * h);
    let rows = p.h.len() / h.max(1);
    let needs = !p.saved.is_empty();
    let (gates, hw) = p.work.split_at_mut(rows * gh);
    for k in 0..t {
        let step = if reverse { t - 1 - k } else { k };
        // hw = h W_hh^T + b_hh; for RNN / LSTM the gates add xw_t to it.
        w.gemm(false, rows, T::ONE, p.h, T::ZERO, hw)?;
        for b in 0..rows {
            let row = &mut hw[b * gh..(b + 1) * gh];
            if let Some(bias) = bias {
                for (v, &bv) in row.iter_mut().zip(bias) {
                    *v = *v + bv;
                }
            }
            let xrow = &p.xw[(b * t + step) * gh..(b * t + step + 1) * gh];
            let grow = &mut gates[b * gh..(b + 1) * gh];
            let hb = &mut p.h[b * h..(b + 1) * h];
            let orow = &mut p.out[(b * (t + states) + step) * h..][..h];
            let at = (b * t + step) * h * (1 + per);
            if frozen(p.len, b, step) {
                orow.fill(T::ZERO);
                if needs {
                    // Keep the saved rows finite; backward skips them.
                    let s = &mut p.saved[at..at + h * (1 + per)];
                    s.fill(T::ZERO);
                    s[..h].copy_from_slice(hb);
                }
                continue;
            }
            let c_at = (b * h).min(p.c.len());
            let cb = &mut p.c[c_at..];
            let sv: &mut [T] = if needs {
                &mut p.saved[at..at + h * (1 + per)]
            } else {
                &mut []
            };
            if needs {
                sv[..h].copy_from_slice(hb);
            }
            step_cell(cell, h, xrow, row, grow, hb, cb, sv);
            orow.copy_from_slice(hb);
        }
    }
    for b in 0..rows {
        let base = b * (t + states) + t;
        p.out[base * h..(base + 1) * h].copy_from_slice(&p.h[b * h..(b + 1) * h]);
        if states == 2 {
            p.out[(base + 1) * h..(base + 2) * h].copy_from_slice(&p.c[b * h..(b + 1) * h]);
        }
    }
    Ok(())
}

/// One cell update of one batch row: `hw = h W_hh^T + b_hh` (`[G*H]`, overwritten),
/// `x = xw_t`, `g` a `[G*H]` work row; updates `h` (and `c[..H]`) in place and saves
/// what backward needs into `sv[H..]` (if not empty).
#[allow(clippy::too_many_arguments)]
#[inline]
fn step_cell<T: Scalar>(
    cell: RecurrentCell,
    h: usize,
    x: &[T],
    hw: &mut [T],
    g: &mut [T],
    hb: &mut [T],
    cb: &mut [T],
    sv: &mut [T],
) {
    match cell {
        RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
            for ((o, &a), &b) in hb.iter_mut().zip(x).zip(hw.iter()) {
                *o = a + b;
            }
            if cell == RecurrentCell::RnnTanh {
                tanh_inplace(hb);
            } else {
                for v in hb.iter_mut() {
                    *v = v.max(T::ZERO);
                }
            }
            if !sv.is_empty() {
                sv[h..2 * h].copy_from_slice(hb);
            }
        }
        RecurrentCell::Lstm => {
            // The gates go straight into the saved row when training.
            let (gates, rest) = if sv.is_empty() {
                (&mut g[..4 * h], &mut [][..])
            } else {
                sv[h..].split_at_mut(4 * h)
            };
            for ((o, &a), &b) in gates.iter_mut().zip(x).zip(hw.iter()) {
                *o = a + b;
            }
            sigmoid_inplace(&mut gates[..2 * h]);
            tanh_inplace(&mut gates[2 * h..3 * h]);
            sigmoid_inplace(&mut gates[3 * h..]);
            let c = &mut cb[..h];
            if !rest.is_empty() {
                rest[..h].copy_from_slice(c);
            }
            let (i, gates) = gates.split_at(h);
            let (f, gates) = gates.split_at(h);
            let (gg, o) = gates.split_at(h);
            lstm_cell_update([i, f, gg], c);
            if !rest.is_empty() {
                rest[h..2 * h].copy_from_slice(c);
            }
            // tanh(c) into hw's first block (free now), then h = o * tanh(c).
            let tc = &mut hw[..h];
            tc.copy_from_slice(c);
            tanh_inplace(tc);
            mul_into(o, tc, hb);
        }
        RecurrentCell::Gru => {
            for j in 0..2 * h {
                g[j] = x[j] + hw[j];
            }
            sigmoid_inplace(&mut g[..2 * h]);
            let (rz, n) = g.split_at_mut(2 * h);
            let r = &rz[..h];
            let hn = &hw[2 * h..];
            for j in 0..h {
                n[j] = x[2 * h + j] + r[j] * hn[j];
            }
            tanh_inplace(n);
            if !sv.is_empty() {
                sv[h..4 * h].copy_from_slice(g);
                sv[4 * h..5 * h].copy_from_slice(hn);
            }
            let (rz, n) = g.split_at(2 * h);
            let z = &rz[h..];
            for j in 0..h {
                hb[j] = (T::ONE - z[j]) * n[j] + z[j] * hb[j];
            }
        }
    }
}

/// `c = f * c + i * g` (a function so the slices do not alias; see
/// [`lstm_cell_backward`]).
#[inline(never)]
fn lstm_cell_update<T: Scalar>([i, f, g]: [&[T]; 3], c: &mut [T]) {
    let h = c.len();
    let (i, f, g) = (&i[..h], &f[..h], &g[..h]);
    for j in 0..h {
        c[j] = f[j] * c[j] + i[j] * g[j];
    }
}

/// `out = a * b` elementwise.
#[inline(never)]
fn mul_into<T: Scalar>(a: &[T], b: &[T], out: &mut [T]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x * y;
    }
}

/// The LSTM cell's backward for one row, from the saved gates `i, f, g, o`, `c_{t-1}`,
/// `tanh(c_t)` and the incoming `dh`: the four gate gradients, and `dc` updated to
/// the gradient reaching `c_{t-1}`. A function of its own so the slices are
/// arguments, which the compiler knows do not alias, and the loop vectorizes.
#[inline(never)]
fn lstm_cell_backward<T: Scalar>(
    [i, f, g, o, cprev, tc, dh]: [&[T]; 7],
    dc: &mut [T],
    di: &mut [T],
    df: &mut [T],
    dg: &mut [T],
    d_o: &mut [T],
) {
    let h = dc.len();
    let (i, f, g, o, cprev, tc, dh) = (
        &i[..h],
        &f[..h],
        &g[..h],
        &o[..h],
        &cprev[..h],
        &tc[..h],
        &dh[..h],
    );
    let (di, df, dg, d_o) = (&mut di[..h], &mut df[..h], &mut dg[..h], &mut d_o[..h]);
    for j in 0..h {
        let tcj = tc[j];
        let dcj = dc[j] + dh[j] * o[j] * (T::ONE - tcj * tcj);
        di[j] = dcj * g[j] * i[j] * (T::ONE - i[j]);
        df[j] = dcj * cprev[j] * f[j] * (T::ONE - f[j]);
        dg[j] = dcj * i[j] * (T::ONE - g[j] * g[j]);
        d_o[j] = dh[j] * tcj * o[j] * (T::ONE - o[j]);
        dc[j] = dcj * f[j];
    }
}

/// One part's rows of every backward buffer (see [`recurrent_backward`]).
struct BackwardRows<'a, T> {
    /// `[rows]`, or empty without lengths.
    len: &'a [usize],
    /// `[rows, T, H (1 + per)]` as the forward saved them.
    saved: &'a [T],
    /// The output's gradient `[rows, T + S, H]`.
    dy: &'a [T],
    /// Carried `dh` `[rows, H]`; ends as the gradient of `h0`.
    dh: &'a mut [T],
    /// Carried `dc` `[rows, H]` (LSTM), else empty; ends as the gradient of `c0`.
    dc: &'a mut [T],
    /// Gradient of the gates' pre-activations (= of `xw`) `[rows, T, G*H]`, zeroed.
    dpre: &'a mut [T],
    /// Gradient of `hw = h W_hh^T + b_hh` `[rows, T, G*H]` (GRU), else empty.
    dhw: &'a mut [T],
    /// `[rows, G*H + H]`: a step's `dhw`, then the next `dh`.
    work: &'a mut [T],
}

/// Backpropagation through time for one part's rows.
fn backward_rows<T: Scalar>(
    p: &mut BackwardRows<'_, T>,
    sizes: StepSizes,
    truncate: Option<usize>,
    w: &PackedB<T>,
) -> Result<()> {
    let StepSizes {
        cell,
        t,
        h,
        reverse,
    } = sizes;
    let (states, per, gh) = (cell.states(), cell.saved_per_unit(), cell.gates() * h);
    let rows = p.dh.len() / h.max(1);
    let gru = cell == RecurrentCell::Gru;
    let (len, saved, dy) = (p.len, p.saved, p.dy);
    let (dh_carry, dc_carry) = (&mut *p.dh, &mut *p.dc);
    for b in 0..rows {
        let base = b * (t + states) + t;
        dh_carry[b * h..(b + 1) * h].copy_from_slice(&dy[base * h..(base + 1) * h]);
        if states == 2 {
            dc_carry[b * h..(b + 1) * h].copy_from_slice(&dy[(base + 1) * h..(base + 2) * h]);
        }
    }
    let (step_dhw, next_dh) = p.work.split_at_mut(rows * gh);
    for k in (0..t).rev() {
        let step = if reverse { t - 1 - k } else { k };
        for b in 0..rows {
            let srow = &mut step_dhw[b * gh..(b + 1) * gh];
            if frozen(len, b, step) {
                srow.fill(T::ZERO);
                continue;
            }
            let at = (b * t + step) * h * (1 + per);
            let sv = &saved[at..at + h * (1 + per)];
            let dh = &mut dh_carry[b * h..(b + 1) * h];
            let dout = &dy[(b * (t + states) + step) * h..][..h];
            for (d, &o) in dh.iter_mut().zip(dout) {
                *d = *d + o;
            }
            let drow = &mut p.dpre[(b * t + step) * gh..(b * t + step + 1) * gh];
            match cell {
                RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
                    let y = &sv[h..2 * h];
                    for j in 0..h {
                        let d = if cell == RecurrentCell::RnnTanh {
                            dh[j] * (T::ONE - y[j] * y[j])
                        } else if y[j] > T::ZERO {
                            dh[j]
                        } else {
                            T::ZERO
                        };
                        drow[j] = d;
                    }
                    srow.copy_from_slice(drow);
                }
                RecurrentCell::Lstm => {
                    let (i, rest) = sv[h..].split_at(h);
                    let (f, rest) = rest.split_at(h);
                    let (g, rest) = rest.split_at(h);
                    let (o, rest) = rest.split_at(h);
                    let (cprev, c) = rest.split_at(h);
                    let (di, rest) = drow.split_at_mut(h);
                    let (df, rest) = rest.split_at_mut(h);
                    let (dg, dout_o) = rest.split_at_mut(h);
                    let dc = &mut dc_carry[b * h..(b + 1) * h];
                    let dh = &dh[..h];
                    // tanh(c) again (cheaper to recompute than to keep).
                    let tc = &mut srow[..h];
                    tc.copy_from_slice(c);
                    tanh_inplace(tc);
                    let tc = &srow[..h];
                    lstm_cell_backward([i, f, g, o, cprev, tc, dh], dc, di, df, dg, dout_o);
                    srow.copy_from_slice(drow);
                }
                RecurrentCell::Gru => {
                    let (r, z, n, hn) = (
                        &sv[h..2 * h],
                        &sv[2 * h..3 * h],
                        &sv[3 * h..4 * h],
                        &sv[4 * h..5 * h],
                    );
                    let hprev = &sv[..h];
                    let hrow = &mut p.dhw[(b * t + step) * gh..(b * t + step + 1) * gh];
                    for j in 0..h {
                        let dn = dh[j] * (T::ONE - z[j]) * (T::ONE - n[j] * n[j]);
                        let dz = dh[j] * (hprev[j] - n[j]) * z[j] * (T::ONE - z[j]);
                        let dr = dn * hn[j] * r[j] * (T::ONE - r[j]);
                        drow[j] = dr;
                        drow[h + j] = dz;
                        drow[2 * h + j] = dn;
                        hrow[j] = dr;
                        hrow[h + j] = dz;
                        hrow[2 * h + j] = dn * r[j];
                        // The direct path h' = ... + z h.
                        dh[j] = dh[j] * z[j];
                    }
                    srow.copy_from_slice(hrow);
                }
            }
        }
        // dh_{t-1} = dhw_t W_hh (+ z dh for the GRU); frozen rows pass dh through.
        let beta = if gru { T::ONE } else { T::ZERO };
        next_dh.copy_from_slice(dh_carry);
        w.gemm(false, rows, T::ONE, step_dhw, beta, next_dh)?;
        for b in 0..rows {
            let r = b * h..(b + 1) * h;
            if !frozen(len, b, step) {
                dh_carry[r.clone()].copy_from_slice(&next_dh[r]);
            }
        }
        if let (Some(every), true) = (truncate, k > 0) {
            if k % every == 0 {
                dh_carry.fill(T::ZERO);
                dc_carry.fill(T::ZERO);
            }
        }
    }
    Ok(())
}

/// Backward of [`Graph::recurrent`] (see the module doc).
pub(crate) fn recurrent_backward<T: Scalar>(
    ctx: &BackwardCtx<'_, '_, T>,
    grads: &mut Grads<'_, '_, T>,
    scratch: &mut Scratch<T>,
    inputs: RecurrentInputs,
    spec: RecurrentSpec,
) -> Result<()> {
    let RecurrentInputs {
        xw,
        w_hh,
        b_hh,
        h0,
        c0,
    } = inputs;
    let cell = spec.cell;
    let bs = ctx.vals.get(h0).shape().dims()[0];
    let xs = ctx.vals.get(xw).shape();
    let gh = xs.dims()[xs.rank() - 1];
    let t = xs.numel() / (bs * gh).max(1);
    let h = gh / cell.gates();
    let states = cell.states();
    let per = cell.saved_per_unit();
    let saved = &ctx.node.saved;
    let len = &ctx.node.saved_idx[..];
    let wv = ctx.vals.get(w_hh).data();
    let dy = ctx.dy;

    // Work: carry (dh, dc) [S*B*H]; the gate gradients of `pre` (= dxw) and of `hw`
    // (differs for the GRU's n block) for all steps; per row, a step's `dhw` and the
    // next `dh`.
    let carry = sized(&mut scratch.a, states * bs * h);
    let (dh_carry, dc_carry) = carry.split_at_mut(bs * h);
    let gru = cell == RecurrentCell::Gru;
    let work = zeroed(
        &mut scratch.b,
        bs * t * gh * if gru { 2 } else { 1 } + bs * (gh + h),
    );
    let (dpre, work) = work.split_at_mut(bs * t * gh);
    let (dhw_all, step_work) = work.split_at_mut(if gru { bs * t * gh } else { 0 });
    // dh_{t-1} = dhw_t W_hh: W_hh packed once for all steps.
    scratch.packed.pack(false, gh, h, wv)?;
    let packed = &scratch.packed;
    let sizes = StepSizes {
        cell,
        t,
        h,
        reverse: spec.reverse,
    };
    let truncate = spec.truncate;
    {
        let rows = bs.div_ceil(row_parts(bs, 2 * gh * h * t, 4));
        let parts = rows_of(len, rows)
            .zip(rows_of(saved, rows * t * h * (1 + per)))
            .zip(rows_of(dy, rows * (t + states) * h))
            .zip(rows_of_mut(dh_carry, rows * h))
            .zip(rows_of_mut(dc_carry, rows * h))
            .zip(rows_of_mut(dpre, rows * t * gh))
            .zip(rows_of_mut(dhw_all, rows * t * gh))
            .zip(rows_of_mut(step_work, rows * (gh + h)))
            .take(bs.div_ceil(rows))
            .map(
                |(((((((len, saved), dy), dh), dc), dpre), dhw), work)| BackwardRows {
                    len,
                    saved,
                    dy,
                    dh,
                    dc,
                    dpre,
                    dhw,
                    work,
                },
            );
        run_rows(parts, &|rows| backward_rows(rows, sizes, truncate, packed))?;
    }
    let (dh_carry, dc_carry) = scratch.a[..states * bs * h].split_at(bs * h);
    let dpre = &scratch.b[..bs * t * gh];
    let dhw_all = &scratch.b[bs * t * gh..][..if gru { bs * t * gh } else { 0 }];

    if let Some(g) = grads.get(h0) {
        g.add(dh_carry);
    }
    if let Some(c0) = c0 {
        if let Some(g) = grads.get(c0) {
            g.add(dc_carry);
        }
    }
    if let Some(g) = grads.get(xw) {
        g.add(dpre);
    }
    let dhw: &[T] = if gru { dhw_all } else { dpre };
    if grads.needs(w_hh) {
        // h_{t-1} of every (b, t), gathered from the saved rows into scratch.c.
        let hprev = sized(&mut scratch.c, bs * t * h);
        for (bt, row) in hprev.chunks_exact_mut(h).enumerate() {
            let at = bt * h * (1 + per);
            row.copy_from_slice(&saved[at..at + h]);
        }
        if let Some(dw) = grads.get(w_hh) {
            let beta = dw.beta();
            gemm(
                true,
                false,
                gh,
                h,
                bs * t,
                T::ONE,
                dhw,
                hprev,
                beta,
                dw.data,
            )?;
        }
    }
    if let Some(b) = b_hh {
        if let Some(db) = grads.get(b) {
            let db = db.zeroed();
            for row in dhw.chunks_exact(gh) {
                for (d, &v) in db.iter_mut().zip(row) {
                    *d = *d + v;
                }
            }
        }
    }
    Ok(())
}
