"""Example facelib backend plugin: ONNX's pure-Python reference evaluator."""
