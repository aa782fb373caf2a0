"""Silencing what native libraries print straight to the process's stderr.

OpenCV's video back ends (V4L2, FFmpeg, OrbbecSDK) log a dozen lines when a camera index does
not exist, FFmpeg prints ``moov atom not found`` for a truncated MP4, and libpng warns about
colour profiles — all on file descriptor 2, below Python, before facelib raises its own one-line
error that says the same thing.  :func:`native_stderr_silenced` points descriptor 2 at
``/dev/null`` around such calls.  Set ``FACELIB_NATIVE_LOGS=1`` to see those messages again.

The redirection is process-wide, so it is reference-counted under a lock: calls from several
threads nest, and descriptor 2 comes back when the last one leaves.  Python-level writes to
``sys.stderr`` from other threads during that window (a progress bar) are lost too, which is
why only short native calls (opening a capture, decoding one image) are wrapped.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

#: Environment variable that turns the silencing off (``1``).
NATIVE_LOGS_ENV = "FACELIB_NATIVE_LOGS"

_lock = threading.Lock()
_depth = 0
_saved: int | None = None


def _stderr_fd() -> int | None:
    try:
        return sys.__stderr__.fileno() if sys.__stderr__ is not None else None
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded interpreters, some IDEs)
        return None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what native code writes to descriptor 2 to ``/dev/null`` for the ``with`` block."""
    global _depth, _saved
    fd = _stderr_fd()
    if fd is None or os.environ.get(NATIVE_LOGS_ENV) == "1":
        yield
        return
    with _lock:
        if _depth == 0:
            with contextlib.suppress(OSError, ValueError):
                sys.__stderr__.flush()  # type: ignore[union-attr]
            _saved = os.dup(fd)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                os.dup2(_saved, fd)
                os.close(_saved)
                _saved = None
