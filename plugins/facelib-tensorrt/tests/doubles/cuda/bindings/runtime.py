"""Test double of ``cuda.bindings.runtime`` (cuda-bindings 12.x/13.x): the calls facelib uses.

Device memory is simulated: allocations live in a private address range (never host memory),
every copy is checked against live allocations, and stream work runs only at synchronisation.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400
    cudaErrorIllegalAddress = 700
    cudaErrorLaunchFailure = 719


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


_DESCRIPTIONS = {
    cudaError_t.cudaSuccess: "no error",
    cudaError_t.cudaErrorInvalidValue: "invalid argument",
    cudaError_t.cudaErrorMemoryAllocation: "out of memory",
    cudaError_t.cudaErrorInsufficientDriver: "CUDA driver version is insufficient for CUDA runtime version",
    cudaError_t.cudaErrorNoDevice: "no CUDA-capable device is detected",
    cudaError_t.cudaErrorInvalidDevice: "invalid device ordinal",
    cudaError_t.cudaErrorInvalidResourceHandle: "invalid resource handle",
    cudaError_t.cudaErrorIllegalAddress: "an illegal memory access was encountered",
    cudaError_t.cudaErrorLaunchFailure: "unspecified launch failure",
}

_BASE = 1 << 44  # simulated device addresses: far from any host mapping
_ALIGN = 256


class cudaStream_t:
    def __init__(self, handle: int) -> None:
        self._handle = handle

    def __int__(self) -> int:
        return self._handle

    def getPtr(self) -> int:
        return self._handle


class cudaDeviceProp:
    def __init__(self, name: str, major: int, minor: int, total: int) -> None:
        self.name = name.encode() + b"\0" * (256 - len(name))
        self.major = major
        self.minor = minor
        self.totalGlobalMem = total


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.devices = [("NVIDIA GeForce RTX 4090 (test double)", 8, 9, 8 << 30)]
        self.driver_version = 12080
        self.current = 0
        self.allocations: dict[int, np.ndarray] = {}
        self.next_address = _BASE
        self.streams: dict[int, list[Callable[[], None]]] = {}
        self.next_stream = 0x5000
        self.failures: dict[int, cudaError_t] = {}
        self.malloc_calls = 0
        self.free_calls = 0


_S = _State()


# -- test-only knobs ---------------------------------------------------------------------------


def _configure(devices: list[tuple[str, int, int, int]] | None = None, driver_version: int | None = None) -> None:
    if devices is not None:
        _S.devices = list(devices)
    if driver_version is not None:
        _S.driver_version = driver_version


def _reset() -> None:
    global _S
    _S = _State()


def _live_allocations() -> dict[int, int]:
    return {addr: buf.nbytes for addr, buf in _S.allocations.items()}


def _stats() -> dict[str, int]:
    return {"malloc": _S.malloc_calls, "free": _S.free_calls, "streams": len(_S.streams)}


# -- device memory access used by the TensorRT double (same "device") -----------------------------


def _device_view(ptr: int, nbytes: int) -> np.ndarray | None:
    """The bytes [ptr, ptr+nbytes) when they lie inside one live allocation, else None."""
    with _S.lock:
        for base, buf in _S.allocations.items():
            if base <= ptr and ptr + nbytes <= base + buf.nbytes:
                return buf[ptr - base : ptr - base + nbytes]
    return None


def _is_device_address(ptr: int) -> bool:
    return _BASE <= ptr < _BASE + (1 << 40)


def _stream_alive(handle: int) -> bool:
    return handle in _S.streams


def _enqueue(handle: int, work: Callable[[], None]) -> bool:
    with _S.lock:
        if handle not in _S.streams:
            return False
        _S.streams[handle].append(work)
        return True


# -- the API ---------------------------------------------------------------------------------------


def cudaGetErrorName(err: Any) -> tuple[cudaError_t, bytes]:
    return cudaError_t.cudaSuccess, cudaError_t(err).name.encode()


def cudaGetErrorString(err: Any) -> tuple[cudaError_t, bytes]:
    return cudaError_t.cudaSuccess, _DESCRIPTIONS.get(cudaError_t(err), "unknown error").encode()


def cudaDriverGetVersion() -> tuple[cudaError_t, int]:
    return cudaError_t.cudaSuccess, _S.driver_version


def cudaRuntimeGetVersion() -> tuple[cudaError_t, int]:
    return cudaError_t.cudaSuccess, 12080


def cudaGetDeviceCount() -> tuple[cudaError_t, int]:
    if _S.driver_version == 0:
        return cudaError_t.cudaErrorInsufficientDriver, 0
    if not _S.devices:
        return cudaError_t.cudaErrorNoDevice, 0
    return cudaError_t.cudaSuccess, len(_S.devices)


def cudaSetDevice(device: int) -> tuple[cudaError_t]:
    if not isinstance(device, int) or not 0 <= device < len(_S.devices):
        return (cudaError_t.cudaErrorInvalidDevice,)
    _S.current = device
    return (cudaError_t.cudaSuccess,)


def cudaGetDevice() -> tuple[cudaError_t, int]:
    return cudaError_t.cudaSuccess, _S.current


def cudaGetDeviceProperties(device: int) -> tuple[cudaError_t, cudaDeviceProp | None]:
    if not 0 <= device < len(_S.devices):
        return cudaError_t.cudaErrorInvalidDevice, None
    name, major, minor, total = _S.devices[device]
    return cudaError_t.cudaSuccess, cudaDeviceProp(name, major, minor, total)


def cudaMalloc(size: int) -> tuple[cudaError_t, int]:
    if not isinstance(size, int) or size < 0:
        return cudaError_t.cudaErrorInvalidValue, 0
    with _S.lock:
        used = sum(b.nbytes for b in _S.allocations.values())
        if used + size > _S.devices[_S.current][3]:
            return cudaError_t.cudaErrorMemoryAllocation, 0
        address = _S.next_address
        _S.next_address += (size + _ALIGN - 1) // _ALIGN * _ALIGN + _ALIGN
        # fill with garbage: reading memory nobody wrote must not look like zeros
        _S.allocations[address] = np.frombuffer(np.random.default_rng(address).bytes(size), np.uint8).copy()
        _S.malloc_calls += 1
        return cudaError_t.cudaSuccess, address


def cudaFree(ptr: int) -> tuple[cudaError_t]:
    with _S.lock:
        if ptr == 0:
            return (cudaError_t.cudaSuccess,)
        if ptr not in _S.allocations:
            return (cudaError_t.cudaErrorInvalidValue,)
        del _S.allocations[ptr]
        _S.free_calls += 1
        return (cudaError_t.cudaSuccess,)


def _copy_op(dst: int, src: int, count: int, kind: Any) -> tuple[cudaError_t, Callable[[], None] | None]:
    if not isinstance(count, int) or count < 0:
        return cudaError_t.cudaErrorInvalidValue, None
    kind = cudaMemcpyKind(kind)
    if kind == cudaMemcpyKind.cudaMemcpyHostToDevice:
        if _is_device_address(src) or _device_view(dst, count) is None:
            return cudaError_t.cudaErrorInvalidValue, None
        staged = ctypes.string_at(src, count)  # pageable host memory is staged at call time

        def h2d() -> None:
            view = _device_view(dst, count)
            if view is None:
                raise MemoryError(f"device range 0x{dst:x}+{count} was freed before the copy ran")
            view[:] = np.frombuffer(staged, np.uint8)

        return cudaError_t.cudaSuccess, h2d
    if kind == cudaMemcpyKind.cudaMemcpyDeviceToHost:
        if _is_device_address(dst) or _device_view(src, count) is None:
            return cudaError_t.cudaErrorInvalidValue, None

        def d2h() -> None:
            view = _device_view(src, count)
            if view is None:
                raise MemoryError(f"device range 0x{src:x}+{count} was freed before the copy ran")
            ctypes.memmove(dst, view.ctypes.data, count)

        return cudaError_t.cudaSuccess, d2h
    if kind == cudaMemcpyKind.cudaMemcpyDeviceToDevice:
        if _device_view(src, count) is None or _device_view(dst, count) is None:
            return cudaError_t.cudaErrorInvalidValue, None

        def d2d() -> None:
            _device_view(dst, count)[:] = _device_view(src, count)  # type: ignore[index]

        return cudaError_t.cudaSuccess, d2d
    return cudaError_t.cudaErrorInvalidValue, None


def cudaMemcpyAsync(dst: int, src: int, count: int, kind: Any, stream: Any) -> tuple[cudaError_t]:
    handle = int(stream) if stream is not None else 0
    if handle and handle not in _S.streams:
        return (cudaError_t.cudaErrorInvalidResourceHandle,)
    err, op = _copy_op(dst, src, count, kind)
    if op is None:
        return (err,)
    if handle:
        _enqueue(handle, op)
    else:
        op()
    return (cudaError_t.cudaSuccess,)


def cudaMemcpy(dst: int, src: int, count: int, kind: Any) -> tuple[cudaError_t]:
    err, op = _copy_op(dst, src, count, kind)
    if op is None:
        return (err,)
    for handle in list(_S.streams):  # synchronous copies wait for all device work
        cudaStreamSynchronize(cudaStream_t(handle))
    op()
    return (cudaError_t.cudaSuccess,)


def cudaStreamCreate() -> tuple[cudaError_t, cudaStream_t]:
    with _S.lock:
        handle = _S.next_stream
        _S.next_stream += 0x10
        _S.streams[handle] = []
    return cudaError_t.cudaSuccess, cudaStream_t(handle)


def cudaStreamSynchronize(stream: Any) -> tuple[cudaError_t]:
    handle = int(stream)
    with _S.lock:
        if handle in _S.failures:
            return (_S.failures[handle],)
        if handle not in _S.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        work, _S.streams[handle] = _S.streams[handle], []
    for op in work:
        try:
            op()
        except MemoryError:
            _S.failures[handle] = cudaError_t.cudaErrorIllegalAddress  # sticky, like a real fault
            return (cudaError_t.cudaErrorIllegalAddress,)
        except Exception:  # noqa: BLE001
            _S.failures[handle] = cudaError_t.cudaErrorLaunchFailure
            return (cudaError_t.cudaErrorLaunchFailure,)
    return (cudaError_t.cudaSuccess,)


def cudaStreamDestroy(stream: Any) -> tuple[cudaError_t]:
    handle = int(stream)
    if handle not in _S.streams:
        return (cudaError_t.cudaErrorInvalidResourceHandle,)
    cudaStreamSynchronize(stream)  # pending work completes before the stream is released
    with _S.lock:
        _S.streams.pop(handle, None)
    return (cudaError_t.cudaSuccess,)
