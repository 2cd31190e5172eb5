//! Small models written with the generated builder: the float path checked against
//! hand-computed outputs, and each kind of bad model against its named error.

use super::schema::tflite as fb;
use crate::{encode, tflite::import, AlignedBlob, Error, HeapArena, Model};
use alloc::vec;
use alloc::vec::Vec;
use flatbuffers::FlatBufferBuilder;

/// A tensor of a test model: shape, type, constant data (little-endian bytes),
/// scales and zero points.
struct T {
    shape: Vec<i32>,
    ty: fb::TensorType,
    data: Option<Vec<u8>>,
    quant: Option<(Vec<f32>, Vec<i64>, i32)>,
}

/// An int8 activation with one scale and zero point.
fn q_act(shape: &[i32], scale: f32, zero_point: i64) -> T {
    T {
        shape: shape.to_vec(),
        ty: fb::TensorType::INT8,
        data: None,
        quant: Some((vec![scale], vec![zero_point], 0)),
    }
}

/// Constant int8 weights with symmetric scales along `axis`.
fn i8s(shape: &[i32], scales: &[f32], axis: i32, v: &[i8]) -> T {
    T {
        shape: shape.to_vec(),
        ty: fb::TensorType::INT8,
        data: Some(v.iter().map(|&x| x as u8).collect()),
        quant: Some((scales.to_vec(), vec![0; scales.len()], axis)),
    }
}

fn i32s(shape: &[i32], v: &[i32]) -> T {
    T {
        shape: shape.to_vec(),
        ty: fb::TensorType::INT32,
        data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        quant: None,
    }
}

fn act(shape: &[i32]) -> T {
    T {
        shape: shape.to_vec(),
        ty: fb::TensorType::FLOAT32,
        data: None,
        quant: None,
    }
}

fn f32s(shape: &[i32], v: &[f32]) -> T {
    T {
        shape: shape.to_vec(),
        ty: fb::TensorType::FLOAT32,
        data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        quant: None,
    }
}

/// The options of an operator of a test model.
enum Opt {
    None,
    Fc(fb::ActivationFunctionType),
    Depthwise {
        padding: fb::Padding,
        multiplier: i32,
    },
    /// `CONV_2D` with stride 2 and a fused ReLU6.
    Conv(fb::Padding),
    /// A 2-D pooling: padding, window, stride.
    Pool(fb::Padding, i32, i32),
    Mean {
        keep_dims: bool,
    },
    Softmax,
    Add,
}

/// A one-subgraph model: `ops` as `(builtin, inputs, outputs, options)`, tensor 0
/// the input and `output` the output.
fn model(
    tensors: &[T],
    ops: &[(fb::BuiltinOperator, &[i32], &[i32], Opt)],
    output: i32,
) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let mut buffers = vec![fb::Buffer::create(&mut b, &fb::BufferArgs::default())];
    let mut ts = Vec::new();
    for t in tensors {
        let buffer = match &t.data {
            Some(d) => {
                let data = Some(b.create_vector(d));
                buffers.push(fb::Buffer::create(
                    &mut b,
                    &fb::BufferArgs {
                        data,
                        ..Default::default()
                    },
                ));
                buffers.len() as u32 - 1
            }
            None => 0,
        };
        let shape = Some(b.create_vector(&t.shape));
        let quantization = t.quant.as_ref().map(|(scale, zp, axis)| {
            let args = fb::QuantizationParametersArgs {
                scale: Some(b.create_vector(scale)),
                zero_point: Some(b.create_vector(zp)),
                quantized_dimension: *axis,
                ..Default::default()
            };
            fb::QuantizationParameters::create(&mut b, &args)
        });
        ts.push(fb::Tensor::create(
            &mut b,
            &fb::TensorArgs {
                shape,
                type_: t.ty,
                buffer,
                quantization,
                ..Default::default()
            },
        ));
    }
    let mut codes = Vec::new();
    let mut operators = Vec::new();
    for (i, (code, ins, outs, opt)) in ops.iter().enumerate() {
        codes.push(fb::OperatorCode::create(
            &mut b,
            &fb::OperatorCodeArgs {
                deprecated_builtin_code: code.0.min(127) as i8,
                builtin_code: *code,
                version: 1,
                ..Default::default()
            },
        ));
        let (ty, options) = match *opt {
            Opt::None => (fb::BuiltinOptions::NONE, None),
            Opt::Fc(f) => {
                let o = fb::FullyConnectedOptions::create(
                    &mut b,
                    &fb::FullyConnectedOptionsArgs {
                        fused_activation_function: f,
                        ..Default::default()
                    },
                );
                (
                    fb::BuiltinOptions::FullyConnectedOptions,
                    Some(o.as_union_value()),
                )
            }
            Opt::Depthwise {
                padding,
                multiplier,
            } => {
                let o = fb::DepthwiseConv2DOptions::create(
                    &mut b,
                    &fb::DepthwiseConv2DOptionsArgs {
                        padding,
                        stride_w: 1,
                        stride_h: 1,
                        depth_multiplier: multiplier,
                        dilation_w_factor: 1,
                        dilation_h_factor: 1,
                        ..Default::default()
                    },
                );
                (
                    fb::BuiltinOptions::DepthwiseConv2DOptions,
                    Some(o.as_union_value()),
                )
            }
            Opt::Conv(padding) => {
                let o = fb::Conv2DOptions::create(
                    &mut b,
                    &fb::Conv2DOptionsArgs {
                        padding,
                        stride_w: 2,
                        stride_h: 2,
                        fused_activation_function: fb::ActivationFunctionType::RELU6,
                        dilation_w_factor: 1,
                        dilation_h_factor: 1,
                        ..Default::default()
                    },
                );
                (fb::BuiltinOptions::Conv2DOptions, Some(o.as_union_value()))
            }
            Opt::Pool(padding, k, stride) => {
                let o = fb::Pool2DOptions::create(
                    &mut b,
                    &fb::Pool2DOptionsArgs {
                        padding,
                        stride_w: stride,
                        stride_h: stride,
                        filter_width: k,
                        filter_height: k,
                        ..Default::default()
                    },
                );
                (fb::BuiltinOptions::Pool2DOptions, Some(o.as_union_value()))
            }
            Opt::Mean { keep_dims } => {
                let o = fb::ReducerOptions::create(&mut b, &fb::ReducerOptionsArgs { keep_dims });
                (fb::BuiltinOptions::ReducerOptions, Some(o.as_union_value()))
            }
            Opt::Softmax => {
                let o = fb::SoftmaxOptions::create(&mut b, &fb::SoftmaxOptionsArgs { beta: 1.0 });
                (fb::BuiltinOptions::SoftmaxOptions, Some(o.as_union_value()))
            }
            Opt::Add => {
                let o = fb::AddOptions::create(&mut b, &fb::AddOptionsArgs::default());
                (fb::BuiltinOptions::AddOptions, Some(o.as_union_value()))
            }
        };
        let (inputs, outputs) = (Some(b.create_vector(ins)), Some(b.create_vector(outs)));
        operators.push(fb::Operator::create(
            &mut b,
            &fb::OperatorArgs {
                opcode_index: i as u32,
                inputs,
                outputs,
                builtin_options_type: ty,
                builtin_options: options,
                ..Default::default()
            },
        ));
    }
    let sg = fb::SubGraphArgs {
        tensors: Some(b.create_vector(&ts)),
        inputs: Some(b.create_vector(&[0i32])),
        outputs: Some(b.create_vector(&[output])),
        operators: Some(b.create_vector(&operators)),
        ..Default::default()
    };
    let sg = fb::SubGraph::create(&mut b, &sg);
    let args = fb::ModelArgs {
        version: 3,
        operator_codes: Some(b.create_vector(&codes)),
        subgraphs: Some(b.create_vector(&[sg])),
        buffers: Some(b.create_vector(&buffers)),
        ..Default::default()
    };
    let m = fb::Model::create(&mut b, &args);
    fb::finish_model_buffer(&mut b, m);
    b.finished_data().to_vec()
}

/// Imports, encodes and runs a float model on `x`.
fn run(bytes: &[u8], x: &[f32], n_out: usize) -> Result<Vec<f32>, Error> {
    let g = import(bytes)?;
    let (blob, plan) = encode(&g)?;
    let blob = AlignedBlob::new(&blob);
    let model: Model = Model::from_bytes(blob.bytes())?;
    let mut arena = HeapArena::new(plan.arena_len);
    let mut y = vec![0.0; n_out];
    model.run(arena.bytes(), x, &mut y)?;
    Ok(y)
}

/// `y = relu(x W^T + b)`, `W = [[1, 2], [3, -4]]`, `b = [0.5, -1]`.
fn dense_model(out_shape: &[i32]) -> Vec<u8> {
    model(
        &[
            act(&[1, 2]),
            f32s(&[2, 2], &[1.0, 2.0, 3.0, -4.0]),
            f32s(&[2], &[0.5, -1.0]),
            act(out_shape),
        ],
        &[(
            fb::BuiltinOperator::FULLY_CONNECTED,
            &[0, 1, 2],
            &[3],
            Opt::Fc(fb::ActivationFunctionType::RELU),
        )],
        3,
    )
}

#[test]
fn float_dense_with_fused_relu() {
    // x = [1, 1]: [1 + 2 + 0.5, relu(3 - 4 - 1)] = [3.5, 0]; x = [2, -1]:
    // [2 - 2 + 0.5, 6 + 4 - 1] = [0.5, 9]. Small integers and halves: exact in f32.
    let m = dense_model(&[1, 2]);
    assert_eq!(run(&m, &[1.0, 1.0], 2), Ok(vec![3.5, 0.0]));
    assert_eq!(run(&m, &[2.0, -1.0], 2), Ok(vec![0.5, 9.0]));
}

#[test]
fn float_depthwise_same_padding_with_odd_total() {
    // Input 3x3 (1..9), one channel, a 2x2 filter with multiplier 2, stride 1, SAME:
    // out 3x3, total padding 1, all of it at the bottom/right. Filter [1, 2, 2, 2]
    // (1HWO): channel 0 sums the window, channel 1 takes its top-left tap (so it
    // is the input) plus a bias of 0.5.
    let m = model(
        &[
            act(&[1, 3, 3, 1]),
            f32s(&[1, 2, 2, 2], &[1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]),
            f32s(&[2], &[0.0, 0.5]),
            act(&[1, 3, 3, 2]),
        ],
        &[(
            fb::BuiltinOperator::DEPTHWISE_CONV_2D,
            &[0, 1, 2],
            &[3],
            Opt::Depthwise {
                padding: fb::Padding::SAME,
                multiplier: 2,
            },
        )],
        3,
    );
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    // Window sums of [[1,2,3],[4,5,6],[7,8,9]] with zeros past the bottom/right.
    let sums = [12.0, 16.0, 9.0, 24.0, 28.0, 15.0, 15.0, 17.0, 9.0];
    let want: Vec<f32> = sums
        .iter()
        .zip(&x)
        .flat_map(|(&s, &v)| [s, v + 0.5])
        .collect();
    assert_eq!(run(&m, &x, 18), Ok(want));
}

#[test]
fn unsupported_operator_is_named_with_its_index() {
    let m = model(
        &[act(&[1, 2]), act(&[1, 2]), act(&[1, 2])],
        &[
            (fb::BuiltinOperator::RELU, &[0], &[1], Opt::None),
            (fb::BuiltinOperator::MUL, &[1, 0], &[2], Opt::None),
        ],
        2,
    );
    assert!(matches!(
        import(&m),
        Err(Error::TfLite {
            op: Some(1),
            name: "MUL",
            ..
        })
    ));
    // A builtin past the deprecated byte's range is read from the new field.
    let m = model(
        &[act(&[1, 2]), act(&[1, 2])],
        &[(fb::BuiltinOperator::GELU, &[0], &[1], Opt::None)],
        1,
    );
    assert!(matches!(
        import(&m),
        Err(Error::TfLite {
            op: Some(0),
            name: "GELU",
            ..
        })
    ));
}

#[test]
fn unsupported_element_type_is_named() {
    let mut input = act(&[1, 2]);
    input.ty = fb::TensorType::INT16;
    let m = model(
        &[input, act(&[1, 2])],
        &[(fb::BuiltinOperator::RELU, &[0], &[1], Opt::None)],
        1,
    );
    match import(&m) {
        Err(Error::TfLite { why, .. }) => assert!(why.contains("INT16"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn output_shape_that_disagrees_with_the_op() {
    // Two weight rows make two outputs; the file says three.
    assert!(matches!(
        import(&dense_model(&[1, 3])),
        Err(Error::TfLite {
            op: Some(0),
            name: "FULLY_CONNECTED",
            why: "an output shape that disagrees with the op's"
        })
    ));
}

#[test]
fn weights_whose_buffer_is_short() {
    let mut tensors = vec![act(&[1, 2]), f32s(&[2, 2], &[1.0, 2.0, 3.0]), act(&[1, 2])];
    tensors[1].shape = vec![2, 2];
    let m = model(
        &tensors,
        &[(
            fb::BuiltinOperator::FULLY_CONNECTED,
            &[0, 1, -1],
            &[2],
            Opt::Fc(fb::ActivationFunctionType::NONE),
        )],
        2,
    );
    assert!(matches!(import(&m), Err(Error::TfLite { op: Some(0), .. })));
}

#[test]
fn tensor_index_outside_the_subgraph() {
    let m = model(
        &[act(&[1, 2]), act(&[1, 2])],
        &[(fb::BuiltinOperator::RELU, &[7], &[1], Opt::None)],
        1,
    );
    assert!(matches!(
        import(&m),
        Err(Error::TfLite {
            op: Some(0),
            name: "RELU",
            why: "a tensor index outside the subgraph's tensors"
        })
    ));
}

#[test]
fn file_without_the_identifier() {
    let mut m = dense_model(&[1, 2]);
    m[4..8].copy_from_slice(b"XXXX");
    assert!(matches!(import(&m), Err(Error::Corrupt { offset: 4, .. })));
}

/// A file that is not a FlatBuffer leads the verifier through offsets made of
/// arbitrary bytes; the error must still name a byte inside the file.
#[test]
fn text_file_errors_name_a_byte_inside_it() {
    for text in [
        &include_bytes!("../../Cargo.toml")[..],
        b"[package]\nname = \"x\"\n\n\n\n\n",
        b"hello, this is not a model at all",
    ] {
        match import(text) {
            Err(Error::Corrupt { offset, .. }) => assert!(
                offset <= text.len(),
                "offset {offset} is outside the {}-byte file",
                text.len()
            ),
            other => panic!("a text file must be Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn float_io_around_an_int8_dense_layer() {
    // QUANTIZE (scale 0.5, zero point -1), FULLY_CONNECTED int8 (weights [[2, -1]]
    // at scale 0.25 per tensor, bias 4 at scale 0.5 * 0.25, output scale 0.25 and
    // zero point 3), DEQUANTIZE. For x = [1, 0.5]: q = [round(2) - 1, round(1) - 1]
    // = [1, 0], so x - zp = [2, 1]; acc = 2*2 - 1*1 + 4 = 7; times the multiplier
    // 0.5 * 0.25 / 0.25 = 0.5 gives 3.5, which TFLite rounds away from zero to 4;
    // plus 3 is 7; dequantized 0.25 * (7 - 3) = 1.0 (the real 0.875 lies halfway
    // between steps, so this also pins the rounding direction).
    // For x = [0.3, 0.8]: q = [0, 1], x - zp = [1, 2]; acc = 2 - 2 + 4 = 4 -> 2 -> 5;
    // 0.25 * 2 = 0.5.
    let m = model(
        &[
            act(&[1, 2]),
            q_act(&[1, 2], 0.5, -1),
            i8s(&[1, 2], &[0.25], 0, &[2, -1]),
            i32s(&[1], &[4]),
            q_act(&[1, 1], 0.25, 3),
            act(&[1, 1]),
        ],
        &[
            (fb::BuiltinOperator::QUANTIZE, &[0], &[1], Opt::None),
            (
                fb::BuiltinOperator::FULLY_CONNECTED,
                &[1, 2, 3],
                &[4],
                Opt::Fc(fb::ActivationFunctionType::NONE),
            ),
            (fb::BuiltinOperator::DEQUANTIZE, &[4], &[5], Opt::None),
        ],
        5,
    );
    assert_eq!(run(&m, &[1.0, 0.5], 1), Ok(vec![1.0]));
    assert_eq!(run(&m, &[0.3, 0.8], 1), Ok(vec![0.5]));
}

/// The deterministic int8 pattern standing for random values: `((k * 73 + 19) mod
/// 255) - 127`, all of `[-127, 127]` in a scrambled order.
fn pattern(n: usize, salt: usize) -> Vec<i8> {
    (0..n)
        .map(|k| (((k + salt) * 73 + 19) % 255) as i32 - 127)
        .map(|v| v as i8)
        .collect()
}

/// Models of the other int8 ops, where the import decides layouts, padding and
/// quantization parameters: `(name, file)`, committed beside
/// [`activation_models`]' and checked the same way (their input is the pattern
/// `((i * 37 + 11) mod 256) - 128`, see `make_reference.py`).
fn layer_models() -> Vec<(&'static str, Vec<u8>)> {
    use fb::BuiltinOperator as B;
    let bias = |n: usize| -> Vec<i32> { (0..n as i32).map(|o| o * 700 - 1500).collect() };
    let scales = |n: usize| -> Vec<f32> { (0..n).map(|o| 0.004 + 0.003 * o as f32).collect() };
    vec![
        // 6x7 input, 3x3 filter, stride 2, SAME: 3x4 output; total padding 1 on the
        // height (all at the bottom), 2 on the width; fused ReLU6.
        (
            "conv_same_stride2",
            model(
                &[
                    q_act(&[1, 6, 7, 3], 0.05, 3),
                    i8s(&[4, 3, 3, 3], &scales(4), 0, &pattern(108, 0)),
                    i32s(&[4], &bias(4)),
                    q_act(&[1, 3, 4, 4], 0.04, -100),
                ],
                &[(B::CONV_2D, &[0, 1, 2], &[3], Opt::Conv(fb::Padding::SAME))],
                3,
            ),
        ),
        // 6x6x2 input, 4x4 filter, multiplier 2, SAME: total padding 3 (1 top, 2
        // bottom) on both axes.
        (
            "depthwise_same_multiplier2",
            model(
                &[
                    q_act(&[1, 6, 6, 2], 0.03, -7),
                    i8s(&[1, 4, 4, 4], &scales(4), 3, &pattern(64, 5)),
                    i32s(&[4], &bias(4)),
                    q_act(&[1, 6, 6, 4], 0.06, 12),
                ],
                &[(
                    B::DEPTHWISE_CONV_2D,
                    &[0, 1, 2],
                    &[3],
                    Opt::Depthwise {
                        padding: fb::Padding::SAME,
                        multiplier: 2,
                    },
                )],
                3,
            ),
        ),
        (
            "fully_connected_batch2",
            model(
                &[
                    q_act(&[2, 8], 0.02, -3),
                    i8s(&[5, 8], &scales(5), 0, &pattern(40, 9)),
                    i32s(&[5], &bias(5)),
                    q_act(&[2, 5], 0.05, 4),
                ],
                &[(
                    B::FULLY_CONNECTED,
                    &[0, 1, 2],
                    &[3],
                    Opt::Fc(fb::ActivationFunctionType::NONE),
                )],
                3,
            ),
        ),
        // 5x5 input, 2x2 window, stride 2, SAME: 3x3 output, the last row and column
        // of windows hanging over the bottom/right edge.
        (
            "avg_pool_same",
            model(
                &[q_act(&[1, 5, 5, 3], 0.05, 3), q_act(&[1, 3, 3, 3], 0.05, 3)],
                &[(
                    B::AVERAGE_POOL_2D,
                    &[0],
                    &[1],
                    Opt::Pool(fb::Padding::SAME, 2, 2),
                )],
                1,
            ),
        ),
        (
            "max_pool_valid",
            model(
                &[q_act(&[1, 5, 5, 3], 0.05, 3), q_act(&[1, 2, 2, 3], 0.05, 3)],
                &[(
                    B::MAX_POOL_2D,
                    &[0],
                    &[1],
                    Opt::Pool(fb::Padding::VALID, 3, 2),
                )],
                1,
            ),
        ),
        (
            "mean_keep_dims",
            model(
                &[
                    q_act(&[1, 4, 4, 3], 0.05, 3),
                    i32s(&[2], &[1, 2]),
                    q_act(&[1, 1, 1, 3], 0.02, -9),
                ],
                &[(B::MEAN, &[0, 1], &[2], Opt::Mean { keep_dims: true })],
                2,
            ),
        ),
        (
            "softmax",
            model(
                &[q_act(&[2, 10], 0.1, 5), q_act(&[2, 10], 1.0 / 256.0, -128)],
                &[(B::SOFTMAX, &[0], &[1], Opt::Softmax)],
                1,
            ),
        ),
        // x + relu(x), the addends at different scales.
        (
            "add_residual",
            model(
                &[
                    q_act(&[1, 12], 0.05, -10),
                    q_act(&[1, 12], 0.03, -128),
                    q_act(&[1, 12], 0.07, -30),
                ],
                &[
                    (B::RELU, &[0], &[1], Opt::None),
                    (B::ADD, &[0, 1], &[2], Opt::Add),
                ],
                2,
            ),
        ),
    ]
}

/// Models of one int8 element-wise op on 256 values, each with its own input and
/// output quantization: `(name, file)`. Committed in
/// `tests/reference/tflite_ops/` with TensorFlow Lite Micro's outputs on every int8
/// input (`tests/tflite.rs` checks the engine against them);
/// [`committed_models_are_the_builders`] keeps the files equal to these.
fn activation_models() -> Vec<(&'static str, Vec<u8>)> {
    use fb::BuiltinOperator as B;
    let cases: [(&str, B, f32, i64, f32, i64); 7] = [
        ("logistic", B::LOGISTIC, 0.0627, 5, 1.0 / 256.0, -128),
        ("logistic_fine", B::LOGISTIC, 0.02, -20, 1.0 / 256.0, -128),
        ("tanh", B::TANH, 0.0313, -3, 1.0 / 128.0, 0),
        ("tanh_fine", B::TANH, 0.011, 10, 1.0 / 128.0, 0),
        ("relu_rescaled", B::RELU, 0.05, -10, 0.03, -128),
        ("relu", B::RELU, 0.05, -10, 0.05, -10),
        ("relu6", B::RELU6, 0.0237, -128, 0.0237, -128),
    ];
    cases
        .iter()
        .map(|&(name, op, si, zi, so, zo)| {
            let tensors = [q_act(&[1, 256], si, zi), q_act(&[1, 256], so, zo)];
            (name, model(&tensors, &[(op, &[0], &[1], Opt::None)], 1))
        })
        .collect()
}

/// The committed files are what the builder writes (set
/// `DL_DEPLOY_WRITE_TFLITE_OPS=1` to rewrite them, then rerun
/// `tests/reference/tflite_ops/make_reference.py`).
#[test]
fn committed_models_are_the_builders() {
    extern crate std;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/tflite_ops");
    for (name, bytes) in activation_models().into_iter().chain(layer_models()) {
        let path = std::format!("{dir}/{name}.tflite");
        if std::env::var_os("DL_DEPLOY_WRITE_TFLITE_OPS").is_some() {
            std::fs::write(&path, &bytes).expect("writes the model");
        }
        assert_eq!(std::fs::read(&path).ok(), Some(bytes), "{path}");
    }
}

#[test]
fn relu6_must_keep_its_input_quantization() {
    let m = model(
        &[q_act(&[1, 4], 0.05, -10), q_act(&[1, 4], 0.03, -128)],
        &[(fb::BuiltinOperator::RELU6, &[0], &[1], Opt::None)],
        1,
    );
    assert!(matches!(
        import(&m),
        Err(Error::TfLite {
            op: Some(0),
            name: "RELU6",
            ..
        })
    ));
}
