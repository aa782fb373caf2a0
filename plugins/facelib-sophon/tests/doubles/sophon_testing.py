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

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOUBLES = Path(__file__).resolve().parent
PLUGIN_ROOT = DOUBLES.parents[1]
TOOLS = ("model_transform", "model_deploy", "run_calibration", "model_tool")
_DOUBLE_MODULES = ("sophon", "sophon.sail", "fake_bmodel", "tpu_mlir_double")


def write_tool_shims(bin_dir: Path) -> Path:
    """Executables named like TPU-MLIR's pip-wheel commands, running the doubles."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        shim = bin_dir / tool
        shim.write_text(
            f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(DOUBLES)!r})\n"
            f"import tpu_mlir_double\ntpu_mlir_double.TOOLS[{tool!r}]()\n"
        )
        shim.chmod(0o755)
    return bin_dir


@contextmanager
def sophon_doubles(
    workdir: str | os.PathLike[str], tpus: int = 1, chip: str = "bm1684x", sail: bool = True, tools: bool = True
) -> Iterator[type]:
    """Activate the doubles; yields the ``SophonBackend`` class (registered as ``"sophon"``)."""
    from facelib.backends import registry

    saved_path, saved_env = list(sys.path), dict(os.environ)
    for name in _DOUBLE_MODULES:
        sys.modules.pop(name, None)
    try:
        if sail:
            sys.path.insert(0, str(DOUBLES))
        else:
            sys.modules["sophon"] = None  # type: ignore[assignment]  # import sophon.sail -> ImportError
            sys.path.append(str(DOUBLES))  # fake_bmodel for the tool shims only
        if importlib.util.find_spec("facelib_sophon") is None:
            sys.path.insert(0, str(PLUGIN_ROOT))
        if tools:
            bin_dir = write_tool_shims(Path(workdir) / "tpu-mlir-bin")
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        os.environ["FACELIB_SAIL_DOUBLE_TPUS"] = str(tpus)
        os.environ["FACELIB_SAIL_DOUBLE_CHIP"] = chip
        from facelib_sophon.backend import SophonBackend

        try:
            registry.backend_class("sophon")
        except Exception:  # noqa: BLE001 - not installed as a distribution: register it here
            registry.register_backend(SophonBackend, "facelib-sophon (test doubles)")
        yield SophonBackend
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        for name in _DOUBLE_MODULES:
            sys.modules.pop(name, None)
        registry.reload_plugins()
