"""Archive extraction cannot write outside its target (zip and tar, incl. symlink tricks)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from facelib.errors import ModelFileError
from facelib.models.archive import ArchiveError, safe_extract, safe_extract_tar, safe_extract_zip
from facelib.models.hub import safe_extract_zip as hub_safe_extract_zip


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, entries: list[tuple[str, str, bytes | str]]) -> Path:
    """entries: (kind, name, data-or-linkname) with kind in file/dir/sym/hard/fifo."""
    with tarfile.open(path, "w:gz") as tf:
        for kind, name, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "dev": tarfile.CHRTYPE,
            }[kind]
            if kind in ("sym", "hard"):
                assert isinstance(payload, str)
                info.linkname = payload
            tf.addfile(info)
    return path


def _nothing_outside(tmp_path: Path, target: Path) -> None:
    """Only the archive(s) and the target exist in tmp_path (no escaped files)."""
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(target) and not p.name.startswith("arch")]
    assert outside == [], outside


def test_mediapipe_task_bundle_extracts(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "task"
    names = hub_safe_extract_zip(models_dir / "mediapipe" / "face_landmarker.task", out)
    assert {"face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite"} <= set(names)
    assert all((out / n).stat().st_size > 0 for n in names)


def test_plain_zip_and_tar_extract(tmp_path: Path) -> None:
    z = _zip(tmp_path / "arch.zip", {"a/b.txt": b"hello", "c.txt": b"x"})
    assert sorted(safe_extract(z, tmp_path / "z")) == ["a/b.txt", "c.txt"]
    assert (tmp_path / "z/a/b.txt").read_bytes() == b"hello"
    t = _tar(
        tmp_path / "arch.tgz",
        [("dir", "d", b""), ("file", "d/f.bin", b"123"), ("sym", "d/link", "f.bin"), ("hard", "d/h", "d/f.bin")],
    )
    assert sorted(safe_extract(t, tmp_path / "t")) == ["d/f.bin", "d/h", "d/link"]
    assert (tmp_path / "t/d/link").read_bytes() == b"123" and os.path.islink(tmp_path / "t/d/link")
    assert (tmp_path / "t/d/h").read_bytes() == b"123"


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt", "..\\evil.txt"],
)
def test_zip_path_traversal_refused(tmp_path: Path, name: str) -> None:
    z = _zip(tmp_path / "arch.zip", {"ok.txt": b"fine", name: b"bad"})
    target = tmp_path / "out"
    with pytest.raises(ArchiveError, match="refusing"):
        safe_extract_zip(z, target)
    assert not target.exists()  # checked before anything was written
    _nothing_outside(tmp_path, target)


def test_zip_symlink_refused(tmp_path: Path) -> None:
    z = _zip(tmp_path / "arch.zip", {}, symlinks={"link": "/etc"})
    with pytest.raises(ArchiveError, match="symlink"):
        safe_extract(z, tmp_path / "out")


@pytest.mark.parametrize(
    "entries",
    [
        [("file", "../evil.txt", b"bad")],
        [("file", "/tmp/facelib-evil.txt", b"bad")],
        [("sym", "link", "/tmp"), ("file", "link/facelib-evil.txt", b"bad")],
        [("sym", "link", ".."), ("file", "link/evil.txt", b"bad")],
        [("sym", "a/link", "../../outside")],
        [("sym", "link", "sub/../../x")],
        [("hard", "h", "../../etc/passwd")],
        [("fifo", "pipe", b"")],
        [("dev", "tty", b"")],
    ],
    ids=[
        "dotdot",
        "absolute",
        "abs-symlink-then-write",
        "symlink-up-then-write",
        "nested-symlink-up",
        "symlink-hidden-dotdot",
        "hardlink-out",
        "fifo",
        "device",
    ],
)
def test_tar_escape_tricks_refused(tmp_path: Path, entries: list[tuple[str, str, bytes | str]]) -> None:
    t = _tar(tmp_path / "arch.tgz", [("file", "ok.txt", b"fine"), *entries])
    target = tmp_path / "out"
    with pytest.raises(ArchiveError, match="refusing"):
        safe_extract_tar(t, target)
    assert not target.exists()
    _nothing_outside(tmp_path, target)
    assert not Path("/tmp/facelib-evil.txt").exists()


def test_tar_symlink_planted_on_disk_is_not_followed(tmp_path: Path) -> None:
    """A link already in the target (from an earlier extraction) cannot redirect a write out."""
    target = tmp_path / "out"
    target.mkdir()
    (tmp_path / "victim").mkdir()
    os.symlink(tmp_path / "victim", target / "planted")
    t = _tar(tmp_path / "arch.tgz", [("file", "planted/evil.txt", b"bad")])
    with pytest.raises(ArchiveError, match="outside"):
        safe_extract_tar(t, target)
    assert list((tmp_path / "victim").iterdir()) == []


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "arch.bin"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(ArchiveError, match="neither a zip nor a tar") as info:
        safe_extract(junk, tmp_path / "out")
    assert isinstance(info.value, ModelFileError)


def test_size_limit(tmp_path: Path) -> None:
    z = _zip(tmp_path / "arch.zip", {"big.bin": b"\0" * 100_000})
    with pytest.raises(ArchiveError, match="more than the limit"):
        safe_extract(z, tmp_path / "out", max_bytes=50_000)
    assert not (tmp_path / "out").exists()
    t = _tar(tmp_path / "arch.tgz", [("file", "big.bin", b"\0" * 100_000)])
    with pytest.raises(ArchiveError, match="more than the limit"):
        safe_extract(t, tmp_path / "out", max_bytes=50_000)
    assert safe_extract(t, tmp_path / "out") == ["big.bin"]
