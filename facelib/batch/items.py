"""The items of a batch job: what ``INPUTS...`` (files, folders, globs, manifests) expand to.

An :class:`Item` is one unit of work: an input file, its unique ``name`` in the job (which names
its outputs and its row in the results table) and per-item parameters from a manifest (e.g. an
Audio2Face ``subject``, a motion ``driving`` video).  Expansion is deterministic: the same
inputs give the same items in the same order, which is what lets a stopped job resume.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from facelib.errors import InputError

#: Manifest suffixes: a table whose rows are items and whose columns are per-item parameters.
MANIFEST_SUFFIXES = (".csv", ".parquet")
#: Glob characters: an input holding one of them (and not an existing file) is a pattern.
_GLOB_CHARS = frozenset("*?[")


@attrs.frozen
class Item:
    """One unit of work of a batch job.

    Attributes
    ----------
    name:
        Unique within the job, ``/``-separated (``"sub/clip"``); the stem of the item's outputs
        and the key of its row.
    input:
        The input file (absolute path as given, or a string the task understands).
    params:
        Per-item parameters (manifest columns), plain JSON values; paths are absolute.
    """

    name: str
    input: str
    params: dict[str, Any] = attrs.field(factory=dict, eq=False)

    def to_json(self) -> str:
        """A compact JSON form (for queues and Ray datasets)."""
        return json.dumps({"name": self.name, "input": self.input, "params": self.params}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Item:
        data = json.loads(text)
        return cls(str(data["name"]), str(data["input"]), dict(data.get("params") or {}))


def expand_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    accepts: Callable[[Path], bool],
    path_params: Iterable[str] = (),
) -> list[Item]:
    """Items for ``inputs``: files, folders (searched recursively), globs and manifests.

    Parameters
    ----------
    inputs:
        What the user gave.  A folder contributes every file under it that ``accepts`` takes,
        named by its path relative to the folder without suffix; a file or glob match is
        named by its stem; a ``.csv`` / ``.parquet`` manifest gives one item per row (column
        ``input``, optional ``name``, other columns are parameters).
    accepts:
        Whether a file found in a folder or by a glob is an input of the task (by suffix).
    path_params:
        Manifest columns holding paths; relative ones are taken relative to the manifest.

    Raises
    ------
    InputError
        An input that does not exist, a glob that matches nothing, a manifest without an
        ``input`` column, or a job with no items at all.
    """
    found: list[tuple[str, str, dict[str, Any]]] = []  # (wanted name, input, params)
    path_keys = set(path_params)
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and accepts(p))
            if not files:
                raise InputError(f"folder {path} holds no input file for this task")
            found += [(p.relative_to(path).with_suffix("").as_posix(), str(p.resolve()), {}) for p in files]
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            found += _manifest(path, path_keys)
        elif path.is_file():
            found.append((path.stem, str(path.resolve()), {}))
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(text), recursive=True))
            files = [m for m in matches if m.is_file() and accepts(m)]
            if not files:
                raise InputError(f"pattern {text!r} matches no input file for this task")
            found += [(m.stem, str(m.resolve()), {}) for m in files]
        else:
            raise InputError(f"input not found: {text}")
    if not found:
        raise InputError("no inputs given")
    return _unique(found)


def _unique(found: list[tuple[str, str, dict[str, Any]]]) -> list[Item]:
    """Drop exact repeats and make names unique (``clip``, ``clip-2``, ...) in order."""
    items: list[Item] = []
    seen_work: set[str] = set()
    taken: set[str] = set()
    for wanted, source, params in found:
        work = json.dumps([source, params], sort_keys=True)
        if work in seen_work:
            continue
        seen_work.add(work)
        name, n = wanted, 1
        while name in taken:
            n += 1
            name = f"{wanted}-{n}"
        taken.add(name)
        items.append(Item(name, source, params))
    return items


def _manifest(path: Path, path_keys: set[str]) -> list[tuple[str, str, dict[str, Any]]]:
    rows = _read_table(path)
    if not rows:
        raise InputError(f"manifest {path} has no rows")
    columns = set(rows[0])
    if "input" not in columns:
        raise InputError(f"manifest {path} needs an 'input' column (it has {sorted(columns)})")
    base = path.resolve().parent
    out = []
    for number, row in enumerate(rows, 1):
        source = row.get("input")
        if source is None or str(source).strip() == "":
            raise InputError(f"manifest {path}, row {number}: 'input' is empty")
        source_path = _resolve(base, str(source))
        params: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("input", "name") or value is None or (isinstance(value, str) and value == ""):
                continue
            params[key] = _resolve(base, str(value)) if key in path_keys else _plain(value)
        name = str(row["name"]) if row.get("name") not in (None, "") else Path(source_path).stem
        out.append((name, source_path, params))
    return out


def _resolve(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _plain(value: Any) -> Any:
    """A manifest cell as a JSON value (numpy/arrow scalars become Python numbers)."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def _read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".csv":
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                return [dict(row) for row in csv.DictReader(fh)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read manifest {path}: {exc}") from exc
    from facelib.batch.table import pyarrow_modules

    pa, pq = pyarrow_modules("Reading a Parquet manifest")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from exc
    return list(table.to_pylist())
