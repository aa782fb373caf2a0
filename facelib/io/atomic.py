"""Atomic file writes: write beside the target, then rename over it.

A reader (or a crash, Ctrl-C, SIGTERM) never sees a half-written file: the data goes to a
hidden temporary file in the target's folder (same file system, so the rename is atomic) that
keeps the target's suffix (encoders — OpenCV, ffmpeg, numpy, USD — choose the format by it),
and :func:`os.replace` moves it into place only when the write has finished.  On a failure,
Ctrl-C or SIGTERM (the ``facelib`` command turns SIGTERM into an exception, see
:mod:`facelib.cli`) the temporary file is deleted, so the target keeps its old content or holds
the complete new one.  Every file facelib writes goes through here: :func:`atomic_path` for a
write in one block, :class:`AtomicOutput` for writers that stream (videos, CSV takes, arrays).
A target that is an existing directory is refused with :class:`~facelib.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

from facelib.errors import InputError

#: Marker in the names of temporary files (``.NAME.<random>.part.SUFFIX``).
PARTIAL_MARK = ".part"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_usual_permissions(path: str | os.PathLike[str]) -> None:
    """Give a file this process created privately (``mkstemp``, onnx's external-data writer: mode
    0600) the permissions a plain ``open`` would have: 0666 less the umask."""
    os.chmod(path, 0o666 & ~_umask())


def check_output_file(target: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse a target that cannot be a file (an existing directory); create its parent folder."""
    target = Path(target)
    if target.is_dir():
        hint = {"CSV": ".csv", "video": ".mp4", "image": ".png"}.get(what, "")
        raise InputError(f"{what} {target} is a directory; give a file name (e.g. {target / ('out' + hint)})")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder of {what} {target}: {exc.strerror or exc}") from exc
    return target


def partial_path(target: str | os.PathLike[str]) -> Path:
    """A new, empty hidden sibling of ``target`` with the same suffix, with the usual permissions."""
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=f"{PARTIAL_MARK}{target.suffix}", dir=target.parent
        )
    except OSError as exc:
        raise InputError(f"cannot write in {target.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(name)
    give_usual_permissions(tmp)  # mkstemp makes 0600
    return tmp


class StreamingWriter:
    """Context-manager protocol of facelib's streaming writers (video, CSV, point caches): a
    ``with`` block that ends normally calls :meth:`close` (finish, move into place), one that ends
    with any exception (``KeyboardInterrupt`` included) calls :meth:`abort` (drop the partial file).
    """

    def close(self) -> object:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AtomicOutput(StreamingWriter):
    """One output file written aside and renamed into place (for writers that stream).

    Write to :attr:`partial`; :meth:`commit` moves it onto :attr:`target`, :meth:`discard`
    deletes it.  As a context manager it commits on success and discards on any exception
    (``KeyboardInterrupt`` included).

    Parameters
    ----------
    target:
        The file the user asked for.  An existing directory is refused with
        :class:`~facelib.errors.InputError`; missing parent folders are created.
    what:
        What the file is, for error messages ("image", "video", "CSV" ...).
    """

    def __init__(self, target: str | os.PathLike[str], what: str = "output") -> None:
        self.target = check_output_file(target, what)
        self.what = what
        self.partial = partial_path(self.target)
        self.done = False

    def commit(self) -> Path:
        """Move the finished partial file onto the target; returns the target."""
        if not self.done:
            self.done = True
            try:
                os.replace(self.partial, self.target)
            except OSError as exc:
                self.partial.unlink(missing_ok=True)
                raise InputError(f"cannot write {self.what} {self.target}: {exc.strerror or exc}") from exc
        return self.target

    def discard(self) -> None:
        """Delete the partial file (the target is left as it was)."""
        self.done = True
        self.partial.unlink(missing_ok=True)

    # the streaming-writer protocol: a ``with`` block commits on success, discards on any exception
    close = commit
    abort = discard


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], what: str = "output") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is deleted."""
    with AtomicOutput(path, what) as out:
        yield out.partial


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, what) as tmp:
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


def replace_directory(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the finished folder ``source`` to ``target``, replacing any folder already there.

    ``source`` must be on the same file system (build it beside ``target``).  An existing
    ``target`` is first renamed aside and deleted only after ``source`` is in place, so the path
    never holds a mixture of old and new files; at worst, for the instant between the two renames,
    it is absent.  Returns ``target``.
    """
    source, target = Path(source), Path(target)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        old.rmdir()
        os.replace(target, old)
    os.replace(source, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
