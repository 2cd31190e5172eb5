#!/bin/sh
# Regenerates this directory: the hand-built graph of dl-deploy/tests/tflite_export.rs
# exported (int8 and f32) with its inputs, then both models run through TensorFlow Lite
# Micro (`pip install tflite-micro`). Run from anywhere.
set -e
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../../../.."
DL_WRITE_TFLITE_EXPORT=1 cargo test -p dl-deploy --test tflite_export -- export_runs
ref=dl-deploy/tests/reference/tflite
python3 $ref/run_tflm.py $ref/export/ops_int8.tflite $ref/export/inputs.bin $ref/export/tflm_int8_out.bin
python3 $ref/run_tflm.py $ref/export/ops_f32.tflite $ref/export/inputs.bin $ref/export/tflm_f32_out.bin
