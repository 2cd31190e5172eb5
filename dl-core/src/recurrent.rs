//! One recurrent layer (vanilla RNN, LSTM or GRU) over a whole sequence, for
//! inference: zero initial state, PyTorch's weight layout and gate order, every
//! buffer the caller's (what the deployment engine runs from flash and one arena).
//!
//! Per time step `t`, with `x_t` the step's `I` features and `h`, `c` the state
//! (zero before the first step):
//!
//! ```text
//! RNN:  h' = act(W_ih x_t + b_ih + W_hh h + b_hh)          act = tanh or ReLU
//! LSTM: i = sigmoid(W_ii x_t + b_ii + W_hi h + b_hi)       gates i, f, g, o
//!       f = sigmoid(W_if x_t + b_if + W_hf h + b_hf)
//!       g = tanh(W_ig x_t + b_ig + W_hg h + b_hg)
//!       o = sigmoid(W_io x_t + b_io + W_ho h + b_ho)
//!       c' = f * c + i * g,  h' = o * tanh(c')
//! GRU:  r = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr)       gates r, z, n
//!       z = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz)
//!       n = tanh(W_in x_t + b_in + r * (W_hn h + b_hn))
//!       h' = (1 - z) * n + z * h
//! ```
//!
//! Shapes: `x: [batch, time, input]`; `W_ih: [G*H, I]` and `W_hh: [G*H, H]` stack
//! the `G` gate blocks (1, 4 or 3) in the order above, biases `[G*H]` (PyTorch's
//! `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`). The output holds
//! `h` after every step, `[batch, time, row]`, or after the last one only,
//! `[batch, row]`, in columns `col..col + H` of each row (`row = H`, `col = 0` for a
//! plain layer; a bidirectional pair writes its two halves of one `[.., 2H]` row).
//! With `reverse`, steps run from `time - 1` down to 0 and outputs stay in time order.
//!
//! The gates use [`crate::vmath`]'s sigmoid and tanh, as dl-autograd's fused
//! recurrent op does, so a deployed layer computes the trained one's numbers up to
//! the summation order of its products.
//!
//! ```
//! use dl_core::recurrent::{recurrent, Cell, CellWeights, RecurrentGeometry};
//! // A one-unit ReLU RNN, h' = relu(2 x + 0.5 h), over x = [1, 3]: h = 2, then 7.
//! let g = RecurrentGeometry::new(Cell::RnnRelu, 1, 2, 1, 1)?;
//! let w = CellWeights { w_ih: &[2.0], w_hh: &[0.5], b_ih: None, b_hh: None };
//! let mut scratch = [0.0f32; 3];
//! assert_eq!(g.scratch_len(), scratch.len());
//! let mut y = [0.0f32; 2];
//! recurrent(&g, &[1.0, 3.0], &w, &mut scratch, &mut y)?;
//! assert_eq!(y, [2.0, 7.0]);
//! # Ok::<(), dl_core::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::nhwc::dense;
use crate::vmath::{sigmoid_inplace, tanh_inplace};

const OP: &str = "recurrent";

/// The cell a recurrent layer runs (see the module doc for its equations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch's default RNN).
    RnnTanh,
    /// `h' = max(0, W_ih x + b_ih + W_hh h + b_hh)`.
    RnnRelu,
    /// Long short-term memory, gates i, f, g, o.
    Lstm,
    /// Gated recurrent unit, gates r, z, n.
    Gru,
}

impl Cell {
    /// Gate blocks `G` stacked in the weights: 1, 4 or 3.
    pub const fn gates(self) -> usize {
        match self {
            Cell::RnnTanh | Cell::RnnRelu => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    /// State vectors `S` carried between steps: 2 for the LSTM's `h` and `c`, else 1.
    pub const fn states(self) -> usize {
        match self {
            Cell::Lstm => 2,
            _ => 1,
        }
    }

    /// `(2 G + S) * hidden` floats of scratch (saturating): the step's two
    /// projections `W_ih x_t + b_ih` and `W_hh h + b_hh`, then the state `h` (and `c`).
    pub const fn scratch_len(self, hidden: usize) -> usize {
        (2 * self.gates() + self.states()).saturating_mul(hidden)
    }
}

/// A layer's weights in PyTorch's layout (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct CellWeights<'a> {
    /// `W_ih`, `[G*H, I]`.
    pub w_ih: &'a [f32],
    /// `W_hh`, `[G*H, H]`.
    pub w_hh: &'a [f32],
    /// `b_ih`, `[G*H]`, if any.
    pub b_ih: Option<&'a [f32]>,
    /// `b_hh`, `[G*H]`, if any.
    pub b_hh: Option<&'a [f32]>,
}

/// Sizes and options of one recurrent layer over a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentGeometry {
    /// The cell.
    pub cell: Cell,
    /// Sequences `B`, >= 1.
    pub batch: usize,
    /// Steps `T`, >= 1.
    pub time: usize,
    /// Features per step `I`, >= 1.
    pub input: usize,
    /// Hidden units `H`, >= 1.
    pub hidden: usize,
    /// Run from the last step to the first (outputs stay in time order).
    pub reverse: bool,
    /// Write only the state after the last step run (`[B, row]`), not every step's.
    pub last_only: bool,
    /// Values per output row, >= `col + hidden`.
    pub row: usize,
    /// The first column of a row this layer writes.
    pub col: usize,
}

impl RecurrentGeometry {
    /// A layer writing every step's `h` into rows of its own (`row = hidden`,
    /// `col = 0`), forwards; checked.
    pub fn new(cell: Cell, batch: usize, time: usize, input: usize, hidden: usize) -> Result<Self> {
        let g = RecurrentGeometry {
            cell,
            batch,
            time,
            input,
            hidden,
            reverse: false,
            last_only: false,
            row: hidden,
            col: 0,
        };
        g.check()?;
        Ok(g)
    }

    /// Checks every size is at least 1, the written columns fit in a row, and every
    /// buffer length fits in `usize`.
    pub fn check(&self) -> Result<()> {
        for (name, v) in [
            ("batch", self.batch),
            ("time", self.time),
            ("input", self.input),
            ("hidden", self.hidden),
        ] {
            if v == 0 {
                return Err(Error::InvalidParameter {
                    op: OP,
                    name,
                    value: 0.0,
                    valid: ">= 1",
                });
            }
        }
        if self
            .col
            .checked_add(self.hidden)
            .is_none_or(|end| end > self.row)
        {
            return Err(Error::InvalidParameter {
                op: OP,
                name: "col",
                value: self.col as f64,
                valid: "col + hidden <= row",
            });
        }
        let overflow = Error::Overflow { op: OP };
        let gh = self.cell.gates().checked_mul(self.hidden).ok_or(overflow)?;
        let steps = if self.last_only { 1 } else { self.time };
        let lens = [
            [self.batch, self.time, self.input],
            [self.batch, steps, self.row],
            [gh, self.input, 1],
            [gh, self.hidden, 1],
            [2 * self.cell.gates() + self.cell.states(), self.hidden, 1],
        ];
        for dims in lens {
            dims.iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .and_then(|n| n.checked_mul(4))
                .ok_or(overflow)?;
        }
        Ok(())
    }

    /// `B * T * I`: the input's length.
    pub fn x_len(&self) -> usize {
        self.batch
            .saturating_mul(self.time)
            .saturating_mul(self.input)
    }

    /// The output's length: `B * T * row`, or `B * row` for the last step only.
    pub fn y_len(&self) -> usize {
        let steps = if self.last_only { 1 } else { self.time };
        self.batch.saturating_mul(steps).saturating_mul(self.row)
    }

    /// `G * H * I`: `W_ih`'s length.
    pub fn w_ih_len(&self) -> usize {
        self.bias_len().saturating_mul(self.input)
    }

    /// `G * H * H`: `W_hh`'s length.
    pub fn w_hh_len(&self) -> usize {
        self.bias_len().saturating_mul(self.hidden)
    }

    /// `G * H`: each bias's length.
    pub fn bias_len(&self) -> usize {
        self.cell.gates().saturating_mul(self.hidden)
    }

    /// Floats of scratch the layer needs ([`Cell::scratch_len`]).
    pub fn scratch_len(&self) -> usize {
        self.cell.scratch_len(self.hidden)
    }
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            op: OP,
            what,
            expected,
            actual,
        })
    }
}

/// Runs one recurrent layer over `x` (see the module doc), writing `y` (only the
/// columns `g.col..g.col + g.hidden` of each row; the rest is left as it is), with
/// `scratch` of [`RecurrentGeometry::scratch_len`] floats. Every length is checked
/// against `g`; nothing is allocated.
pub fn recurrent(
    g: &RecurrentGeometry,
    x: &[f32],
    w: &CellWeights<'_>,
    scratch: &mut [f32],
    y: &mut [f32],
) -> Result<()> {
    g.check()?;
    check_len("input", g.x_len(), x.len())?;
    check_len("output", g.y_len(), y.len())?;
    check_len("weight_ih", g.w_ih_len(), w.w_ih.len())?;
    check_len("weight_hh", g.w_hh_len(), w.w_hh.len())?;
    for b in [w.b_ih, w.b_hh].into_iter().flatten() {
        check_len("bias", g.bias_len(), b.len())?;
    }
    check_len("scratch", g.scratch_len(), scratch.len())?;
    let (h, gh) = (g.hidden, g.bias_len());
    let (xw, rest) = scratch.split_at_mut(gh);
    let (hw, state) = rest.split_at_mut(gh);
    let (hs, cs) = state.split_at_mut(h);
    let (lo, hi) = (f32::NEG_INFINITY, f32::INFINITY);
    for (b, xs) in x.chunks_exact(g.time * g.input).enumerate() {
        hs.fill(0.0);
        cs.fill(0.0);
        for k in 0..g.time {
            let step = if g.reverse { g.time - 1 - k } else { k };
            let x_t = &xs[step * g.input..(step + 1) * g.input];
            dense(x_t, w.w_ih, w.b_ih, 1, g.input, gh, lo, hi, xw)?;
            dense(hs, w.w_hh, w.b_hh, 1, h, gh, lo, hi, hw)?;
            step_cell(g.cell, h, xw, hw, hs, cs);
            if !g.last_only {
                let at = (b * g.time + step) * g.row + g.col;
                y[at..at + h].copy_from_slice(hs);
            }
        }
        if g.last_only {
            let at = b * g.row + g.col;
            y[at..at + h].copy_from_slice(hs);
        }
    }
    Ok(())
}

/// One cell update from the step's projections `xw = W_ih x_t + b_ih` and
/// `hw = W_hh h + b_hh` (both `[G*H]`, used as work space): updates `h` (and `c`).
fn step_cell(cell: Cell, h: usize, xw: &mut [f32], hw: &mut [f32], hs: &mut [f32], cs: &mut [f32]) {
    match cell {
        Cell::RnnTanh | Cell::RnnRelu => {
            for ((o, &a), &b) in hs.iter_mut().zip(xw.iter()).zip(hw.iter()) {
                *o = a + b;
            }
            if cell == Cell::RnnTanh {
                tanh_inplace(hs);
            } else {
                for v in hs.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
        Cell::Lstm => {
            for (a, &b) in xw.iter_mut().zip(hw.iter()) {
                *a += b;
            }
            sigmoid_inplace(&mut xw[..2 * h]);
            tanh_inplace(&mut xw[2 * h..3 * h]);
            sigmoid_inplace(&mut xw[3 * h..4 * h]);
            let (i, rest) = xw.split_at(h);
            let (f, rest) = rest.split_at(h);
            let (gg, o) = rest.split_at(h);
            for j in 0..h {
                cs[j] = f[j] * cs[j] + i[j] * gg[j];
            }
            // tanh(c') in hw's first block (read already), then h' = o * tanh(c').
            let tc = &mut hw[..h];
            tc.copy_from_slice(&cs[..h]);
            tanh_inplace(tc);
            for j in 0..h {
                hs[j] = o[j] * tc[j];
            }
        }
        Cell::Gru => {
            for (a, &b) in xw[..2 * h].iter_mut().zip(hw.iter()) {
                *a += b;
            }
            sigmoid_inplace(&mut xw[..2 * h]);
            let (rz, n) = xw.split_at_mut(2 * h);
            for j in 0..h {
                n[j] += rz[j] * hw[2 * h + j];
            }
            tanh_inplace(n);
            let z = &rz[h..];
            for j in 0..h {
                hs[j] = (1.0 - z[j]) * n[j] + z[j] * hs[j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid(v: f32) -> f32 {
        1.0 / (1.0 + libm::expf(-v))
    }

    fn run(g: &RecurrentGeometry, x: &[f32], w: &CellWeights<'_>) -> [f32; 4] {
        let mut scratch = [0.0f32; 32];
        let mut y = [-9.0f32; 4];
        recurrent(
            g,
            x,
            w,
            &mut scratch[..g.scratch_len()],
            &mut y[..g.y_len()],
        )
        .unwrap();
        y
    }

    fn close(a: &[f32], b: &[f32]) {
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() < 1e-6, "{a:?} != {b:?}");
        }
    }

    #[test]
    fn tanh_rnn_by_hand_forwards_and_backwards() {
        // h1 = tanh(0.5 x1 + 0.1 + 0.2), h2 = tanh(0.5 x2 + 0.1 - h1 + 0.2).
        let w = CellWeights {
            w_ih: &[0.5],
            w_hh: &[-1.0],
            b_ih: Some(&[0.1]),
            b_hh: Some(&[0.2]),
        };
        let mut g = RecurrentGeometry::new(Cell::RnnTanh, 1, 2, 1, 1).unwrap();
        let h1 = libm::tanhf(0.5 + 0.3);
        let h2 = libm::tanhf(1.0 + 0.3 - h1);
        close(&run(&g, &[1.0, 2.0], &w)[..2], &[h1, h2]);
        // Reversed: x2 first, outputs in time order.
        g.reverse = true;
        let r2 = libm::tanhf(1.0 + 0.3);
        let r1 = libm::tanhf(0.5 + 0.3 - r2);
        close(&run(&g, &[1.0, 2.0], &w)[..2], &[r1, r2]);
        // The last step only, into column 1 of a row of 3: column 0 and 2 untouched.
        g.reverse = false;
        g.last_only = true;
        g.row = 3;
        g.col = 1;
        close(&run(&g, &[1.0, 2.0], &w)[..3], &[-9.0, h2, -9.0]);
    }

    #[test]
    fn lstm_and_gru_one_unit_by_hand() {
        // LSTM, W_ih = [1, 2, 3, 4] (i, f, g, o), W_hh = 0.5 each, no biases.
        let w = CellWeights {
            w_ih: &[1.0, 2.0, 3.0, 4.0],
            w_hh: &[0.5; 4],
            b_ih: None,
            b_hh: None,
        };
        let g = RecurrentGeometry::new(Cell::Lstm, 1, 2, 1, 1).unwrap();
        let step = |x: f32, h: f32, c: f32| {
            let p = |k: f32| k * x + 0.5 * h;
            let c = sigmoid(p(2.0)) * c + sigmoid(p(1.0)) * libm::tanhf(p(3.0));
            (sigmoid(p(4.0)) * libm::tanhf(c), c)
        };
        let (h1, c1) = step(0.3, 0.0, 0.0);
        let (h2, _) = step(-0.7, h1, c1);
        close(&run(&g, &[0.3, -0.7], &w)[..2], &[h1, h2]);
        // GRU, W_ih = [1, 2, 3] (r, z, n), W_hh = [0.5, -0.5, 2], b_hh = [0, 0, 0.25]:
        // the reset gate multiplies W_hn h + b_hn.
        let w = CellWeights {
            w_ih: &[1.0, 2.0, 3.0],
            w_hh: &[0.5, -0.5, 2.0],
            b_ih: None,
            b_hh: Some(&[0.0, 0.0, 0.25]),
        };
        let g = RecurrentGeometry::new(Cell::Gru, 1, 2, 1, 1).unwrap();
        let step = |x: f32, h: f32| {
            let r = sigmoid(x + 0.5 * h);
            let z = sigmoid(2.0 * x - 0.5 * h);
            let n = libm::tanhf(3.0 * x + r * (2.0 * h + 0.25));
            (1.0 - z) * n + z * h
        };
        let h1 = step(0.3, 0.0);
        let h2 = step(-0.7, h1);
        close(&run(&g, &[0.3, -0.7], &w)[..2], &[h1, h2]);
    }

    #[test]
    fn batches_run_independently_from_zero_state() {
        let w = CellWeights {
            w_ih: &[1.0],
            w_hh: &[1.0],
            b_ih: None,
            b_hh: None,
        };
        let g = RecurrentGeometry::new(Cell::RnnRelu, 2, 2, 1, 1).unwrap();
        // Row 0: 1, 1 + 2; row 1: 4, 4 + 5.
        assert_eq!(run(&g, &[1.0, 2.0, 4.0, 5.0], &w), [1.0, 3.0, 4.0, 9.0]);
    }

    #[test]
    fn bad_sizes_are_named_errors() {
        assert!(matches!(
            RecurrentGeometry::new(Cell::Gru, 1, 0, 1, 1),
            Err(Error::InvalidParameter { name: "time", .. })
        ));
        let mut g = RecurrentGeometry::new(Cell::Gru, 1, 1, 1, 2).unwrap();
        g.col = 1;
        assert!(matches!(
            g.check(),
            Err(Error::InvalidParameter { name: "col", .. })
        ));
        g.col = 0;
        g.row = usize::MAX;
        assert_eq!(g.check(), Err(Error::Overflow { op: OP }));
        let g = RecurrentGeometry::new(Cell::Gru, 1, 1, 1, 2).unwrap();
        let w = CellWeights {
            w_ih: &[0.0; 6],
            w_hh: &[0.0; 5],
            b_ih: None,
            b_hh: None,
        };
        let e = recurrent(&g, &[1.0], &w, &mut [0.0; 8], &mut [0.0; 2]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LengthMismatch {
                    what: "weight_hh",
                    expected: 12,
                    actual: 5,
                    ..
                }
            ),
            "{e}"
        );
        let w = CellWeights {
            w_hh: &[0.0; 12],
            ..w
        };
        let e = recurrent(&g, &[1.0], &w, &mut [0.0; 7], &mut [0.0; 2]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LengthMismatch {
                    what: "scratch",
                    ..
                }
            ),
            "{e}"
        );
    }
}
