"""Run any .tflite model through TensorFlow Lite Micro's own interpreter.

    python3 run_tflm.py MODEL.tflite INPUTS OUTPUTS

INPUTS and OUTPUTS are "tflref1" tensor files (spec in README.md beside this script):
one ASCII header line, then `count` tensors back to back, little-endian, row-major:

    tflref1 dtype=int8 shape=1,1960 count=1041\n<raw bytes>

Each input tensor is fed to input 0 of the model (its dtype must match the model's
input and its element count the input tensor's), the interpreter is invoked, and
output 0 is appended to OUTPUTS, whose header carries the model's output dtype and
shape. Only single-input, single-output models are taken: the round trip this serves
(our exported .tflite run by TFLM) has one of each, and a silent choice of tensor
would hide a mismatch.

The interpreter is `tflite-micro` from PyPI (`pip install tflite-micro`), TFLM built
for the host with its reference kernels. It is reset before every tensor so each
output depends on its input alone, even for a model with variable tensors.
"""
import sys

import numpy as np

MAGIC = "tflref1"

# One spelling per dtype, shared by the header and TFLite's tensor type names.
DTYPES = {
    "int8": np.dtype("int8"),
    "uint8": np.dtype("uint8"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float32": np.dtype("<f4"),
}


def dtype_name(dtype):
    """The header's name for a numpy dtype, or a clear error for one it cannot carry."""
    dtype = np.dtype(dtype)
    for name, d in DTYPES.items():
        if d == dtype.newbyteorder("<") or d == dtype:
            return name
    raise ValueError(f"dtype {dtype} has no tflref1 name (known: {', '.join(DTYPES)})")


def write_tensors(path, array):
    """Write `array` (shape: count x per-tensor shape) as a tflref1 file."""
    array = np.ascontiguousarray(array)
    if array.ndim < 1:
        raise ValueError("need a leading count axis")
    name = dtype_name(array.dtype)
    shape = ",".join(str(d) for d in array.shape[1:])
    header = f"{MAGIC} dtype={name} shape={shape} count={array.shape[0]}\n"
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(array.astype(DTYPES[name], copy=False).tobytes())


def read_tensors(path):
    """Read a tflref1 file into an array of shape (count, *shape)."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"\n")
    if not data.startswith(MAGIC.encode("ascii") + b" ") or end < 0:
        raise ValueError(f"{path}: not a tflref1 file (its first line must start with '{MAGIC} ')")
    fields = data[:end].decode("ascii", errors="replace").split(" ")
    kv = dict(f.split("=", 1) for f in fields[1:])
    if set(kv) != {"dtype", "shape", "count"}:
        raise ValueError(f"{path}: header keys {sorted(kv)}, want count, dtype, shape")
    if kv["dtype"] not in DTYPES:
        raise ValueError(f"{path}: unknown dtype {kv['dtype']!r}")
    dtype = DTYPES[kv["dtype"]]
    shape = tuple(int(d) for d in kv["shape"].split(",")) if kv["shape"] else ()
    count = int(kv["count"])
    body = data[end + 1 :]
    want = count * int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(body) != want:
        raise ValueError(f"{path}: {len(body)} data bytes, header says {want}")
    return np.frombuffer(body, dtype=dtype).reshape((count,) + shape)


def tflm_version():
    """The installed tflite-micro version string (a dated dev build with its git hash)."""
    from tflite_micro.python.tflite_micro import _version

    return _version.__version__


def open_interpreter(model_bytes):
    """TFLM's interpreter on a model, after checking it has one input and one output."""
    from tflite_micro.python.tflite_micro import runtime

    model = runtime.convert_bytearray_to_object(bytearray(model_bytes))
    sg = model.subgraphs[0]
    if len(model.subgraphs) != 1 or len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ValueError(
            f"model has {len(model.subgraphs)} subgraphs, {len(sg.inputs)} inputs, "
            f"{len(sg.outputs)} outputs; run_tflm takes one subgraph with one of each"
        )
    return runtime.Interpreter.from_bytes(model_bytes)


def run(model_bytes, inputs):
    """TFLM's output 0 for each tensor of `inputs` (count x ...), as (count x out shape)."""
    interp = open_interpreter(model_bytes)
    in_d = interp.get_input_details(0)
    out_d = interp.get_output_details(0)
    in_shape = tuple(int(d) for d in in_d["shape"])
    if np.dtype(in_d["dtype"]) != inputs.dtype.newbyteorder("="):
        raise ValueError(f"inputs are {inputs.dtype}, the model's input is {np.dtype(in_d['dtype'])}")
    per_case = int(np.prod(inputs.shape[1:], dtype=np.int64))
    if per_case != int(np.prod(in_shape, dtype=np.int64)):
        raise ValueError(f"inputs have {per_case} elements each, the model's input {in_shape} has {int(np.prod(in_shape))}")
    out_shape = tuple(int(d) for d in out_d["shape"])
    out = np.empty((inputs.shape[0],) + out_shape, dtype=np.dtype(out_d["dtype"]))
    for i, x in enumerate(inputs):
        interp.reset()
        interp.set_input(np.ascontiguousarray(x.reshape(in_shape), dtype=np.dtype(in_d["dtype"])), 0)
        interp.invoke()
        out[i] = interp.get_output(0).reshape(out_shape)
    return out


def main(argv):
    if len(argv) != 4:
        sys.exit(f"usage: {argv[0]} MODEL.tflite INPUTS OUTPUTS")
    try:
        with open(argv[1], "rb") as f:
            model_bytes = f.read()
        inputs = read_tensors(argv[2])
        outputs = run(model_bytes, inputs)
        write_tensors(argv[3], outputs)
    except (OSError, ValueError, RuntimeError) as e:
        # One line naming the file and the mismatch, not a traceback.
        sys.exit(f"run_tflm: {e}")
    print(f"{argv[1]}: {inputs.shape[0]} inputs run by tflite-micro {tflm_version()} -> {argv[3]}")


if __name__ == "__main__":
    main(sys.argv)
