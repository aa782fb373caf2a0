"""PC2 point caches (Blender's Mesh Cache modifier, Maya, 3ds Max's Point Cache, Houdini).

Layout (little-endian)::

    char[12]  "POINTCACHE2\\0"
    int32     version (1)
    int32     number of points V
    float32   start frame
    float32   sample rate (frames between samples; 1 = every frame)
    int32     number of samples T
    float32   T x V x 3 positions

:class:`PC2Writer` streams frames to a hidden side file and writes the header's sample count
when it closes, then renames the file into place (:class:`facelib.io.atomic.AtomicOutput`:
nothing half-written is ever visible).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError
from facelib.io.atomic import AtomicOutput, StreamingWriter

_MAGIC = b"POINTCACHE2\x00"
_HEADER = struct.Struct("<12siiffi")


class PC2Writer(StreamingWriter):
    """Write (V, 3) float frames one at a time into a ``.pc2`` file; use as a context manager."""

    def __init__(self, path: str | os.PathLike[str], start_frame: float = 0.0, sample_rate: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start_frame = float(start_frame)
        self.sample_rate = float(sample_rate)
        self._out = AtomicOutput(self.path, "point cache")
        self._fh = open(self._out.partial, "wb")  # noqa: SIM115 - closed by close() / abort()
        self._fh.write(_HEADER.pack(_MAGIC, 1, 0, self.start_frame, self.sample_rate, 0))
        self.count = 0
        self.points: int | None = None

    def write(self, frame: np.ndarray) -> None:
        """Append one (V, 3) frame."""
        v = np.ascontiguousarray(frame, dtype="<f4").reshape(-1, 3)
        if self.points is None:
            self.points = len(v)
        elif len(v) != self.points:
            raise InputError(f"frame {self.count} has {len(v)} points, the first had {self.points}")
        self._fh.write(v.tobytes())
        self.count += 1

    def close(self) -> Path:
        """Finish the header and move the file into place."""
        if self._fh.closed:
            return self.path
        if self.count == 0:
            self.abort()
            raise InputError("no frames to write")
        self._fh.seek(0)
        self._fh.write(_HEADER.pack(_MAGIC, 1, self.points or 0, self.start_frame, self.sample_rate, self.count))
        self._fh.close()
        return self._out.commit()

    def abort(self) -> None:
        """Drop the partial file."""
        self._fh.close()
        self._out.discard()


@attrs.frozen
class PointCache:
    """A PC2 file read back: ``points`` (T, V, 3) float32, ``start_frame``, ``sample_rate``."""

    points: np.ndarray
    start_frame: float
    sample_rate: float


def read_pc2(path: str | os.PathLike[str]) -> PointCache:
    """Read a ``.pc2`` point cache."""
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"PC2 file not found: {path}")
    data = path.read_bytes()
    if len(data) < _HEADER.size or data[:12] != _MAGIC:
        raise MediaReadError(f"{path} is not a PC2 point cache (no POINTCACHE2 header)")
    _, _, points, start, rate, samples = _HEADER.unpack_from(data)
    expected = _HEADER.size + samples * points * 12
    if points < 0 or samples < 0 or len(data) != expected:
        raise MediaReadError(f"{path}: {len(data)} bytes, the header ({samples} x {points} points) needs {expected}")
    arr = np.frombuffer(data, "<f4", offset=_HEADER.size).reshape(samples, points, 3).astype(np.float32)
    return PointCache(arr, start, rate)
