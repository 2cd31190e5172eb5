//! The engine on small graphs whose outputs are computed by hand here, the arena
//! plan, and every error a caller or a damaged blob can cause.

use dl_deploy::op::{op_set, Unary};
use dl_deploy::{
    encode, quantize, AlignedBlob, Error, Graph, Model, OpKind, PoolParams, QuantizeConfig,
};

fn run_f32(g: &Graph, x: &[f32]) -> Vec<f32> {
    let (bytes, plan) = encode(g).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(blob.bytes()).unwrap();
    assert_eq!(model.arena_len(), plan.arena_len);
    let mut arena = vec![0u32; plan.arena_len.div_ceil(4)];
    let mut y = vec![0.0f32; model.output().numel()];
    model
        .run(bytemuck::cast_slice_mut(&mut arena), x, &mut y)
        .unwrap();
    y
}

/// The 2-3-2 network: h = relu(x W1^T + b1), y = h W2^T.
fn mlp() -> Graph {
    let mut g = Graph::new(&[1, 2]).unwrap();
    let h = g
        .dense(
            g.input,
            &[1.0, -1.0, 0.5, 0.5, -1.0, 1.0],
            Some(&[0.0, 0.1, 0.0]),
            3,
        )
        .unwrap();
    let h = g.unary(h, Unary::Relu).unwrap();
    g.dense(h, &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], None, 2)
        .unwrap();
    g
}

#[test]
fn dense_relu_dense_by_hand() {
    // x = [1, 2]: x W1^T + b1 = [-1, 1.6, 1], relu = [0, 1.6, 1];
    // y = [0 - 1, 0.8 + 0.5] = [-1, 1.3].
    let y = run_f32(&mlp(), &[1.0, 2.0]);
    assert_eq!(y, [-1.0, 0.5 * 1.6 + 0.5 * 1.0]);
}

#[test]
fn relu_fuses_and_arena_reuses_dead_buffers() {
    let g = mlp();
    assert_eq!(
        g.nodes.len(),
        2,
        "the ReLU fuses into the first dense layer"
    );
    let (_, plan) = encode(&g).unwrap();
    // Live sets: {x 8 B, h 12 B} then {h 12 B, y 8 B}: the output reuses x's bytes.
    assert_eq!(plan.peak_live, 20);
    assert_eq!(plan.arena_len, 20);
    assert_eq!(plan.offsets[g.output], plan.offsets[g.input]);
}

#[test]
fn conv_pool_mean_add_by_hand() {
    // One 3x3 single-channel image, NCHW [1, 1, 3, 3] (NHWC is the same here).
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut g = Graph::new(&[1, 1, 3, 3]).unwrap();
    // 2x2 kernel of ones, 2 output channels (second one doubled), stride 1, no pad.
    let w = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0];
    let params = dl_deploy::ConvParams {
        kernel: (2, 2),
        stride: (1, 1),
        padding: (0, 0),
        dilation: (1, 1),
        groups: 1,
    };
    let c = g
        .conv2d(g.input, &w, Some(&[0.0, -30.0]), 2, params)
        .unwrap();
    let c = g.unary(c, Unary::Relu).unwrap();
    // Windows sum to 12, 16, 24, 28; channel 1: 2*sum - 30 = -6, 2, 18, 26 -> relu.
    let p = g
        .max_pool(
            c,
            PoolParams {
                kernel: (2, 2),
                stride: (1, 1),
                padding: (0, 0),
            },
        )
        .unwrap();
    let m = g.mean(c).unwrap();
    let pf = g.flatten(p).unwrap();
    g.add(pf, m).unwrap();
    let y = run_f32(&g, &x);
    // max: [28, 26]; mean: [(12+16+24+28)/4, (0+2+18+26)/4] = [20, 11.5].
    assert_eq!(y, [48.0, 37.5]);
}

#[test]
fn flatten_after_conv_keeps_pytorchs_feature_order() {
    // A 1x1 convolution to 2 channels on a 1x2 image, then dense over the flattened
    // [c, h, w] features: PyTorch's order is (c0 w0, c0 w1, c1 w0, c1 w1).
    let mut g = Graph::new(&[1, 1, 1, 2]).unwrap();
    let params = dl_deploy::ConvParams {
        kernel: (1, 1),
        stride: (1, 1),
        padding: (0, 0),
        dilation: (1, 1),
        groups: 1,
    };
    let c = g.conv2d(g.input, &[1.0, 10.0], None, 2, params).unwrap();
    let f = g.flatten(c).unwrap();
    g.dense(f, &[1.0, 2.0, 3.0, 4.0], None, 1).unwrap();
    // x = [1, 2]: channels c0 = [1, 2], c1 = [10, 20]; y = 1*1 + 2*2 + 3*10 + 4*20.
    assert_eq!(run_f32(&g, &[1.0, 2.0]), [115.0]);
}

#[test]
fn int8_mlp_tracks_f32() {
    let g = mlp();
    let calibration: Vec<f32> = (0..200)
        .map(|i| ((i * 37) % 101) as f32 / 25.0 - 2.0)
        .collect();
    let q = quantize(&g, &calibration, QuantizeConfig { int8_output: false }).unwrap();
    for x in calibration.chunks(2) {
        let want = run_f32(&g, x);
        let got = run_f32(&q, x);
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() < 0.05, "{x:?}: f32 {want:?}, int8 {got:?}");
        }
    }
}

fn blob_of(g: &Graph) -> Vec<u8> {
    encode(g).unwrap().0
}

#[test]
fn every_truncation_and_bit_flip_is_a_named_error() {
    let bytes = blob_of(&mlp());
    for len in 0..bytes.len() {
        let b = AlignedBlob::new(&bytes[..len]);
        let e = <Model>::from_bytes(b.bytes()).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. }),
            "truncated to {len}: {e}"
        );
    }
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.clone();
            m[i] ^= 1 << bit;
            let b = AlignedBlob::new(&m);
            let e = <Model>::from_bytes(b.bytes()).unwrap_err();
            assert!(
                matches!(e, Error::Corrupt { .. }),
                "byte {i} bit {bit}: {e}"
            );
        }
    }
}

#[test]
fn damage_behind_a_valid_crc_is_caught_by_the_structure_checks() {
    // Rewrite the CRC after each change, so only the structural checks stand
    // between the damage and the kernels: loading fails with a named error, or the
    // model runs without panicking.
    let bytes = blob_of(&mlp());
    for i in 12..bytes.len() {
        for v in [0u8, 1, 0x7f, 0x80, 0xff] {
            let mut m = bytes.clone();
            m[i] = v;
            let crc = dl_deploy::format::crc32(&m[12..]);
            m[8..12].copy_from_slice(&crc.to_le_bytes());
            let b = AlignedBlob::new(&m);
            if let Ok(model) = <Model>::from_bytes(b.bytes()) {
                let mut arena = vec![0u32; model.arena_len().div_ceil(4)];
                let x = vec![0.5f32; model.input().numel()];
                let mut y = vec![0.0f32; model.output().numel()];
                let _ = model.run(bytemuck::cast_slice_mut(&mut arena), &x, &mut y);
            }
        }
    }
}

#[test]
fn callers_mistakes_are_named() {
    let bytes = blob_of(&mlp());
    let b = AlignedBlob::new(&bytes);
    let model: Model = Model::from_bytes(b.bytes()).unwrap();
    let mut arena = vec![0u32; 16];
    let mut y = [0.0f32; 2];
    let small = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut arena)[..8];
    assert_eq!(
        model.run(small, &[1.0f32, 2.0], &mut y),
        Err(Error::ArenaTooSmall { needed: 20, got: 8 })
    );
    let arena_bytes = bytemuck::cast_slice_mut::<u32, u8>(&mut arena);
    let e = model
        .run(&mut arena_bytes[1..], &[1.0f32, 2.0], &mut y)
        .unwrap_err();
    assert_eq!(
        e,
        Error::ArenaMisaligned {
            align: 4,
            misalignment: 1
        }
    );
    let e = model
        .run(arena_bytes, &[1.0f32, 2.0, 3.0], &mut y)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("input: the model takes 2 f32 values, got 3 f32"),
        "{e}"
    );
    let e = model.run(arena_bytes, &[1i8, 2], &mut y).unwrap_err();
    assert!(matches!(e, Error::Buffer { given: "i8", .. }), "{e}");
    let e = model
        .run(arena_bytes, &[1.0f32, 2.0], &mut [0.0f32; 3])
        .unwrap_err();
    assert!(matches!(e, Error::Buffer { what: "output", .. }), "{e}");
}

#[test]
fn an_op_left_out_of_the_build_is_refused_at_load() {
    let bytes = blob_of(&mlp());
    let b = AlignedBlob::new(&bytes);
    const ONLY_QUANTIZE: u32 = op_set(&[OpKind::Quantize]);
    let e = Model::<'_, ONLY_QUANTIZE>::from_bytes(b.bytes()).unwrap_err();
    assert_eq!(
        e,
        Error::OpNotInBuild {
            index: 0,
            op: "Dense(f32)"
        }
    );
    const DENSE: u32 = op_set(&[OpKind::DenseF32]);
    assert!(Model::<'_, DENSE>::from_bytes(b.bytes()).is_ok());
}

#[test]
fn a_misaligned_blob_is_refused() {
    let bytes = blob_of(&mlp());
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let b = AlignedBlob::new(&shifted);
    let e = <Model>::from_bytes(&b.bytes()[1..]).unwrap_err();
    assert!(e.to_string().contains("4-byte boundary"), "{e}");
}
