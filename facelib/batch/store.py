"""The on-disk state of a batch job in its OUTDIR: what makes a stopped job resumable.

Layout::

    OUTDIR/
        <name>.<ext>              each item's outputs (named as the task's CLI names them)
        results.parquet           one row per finished item (written at the end of every run)
        .facelib-batch/
            job.json              the task and its options (a resumed job must match them)
            rows/<key>.json       one per finished item: the commit record of that item
            attempts/<key>        how often a worker started the item without finishing it
            staging/<key>.<pid>/  where an item's outputs are written before they are published

An item is *finished* exactly when its row file exists.  A worker writes the outputs into a
staging folder, moves each file to its final path (``os.replace``, atomic on one filesystem),
then writes the row (itself written aside and renamed).  A job killed at any point therefore
leaves no partial file under a final name, and the next run redoes only items without a row.
Every worker of a multi-node job must see OUTDIR at the same path (a shared filesystem).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from facelib.errors import InputError
from facelib.io.atomic import replace_directory

STATE_DIR = ".facelib-batch"
RESULTS_NAME = "results.parquet"
_FORMAT = 1


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that it appears complete or not at all, flushed to disk."""
    from facelib.io.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "batch job state") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def item_key(name: str) -> str:
    """A file name for an item name (``sub/clip`` -> ``sub%2Fclip``)."""
    return quote(name, safe="") or "%00"


class JobStore:
    """Reads and writes the state of the job in ``outdir`` (see the module docstring)."""

    def __init__(self, outdir: str | os.PathLike[str]) -> None:
        self.outdir = Path(outdir)
        self.state = self.outdir / STATE_DIR
        self.rows_dir = self.state / "rows"
        self.attempts_dir = self.state / "attempts"
        self.staging_dir = self.state / "staging"

    @property
    def results_path(self) -> Path:
        return self.outdir / RESULTS_NAME

    # -- the job --------------------------------------------------------------------------------

    def open_job(self, task: str, options: Mapping[str, Any]) -> bool:
        """Create the job, or check that an existing one matches; True when resuming.

        Also removes staging folders left by workers that were killed (their items have no
        row and will be redone).
        """
        job_file = self.state / "job.json"
        record = {"format": _FORMAT, "task": task, "options": dict(options)}
        resuming = job_file.is_file()
        if resuming:
            try:
                old = json.loads(job_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(f"{job_file} is unreadable ({exc}); use a new OUTDIR") from exc
            if old.get("task") != task:
                raise InputError(
                    f"{self.outdir} holds a {old.get('task')!r} job, not {task!r}; use another OUTDIR"
                ) from None
            new_options: dict[str, Any] = dict(options)
            old_options: dict[str, Any] = dict(old.get("options") or {})
            if old_options != new_options:
                changed = sorted(k for k in {*old_options, *new_options} if old_options.get(k) != new_options.get(k))
                raise InputError(
                    f"{self.outdir} holds a job started with other task options ({', '.join(changed)}); "
                    "resume it with the same options or use another OUTDIR"
                )
        else:
            self.outdir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(job_file, json.dumps(record, indent=2, sort_keys=True))
        for folder in (self.rows_dir, self.attempts_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.staging_dir.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        for partial in self.rows_dir.glob(".*"):  # a row being written when the job was killed
            partial.unlink(missing_ok=True)
        return resuming

    # -- rows -------------------------------------------------------------------------------------

    def row_path(self, name: str) -> Path:
        return self.rows_dir / f"{item_key(name)}.json"

    def read_row(self, name: str) -> dict[str, Any] | None:
        """The row of a finished item, or None."""
        try:
            data = json.loads(self.row_path(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: treated as not finished, the item is redone
        return data if isinstance(data, dict) else None

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every finished item's row (any order)."""
        for path in self.rows_dir.glob("*.json"):
            if path.name.startswith("."):  # a partial row (``.NAME.<random>.part.json``)
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(data, dict):
                yield data

    def commit(self, row: Mapping[str, Any]) -> None:
        """Record an item as finished (atomically) and forget its attempts."""
        atomic_write_text(self.row_path(str(row["name"])), json.dumps(row, sort_keys=True, allow_nan=True))
        with contextlib.suppress(FileNotFoundError):
            (self.attempts_dir / item_key(str(row["name"]))).unlink()

    # -- attempts and staging ---------------------------------------------------------------------

    def begin(self, name: str) -> int:
        """Count one more start of ``name``; returns how many starts there have been (1 = first)."""
        path = self.attempts_dir / item_key(name)
        try:
            count = int(path.read_text(encoding="utf-8").strip() or 0)
        except (FileNotFoundError, ValueError):
            count = 0
        atomic_write_text(path, str(count + 1))
        return count + 1

    def staging(self, name: str) -> Path:
        """A fresh, empty staging folder for one attempt at ``name``."""
        folder = self.staging_dir / f"{item_key(name)}.{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def publish(self, staging: Path, files: list[str]) -> list[str]:
        """Move ``files`` (paths relative to ``staging``) to the same relative paths in OUTDIR.

        A file that is a folder (a PNG sequence) is moved as a whole, replacing an older one.
        Returns the final paths, relative to OUTDIR.
        """
        published = []
        for rel in files:
            source = staging / rel
            target = self.outdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                replace_directory(source, target)
            else:
                os.replace(source, target)
            published.append(Path(rel).as_posix())
        return published
