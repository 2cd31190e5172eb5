//! `checkpoint::from_bytes` on each way a checkpoint can be wrong: the broken seeds
//! of the fuzz corpus (`fuzz/common/seeds.rs`, built from valid checkpoints of the
//! harness's model), each with the exact error it must give (source, byte offset,
//! what was expected, computed here from the file's layout), and the promise that a
//! failed load leaves every parameter and buffer of the model bit for bit as it was.
//! The valid seeds load exactly (f32 into f32 bit for bit, f64 into f32 rounded once).

#[path = "../fuzz/common/harness.rs"]
mod harness;
#[path = "../fuzz/common/seeds.rs"]
mod seeds;

use dl_core::Scalar;
use dl_layers::{checkpoint, Entry, Module, Path};
use harness::{model, snapshot, MODEL_SEED};

const SRC: &str = "ckpt.safetensors";

fn seed(name: &str) -> Vec<u8> {
    seeds::seeds()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {name}"))
        .1
}

/// Loads `bytes` into a fresh model of element type `T`; on an error, checks that
/// every parameter's bits are unchanged and returns the message.
fn load<T: Scalar>(bytes: &[u8]) -> Result<Vec<(String, Vec<u64>)>, String> {
    let mut m = model::<T>(MODEL_SEED);
    let before = snapshot(&m);
    match checkpoint::from_bytes(&mut m, bytes, SRC) {
        Ok(()) => Ok(snapshot(&m)),
        Err(e) => {
            let after = snapshot(&m);
            assert_eq!(before.len(), after.len());
            for ((name, b), (_, a)) in before.iter().zip(&after) {
                assert!(a == b, "{}: failed load ({e}) changed `{name}`", T::NAME);
            }
            Err(e.to_string())
        }
    }
}

/// The error for `bytes`, the same for both element types (and the model unchanged).
fn error(bytes: &[u8]) -> String {
    let e32 = load::<f32>(bytes).expect_err("f32 load must fail");
    let e64 = load::<f64>(bytes).expect_err("f64 load must fail");
    assert_eq!(e32, e64);
    e32
}

#[test]
fn valid_checkpoints_load_exactly_and_change_every_tensor() {
    let original = snapshot(&model::<f32>(MODEL_SEED));
    // f32 file into f32 model: the source model's bits.
    let loaded = load::<f32>(&seed("valid-f32")).unwrap();
    assert_eq!(loaded, snapshot(&model::<f32>(2)));
    // Every tensor differs from the fresh model's, so the "unchanged after an error"
    // checks below would see a partial load (BatchNorm's running mean starts at 0 and
    // its running variance at 1 in both: those two are the exception).
    for ((name, a), (_, b)) in loaded.iter().zip(&original) {
        if !name.starts_with("2.") {
            assert_ne!(a, b, "{name}");
        }
    }
    // f64 file into f32 model: each value rounded to f32 once.
    let loaded = load::<f32>(&seed("valid-f64")).unwrap();
    let src = model::<f64>(3);
    let mut expected = Vec::new();
    src.visit(&mut Path::new(), &mut |name, e: Entry<'_, f64>| {
        let bits = e
            .value()
            .data()
            .iter()
            .map(|&v| (v as f32 as f64).to_bits())
            .collect();
        expected.push((name.to_string(), bits));
    });
    assert_eq!(loaded, expected);
    // f64 into f64, f32 into f64: exact.
    assert_eq!(load::<f64>(&seed("valid-f64")).unwrap(), snapshot(&src));
    assert_eq!(
        load::<f64>(&seed("valid-f32")).unwrap(),
        snapshot(&model::<f32>(2))
    );
}

#[test]
fn a_tensor_the_model_does_not_have_is_named() {
    // The model's own tensors all check out; the extra layer's two do not, and the
    // one named is the first in the file.
    let bytes = seed("unexpected-tensor");
    let first = ["4.weight", "4.bias"]
        .into_iter()
        .min_by_key(|n| seeds::data_offset(&bytes, n))
        .unwrap();
    assert_eq!(
        error(&bytes),
        format!("{SRC}: checkpoint tensor `{first}` matches nothing in the model")
    );
}

#[test]
fn a_missing_tensor_is_named() {
    // The LSTM's first tensor in the model's visiting order.
    assert_eq!(
        error(&seed("missing-tensor")),
        format!("{SRC}: checkpoint has no tensor `3.weight_ih_l0`")
    );
}

#[test]
fn a_wrong_shape_names_both_shapes() {
    assert_eq!(
        error(&seed("wrong-shape")),
        format!(
            "{SRC}: tensor `0.weight` has shape [5, 3] in the checkpoint, the model expects [4, 3]"
        )
    );
}

#[test]
fn a_shape_of_too_high_rank_names_the_tensor() {
    // Rank 7 (dl-core's shapes stop at 6) with the right element count: named as a
    // shape problem of that tensor, at its data.
    let bytes = seed("rank-7");
    let at = seeds::data_offset(&bytes, "0.weight");
    assert_eq!(
        error(&bytes),
        format!("{SRC}: at byte {at}: expected a shape of [4, 3] for `0.weight`, found [4, 3, 1, 1, 1, 1, 1]")
    );
}

#[test]
fn an_unsupported_dtype_names_the_tensor_and_its_offset() {
    let bytes = seed("dtype-i32");
    let at = seeds::data_offset(&bytes, "1.weight");
    assert_eq!(
        error(&bytes),
        format!("{SRC}: at byte {at}: expected F32 or F64 data for `1.weight`, found I32")
    );
}

#[test]
fn non_finite_values_are_refused_naming_tensor_element_and_offset() {
    // NaN at element 5 of `0.weight` (f32: 4 bytes per element).
    let bytes = seed("nan-f32");
    let at = seeds::data_offset(&bytes, "0.weight") + 5 * 4;
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte {at}: expected finite values in `0.weight`, found NaN at element 5 \
             (a checkpoint with NaN or infinite weights is refused)"
        )
    );
    // +inf at element 7 of the LSTM's `weight_hh` (f64: 8 bytes per element); it
    // comes after tensors that are fine, which must not have been written.
    let bytes = seed("inf-f64");
    let at = seeds::data_offset(&bytes, "3.weight_hh_l0") + 7 * 8;
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte {at}: expected finite values in `3.weight_hh_l0`, found inf at \
             element 7 (a checkpoint with NaN or infinite weights is refused)"
        )
    );
}

#[test]
fn f64_values_beyond_f32_range_are_refused_for_f32_and_load_for_f64() {
    let bytes = seed("f64-beyond-f32");
    let at = seeds::data_offset(&bytes, "2.running_mean") + 8;
    assert_eq!(
        load::<f32>(&bytes).unwrap_err(),
        format!(
            "{SRC}: at byte {at}: expected finite values in `2.running_mean`, found 1e300, \
             beyond f32's range, at element 1 (a checkpoint with NaN or infinite weights \
             is refused)"
        )
    );
    let loaded = load::<f64>(&bytes).unwrap();
    let (_, mean) = loaded.iter().find(|(n, _)| n == "2.running_mean").unwrap();
    assert_eq!(mean[1], 1e300f64.to_bits());
}

/// The layout of the valid f32 seed: header length `n` and total length.
fn valid_layout() -> (usize, usize) {
    let ok = seed("valid-f32");
    (seeds::header_len(&ok), ok.len())
}

#[test]
fn a_truncated_file_says_how_long_it_should_be() {
    let (n, full) = valid_layout();
    let data = full - 8 - n;
    let bytes = seed("truncated");
    let len = bytes.len();
    assert_eq!(len, full - 6);
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte {len}: expected {full} bytes ({n} of header, then {data} of tensor \
             data as the header's data_offsets say), but the source has {len} bytes \
             (truncated, or bytes after the data)"
        )
    );
    // Three bytes too many: the problem starts where the data should end.
    let bytes = seed("padded");
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte {full}: expected {full} bytes ({n} of header, then {data} of \
             tensor data as the header's data_offsets say), but the source has {} bytes \
             (truncated, or bytes after the data)",
            full + 3
        )
    );
}

#[test]
fn a_header_length_past_the_end_is_named() {
    let (n, _) = valid_layout();
    // Cut inside the header: the length field says `n`, only half of it follows.
    let bytes = seed("truncated-header");
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte 0: expected a header length of at most {} (the bytes after the \
             length field; safetensors also caps it at 100 MB), found {n}",
            bytes.len() - 8
        )
    );
    let bytes = seed("header-length-past-the-end");
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte 0: expected a header length of at most {} (the bytes after the \
             length field; safetensors also caps it at 100 MB), found {}",
            bytes.len() - 8,
            n + 1000
        )
    );
    assert_eq!(
        error(&seed("short-length-field")),
        format!(
            "{SRC}: at byte 5: expected an 8-byte header length, but the source has only 5 bytes"
        )
    );
}

#[test]
fn a_broken_header_names_the_byte() {
    // Byte 9 (the header's second) is 0xff: valid UTF-8 up to byte 9.
    assert_eq!(
        error(&seed("header-not-utf8")),
        format!("{SRC}: at byte 9: expected a UTF-8 JSON header")
    );
    // `[` instead of `{` at the header's first byte (8): JSON, but not an object.
    let e = error(&seed("header-not-json"));
    assert!(
        e.starts_with(&format!(
            "{SRC}: at byte 8: expected a safetensors JSON header (name -> dtype, shape, \
             data_offsets): invalid type: sequence"
        )),
        "{e}"
    );
    // The first tensor's data starting at 4 instead of 0: named, at the data's start.
    let bytes = seed("bad-data-offsets");
    let n = seeds::header_len(&bytes);
    let first = first_tensor(&seed("valid-f32"));
    assert_eq!(
        error(&bytes),
        format!(
            "{SRC}: at byte {}: expected tensor data laid end to end: `{first}`'s \
             data_offsets must start where the previous tensor's end",
            8 + n
        )
    );
}

/// The tensor whose data comes first in a valid file.
fn first_tensor(bytes: &[u8]) -> String {
    let names = snapshot(&model::<f32>(MODEL_SEED));
    names
        .into_iter()
        .map(|(n, _)| n)
        .min_by_key(|n| seeds::data_offset(bytes, n))
        .unwrap()
}

#[test]
fn every_broken_seed_fails_and_leaves_the_model_unchanged() {
    let broken: Vec<_> = seeds::seeds()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("valid") && n != "f64-beyond-f32")
        .collect();
    assert_eq!(broken.len(), 15);
    for (name, bytes) in &broken {
        // `error` compares every parameter's and buffer's bits before and after.
        let e = error(bytes);
        assert!(e.starts_with(SRC), "{name}: {e}");
    }
}

/// Saving is refused for the values loading refuses: a model with a NaN (or an
/// infinity) in its third tensor fails `to_bytes` naming that tensor and element, and
/// `save` writes nothing (no file, no temporary left behind).
#[test]
fn a_model_with_non_finite_values_is_not_saved() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut m = model::<f32>(MODEL_SEED);
        let mut seen = 0;
        let mut target = String::new();
        m.visit_mut(&mut Path::new(), &mut |name, e| {
            if seen == 2 {
                target = name.to_string();
                match e {
                    dl_layers::EntryMut::Param(p) => p.value_mut()[1] = bad,
                    dl_layers::EntryMut::Buffer(t) => t.data_mut()[1] = bad,
                }
            }
            seen += 1;
        });
        let e = checkpoint::to_bytes(&m).expect_err("a NaN or infinite model must not save");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot save the model: `{target}` holds {} at element 1 \
                 (a checkpoint with NaN or infinite weights would not load)",
                bad as f64
            )
        );
        let dir = std::env::temp_dir().join(format!("dl-ckpt-nonfinite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        assert!(checkpoint::save(&m, &path).is_err());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "save left a file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
