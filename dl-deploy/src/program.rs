//! The compiled form of a model: ops already decoded and checked, run in an arena.
//!
//! A [`Program`] is what [`crate::Model`] decodes a blob into, op by op, and what
//! [`crate::codegen`] writes as Rust for a firmware: a `static` list of [`Op`]s whose
//! constants are `static` arrays in flash. Running it parses and checks nothing: a
//! firmware that compiles its model at build time carries neither the blob reader
//! nor the checks, only the kernels of its op set.

use crate::classic::{Forest, GaussianNb};
use crate::error::{Error, Result};
use crate::format::{DType, Element};
use crate::op::{Act, OpKind, Unary, ALL};
use dl_core::nhwc;
use dl_core::quant::{self, AddParams, ConvGeometry, PoolGeometry, Requant, SoftmaxParams};
use dl_core::recurrent::{CellWeights, RecurrentGeometry};

/// Bytes `offset..offset + len` of the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
}

impl Region {
    /// `offset..offset + len`.
    pub const fn new(offset: usize, len: usize) -> Self {
        Region { offset, len }
    }

    pub(crate) fn end(self) -> usize {
        self.offset + self.len
    }

    pub(crate) fn overlaps(self, other: Region) -> bool {
        self.len > 0 && other.len > 0 && self.offset < other.end() && other.offset < self.end()
    }
}

/// One op, decoded and checked, its constants borrowed from flash: what
/// [`Model`](crate::Model) decodes from a blob record, and what a [`Program`] holds
/// compiled. Build one by hand only through [`crate::codegen`]: the engine trusts
/// its regions and sizes (the kernels still check every length).
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// `Quantize`: see [`OpKind`].
    Quantize {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Quantization step.
        scale: f32,
        /// Quantization zero point.
        zero_point: i32,
    },
    /// `Dequantize`: see [`OpKind`].
    Dequantize {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Quantization step.
        scale: f32,
        /// Quantization zero point.
        zero_point: i32,
    },
    /// `DenseF32`: see [`OpKind`].
    DenseF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Batch, inputs and outputs.
        dims: Dense,
        /// Weights, in flash.
        w: &'a [f32],
        /// Bias, in flash, if any.
        b: Option<&'a [f32]>,
        /// Fused activation.
        act: Act,
    },
    /// `DenseS8`: see [`OpKind`].
    DenseS8 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Batch, inputs and outputs.
        dims: Dense,
        /// Weights, in flash.
        w: &'a [i8],
        /// int32 bias with the input zero point folded in, in flash.
        bias: &'a [i32],
        /// Output requantization.
        rq: Requant<'a>,
    },
    /// `Conv2dF32`: see [`OpKind`].
    Conv2dF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Geometry.
        g: ConvGeometry,
        /// Weights, in flash.
        w: &'a [f32],
        /// Bias, in flash, if any.
        b: Option<&'a [f32]>,
        /// Fused activation.
        act: Act,
    },
    /// `Conv2dS8`: see [`OpKind`].
    Conv2dS8 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Scratch, in the arena.
        scratch: Region,
        /// Geometry.
        g: ConvGeometry,
        /// Weights, in flash.
        w: &'a [i8],
        /// int32 bias with the input zero point folded in, in flash.
        bias: &'a [i32],
        /// Input zero point (the value of padding).
        input_zero_point: i8,
        /// Output requantization.
        rq: Requant<'a>,
    },
    /// `Pool`: see [`OpKind`].
    Pool {
        /// Which pooling.
        kind: OpKind,
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Geometry.
        g: PoolGeometry,
        /// Divide by the whole window (PyTorch) rather than its in-bounds taps.
        count_include_pad: bool,
        /// Input zero point (the value of padding).
        input_zero_point: i8,
        /// Output clamp, low.
        act_min: i8,
        /// Output clamp, high.
        act_max: i8,
    },
    /// `MeanF32`: see [`OpKind`].
    MeanF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Input `[n, h, w, c]`.
        nhwc: [usize; 4],
    },
    /// `MeanS8`: see [`OpKind`].
    MeanS8 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Input `[n, h, w, c]`.
        nhwc: [usize; 4],
        /// Requantization of the mean.
        mean: quant::MeanParams,
    },
    /// `AddF32`: see [`OpKind`].
    AddF32 {
        /// First addend, in the arena.
        a: Region,
        /// Second addend, in the arena.
        b: Region,
        /// Output, in the arena.
        y: Region,
        /// Fused activation.
        act: Act,
    },
    /// `AddS8`: see [`OpKind`].
    AddS8 {
        /// First addend, in the arena.
        a: Region,
        /// Second addend, in the arena.
        b: Region,
        /// Output, in the arena.
        y: Region,
        /// Fixed-point parameters.
        p: AddParams,
    },
    /// `UnaryF32`: see [`OpKind`].
    UnaryF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// The function.
        f: Unary,
    },
    /// `LutS8`: see [`OpKind`].
    LutS8 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// 256-entry table, in flash.
        table: &'a [i8; 256],
    },
    /// `SoftmaxF32`: see [`OpKind`].
    SoftmaxF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Rows.
        rows: usize,
        /// Values per row.
        cols: usize,
    },
    /// `SoftmaxS8`: see [`OpKind`].
    SoftmaxS8 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// Values per row.
        cols: usize,
        /// Fixed-point parameters.
        p: SoftmaxParams,
    },
    /// `Trees`: see [`OpKind`].
    Trees {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// The trees, in flash.
        forest: Forest<'a>,
        /// f64 class sums, in the arena.
        scratch: Region,
    },
    /// `NaiveBayes`: see [`OpKind`].
    NaiveBayes {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// The model, in flash.
        nb: GaussianNb<'a>,
    },
    /// `RecurrentF32`: see [`OpKind`].
    RecurrentF32 {
        /// Input, in the arena.
        x: Region,
        /// Output, in the arena.
        y: Region,
        /// The step's projections and the state, in the arena.
        scratch: Region,
        /// Geometry.
        g: RecurrentGeometry,
        /// Weights, in flash.
        w: CellWeights<'a>,
    },
}

/// Sizes of a dense layer: `batch` rows of `inputs` features to `outputs`.
#[derive(Clone, Copy, Debug)]
pub struct Dense {
    /// Rows.
    pub batch: usize,
    /// Features in.
    pub inputs: usize,
    /// Features out.
    pub outputs: usize,
}

impl Op<'_> {
    /// The op's kind.
    pub fn kind(&self) -> OpKind {
        match *self {
            Op::Quantize { .. } => OpKind::Quantize,
            Op::Dequantize { .. } => OpKind::Dequantize,
            Op::DenseF32 { .. } => OpKind::DenseF32,
            Op::DenseS8 { .. } => OpKind::DenseS8,
            Op::Conv2dF32 { .. } => OpKind::Conv2dF32,
            Op::Conv2dS8 { .. } => OpKind::Conv2dS8,
            Op::Pool { kind, .. } => kind,
            Op::MeanF32 { .. } => OpKind::MeanF32,
            Op::MeanS8 { .. } => OpKind::MeanS8,
            Op::AddF32 { .. } => OpKind::AddF32,
            Op::AddS8 { .. } => OpKind::AddS8,
            Op::UnaryF32 { .. } => OpKind::UnaryF32,
            Op::LutS8 { .. } => OpKind::LutS8,
            Op::SoftmaxF32 { .. } => OpKind::SoftmaxF32,
            Op::SoftmaxS8 { .. } => OpKind::SoftmaxS8,
            Op::Trees { .. } => OpKind::TreeEnsemble,
            Op::NaiveBayes { .. } => OpKind::GaussianNb,
            Op::RecurrentF32 { .. } => OpKind::RecurrentF32,
        }
    }
}

/// A model input or output: where it is in the arena and its element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// Its bytes in the arena.
    pub region: Region,
    /// Its element type.
    pub dtype: DType,
}

impl Io {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.region.len / self.dtype.size()
    }

    fn check<T: Element>(&self, what: &'static str, len: usize) -> Result<()> {
        if T::DTYPE == self.dtype && len == self.numel() {
            Ok(())
        } else {
            Err(Error::Buffer {
                what,
                expected: self.numel(),
                actual: len,
                dtype: self.dtype.name(),
                given: T::DTYPE.name(),
            })
        }
    }
}

/// A model compiled to a list of checked ops (see the module doc). `OPS` is its op
/// set: the kernels linked are those of the kinds in it.
#[derive(Clone, Copy, Debug)]
pub struct Program<'a, const OPS: u32 = ALL> {
    /// The ops, in order.
    pub ops: &'a [Op<'a>],
    /// Arena bytes needed.
    pub arena_len: usize,
    /// Arena alignment needed (4, or 8 when an op keeps f64 sums).
    pub align: usize,
    /// The input.
    pub input: Io,
    /// The output.
    pub output: Io,
}

/// Checks an arena's size and alignment.
pub(crate) fn check_arena(arena: &[u8], needed: usize, align: usize) -> Result<()> {
    if arena.len() < needed {
        return Err(Error::ArenaTooSmall {
            needed,
            got: arena.len(),
        });
    }
    let misalignment = arena.as_ptr() as usize % align;
    if misalignment != 0 {
        return Err(Error::ArenaMisaligned {
            align,
            misalignment,
        });
    }
    Ok(())
}

/// The input of `io` in `arena`, to fill in place.
pub(crate) fn input_mut<'b, T: Element>(io: &Io, arena: &'b mut [u8]) -> Result<&'b mut [T]> {
    io.check::<T>("input", io.numel())?;
    cast_mut(bytes_mut(arena, io.region)?)
}

/// The output of `io` in `arena`.
pub(crate) fn output_ref<'b, T: Element>(io: &Io, arena: &'b [u8]) -> Result<&'b [T]> {
    io.check::<T>("output", io.numel())?;
    cast(bytes(arena, io.region)?)
}

/// Copies `input` in, runs `invoke`, copies the output out.
pub(crate) fn run_with<I: Element, O: Element>(
    io: (&Io, &Io),
    arena: &mut [u8],
    input: &[I],
    output: &mut [O],
    invoke: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<()> {
    io.0.check::<I>("input", input.len())?;
    io.1.check::<O>("output", output.len())?;
    bytes_mut(arena, io.0.region)?.copy_from_slice(bytemuck::cast_slice(input));
    invoke(arena)?;
    bytemuck::cast_slice_mut(output).copy_from_slice(bytes(arena, io.1.region)?);
    Ok(())
}

impl<const OPS: u32> Program<'_, OPS> {
    /// The input inside `arena`, to fill in place before [`Program::invoke`].
    pub fn input_mut<'b, T: Element>(&self, arena: &'b mut [u8]) -> Result<&'b mut [T]> {
        check_arena(arena, self.arena_len, self.align)?;
        input_mut(&self.input, arena)
    }

    /// The output inside `arena`, after [`Program::invoke`].
    pub fn output_ref<'b, T: Element>(&self, arena: &'b [u8]) -> Result<&'b [T]> {
        output_ref(&self.output, arena)
    }

    /// Runs every op on the input already in `arena`.
    pub fn invoke(&self, arena: &mut [u8]) -> Result<()> {
        check_arena(arena, self.arena_len, self.align)?;
        for op in self.ops {
            execute::<OPS>(op, arena)?;
        }
        Ok(())
    }

    /// Copies `input` into `arena`, runs the model, and copies its output out.
    pub fn run<I: Element, O: Element>(
        &self,
        arena: &mut [u8],
        input: &[I],
        output: &mut [O],
    ) -> Result<()> {
        check_arena(arena, self.arena_len, self.align)?;
        run_with((&self.input, &self.output), arena, input, output, |a| {
            self.invoke(a)
        })
    }
}

/// The arena regions of one op: what it reads and what it writes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Regions {
    /// The first input.
    pub x: Region,
    /// A second input (an addend), if any.
    pub x2: Option<Region>,
    /// The output.
    pub y: Region,
    /// Scratch, if any.
    pub scratch: Option<Region>,
}

impl Regions {
    /// Whether any written region overlaps a read one or another written one.
    pub(crate) fn clash(&self) -> bool {
        let reads = [Some(self.x), self.x2];
        let writes = [Some(self.y), self.scratch];
        let hit = |a: Option<Region>, b: Option<Region>| matches!((a, b), (Some(a), Some(b)) if a.overlaps(b));
        writes.iter().any(|&w| reads.iter().any(|&r| hit(w, r))) || hit(Some(self.y), self.scratch)
    }
}

/// The regions an op reads and writes.
pub(crate) fn regions(op: &Op<'_>) -> Regions {
    let one = |x: Region, y: Region| Regions {
        x,
        x2: None,
        y,
        scratch: None,
    };
    match *op {
        Op::Quantize { x, y, .. }
        | Op::Dequantize { x, y, .. }
        | Op::DenseF32 { x, y, .. }
        | Op::DenseS8 { x, y, .. }
        | Op::Conv2dF32 { x, y, .. }
        | Op::Pool { x, y, .. }
        | Op::MeanF32 { x, y, .. }
        | Op::MeanS8 { x, y, .. }
        | Op::UnaryF32 { x, y, .. }
        | Op::LutS8 { x, y, .. }
        | Op::SoftmaxF32 { x, y, .. }
        | Op::SoftmaxS8 { x, y, .. }
        | Op::NaiveBayes { x, y, .. } => one(x, y),
        Op::Trees { x, y, scratch, .. }
        | Op::Conv2dS8 { x, y, scratch, .. }
        | Op::RecurrentF32 { x, y, scratch, .. } => Regions {
            // A pointwise convolution needs none: an empty scratch is no region.
            scratch: (scratch.len > 0).then_some(scratch),
            ..one(x, y)
        },
        Op::AddF32 { a, b, y, .. } | Op::AddS8 { a, b, y, .. } => Regions {
            x2: Some(b),
            ..one(a, y)
        },
    }
}

pub(crate) fn out_of_arena() -> Error {
    Error::Corrupt {
        offset: 0,
        expected: "regions inside the arena (checked at load)",
    }
}

pub(crate) fn bytes(arena: &[u8], r: Region) -> Result<&[u8]> {
    arena.get(r.offset..r.end()).ok_or_else(out_of_arena)
}

pub(crate) fn bytes_mut(arena: &mut [u8], r: Region) -> Result<&mut [u8]> {
    arena.get_mut(r.offset..r.end()).ok_or_else(out_of_arena)
}

/// The arena cut around an op's output (and scratch): both mutable, and the
/// read-only pieces between them, from which its inputs are taken. Plain splits, no
/// copies.
struct Split<'b> {
    y: &'b mut [u8],
    scratch: &'b mut [u8],
    /// Read-only pieces with their start offsets.
    rest: [(usize, &'b [u8]); 3],
}

/// `arena` cut at `r`: what is before it, `r`'s bytes, and what follows.
fn cut(arena: &mut [u8], base: usize, r: Region) -> Result<(&[u8], &mut [u8], &mut [u8])> {
    let at = r.offset.checked_sub(base).ok_or_else(out_of_arena)?;
    if at > arena.len() || r.len > arena.len() - at {
        return Err(out_of_arena());
    }
    let (before, after) = arena.split_at_mut(at);
    let (mid, after) = after.split_at_mut(r.len);
    Ok((before, mid, after))
}

impl<'b> Split<'b> {
    fn new(arena: &'b mut [u8], y: Region, scratch: Option<Region>) -> Result<Self> {
        let Some(s) = scratch else {
            let (lo, out, hi) = cut(arena, 0, y)?;
            return Ok(Split {
                y: out,
                scratch: &mut [],
                rest: [(0, lo), (y.end(), hi), (0, &[])],
            });
        };
        let (first, second) = if s.offset < y.offset { (s, y) } else { (y, s) };
        let (lo, a, tail) = cut(arena, 0, first)?;
        let (mid, b, hi) = cut(tail, first.end(), second)?;
        let rest = [(0, lo), (first.end(), mid), (second.end(), &*hi)];
        let (y, scratch) = if first == s { (b, a) } else { (a, b) };
        Ok(Split { y, scratch, rest })
    }
}

/// Input region `r`, from the read-only pieces of a [`Split`].
fn piece<'b>(rest: &[(usize, &'b [u8]); 3], r: Region) -> Result<&'b [u8]> {
    {
        for &(base, piece) in rest {
            if r.offset >= base && r.end() <= base + piece.len() {
                return Ok(&piece[r.offset - base..r.end() - base]);
            }
        }
        Err(out_of_arena())
    }
}

fn misaligned<T>(p: *const u8) -> Error {
    let align = core::mem::align_of::<T>();
    Error::ArenaMisaligned {
        align,
        misalignment: p as usize % align,
    }
}

pub(crate) fn cast<T: bytemuck::Pod>(b: &[u8]) -> Result<&[T]> {
    bytemuck::try_cast_slice(b).map_err(|_| misaligned::<T>(b.as_ptr()))
}

pub(crate) fn cast_mut<T: bytemuck::Pod>(b: &mut [u8]) -> Result<&mut [T]> {
    let p = b.as_ptr();
    bytemuck::try_cast_slice_mut(b).map_err(|_| misaligned::<T>(p))
}

/// Runs one op. Each arm is compiled only when its kind is in `OPS`.
pub(crate) fn execute<const OPS: u32>(op: &Op<'_>, arena: &mut [u8]) -> Result<()> {
    let r = regions(op);
    let Split { y, scratch, rest } = Split::new(arena, r.y, r.scratch)?;
    let x = piece(&rest, r.x)?;
    let on = |k: OpKind| OPS & k.bit() != 0;
    match *op {
        Op::Quantize {
            scale, zero_point, ..
        } if on(OpKind::Quantize) => {
            quant::quantize_f32_s8_validated(cast(x)?, scale, zero_point, cast_mut(y)?)?
        }
        Op::Dequantize {
            scale, zero_point, ..
        } if on(OpKind::Dequantize) => {
            quant::dequantize_s8_f32(cast(x)?, scale, zero_point, cast_mut(y)?)?
        }
        Op::DenseF32 {
            dims, w, b, act, ..
        } if on(OpKind::DenseF32) => {
            let (lo, hi) = act.range();
            nhwc::dense(
                cast(x)?,
                w,
                b,
                dims.batch,
                dims.inputs,
                dims.outputs,
                lo,
                hi,
                cast_mut(y)?,
            )?
        }
        Op::DenseS8 {
            dims, w, bias, rq, ..
        } if on(OpKind::DenseS8) => quant::dense_s8_validated(
            cast(x)?,
            w,
            bias,
            &rq,
            dims.batch,
            dims.inputs,
            dims.outputs,
            cast_mut(y)?,
        )?,
        Op::Conv2dF32 { g, w, b, act, .. } if on(OpKind::Conv2dF32) => {
            let (lo, hi) = act.range();
            nhwc::conv2d(&g, cast(x)?, w, b, lo, hi, cast_mut(y)?)?
        }
        Op::Conv2dS8 {
            g,
            w,
            bias,
            input_zero_point,
            rq,
            ..
        } if on(OpKind::Conv2dS8) => quant::conv2d_s8(
            &g,
            cast(x)?,
            w,
            bias,
            input_zero_point,
            &rq,
            cast_mut(scratch)?,
            cast_mut(y)?,
        )?,
        // One arm per kind, each guarded by a constant, so unused pools are not linked.
        Op::Pool {
            kind: OpKind::MaxPoolF32,
            g,
            ..
        } if on(OpKind::MaxPoolF32) => nhwc::max_pool(&g, cast(x)?, cast_mut(y)?)?,
        Op::Pool {
            kind: OpKind::AvgPoolF32,
            g,
            count_include_pad,
            ..
        } if on(OpKind::AvgPoolF32) => {
            nhwc::avg_pool(&g, cast(x)?, count_include_pad, cast_mut(y)?)?
        }
        Op::Pool {
            kind: OpKind::MaxPoolS8,
            g,
            act_min,
            act_max,
            ..
        } if on(OpKind::MaxPoolS8) => {
            quant::max_pool_s8(&g, cast(x)?, act_min, act_max, cast_mut(y)?)?
        }
        Op::Pool {
            kind: OpKind::AvgPoolS8,
            g,
            count_include_pad,
            input_zero_point,
            act_min,
            act_max,
            ..
        } if on(OpKind::AvgPoolS8) => quant::avg_pool_s8(
            &g,
            cast(x)?,
            input_zero_point,
            count_include_pad,
            act_min,
            act_max,
            cast_mut(y)?,
        )?,
        Op::MeanF32 {
            nhwc: [n, h, w, c], ..
        } if on(OpKind::MeanF32) => nhwc::mean_hw(cast(x)?, n, h * w, c, cast_mut(y)?)?,
        Op::MeanS8 {
            nhwc: [n, h, w, c],
            mean,
            ..
        } if on(OpKind::MeanS8) => quant::mean_hw_s8(&mean, n, h, w, c, cast(x)?, cast_mut(y)?)?,
        Op::AddF32 { b, act, .. } if on(OpKind::AddF32) => {
            let (lo, hi) = act.range();
            nhwc::add(cast(x)?, cast(piece(&rest, b)?)?, lo, hi, cast_mut(y)?)?
        }
        Op::AddS8 { b, p, .. } if on(OpKind::AddS8) => {
            quant::add_s8(&p, cast(x)?, cast(piece(&rest, b)?)?, cast_mut(y)?)?
        }
        Op::UnaryF32 { f, .. } if on(OpKind::UnaryF32) => unary_f32(f, cast(x)?, cast_mut(y)?)?,
        Op::LutS8 { table, .. } if on(OpKind::LutS8) => {
            quant::lut_s8(table, cast(x)?, cast_mut(y)?)?
        }
        Op::SoftmaxF32 { rows, cols, .. } if on(OpKind::SoftmaxF32) => {
            dl_core::softmax::softmax::<f32>(cast(x)?, rows, cols, cast_mut(y)?)?
        }
        Op::SoftmaxS8 { cols, p, .. } if on(OpKind::SoftmaxS8) => {
            quant::softmax_s8(&p, cast(x)?, cols, cast_mut(y)?)?
        }
        Op::Trees { forest, .. } if on(OpKind::TreeEnsemble) => {
            let proba: &mut [f64] = cast_mut(scratch)?;
            let x: &[f32] = cast(x)?;
            let y: &mut [i32] = cast_mut(y)?;
            for (row, p) in x.chunks_exact(forest.n_features).zip(y.iter_mut()) {
                *p = forest.predict(row, proba) as i32;
            }
        }
        Op::NaiveBayes { nb, .. } if on(OpKind::GaussianNb) => {
            let x: &[f32] = cast(x)?;
            let y: &mut [i32] = cast_mut(y)?;
            let d = x.len() / y.len().max(1);
            for (row, p) in x.chunks_exact(d.max(1)).zip(y.iter_mut()) {
                *p = nb.predict(row) as i32;
            }
        }
        Op::RecurrentF32 { g, w, .. } if on(OpKind::RecurrentF32) => {
            dl_core::recurrent::recurrent(&g, cast(x)?, &w, cast_mut(scratch)?, cast_mut(y)?)?
        }
        _ => {
            return Err(Error::Corrupt {
                offset: 0,
                expected: "an op in this build's op set (checked at load)",
            })
        }
    }
    Ok(())
}

/// A standalone f32 activation through dl-core's element-wise kernels.
fn unary_f32(f: Unary, x: &[f32], y: &mut [f32]) -> Result<()> {
    use dl_core::elementwise::{unary, Unary as U};
    match f {
        Unary::Relu => unary(U::Relu, x, y)?,
        Unary::Relu6 => {
            if x.len() != y.len() {
                return Err(dl_core::Error::LengthMismatch {
                    op: "relu6",
                    what: "output",
                    expected: x.len(),
                    actual: y.len(),
                }
                .into());
            }
            for (o, &v) in y.iter_mut().zip(x) {
                *o = v.clamp(0.0, 6.0);
            }
        }
        Unary::LeakyRelu(s) => unary(U::LeakyRelu(s as f64), x, y)?,
        Unary::Sigmoid => unary(U::Sigmoid, x, y)?,
        Unary::Tanh => unary(U::Tanh, x, y)?,
    }
    Ok(())
}
