//! The whole demo on the device: (1) load the desktop checkpoint through
//! `dl_layers::checkpoint` and (2) classify the held-out digits with it and with the
//! heapless flash path, both checked prediction for prediction against the desktop;
//! (3) train a small MLP on the device and log its loss falling and its accuracy;
//! (4) report the peak heap use and the stack high-water mark.
#![no_std]
#![no_main]

use dl_core::Rng;
use dl_deploy::Arena;
use dl_embedded_demo::data::{self, N_TEST};
use dl_embedded_demo::engine::models::{DIGITS_MLP_F32, DIGITS_MLP_F32_ARENA};
use dl_embedded_demo::train::{self, TrainConfig};
use dl_embedded_demo::{check, exit, heap, percent, stack};
use dl_layers::{checkpoint, Activation, LinearConfig, Module, Sequential};

/// The desktop checkpoint, the model the f32 blob was exported from.
static CHECKPOINT: &[u8] = include_bytes!(concat!(
    env!("DL_MODEL_DIR_RESOLVED"),
    "/digits_mlp.safetensors"
));

/// Hidden width of the desktop's digits MLP (its checkpoint's `0.weight` rows).
const HIDDEN: usize = 32;

/// Held-out rows per batch when the library's graph runs inference.
const EVAL_BATCH: usize = 8;

/// On-device training must reach at least this accuracy on the held-out digits
/// (basis points: 8000 = 80.00%).
const MIN_TRAINED_ACCURACY_BP: u32 = 8000;

#[cortex_m_rt::entry]
fn main() -> ! {
    stack::paint();
    heap::init();
    defmt::info!(
        "demo: dl-core, dl-autograd, dl-layers and dl-optim on a Cortex-M4F; heap {=usize} B",
        heap::HEAP_SIZE
    );
    let mut ok = true;

    // (1) + (2): the checkpoint through the library, and the flash path.
    match checkpoint_inference() {
        Ok(agrees) => ok &= agrees,
        Err(e) => {
            defmt::error!("checkpoint: {}", defmt::Display2Format(&e));
            ok = false;
        }
    }
    defmt::info!(
        "heap peak while loading and classifying: {=usize} B",
        heap::peak()
    );
    let model = &DIGITS_MLP_F32;
    let mut arena = Arena::<DIGITS_MLP_F32_ARENA>::new();
    let mut preds = [0u8; N_TEST];
    for (i, pred) in preds.iter_mut().enumerate() {
        match check::classify_digit(model, arena.as_mut_slice(), i) {
            Ok(p) => *pred = p,
            Err(e) => {
                dl_embedded_demo::engine::log_error("flash inference", &e);
                exit(false)
            }
        }
    }
    ok &= check::report_vs_desktop("flash engine (no heap)", &preds);

    // (3): on-device training.
    heap::reset_peak();
    match train_on_device() {
        Ok(trained_ok) => ok &= trained_ok,
        Err(e) => {
            defmt::error!("training: {}", defmt::Display2Format(&e));
            ok = false;
        }
    }

    // (4): memory.
    defmt::info!(
        "heap peak while training: {=usize} B; heap in use after: {=usize} B; arena touched: {=usize} B of {=usize} B",
        heap::peak(),
        heap::in_use(),
        heap::arena_touched(),
        heap::HEAP_SIZE
    );
    defmt::info!(
        "stack high-water: {=usize} B of {=usize} B",
        stack::high_water(),
        stack::capacity()
    );
    defmt::info!(
        "demo: {=str}",
        if ok { "all checks passed" } else { "FAILED" }
    );
    exit(ok)
}

/// Loads the safetensors checkpoint into a fresh 64-32-10 `Sequential` and classifies
/// the held-out digits with it; true when every prediction matches the desktop's.
fn checkpoint_inference() -> dl_optim::Result<bool> {
    // The initial values are overwritten by the checkpoint; the seed is irrelevant.
    let mut rng = Rng::seed_from_u64(0);
    let mut model = Sequential::new()
        .push(LinearConfig::new(data::PIXELS, HIDDEN).init(&mut rng)?)
        .push(Activation::Relu)
        .push(LinearConfig::new(HIDDEN, data::CLASSES).init(&mut rng)?);
    checkpoint::from_bytes(&mut model, CHECKPOINT, "digits_mlp.safetensors")?;
    defmt::info!(
        "checkpoint: {=usize} B of safetensors, {=usize} parameters loaded through dl_layers::checkpoint",
        CHECKPOINT.len(),
        model.num_params()
    );
    let mut preds = [0u8; N_TEST];
    train::predict_test(&model, EVAL_BATCH, &mut preds)?;
    Ok(check::report_vs_desktop(
        "checkpoint (library graph)",
        &preds,
    ))
}

/// Trains the small MLP, logging the mean loss of every pass over the training
/// subset; true when the loss fell and the accuracy reached the floor.
fn train_on_device() -> dl_optim::Result<bool> {
    let cfg = TrainConfig::default();
    defmt::info!(
        "training 64-{=usize}-10 on {=usize} digits: SGD lr {=f64} momentum {=f64}, batch {=usize}, {=usize} steps",
        cfg.hidden,
        data::N_TRAIN,
        cfg.lr,
        cfg.momentum,
        cfg.batch,
        cfg.steps
    );
    let (mut first, mut last) = (None, 0.0f32);
    let model = train::train(&cfg, |step, loss| {
        // Four decimals, in integers, so the log reads the same everywhere.
        let milli = (loss * 10_000.0 + 0.5) as u32;
        defmt::info!(
            "step {=usize}: mean loss {=u32}.{=u32:04}",
            step,
            milli / 10_000,
            milli % 10_000
        );
        first.get_or_insert(loss);
        last = loss;
    })?;
    let mut preds = [0u8; N_TEST];
    train::predict_test(&model, EVAL_BATCH, &mut preds)?;
    let correct = check::count_equal(&preds, &data::TEST_Y);
    let (w, f) = percent(correct, N_TEST);
    defmt::info!(
        "trained on device: {=usize}/{=usize} held-out digits correct ({=u32}.{=u32:02}%)",
        correct,
        N_TEST,
        w,
        f
    );
    let fell = first.is_some_and(|f| last < f / 2.0);
    if !fell {
        defmt::error!("the training loss did not halve");
    }
    let accurate = w * 100 + f >= MIN_TRAINED_ACCURACY_BP;
    if !accurate {
        defmt::error!("on-device accuracy is below the floor");
    }
    Ok(fell && accurate)
}
