"""Reference values for dl-layers' grouped and depthwise Conv2d and ReLU6, from
PyTorch (CPU, float64).

Writes conv_groups_reference.json next to this script: for each nn.Conv2d case (the
constructor's arguments, PyTorch's initial weights, an input), the output and the
gradients of loss = sum(out * w_out) with respect to the input, weight and bias; and
relu6 of a few values (both kinks included) with the gradient of sum(relu6(x) * g).

Run: python3 dl-layers/tests/reference/make_conv_groups_reference.py
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(11)
torch.set_default_dtype(torch.float64)


def t(x):
    return {"shape": list(x.shape), "data": x.detach().reshape(-1).tolist()}


def conv_case(name, input_shape, c_in, c_out, k, **kw):
    m = nn.Conv2d(c_in, c_out, k, **kw)
    x = torch.randn(*input_shape, requires_grad=True)
    out = m(x)
    w_out = torch.randn(out.shape)
    (out * w_out).sum().backward()
    return {
        "name": name,
        "in_channels": c_in,
        "out_channels": c_out,
        "kernel": k,
        "stride": m.stride[0],
        "padding": m.padding[0],
        "dilation": m.dilation[0],
        "groups": m.groups,
        "weight": t(m.weight),
        "bias": t(m.bias) if m.bias is not None else None,
        "x": t(x),
        "out": t(out),
        "w_out": t(w_out),
        "grad_x": t(x.grad),
        "grad_weight": t(m.weight.grad),
        "grad_bias": t(m.bias.grad) if m.bias is not None else None,
    }


def relu6_case():
    x = torch.tensor([-3.0, -1e-3, 0.0, 1e-3, 2.5, 5.999, 6.0, 6.001, 9.0], requires_grad=True)
    g = torch.linspace(0.5, 2.5, x.numel())
    y = F.relu6(x)
    (y * g).sum().backward()
    return {"x": t(x), "g": t(g), "y": t(y), "grad_x": t(x.grad)}


if __name__ == "__main__":
    cases = [
        conv_case("grouped 2", (2, 4, 5, 5), 4, 6, 3, padding=1, groups=2),
        conv_case("depthwise x2 stride 2", (2, 3, 7, 6), 3, 6, 3, stride=2, padding=1, groups=3),
        conv_case("depthwise 3x3 no bias", (1, 8, 6, 6), 8, 8, 3, padding=1, groups=8, bias=False),
        conv_case("grouped pointwise", (2, 6, 4, 4), 6, 4, 1, groups=2),
        conv_case("depthwise dilated", (1, 4, 7, 7), 4, 4, 3, padding=2, dilation=2, groups=4),
    ]
    out = {"conv": cases, "relu6": relu6_case()}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_groups_reference.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", path)
