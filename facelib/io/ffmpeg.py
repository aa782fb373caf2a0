"""Locating an ffmpeg executable (for H.264 output and audio muxing) and small helpers around it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from facelib.errors import MissingDependencyError

#: Environment variable naming the ffmpeg executable to use.
FFMPEG_ENV = "FACELIB_FFMPEG"


def find_ffmpeg() -> str | None:
    """Path of ffmpeg: ``$FACELIB_FFMPEG``, then ``ffmpeg`` on PATH, then imageio-ffmpeg's binary."""
    env = os.environ.get(FFMPEG_ENV)
    if env:
        return env
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


def require_ffmpeg(purpose: str) -> str:
    """ffmpeg's path, or :class:`MissingDependencyError` saying how to get it."""
    exe = find_ffmpeg()
    if exe is None:
        raise MissingDependencyError("imageio-ffmpeg (or ffmpeg on PATH)", "media", purpose)
    return exe


def has_audio_stream(path: str | Path) -> bool:
    """True when the media file has at least one audio stream (needs ffmpeg; False without it)."""
    exe = find_ffmpeg()
    if exe is None:
        return False
    proc = subprocess.run([exe, "-hide_banner", "-i", os.fspath(path)], capture_output=True, text=True, check=False)
    return " Audio:" in proc.stderr
