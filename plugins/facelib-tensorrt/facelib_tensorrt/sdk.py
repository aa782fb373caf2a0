"""Importing TensorRT and collecting its log messages (most TensorRT calls report errors there)."""

from __future__ import annotations

import threading
from typing import Any

from facelib.errors import BackendUnavailableError

#: Oldest TensorRT whose Python API this plugin uses (tensor-address API, execute_async_v3).
MIN_MAJOR = 10


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError saying how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the TensorRT Python package is not installed ({exc}); "
            "pip install 'tensorrt-cu12>=10,<12' (or tensorrt-cu13 for CUDA 13 drivers)"
        ) from exc
    return tensorrt


def trt_major(trt: Any) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except (AttributeError, ValueError):
        return 0


def make_logger(trt: Any, min_severity: str = "WARNING") -> Any:
    """A ``trt.ILogger`` that keeps error and warning messages for our error reports."""

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[tuple[Any, str]] = []
            self._lock = threading.Lock()
            self._threshold = getattr(trt.ILogger.Severity, min_severity)

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(self._threshold):
                with self._lock:
                    self.messages.append((severity, str(msg)))

        def errors(self, since: int = 0) -> list[str]:
            bad = (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR)
            with self._lock:
                return [m for s, m in self.messages[since:] if s in bad]

        def mark(self) -> int:
            with self._lock:
                return len(self.messages)

        def explain(self, since: int = 0) -> str:
            errs = self.errors(since)
            return ("; TensorRT said: " + " | ".join(errs[-5:])) if errs else ""

    return CollectingLogger()


#: TensorRT DataType member name -> numpy dtype name (types numpy lacks are refused).
DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "INT8": "int8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
    "UINT8": "uint8",
}


def dtype_name(trt_dtype: Any) -> str | None:
    """numpy dtype name of a ``trt.DataType``, or None for BF16/FP8/INT4/... (no numpy type)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    return DTYPES.get(str(name))
