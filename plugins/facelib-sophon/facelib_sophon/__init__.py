"""facelib backend for Sophgo TPUs: TPU-MLIR (compile) and SOPHON SAIL (run)."""

from facelib_sophon.backend import SophonBackend
from facelib_sophon.compiler import SophonCompileOptions, combine_bmodels, compile_onnx

__all__ = ["SophonBackend", "SophonCompileOptions", "combine_bmodels", "compile_onnx"]
