//! `codegen::bake`, what the firmware's build.rs runs on each model blob, checked
//! without compiling its output: the emitted Rust is parsed back here (the statics,
//! the op set, the arena size and alignment) and compared with the blob it came
//! from. A small dense model with hand-picked weights must come back bit for bit;
//! the firmware's own committed blobs (f32 and int8 MLPs, int8 CNN, forest) must
//! have every emitted array present, byte for byte, among the blob's constants.
//! A corrupt blob or a bad name is an error.

use dl_deploy::codegen::bake;
use dl_deploy::{encode, AlignedBlob, Error, Graph, Model};

/// One `static NAME: [ty; n] = [..];` line of the generated source.
#[derive(Debug)]
struct Array {
    ty: String,
    declared_len: usize,
    /// The items as little-endian bytes of their type.
    bytes: Vec<u8>,
    items: usize,
}

fn parse_item(ty: &str, item: &str) -> Vec<u8> {
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    match ty {
        "f32" => {
            let bits = item
                .strip_prefix("f32::from_bits(")
                .and_then(|s| s.strip_suffix(')'))
                .unwrap_or_else(|| panic!("f32 item {item}"));
            hex(bits).to_le_bytes().to_vec()
        }
        "u32" => hex(item).to_le_bytes().to_vec(),
        "i8" => item.parse::<i8>().unwrap().to_le_bytes().to_vec(),
        "i32" => item.parse::<i32>().unwrap().to_le_bytes().to_vec(),
        other => panic!("unexpected element type {other}"),
    }
}

/// The `static` arrays of `src`, in order.
fn arrays(src: &str) -> Vec<Array> {
    src.lines()
        .filter_map(|l| l.strip_prefix("static "))
        .map(|l| {
            let (_, rest) = l.split_once(": [").unwrap();
            let (ty, rest) = rest.split_once("; ").unwrap();
            let (n, rest) = rest.split_once("] = [").unwrap();
            let body = rest.strip_suffix("];").unwrap();
            let items: Vec<&str> = if body.is_empty() {
                Vec::new()
            } else {
                body.split(", ").collect()
            };
            Array {
                ty: ty.to_string(),
                declared_len: n.parse().unwrap(),
                bytes: items.iter().flat_map(|i| parse_item(ty, i)).collect(),
                items: items.len(),
            }
        })
        .collect()
}

/// The value after `key` up to the next `,`, `;` or end of line (first occurrence).
fn value_after<'a>(src: &'a str, key: &str) -> &'a str {
    let at = src.find(key).unwrap_or_else(|| panic!("no `{key}`")) + key.len();
    let rest = &src[at..];
    let end = rest.find([',', ';', '\n']).unwrap_or(rest.len());
    rest[..end].trim()
}

/// Every `Region::new(offset, len)` of the source.
fn regions(src: &str) -> Vec<(usize, usize)> {
    src.split("Region::new(")
        .skip(1)
        .map(|s| {
            let (a, rest) = s.split_once(", ").unwrap();
            let (b, _) = rest.split_once(')').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// Checks what the source claims about the blob: its length, op set, arena size and
/// alignment (the engine's own reading of the blob), every region inside the arena,
/// and every array's declared length equal to its item count.
fn check_claims(src: &str, label: &str, name: &str, blob: &[u8]) {
    let aligned = AlignedBlob::new(blob);
    let model: Model<'_> = Model::from_bytes(aligned.bytes()).unwrap();
    assert_eq!(
        src.lines().next().unwrap(),
        format!("// {label}: {} B blob", blob.len())
    );
    let ops = model.op_kinds().fold(0u32, |b, k| b | k.bit());
    assert_eq!(
        value_after(src, &format!("pub const {name}_OPS: u32 = ")),
        format!("{ops:#x}")
    );
    let arena = model.arena_len();
    assert_eq!(
        value_after(src, &format!("pub const {name}_ARENA: usize = ")),
        arena.to_string()
    );
    assert_eq!(value_after(src, "arena_len: "), arena.to_string());
    let align = model.align();
    assert_eq!(value_after(src, "align: "), align.to_string());
    assert!(align.is_power_of_two(), "align {align}");
    for (offset, len) in regions(src) {
        assert!(
            offset + len <= arena,
            "region {offset}+{len} outside the {arena}-byte arena"
        );
    }
    for a in arrays(src) {
        assert_eq!(a.declared_len, a.items, "{a:?}");
    }
}

#[test]
fn a_dense_model_bakes_its_weights_bit_for_bit() {
    // Values whose decimal form would not round-trip exactly: negative zero, a
    // subnormal, the largest f32, thirds and tenths.
    let w = [1.0f32, -0.0, 0.1, -3.5, f32::MIN_POSITIVE / 4.0, 1.0 / 3.0];
    let b = [f32::MAX, -2.0f32];
    let mut g = Graph::new(&[1, 3]).unwrap();
    g.dense(g.input, &w, Some(&b), 2).unwrap();
    let (blob, _) = encode(&g).unwrap();
    let src = bake("model/tiny.dlm", &blob, "TINY").unwrap();
    check_claims(&src, "model/tiny.dlm", "TINY", &blob);
    let arrays = arrays(&src);
    // One dense layer: its weight then its bias, `[out, in]` as given.
    assert_eq!(arrays.len(), 2, "{src}");
    let le = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    assert_eq!((arrays[0].ty.as_str(), arrays[0].declared_len), ("f32", 6));
    assert_eq!(arrays[0].bytes, le(&w));
    assert_eq!((arrays[1].ty.as_str(), arrays[1].declared_len), ("f32", 2));
    assert_eq!(arrays[1].bytes, le(&b));
    assert!(src.contains("pub static TINY: dl_deploy::Program<'static, TINY_OPS>"));
}

#[test]
fn the_firmware_models_bake_arrays_found_in_their_blobs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dl-embedded-demo/model");
    let mut types = std::collections::BTreeSet::new();
    for (file, name) in [
        ("digits_mlp_f32.dlm", "DIGITS_MLP_F32"),
        ("digits_mlp_int8.dlm", "DIGITS_MLP_INT8"),
        ("mnist_cnn_int8.dlm", "MNIST_CNN_INT8"),
        ("digits_forest.dlm", "DIGITS_FOREST"),
    ] {
        let blob = std::fs::read(dir.join(file)).unwrap();
        let label = format!("model/{file}");
        let src = bake(&label, &blob, name).unwrap();
        check_claims(&src, &label, name, &blob);
        let arrays = arrays(&src);
        assert!(!arrays.is_empty(), "{file}");
        for (i, a) in arrays.iter().enumerate() {
            types.insert(a.ty.clone());
            // The blob stores constants as little-endian arrays, aligned to their
            // element size (the engine reads them in place).
            let size = a.bytes.len() / a.items.max(1);
            let found = (0..blob.len().saturating_sub(a.bytes.len()) + 1)
                .step_by(size.max(1))
                .any(|at| blob[at..at + a.bytes.len()] == a.bytes[..]);
            assert!(
                found,
                "{file}: array {i} ({} x {}) not in the blob",
                a.items, a.ty
            );
        }
    }
    // Every element type the generator writes, so every literal form was checked.
    assert_eq!(
        types.into_iter().collect::<Vec<_>>(),
        ["f32", "i32", "i8", "u32"]
    );
}

#[test]
fn bad_blobs_and_names_are_errors() {
    let mut g = Graph::new(&[1, 2]).unwrap();
    g.dense(g.input, &[1.0, 2.0], None, 1).unwrap();
    let (blob, _) = encode(&g).unwrap();
    // A flipped byte: the engine's own load error, unchanged.
    let mut bad = blob.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let aligned = AlignedBlob::new(&bad);
    let expected = Model::<'_, { dl_deploy::op::ALL }>::from_bytes(aligned.bytes()).unwrap_err();
    assert_eq!(bake("m", &bad, "M").unwrap_err(), expected);
    assert!(bake("m", &[], "M").is_err());
    assert!(bake("m", &blob[..blob.len() / 2], "M").is_err());
    // Names that are not upper-case Rust identifiers.
    for name in ["", "tiny", "1M", "M-1", "M 1"] {
        assert!(
            matches!(
                bake("m", &blob, name),
                Err(Error::InvalidParameter { name: "name", .. })
            ),
            "{name:?}"
        );
    }
    assert!(bake("m", &blob, "M_1").is_ok());
}
