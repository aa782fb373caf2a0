"""Built-in plugin: registers the ONNX Runtime backend through the public hook, like any plugin."""

from __future__ import annotations

from facelib.backends.base import Backend
from facelib.backends.hookspecs import hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the backends that ship with facelib."""
    from facelib.backends.onnxruntime import OnnxRuntimeBackend

    return [OnnxRuntimeBackend]
