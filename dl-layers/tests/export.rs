//! Export to the deployment engine: the engine's f32 output on the exported graph
//! equals `Module::infer` (to float rounding, the summation order differs), batch
//! norm folds, and a layer with no deployable form is named with its index.

use dl_core::{Rng, Tensor};
use dl_deploy::{encode, AlignedBlob, Error, HeapArena, Model};
use dl_layers::{
    export, predict, Activation, BatchNorm, Conv2dConfig, Dropout, Flatten, LinearConfig, Module,
    Pool2d, ResidualBlock, Sequential,
};

/// NCHW to NHWC (the engine's image layout).
fn nhwc(x: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..h * w {
                out[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
            }
        }
    }
    out
}

/// Runs `model` through export + engine and through `predict`, and compares.
fn same_as_infer(model: &dyn Module<f32>, shape: &[usize], seed: u64, tol: f32) {
    let mut rng = Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let x: Vec<f32> = (0..n).map(|_| rng.normal(0.0, 2.0) as f32).collect();
    let want = predict(model, &Tensor::from_vec(x.clone(), shape).unwrap()).unwrap();
    let graph = export::export(model, shape).unwrap();
    let (bytes, plan) = encode(&graph).unwrap();
    let blob = AlignedBlob::new(&bytes);
    let engine: Model = Model::from_bytes(blob.bytes()).unwrap();
    let input = match *shape {
        [a, b, c, d] => nhwc(&x, [a, b, c, d]),
        _ => x,
    };
    let mut y = vec![0.0f32; want.data().len()];
    engine
        .run(HeapArena::new(plan.arena_len).bytes(), &input, &mut y)
        .unwrap();
    let want: Vec<f32> = match *want.dims() {
        [a, b, c, d] => nhwc(want.data(), [a, b, c, d]),
        _ => want.data().to_vec(),
    };
    for (i, (a, b)) in want.iter().zip(&y).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + a.abs()),
            "output {i}: infer {a}, engine {b}"
        );
    }
    assert!(
        plan.arena_len <= plan.peak_live,
        "arena {} > peak live {}",
        plan.arena_len,
        plan.peak_live
    );
}

/// Puts batch norm's running statistics somewhere other than (0, 1) by training
/// forward passes, so folding is really tested.
fn warm_up(model: &dyn Module<f32>, shape: &[usize]) {
    let mut rng = Rng::seed_from_u64(9);
    for _ in 0..5 {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = (0..n).map(|_| rng.normal(1.0, 3.0) as f32).collect();
        let mut g = dl_autograd::Graph::new();
        let t = Tensor::from_vec(x, shape).unwrap();
        let xv = g.input(&t);
        model
            .forward(&mut g, xv, &mut dl_layers::Ctx::train(1))
            .unwrap();
    }
}

#[test]
fn mlp_with_every_activation_and_dropout() {
    let mut rng = Rng::seed_from_u64(1);
    let model = Sequential::new()
        .push(LinearConfig::new(6, 8).init::<f32>(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(Dropout::new(0.5).unwrap())
        .push(LinearConfig::new(8, 8).init::<f32>(&mut rng).unwrap())
        .push(Activation::Tanh)
        .push(LinearConfig::new(8, 8).init::<f32>(&mut rng).unwrap())
        .push(Activation::LeakyRelu(0.1))
        .push(LinearConfig::new(8, 8).init::<f32>(&mut rng).unwrap())
        .push(Activation::Relu6)
        .push(LinearConfig::new(8, 8).init::<f32>(&mut rng).unwrap())
        .push(Activation::Sigmoid)
        .push(LinearConfig::new(8, 4).init::<f32>(&mut rng).unwrap())
        .push(Activation::Softmax);
    same_as_infer(&model, &[3, 6], 2, 1e-5);
}

#[test]
fn cnn_with_batch_norm_pooling_and_groups() {
    let mut rng = Rng::seed_from_u64(3);
    let model = Sequential::new()
        .push(
            Conv2dConfig::new(3, 6, 3)
                .padding(1)
                .init::<f32>(&mut rng)
                .unwrap(),
        )
        .push(BatchNorm::new(6).unwrap())
        .push(Activation::Relu)
        .push(Pool2d::max(2, 2).unwrap())
        .push(Pool2d::avg(2, 1).unwrap())
        .push(
            Conv2dConfig::new(6, 6, 3)
                .padding(1)
                .with_groups(6)
                .init::<f32>(&mut rng)
                .unwrap(),
        )
        .push(Activation::Relu6)
        .push(
            Conv2dConfig::new(6, 8, 3)
                .stride(2)
                .with_groups(2)
                .init::<f32>(&mut rng)
                .unwrap(),
        )
        .push(BatchNorm::new(8).unwrap())
        .push(Flatten)
        .push(
            LinearConfig::new(8 * 2 * 2, 5)
                .init::<f32>(&mut rng)
                .unwrap(),
        );
    warm_up(&model, &[4, 3, 12, 12]);
    same_as_infer(&model, &[2, 3, 12, 12], 4, 1e-4);
}

#[test]
fn residual_blocks_and_global_pooling() {
    let mut rng = Rng::seed_from_u64(5);
    let model = Sequential::new()
        .push(ResidualBlock::new(3, 4, 1, &mut rng).unwrap())
        .push(ResidualBlock::new(4, 8, 2, &mut rng).unwrap())
        .push(Pool2d::GlobalAvg)
        .push(LinearConfig::new(8, 3).init::<f32>(&mut rng).unwrap());
    warm_up(&model, &[4, 3, 8, 8]);
    same_as_infer(&model, &[2, 3, 8, 8], 6, 1e-4);
}

#[test]
fn an_undeployable_layer_is_named_with_its_index() {
    let mut rng = Rng::seed_from_u64(7);
    let model = Sequential::new()
        .push(LinearConfig::new(4, 4).init::<f32>(&mut rng).unwrap())
        .push(Activation::Relu)
        .push(dl_layers::LayerNorm::new(4).unwrap());
    let e = export::export(&model, &[1, 4]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnsupportedLayer {
                index: 2,
                layer: "LayerNorm",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("layer 2 (LayerNorm) cannot be deployed"),
        "{e}"
    );
}

#[test]
fn batch_norm_without_a_layer_before_it_is_refused() {
    let model = Sequential::<f32>::new().push(BatchNorm::new(4).unwrap());
    let e = export::export(&model, &[1, 4]).unwrap_err();
    assert!(e.to_string().contains("BatchNorm"), "{e}");
}

/// Recurrent layers (RNN with tanh or ReLU, LSTM, GRU; stacked; bidirectional; a
/// head on the last step) run by the engine in f32 as `Module::infer` runs them.
mod recurrent {
    use super::*;
    use dl_autograd::{Graph, Param, ParamSet, Var};
    use dl_layers::{
        Bidirectional, Ctx, Entry, EntryMut, Linear, Nonlinearity, Path, Recurrent,
        RecurrentConfig, SeqOptions,
    };

    fn cells() -> [RecurrentConfig; 4] {
        [
            RecurrentConfig::rnn(3, 5),
            RecurrentConfig::rnn(3, 5).nonlinearity(Nonlinearity::Relu),
            RecurrentConfig::lstm(3, 5),
            RecurrentConfig::gru(3, 5),
        ]
    }

    #[test]
    fn rnn_lstm_gru_single_and_stacked_match_infer() {
        let mut rng = Rng::seed_from_u64(21);
        for (k, cfg) in cells().into_iter().enumerate() {
            for (layers, bias) in [(1, true), (3, true), (2, false)] {
                let model = cfg
                    .num_layers(layers)
                    .bias(bias)
                    .init::<f32>(&mut rng)
                    .unwrap();
                let graph = export::export(&model, &[1, 7, 3]).unwrap();
                assert_eq!(graph.nodes.len(), layers, "one op per layer");
                assert_eq!(graph.num_params(), model.num_params());
                same_as_infer(&model, &[1, 7, 3], 100 + k as u64, 1e-5);
                same_as_infer(&model, &[2, 4, 3], 200 + k as u64, 1e-5);
            }
        }
    }

    #[test]
    fn bidirectional_layers_match_infer() {
        let mut rng = Rng::seed_from_u64(22);
        for (k, cfg) in cells().into_iter().enumerate() {
            for layers in [1, 2] {
                let cfg = cfg.num_layers(layers);
                let bi = Bidirectional::new(
                    cfg.init::<f32>(&mut rng).unwrap(),
                    cfg.init(&mut rng).unwrap(),
                );
                let graph = export::export(&bi, &[1, 6, 3]).unwrap();
                assert_eq!(
                    graph.nodes.len(),
                    2 * layers,
                    "one op per layer and direction, no concatenation"
                );
                assert_eq!(graph.tensors[graph.output].dims, [1, 6, 10]);
                same_as_infer(&bi, &[1, 6, 3], 300 + k as u64, 1e-5);
                same_as_infer(&bi, &[2, 3, 3], 400 + k as u64, 1e-5);
            }
        }
        // Nested: each half is itself bidirectional (the inner backward half of the
        // outer backward half steps forwards).
        let cfg = RecurrentConfig::gru(3, 2);
        let mut half = || {
            Bidirectional::new(
                cfg.init::<f32>(&mut rng).unwrap(),
                cfg.init(&mut rng).unwrap(),
            )
        };
        let nested = Bidirectional::new(half(), half());
        assert_eq!(export::export(&nested, &[1, 4, 3]).unwrap().nodes.len(), 4);
        same_as_infer(&nested, &[2, 4, 3], 450, 1e-5);
    }

    /// Many-to-one: a linear head on the top layer's last hidden state, as a model
    /// that `Sequential` cannot express is written (see `tests/sequence_tasks.rs`);
    /// it lowers with `Recurrent::lower_last`, then the head.
    struct LastStep {
        rnn: Recurrent<f32>,
        head: Linear<f32>,
    }

    impl ParamSet<f32> for LastStep {
        fn for_each_param(&mut self, f: &mut dyn FnMut(&mut Param<f32>)) {
            self.rnn.for_each_param(f);
            self.head.for_each_param(f);
        }
    }

    impl Module<f32> for LastStep {
        fn forward<'p>(
            &'p self,
            g: &mut Graph<'p, f32>,
            x: Var,
            ctx: &mut Ctx,
        ) -> dl_layers::Result<Var> {
            use dl_layers::SequenceLayer;
            let out = self.rnn.run(g, x, &SeqOptions::default())?;
            let last = out.last(g)?;
            self.head.forward(g, last, ctx)
        }

        fn lower(
            &self,
            g: &mut dl_deploy::Graph,
            x: dl_deploy::TensorId,
        ) -> dl_deploy::Result<dl_deploy::TensorId> {
            let h = self.rnn.lower_last(g, x)?;
            self.head.lower(g, h)
        }

        fn visit(&self, path: &mut Path, f: &mut dyn FnMut(&str, Entry<'_, f32>)) {
            path.with("rnn", |p| self.rnn.visit(p, f));
            path.with("head", |p| self.head.visit(p, f));
        }

        fn visit_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&str, EntryMut<'_, f32>)) {
            path.with("rnn", |p| self.rnn.visit_mut(p, f));
            path.with("head", |p| self.head.visit_mut(p, f));
        }
    }

    #[test]
    fn a_linear_head_on_the_last_step_matches_infer() {
        let mut rng = Rng::seed_from_u64(23);
        for (k, cfg) in cells().into_iter().enumerate() {
            for layers in [1, 2] {
                let model = Sequential::new()
                    .push(LastStep {
                        rnn: cfg.num_layers(layers).init(&mut rng).unwrap(),
                        head: LinearConfig::new(5, 4).init(&mut rng).unwrap(),
                    })
                    .push(Activation::Softmax);
                let graph = export::export(&model, &[1, 8, 3]).unwrap();
                assert_eq!(graph.tensors[graph.output].dims, [1, 4]);
                same_as_infer(&model, &[1, 8, 3], 500 + k as u64, 1e-5);
                same_as_infer(&model, &[3, 5, 3], 600 + k as u64, 1e-5);
            }
        }
    }

    #[test]
    fn recurrent_export_errors_are_named() {
        let mut rng = Rng::seed_from_u64(24);
        let gru = RecurrentConfig::gru(3, 4).init::<f32>(&mut rng).unwrap();
        let e = export::export(&gru, &[1, 3]).unwrap_err();
        assert!(
            e.to_string()
                .contains("Recurrent: needs a sequence input [n, t, features]"),
            "{e}"
        );
        let e = export::export(&gru, &[1, 5, 2]).unwrap_err();
        assert!(
            e.to_string()
                .contains("must match the input and hidden size"),
            "{e}"
        );
        let graph = export::export(&gru, &[1, 5, 3]).unwrap();
        let e = dl_deploy::quantize(&graph, &[0.5; 15], dl_deploy::QuantizeConfig::default())
            .unwrap_err();
        assert!(e.to_string().contains("run in f32 only"), "{e}");
        let mut empty = gru.clone();
        empty.layers.clear();
        let model = Sequential::new()
            .push(Dropout::new(0.1).unwrap())
            .push(empty);
        let e = export::export(&model, &[1, 5, 3]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::UnsupportedLayer {
                    index: 1,
                    layer: "Recurrent",
                    why: "it has no layers"
                }
            ),
            "{e}"
        );
    }
}
