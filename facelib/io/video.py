"""Streaming video in and out, one frame at a time (memory stays bounded on long videos).

Frames are RGB uint8 (H, W, 3), like every image in facelib.  :class:`VideoReader` reads files
and webcams through OpenCV; :class:`VideoWriter` encodes H.264 (yuv420p) through ffmpeg when it
is available, muxing an audio track in if asked, and falls back to OpenCV's mp4v otherwise.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError
from facelib.io.atomic import StreamingWriter
from facelib.io.ffmpeg import find_ffmpeg, has_audio_stream, require_ffmpeg
from facelib.io.image import to_rgb_uint8

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


@attrs.frozen
class Frame:
    """One decoded frame: its index, its timestamp in milliseconds, and the RGB uint8 image."""

    index: int
    timestamp_ms: float
    image: np.ndarray


class VideoReader:
    """Iterate over the frames of a video file or a webcam (pass an int device index).

    ``fps`` is the container's frame rate (30 assumed when it reports none);
    ``frame_count`` is the container's estimate (0 for webcams, may be inexact).
    """

    def __init__(self, source: str | os.PathLike[str] | int) -> None:
        import cv2

        from facelib.io.quiet import native_stderr_silenced

        self.source = source
        if isinstance(source, int):
            with native_stderr_silenced():  # OpenCV's back ends log a dozen lines for a missing camera
                self._cap = cv2.VideoCapture(source)
            if not self._cap.isOpened():
                raise MediaReadError(f"cannot open webcam {source}; is a camera connected?")
        else:
            path = Path(source)
            if path.is_dir():
                raise MediaReadError(f"{path} is a directory, not a video file")
            if not path.is_file():
                raise MediaReadError(f"video not found: {path}")
            if path.stat().st_size == 0:
                raise MediaReadError(f"video file {path} is empty (0 bytes)")
            with native_stderr_silenced():  # FFmpeg prints "moov atom not found" for truncated files
                self._cap = cv2.VideoCapture(os.fspath(path))
            if not self._cap.isOpened():
                raise MediaReadError(f"cannot open {path} as a video (corrupt or unsupported format)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 30.0
        self.frame_count = max(int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self.width = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._index = 0

    @property
    def is_live(self) -> bool:
        """True for a webcam."""
        return isinstance(self.source, int)

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the video."""
        import cv2

        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        index = self._index
        self._index += 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return Frame(index, 1000.0 * index / self.fps, rgb)

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def iter_frames(source: str | os.PathLike[str] | int) -> Iterator[Frame]:
    """Frames of a video; raises :class:`MediaReadError` when it has no frame at all."""
    with VideoReader(source) as reader:
        count = 0
        for frame in reader:
            count += 1
            yield frame
        if count == 0:
            raise MediaReadError(f"{source} has no decodable frames")


class VideoWriter(StreamingWriter):
    """Write RGB uint8 frames to a video file, optionally muxing the audio of another file.

    Parameters
    ----------
    path:
        Output file (``.mp4`` recommended).
    fps:
        Frames per second.
    audio:
        A file whose first audio track is copied into the output (needs ffmpeg).  Files with no
        audio track are ignored.

    The video is written aside and renamed onto ``path`` by :meth:`close` (see
    :mod:`facelib.io.atomic`); :meth:`abort` — or leaving the ``with`` block by an exception,
    Ctrl-C included — stops the encoder and removes it, so ``path`` never holds half a video.
    No file is written when no frame was.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, audio: str | os.PathLike[str] | None = None) -> None:
        from facelib.io.atomic import AtomicOutput

        if not fps > 0:
            raise InputError(f"fps must be positive, got {fps}")
        if not is_video_path(path):
            raise InputError(
                f"cannot write a video to {path}: the name needs a video suffix ({', '.join(VIDEO_SUFFIXES)})"
            )
        self.path = Path(path)
        self.fps = float(fps)
        self.audio = Path(audio) if audio is not None else None
        self._size: tuple[int, int] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._cv_writer: Any = None
        self._ffmpeg = find_ffmpeg()
        self.frames_written = 0
        if self.audio is not None and self._ffmpeg is None:
            require_ffmpeg("Muxing audio into a video")
        self._out = AtomicOutput(self.path, "video")

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        if self._ffmpeg is not None:
            cmd = [
                self._ffmpeg,
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{width}x{height}",
                "-r",
                f"{self.fps}",
                "-i",
                "-",
            ]
            if self.audio is not None and has_audio_stream(self.audio):
                cmd += ["-i", os.fspath(self.audio), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-shortest"]
            even = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
            cmd += ["-vf", even, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", os.fspath(self._out.partial)]
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            import cv2

            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(os.fspath(self._out.partial), fourcc, self.fps, (width, height))
            if not self._cv_writer.isOpened():
                raise MediaReadError(f"OpenCV cannot write a video to {self.path}")

    def write(self, image: np.ndarray) -> None:
        """Append one RGB uint8 frame; every frame must have the size of the first."""
        rgb = to_rgb_uint8(image)
        height, width = rgb.shape[:2]
        if self._size is None:
            self._open(width, height)
        elif self._size != (width, height):
            raise InputError(f"frame size {width}x{height} differs from the first frame's {self._size}")
        if self._proc is not None:
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(rgb.tobytes())
            except BrokenPipeError:
                raise MediaReadError(f"ffmpeg stopped writing {self.path}: {self._stderr()}") from None
        else:
            import cv2

            self._cv_writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames_written += 1

    def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        return self._proc.stderr.read().decode(errors="replace").strip()

    def close(self) -> None:
        """Finish the file (waits for ffmpeg) and move it onto :attr:`path`."""
        try:
            if self._proc is not None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                code = self._proc.wait()
                err = self._stderr()
                self._proc = None
                if code != 0:
                    raise MediaReadError(f"ffmpeg failed writing {self.path} (exit {code}): {err}")
            if self._cv_writer is not None:
                self._cv_writer.release()
                self._cv_writer = None
        except BaseException:
            self.abort()
            raise
        if self.frames_written and not self._out.done:
            self._out.commit()
        else:
            self._out.discard()

    def abort(self) -> None:
        """Stop the encoder and delete the partial video; :attr:`path` is left as it was."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):  # unflushed frames: the pipe is gone
                        stream.close()
            self._proc = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None
        self._out.discard()


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a common video file suffix."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
