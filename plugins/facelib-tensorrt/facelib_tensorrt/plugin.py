"""The pluggy hook that registers the TensorRT backend (entry point ``facelib.backends: tensorrt``)."""

from __future__ import annotations

from facelib.backends import Backend, hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the TensorRT backend class (TensorRT itself is imported only when used)."""
    from facelib_tensorrt.backend import TensorRTBackend

    return [TensorRTBackend]
