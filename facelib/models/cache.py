"""Where facelib keeps downloaded and compiled models on this machine."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that overrides the cache directory.
CACHE_ENV = "FACELIB_HOME"


def cache_dir() -> Path:
    """The cache root: ``$FACELIB_HOME``, else ``$XDG_CACHE_HOME/facelib``, else ``~/.cache/facelib``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "facelib"
