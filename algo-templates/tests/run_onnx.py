"""Runs an ONNX model in ONNX Runtime on raw float32 input; used by onnx_export.rs.

usage: run_onnx.py MODEL INPUT_F32 SHAPE_JSON OUTPUT_F32
Checks the model with ONNX's own checker first. Writes the output's values (little-endian float32, C order) and prints its shape as JSON.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model, input_path, shape, output_path = sys.argv[1:5]
onnx.checker.check_model(onnx.load(model), full_check=True)
x = np.fromfile(input_path, dtype="<f4").reshape(json.loads(shape))
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
(name,) = [i.name for i in session.get_inputs()]
(y,) = session.run(None, {name: x})
y.astype("<f4").tofile(output_path)
print(json.dumps(list(y.shape)))
