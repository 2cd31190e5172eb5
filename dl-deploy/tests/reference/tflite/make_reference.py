"""TensorFlow Lite Micro's own outputs for the two TFLM example models in models/.

For each of sine.tflite and speech.tflite this writes, into <model>/ beside this script:
- inputs.bin, outputs.bin: the int8 inputs and TFLM's int8 outputs for every case
  (tflref1 tensor files, see run_tflm.py and README.md);
- cases.txt: the quantization of input and output, the published reference point
  checked against TFLM, and one line per case (label, int8 output, dequantized output);
- card.txt: the model card, every operator, tensor and buffer as read from the
  flatbuffer by tflite-micro's generated Python schema (a parser independent of ours).

The script stops with an error if a model's sha256 is not the one recorded, if TFLM
disagrees with a published point, or if TFLM's view of the input/output quantization
differs from the flatbuffer's.

Run from the repository root (needs `pip install tflite-micro`, which brings numpy):

    python3 dl-deploy/tests/reference/tflite/make_reference.py
"""
import hashlib
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_tflm  # noqa: E402  (the shared tensor-file format and TFLM runner)

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb  # noqa: E402

# The shared data README's sha256 of each model (MicroFlow's redistribution of the
# TFLM examples); a different file would make every reference below about another model.
SHA256 = {
    "sine.tflite": "780cc6ff8ecec39193e3f32a877af73385c9d6abc39f47d0e846a22d808f65df",
    "speech.tflite": "09e5e2a9dfb2d8ed78802bf18ce297bff54281a66ca18e0c23d69ca14f822a83",
}

# Published points (MicroFlow's tests): float input -> dequantized float outputs.
PUBLISHED = {
    "sine.tflite": (0.5, ["0.41348344"]),
    "speech.tflite": (0.5, ["0.15625", "0.2734375", "0.2734375", "0.296875"]),
}

SEED = 18  # issue 18; one numpy stream per model, drawn in the order below

# speech.tflite reshapes its [1, 1960] input to [1, 49, 40, 1]: 49 frames of 40
# filterbank channels. The 2-D edge patterns follow that layout.
SPEECH_ROWS, SPEECH_COLS = 49, 40


def f32(x):
    """Shortest decimal that reads back as the same f32 (Rust's `str::parse::<f32>`)."""
    return str(np.float32(x))


def quantize(x, scale, zero_point):
    """TFLite's quantization of a float: round(x / scale) + zero_point, clamped to int8.

    x / scale is computed in f32 as TFLite's reference Quantize does; the rounding is
    std::round's, half away from zero (numpy's round is half to even), done in f64 where
    the f32 quotient and the + 0.5 are exact.
    """
    q = np.float64(np.float32(x) / np.float32(scale))
    r = np.sign(q) * np.floor(np.abs(q) + 0.5)
    return np.int8(np.clip(r + zero_point, -128, 127))


def dequantize(q, scale, zero_point):
    """(q - zero_point) * scale in f32: exact in TFLite's double then rounded once to f32,
    which is what f32 multiplication of the exact integer gives."""
    return (np.asarray(q, dtype=np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)


def edge_cases(n, zp, layout=None):
    """Input patterns at the ends of the int8 range and with structure the kernels may
    mishandle (sign, saturation, padding borders, strides). `layout` = (rows, cols)
    adds 2-D patterns and spikes at the corners of that grid."""
    i = np.arange(n)
    full = lambda v: np.full(n, v, dtype=np.int8)  # noqa: E731
    cases = [
        ("all_min", full(-128)),
        ("all_max", full(127)),
        ("all_zero_point", full(zp)),
        ("all_zero", full(0)),
        ("all_minus_one", full(-1)),
        ("alternating_min_max", np.where(i % 2 == 0, -128, 127).astype(np.int8)),
        ("alternating_max_min", np.where(i % 2 == 0, 127, -128).astype(np.int8)),
        ("ramp_mod256", ((i % 256) - 128).astype(np.int8)),
        ("ramp_desc_mod256", (127 - (i % 256)).astype(np.int8)),
    ]
    if n > 1:
        ramp = np.round(-128 + 255 * i / (n - 1)).astype(np.int8)
        cases.append(("ramp_min_to_max", ramp))
    spikes = [0, n - 1, n // 2]
    if layout is not None:
        rows, cols = layout
        r, c = i // cols, i % cols
        cases += [
            ("rows_alternating", np.where(r % 2 == 0, -128, 127).astype(np.int8)),
            ("cols_alternating", np.where(c % 2 == 0, -128, 127).astype(np.int8)),
            ("checkerboard", np.where((r + c) % 2 == 0, -128, 127).astype(np.int8)),
            ("top_half_max", np.where(r < rows // 2, 127, -128).astype(np.int8)),
            ("left_half_max", np.where(c < cols // 2, 127, -128).astype(np.int8)),
        ]
        corners = [(0, 0), (0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1), (1, 1), (rows - 2, cols - 2), (rows // 2, cols // 2)]
        spikes = [rr * cols + cc for rr, cc in corners]
    for p in dict.fromkeys(spikes):  # ordered, without repeats
        x = full(zp)
        x[p] = 127
        cases.append((f"spike_max_at_{p}", x))
        x = full(127)
        x[p] = -128
        cases.append((f"dip_min_at_{p}", x))
    return cases


def sine_cases(rng, in_q):
    """Every int8 input (the whole domain: one element), the x grid of [0, 2pi] at
    0.01 quantized, edge values and seeded random draws."""
    scale, zp = in_q
    cases = [(f"exhaustive_q={v}", np.array([v], dtype=np.int8)) for v in range(-128, 128)]
    xs = [k / 100 for k in range(0, 629)] + [2 * np.pi]
    cases += [(f"grid_x={x:.6f}", np.array([quantize(x, scale, zp)])) for x in xs]
    cases += edge_cases(1, zp)
    cases += [(f"random_full_{k}", rng.integers(-128, 127, size=1, endpoint=True, dtype=np.int8)) for k in range(128)]
    return cases


def speech_cases(rng, in_q):
    """Edge patterns and 1,000 seeded random inputs: uniform over the whole int8 range,
    uniform over the low ends [zp, zp+16|48|96] (real filterbank features sit near the
    zero point, and these reach every class rather than saturating), and sparse
    (zero point with 5% of elements uniform)."""
    _, zp = in_q
    n = SPEECH_ROWS * SPEECH_COLS
    cases = edge_cases(n, zp, (SPEECH_ROWS, SPEECH_COLS))
    for k in range(300):
        cases.append((f"random_full_{k}", rng.integers(-128, 127, size=n, endpoint=True, dtype=np.int8)))
    for width in (16, 48, 96):
        for k in range(200):
            hi = min(127, zp + width)
            cases.append((f"random_low{width}_{k}", rng.integers(zp, hi, size=n, endpoint=True, dtype=np.int8)))
    for k in range(100):
        x = np.full(n, zp, dtype=np.int8)
        hit = rng.random(n) < 0.05
        x[hit] = rng.integers(-128, 127, size=int(hit.sum()), endpoint=True, dtype=np.int8)
        cases.append((f"random_sparse_{k}", x))
    return cases


# ---------------------------------------------------------------- model card

def enum_names(cls):
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


OPS = enum_names(fb.BuiltinOperator)
TYPES = enum_names(fb.TensorType)
OPTIONS = enum_names(fb.BuiltinOptions)
# Option fields whose integer is an enum of the schema; printed by name.
OPTION_ENUMS = {
    "fused_activation_function": enum_names(fb.ActivationFunctionType),
    "padding": enum_names(fb.Padding),
    "weights_format": enum_names(fb.FullyConnectedOptionsWeightsFormat),
    "quantized_bias_type": TYPES,
}


def esc(s):
    """A string as one token: '%', whitespace, '=' and ',' as %XX (none occur in these
    two models' names, but a name is free text in the schema)."""
    if s is None:
        return "-"
    if isinstance(s, bytes):
        s = s.decode("utf-8")
    return re.sub(r"[%\s=,]", lambda m: "%{:02X}".format(ord(m.group())), s) if s else "%"


def lst(xs, fmt=str):
    """A list as comma-separated values; '' for an empty list, '-' for an absent one."""
    if xs is None:
        return "-"
    return ",".join(fmt(x) for x in (xs.tolist() if hasattr(xs, "tolist") else xs))


def opname(model, op_code_index):
    oc = model.operatorCodes[op_code_index]
    # Codes above 127 live in builtin_code; older files only fill the deprecated byte.
    return OPS[max(oc.builtinCode, oc.deprecatedBuiltinCode)]


def option_fields(options):
    """The builtin options as (snake_case schema name, printed value) pairs."""
    out = []
    for k, v in vars(options).items():
        name = re.sub(r"([A-Z])", r"_\1", k).lower()
        if name in OPTION_ENUMS:
            v = OPTION_ENUMS[name][v]
        elif v is None:
            v = "-"
        elif isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (int, np.integer)):
            v = str(int(v))
        elif isinstance(v, (float, np.floating)):
            v = f32(v)
        elif isinstance(v, (list, np.ndarray)):
            v = lst(v)
        else:
            raise ValueError(f"option {name} of unhandled kind {type(v).__name__}: extend the card")
        out.append((name, v))
    return out


def card_lines(fname, data):
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    lines = [
        f"# Model card of {fname}: every record as read from the flatbuffer by tflite-micro's",
        "# generated schema (schema_py_generated.py). Format: README.md.",
        f"model file={fname} bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()} "
        f"version={model.version} description={esc(model.description)} "
        f"operator_codes={len(model.operatorCodes)} subgraphs={len(model.subgraphs)} buffers={len(model.buffers)}",
    ]
    for k, oc in enumerate(model.operatorCodes):
        lines.append(
            f"operator_code index={k} op={OPS[max(oc.builtinCode, oc.deprecatedBuiltinCode)]} "
            f"builtin_code={oc.builtinCode} deprecated_builtin_code={oc.deprecatedBuiltinCode} "
            f"version={oc.version} custom_code={esc(oc.customCode)}"
        )
    for s, sg in enumerate(model.subgraphs):
        lines.append(
            f"subgraph index={s} name={esc(sg.name)} tensors={len(sg.tensors)} operators={len(sg.operators)} "
            f"inputs={lst(sg.inputs)} outputs={lst(sg.outputs)}"
        )
        for t, ten in enumerate(sg.tensors):
            buf = model.buffers[ten.buffer]
            nbytes = 0 if buf.data is None else len(buf.data)
            q = ten.quantization
            has_q = q is not None and q.scale is not None and len(q.scale) > 0
            if q is not None and q.details is not None:
                raise ValueError(f"tensor {t} has custom quantization details: extend the card")
            if ten.sparsity is not None:
                raise ValueError(f"tensor {t} is sparse: extend the card")
            quant = (
                f"scale={lst(q.scale, f32)} zero_point={lst(q.zeroPoint)} quantized_dimension={q.quantizedDimension}"
                if has_q
                else "scale=- zero_point=- quantized_dimension=-"
            )
            minmax = f"min={lst(q.min, f32)} max={lst(q.max, f32)}" if q is not None else "min=- max=-"
            lines.append(
                f"tensor subgraph={s} index={t} name={esc(ten.name)} type={TYPES[ten.type]} "
                f"shape={lst(ten.shape)} shape_signature={lst(ten.shapeSignature)} "
                f"buffer={ten.buffer} buffer_bytes={nbytes} constant={'true' if nbytes else 'false'} "
                f"variable={'true' if ten.isVariable else 'false'} "
                f"input={'true' if t in list(sg.inputs) else 'false'} output={'true' if t in list(sg.outputs) else 'false'} "
                f"{quant} {minmax}"
            )
        for o, op in enumerate(sg.operators):
            if op.customOptions is not None or op.intermediates is not None:
                raise ValueError(f"operator {o} has custom options or intermediates: extend the card")
            opts = "".join(f" {k}={v}" for k, v in option_fields(op.builtinOptions)) if op.builtinOptions else ""
            lines.append(
                f"operator subgraph={s} index={o} op={opname(model, op.opcodeIndex)} opcode_index={op.opcodeIndex} "
                f"inputs={lst(op.inputs)} outputs={lst(op.outputs)} options={OPTIONS[op.builtinOptionsType]}{opts}"
            )
    for b, buf in enumerate(model.buffers):
        lines.append(f"buffer index={b} bytes={0 if buf.data is None else len(buf.data)} offset={buf.offset} size={buf.size}")
    for md in model.metadata or []:
        lines.append(f"metadata name={esc(md.name)} buffer={md.buffer}")
    for sd in model.signatureDefs or []:
        ins = lst([f"{esc(t.name)}:{t.tensorIndex}" for t in sd.inputs or []])
        outs = lst([f"{esc(t.name)}:{t.tensorIndex}" for t in sd.outputs or []])
        lines.append(f"signature_def key={esc(sd.signatureKey)} subgraph={sd.subgraphIndex} inputs={ins} outputs={outs}")
    return model, lines


def io_quant(model, t):
    """(scale, zero_point) of a per-tensor quantized tensor, from the flatbuffer."""
    q = model.subgraphs[0].tensors[t].quantization
    assert len(q.scale) == 1 and len(q.zeroPoint) == 1, "input/output quantized per tensor"
    return np.float32(q.scale[0]), int(q.zeroPoint[0])


def check_details(what, details, quant):
    """TFLM's own view of an input/output must match what the flatbuffer says."""
    qp = details["quantization_parameters"]
    got = (np.float32(qp["scales"][0]), int(qp["zero_points"][0]))
    if got != quant or np.dtype(details["dtype"]) != np.int8:
        raise SystemExit(f"{what}: TFLM sees {details}, the flatbuffer says int8 {quant}")


# ---------------------------------------------------------------- per model

def make(fname, make_cases):
    path = os.path.join(HERE, "models", fname)
    with open(path, "rb") as f:
        data = f.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[fname]:
        raise SystemExit(f"{path}: sha256 {digest}, expected {SHA256[fname]}")

    model, card = card_lines(fname, data)
    sg = model.subgraphs[0]
    in_q, out_q = io_quant(model, sg.inputs[0]), io_quant(model, sg.outputs[0])
    interp = run_tflm.open_interpreter(data)
    check_details(f"{fname} input", interp.get_input_details(0), in_q)
    check_details(f"{fname} output", interp.get_output_details(0), out_q)
    in_shape = tuple(int(d) for d in sg.tensors[sg.inputs[0]].shape)
    out_shape = tuple(int(d) for d in sg.tensors[sg.outputs[0]].shape)
    n_in = int(np.prod(in_shape))

    # The published point first, so its index is fixed at 0.
    x_pub, want_pub = PUBLISHED[fname]
    q_pub = quantize(x_pub, *in_q)
    cases = [(f"published_x={x_pub}", np.full(n_in, q_pub, dtype=np.int8))]
    cases += make_cases(np.random.default_rng(SEED), in_q)
    labels = [c[0] for c in cases]
    inputs = np.stack([c[1].reshape(in_shape) for c in cases]).astype(np.int8)
    assert all(len(c[1]) == n_in for c in cases)

    outputs = run_tflm.run(data, inputs)
    deq = dequantize(outputs, *out_q)

    got_pub = [f32(v) for v in deq[0].reshape(-1)]
    # Exact: the published figures are f32 printed in shortest form, as is ours, and
    # dequantization has a single rounding; the int8 outputs behind them are exact too.
    if [np.float32(v) for v in got_pub] != [np.float32(v) for v in want_pub]:
        raise SystemExit(f"{fname}: TFLM gives {got_pub} at x={x_pub}, published {want_pub}")

    out_dir = os.path.join(HERE, fname.split(".")[0])
    os.makedirs(out_dir, exist_ok=True)
    run_tflm.write_tensors(os.path.join(out_dir, "inputs.bin"), inputs)
    run_tflm.write_tensors(os.path.join(out_dir, "outputs.bin"), outputs)
    with open(os.path.join(out_dir, "card.txt"), "w") as f:
        f.write("\n".join(card) + "\n")

    shp = lambda s: ",".join(map(str, s))  # noqa: E731
    lines = [
        f"# TFLM's int8 outputs for {fname}; written by make_reference.py. Format: README.md.",
        f"model {fname}",
        f"model_sha256 {digest}",
        f"tflite_micro {run_tflm.tflm_version()}",
        f"numpy {np.__version__}",
        f"seed {SEED}",
        f"count {len(cases)}",
        f"input dtype=int8 shape={shp(in_shape)} scale={f32(in_q[0])} zero_point={in_q[1]}",
        f"output dtype=int8 shape={shp(out_shape)} scale={f32(out_q[0])} zero_point={out_q[1]}",
        f"published case=0 x={x_pub} input_q={int(q_pub)} output_q={lst(outputs[0].reshape(-1))} "
        f"output={lst(got_pub)} published_output={lst(want_pub)}",
    ]
    for k, (label, o, d) in enumerate(zip(labels, outputs, deq)):
        lines.append(f"case {k} {label} {lst(o.reshape(-1))} {lst(d.reshape(-1), f32)}")
    with open(os.path.join(out_dir, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    distinct = len({o.tobytes() for o in outputs})
    print(f"{fname}: {len(cases)} cases, {distinct} distinct outputs; published point: int8 {lst(outputs[0].reshape(-1))} -> {lst(got_pub)}")


if __name__ == "__main__":
    print(f"tflite-micro {run_tflm.tflm_version()}, numpy {np.__version__}")
    make("sine.tflite", sine_cases)
    make("speech.tflite", speech_cases)
