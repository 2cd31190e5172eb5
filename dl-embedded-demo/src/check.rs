//! Checks shared by the binaries: running a model on every held-out sample under the
//! instruction counter, and comparing its predictions with the labels, with the
//! desktop's predictions and with the host's int8 output bytes.

use crate::data::{self, N_TEST};
use crate::engine::{argmax, log_error};
use crate::icount::{self, Ticks};
use crate::{exit, percent, stack};
use dl_deploy::{Error, Program};

/// Runs `infer(i)` for `i` in `0..n` and returns the ticks the whole loop took; logs
/// the error and exits with failure if one inference fails.
pub fn timed(ticks: &Ticks, n: usize, mut infer: impl FnMut(usize) -> Result<(), Error>) -> u32 {
    let start = ticks.now();
    for i in 0..n {
        if let Err(e) = infer(i) {
            log_error("inference", &e);
            exit(false)
        }
    }
    ticks.since(start)
}

/// Logs instructions per inference (over `n` inferences that took `elapsed` ticks)
/// and the stack high-water mark.
pub fn report_cost(ticks: &Ticks, elapsed: u32, n: usize) {
    let calibration = icount::calibrate(ticks);
    defmt::info!(
        "instructions per inference: {=u64} (calibration: {=u32} instructions = {=u32} {=str} ticks)",
        icount::instructions(elapsed, calibration) / n as u64,
        2 * icount::CALIBRATION_LOOPS,
        calibration,
        icount::CLOCK
    );
    defmt::info!(
        "stack high-water: {=usize} B of {=usize} B",
        stack::high_water(),
        stack::capacity()
    );
}

/// Writes held-out digit `i`, scaled as on the desktop (`pixel / 16`, exact in f32),
/// into the model's input in the arena and runs the model.
pub fn run_digit<const OPS: u32>(
    model: &Program<'_, OPS>,
    arena: &mut [u8],
    i: usize,
) -> Result<(), Error> {
    data::scaled_image(&data::TEST_X, i, model.input_mut::<f32>(arena)?);
    model.invoke(arena)
}

/// The f32 model's predicted class for held-out digit `i`.
pub fn classify_digit<const OPS: u32>(
    model: &Program<'_, OPS>,
    arena: &mut [u8],
    i: usize,
) -> Result<u8, Error> {
    run_digit(model, arena, i)?;
    Ok(argmax(model.output_ref::<f32>(arena)?) as u8)
}

/// Logs `path`'s accuracy on the held-out digits and how many of its predictions
/// differ from the desktop's; true when it agrees with the desktop on every sample.
pub fn report_vs_desktop(path: &str, preds: &[u8; N_TEST]) -> bool {
    let correct = count_equal(preds, &data::TEST_Y);
    let desktop = count_equal(&data::DESKTOP_PRED, &data::TEST_Y);
    let differ = N_TEST - count_equal(preds, &data::DESKTOP_PRED);
    let (w, f) = percent(correct, N_TEST);
    defmt::info!(
        "{=str}: {=usize}/{=usize} held-out digits correct ({=u32}.{=u32:02}%); desktop {=usize}/{=usize}; {=usize} predictions differ from the desktop's",
        path, correct, N_TEST, w, f, desktop, N_TEST, differ
    );
    differ == 0 && correct == desktop
}

/// Number of positions where `a` and `b` agree.
pub fn count_equal(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

/// Runs an int8 model on `cases` inputs (rows of `inputs`) under the instruction
/// counter, compares each output with TensorFlow Lite Micro's (rows of `expected`)
/// and logs how many are equal and the FNV-1a digest of every output byte the device
/// gave (the golden log pins it); true when every output equals TFLM's.
pub fn against_tflm<const OPS: u32>(
    ticks: &Ticks,
    label: &str,
    model: &Program<'_, OPS>,
    arena: &mut [u8],
    inputs: &[u8],
    expected: &[u8],
    cases: usize,
) -> bool {
    let (n_in, n_out) = (inputs.len() / cases, expected.len() / cases);
    let (mut equal, mut digest) = (0, Fnv1a::new());
    let elapsed = timed(ticks, cases, |i| {
        let x = &inputs[i * n_in..(i + 1) * n_in];
        for (d, &b) in model.input_mut::<i8>(arena)?.iter_mut().zip(x) {
            *d = b as i8;
        }
        model.invoke(arena)?;
        let out = model.output_ref::<i8>(arena)?;
        let tflm = &expected[i * n_out..(i + 1) * n_out];
        equal +=
            usize::from(out.len() == n_out && out.iter().zip(tflm).all(|(&a, &b)| a as u8 == b));
        out.iter().for_each(|&v| digest.push(v as u8));
        Ok(())
    });
    defmt::info!(
        "{=str}: {=usize} of {=usize} int8 outputs equal TensorFlow Lite Micro's; FNV-1a of the outputs {=u32:#010x}",
        label,
        equal,
        cases,
        digest.0
    );
    report_cost(ticks, elapsed, cases);
    equal == cases
}

/// 32-bit FNV-1a, a digest of output bytes short enough for a log line.
struct Fnv1a(u32);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0x811c_9dc5)
    }

    fn push(&mut self, b: u8) {
        self.0 = (self.0 ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
}
