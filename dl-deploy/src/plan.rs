//! Arena planning: where each activation lives, fixed at export from the tensors'
//! lifetimes, so that buffers no longer live are reused.
//!
//! Time runs over the nodes: the input is written at time 0, node `i` runs at time
//! `i + 1` and the output is read after the last node. A tensor lives from the time
//! it is written to the last time it is read (a flattened view extends the tensor it
//! views). Two tensors may share bytes only when their lifetimes do not overlap; an
//! op's input and output always overlap (at its own time), so no op runs in place.
//! Buffers are placed greedily, largest first, at the lowest offset that clashes with
//! no placed buffer of an overlapping lifetime (TensorFlow Lite Micro's greedy
//! planner does the same).

use crate::error::Result;
use crate::graph::{Graph, Node, TensorId, Weights};
use alloc::vec;
use alloc::vec::Vec;

/// Where everything lives in the arena.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Byte offset of each tensor (a view has its base's offset; an unused tensor 0).
    pub offsets: Vec<usize>,
    /// For each node: the offset and length of its scratch buffer, if it needs one.
    pub scratch: Vec<Option<(usize, usize)>>,
    /// Bytes of arena the plan needs.
    pub arena_len: usize,
    /// The most bytes live at any one time: no plan can need less.
    pub peak_live: usize,
}

#[derive(Clone, Copy, Debug)]
struct Buffer {
    /// `Some(tensor)` or a node's scratch.
    tensor: Option<TensorId>,
    node: usize,
    bytes: usize,
    align: usize,
    first: usize,
    last: usize,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Bytes of scratch node `node` needs (the int8 convolution's im2col row, a
/// forest's f64 class sums, a recurrent layer's step projections and state).
pub(crate) fn scratch_len(g: &Graph, node: &Node) -> Result<usize> {
    match node {
        Node::Trees { n_classes, .. } => Ok(8 * n_classes),
        Node::Recurrent { cell, hidden, .. } => Ok(4 * cell.scratch_len(*hidden)),
        Node::Conv2d {
            x,
            y,
            weights: Weights::I8 { .. },
            params,
            ..
        } => {
            let (xd, yd) = (&g.tensors[*x].dims, &g.tensors[*y].dims);
            let geo = dl_core::quant::ConvGeometry::new(
                xd[0],
                xd[1],
                xd[2],
                xd[3],
                yd[3],
                params.kernel.0,
                params.kernel.1,
                params.stride,
                params.padding,
                params.dilation,
                params.groups,
            )?
            .with_output_size(yd[1], yd[2])?;
            Ok(geo.scratch_len())
        }
        _ => Ok(0),
    }
}

/// Plans the arena of `g`.
pub fn plan(g: &Graph) -> Result<Plan> {
    let base = |t: TensorId| g.tensors[t].view_of.unwrap_or(t);
    let end = g.nodes.len() + 1;
    // Lifetimes of the base tensors that are written or read.
    let mut first = vec![usize::MAX; g.tensors.len()];
    let mut last = vec![0usize; g.tensors.len()];
    first[base(g.input)] = 0;
    for (i, n) in g.nodes.iter().enumerate() {
        let t = i + 1;
        for x in n.inputs() {
            let b = base(x);
            last[b] = last[b].max(t);
        }
        let y = base(n.output());
        first[y] = first[y].min(t);
        last[y] = last[y].max(t);
    }
    let out = base(g.output);
    last[out] = end;
    let mut buffers = Vec::new();
    for (t, tensor) in g.tensors.iter().enumerate() {
        if tensor.view_of.is_none() && first[t] != usize::MAX {
            buffers.push(Buffer {
                tensor: Some(t),
                node: 0,
                bytes: align4(tensor.bytes()),
                align: 4,
                first: first[t],
                last: last[t],
            });
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let bytes = align4(scratch_len(g, n)?);
        if bytes > 0 {
            buffers.push(Buffer {
                tensor: None,
                node: i,
                bytes,
                align: if matches!(n, Node::Trees { .. }) {
                    8
                } else {
                    4
                },
                first: i + 1,
                last: i + 1,
            });
        }
    }
    let peak_live = (0..=end)
        .map(|t| {
            buffers
                .iter()
                .filter(|b| b.first <= t && t <= b.last)
                .map(|b| b.bytes)
                .sum()
        })
        .max()
        .unwrap_or(0);

    let mut order: Vec<usize> = (0..buffers.len()).collect();
    order.sort_by_key(|&k| (core::cmp::Reverse(buffers[k].bytes), buffers[k].first));
    let mut placed: Vec<(usize, usize)> = Vec::new(); // (buffer, offset)
    let mut offset_of = vec![0usize; buffers.len()];
    let mut arena_len = 0;
    for &k in &order {
        let b = buffers[k];
        let mut clashes: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(p, _)| buffers[p].first <= b.last && b.first <= buffers[p].last)
            .map(|&(p, off)| (off, off + buffers[p].bytes))
            .collect();
        clashes.sort_unstable();
        let mut at = 0;
        for (lo, hi) in clashes {
            if at + b.bytes <= lo {
                break;
            }
            at = at.max(hi).next_multiple_of(b.align);
        }
        offset_of[k] = at;
        placed.push((k, at));
        arena_len = arena_len.max(at + b.bytes);
    }

    let mut offsets = vec![0usize; g.tensors.len()];
    let mut scratch = vec![None; g.nodes.len()];
    for (k, b) in buffers.iter().enumerate() {
        match b.tensor {
            Some(t) => offsets[t] = offset_of[k],
            None => scratch[b.node] = Some((offset_of[k], b.bytes)),
        }
    }
    for (t, tensor) in g.tensors.iter().enumerate() {
        if let Some(v) = tensor.view_of {
            offsets[t] = offsets[v];
        }
    }
    Ok(Plan {
        offsets,
        scratch,
        arena_len,
        peak_live,
    })
}
