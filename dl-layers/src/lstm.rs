//! The LSTM cell (PyTorch's `nn.LSTM` equations and gate order i, f, g, o):
//!
//! ```text
//! i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
//! f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
//! g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate
//! o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
//! c' = f * c + i * g                              memory cell
//! h' = o * tanh(c')
//! ```
//!
//! `weight_ih` stacks `[W_ii; W_if; W_ig; W_io]` (`[4H, I]`). The layer is a
//! [`crate::Recurrent`] built by [`crate::RecurrentConfig::lstm`],
//! whose forget-gate bias starts at 1 (Gers et al.: the cell keeps its memory until
//! it learns to forget).
//!
//! A fused LSTM-cell op would compute the four gates and both outputs in one pass
//! with one saved buffer; composed from slice / sigmoid / tanh / mul / add it records
//! about 16 nodes per step, each with its own buffer.

use crate::error::Result;
use crate::rnn::{hidden_pre, CellVars, Recurrent, State};
use dl_autograd::{Graph, Var};
use dl_core::Scalar;

/// An LSTM (a [`Recurrent`] with the LSTM cell).
pub type Lstm<T = f32> = Recurrent<T>;

/// One LSTM step: `xw = x_t W_ih^T + b_ih` (`[B, 4H]`) and `(h, c)` give `(h', c')`.
pub(crate) fn lstm_step<T: Scalar>(
    g: &mut Graph<'_, T>,
    w: &CellVars,
    xw: Var,
    s: State,
) -> Result<State> {
    let hs = w.hidden;
    let pre = hidden_pre(g, w, xw, s.h)?;
    let block = |g: &mut Graph<'_, T>, k: usize| g.slice(pre, 1, k * hs, (k + 1) * hs);
    let i = block(g, 0)?;
    let i = g.sigmoid(i)?;
    let f = block(g, 1)?;
    let f = g.sigmoid(f)?;
    let gg = block(g, 2)?;
    let gg = g.tanh(gg)?;
    let o = block(g, 3)?;
    let o = g.sigmoid(o)?;
    let c_prev = match s.c {
        Some(c) => c,
        None => {
            // A state without a cell (e.g. hand-built): start the memory at zero.
            g.mul_scalar(s.h, T::ZERO)?
        }
    };
    let keep = g.mul(f, c_prev)?;
    let write = g.mul(i, gg)?;
    let c = g.add(keep, write)?;
    let tc = g.tanh(c)?;
    let h = g.mul(o, tc)?;
    Ok(State { h, c: Some(c) })
}
