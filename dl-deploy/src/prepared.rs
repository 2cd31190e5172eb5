//! The desktop form of a model ([`Prepared`]): built once from a checked [`Model`] or
//! [`Program`], with the work a firmware cannot afford to keep but a desktop can
//! done ahead of time.
//!
//! [`Program::run`] is made for flash: weights are read where they lie and every
//! kernel re-checks its parameters on each call. That costs little beside a
//! microcontroller's arithmetic, but on a desktop core with AVX-512 VNNI a dense
//! layer of a small model is a few dozen instructions, and the per-call work around
//! it (packing its weights into the kernel's order, summing them for the unsigned
//! input's correction, validating and loading the output stage, copying the f32
//! input into the arena) is most of the time. A [`Prepared`] model does all of it once:
//!
//! - each int8 dense layer becomes a [`PackedDense`] (weights packed, `bias - 128 *
//!   sum(w)` and the output stage precomputed, parameters validated);
//! - a first op that reads the model's input (the `Quantize` of an int8 model) reads
//!   the caller's slice in place rather than a copy in the arena, and a last dense
//!   layer writes the caller's output slice directly;
//! - every other op runs as in [`Program::run`].
//!
//! The outputs are [`Program::run`]'s, byte for byte, at any thread count (tested on
//! the committed models and on random ones).

use crate::error::{Error, Result};
use crate::format::{DType, Element};
use crate::model::Model;
use crate::op::ALL;
use crate::program::{
    bytes, bytes_mut, cast, cast_mut, check_arena, execute, out_of_arena, regions, Io, Op, Program,
    Region,
};
use alloc::vec::Vec;
use dl_core::quant::{self, PackedDense};

/// A model prepared once for fast repeated runs on a desktop (see the module doc):
/// `Prepared::from_model(&model)?`, then [`Prepared::run`] as [`Model::run`]. Runs
/// every op kind (the full op set), whatever the source's `OPS`.
#[derive(Clone, Debug)]
pub struct Prepared<'a> {
    steps: Vec<Step<'a>>,
    arena_len: usize,
    align: usize,
    input: Io,
    output: Io,
    /// The first step reads the caller's input in place (nothing else reads it).
    input_in_place: bool,
    /// The last step writes the caller's output directly.
    output_in_place: bool,
}

/// One op, specialised or as decoded.
#[derive(Clone, Debug)]
enum Step<'a> {
    /// An int8 dense layer, packed.
    Dense {
        x: Region,
        y: Region,
        batch: usize,
        layer: PackedDense,
    },
    /// `Quantize`, which may read the caller's input.
    Quantize {
        x: Region,
        y: Region,
        scale: f32,
        zero_point: i32,
    },
    /// Any other op, run as [`Program::run`] runs it.
    Op(Op<'a>),
}

impl Step<'_> {
    fn x(&self) -> Option<Region> {
        match *self {
            Step::Dense { x, .. } | Step::Quantize { x, .. } => Some(x),
            Step::Op(_) => None,
        }
    }

    fn y(&self) -> Option<Region> {
        match *self {
            Step::Dense { y, .. } => Some(y),
            Step::Quantize { .. } | Step::Op(_) => None,
        }
    }
}

impl<'a> Prepared<'a> {
    /// Prepares a model checked by [`Model::from_bytes`]. Errors if an op's
    /// parameters are refused by its prepared kernel (which a loaded model's are not).
    pub fn from_model<const OPS: u32>(model: &Model<'a, OPS>) -> Result<Self> {
        let ops = model.ops().collect::<Result<Vec<_>>>()?;
        Self::from_parts(
            &ops,
            model.arena_len(),
            model.align(),
            model.input_io(),
            model.output_io(),
        )
    }

    /// Prepares a compiled [`Program`] (its ops as [`crate::codegen`] writes them).
    /// Errors as [`Prepared::from_model`], and with `Corrupt` for a specialised op
    /// whose regions leave the arena or overlap.
    pub fn from_program<const OPS: u32>(program: &Program<'a, OPS>) -> Result<Self> {
        Self::from_parts(
            program.ops,
            program.arena_len,
            program.align,
            program.input,
            program.output,
        )
    }

    fn from_parts(
        ops: &[Op<'a>],
        arena_len: usize,
        align: usize,
        input: Io,
        output: Io,
    ) -> Result<Self> {
        let inside = |r: Region| {
            r.offset
                .checked_add(r.len)
                .is_some_and(|end| end <= arena_len)
        };
        let mut steps = Vec::with_capacity(ops.len());
        for op in ops {
            let r = regions(op);
            let step = match *op {
                Op::DenseS8 {
                    x,
                    y,
                    dims,
                    w,
                    bias,
                    rq,
                } => Step::Dense {
                    x,
                    y,
                    batch: dims.batch,
                    layer: PackedDense::new(w, bias, &rq, dims.inputs, dims.outputs)?,
                },
                Op::Quantize {
                    x,
                    y,
                    scale,
                    zero_point,
                } => Step::Quantize {
                    x,
                    y,
                    scale,
                    zero_point,
                },
                _ => Step::Op(*op),
            };
            if !matches!(step, Step::Op(_)) && (!inside(r.x) || !inside(r.y) || r.clash()) {
                return Err(out_of_arena());
            }
            steps.push(step);
        }
        let output_in_place = steps.last().and_then(Step::y) == Some(output.region);
        // The caller's input can stand for its arena copy when the first step reads
        // exactly it and every later read of its bytes (the planner reuses them) is
        // of an earlier op's output, as is the output copied out.
        let mut written: Vec<Region> = Vec::with_capacity(ops.len());
        let fresh = |read: Region, written: &[Region]| {
            !read.overlaps(input.region)
                || written
                    .iter()
                    .any(|w| w.offset <= read.offset && read.end() <= w.end())
        };
        let mut input_in_place = steps.first().and_then(Step::x) == Some(input.region);
        for (i, op) in ops.iter().enumerate() {
            let r = regions(op);
            if i > 0 {
                input_in_place &= fresh(r.x, &written) && r.x2.is_none_or(|b| fresh(b, &written));
            }
            written.push(r.y);
        }
        input_in_place &= output_in_place || fresh(output.region, &written);
        Ok(Prepared {
            steps,
            arena_len,
            align,
            input,
            output,
            input_in_place,
            output_in_place,
        })
    }

    /// Arena bytes [`Prepared::run`] needs (the model's).
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }

    /// Arena alignment [`Prepared::run`] needs (the model's).
    pub fn align(&self) -> usize {
        self.align
    }

    /// Runs the model on `input`, writing `output`, as [`Program::run`] does (the
    /// same bytes), with the activations in `arena` (at least
    /// [`Prepared::arena_len`] bytes, aligned as [`Prepared::align`] says).
    pub fn run<I: Element, O: Element>(
        &self,
        arena: &mut [u8],
        input: &[I],
        output: &mut [O],
    ) -> Result<()> {
        check_arena(arena, self.arena_len, self.align)?;
        check_io::<I>(&self.input, "input", input.len())?;
        check_io::<O>(&self.output, "output", output.len())?;
        let input: &[u8] = bytemuck::cast_slice(input);
        let output: &mut [u8] = bytemuck::cast_slice_mut(output);
        if !self.input_in_place {
            bytes_mut(arena, self.input.region)?.copy_from_slice(input);
        }
        let last = self.steps.len().wrapping_sub(1);
        for (i, step) in self.steps.iter().enumerate() {
            let from_input = i == 0 && self.input_in_place;
            let to_output = i == last && self.output_in_place;
            match step {
                Step::Op(op) => execute::<ALL>(op, arena)?,
                &Step::Quantize {
                    x,
                    y,
                    scale,
                    zero_point,
                } => {
                    let (x, y) = operands(arena, input, &mut *output, x, y, from_input, false)?;
                    quant::quantize_f32_s8_validated(cast(x)?, scale, zero_point, cast_mut(y)?)?
                }
                Step::Dense { x, y, batch, layer } => {
                    let (x, y) =
                        operands(arena, input, &mut *output, *x, *y, from_input, to_output)?;
                    layer.run(cast(x)?, *batch, cast_mut(y)?)?
                }
            }
        }
        if !self.output_in_place {
            output.copy_from_slice(bytes(arena, self.output.region)?);
        }
        Ok(())
    }
}

/// `Buffer` unless `T` is the element type of `io` and `len` its element count.
fn check_io<T: Element>(io: &Io, what: &'static str, len: usize) -> Result<()> {
    if T::DTYPE == io.dtype && len == io.numel() {
        return Ok(());
    }
    let dtype: DType = io.dtype;
    Err(Error::Buffer {
        what,
        expected: io.numel(),
        actual: len,
        dtype: dtype.name(),
        given: T::DTYPE.name(),
    })
}

/// A step's input and output bytes: from the arena (the two regions, which do not
/// overlap), or the caller's input and output where the step stands in for them.
#[inline]
fn operands<'b>(
    arena: &'b mut [u8],
    input: &'b [u8],
    output: &'b mut [u8],
    x: Region,
    y: Region,
    from_input: bool,
    to_output: bool,
) -> Result<(&'b [u8], &'b mut [u8])> {
    let y = if to_output {
        if from_input {
            return Ok((input, output));
        }
        return Ok((bytes(arena, x)?, output));
    } else {
        y
    };
    if from_input {
        return Ok((input, bytes_mut(arena, y)?));
    }
    if x.overlaps(y) {
        return Err(out_of_arena());
    }
    // Cut the arena between the two regions.
    if x.offset < y.offset {
        let (lo, hi) = arena.split_at_mut(y.offset.min(arena.len()));
        Ok((bytes(lo, x)?, bytes_mut(hi, Region::new(0, y.len))?))
    } else {
        let (lo, hi) = arena.split_at_mut(x.offset.min(arena.len()));
        Ok((bytes(hi, Region::new(0, x.len))?, bytes_mut(lo, y)?))
    }
}
