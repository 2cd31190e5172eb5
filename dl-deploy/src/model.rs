//! The engine: a blob read in place, checked once when loaded, run op by op in a
//! caller-provided arena. No heap, no copies of the weights, no panics.
//!
//! [`Model::from_bytes`] checks everything a corrupt or truncated blob could get
//! wrong: the CRC, every tensor's size and place in the arena, every op's record,
//! tensors, shapes, element types and constant data, and that no op writes over
//! what it reads. [`Model::run`] then only checks the caller's buffers.
//!
//! The op set is a compile-time parameter: `Model<'_, OPS>` links the kernels of
//! the kinds in `OPS` only, so a firmware that runs one int8 MLP carries no
//! convolution code. A blob with an op outside `OPS` is rejected at load.

use crate::classic::{Forest, GaussianNb};
use crate::error::{Error, Result};
use crate::format::{crc32, Cursor, DType, Element, HEADER_LEN, MAGIC, MAX_RANK, NONE, TENSOR_LEN};
use crate::op::{cell_from_code, RECURRENT_LAST, RECURRENT_REVERSE};
use crate::op::{Act, OpKind, Unary, ALL};
use crate::program::{self, bytes, check_arena, execute, regions, run_with, Dense, Io, Op, Region};
use dl_core::quant::{self, AddParams, ConvGeometry, PoolGeometry, Requant, SoftmaxParams};
use dl_core::recurrent::{CellWeights, RecurrentGeometry};
use heapless::Vec as HVec;

/// A 4-byte-aligned byte array to serve as the arena (`static mut`, or on the
/// stack): `let mut arena = Arena::<1024>::new();`.
#[repr(C, align(16))]
pub struct Arena<const N: usize>(pub [u8; N]);

impl<const N: usize> Arena<N> {
    /// A zeroed arena.
    pub const fn new() -> Self {
        Arena([0; N])
    }

    /// The arena's bytes.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A tensor of the model as the tensor table describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: DType,
    /// Dimensions (NHWC for images).
    pub dims: HVec<usize, MAX_RANK>,
    /// Byte offset in the arena.
    pub offset: usize,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// Bytes in the arena.
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size()
    }

    /// The last dimension (features of a dense layer, channels of an image).
    pub fn last(&self) -> usize {
        self.dims.last().copied().unwrap_or(1)
    }

    fn region(&self) -> Region {
        Region {
            offset: self.offset,
            len: self.bytes(),
        }
    }

    /// `[n, h, w, c]` of a rank-4 tensor.
    fn nhwc(&self) -> Option<[usize; 4]> {
        match self.dims.as_slice() {
            &[n, h, w, c] => Some([n, h, w, c]),
            _ => None,
        }
    }
}

/// A model blob, checked and ready to run. `OPS` is the set of op kinds this build
/// links (a bit per [`OpKind`], see [`crate::op::op_set`]); the default links all.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a, const OPS: u32 = ALL> {
    blob: &'a [u8],
    arena_len: usize,
    n_tensors: usize,
    n_ops: usize,
    ops_start: usize,
    input: usize,
    output: usize,
    /// 8 when an op keeps f64 values in the arena, else 4.
    align: usize,
}

/// Offsets of the header's fields.
mod at {
    pub const CRC: usize = 8;
    pub const ARENA: usize = 12;
}

impl<'a, const OPS: u32> Model<'a, OPS> {
    /// Checks a blob and returns the model it holds. The blob must be 4-byte aligned
    /// (place it with [`crate::include_model!`]); it is read in place for as long as
    /// the model lives, never copied.
    pub fn from_bytes(blob: &'a [u8]) -> Result<Self> {
        if !(blob.as_ptr() as usize).is_multiple_of(4) {
            return Err(Error::Corrupt {
                offset: 0,
                expected: "a blob that starts on a 4-byte boundary (place it with include_model!)",
            });
        }
        let mut c = Cursor::new(blob, 0);
        if c.take(4, "the magic bytes DLM1")? != MAGIC {
            return Err(Error::Corrupt {
                offset: 0,
                expected: "the magic bytes DLM1 (not a dl-deploy model)",
            });
        }
        let total = c.u32("the blob's length")? as usize;
        if total != blob.len() {
            return Err(Error::Corrupt {
                offset: blob.len().min(total),
                expected: if total > blob.len() {
                    "as many bytes as the header's length (the blob is truncated)"
                } else {
                    "the end of the blob where the header's length says"
                },
            });
        }
        let crc = c.u32("the CRC-32")?;
        if crc32(&blob[at::ARENA..]) != crc {
            return Err(Error::Corrupt {
                offset: at::CRC,
                expected: "bytes whose CRC-32 matches the header (the blob is corrupted)",
            });
        }
        let arena_len = c.u32("the arena length")? as usize;
        let n_tensors = c.u16("the number of tensors")? as usize;
        let n_ops = c.u16("the number of ops")? as usize;
        let op_set = c.u32("the op set")?;
        let input = c.u16("the input tensor")? as usize;
        let output = c.u16("the output tensor")? as usize;
        let ops_start = HEADER_LEN + n_tensors * TENSOR_LEN;
        let model = Model {
            blob,
            arena_len,
            n_tensors,
            n_ops,
            ops_start,
            input,
            output,
            align: 4,
        };
        for t in 0..n_tensors {
            model.tensor(t)?;
        }
        for (t, what) in [
            (input, "an input tensor id"),
            (output, "an output tensor id"),
        ] {
            if t >= n_tensors {
                return Err(Error::Corrupt {
                    offset: if what.starts_with("an input") { 24 } else { 26 },
                    expected: what,
                });
            }
        }
        let mut pos = ops_start;
        let mut seen = 0u32;
        for index in 0..n_ops {
            let (kind, op, next) = model.decode(pos).map_err(|e| match e {
                Error::OpNotInBuild { op, .. } => Error::OpNotInBuild { index, op },
                e => e,
            })?;
            if OPS & kind.bit() == 0 {
                return Err(Error::OpNotInBuild {
                    index,
                    op: kind.name(),
                });
            }
            check_disjoint(&op, pos)?;
            seen |= kind.bit();
            pos = next;
        }
        let model = Model {
            align: if seen & OpKind::TreeEnsemble.bit() != 0 {
                8
            } else {
                4
            },
            ..model
        };
        if seen != op_set {
            return Err(Error::Corrupt {
                offset: 20,
                expected: "an op set equal to the kinds of the ops",
            });
        }
        Ok(model)
    }

    /// Bytes of arena [`Model::run`] needs.
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// Number of ops.
    pub fn num_ops(&self) -> usize {
        self.n_ops
    }

    /// The blob's length in bytes.
    pub fn blob_len(&self) -> usize {
        self.blob.len()
    }

    /// The model's input tensor.
    pub fn input(&self) -> TensorInfo {
        self.tensor_checked(self.input)
    }

    /// The model's output tensor.
    pub fn output(&self) -> TensorInfo {
        self.tensor_checked(self.output)
    }

    /// The kinds of the ops, in order (for reports).
    pub fn op_kinds(&self) -> impl Iterator<Item = OpKind> + '_ {
        self.ops().map_while(|op| op.ok()).map(|op| op.kind())
    }

    /// The ops, decoded (each was checked at load, so none is an error unless the
    /// blob changed since), in order: what [`crate::codegen`] compiles.
    pub fn ops(&self) -> impl Iterator<Item = Result<Op<'a>>> + '_ {
        let mut pos = self.ops_start;
        (0..self.n_ops).map(move |_| {
            let (_, op, next) = self.decode(pos)?;
            pos = next;
            Ok(op)
        })
    }

    /// Arena alignment the model needs (4, or 8 when an op keeps f64 sums).
    pub fn align(&self) -> usize {
        self.align
    }

    /// Where the input lives in the arena, and its element type.
    pub fn input_io(&self) -> Io {
        let t = self.input();
        Io {
            region: t.region(),
            dtype: t.dtype,
        }
    }

    /// Where the output lives in the arena, and its element type.
    pub fn output_io(&self) -> Io {
        let t = self.output();
        Io {
            region: t.region(),
            dtype: t.dtype,
        }
    }

    /// The model's input inside `arena`, to fill in place before [`Model::invoke`]
    /// (no copy: on a microcontroller the input need not exist twice). `T` must be
    /// the input's element type.
    pub fn input_mut<'b, T: Element>(&self, arena: &'b mut [u8]) -> Result<&'b mut [T]> {
        check_arena(arena, self.arena_len, self.align)?;
        program::input_mut(&self.input_io(), arena)
    }

    /// The model's output inside `arena`, after [`Model::invoke`].
    pub fn output_ref<'b, T: Element>(&self, arena: &'b [u8]) -> Result<&'b [T]> {
        program::output_ref(&self.output_io(), arena)
    }

    /// Runs every op on the input already in `arena` ([`Model::input_mut`]); the
    /// result is then at [`Model::output_ref`].
    pub fn invoke(&self, arena: &mut [u8]) -> Result<()> {
        check_arena(arena, self.arena_len, self.align)?;
        self.invoke_observed(arena, |_, _| {})
    }

    fn invoke_observed(
        &self,
        arena: &mut [u8],
        mut observe: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        for (index, op) in self.ops().enumerate() {
            let op = op?;
            execute::<OPS>(&op, arena)?;
            observe(index, bytes(arena, regions(&op).y)?);
        }
        Ok(())
    }

    /// Runs the model on `input`, writing `output`, with every activation in `arena`
    /// (at least [`Model::arena_len`] bytes, aligned as [`Model::align`] says). The
    /// element types must be the model's: an int8 model that starts with a
    /// `Quantize` op takes f32.
    pub fn run<I: Element, O: Element>(
        &self,
        arena: &mut [u8],
        input: &[I],
        output: &mut [O],
    ) -> Result<()> {
        self.run_observed(arena, input, output, |_, _| {})
    }

    /// [`Model::run`], calling `observe(op index, output bytes)` after each op: how
    /// the exporter calibrates int8 ranges on the very engine that will run them.
    pub fn run_observed<I: Element, O: Element>(
        &self,
        arena: &mut [u8],
        input: &[I],
        output: &mut [O],
        observe: impl FnMut(usize, &[u8]),
    ) -> Result<()> {
        check_arena(arena, self.arena_len, self.align)?;
        let io = (&self.input_io(), &self.output_io());
        run_with(io, arena, input, output, |a| {
            self.invoke_observed(a, observe)
        })
    }

    /// Tensor `t` of the table, checked: a known element type, rank 1 to 4, no zero
    /// dimension, and a place inside the arena aligned for its element type.
    pub fn tensor(&self, t: usize) -> Result<TensorInfo> {
        let start = HEADER_LEN + t * TENSOR_LEN;
        if t >= self.n_tensors {
            return Err(Error::Corrupt {
                offset: start,
                expected: "a tensor id below the number of tensors",
            });
        }
        let mut c = Cursor::new(self.blob, start);
        let dtype = DType::from_code(c.u8("a tensor's element type")?).ok_or(Error::Corrupt {
            offset: start,
            expected: "an element type code (0 f32, 1 i8, 2 i32)",
        })?;
        let rank = c.u8("a tensor's rank")? as usize;
        if rank == 0 || rank > MAX_RANK {
            return Err(Error::Corrupt {
                offset: start + 1,
                expected: "a rank from 1 to 4",
            });
        }
        c.u16("padding")?;
        let mut dims = HVec::new();
        let mut numel: usize = 1;
        for d in 0..MAX_RANK {
            let v = c.u16("a dimension")? as usize;
            if d < rank {
                if v == 0 {
                    return Err(Error::Corrupt {
                        offset: start + 4 + 2 * d,
                        expected: "a dimension of at least 1",
                    });
                }
                numel = numel.saturating_mul(v);
                let _ = dims.push(v);
            }
        }
        let offset = c.u32("a tensor's arena offset")? as usize;
        let fits = numel
            .checked_mul(dtype.size())
            .and_then(|b| b.checked_add(offset))
            .is_some_and(|end| end <= self.arena_len);
        if !fits || !offset.is_multiple_of(dtype.size()) {
            return Err(Error::Corrupt {
                offset: start + 12,
                expected: "a tensor that lies inside the arena, aligned for its element type",
            });
        }
        Ok(TensorInfo {
            dtype,
            dims,
            offset,
        })
    }

    /// A tensor already checked by [`Model::from_bytes`].
    fn tensor_checked(&self, t: usize) -> TensorInfo {
        self.tensor(t).unwrap_or(TensorInfo {
            dtype: DType::F32,
            dims: HVec::new(),
            offset: 0,
        })
    }

    /// `count` constants of type `T` at `offset` in the blob.
    fn consts<T: bytemuck::Pod>(&self, offset: u32, count: usize, at: usize) -> Result<&'a [T]> {
        let size = core::mem::size_of::<T>();
        let start = offset as usize;
        let end = count
            .checked_mul(size)
            .and_then(|n| n.checked_add(start))
            .filter(|&e| e <= self.blob.len() && start >= self.ops_start);
        let bytes = match end {
            Some(end) if start.is_multiple_of(size) => &self.blob[start..end],
            _ => {
                return Err(Error::Corrupt {
                    offset: at,
                    expected: "constant data inside the blob, aligned for its type",
                })
            }
        };
        bytemuck::try_cast_slice(bytes).map_err(|_| Error::Corrupt {
            offset: at,
            expected: "constant data aligned for its type",
        })
    }

    /// An optional f32 array (`NONE` for absent).
    fn opt_f32(&self, offset: u32, count: usize, at: usize) -> Result<Option<&'a [f32]>> {
        if offset == NONE {
            Ok(None)
        } else {
            self.consts(offset, count, at).map(Some)
        }
    }

    /// The tensor whose id is at the cursor, of element type `dtype`.
    fn tensor_at(&self, c: &mut Cursor<'_>, dtype: DType) -> Result<TensorInfo> {
        let at = c.pos();
        let t = self.tensor(c.u16("a tensor id")? as usize)?;
        if t.dtype != dtype {
            return Err(Error::Corrupt {
                offset: at,
                expected: match dtype {
                    DType::F32 => "an f32 tensor for this op",
                    DType::I8 => "an int8 tensor for this op",
                    DType::I32 => "an i32 tensor for this op",
                },
            });
        }
        Ok(t)
    }

    /// Decodes and checks the op record at `pos`: its kind, the op, and where the
    /// next record starts.
    fn decode(&self, pos: usize) -> Result<(OpKind, Op<'a>, usize)> {
        let mut head = Cursor::new(self.blob, pos);
        let code = head.u8("an op kind")?;
        let kind = OpKind::from_code(code).ok_or(Error::Corrupt {
            offset: pos,
            expected: "a known op kind",
        })?;
        head.u8("padding")?;
        let words = head.u16("an op record's length")? as usize;
        let end = pos + 4 * words;
        if words == 0 || end > self.blob.len() {
            return Err(Error::Corrupt {
                offset: pos + 2,
                expected: "an op record length inside the blob",
            });
        }
        // Reads stop at the record's end, so a wrong length cannot read the next one.
        let mut c = Cursor::new(&self.blob[..end], pos + 4);
        let op = self.decode_kind(kind, &mut c)?;
        if c.pos() != end {
            return Err(Error::Corrupt {
                offset: c.pos(),
                expected: "the end of the op record where its length says",
            });
        }
        Ok((kind, op, end))
    }

    fn decode_kind(&self, kind: OpKind, c: &mut Cursor<'_>) -> Result<Op<'a>> {
        use DType::{F32, I8};
        let start = c.pos();
        let bad = |offset: usize, expected: &'static str| Error::Corrupt { offset, expected };
        Ok(match kind {
            OpKind::Quantize | OpKind::Dequantize
                if OPS & (OpKind::Quantize.bit() | OpKind::Dequantize.bit()) != 0 =>
            {
                let (xt, yt) = if kind == OpKind::Quantize {
                    (F32, I8)
                } else {
                    (I8, F32)
                };
                let x = self.tensor_at(c, xt)?;
                let y = self.tensor_at(c, yt)?;
                same_numel(&x, &y, start)?;
                let scale = c.f32("a scale")?;
                let zero_point = c.i32("a zero point")?;
                if !(scale.is_finite() && scale > 0.0 && (-128..=127).contains(&zero_point)) {
                    return Err(bad(
                        start + 4,
                        "a positive finite scale and an int8 zero point",
                    ));
                }
                let (x, y) = (x.region(), y.region());
                if kind == OpKind::Quantize {
                    Op::Quantize {
                        x,
                        y,
                        scale,
                        zero_point,
                    }
                } else {
                    Op::Dequantize {
                        x,
                        y,
                        scale,
                        zero_point,
                    }
                }
            }
            OpKind::DenseF32 | OpKind::DenseS8
                if OPS & (OpKind::DenseF32.bit() | OpKind::DenseS8.bit()) != 0 =>
            {
                let dt = if kind == OpKind::DenseF32 { F32 } else { I8 };
                let x = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                let dims = dense_dims(&x, &y, start)?;
                let n_w = dims.inputs * dims.outputs;
                if dt == F32 {
                    let act = Act::from_code(c.u8("an activation")?)
                        .ok_or(bad(start + 4, "an activation code"))?;
                    c.take(3, "padding")?;
                    let w = self.consts(c.u32("the weights' offset")?, n_w, start + 8)?;
                    let b = self.opt_f32(c.u32("the bias' offset")?, dims.outputs, start + 12)?;
                    Op::DenseF32 {
                        x: x.region(),
                        y: y.region(),
                        dims,
                        w,
                        b,
                        act,
                    }
                } else {
                    let (rq, base) = self.requant(c, dims.outputs, start)?;
                    let w: &[i8] = self.consts(base, n_w, start)?;
                    let bias =
                        self.consts(align4(base as usize + n_w) as u32, dims.outputs, start)?;
                    let rq = rq.with_arrays(
                        self,
                        align4(base as usize + n_w) as u32 + 4 * dims.outputs as u32,
                        start,
                    )?;
                    Op::DenseS8 {
                        x: x.region(),
                        y: y.region(),
                        dims,
                        w,
                        bias,
                        rq,
                    }
                }
            }
            OpKind::Conv2dF32 | OpKind::Conv2dS8
                if OPS & (OpKind::Conv2dF32.bit() | OpKind::Conv2dS8.bit()) != 0 =>
            {
                let dt = if kind == OpKind::Conv2dF32 { F32 } else { I8 };
                let x = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                let k = c.take(8, "the kernel, stride, padding and dilation")?;
                let groups = c.u16("the number of groups")? as usize;
                let g = conv_geometry(&x, &y, k, groups, start)?;
                let n_w = g.c_out * g.kh * g.kw * (g.c_in / g.groups);
                if dt == F32 {
                    let act = Act::from_code(c.u8("an activation")?)
                        .ok_or(bad(start + 14, "an activation code"))?;
                    c.u8("padding")?;
                    let w = self.consts(c.u32("the weights' offset")?, n_w, start)?;
                    let b = self.opt_f32(c.u32("the bias' offset")?, g.c_out, start)?;
                    Op::Conv2dF32 {
                        x: x.region(),
                        y: y.region(),
                        g,
                        w,
                        b,
                        act,
                    }
                } else {
                    let input_zero_point = c.i8("the input zero point")?;
                    c.u8("padding")?;
                    let scratch = Region {
                        offset: c.u32("the scratch's arena offset")? as usize,
                        len: g.scratch_len(),
                    };
                    if scratch.end() > self.arena_len {
                        return Err(bad(start, "a convolution scratch inside the arena"));
                    }
                    let (rq, base) = self.requant(c, g.c_out, start)?;
                    let w: &[i8] = self.consts(base, n_w, start)?;
                    let b_at = align4(base as usize + n_w) as u32;
                    let bias = self.consts(b_at, g.c_out, start)?;
                    let rq = rq.with_arrays(self, b_at + 4 * g.c_out as u32, start)?;
                    Op::Conv2dS8 {
                        x: x.region(),
                        y: y.region(),
                        scratch,
                        g,
                        w,
                        bias,
                        input_zero_point,
                        rq,
                    }
                }
            }
            OpKind::MaxPoolF32 | OpKind::MaxPoolS8 | OpKind::AvgPoolF32 | OpKind::AvgPoolS8
                if OPS
                    & (OpKind::MaxPoolF32.bit()
                        | OpKind::MaxPoolS8.bit()
                        | OpKind::AvgPoolF32.bit()
                        | OpKind::AvgPoolS8.bit())
                    != 0 =>
            {
                let dt = if matches!(kind, OpKind::MaxPoolF32 | OpKind::AvgPoolF32) {
                    F32
                } else {
                    I8
                };
                let x = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                let k = c.take(6, "the window, stride and padding")?;
                let count_include_pad = c.u8("the padding rule")? != 0;
                let input_zero_point = c.i8("the input zero point")?;
                let act_min = c.i8("the activation minimum")?;
                let act_max = c.i8("the activation maximum")?;
                c.u16("padding")?;
                if act_min > act_max {
                    return Err(bad(
                        start,
                        "an activation minimum no larger than the maximum",
                    ));
                }
                let g = pool_geometry(&x, &y, k, start)?;
                Op::Pool {
                    kind,
                    x: x.region(),
                    y: y.region(),
                    g,
                    count_include_pad,
                    input_zero_point,
                    act_min,
                    act_max,
                }
            }
            OpKind::MeanF32 | OpKind::MeanS8
                if OPS & (OpKind::MeanF32.bit() | OpKind::MeanS8.bit()) != 0 =>
            {
                let dt = if kind == OpKind::MeanF32 { F32 } else { I8 };
                let x = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                let nhwc = x
                    .nhwc()
                    .ok_or(bad(start, "an NHWC input to global average pooling"))?;
                if y.numel() != nhwc[0] * nhwc[3] {
                    return Err(bad(start, "an output of batch x channels values"));
                }
                if dt == F32 {
                    Op::MeanF32 {
                        x: x.region(),
                        y: y.region(),
                        nhwc,
                    }
                } else {
                    let mean = quant::MeanParams {
                        multiplier: c.i32("the mean's multiplier")?,
                        shift: c.i32("the mean's shift")?,
                        input_zero_point: c.i32("the input zero point")?,
                        output_zero_point: c.i32("the output zero point")?,
                    };
                    mean.validate().map_err(|_| {
                        bad(start, "mean parameters in range (zero points in -128..=127, shift in -31..=30)")
                    })?;
                    Op::MeanS8 {
                        x: x.region(),
                        y: y.region(),
                        nhwc,
                        mean,
                    }
                }
            }
            OpKind::AddF32 | OpKind::AddS8
                if OPS & (OpKind::AddF32.bit() | OpKind::AddS8.bit()) != 0 =>
            {
                let dt = if kind == OpKind::AddF32 { F32 } else { I8 };
                let a = self.tensor_at(c, dt)?;
                let b = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                if a.dims != y.dims || b.dims != y.dims {
                    return Err(bad(start, "addends and output of one shape"));
                }
                if dt == F32 {
                    let act = Act::from_code(c.u8("an activation")?)
                        .ok_or(bad(start + 6, "an activation code"))?;
                    c.u8("padding")?;
                    Op::AddF32 {
                        a: a.region(),
                        b: b.region(),
                        y: y.region(),
                        act,
                    }
                } else {
                    c.u16("padding")?;
                    let p = AddParams {
                        left_shift: c.i32("the add's left shift")?,
                        input1_offset: c.i32("an input offset")?,
                        input1_multiplier: c.i32("an input multiplier")?,
                        input1_shift: c.i32("an input shift")?,
                        input2_offset: c.i32("an input offset")?,
                        input2_multiplier: c.i32("an input multiplier")?,
                        input2_shift: c.i32("an input shift")?,
                        output_offset: c.i32("the output offset")?,
                        output_multiplier: c.i32("the output multiplier")?,
                        output_shift: c.i32("the output shift")?,
                        act_min: c.i8("the activation minimum")?,
                        act_max: c.i8("the activation maximum")?,
                    };
                    c.u16("padding")?;
                    p.validate().map_err(|_| {
                        bad(
                            start,
                            "add parameters in range (offsets, shifts, activation bounds)",
                        )
                    })?;
                    Op::AddS8 {
                        a: a.region(),
                        b: b.region(),
                        y: y.region(),
                        p,
                    }
                }
            }
            OpKind::UnaryF32 if OPS & (OpKind::UnaryF32.bit()) != 0 => {
                let x = self.tensor_at(c, F32)?;
                let y = self.tensor_at(c, F32)?;
                same_numel(&x, &y, start)?;
                let code = c.u8("an activation")?;
                c.take(3, "padding")?;
                let f = Unary::from_code(code, c.f32("a slope")?)
                    .ok_or(bad(start + 4, "an activation code"))?;
                Op::UnaryF32 {
                    x: x.region(),
                    y: y.region(),
                    f,
                }
            }
            OpKind::LutS8 if OPS & (OpKind::LutS8.bit()) != 0 => {
                let x = self.tensor_at(c, I8)?;
                let y = self.tensor_at(c, I8)?;
                same_numel(&x, &y, start)?;
                let table: &[i8] = self.consts(c.u32("the table's offset")?, 256, start + 4)?;
                let table = table
                    .try_into()
                    .map_err(|_| bad(start + 4, "a 256-entry table"))?;
                Op::LutS8 {
                    x: x.region(),
                    y: y.region(),
                    table,
                }
            }
            OpKind::TreeEnsemble if OPS & (OpKind::TreeEnsemble.bit()) != 0 => {
                let x = self.tensor_at(c, F32)?;
                let y = self.tensor_at(c, DType::I32)?;
                let n_features = x.last();
                if y.numel() != x.numel() / n_features {
                    return Err(bad(start, "one prediction per input row"));
                }
                let n_trees = c.u16("the number of trees")? as usize;
                let n_classes = c.u16("the number of classes")? as usize;
                let roots = self.consts(c.u32("the roots' offset")?, n_trees + 1, start)?;
                let nodes_off = c.u32("the nodes' offset")?;
                let n_nodes = c.u32("the number of nodes")? as usize;
                let nodes = self.consts(nodes_off, n_nodes.saturating_mul(2), start)?;
                let table_off = c.u32("the table's offset")?;
                let rows = c.u32("the number of table rows")? as usize;
                let table = self.consts(
                    table_off,
                    rows.saturating_mul(2).saturating_mul(n_classes),
                    start,
                )?;
                let scratch = Region {
                    offset: c.u32("the scratch's arena offset")? as usize,
                    len: 8 * n_classes,
                };
                if n_classes == 0
                    || scratch.end() > self.arena_len
                    || !scratch.offset.is_multiple_of(8)
                {
                    return Err(bad(
                        start,
                        "classes and an 8-byte-aligned scratch inside the arena",
                    ));
                }
                let forest = Forest {
                    roots,
                    nodes,
                    table,
                    n_classes,
                    n_features,
                };
                forest.check(start)?;
                Op::Trees {
                    x: x.region(),
                    y: y.region(),
                    forest,
                    scratch,
                }
            }
            OpKind::GaussianNb if OPS & (OpKind::GaussianNb.bit()) != 0 => {
                let x = self.tensor_at(c, F32)?;
                let y = self.tensor_at(c, DType::I32)?;
                let d = x.last();
                if y.numel() != x.numel() / d {
                    return Err(bad(start, "one prediction per input row"));
                }
                let k = c.u16("the number of classes")? as usize;
                c.u16("padding")?;
                let off = c.u32("the parameters' offset")?;
                let kd = k * d;
                let prior = self.consts(off, k, start)?;
                let theta = self.consts(off + 4 * k as u32, kd, start)?;
                let var = self.consts(off + 4 * (k + kd) as u32, kd, start)?;
                let log_term = self.consts(off + 4 * (k + 2 * kd) as u32, kd, start)?;
                if k == 0 {
                    return Err(bad(start, "at least one class"));
                }
                Op::NaiveBayes {
                    x: x.region(),
                    y: y.region(),
                    nb: GaussianNb {
                        prior,
                        theta,
                        var,
                        log_term,
                    },
                }
            }
            OpKind::RecurrentF32 => {
                let x = self.tensor_at(c, F32)?;
                let y = self.tensor_at(c, F32)?;
                let cell = cell_from_code(c.u8("a recurrent cell")?).ok_or(bad(
                    start + 4,
                    "a recurrent cell code (0 RNN tanh, 1 RNN ReLU, 2 LSTM, 3 GRU)",
                ))?;
                let flags = c.u8("the recurrent flags")?;
                let hidden = c.u16("the hidden size")? as usize;
                let col = c.u16("the first output column")? as usize;
                c.u16("padding")?;
                if flags & !(RECURRENT_REVERSE | RECURRENT_LAST) != 0 {
                    return Err(bad(
                        start + 5,
                        "recurrent flags of known bits only (1 reverse, 2 last step)",
                    ));
                }
                let last_only = flags & RECURRENT_LAST != 0;
                let (batch, time, input, row) = match (x.dims.as_slice(), y.dims.as_slice()) {
                    (&[b, t, i], &[yb, yt, w]) if !last_only && (yb, yt) == (b, t) => (b, t, i, w),
                    (&[b, t, i], &[yb, w]) if last_only && yb == b => (b, t, i, w),
                    _ => {
                        return Err(bad(
                            start,
                            "a recurrent input [batch, time, features] and output [batch, time, width] ([batch, width] for the last step)",
                        ))
                    }
                };
                let g = RecurrentGeometry {
                    cell,
                    batch,
                    time,
                    input,
                    hidden,
                    reverse: flags & RECURRENT_REVERSE != 0,
                    last_only,
                    row,
                    col,
                };
                g.check().map_err(|_| {
                    bad(
                        start + 6,
                        "a hidden size of at least 1 whose columns fit in the output's width",
                    )
                })?;
                let w_ih = self.consts(c.u32("W_ih's offset")?, g.w_ih_len(), start + 12)?;
                let w_hh = self.consts(c.u32("W_hh's offset")?, g.w_hh_len(), start + 16)?;
                let b_ih = self.opt_f32(c.u32("b_ih's offset")?, g.bias_len(), start + 20)?;
                let b_hh = self.opt_f32(c.u32("b_hh's offset")?, g.bias_len(), start + 24)?;
                let scratch = Region {
                    offset: c.u32("the scratch's arena offset")? as usize,
                    len: 4 * g.scratch_len(),
                };
                let inside = scratch
                    .offset
                    .checked_add(scratch.len)
                    .is_some_and(|end| end <= self.arena_len);
                if !inside || !scratch.offset.is_multiple_of(4) {
                    return Err(bad(
                        start + 28,
                        "a recurrent scratch inside the arena, 4-byte aligned",
                    ));
                }
                let w = CellWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                };
                Op::RecurrentF32 {
                    x: x.region(),
                    y: y.region(),
                    scratch,
                    g,
                    w,
                }
            }
            OpKind::SoftmaxF32 | OpKind::SoftmaxS8
                if OPS & (OpKind::SoftmaxF32.bit() | OpKind::SoftmaxS8.bit()) != 0 =>
            {
                let dt = if kind == OpKind::SoftmaxF32 { F32 } else { I8 };
                let x = self.tensor_at(c, dt)?;
                let y = self.tensor_at(c, dt)?;
                if x.dims != y.dims {
                    return Err(bad(start, "softmax input and output of one shape"));
                }
                let cols = x.last();
                if dt == F32 {
                    Op::SoftmaxF32 {
                        x: x.region(),
                        y: y.region(),
                        rows: x.numel() / cols,
                        cols,
                    }
                } else {
                    let p = SoftmaxParams {
                        input_multiplier: c.i32("the softmax multiplier")?,
                        input_left_shift: c.i32("the softmax left shift")?,
                        diff_min: c.i32("the softmax's smallest difference")?,
                    };
                    p.validate().map_err(|_| {
                        bad(
                            start,
                            "softmax parameters in range (left shift, smallest difference)",
                        )
                    })?;
                    Op::SoftmaxS8 {
                        x: x.region(),
                        y: y.region(),
                        cols,
                        p,
                    }
                }
            }
            // Kinds outside `OPS`: their decoding is not compiled in either.
            _ => {
                return Err(Error::OpNotInBuild {
                    index: 0,
                    op: kind.name(),
                })
            }
        })
    }

    /// Reads an int8 layer's output quantization word and the offset of its
    /// constants; the arrays are attached by [`RequantHead::with_arrays`].
    fn requant(
        &self,
        c: &mut Cursor<'_>,
        channels: usize,
        at: usize,
    ) -> Result<(RequantHead, u32)> {
        let output_zero_point = c.i8("the output zero point")? as i32;
        let act_min = c.i8("the activation minimum")?;
        let act_max = c.i8("the activation maximum")?;
        let per_channel = c.u8("the per-channel flag")? != 0;
        let base = c.u32("the constants' offset")?;
        if act_min > act_max {
            return Err(Error::Corrupt {
                offset: at,
                expected: "an activation minimum no larger than the maximum",
            });
        }
        let n = if per_channel { channels } else { 1 };
        Ok((
            RequantHead {
                output_zero_point,
                act_min,
                act_max,
                n,
            },
            base,
        ))
    }
}

/// The scalar part of an int8 layer's requantization, before its arrays are found.
struct RequantHead {
    output_zero_point: i32,
    act_min: i8,
    act_max: i8,
    n: usize,
}

impl RequantHead {
    /// Attaches the `n` multipliers (i32) and then `n` shifts (i8) at `offset`.
    fn with_arrays<'a, const OPS: u32>(
        self,
        model: &Model<'a, OPS>,
        offset: u32,
        at: usize,
    ) -> Result<Requant<'a>> {
        let multiplier = model.consts(offset, self.n, at)?;
        let shift: &[i8] = model.consts(offset + 4 * self.n as u32, self.n, at)?;
        let rq = Requant {
            multiplier,
            shift,
            output_zero_point: self.output_zero_point,
            act_min: self.act_min,
            act_max: self.act_max,
        };
        // Exactly what the kernels require: the program runs them without
        // re-checking (`quant::dense_s8_validated`).
        rq.validate(self.n).map_err(|_| Error::Corrupt {
            offset: at,
            expected: "requantization multipliers from 0 to 2^31 - 1 and shifts from -31 to 30",
        })?;
        Ok(rq)
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn same_numel(x: &TensorInfo, y: &TensorInfo, at: usize) -> Result<()> {
    if x.numel() == y.numel() {
        Ok(())
    } else {
        Err(Error::Corrupt {
            offset: at,
            expected: "input and output with the same number of elements",
        })
    }
}

fn dense_dims(x: &TensorInfo, y: &TensorInfo, at: usize) -> Result<Dense> {
    let (inputs, outputs) = (x.last(), y.last());
    let batch = x.numel() / inputs;
    if batch * outputs != y.numel() {
        return Err(Error::Corrupt {
            offset: at,
            expected: "a dense output with the input's batch",
        });
    }
    Ok(Dense {
        batch,
        inputs,
        outputs,
    })
}

/// The geometry of a convolution from its tensors and its 8 bytes of kernel
/// (kh, kw), stride, padding and dilation, checked against the output's shape.
fn conv_geometry(
    x: &TensorInfo,
    y: &TensorInfo,
    k: &[u8],
    groups: usize,
    at: usize,
) -> Result<ConvGeometry> {
    let bad = Error::Corrupt {
        offset: at,
        expected:
            "a convolution whose NHWC shapes agree with its kernel, stride, padding and groups",
    };
    let (Some([n, h, w, c_in]), Some([yn, oh, ow, c_out])) = (x.nhwc(), y.nhwc()) else {
        return Err(bad);
    };
    let g = ConvGeometry::new(
        n,
        h,
        w,
        c_in,
        c_out,
        k[0] as usize,
        k[1] as usize,
        (k[2] as usize, k[3] as usize),
        (k[4] as usize, k[5] as usize),
        (k[6] as usize, k[7] as usize),
        groups,
    )
    .map_err(|_| bad)?;
    let sweep = (
        [g.kh, g.kw],
        [g.stride.0, g.stride.1],
        [g.pad.0, g.pad.1],
        [g.dilation.0, g.dilation.1],
    );
    if yn != n || !padded_out_ok(&[h, w], sweep, [g.out_h, g.out_w], [oh, ow]) {
        return Err(bad);
    }
    g.with_output_size(oh, ow).map_err(|_| bad)
}

/// Whether `out` is the output size of a window sweep with padding `pad` at the
/// top/left: PyTorch's (the same padding at the bottom/right, `computed`), or
/// TensorFlow Lite's `SAME`, whose odd total padding puts one more row or column at
/// the bottom/right.
fn padded_out_ok(
    size: &[usize; 2],
    (k, stride, pad, dilation): ([usize; 2], [usize; 2], [usize; 2], [usize; 2]),
    computed: [usize; 2],
    out: [usize; 2],
) -> bool {
    (0..2).all(|a| {
        let span = dilation[a] * (k[a] - 1) + 1;
        let odd = (size[a] + 2 * pad[a] + 1 - span) / stride[a] + 1;
        out[a] == computed[a] || out[a] == odd
    })
}

/// The geometry of a pooling window from its tensors and its 6 bytes of window,
/// stride and padding.
fn pool_geometry(x: &TensorInfo, y: &TensorInfo, k: &[u8], at: usize) -> Result<PoolGeometry> {
    let bad = Error::Corrupt {
        offset: at,
        expected: "a pooling whose NHWC shapes agree with its window, stride and padding",
    };
    let (Some([n, h, w, c]), Some([yn, oh, ow, yc])) = (x.nhwc(), y.nhwc()) else {
        return Err(bad);
    };
    let g = PoolGeometry::new(
        n,
        h,
        w,
        c,
        k[0] as usize,
        k[1] as usize,
        (k[2] as usize, k[3] as usize),
        (k[4] as usize, k[5] as usize),
    )
    .map_err(|_| bad)?;
    let sweep = (
        [g.kh, g.kw],
        [g.stride.0, g.stride.1],
        [g.pad.0, g.pad.1],
        [1, 1],
    );
    if yn != n || yc != c || !padded_out_ok(&[h, w], sweep, [g.out_h, g.out_w], [oh, ow]) {
        return Err(bad);
    }
    g.with_output_size(oh, ow).map_err(|_| bad)
}

/// No op may write where it reads, nor to two overlapping places.
fn check_disjoint(op: &Op<'_>, at: usize) -> Result<()> {
    if regions(op).clash() {
        Err(Error::Corrupt {
            offset: at,
            expected: "an op whose output does not overlap its inputs in the arena",
        })
    } else {
        Ok(())
    }
}
