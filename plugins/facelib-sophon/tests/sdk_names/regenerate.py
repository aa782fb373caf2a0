"""Regenerate ``sail-3.10.7.txt``: every name SOPHON SAIL's pybind11 module binds.

    python plugins/facelib-sophon/tests/sdk_names/regenerate.py /path/to/sophon-sail

SAIL is not on PyPI (it is built from github.com/sophgo/sophon-sail against libsophon), so
the names are read from its binding source ``src/bind.cpp`` (release v3.10.7, commit ec3a2d6):
``.def("name"``, ``py::class_<...>(m, "Name"``, ``py::enum_<...>(m, "Name"``,
``.value("NAME"``, ``.def_property*("name"``, ``.def_readwrite("name"``, ``m.def("name"`` and
``REGISTER_SAIL_EXCEPTION_TYPE(Name)``.  One name per line, sorted, after a ``#`` comment.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATTERNS = (
    r'\.def(?:_static)?\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'py::(?:class_|enum_)<[^;]*?>\s*\(\s*m\s*,\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'\.value\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'\.def_(?:property|property_readonly|readwrite|readonly)(?:_static)?\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r"REGISTER_SAIL_EXCEPTION_TYPE\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)",
)


def names(source: str) -> set[str]:
    return {m.group(1) for pattern in PATTERNS for m in re.finditer(pattern, source, re.S)}


def main() -> None:
    checkout = Path(sys.argv[1])
    if (checkout / "src" / "bind.cpp").is_file():
        source = (checkout / "src" / "bind.cpp").read_text(errors="replace")
        commit = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    else:  # a bare mirror
        source = subprocess.run(
            ["git", "--git-dir", str(checkout), "show", "HEAD:src/bind.cpp"], capture_output=True, text=True, check=True
        ).stdout
        commit = subprocess.run(
            ["git", "--git-dir", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    found = names(source)
    target = HERE / "sail-3.10.7.txt"
    target.write_text(
        f"# names bound in sophon-sail src/bind.cpp @ {commit} (regenerate.py)\n" + "\n".join(sorted(found)) + "\n"
    )
    print(f"{target.name}: {len(found)} names")


if __name__ == "__main__":
    main()
