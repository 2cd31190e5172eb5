"""PyTorch side of `cargo xtask bench --peers`: the same workloads as our criterion
benches, same shapes, same thread count, warm-up excluded. Prints one JSON object:
{bench id: {"median": seconds, "min": s, "max": s}} with ids matching criterion's.

Usage: python3 xtask/peers/torch_bench.py THREADS [--quick]
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
QUICK = "--quick" in sys.argv
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def timed(fn, target_s=0.5 if not QUICK else 0.02, samples=15 if not QUICK else 2):
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(target_s / samples / one))
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        out.append((time.perf_counter() - t0) / reps)
    return {"median": statistics.median(out), "min": min(out), "max": max(out)}


def train_step(net, x, y, loss_fn, opt):
    def step():
        opt.zero_grad(set_to_none=False)
        loss_fn(net(x), y).backward()
        opt.step()
    return step


def main():
    res = {}
    for n in (64, 256, 1024):
        a, b = torch.randn(n, n), torch.randn(n, n)
        res[f"gemm/f32/{n}"] = timed(lambda: torch.mm(a, b))

    # Memory-bound kernels (dl-core/benches/kernels.rs), writing into preallocated
    # outputs where PyTorch takes one, as ours do.
    x1m = torch.rand(1 << 20) * 2 - 1
    o1m = torch.empty_like(x1m)
    for name, fn in (("relu_1m", lambda: torch.relu(x1m)),
                     ("tanh_1m", lambda: torch.tanh(x1m, out=o1m)),
                     ("sigmoid_1m", lambda: torch.sigmoid(x1m, out=o1m)),
                     ("exp_1m", lambda: torch.exp(x1m, out=o1m))):
        res[f"elementwise/f32/{name}"] = timed(fn)
    x2d, row, o2d = x1m.view(1024, 1024), torch.rand(1024), torch.empty(1024, 1024)
    res["elementwise/f32/add_row_1024x1024"] = timed(lambda: torch.add(x2d, row, out=o2d))
    logits = torch.rand(256, 1000) * 2 - 1
    targets = (torch.arange(256) * 7) % 1000
    res["softmax/f32/rows_256x1000"] = timed(lambda: torch.softmax(logits, dim=1))
    res["softmax/f32/cross_entropy_256x1000"] = timed(
        lambda: nn.functional.cross_entropy(logits, targets))
    col = torch.empty(1024)
    res["reduce/f32/sum_axis0_1024x1024"] = timed(lambda: torch.sum(x2d, dim=0, out=col))
    res["reduce/f32/sum_all_1m"] = timed(lambda: torch.sum(x1m))

    mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    x, y = torch.rand(64, 784), torch.arange(64) % 10
    res["train/mlp_784_128_64_10/b64"] = timed(
        train_step(mlp, x, y, nn.functional.cross_entropy, torch.optim.Adam(mlp.parameters(), 1e-3)))
    mlp.eval()
    with torch.inference_mode():
        for bsz in (1, 256):
            xb = torch.rand(bsz, 784)
            res[f"infer/mlp_784_128_64_10/b{bsz}"] = timed(lambda: mlp(xb))

    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    x = torch.rand(64, 1, 28, 28)
    res["train/lenet5/b64"] = timed(
        train_step(lenet, x, y, nn.functional.cross_entropy, torch.optim.Adam(lenet.parameters(), 1e-3)))

    class Lstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 128, batch_first=True)
            self.head = nn.Linear(128, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    lstm = Lstm()
    x, t = torch.randn(32, 50, 32), torch.randn(32, 1)
    res["train/lstm_i32_h128_s50/b32"] = timed(
        train_step(lstm, x, t, nn.functional.mse_loss, torch.optim.Adam(lstm.parameters(), 1e-3)))

    block = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True, norm_first=True)
    x = torch.randn(32, 32, 64)
    res["train/transformer_block_d64_h4_ff256_s32/b32"] = timed(
        train_step(block, x, x, nn.functional.mse_loss, torch.optim.Adam(block.parameters(), 1e-3)))

    print(json.dumps({"peer": "pytorch", "version": torch.__version__, "threads": THREADS, "results": res}))


if __name__ == "__main__":
    main()
