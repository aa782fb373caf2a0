"""The few CUDA runtime calls the TensorRT backend needs, through NVIDIA's ``cuda-bindings``.

Every cuda-bindings call returns a tuple whose first item is a ``cudaError_t``; :func:`check`
turns a failure into a :class:`~facelib.errors.BackendError` naming the call and the error.
``from cuda.bindings import runtime`` is used when present (cuda-bindings >= 12.6), else the
older ``from cuda import cudart`` (removed in cuda-bindings 13).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from facelib.errors import BackendError

_LOCK = threading.Lock()


def import_runtime() -> Any:
    """The cuda-bindings runtime module; raises ImportError naming both import paths."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError as first:
        try:
            from cuda import cudart

            return cudart
        except ImportError:
            raise ImportError(
                f"neither cuda.bindings.runtime nor cuda.cudart is importable ({first}); "
                "install cuda-bindings: pip install 'cuda-python>=12'"
            ) from first


def _error_text(rt: Any, err: Any) -> str:
    try:
        name = rt.cudaGetErrorName(err)[1]
        text = rt.cudaGetErrorString(err)[1]
        name = name.decode() if isinstance(name, bytes) else str(name)
        text = text.decode() if isinstance(text, bytes) else str(text)
        return f"{name} ({text})"
    except Exception:  # noqa: BLE001 - best effort for the message only
        return str(err)


def check(rt: Any, result: Any, call: str) -> Any:
    """Return the value(s) of a cuda-bindings call, raising BackendError when it failed.

    ``result`` is the tuple the call returned: ``(err,)``, ``(err, value)`` or longer.
    """
    if not isinstance(result, tuple):
        result = (result,)
    err = result[0]
    if err != rt.cudaError_t.cudaSuccess:
        raise BackendError(f"CUDA call {call} failed: {_error_text(rt, err)}")
    if len(result) == 1:
        return None
    if len(result) == 2:
        return result[1]
    return result[1:]


def device_summary(rt: Any, device_id: int) -> tuple[str, int, int]:
    """``(name, major, minor)`` of CUDA device ``device_id``."""
    prop = check(rt, rt.cudaGetDeviceProperties(device_id), f"cudaGetDeviceProperties({device_id})")
    name = prop.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode(errors="replace")
    return str(name).strip(), int(prop.major), int(prop.minor)


class DeviceBuffer:
    """One ``cudaMalloc`` allocation; grows on demand and is freed by :meth:`free`."""

    def __init__(self, rt: Any, nbytes: int) -> None:
        self._rt = rt
        self.nbytes = 0
        self.ptr = 0
        self.ensure(nbytes)

    def ensure(self, nbytes: int) -> bool:
        """Make the buffer at least ``nbytes`` large; True when it was (re)allocated."""
        nbytes = max(int(nbytes), 1)
        if nbytes <= self.nbytes and self.ptr:
            return False
        self.free()
        self.ptr = int(check(self._rt, self._rt.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))
        self.nbytes = nbytes
        return True

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.nbytes = self.ptr, 0, 0
            check(self._rt, self._rt.cudaFree(ptr), "cudaFree")


class Stream:
    """A CUDA stream (TensorRT must not run on the default stream)."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt
        self._stream: Any = check(rt, rt.cudaStreamCreate(), "cudaStreamCreate")

    @property
    def handle(self) -> int:
        """The ``cudaStream_t`` as the integer TensorRT's ``execute_async_v3`` takes."""
        try:
            return int(self._stream)
        except TypeError:  # older cuda-python objects expose only getPtr()
            return int(self._stream.getPtr())

    def upload(self, buffer: DeviceBuffer, array: np.ndarray) -> None:
        """Asynchronous host -> device copy of a C-contiguous array (keep it alive until sync)."""
        if array.nbytes > buffer.nbytes:
            raise BackendError(f"internal: {array.nbytes} bytes do not fit a {buffer.nbytes}-byte device buffer")
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(
            self._rt,
            self._rt.cudaMemcpyAsync(buffer.ptr, array.ctypes.data, array.nbytes, kind, self._stream),
            "cudaMemcpyAsync(host to device)",
        )

    def download(self, array: np.ndarray, buffer: DeviceBuffer) -> None:
        """Asynchronous device -> host copy into a C-contiguous array (valid after :meth:`sync`)."""
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(
            self._rt,
            self._rt.cudaMemcpyAsync(array.ctypes.data, buffer.ptr, array.nbytes, kind, self._stream),
            "cudaMemcpyAsync(device to host)",
        )

    def sync(self) -> None:
        check(self._rt, self._rt.cudaStreamSynchronize(self._stream), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            check(self._rt, self._rt.cudaStreamDestroy(stream), "cudaStreamDestroy")


def upload_sync(rt: Any, buffer: DeviceBuffer, array: np.ndarray) -> None:
    """Synchronous host -> device copy (calibration batches)."""
    kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
    check(rt, rt.cudaMemcpy(buffer.ptr, array.ctypes.data, array.nbytes, kind), "cudaMemcpy(host to device)")


def set_device(rt: Any, device_id: int) -> None:
    with _LOCK:
        check(rt, rt.cudaSetDevice(int(device_id)), f"cudaSetDevice({device_id})")
