"""Make the ``sophon`` backend run here: SAIL double importable, TPU-MLIR doubles on PATH.

Usage (any test, including task-level tests outside this plugin)::

    sys.path.insert(0, "plugins/facelib-sophon/tests/doubles")
    from sophon_testing import sophon_doubles
    sys.path.pop(0)          # the doubles must not stay importable outside the context

    with sophon_doubles(tmp_path) as SophonBackend:
        backend = facelib.get_backend("sophon")          # or SophonBackend(chip="bm1684x", ...)
        session = package.session("capsule", backend)    # compiles ONNX -> bmodel, cached

Everything is undone on exit (sys.path, PATH, environment, imported double modules, backend
registry).  ``tpus=0`` simulates a machine without a TPU; ``sail=False`` one without SAIL.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facelib.testing.doubles import register_if_missing, sdk_doubles, use_checkout, write_executable

DOUBLES = Path(__file__).resolve().parent
PLUGIN_ROOT = DOUBLES.parents[1]
TOOLS = ("model_transform", "model_deploy", "run_calibration", "model_tool")
_DOUBLE_MODULES = ("sophon", "fake_bmodel", "tpu_mlir_double")


def write_tool_shims(bin_dir: Path) -> Path:
    """Executables named like TPU-MLIR's pip-wheel commands, running the doubles."""
    for tool in TOOLS:
        write_executable(
            bin_dir / tool,
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(DOUBLES)!r})\n"
            f"import tpu_mlir_double\ntpu_mlir_double.TOOLS[{tool!r}]()\n",
        )
    return bin_dir


@contextmanager
def sophon_doubles(
    workdir: str | os.PathLike[str], tpus: int = 1, chip: str = "bm1684x", sail: bool = True, tools: bool = True
) -> Iterator[type]:
    """Activate the doubles; yields the ``SophonBackend`` class (registered as ``"sophon"``)."""
    env = {"FACELIB_SAIL_DOUBLE_TPUS": str(tpus), "FACELIB_SAIL_DOUBLE_CHIP": chip}
    # without SAIL, `import sophon.sail` fails but fake_bmodel stays importable for the tool shims
    place, hide = ("first", ()) if sail else ("last", ("sophon",))
    with sdk_doubles(DOUBLES, _DOUBLE_MODULES, env, place=place, hide=hide, home=False):
        if importlib.util.find_spec("facelib_sophon") is None:
            sys.path.insert(0, str(PLUGIN_ROOT))
        if tools:
            bin_dir = write_tool_shims(Path(workdir) / "tpu-mlir-bin")
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        from facelib_sophon.backend import SophonBackend

        register_if_missing([SophonBackend], "facelib-sophon (test doubles)")
        yield SophonBackend


@contextmanager
def doubles(workdir: Path, **activation: Any) -> Iterator[None]:
    """The activator of :mod:`facelib.testing.doubles`: this checkout's plugin on the doubles."""
    use_checkout(PLUGIN_ROOT, "facelib_sophon")
    with sophon_doubles(workdir / "sophon", **activation):
        yield
