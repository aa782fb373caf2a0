"""Regenerate the name lists of the real NVIDIA packages that ``test_sdk_names.py`` checks against.

    python plugins/facelib-tensorrt/tests/sdk_names/regenerate.py

Downloads (``pip download --no-deps``, about 1.3 MB each) the pinned ``tensorrt-cu12-bindings``
(TensorRT 10.x) and ``tensorrt-cu13-bindings`` (TensorRT 11.x) wheels and reads every name out
of their extension module ``tensorrt_bindings/tensorrt.so`` without importing it (its
``libnvinfer`` is not installable from PyPI): pybind11 keeps each class, method, property and
enum-member name as a NUL-terminated string.  The linker may store a name as the tail of a
longer string (``Runtime`` inside ``IRuntime``, ``int8`` inside ``uint8``), so the list keeps the
trailing identifier of every string and a name counts as present when it is one of them or
the end of one (see ``test_sdk_names.present``).  The Python part of the wheel adds its
top-level names (``nptype``, ...).

``cuda-bindings`` is importable without a GPU, so its ``runtime`` module is installed into a
temporary folder and listed with ``dir()`` (plus the members of its enums and the fields of
``cudaDeviceProp``).

Each list is one name per line, sorted; the first line is a ``#`` comment naming the wheel.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TENSORRT = {
    "tensorrt-10.txt": "tensorrt-cu12-bindings==10.16.1.11",
    "tensorrt-11.txt": "tensorrt-cu13-bindings==11.4.0.106",
}
CUDA_BINDINGS = ("cuda-runtime-13.txt", "cuda-bindings==13.5.0")
_TRAILING = re.compile(rb"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]{0,79})(?=\x00)")


def names_in_binary(data: bytes) -> set[str]:
    """The trailing identifier of every NUL-terminated string of an ELF file."""
    return {m.group(1).decode() for m in _TRAILING.finditer(data)}


def names_in_python(source: str) -> set[str]:
    """Top-level names a Python module defines (functions, classes, assignments, imports)."""
    out: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    return out


def download(requirement: str, into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), requirement], check=True
    )
    name = requirement.split("==")[0].replace("-", "_")
    return next(into.glob(f"{name}-*.whl"))


def tensorrt_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        found: set[str] = set()
        for member in z.namelist():
            if member.endswith("/tensorrt.so"):
                found |= names_in_binary(z.read(member))
            elif member.endswith("tensorrt_bindings/__init__.py"):
                found |= names_in_python(z.read(member).decode())
    return found


def cuda_runtime_names(requirement: str, tmp: Path) -> set[str]:
    target = tmp / "cuda"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), requirement,
         "cuda-pathfinder"],
        check=True,
    )  # fmt: skip
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(target)!r})\n"
        "from cuda.bindings import runtime as r\n"
        "names = set(dir(r))\n"
        "for n in dir(r):\n"
        "    obj = getattr(r, n)\n"
        "    members = getattr(obj, '__members__', None) if isinstance(obj, type) else None\n"
        "    if members:\n"
        "        names |= set(members)\n"
        "names |= {n for n in dir(r.cudaDeviceProp()) if not n.startswith('__')}\n"
        "names |= {n for n in dir(r.cudaStream_t()) if not n.startswith('__')}\n"
        "print('\\n'.join(sorted(names)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def write(path: Path, source: str, names: set[str]) -> None:
    path.write_text(f"# names read from {source} by regenerate.py\n" + "\n".join(sorted(names)) + "\n")
    print(f"{path.name}: {len(names)} names from {source}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="facelib-sdk-names-") as tmp:
        for filename, requirement in TENSORRT.items():
            write(HERE / filename, requirement, tensorrt_names(download(requirement, Path(tmp))))
        filename, requirement = CUDA_BINDINGS
        write(HERE / filename, requirement, cuda_runtime_names(requirement, Path(tmp)))


if __name__ == "__main__":
    main()
