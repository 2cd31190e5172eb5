//! The GRU cell (PyTorch's `nn.GRU` equations and gate order r, z, n):
//!
//! ```text
//! r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
//! z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
//! n = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate
//! h' = (1 - z) * n + z * h
//! ```
//!
//! `weight_ih` stacks `[W_ir; W_iz; W_in]` (`[3H, I]`). Note that the reset gate
//! multiplies `W_hn h + b_hn` (PyTorch's and cuDNN's variant), not `h` itself, so
//! `b_hh` cannot be folded into `b_ih`. The layer is a [`Recurrent`] built by
//! [`RecurrentConfig::gru`](crate::RecurrentConfig::gru).

use crate::error::Result;
use crate::rnn::{CellVars, Recurrent, State};
use dl_autograd::{Graph, Var};
use dl_core::Scalar;

/// A GRU (a [`Recurrent`] with the GRU cell).
pub type Gru<T = f32> = Recurrent<T>;

/// One GRU step: `xw = x_t W_ih^T + b_ih` (`[B, 3H]`) and `h` give `h'`.
pub(crate) fn gru_step<T: Scalar>(
    g: &mut Graph<'_, T>,
    w: &CellVars,
    xw: Var,
    s: State,
) -> Result<State> {
    let hs = w.hidden;
    let hw = g.linear(s.h, w.w_hh, w.b_hh)?;
    let x_rz = g.slice(xw, 1, 0, 2 * hs)?;
    let h_rz = g.slice(hw, 1, 0, 2 * hs)?;
    let rz = g.add(x_rz, h_rz)?;
    let rz = g.sigmoid(rz)?;
    let r = g.slice(rz, 1, 0, hs)?;
    let z = g.slice(rz, 1, hs, 2 * hs)?;
    let x_n = g.slice(xw, 1, 2 * hs, 3 * hs)?;
    let h_n = g.slice(hw, 1, 2 * hs, 3 * hs)?;
    let rh = g.mul(r, h_n)?;
    let n = g.add(x_n, rh)?;
    let n = g.tanh(n)?;
    // h' = n + z * (h - n)
    let d = g.sub(s.h, n)?;
    let zd = g.mul(z, d)?;
    let h = g.add(n, zd)?;
    Ok(State { h, c: None })
}
