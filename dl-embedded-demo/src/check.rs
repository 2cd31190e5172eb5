//! Checks shared by the binaries: classifying the held-out digits with the flash
//! model, and comparing predictions with the labels and with the desktop's.

use crate::data::{self, CLASSES, N_TEST, PIXELS};
use crate::mlp::{self, HIDDEN};
use crate::percent;

/// Predicted class of held-out sample `i` by the flash model; every buffer is on the
/// stack, the weights are read in place.
#[inline(never)]
pub fn classify_flash(i: usize) -> dl_core::Result<u8> {
    let mut x = [0.0f32; PIXELS];
    let (mut hidden, mut logits) = ([0.0f32; HIDDEN], [0.0f32; CLASSES]);
    data::scaled_image(&data::TEST_X, i, &mut x);
    mlp::DIGITS.logits(&x, &mut hidden, &mut logits)?;
    Ok(mlp::argmax(&logits) as u8)
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
