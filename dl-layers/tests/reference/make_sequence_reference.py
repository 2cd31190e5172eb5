"""Reference values for dl-layers' sequence layers, from PyTorch (CPU, float64).

Writes sequence_reference.json next to this script: for nn.RNN, nn.LSTM, nn.GRU
(stacked, and bidirectional over a padded batch with pack_padded_sequence) and
nn.MultiheadAttention (causal self-attention; cross-attention with a key padding
mask), the weights, inputs, outputs and the gradients of
    loss = sum(out * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c)]
(for attention: loss = sum(out * w_out)) with respect to the inputs and weights.

Run: python3 dl-layers/tests/reference/make_sequence_reference.py
"""
import json
import os

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

torch.manual_seed(7)
torch.set_default_dtype(torch.float64)


def t(x):
    return {"shape": list(x.shape), "data": x.detach().reshape(-1).tolist()}


def recurrent_case(cls, input_size, hidden, layers, batch, steps, bidirectional=False,
                   lengths=None, **kw):
    m = cls(input_size, hidden, num_layers=layers, batch_first=True,
            bidirectional=bidirectional, **kw)
    x = torch.randn(batch, steps, input_size, requires_grad=True)
    if lengths is None:
        out, state = m(x)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=False)
        out, state = m(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    w_out = torch.randn_like(out)
    w_h = torch.randn_like(h_n)
    loss = (out * w_out).sum() + (h_n * w_h).sum()
    case = {}
    if c_n is not None:
        w_c = torch.randn_like(c_n)
        loss = loss + (c_n * w_c).sum()
        case["w_c"] = t(w_c)
        case["c_n"] = t(c_n)
    loss.backward()
    case.update({
        "input_size": input_size, "hidden": hidden, "layers": layers,
        "bidirectional": bidirectional, "lengths": lengths,
        "params": {n: t(p) for n, p in m.named_parameters()},
        "grads": {n: t(p.grad) for n, p in m.named_parameters()},
        "x": t(x), "out": t(out), "h_n": t(h_n), "dx": t(x.grad),
        "w_out": t(w_out), "w_h": t(w_h),
    })
    return case


def attention_case(embed, heads, batch, tq, tk, causal=False, key_lengths=None):
    m = nn.MultiheadAttention(embed, heads, batch_first=True)
    # Nonzero biases, so their layout is checked too.
    with torch.no_grad():
        m.in_proj_bias.normal_(0, 0.1)
        m.out_proj.bias.normal_(0, 0.1)
    q = torch.randn(batch, tq, embed, requires_grad=True)
    if causal:
        k = v = q
        mask = torch.triu(torch.ones(tq, tq, dtype=torch.bool), diagonal=1)
        out, weights = m(q, q, q, attn_mask=mask)
    else:
        k = torch.randn(batch, tk, embed, requires_grad=True)
        v = torch.randn(batch, tk, embed, requires_grad=True)
        pad = torch.tensor([[j >= n for j in range(tk)] for n in key_lengths])
        out, weights = m(q, k, v, key_padding_mask=pad)
    w_out = torch.randn_like(out)
    (out * w_out).sum().backward()
    case = {
        "embed": embed, "heads": heads, "causal": causal, "key_lengths": key_lengths,
        "params": {n: t(p) for n, p in m.named_parameters()},
        "grads": {n: t(p.grad) for n, p in m.named_parameters()},
        "q": t(q), "out": t(out), "weights": t(weights), "w_out": t(w_out),
        "dq": t(q.grad),
    }
    if not causal:
        case.update({"k": t(k), "v": t(v), "dk": t(k.grad), "dv": t(v.grad)})
    return case


def encoder_block_case(embed, heads, ff, batch, steps, key_lengths):
    m = nn.TransformerEncoderLayer(embed, heads, ff, dropout=0.0, batch_first=True,
                                   norm_first=True)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n or "bias" in n:
                p.normal_(0.5 if n.endswith("weight") else 0.0, 0.1)
    x = torch.randn(batch, steps, embed, requires_grad=True)
    pad = torch.tensor([[j >= n for j in range(steps)] for n in key_lengths])
    out = m(x, src_key_padding_mask=pad)
    w_out = torch.randn_like(out)
    (out * w_out).sum().backward()
    return {
        "embed": embed, "heads": heads, "ff": ff, "key_lengths": key_lengths,
        "params": {n: t(p) for n, p in m.named_parameters()},
        "grads": {n: t(p.grad) for n, p in m.named_parameters()},
        "x": t(x), "out": t(out), "w_out": t(w_out), "dx": t(x.grad),
    }


cases = {
    "rnn_tanh": recurrent_case(nn.RNN, 3, 4, 2, 2, 5),
    "rnn_relu": recurrent_case(nn.RNN, 3, 4, 1, 2, 4, nonlinearity="relu"),
    "lstm": recurrent_case(nn.LSTM, 3, 4, 2, 2, 5),
    "gru": recurrent_case(nn.GRU, 3, 4, 2, 2, 5),
    "lstm_bidirectional_packed": recurrent_case(nn.LSTM, 3, 4, 1, 3, 5, True, [5, 2, 4]),
    "gru_bidirectional_packed": recurrent_case(nn.GRU, 3, 4, 1, 3, 5, True, [3, 5, 1]),
    "mha_causal_self": attention_case(8, 2, 2, 4, 4, causal=True),
    "mha_cross_padded": attention_case(8, 4, 2, 3, 5, key_lengths=[5, 2]),
    "encoder_block_pre_norm": encoder_block_case(8, 2, 16, 2, 5, key_lengths=[5, 3]),
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sequence_reference.json")
with open(path, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print("wrote", path)
