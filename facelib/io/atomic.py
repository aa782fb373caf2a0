"""Atomic file writes: write beside the target, then rename over it.

A reader (or a crash, Ctrl-C, SIGTERM) never sees a half-written file: the data goes to a
hidden temporary file in the target's folder (same file system, so the rename is atomic) that
keeps the target's suffix (USD and other libraries choose the format by it), and
:func:`os.replace` moves it into place only when the write has finished.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is deleted."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def copy_file_atomic(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy ``src`` to ``dest`` atomically (nothing when they are the same file); returns ``dest``."""
    import shutil

    source, target = Path(src), Path(dest)
    if target.exists() and target.resolve() == source.resolve():
        return target
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target
