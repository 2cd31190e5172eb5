//! candle side of `cargo xtask bench --peers`: the workloads of `xtask/peers/torch_bench.py`,
//! same shapes and definitions, on candle's CPU device.
//!
//! Usage: `candle_bench THREADS [--quick]`; prints one JSON line.

mod common;

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::rnn::{LSTMConfig, RNN};
use candle_nn::{
    conv2d, linear, loss, ops, AdamW, Conv2d, Conv2dConfig, Init, Linear, Optimizer, ParamsAdamW,
    VarBuilder, VarMap,
};
use common::{timed, Report};

/// Adam with lr 1e-3: candle's AdamW with zero weight decay is exactly Adam.
fn adam(vm: &VarMap) -> Result<AdamW> {
    AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
}

/// A copy of a layer whose weights are plain tensors, so inference records no graph.
fn detached(l: &Linear) -> Linear {
    Linear::new(l.weight().detach(), l.bias().map(|b| b.detach()))
}

struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
}

impl Mlp {
    fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Mlp {
            l1: linear(784, 128, vb.pp("l1"))?,
            l2: linear(128, 64, vb.pp("l2"))?,
            l3: linear(64, 10, vb.pp("l3"))?,
        })
    }

    fn detached(&self) -> Self {
        Mlp {
            l1: detached(&self.l1),
            l2: detached(&self.l2),
            l3: detached(&self.l3),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.l1.forward(x)?.relu()?;
        let x = self.l2.forward(&x)?.relu()?;
        self.l3.forward(&x)
    }
}

struct LeNet {
    c1: Conv2d,
    c2: Conv2d,
    f1: Linear,
    f2: Linear,
    f3: Linear,
}

impl LeNet {
    fn new(vb: VarBuilder) -> Result<Self> {
        let pad2 = Conv2dConfig {
            padding: 2,
            ..Default::default()
        };
        Ok(LeNet {
            c1: conv2d(1, 6, 5, pad2, vb.pp("c1"))?,
            c2: conv2d(6, 16, 5, Default::default(), vb.pp("c2"))?,
            f1: linear(400, 120, vb.pp("f1"))?,
            f2: linear(120, 84, vb.pp("f2"))?,
            f3: linear(84, 10, vb.pp("f3"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.c1.forward(x)?.relu()?.max_pool2d(2)?;
        let x = self
            .c2
            .forward(&x)?
            .relu()?
            .max_pool2d(2)?
            .flatten_from(1)?;
        let x = self.f1.forward(&x)?.relu()?;
        let x = self.f2.forward(&x)?.relu()?;
        self.f3.forward(&x)
    }
}

/// PyTorch's `TransformerEncoderLayer(64, 4, 256, dropout=0, norm_first=True)` built from
/// candle-nn pieces (candle-nn has no encoder layer). Layer norm and softmax use the
/// composed-op versions: candle-nn's fused `LayerNorm` and `softmax_last_dim` kernels have
/// no backward pass.
struct Block {
    ln1: (Tensor, Tensor),
    ln2: (Tensor, Tensor),
    qkv: Linear,
    out: Linear,
    ff1: Linear,
    ff2: Linear,
}

const D_MODEL: usize = 64;
const HEADS: usize = 4;

impl Block {
    fn new(vb: VarBuilder) -> Result<Self> {
        let ln = |name: &str| -> Result<(Tensor, Tensor)> {
            let vb = vb.pp(name);
            Ok((
                vb.get_with_hints(D_MODEL, "weight", Init::Const(1.0))?,
                vb.get_with_hints(D_MODEL, "bias", Init::Const(0.0))?,
            ))
        };
        Ok(Block {
            ln1: ln("ln1")?,
            ln2: ln("ln2")?,
            qkv: linear(D_MODEL, 3 * D_MODEL, vb.pp("qkv"))?,
            out: linear(D_MODEL, D_MODEL, vb.pp("out"))?,
            ff1: linear(D_MODEL, 256, vb.pp("ff1"))?,
            ff2: linear(256, D_MODEL, vb.pp("ff2"))?,
        })
    }

    fn attention(&self, h: &Tensor) -> Result<Tensor> {
        let (b, s, _) = h.dims3()?;
        let hd = D_MODEL / HEADS;
        let qkv = self.qkv.forward(h)?;
        let head = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * D_MODEL, D_MODEL)?
                .reshape((b, s, HEADS, hd))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (head(0)?, head(1)?, head(2)?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (hd as f64).sqrt()))?;
        let att = ops::softmax(&scores, D::Minus1)?;
        let ctx = att
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, s, D_MODEL))?;
        self.out.forward(&ctx)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = ops::layer_norm_slow(x, &self.ln1.0, &self.ln1.1, 1e-5)?;
        let x = (x + self.attention(&h)?)?;
        let h = ops::layer_norm_slow(&x, &self.ln2.0, &self.ln2.1, 1e-5)?;
        let h = self.ff2.forward(&self.ff1.forward(&h)?.relu()?)?;
        x + h
    }
}

fn main() {
    let args = common::args();
    // candle sizes its gemm parallelism and its thread pools from these variables.
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    std::env::set_var("CANDLE_NUM_THREADS", args.threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build_global();
    let q = args.quick;
    let dev = Device::Cpu;
    let mut rep = Report::new();

    for n in [64usize, 256, 1024] {
        let r = (|| -> Result<_> {
            let a = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
            let b = Tensor::randn(0f32, 1.0, (n, n), &dev)?;
            Ok(timed(q, || a.matmul(&b).map(drop)))
        })();
        rep.add(
            &format!("gemm/f32/{n}"),
            r.unwrap_or_else(|e| Err(e.to_string())),
        );
    }

    // torch.arange(64) % 10
    let labels =
        |b: usize| Tensor::from_vec((0..b as u32).map(|i| i % 10).collect::<Vec<u32>>(), b, &dev);

    let r = (|| -> Result<_> {
        let vm = VarMap::new();
        let mlp = Mlp::new(VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let mut opt = adam(&vm)?;
        let x = Tensor::rand(0f32, 1.0, (64, 784), &dev)?;
        let y = labels(64)?;
        let train = timed(q, || -> Result<()> {
            let l = loss::cross_entropy(&mlp.forward(&x)?, &y)?;
            opt.backward_step(&l)
        });
        let frozen = mlp.detached();
        let mut infer = Vec::new();
        for bsz in [1usize, 256] {
            let xb = Tensor::rand(0f32, 1.0, (bsz, 784), &dev)?;
            infer.push((bsz, timed(q, || frozen.forward(&xb).map(drop))));
        }
        Ok((train, infer))
    })();
    match r {
        Ok((train, infer)) => {
            rep.add("train/mlp_784_128_64_10/b64", train);
            for (bsz, t) in infer {
                rep.add(&format!("infer/mlp_784_128_64_10/b{bsz}"), t);
            }
        }
        Err(e) => rep.add("train/mlp_784_128_64_10/b64", Err(e.to_string())),
    }

    let r = (|| -> Result<_> {
        let vm = VarMap::new();
        let net = LeNet::new(VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let mut opt = adam(&vm)?;
        let x = Tensor::rand(0f32, 1.0, (64, 1, 28, 28), &dev)?;
        let y = labels(64)?;
        Ok(timed(q, || -> Result<()> {
            let l = loss::cross_entropy(&net.forward(&x)?, &y)?;
            opt.backward_step(&l)
        }))
    })();
    rep.add("train/lenet5/b64", r.unwrap_or_else(|e| Err(e.to_string())));

    let id = "train/lstm_i32_h128_s50/b32";
    let r = (|| -> Result<_> {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let lstm = candle_nn::lstm(32, 128, LSTMConfig::default(), vb.pp("lstm"))?;
        let head = linear(128, 1, vb.pp("head"))?;
        let mut opt = adam(&vm)?;
        let x = Tensor::randn(0f32, 1.0, (32, 50, 32), &dev)?;
        let t = Tensor::randn(0f32, 1.0, (32, 1), &dev)?;
        Ok(timed(q, || -> Result<()> {
            let states = lstm.seq(&x)?;
            let last = &states[states.len() - 1];
            let l = loss::mse(&head.forward(last.h())?, &t)?;
            opt.backward_step(&l)
        }))
    })();
    rep.add(id, r.unwrap_or_else(|e| Err(e.to_string())));
    rep.note(
        id,
        "candle_nn::lstm stepped by RNN::seq (one step per time step, ops-composed, so it trains through candle's autograd)",
    );

    let id = "train/transformer_block_d64_h4_ff256_s32/b32";
    let r = (|| -> Result<_> {
        let vm = VarMap::new();
        let block = Block::new(VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
        let mut opt = adam(&vm)?;
        let x = Tensor::randn(0f32, 1.0, (32, 32, D_MODEL), &dev)?;
        Ok(timed(q, || -> Result<()> {
            let l = loss::mse(&block.forward(&x)?, &x)?;
            opt.backward_step(&l)
        }))
    })();
    rep.add(id, r.unwrap_or_else(|e| Err(e.to_string())));
    rep.note(
        id,
        "candle-nn has no encoder layer: pre-norm block hand-built from candle_nn::linear, ops::layer_norm_slow and ops::softmax (the fused LayerNorm/softmax_last_dim ops have no backward)",
    );

    rep.print(
        "candle",
        env!("PEER_CANDLE_VERSION"),
        "cpu (gemm crate, rayon)",
        args.threads,
    );
}
