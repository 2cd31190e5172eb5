//! A small CNN trained on the MNIST subset on the desktop and quantized to int8
//! (TensorFlow Lite's spec), from flash through the library's deployment engine, on
//! 100 test images stored in flash: its int8 output bytes must equal the host
//! engine's for every image. No heap.
#![no_std]
#![no_main]

use dl_deploy::Arena;
use dl_embedded_demo::data::{self, CLASSES, MNIST_PIXELS, N_MNIST};
use dl_embedded_demo::engine::argmax;
use dl_embedded_demo::engine::models::{MNIST_CNN_INT8, MNIST_CNN_INT8_ARENA};
use dl_embedded_demo::{check, exit};

/// Pixels are bytes 0..=255; the model's input is `pixel / 255`, as on the desktop.
const PIXEL_SCALE: f32 = 1.0 / 255.0;

#[cortex_m_rt::entry]
fn main() -> ! {
    let ticks = dl_embedded_demo::start();
    let model = &MNIST_CNN_INT8;
    let mut arena = Arena::<MNIST_CNN_INT8_ARENA>::new();
    defmt::info!(
        "cnn_int8: int8 MNIST CNN compiled from its blob, {=usize} ops, arena {=usize} B, no heap",
        model.ops.len(),
        model.arena_len
    );
    let (mut differ, mut correct) = (0, 0);
    let elapsed = check::timed(&ticks, N_MNIST, |i| {
        let arena = arena.as_mut_slice();
        let image = &data::MNIST_X[i * MNIST_PIXELS..(i + 1) * MNIST_PIXELS];
        for (x, &p) in model.input_mut::<f32>(arena)?.iter_mut().zip(image) {
            *x = p as f32 * PIXEL_SCALE;
        }
        model.invoke(arena)?;
        let out = model.output_ref::<i8>(arena)?;
        let host = &data::CNN_INT8_OUT[i * CLASSES..(i + 1) * CLASSES];
        differ += usize::from(out.iter().zip(host).any(|(&a, &b)| a as u8 != b));
        correct += usize::from(argmax(out) == data::MNIST_Y[i] as usize);
        Ok(())
    });
    defmt::info!(
        "int8 CNN: {=usize} of {=usize} outputs differ from the host's int8 bytes; {=usize}/{=usize} test images correct",
        differ,
        N_MNIST,
        correct,
        N_MNIST
    );
    check::report_cost(&ticks, elapsed, N_MNIST);
    exit(differ == 0)
}
