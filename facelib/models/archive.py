"""Extract zip and tar archives without ever writing outside the target directory.

Downloaded archives are untrusted.  :func:`safe_extract` refuses, before writing anything,
members with absolute paths or drive letters, ``..`` components, device files and FIFOs, links
whose target resolves outside the target directory, archives expanding beyond ``max_bytes``
(4 GiB by default), and (while extracting) any path that an earlier symlink would redirect
outside the target.  Zip members that are symlinks are refused
outright (a MediaPipe ``.task`` bundle has none).  Standard library only.

Example::

    from facelib.models.archive import safe_extract_zip
    names = safe_extract_zip("face_landmarker.task", tmpdir)   # ["face_detector.tflite", ...]
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from facelib.errors import ModelFileError

__all__ = ["ArchiveError", "safe_extract", "safe_extract_tar", "safe_extract_zip"]


class ArchiveError(ModelFileError):
    """An archive is unreadable or holds a member that would escape the target directory."""


def _member_path(name: str, archive: Path) -> PurePosixPath:
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or path.is_absolute():
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: member {name!r} climbs out with '..'; refusing to extract")
    return path


def _inside(root: Path, candidate: Path) -> bool:
    root_real = os.path.realpath(root)
    real = os.path.realpath(candidate)
    return real == root_real or real.startswith(root_real + os.sep)


def _destination(root: Path, rel: PurePosixPath, archive: Path, name: str) -> Path:
    dest = root.joinpath(*rel.parts)
    # realpath resolves symlinks already on disk (earlier members), so "link/evil" is caught.
    if not _inside(root, dest):
        raise ArchiveError(f"{archive}: member {name!r} would be written outside {root}; refusing to extract")
    return dest


#: Default limit on the total uncompressed size of an archive (a zip/tar bomb guard).
MAX_BYTES = 4 << 30


def _check_total(archive: Path, total: int, max_bytes: int | None) -> None:
    if max_bytes is not None and total > max_bytes:
        raise ArchiveError(
            f"{archive} would expand to {total:,} bytes, more than the limit of {max_bytes:,}; refusing to extract"
        )


def safe_extract_zip(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int | None = MAX_BYTES
) -> list[str]:
    """Extract a zip file into ``target`` (created if needed); returns the member names written.

    Raises :class:`ArchiveError` for a corrupt zip, an unsafe member, or more than ``max_bytes``
    uncompressed bytes (checked before anything is written).
    """
    archive, root = Path(archive), Path(target)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{archive} is not a readable zip archive: {exc}") from exc
    with zf:
        infos = zf.infolist()
        for info in infos:  # check everything before writing anything
            _member_path(info.filename, archive)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{archive}: member {info.filename!r} is a symlink; refusing to extract")
        _check_total(archive, sum(i.file_size for i in infos), max_bytes)
        root.mkdir(parents=True, exist_ok=True)
        written = []
        for info in infos:
            rel = _member_path(info.filename, archive)
            if not rel.parts:
                continue
            dest = _destination(root, rel, archive, info.filename)
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise ArchiveError(f"{archive}: cannot extract {info.filename!r}: {exc}") from exc
            written.append(rel.as_posix())
    return written


def safe_extract_tar(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int | None = MAX_BYTES
) -> list[str]:
    """Extract a (possibly compressed) tar file into ``target``; returns the member names written.

    Regular files and directories are extracted; symlinks only when their target stays inside
    ``target``; hard links only to members inside (copied); anything else is refused.
    """
    archive, root = Path(archive), Path(target)
    try:
        tf = tarfile.open(archive)  # noqa: SIM115 - closed by the with-block below
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive} is not a readable tar archive: {exc}") from exc
    with tf:
        try:
            members = tf.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{archive} is not a readable tar archive: {exc}") from exc
        for m in members:  # static checks first: nothing is written for a bad archive
            rel = _member_path(m.name, archive)
            if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                raise ArchiveError(f"{archive}: member {m.name!r} is a device or FIFO; refusing to extract")
            if m.issym() or m.islnk():
                link = m.linkname.replace("\\", "/")
                if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
                    raise ArchiveError(f"{archive}: link {m.name!r} -> {m.linkname!r} is absolute; refusing")
                base = rel.parent if m.issym() else PurePosixPath()
                depth = 0
                for part in (base / link).parts:
                    depth += -1 if part == ".." else (0 if part == "." else 1)
                    if depth < 0:
                        raise ArchiveError(
                            f"{archive}: link {m.name!r} -> {m.linkname!r} points outside the target; refusing"
                        )
        _check_total(archive, sum(m.size for m in members if m.isfile()), max_bytes)
        root.mkdir(parents=True, exist_ok=True)
        written = []
        for m in members:
            rel = _member_path(m.name, archive)
            if not rel.parts:
                continue
            dest = _destination(root, rel, archive, m.name)
            if m.isdir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(dest):
                raise ArchiveError(f"{archive}: member {m.name!r} appears twice or overwrites a link; refusing")
            if m.issym():
                if not _inside(root, dest.parent / m.linkname):
                    raise ArchiveError(f"{archive}: link {m.name!r} -> {m.linkname!r} resolves outside; refusing")
                os.symlink(m.linkname, dest)
            elif m.islnk():
                source = _destination(root, _member_path(m.linkname, archive), archive, m.linkname)
                if not source.is_file():
                    raise ArchiveError(f"{archive}: hard link {m.name!r} -> {m.linkname!r} has no target inside")
                shutil.copyfile(source, dest)
            else:
                src = tf.extractfile(m)
                if src is None:
                    raise ArchiveError(f"{archive}: cannot read member {m.name!r}")
                with src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            written.append(rel.as_posix())
    return written


def safe_extract(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, max_bytes: int | None = MAX_BYTES
) -> list[str]:
    """Extract a zip or tar archive (detected from its content) safely into ``target``."""
    path = Path(archive)
    if not path.is_file():
        raise ArchiveError(f"archive not found: {path}")
    if zipfile.is_zipfile(path):
        return safe_extract_zip(path, target, max_bytes=max_bytes)
    if tarfile.is_tarfile(path):
        return safe_extract_tar(path, target, max_bytes=max_bytes)
    raise ArchiveError(f"{path} is neither a zip nor a tar archive")
