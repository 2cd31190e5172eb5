"""PyTorch reference for the mlp and cnn examples on mnist5k (../shared/data/mnist5k):
the same models, optimizer (Adam 1e-3, cosine decay to 1e-5 over the epochs), batch 64,
epochs, and pixel scaling, trained from 3 seeds; prints test accuracy per seed.

Run: python3 dl-optim/benches/peers/torch_mnist5k.py [path/to/mnist5k]
"""
import gzip
import pathlib
import sys

import numpy as np
import torch
import torch.nn as nn


def idx(path):
    data = gzip.open(path).read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d):
    d = pathlib.Path(d)
    xs = [idx(d / f"{p}-images-idx3-ubyte.gz").astype(np.float32) / 255.0 for p in ("train", "t10k")]
    ys = [idx(d / f"{p}-labels-idx1-ubyte.gz").astype(np.int64) for p in ("train", "t10k")]
    return [torch.tensor(v) for v in (xs[0], ys[0], xs[1], ys[1])]


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def train(make, epochs, seed, xtr, ytr, xte, yte):
    torch.manual_seed(seed)
    net = make()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs, 1e-5)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(xtr[b].unsqueeze(1)), ytr[b]).backward()
            opt.step()
        sched.step()
    net.eval()
    with torch.no_grad():
        return (net(xte.unsqueeze(1)).argmax(1) == yte).float().mean().item()


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[4] / "shared/data/mnist5k"
    xtr, ytr, xte, yte = load(d)
    torch.set_num_threads(2)
    for name, make, epochs in (("mlp 784-256-128-10", mlp, 20), ("lenet5", lenet5, 15)):
        accs = [train(make, epochs, s, xtr, ytr, xte, yte) for s in range(3)]
        print(f"{name}: {epochs} epochs, test accuracy per seed {[round(100 * a, 2) for a in accs]}, mean {100 * np.mean(accs):.2f}%")
