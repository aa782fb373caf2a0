"""``facelib backends`` and ``facelib info``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facelib.commands._common import (
    _print_json,
    _table,
)

# --- facelib backends -------------------------------------------------------------------------


def _add_backends(sub: Any) -> None:
    p = sub.add_parser("backends", help="list backends: version, availability, formats, origin")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run_backends)


def _run_backends(args: argparse.Namespace) -> int:
    from facelib.backends.registry import failed_plugins, list_backends

    infos = list_backends()
    failures = failed_plugins()
    if args.json:
        _print_json(
            {
                "backends": [i.to_dict() for i in infos],
                "failed_plugins": [
                    {"entry_point": f.entry_point, "origin": f.origin, "error": f.error} for f in failures
                ],
            }
        )
        return 0
    rows = [
        [
            i.name,
            i.version or "-",
            (f"yes: {i.reason}" if i.reason else "yes") if i.available else f"no: {i.reason}",
            " ".join(i.formats),
            str(i.priority),
            i.origin,
        ]
        for i in infos
    ]
    print(_table(rows, ["name", "version", "available", "formats", "priority", "from"]))
    for f in failures:
        print(f"\nplugin {f.entry_point!r} from {f.origin} failed to load: {f.error}")
    return 0


# --- facelib info ----------------------------------------------------------------------------


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="show a model package or model file: card, inputs, outputs")
    p.add_argument("path", type=Path, help="model package directory, facelib.json, or a model file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-hash", action="store_true", help="skip sha256 verification of package files")
    p.set_defaults(func=_run_info)


def _specs_text(title: str, specs: Sequence[Any]) -> list[str]:
    return [f"  {title}:"] + [f"    {s.name}  {list(s.shape)}  {s.dtype}" for s in specs]


def _mapping_lines(title: str, mapping: Mapping[str, Any], indent: str = "") -> list[str]:
    """``title:`` then one ``key: value`` line per entry, nested mappings indented below their key
    (values that are not mappings as compact JSON), so a card reads line by line."""
    lines = [f"{indent}{title}:"]
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            lines += _mapping_lines(str(key), value, indent + "  ")
        else:
            lines.append(f"{indent}  {key}: {json.dumps(value)}")
    return lines


def _run_info(args: argparse.Namespace) -> int:
    from facelib.errors import ModelFileError
    from facelib.models.card import CARD_FILENAME
    from facelib.models.package import ModelPackage, read_onnx_specs

    path: Path = args.path
    if path.is_dir() or path.name == CARD_FILENAME:
        package = ModelPackage.load(path)
        problems = package.validate(check_hashes=not args.no_hash)
        if args.json:
            _print_json({"path": str(package.root), "card": package.card.to_dict(), "problems": problems})
            return 1 if problems else 0
        card = package.card
        print(f"model package {package.root}")
        print(f"  name {card.name}, task {card.task}, variant {card.variant}, licence {card.licence}")
        if card.source:
            print("\n".join(_mapping_lines("source", card.source, "  ")))
        for role, item in card.files.items():
            print(f"file {item.path} (role {role})")
            lines = _specs_text("inputs", item.inputs) + _specs_text("outputs", item.outputs)
            print("\n".join(lines))
        for title, mapping in (
            ("preprocessing", card.preprocessing),
            ("outputs", card.outputs),
            ("metadata", card.metadata),
        ):
            if mapping:
                print("\n".join(_mapping_lines(title, mapping)))
        print("valid" if not problems else "problems:\n  " + "\n  ".join(problems))
        return 1 if problems else 0
    if not path.exists():
        raise ModelFileError(f"no such file or directory: {path}")
    if path.suffix == ".onnx":
        inputs, outputs = read_onnx_specs(path)
        if args.json:
            _print_json(
                {
                    "path": str(path),
                    "inputs": [s.to_dict() for s in inputs],
                    "outputs": [s.to_dict() for s in outputs],
                }
            )
            return 0
        print(f"ONNX model {path} ({path.stat().st_size:,} bytes)")
        print("\n".join(_specs_text("inputs", inputs) + _specs_text("outputs", outputs)))
        return 0
    return _info_native(path, args.json)


def _info_native(path: Path, as_json: bool) -> int:
    from facelib.backends.registry import backend_class, list_backends
    from facelib.errors import ModelFileError

    loaders = [i for i in list_backends() if path.suffix in i.formats]
    if not loaders:
        raise ModelFileError(
            f"{path}: no registered backend reads {path.suffix!r} files; "
            "see 'facelib backends' for the formats each backend loads"
        )
    usable = [i for i in loaders if i.available]
    if not usable:
        names = ", ".join(f"{i.name} ({i.reason})" for i in loaders)
        raise ModelFileError(f"{path}: backends that read {path.suffix} files cannot run here: {names}")
    backend = backend_class(usable[0].name)()
    with backend.load(path) as session:
        if as_json:
            _print_json(
                {
                    "path": str(path),
                    "backend": backend.name,
                    "inputs": [s.to_dict() for s in session.inputs],
                    "outputs": [s.to_dict() for s in session.outputs],
                }
            )
            return 0
        print(f"{path} loaded by backend {backend.name}")
        print("\n".join(_specs_text("inputs", session.inputs) + _specs_text("outputs", session.outputs)))
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_backends, _add_info]
CONVERTERS: list[Callable[[Any], None]] = []
EVALUATIONS: list[Callable[[Any], None]] = []
