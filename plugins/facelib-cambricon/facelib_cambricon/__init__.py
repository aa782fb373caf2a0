"""facelib backend for Cambricon MLUs through MagicMind."""

from facelib_cambricon.backend import CambriconBackend
from facelib_cambricon.builder import BuildOptions, build_from_onnx, build_from_tensorflow

__all__ = ["BuildOptions", "CambriconBackend", "build_from_onnx", "build_from_tensorflow"]
