"""TensorFlow Lite Micro's outputs for the small int8 models in this directory.

Each `NAME.tflite` (written by `committed_models_are_the_builders` in
dl-deploy/src/tflite/tests.rs) takes one int8 input; this runs TFLM's own
interpreter (PyPI package `tflite-micro`, which wraps its reference kernels) on the
input whose element i (row-major) is `((i * 37 + 11) mod 256) - 128` (for 256
values, every int8 value once) and writes `tflm_outputs.txt`, one line per model:
`NAME: y0,y1,...` (row-major). dl-deploy/tests/tflite.rs reads that file; the Rust tests
never need Python. The committed outputs came from tflite-micro 0.dev20261023182759.

    pip install tflite-micro numpy
    python3 make_reference.py
"""

import glob
import os

import numpy as np
from tflite_micro.python.tflite_micro import runtime

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    lines = []
    for path in sorted(glob.glob(os.path.join(HERE, "*.tflite"))):
        name = os.path.basename(path)[: -len(".tflite")]
        interp = runtime.Interpreter.from_file(path)
        shape = interp.get_input_details(0)["shape"]
        i = np.arange(int(np.prod(shape)))
        x = ((i * 37 + 11) % 256 - 128).astype(np.int8).reshape(shape)
        interp.set_input(x, 0)
        interp.invoke()
        y = interp.get_output(0).reshape(-1)
        lines.append(f"{name}: " + ",".join(str(int(v)) for v in y))
    with open(os.path.join(HERE, "tflm_outputs.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
