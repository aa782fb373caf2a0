"""Regenerate the ais_bench / aclruntime name lists from the two public ais_bench generations.

    python plugins/facelib-ascend/tests/sdk_names/regenerate_ais_bench.py TOOLS SYNC_AIT

TOOLS: a checkout (or bare mirror) of github.com/Ascend/tools (the 2023 ais_bench, commit
9d6da90); SYNC_AIT: of github.com/mjlovesz/sync-ait (mirror of gitee ascend/ait, the msit-era
ais_bench under ait/components/benchmark).  Neither is on PyPI.  For each generation:

* ``aclruntime-<gen>.txt`` -- names the pybind11 module binds (``backend/python/src/**/*.cpp``:
  ``.def("x"``, ``py::class_/enum_<...>(m, "X"``, ``def_readwrite``, enum values);
* ``ais_bench-<gen>.txt`` -- classes, functions and methods of ``ais_bench/infer/interface.py``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENERATIONS = {
    "2023": ("ais-bench_workload/tool/ais_bench/backend/python/src", "ais-bench_workload/tool/ais_bench/ais_bench"),
    "msit": ("ait/components/benchmark/backend/python/src", "ait/components/benchmark/ais_bench"),
}
PATTERNS = (
    r'\.def(?:_static)?\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'py::(?:class_|enum_)<[^;]*?>\s*\(\s*m\s*,\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'\.value\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'REGIST_ENUM_TYPE_TO_MODULE\(\s*m\s*,\s*\w+\s*,\s*"([A-Za-z_][A-Za-z0-9_]*)"',
    r'\.def_(?:property|property_readonly|readwrite|readonly)(?:_static)?\(\s*"([A-Za-z_][A-Za-z0-9_]*)"',
)


def _git(repo: Path) -> list[str]:
    return ["git", "-C", str(repo)] if (repo / ".git").exists() else ["git", "--git-dir", str(repo)]


def _files(repo: Path, prefix: str, suffix: str) -> dict[str, str]:
    git = _git(repo)
    listing = subprocess.run([*git, "ls-tree", "-r", "HEAD", "--name-only"], capture_output=True, text=True).stdout
    out = {}
    for name in listing.split():
        if name.startswith(prefix) and name.endswith(suffix):
            out[name] = subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, text=True).stdout
    return out


def binding_names(sources: dict[str, str]) -> set[str]:
    text = "\n".join(sources.values())
    return {m.group(1) for pattern in PATTERNS for m in re.finditer(pattern, text, re.S)}


def interface_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def main() -> None:
    repos = {"2023": Path(sys.argv[1]), "msit": Path(sys.argv[2])}
    for gen, (cpp_dir, py_dir) in GENERATIONS.items():
        repo = repos[gen]
        commit = subprocess.run([*_git(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        where = f"{repo.name if repo.name != 'repo' else repo.parent.name} @ {commit.stdout.strip()}"
        bound = binding_names(_files(repo, cpp_dir, ".cpp"))
        iface = interface_names(_files(repo, py_dir, "infer/interface.py")[f"{py_dir}/infer/interface.py"])
        for label, names in (("aclruntime", bound), ("ais_bench", iface)):
            target = HERE / f"{label}-{gen}.txt"
            target.write_text(
                f"# {label} names from {where} (regenerate_ais_bench.py)\n" + "\n".join(sorted(names)) + "\n"
            )
            print(f"{target.name}: {len(names)} names")


if __name__ == "__main__":
    main()
