"""PyTorch's own int8 inference beside ours (`dl-deploy/benches/int8.rs`), for
`cargo xtask bench --peers`: the same two models with the same weights (read from
the committed safetensors checkpoints in dl-embedded-demo/model), the same shapes,
the same thread count, warm-up excluded.

- int8/{mlp,cnn}/b{1,256}: eager-mode static post-training quantization
  (`torch.ao.quantization`, engine and qconfig "x86": fbgemm/oneDNN kernels,
  per-channel symmetric int8 weights, per-tensor activations), Linear+ReLU and
  Conv+BatchNorm+ReLU fused before quantizing as ours are at export; the input
  quantized by the model (QuantStub), the int8 logits left quantized, as ours.
- f32/{mlp,cnn}/b{1,256}: the same models in f32 under `torch.inference_mode()`.

The digits MLP is 64-32-10 (ReLU); the MNIST CNN is conv 3x3 1->8 (padding 1) -
batch norm - ReLU - max-pool 2 - conv 3x3 8->16 - batch norm - ReLU - max-pool 2 -
flatten - linear 784->10 (dl-optim/examples/shared/mnist_cnn.rs). Calibration uses
the committed test inputs (dl-embedded-demo/model/test_x.bin and
mnist_cnn_test_x.bin): the ranges affect the values, not the speed.

Usage: python3 xtask/peers/torch_int8_bench.py THREADS [--quick]
Prints one JSON object: {"results": {bench id: {"median": s, "min": s, "max": s}}}.
"""
import json
import os
import statistics
import struct
import sys
import time
import warnings

import torch
import torch.ao.quantization as tq
import torch.nn as nn

# PyTorch 2.15 warns that its quantized tensors are deprecated; stderr stays for errors.
warnings.filterwarnings("ignore")
THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
QUICK = "--quick" in sys.argv
torch.set_num_threads(THREADS)
torch.backends.quantized.engine = "x86"
MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                         "dl-embedded-demo", "model")


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


def load_safetensors(name):
    """The f32 tensors of a safetensors file (8-byte header length, JSON header, data)."""
    with open(os.path.join(MODEL_DIR, name), "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        assert meta["dtype"] == "F32", key
        start, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32)
        out[key] = t.reshape(meta["shape"]).clone()
    return out


def pixels(name, per, scale):
    with open(os.path.join(MODEL_DIR, name), "rb") as f:
        raw = f.read()
    x = torch.tensor(list(raw), dtype=torch.float32) / scale
    return x.reshape(-1, per)


class Quantized(nn.Module):
    """QuantStub -> body; the output stays int8, as our blobs' logits do."""

    def __init__(self, body):
        super().__init__()
        self.quant = tq.QuantStub()
        self.body = body

    def forward(self, x):
        return self.body(self.quant(x))


def mlp():
    m = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    m.load_state_dict(load_safetensors("digits_mlp.safetensors"))
    return m.eval()


def cnn():
    m = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    # The checkpoint has no `num_batches_tracked` (unused in eval mode).
    missing, unexpected = m.load_state_dict(load_safetensors("mnist_cnn.safetensors"), strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), missing
    return m.eval()


def quantize(model, fuse, calibration):
    q = Quantized(model).eval()
    tq.fuse_modules(q.body, fuse, inplace=True)
    q.qconfig = tq.get_default_qconfig("x86")
    tq.prepare(q, inplace=True)
    with torch.inference_mode():
        q(calibration)
    tq.convert(q, inplace=True)
    return q


def batch_of(x, n):
    reps = (n + x.shape[0] - 1) // x.shape[0]
    return x.repeat((reps,) + (1,) * (x.dim() - 1))[:n].contiguous()


def main():
    res = {}
    digits = pixels("test_x.bin", 64, 16.0)
    mnist = pixels("mnist_cnn_test_x.bin", 28 * 28, 255.0).reshape(-1, 1, 28, 28)
    workloads = (
        ("mlp", mlp(), [["0", "1"]], digits),
        ("cnn", cnn(), [["0", "1", "2"], ["4", "5", "6"]], mnist),
    )
    for name, model, fuse, data in workloads:
        f32 = model
        int8 = quantize(mlp() if name == "mlp" else cnn(), fuse, data)
        with torch.inference_mode():
            for bsz in (1, 256):
                xb = batch_of(data, bsz)
                assert int8(xb).dtype == torch.quint8
                res[f"int8/{name}/b{bsz}"] = timed(lambda: int8(xb))
                res[f"f32/{name}/b{bsz}"] = timed(lambda: f32(xb))
    print(json.dumps({"peer": "pytorch", "version": torch.__version__, "threads": THREADS,
                      "engine": torch.backends.quantized.engine, "results": res}))


if __name__ == "__main__":
    main()
