"""Reference values for dl-optim's optimizer and schedule tests, from torch.optim.

Run: python3 dl-optim/tests/reference/make_reference.py
(writes torch_reference.json and torch_long.json beside this script)

torch_reference.json: 3 steps on (a) a fixed quadratic and (b) a fixed tiny network, in
float64, parameters recorded after every step; schedules: the learning rate at each of
30 epochs.

torch_long.json: every optimizer option, 50 steps, float64 and float32, on gradients
that both sides compute bit for bit (see `pattern`), and Adam/AdamW on a parameter
large enough for dl-optim's blocked, threaded update. torch_parity.rs's f32 bounds
were measured against this script's output on an AVX-512 machine and with
ATEN_CPU_CAPABILITY=default (no fused multiply-adds in torch's kernels); both fit.
"""
import json
import math
import pathlib

import torch

torch.set_default_dtype(torch.float64)

OPTIMIZERS = {
    "sgd": (torch.optim.SGD, dict(lr=0.1)),
    "sgd_weight_decay": (torch.optim.SGD, dict(lr=0.1, weight_decay=0.01)),
    "momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "momentum_dampening": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1)),
    "nesterov": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (torch.optim.Adam, dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8)),
    "adam_l2": (torch.optim.Adam, dict(lr=0.1, weight_decay=0.01)),
    "amsgrad": (torch.optim.Adam, dict(lr=0.1, amsgrad=True)),
    "adamw": (torch.optim.AdamW, dict(lr=0.1, weight_decay=0.1)),
    "adagrad": (torch.optim.Adagrad, dict(lr=0.1)),
    "adadelta": (torch.optim.Adadelta, dict(lr=1.0, rho=0.9, eps=1e-6)),
    "rmsprop": (torch.optim.RMSprop, dict(lr=0.01, alpha=0.99, eps=1e-8)),
    "rmsprop_momentum": (torch.optim.RMSprop, dict(lr=0.01, alpha=0.99, momentum=0.9)),
    "nadam": (torch.optim.NAdam, dict(lr=0.1)),
}

# (a) f(x) = sum_i 0.5 * a_i * x_i^2 + b_i * x_i
QUAD_A = [1.0, 2.0, 3.0]
QUAD_B = [0.5, -1.0, 0.25]
QUAD_X0 = [1.0, -2.0, 3.0]

# (b) y = W2 tanh(W1 x + b1) + b2, 2-3-1, MSE over 4 samples.
NET = {
    "w1": [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]],
    "b1": [0.1, -0.2, 0.05],
    "w2": [[0.7, -0.4, 0.3]],
    "b2": [0.02],
}
NET_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
NET_Y = [[0.0], [1.0], [1.0], [0.0]]


def run_quadratic(cls, kw):
    x = torch.tensor(QUAD_X0, requires_grad=True)
    a, b = torch.tensor(QUAD_A), torch.tensor(QUAD_B)
    opt = cls([x], **kw)
    steps = []
    for _ in range(3):
        opt.zero_grad()
        loss = (0.5 * a * x * x + b * x).sum()
        loss.backward()
        opt.step()
        steps.append(x.detach().tolist())
    return steps


def run_network(cls, kw):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in NET.items()}
    x, y = torch.tensor(NET_X), torch.tensor(NET_Y)
    opt = cls(list(p.values()), **kw)
    steps = []
    for _ in range(3):
        opt.zero_grad()
        h = torch.tanh(x @ p["w1"].T + p["b1"])
        out = h @ p["w2"].T + p["b2"]
        loss = torch.nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
        steps.append({k: v.detach().flatten().tolist() for k, v in p.items()})
    return steps


def lrs(make, epochs=30, metrics=None):
    x = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.1)
    sched = make(opt)
    out = []
    for epoch in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[epoch])
    return out


# A validation loss that improves, then stalls, then improves a little.
PLATEAU_METRICS = [1.0 - 0.1 * i for i in range(5)] + [0.6] * 10 + [0.55] * 5 + [0.56] * 10

SCHEDULES = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5),
    "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
    "warmup_cosine": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o,
        [
            torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
            torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=25, eta_min=0.0),
        ],
        milestones=[5],
    ),
    "warmup_step": lambda o: torch.optim.lr_scheduler.SequentialLR(
        o,
        [
            torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
            torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5),
        ],
        milestones=[5],
    ),
}


def main():
    ref = {
        "torch_version": torch.__version__,
        "quadratic": {"a": QUAD_A, "b": QUAD_B, "x0": QUAD_X0},
        "network": {"init": NET, "x": NET_X, "y": NET_Y},
        "optimizers": {},
        "schedules": {},
    }
    for name, (cls, kw) in OPTIMIZERS.items():
        ref["optimizers"][name] = {
            "hyper": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
            "quadratic": run_quadratic(cls, kw),
            "network": run_network(cls, kw),
        }
    for name, make in SCHEDULES.items():
        ref["schedules"][name] = lrs(make)
    ref["schedules"]["plateau"] = {
        "settings": dict(mode="min", factor=0.5, patience=2, threshold=1e-4,
                         threshold_mode="rel", cooldown=0, min_lr=0.01),
        "metrics": PLATEAU_METRICS,
        "lrs": lrs(
            lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(
                o, mode="min", factor=0.5, patience=2, threshold=1e-4,
                threshold_mode="rel", cooldown=0, min_lr=0.01),
            metrics=PLATEAU_METRICS,
        ),
    }
    out = pathlib.Path(__file__).with_name("torch_reference.json")
    out.write_text(json.dumps(ref, indent=1))
    print(f"wrote {out}")
    long_runs()


# ---------------------------------------------------------------------------------------
# torch_long.json: every option, 50 steps, float64 and float32.
#
# The gradients are g = c * w + noise_t, elementwise, with c, noise_t and the starting w
# exact dyadic numbers (12 significant bits at most) made from an integer hash of the
# element's index and the step: exactly representable in float32, so torch and the Rust
# test (which has the same `mix`) start from identical bits and compute the same
# gradient with one rounding (c * w rounds once; adding noise rounds once) in either
# type. The `c * w` term makes the run a real feedback loop (a quadratic pull towards a
# moving target), so a wrong update shows up in the next gradients too.

MASK = (1 << 64) - 1
STEPS = 50
# Steps after which the parameters are recorded (keeps the file small; errors
# accumulate, so a discrepancy in an unrecorded step still shows in later ones).
SNAPSHOTS = [1, 2, 3, 5, 10, 20, 30, 40, 50]


def mix(x):
    """splitmix64's finalizer, on the low 64 bits of x."""
    x &= MASK
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def hashed(j, t, salt):
    """An integer in [0, 2^64) from element index j, step t and a salt."""
    return mix(j * 0x9E3779B97F4A7C15 + t * 0xD1B54A32D192ED03 + salt)


def scale(j):
    """Element j's gradient scale 2^-k, k in 0..7 (so eps and tiny moments matter)."""
    return 2.0 ** -(hashed(j, 0, 1) % 8)


def coef(j):
    """Element j's curvature: scale * {1/8, ..., 8/8}."""
    return scale(j) * ((hashed(j, 0, 2) % 8) + 1) / 8


def start(j):
    """Element j's starting value in [-2, 2), a multiple of 2^-10."""
    return ((hashed(j, 0, 3) % 4096) - 2048) / 1024


def noise(j, t):
    """Element j's gradient noise at step t (1-based): scale * [-2, 2) in steps of 2^-10."""
    return scale(j) * (((hashed(j, t, 4) % 4096) - 2048) / 1024)


# The small runs: two parameters (37 elements and 2x3), element j = flat index.
SMALL_SHAPES = [[37], [2, 3]]

# The large runs: one parameter of LARGE_N elements, above adam.rs's PARALLEL_MIN
# (2^15), odd, so dl-optim splits it into blocks (3 on three threads: 33344, 33344,
# 33315) with a ragged tail. Element i uses pattern index i % LARGE_PERIOD, so every
# element's trajectory repeats with that period: the file stores one period, and the
# Rust test checks all LARGE_N elements against it (a prime period, so it never lines
# up with 64-element block boundaries or vector widths).
LARGE_N = 100_003
LARGE_PERIOD = 521
LARGE_SNAPSHOTS = [1, 10, 50]

KINDS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "rmsprop": torch.optim.RMSprop,
}

# (case name, kind, torch keyword arguments). Every option dl-optim has, alone and
# combined; torch's defaults otherwise (the Rust side starts from dl-optim's defaults,
# which are torch's, so a differing default fails here too).
LONG_CASES = [
    ("sgd", "sgd", dict(lr=0.05)),
    ("sgd_wd", "sgd", dict(lr=0.05, weight_decay=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd_momentum_dampening", "sgd", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd_momentum_dampening_wd", "sgd",
     dict(lr=0.05, momentum=0.7, dampening=0.3, weight_decay=0.05)),
    ("sgd_nesterov", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd_nesterov_wd", "sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_betas_eps", "adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("adam_wd", "adam", dict(lr=0.01, weight_decay=0.1)),
    ("adam_amsgrad", "adam", dict(lr=0.01, amsgrad=True)),
    ("adam_amsgrad_wd_betas", "adam",
     dict(lr=0.01, amsgrad=True, weight_decay=0.1, betas=(0.85, 0.995), eps=1e-7)),
    ("adamw", "adamw", dict(lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad", "adamw", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("adamw_betas_eps", "adamw", dict(lr=0.02, weight_decay=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("nadam", "nadam", dict(lr=0.01)),
    ("nadam_momentum_decay", "nadam", dict(lr=0.01, momentum_decay=0.05)),
    ("nadam_wd", "nadam", dict(lr=0.01, weight_decay=0.1)),
    ("nadam_all", "nadam",
     dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, momentum_decay=0.01, weight_decay=0.05)),
    ("adagrad", "adagrad", dict(lr=0.05)),
    ("adagrad_lr_decay", "adagrad", dict(lr=0.05, lr_decay=0.1)),
    ("adagrad_initial_accumulator", "adagrad", dict(lr=0.05, initial_accumulator_value=0.5)),
    ("adagrad_wd", "adagrad", dict(lr=0.05, weight_decay=0.1)),
    ("adagrad_all", "adagrad",
     dict(lr=0.05, lr_decay=0.05, initial_accumulator_value=0.1, weight_decay=0.05, eps=1e-6)),
    ("adadelta", "adadelta", dict()),
    ("adadelta_rho_eps", "adadelta", dict(lr=0.5, rho=0.8, eps=1e-5)),
    ("adadelta_wd", "adadelta", dict(lr=1.0, weight_decay=0.1)),
    ("rmsprop", "rmsprop", dict(lr=0.01)),
    ("rmsprop_alpha_eps", "rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("rmsprop_momentum", "rmsprop", dict(lr=0.01, momentum=0.9)),
    ("rmsprop_centered", "rmsprop", dict(lr=0.01, centered=True)),
    ("rmsprop_centered_momentum", "rmsprop", dict(lr=0.01, centered=True, momentum=0.9)),
    ("rmsprop_wd", "rmsprop", dict(lr=0.01, weight_decay=0.1)),
    ("rmsprop_all", "rmsprop",
     dict(lr=0.01, alpha=0.95, eps=1e-7, centered=True, momentum=0.5, weight_decay=0.1)),
]

LARGE_CASES = [
    ("adam", "adam", dict(lr=0.01)),
    ("adam_wd", "adam", dict(lr=0.01, weight_decay=0.1)),
    ("adam_amsgrad", "adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("adamw", "adamw", dict(lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad", "adamw", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


def run_long(kind, kw, shapes, dtype, period, snapshots):
    """Runs STEPS steps; returns the flat parameters (as float64 lists, exact for
    float32) after each step in `snapshots`, the first `period` elements only, and the
    largest difference between any element and its pattern element (0 when torch's own
    result is exactly periodic)."""
    # torch keeps its scalar state (step counts, NAdam's mu_product) in the default
    # dtype: float32 runs use float32 as a float32 user gets.
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        sizes = [math.prod(s) for s in shapes]
        n = sum(sizes)
        j = torch.arange(n) % period
        c = torch.tensor([coef(k) for k in range(period)], dtype=torch.float64)[j].to(dtype)
        w0 = torch.tensor([start(k) for k in range(period)], dtype=torch.float64)[j].to(dtype)
        params = [part.clone().reshape(s).requires_grad_()
                  for part, s in zip(w0.split(sizes), shapes)]
        opt = KINDS[kind](params, **kw)
        out, deviation = [], 0.0
        for t in range(1, STEPS + 1):
            nz = torch.tensor([noise(k, t) for k in range(period)], dtype=torch.float64)
            w = torch.cat([p.detach().flatten() for p in params])
            g = c * w + nz[j].to(dtype)
            for p, gp in zip(params, g.split(sizes)):
                p.grad = gp.reshape(p.shape).clone()
            opt.step()
            if t in snapshots:
                w = torch.cat([p.detach().flatten() for p in params]).double()
                deviation = max(deviation, (w - w[:period][j]).abs().max().item())
                out.append(w[:period].tolist())
        return out, deviation
    finally:
        torch.set_default_dtype(saved)


def jsonable(kw):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}


def long_runs():
    small_n = sum(math.prod(s) for s in SMALL_SHAPES)
    ref = {
        "torch_version": torch.__version__,
        "steps": STEPS,
        "small": {"shapes": SMALL_SHAPES, "snapshots": SNAPSHOTS, "cases": {}},
        "large": {"n": LARGE_N, "period": LARGE_PERIOD, "snapshots": LARGE_SNAPSHOTS,
                  "cases": {}},
    }
    for name, kind, kw in LONG_CASES:
        case = {"kind": kind, "hyper": jsonable(kw)}
        for key, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
            case[key], _ = run_long(kind, kw, SMALL_SHAPES, dtype, small_n, SNAPSHOTS)
        ref["small"]["cases"][name] = case
    for name, kind, kw in LARGE_CASES:
        case = {"kind": kind, "hyper": jsonable(kw)}
        for key, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
            case[key], dev = run_long(kind, kw, [[LARGE_N]], dtype, LARGE_PERIOD,
                                      LARGE_SNAPSHOTS)
            # Records how far torch itself is from periodic (vector body and scalar
            # tail may round differently); the Rust test's tolerance must cover it.
            case[key + "_period_deviation"] = dev
            print(f"large {name} {key}: torch's deviation from its period {dev:.3g}")
        ref["large"]["cases"][name] = case
    out = pathlib.Path(__file__).with_name("torch_long.json")
    out.write_text(json.dumps(ref, separators=(",", ":")))
    print(f"wrote {out} ({out.stat().st_size} bytes)")

if __name__ == "__main__":
    main()
