"""The results table of a batch job: one typed Parquet row per finished item (needs pyarrow).

Columns, in order:

``name`` (string, the item's unique name), ``input`` (string), ``params`` (string: the item's
manifest parameters as JSON), ``status`` (``ok`` | ``error``), ``error_type`` and ``error``
(strings, null when ok), ``outputs`` (list of paths relative to OUTDIR), ``started_at``
(timestamp, UTC), ``seconds`` (float64: wall time of the item in its worker, decoding and
writing included), ``worker`` (``host:pid``), ``attempts`` (int32: starts of the item, 1 unless
a worker died on it), ``run_id`` (string: which run of the job finished it), then the task's
summary columns (:mod:`facelib.batch.adapters`), null for items that failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facelib.errors import require

_COMMON = (
    ("name", "string"),
    ("input", "string"),
    ("params", "string"),
    ("status", "string"),
    ("error_type", "string"),
    ("error", "string"),
    ("outputs", "list<string>"),
    ("started_at", "timestamp"),
    ("seconds", "float64"),
    ("worker", "string"),
    ("attempts", "int32"),
    ("run_id", "string"),
)


def pyarrow_modules(purpose: str) -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, or a MissingDependencyError naming the ``batch`` extra."""
    pa = require("pyarrow", "batch", purpose)
    pq = require("pyarrow.parquet", "batch", purpose)
    return pa, pq


def arrow_type(kind: str) -> Any:
    """The Arrow type of a column type string (see :mod:`facelib.batch.adapters`)."""
    pa, _ = pyarrow_modules("Writing batch results")
    scalars = {
        "string": pa.string(),
        "int32": pa.int32(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "box": pa.list_(pa.float32(), 4),
    }
    if kind.startswith("list<") and kind.endswith(">"):
        return pa.list_(arrow_type(kind[5:-1]))
    return scalars[kind]


def schema(fields: Mapping[str, str]) -> Any:
    """The table's schema: the common columns, then the task's ``fields``."""
    pa, _ = pyarrow_modules("Writing batch results")
    return pa.schema([pa.field(n, arrow_type(k)) for n, k in (*_COMMON, *fields.items())])


def build_table(rows: Iterable[Mapping[str, Any]], fields: Mapping[str, str], order: Sequence[str] = ()) -> Any:
    """A ``pyarrow.Table`` of ``rows`` (as :class:`~facelib.batch.runner.ItemRunner` writes them).

    Rows are sorted by their position in ``order`` (item names), then by name.
    """
    import datetime

    pa, _ = pyarrow_modules("Writing batch results")
    position = {name: i for i, name in enumerate(order)}
    ordered = sorted(rows, key=lambda r: (position.get(str(r["name"]), len(position)), str(r["name"])))
    columns: dict[str, list[Any]] = {n: [] for n, _ in (*_COMMON, *fields.items())}
    for row in ordered:
        summary = row.get("summary") or {}
        for name, _ in _COMMON:
            value = row.get(name)
            if name == "params":
                value = json.dumps(value or {}, sort_keys=True)
            elif name == "started_at" and value is not None:
                value = datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)
            columns[name].append(value)
        for name in fields:
            columns[name].append(summary.get(name) if row.get("status") == "ok" else None)
    return pa.table(columns, schema=schema(fields))


def write_table(table: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` as Parquet at ``path``, atomically (written aside, then renamed)."""
    from facelib.io.atomic import atomic_path

    _, pq = pyarrow_modules("Writing batch results")
    with atomic_path(path, "results table") as tmp:
        pq.write_table(table, tmp)
    return Path(path)
