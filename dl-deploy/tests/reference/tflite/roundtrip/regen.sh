#!/bin/sh
# Regenerates this directory: trains the digits CNN (fixed seed), writes its checkpoint,
# the int8 and f32 models exported by dl-deploy's `tflite::export`, the test images,
# then runs both models through TensorFlow Lite Micro (`pip install tflite-micro`).
# Run from anywhere (with CARGO_TARGET_DIR set as you build); dl-optim's test `tflite_roundtrip` checks the result.
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../../../.."
cargo run --release -p dl-optim --example digits_cnn_tflite
ref=dl-deploy/tests/reference/tflite
python3 $ref/run_tflm.py $ref/roundtrip/digits_cnn_int8.tflite $ref/roundtrip/inputs.bin $ref/roundtrip/tflm_int8_out.bin
python3 $ref/run_tflm.py $ref/roundtrip/digits_cnn_f32.tflite $ref/roundtrip/inputs.bin $ref/roundtrip/tflm_f32_out.bin
python3 $ref/run_tflm.py $ref/roundtrip/digits_cnn_int8_io.tflite $ref/roundtrip/inputs_int8.bin $ref/roundtrip/tflm_int8_io_out.bin
