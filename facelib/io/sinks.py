"""Frame sinks: write a stream of RGB frames to a video, a ``.npy`` array or a folder of PNGs.

Every sink takes frames one at a time (uint8, or float in [0, 1]) and keeps none of them in
memory.  :func:`open_sink` chooses by the output path.
"""

from __future__ import annotations

import ast
import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facelib.errors import InputError
from facelib.io.image import to_rgb_uint8, write_image
from facelib.io.video import is_video_path

#: Bytes reserved for the ``.npy`` header, so the final frame count can be written in place.
_NPY_HEADER_BYTES = 128


class FrameSink(Protocol):
    def write(self, frame: np.ndarray) -> None: ...

    def close(self) -> int: ...

    def abort(self) -> None: ...


class NpySink:
    """float32 (T, H, W, 3) ``.npy`` written incrementally; T is filled in on :meth:`close`.

    The header has a fixed size (128 bytes) and is rewritten at the end, so memory stays at one
    frame whatever T is; ``numpy.load(path, mmap_mode="r")`` reads the result.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from facelib.io.atomic import AtomicOutput

        self.path = Path(path)
        self._out = AtomicOutput(self.path, "array")  # renamed onto path by close()
        self._fh: Any = open(self._out.partial, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._shape: tuple[int, ...] | None = None
        self.count = 0
        self._fh.write(b"\0" * _NPY_HEADER_BYTES)

    def write(self, frame: np.ndarray) -> None:
        arr = np.asarray(frame)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / np.float32(255.0)
        arr = np.ascontiguousarray(arr, dtype="<f4")
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"expected (H, W, 3) frames, got {arr.shape}")
        if self._shape is None:
            self._shape = arr.shape
        elif arr.shape != self._shape:
            raise InputError(f"frame shape {arr.shape} differs from the first frame's {self._shape}")
        self._fh.write(arr.tobytes())
        self.count += 1

    def close(self) -> int:
        shape = (self.count, *(self._shape or (0, 0, 3)))
        text = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (shape,)  # noqa: UP031
        room = _NPY_HEADER_BYTES - 10
        if len(text) + 1 > room:
            raise InputError(f"npy header too long for shape {shape}")
        header = b"\x93NUMPY\x01\x00" + room.to_bytes(2, "little") + (text.ljust(room - 1) + "\n").encode("latin1")
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.close()
        ast.literal_eval(text)  # sanity: the header is a valid literal
        self._out.commit()
        return self.count

    def abort(self) -> None:
        self._fh.close()
        self._out.discard()


class PngDirSink:
    """``frame_000000.png``, ``frame_000001.png`` ... in a directory (created if needed)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path} exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def write(self, frame: np.ndarray) -> None:
        write_image(self.path / f"frame_{self.count:06d}.png", to_rgb_uint8(np.asarray(frame)))
        self.count += 1

    def close(self) -> int:
        return self.count

    def abort(self) -> None:
        pass


class VideoSink:
    """A video file through :class:`facelib.io.video.VideoWriter` (audio muxed when given)."""

    def __init__(self, path: str | os.PathLike[str], fps: float, audio: str | os.PathLike[str] | None) -> None:
        from facelib.io.video import VideoWriter

        self.path = Path(path)
        self._writer = VideoWriter(self.path, fps, audio=audio)

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(to_rgb_uint8(np.asarray(frame)))

    def close(self) -> int:
        self._writer.close()
        return self._writer.frames_written

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the original error matters, not the cleanup's
            self._writer.abort()


def open_sink(path: str | os.PathLike[str], fps: float, audio: str | os.PathLike[str] | None = None) -> FrameSink:
    """A sink chosen by ``path``: a video suffix (``.mp4`` ...), ``.npy``, or anything else = a PNG folder."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return NpySink(path)
    if is_video_path(path):
        return VideoSink(path, fps, audio)
    if path.suffix and not path.is_dir():
        raise InputError(f"unsupported output {path}: use a video file (.mp4), a .npy file or a directory")
    return PngDirSink(path)
