"""Output files that appear only when complete: write to a hidden sibling, then rename.

Every file facelib writes (images, videos, arrays, CSV takes, JSON) goes through
:class:`AtomicOutput`: the data is written to ``.NAME.<pid>-<random>.partial.SUFFIX`` in the
target's folder and moved onto the target with :func:`os.replace` (atomic on one file system)
only when the writer finishes.  A failure, Ctrl-C or SIGTERM (the ``facelib`` command turns it
into an exception, see :mod:`facelib.cli`) removes the partial file, so the target either keeps
its old content or holds the complete new one — never half of it.  The partial name keeps the
suffix because encoders (OpenCV, ffmpeg, numpy) choose the format by it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

from facelib.errors import InputError


def partial_path(target: str | os.PathLike[str]) -> Path:
    """A fresh hidden sibling of ``target`` with the same suffix (``.out.1234-9f3a.partial.mp4``)."""
    target = Path(target)
    tag = f"{os.getpid()}-{secrets.token_hex(3)}"
    return target.with_name(f".{target.stem}.{tag}.partial{target.suffix}")


def check_output_file(target: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse a target that cannot be a file (an existing directory); create its parent folder."""
    target = Path(target)
    if target.is_dir():
        raise InputError(f"{what} {target} is a directory; give a file name (e.g. {target / ('out' + _hint(what))})")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder of {what} {target}: {exc.strerror or exc}") from exc
    return target


def _hint(what: str) -> str:
    return {"CSV": ".csv", "video": ".mp4", "image": ".png"}.get(what, "")


class AtomicOutput:
    """One output file written aside and renamed into place.

    Write to :attr:`partial`; :meth:`commit` moves it onto :attr:`target`, :meth:`discard`
    deletes it.  As a context manager it commits on success and discards on any exception
    (including ``KeyboardInterrupt``).

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

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes, what: str = "output") -> Path:
    """Write ``data`` to ``target`` atomically; returns the target."""
    with AtomicOutput(target, what) as out:
        out.partial.write_bytes(data)
    return out.target
