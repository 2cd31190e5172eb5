//! What the fuzz targets (`fuzz_targets/blob.rs`, `fuzz_targets/blob_crc.rs`) and the
//! stable replay (`dl-deploy/tests/fuzz_corpus.rs`) do with one input, shared so
//! both check exactly the same thing: load the bytes as a blob; if they load, run the
//! model with an arena of `arena_len()` bytes and input/output buffers of the
//! model's element types and sizes, twice (ordinary values, then extreme ones:
//! NaN, infinities, the integer limits). Any panic is a bug; errors are fine.
//!
//! A valid blob can describe a lot of work (a 255x255 pooling window over a large
//! image, a forest walked for every row), so the run is skipped when the arena is
//! above [`MAX_ARENA`] or the estimated work above [`MAX_WORK`]: the estimate reads
//! the op records of a blob that has already loaded, with the layout of
//! `dl-deploy/src/format.rs` and `model.rs`.
#![allow(dead_code)]

use dl_deploy::format::{crc32, HEADER_LEN, TENSOR_LEN};
use dl_deploy::{AlignedBlob, DType, Element, Error, HeapArena, Model, OpKind, TensorInfo};

/// Largest arena (and so largest tensor) a run allocates: 16 MiB.
pub const MAX_ARENA: usize = 16 << 20;
/// Largest estimated work (multiply-adds, element reads and writes) per run.
pub const MAX_WORK: u64 = 1 << 24;

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    /// `Model::from_bytes` refused it.
    Rejected(Error),
    /// It loaded, but its arena or its work is above the bounds: not run.
    Skipped { arena_len: usize, work: Option<u64> },
    /// It loaded and ran twice; the results of the two runs.
    Ran {
        kinds: u32,
        results: [Result<(), Error>; 2],
    },
}

/// The fuzzed bytes with the CRC-32 of bytes 12.. written at 8..12 (inputs shorter
/// than 12 bytes are returned as they are).
pub fn patch_crc(data: &[u8]) -> Vec<u8> {
    let mut m = data.to_vec();
    if m.len() >= 12 {
        let crc = crc32(&m[12..]);
        m[8..12].copy_from_slice(&crc.to_le_bytes());
    }
    m
}

/// The `blob` target: the bytes as they are.
pub fn check_blob(data: &[u8]) -> Outcome {
    load_and_run(data)
}

/// The `blob_crc` target: the bytes with their CRC patched in, so the structural
/// checks behind the CRC are what gets fuzzed.
pub fn check_blob_crc(data: &[u8]) -> Outcome {
    load_and_run(&patch_crc(data))
}

/// Loads `data` (copied to 8-byte-aligned storage) and runs it within the bounds.
pub fn load_and_run(data: &[u8]) -> Outcome {
    let blob = AlignedBlob::new(data);
    let model: Model<'_> = match Model::from_bytes(blob.bytes()) {
        Ok(m) => m,
        Err(e) => return Outcome::Rejected(e),
    };
    // Everything a caller may ask of a loaded model.
    let mut kinds = 0u32;
    let mut n_kinds = 0;
    for k in model.op_kinds() {
        kinds |= k.bit();
        n_kinds += 1;
    }
    assert_eq!(
        n_kinds,
        model.num_ops(),
        "op_kinds() must list every op of a loaded model"
    );
    assert_eq!(model.blob_len(), data.len());
    let (tin, tout) = (model.input(), model.output());
    for t in [&tin, &tout] {
        assert!(!t.dims.is_empty(), "input/output of a loaded model: {t:?}");
        assert!(
            t.offset + t.bytes() <= model.arena_len(),
            "{t:?} outside the arena"
        );
    }
    let arena_len = model.arena_len();
    let work = estimate_work(&model, blob.bytes());
    if arena_len > MAX_ARENA || work.is_none_or(|w| w > MAX_WORK) {
        return Outcome::Skipped { arena_len, work };
    }
    let mut arena = HeapArena::new(arena_len);
    let results = [
        run_input(&model, arena.bytes(), &tin, &tout, false),
        run_input(&model, arena.bytes(), &tin, &tout, true),
    ];
    Outcome::Ran { kinds, results }
}

/// Runs with an input of the model's element type: ordinary values, or extreme ones.
fn run_input(
    model: &Model<'_>,
    arena: &mut [u8],
    tin: &TensorInfo,
    tout: &TensorInfo,
    extreme: bool,
) -> Result<(), Error> {
    let n = tin.numel();
    match tin.dtype {
        DType::F32 => {
            const SPECIAL: [f32; 8] = [
                f32::NAN,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::MAX,
                f32::MIN,
                -0.0,
                1e-45,
                -3.0e38,
            ];
            let x: Vec<f32> = (0..n)
                .map(|i| {
                    if extreme {
                        SPECIAL[i % SPECIAL.len()]
                    } else {
                        ((i * 7 % 13) as f32 - 6.0) * 0.37
                    }
                })
                .collect();
            run_output(model, arena, &x, tout)
        }
        DType::I8 => {
            let x: Vec<i8> = (0..n)
                .map(|i| {
                    if extreme {
                        [i8::MIN, i8::MAX, 0, -1][i % 4]
                    } else {
                        (i * 37 % 256) as u8 as i8
                    }
                })
                .collect();
            run_output(model, arena, &x, tout)
        }
        DType::I32 => {
            let x: Vec<i32> = (0..n)
                .map(|i| {
                    if extreme {
                        [i32::MIN, i32::MAX, 0, -1][i % 4]
                    } else {
                        i as i32 - 3
                    }
                })
                .collect();
            run_output(model, arena, &x, tout)
        }
    }
}

fn run_output<I: Element>(
    model: &Model<'_>,
    arena: &mut [u8],
    x: &[I],
    tout: &TensorInfo,
) -> Result<(), Error> {
    let n = tout.numel();
    match tout.dtype {
        DType::F32 => model.run(arena, x, &mut vec![0.0f32; n]),
        DType::I8 => model.run(arena, x, &mut vec![0i8; n]),
        DType::I32 => model.run(arena, x, &mut vec![0i32; n]),
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as u64)
}

/// An upper estimate of the work of one run of a loaded model (None if the records
/// cannot be read: then the run is skipped, and the replay test notices).
pub fn estimate_work(model: &Model<'_>, blob: &[u8]) -> Option<u64> {
    let n_tensors = u16_at(blob, 16)?;
    let mut pos = HEADER_LEN + n_tensors * TENSOR_LEN;
    let numel =
        |at: usize| -> Option<u64> { Some(model.tensor(u16_at(blob, at)?).ok()?.numel() as u64) };
    let last =
        |at: usize| -> Option<u64> { Some(model.tensor(u16_at(blob, at)?).ok()?.last() as u64) };
    let mut total: u64 = (model.input().numel() + model.output().numel()) as u64;
    for _ in 0..model.num_ops() {
        let kind = OpKind::from_code(*blob.get(pos)?)?;
        let words = u16_at(blob, pos + 2)?;
        let (x, y) = (numel(pos + 4)?, numel(pos + 6)?);
        let k = |i: usize| -> Option<u64> { Some(*blob.get(pos + 8 + i)? as u64) };
        let op = match kind {
            OpKind::DenseF32 | OpKind::DenseS8 => y.saturating_mul(last(pos + 4)?),
            OpKind::Conv2dF32 | OpKind::Conv2dS8 => {
                let groups = (u16_at(blob, pos + 16)? as u64).max(1);
                let per_out = k(0)?
                    .saturating_mul(k(1)?)
                    .saturating_mul(last(pos + 4)? / groups);
                // The int8 kernel also copies a patch per output pixel.
                y.saturating_mul(per_out).saturating_mul(2)
            }
            OpKind::MaxPoolF32 | OpKind::MaxPoolS8 | OpKind::AvgPoolF32 | OpKind::AvgPoolS8 => {
                y.saturating_mul(k(0)?.saturating_mul(k(1)?))
            }
            OpKind::AddF32 | OpKind::AddS8 => numel(pos + 8)?,
            OpKind::TreeEnsemble => {
                let n_trees = u16_at(blob, pos + 8)? as u64;
                let n_classes = u16_at(blob, pos + 10)? as u64;
                let n_nodes = u32_at(blob, pos + 20)?;
                let per_row = n_nodes.saturating_add((n_trees + 1).saturating_mul(n_classes));
                y.saturating_mul(per_row)
            }
            OpKind::GaussianNb => {
                let classes = u16_at(blob, pos + 8)? as u64;
                x.saturating_mul(classes).saturating_mul(2)
            }
            OpKind::RecurrentF32 => {
                // Per row of the sequence: G * H * (I + H) multiply-adds, G <= 4.
                let hidden = u16_at(blob, pos + 10)? as u64;
                let input = last(pos + 4)?.max(1);
                let per_row = 4 * hidden * (input + hidden) + 8 * hidden;
                (x / input).saturating_mul(per_row)
            }
            _ => 0,
        };
        total = total.saturating_add(x).saturating_add(y).saturating_add(op);
        pos += 4 * words;
    }
    Some(total)
}
