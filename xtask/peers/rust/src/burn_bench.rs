//! burn side of `cargo xtask bench --peers`: the workloads of `xtask/peers/torch_bench.py`,
//! same shapes and definitions, on burn's Flex backend (pure-Rust CPU; SIMD, rayon and the
//! AVX-512 `x86-v4` gemm kernels enabled), with `device.autodiff()` for training.
//!
//! Usage: `burn_bench THREADS [--quick]`; prints one JSON line.

mod common;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig, MseLoss, Reduction};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::transformer::{TransformerEncoderConfig, TransformerEncoderLayer};
use burn::nn::{
    activation::ActivationConfig, Linear, LinearConfig, Lstm, LstmConfig, PaddingConfig2d, Relu,
};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use common::{timed, Report};

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    relu: Relu,
}

impl Mlp {
    fn new(dev: &Device) -> Self {
        Mlp {
            l1: LinearConfig::new(784, 128).init(dev),
            l2: LinearConfig::new(128, 64).init(dev),
            l3: LinearConfig::new(64, 10).init(dev),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.relu.forward(self.l1.forward(x));
        let x = self.relu.forward(self.l2.forward(x));
        self.l3.forward(x)
    }
}

#[derive(Module, Debug)]
struct LeNet {
    c1: Conv2d,
    c2: Conv2d,
    pool: MaxPool2d,
    f1: Linear,
    f2: Linear,
    f3: Linear,
    relu: Relu,
}

impl LeNet {
    fn new(dev: &Device) -> Self {
        LeNet {
            c1: Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(dev),
            c2: Conv2dConfig::new([6, 16], [5, 5]).init(dev),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            f1: LinearConfig::new(400, 120).init(dev),
            f2: LinearConfig::new(120, 84).init(dev),
            f3: LinearConfig::new(84, 10).init(dev),
            relu: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(self.relu.forward(self.c1.forward(x)));
        let x = self.pool.forward(self.relu.forward(self.c2.forward(x)));
        let x: Tensor<2> = x.flatten(1, 3);
        let x = self.relu.forward(self.f1.forward(x));
        let x = self.relu.forward(self.f2.forward(x));
        self.f3.forward(x)
    }
}

#[derive(Module, Debug)]
struct LstmNet {
    lstm: Lstm,
    head: Linear,
}

impl LstmNet {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let (_, state) = self.lstm.forward(x, None);
        // The final hidden state is the output at the last step.
        self.head.forward(state.hidden)
    }
}

/// Times forward + backward + Adam step (lr 1e-3) of `model` on a loss closure.
fn train<M, L>(quick: bool, dev: &Device, model: M, loss: L) -> Result<common::Stat, String>
where
    M: Module,
    L: Fn(&M) -> Tensor<1>,
{
    let mut optim = AdamConfig::new().init();
    let mut model = Some(model);
    timed(quick, || -> Result<(), String> {
        let m = model.take().ok_or("model lost")?;
        let grads = loss(&m).backward();
        let grads = GradientsParams::from_grads(grads, &m);
        model = Some(optim.step(1e-3, m, grads));
        dev.sync().map_err(|e| format!("{e:?}"))
    })
}

fn main() {
    let args = common::args();
    // burn-flex runs its kernels and gemm (Parallelism::Rayon(0)) on rayon's global pool.
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global();
    let q = args.quick;
    let plain = Device::flex();
    let dev = plain.clone().autodiff();
    let mut rep = Report::new();
    let sync = |d: &Device| d.sync().map_err(|e| format!("{e:?}"));

    for n in [64usize, 256, 1024] {
        let a = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &plain);
        let b = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), &plain);
        rep.add(
            &format!("gemm/f32/{n}"),
            timed(q, || {
                let _c = a.clone().matmul(b.clone());
                sync(&plain)
            }),
        );
    }

    // torch.arange(64) % 10
    let labels = |d: &Device| {
        let v: Vec<i64> = (0..64).map(|i| i % 10).collect();
        Tensor::<1, Int>::from_data(TensorData::new(v, [64]), d)
    };
    let ce: CrossEntropyLoss = CrossEntropyLossConfig::new().init(&dev);

    let mlp = Mlp::new(&dev);
    let x = Tensor::<2>::random([64, 784], Distribution::Default, &dev);
    let y = labels(&dev);
    rep.add(
        "train/mlp_784_128_64_10/b64",
        train(q, &dev, mlp.clone(), |m: &Mlp| {
            ce.forward(m.forward(x.clone()), y.clone())
        }),
    );
    // `valid()` moves the module to the plain (no-autodiff) device: inference records no graph.
    let frozen = mlp.valid();
    for bsz in [1usize, 256] {
        let xb = Tensor::<2>::random([bsz, 784], Distribution::Default, &plain);
        rep.add(
            &format!("infer/mlp_784_128_64_10/b{bsz}"),
            timed(q, || {
                let _y = frozen.forward(xb.clone());
                sync(&plain)
            }),
        );
    }

    let x = Tensor::<4>::random([64, 1, 28, 28], Distribution::Default, &dev);
    rep.add(
        "train/lenet5/b64",
        train(q, &dev, LeNet::new(&dev), |m: &LeNet| {
            ce.forward(m.forward(x.clone()), y.clone())
        }),
    );

    let net = LstmNet {
        lstm: LstmConfig::new(32, 128, true).init(&dev),
        head: LinearConfig::new(128, 1).init(&dev),
    };
    let x = Tensor::<3>::random([32, 50, 32], Distribution::Normal(0.0, 1.0), &dev);
    let t = Tensor::<2>::random([32, 1], Distribution::Normal(0.0, 1.0), &dev);
    rep.add(
        "train/lstm_i32_h128_s50/b32",
        train(q, &dev, net, |m: &LstmNet| {
            MseLoss::new().forward(m.forward(x.clone()), t.clone(), Reduction::Mean)
        }),
    );

    let cfg = TransformerEncoderConfig::new(64, 256, 4, 1)
        .with_dropout(0.0)
        .with_norm_first(true)
        .with_activation(ActivationConfig::Relu);
    let block = TransformerEncoderLayer::new(&cfg, &dev);
    let x = Tensor::<3>::random([32, 32, 64], Distribution::Normal(0.0, 1.0), &dev);
    let id = "train/transformer_block_d64_h4_ff256_s32/b32";
    rep.add(
        id,
        train(q, &dev, block, |m: &TransformerEncoderLayer| {
            let out = m.forward(x.clone(), None, None);
            MseLoss::new().forward(out, x.clone(), Reduction::Mean)
        }),
    );
    rep.note(
        id,
        "burn::nn::transformer::TransformerEncoderLayer (norm_first, dropout 0, ReLU); separate q/k/v projections instead of PyTorch's packed in_proj",
    );

    rep.print(
        "burn",
        env!("PEER_BURN_VERSION"),
        "flex (pure-Rust CPU: simd, rayon, x86-v4)",
        args.threads,
    );
}
