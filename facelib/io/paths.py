"""Checking input paths up front, so a wrong path fails before any model is loaded or fetched."""

from __future__ import annotations

import os
from pathlib import Path

from facelib.errors import MediaReadError


def require_input_file(path: str | os.PathLike[str], what: str = "input") -> Path:
    """``path`` as a :class:`Path` when it is a non-empty file; else :class:`MediaReadError`.

    The message says which of the three it is: not there, a directory, or empty.
    """
    p = Path(path)
    if p.is_dir():
        raise MediaReadError(f"{what} {p} is a directory, not a file")
    if not p.exists():
        raise MediaReadError(f"{what} not found: {p}")
    if p.is_file() and p.stat().st_size == 0:
        raise MediaReadError(f"{what} {p} is empty (0 bytes)")
    return p
