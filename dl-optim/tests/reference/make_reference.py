"""Reference values for dl-optim's optimizer and schedule tests, from torch.optim.

Run: python3 dl-optim/tests/reference/make_reference.py  (writes torch_reference.json)

Optimizers: 3 steps on (a) a fixed quadratic and (b) a fixed tiny network, in float64,
parameters recorded after every step. Schedules: the learning rate at each of 30 epochs.
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


if __name__ == "__main__":
    main()
