//! A CNN trained with this library (the digits CNN of `examples/shared/digits_cnn.rs`,
//! its committed checkpoint), quantized by dl-deploy and exported to `.tflite`, against
//! TensorFlow Lite Micro's interpreter running that file: the same int8 outputs as our
//! engine on every test image, and the f32 export within float rounding. Re-importing
//! the exported file gives back the blob we started from, byte for byte.
//!
//! The TFLM outputs are committed (`dl-deploy/tests/reference/tflite/roundtrip/`,
//! made by `regen.sh` there with `run_tflm.py`); they apply because the test first
//! checks that exporting today gives the committed `.tflite` bytes.

#[path = "../examples/shared/digits_cnn.rs"]
#[allow(dead_code)]
mod digits_cnn;

use digits_cnn::*;
use dl_deploy::{encode, tflite, AlignedBlob, HeapArena, Model};
use dl_layers::checkpoint;

fn read(name: &str) -> Vec<u8> {
    let path = ref_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run --release -p dl-optim --example digits_cnn_tflite` and regen.sh",
            path.display()
        )
    })
}

/// The committed model, its f32 and int8 graphs, the int8 blob, and the test set.
fn pipeline() -> (
    dl_deploy::Graph,
    dl_deploy::Graph,
    Vec<u8>,
    dl_data::Dataset<f32, usize>,
) {
    let (train, test) = digits().unwrap();
    let mut model = digits_cnn(SEED).unwrap();
    checkpoint::load(&mut model, ref_dir().join(CHECKPOINT)).unwrap();
    let (graph, int8, blob) = deploy(&model, &train).unwrap();
    (graph, int8, blob, test)
}

/// The committed inputs, checked to be the test set exactly, and the committed TFLM
/// outputs' body with their dtype.
fn inputs_and_outputs(test: &dl_data::Dataset<f32, usize>, out: &str) -> (Vec<u8>, String) {
    let inputs = read(INPUTS);
    let (dtype, shape, count, body) = read_tflref1(&inputs).expect("a tflref1 inputs file");
    assert_eq!(
        (dtype.as_str(), shape.as_slice()),
        ("float32", &[1, 8, 8, 1][..])
    );
    assert_eq!(count, test.n_samples());
    let want: Vec<u8> = test
        .features()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(body == want, "inputs.bin is not the test set");
    let outputs = read(out);
    let (dtype, shape, n, body) = read_tflref1(&outputs).expect("a tflref1 outputs file");
    assert_eq!((shape.as_slice(), n), (&[1, CLASSES][..], count));
    (body.to_vec(), dtype)
}

#[test]
fn int8_tflite_runs_on_tflite_micro_as_on_our_engine() {
    let (_, int8, blob, test) = pipeline();
    let file = tflite::export(&int8).expect("the int8 graph exports");
    assert!(
        file == read(INT8_TFLITE),
        "the export is not the committed {INT8_TFLITE} (rerun the example and regen.sh)"
    );
    let (tflm, dtype) = inputs_and_outputs(&test, INT8_OUT);
    assert_eq!(dtype, "int8");

    let aligned = AlignedBlob::new(&blob);
    let model: Model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut arena = HeapArena::new(model.arena_len());
    let mut ours = vec![0i8; CLASSES];
    let mut differ = Vec::new();
    for (k, (x, want)) in test
        .features()
        .chunks_exact(IMAGE)
        .zip(tflm.chunks_exact(CLASSES))
        .enumerate()
    {
        model.run(arena.bytes(), x, &mut ours).unwrap();
        let want: Vec<i8> = want.iter().map(|&b| b as i8).collect();
        if ours != want {
            differ.push((k, ours.clone(), want));
        }
    }
    println!(
        "{} test images: int8 outputs equal to TensorFlow Lite Micro's on {}",
        test.n_samples(),
        test.n_samples() - differ.len()
    );
    // No tolerance: both run TensorFlow Lite's integer arithmetic on the same numbers.
    assert!(
        differ.is_empty(),
        "first differences (image, ours, TFLM): {:?}",
        &differ[..differ.len().min(5)]
    );
}

#[test]
fn int8_in_int8_out_tflite_runs_on_tflite_micro_as_on_our_engine() {
    // The firmware's form: no QUANTIZE, the caller passes int8 pixels.
    let (_, int8, _, test) = pipeline();
    let io = int8_io(&int8);
    let file = tflite::export(&io).expect("the int8 graph exports");
    assert!(
        file == read(INT8_IO_TFLITE),
        "the export is not the committed {INT8_IO_TFLITE} (rerun the example and regen.sh)"
    );
    let q = io.tensors[io.input].quant.unwrap();
    let x = quantize_input(q, test.features());
    let inputs = read(INPUTS_INT8);
    let (dtype, _, count, body) = read_tflref1(&inputs).unwrap();
    assert_eq!((dtype.as_str(), count), ("int8", test.n_samples()));
    assert!(body.iter().zip(&x).all(|(&b, &v)| b as i8 == v) && body.len() == x.len());
    let outputs = read(INT8_IO_OUT);
    let (dtype, _, n, tflm) = read_tflref1(&outputs).unwrap();
    assert_eq!((dtype.as_str(), n * CLASSES), ("int8", tflm.len()));
    // TFLM's QUANTIZE of the float images gave the same int8 outputs as these int8
    // images, so `quantize_input` is TFLM's input quantization on every image.
    let with_quantize = read(INT8_OUT);
    assert!(read_tflref1(&with_quantize).unwrap().3 == tflm);

    let (blob, _) = encode(&io).unwrap();
    let aligned = AlignedBlob::new(&blob);
    let model: Model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut arena = HeapArena::new(model.arena_len());
    let mut ours = vec![0i8; CLASSES];
    let mut equal = 0;
    for (x, want) in x.chunks_exact(IMAGE).zip(tflm.chunks_exact(CLASSES)) {
        model.run(arena.bytes(), x, &mut ours).unwrap();
        equal += usize::from(ours.iter().zip(want).all(|(&a, &b)| a == b as i8));
    }
    println!("{n} int8 test images: outputs equal to TensorFlow Lite Micro's on {equal}");
    // No tolerance: integer arithmetic on the same numbers.
    assert_eq!(equal, n);
    let back = tflite::import(&file).unwrap();
    assert!(encode(&back).unwrap().0 == blob);
}

#[test]
fn reimporting_the_export_gives_the_same_blob() {
    let (_, int8, blob, _) = pipeline();
    let back = tflite::import(&tflite::export(&int8).unwrap()).expect("the export imports");
    // The graphs agree, but for the flattened tensor's CHW note, which only the
    // builder uses (to reorder the dense layer's columns) and the file has no place for.
    let mut plain = int8.clone();
    for t in &mut plain.tensors {
        t.chw = None;
    }
    assert_eq!(back, plain);
    let (again, _) = encode(&back).unwrap();
    assert!(
        again == blob,
        "import(export(g)) encodes to other bytes than g"
    );
}

#[test]
fn f32_tflite_runs_on_tflite_micro_close_to_our_engine() {
    let (graph, _, _, test) = pipeline();
    let file = tflite::export(&graph).expect("the f32 graph exports");
    assert!(
        file == read(F32_TFLITE),
        "the export is not the committed {F32_TFLITE} (rerun the example and regen.sh)"
    );
    let back = tflite::import(&file).unwrap();
    assert!(encode(&back).unwrap().0 == encode(&graph).unwrap().0);
    let (tflm, dtype) = inputs_and_outputs(&test, F32_OUT);
    assert_eq!(dtype, "float32");
    let tflm: Vec<f32> = tflm
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();

    let (bytes, plan) = encode(&graph).unwrap();
    let aligned = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(aligned.bytes()).unwrap();
    let mut arena = HeapArena::new(plan.arena_len);
    let mut ours = vec![0f32; CLASSES];
    let mut worst = 0f32;
    let mut same_class = 0;
    for (x, want) in test
        .features()
        .chunks_exact(IMAGE)
        .zip(tflm.chunks_exact(CLASSES))
    {
        model.run(arena.bytes(), x, &mut ours).unwrap();
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(want) {
            worst = worst.max((a - b).abs() / scale);
        }
        let argmax = |v: &[f32]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        same_class += usize::from(argmax(&ours) == argmax(want));
    }
    println!(
        "{} test images: largest f32 difference to TensorFlow Lite Micro {worst:e} of the largest logit; same class on {same_class}",
        test.n_samples()
    );
    // Both compute every output in f32 from the same weights, but sum the products in
    // another order (our kernels block and vectorize, TFLM's reference kernels loop),
    // so each sum of at most 72 products (64 for the dense layer) may differ by a few
    // f32 roundings of its partial sums, carried through four layers. Measured: 4e-7
    // of the largest logit (about 3 ulps); the bound, 2e-6, is about 17 ulps.
    assert!(worst <= 2e-6, "largest relative difference {worst:e}");
}
