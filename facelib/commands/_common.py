"""Helpers shared by the ``facelib`` subcommands: printing and backend options.

Model arguments (a package directory or a hub name) go to the tasks as given: every task resolves
them with :func:`facelib.models.hub.resolve_package`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


class _JsonListWriter:
    """Prints ``{header..., key: [item, ...]}`` to stdout one item at a time, so a long video's
    JSON is never held whole in memory.  Nothing appears before the first item or :meth:`close`
    (an input that fails before its first frame prints nothing); items are one compact line each.
    """

    def __init__(self, header: dict[str, Any], key: str) -> None:
        self._header, self._key, self._count = header, key, 0

    def add(self, item: Any) -> None:
        if self._count == 0:
            opening = json.dumps({**self._header, self._key: []}, indent=2)
            sys.stdout.write(opening[: opening.rindex("[") + 1] + "\n")
        else:
            sys.stdout.write(",\n")
        sys.stdout.write("    " + json.dumps(item))
        sys.stdout.flush()
        self._count += 1

    def close(self) -> None:
        if self._count == 0:
            _print_json({**self._header, self._key: []})
            return
        sys.stdout.write("\n  ]\n}\n")
        sys.stdout.flush()


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _backend_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings -> options; values parsed as JSON when they can be (numbers, lists)."""
    from facelib.errors import InputError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"backend options are key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _add_backend_args(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--backend", default=default, help=f"backend name (default {default}; see 'facelib backends')")
    p.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable (e.g. intra_op_num_threads=2)",
    )
