"""facelib backend plugin for NVIDIA TensorRT (10.x and 11.x) with CUDA through cuda-bindings."""

from facelib_tensorrt.backend import TensorRTBackend, TensorRTSession

__all__ = ["TensorRTBackend", "TensorRTSession"]
