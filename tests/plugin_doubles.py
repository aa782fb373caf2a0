"""Activate one device plugin against its vendor-SDK test doubles, for task-level tests.

Each plugin under ``plugins/`` ships faithful doubles of its vendor SDK (they enforce what the
real SDK enforces and compute real outputs with onnxruntime) and a context manager that puts
them in place.  :func:`plugin_backend` hides their differences: inside it, the backend can be
taken by name (``facelib.get_backend(name)`` or ``Task(..., backend=name)``) and the plugin
code under test is the code that runs on hardware; only the SDK modules are doubles.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"

#: Backend name -> (file defining the context manager, module name, context manager name).
HELPERS = {
    "tensorrt": (PLUGINS / "facelib-tensorrt" / "tests" / "trt_double_env.py", "trt_double_env", "activated"),
    "ascend": (PLUGINS / "facelib-ascend" / "tests" / "ascend_double_env.py", "ascend_double_env", "activated"),
    "sophon": (
        PLUGINS / "facelib-sophon" / "tests" / "doubles" / "sophon_testing.py",
        "sophon_testing",
        "sophon_doubles",
    ),
    "cambricon": (
        PLUGINS / "facelib-cambricon" / "tests" / "doubles" / "cambricon_testing.py",
        "cambricon_testing",
        "cambricon_doubles",
    ),
}
BACKENDS = tuple(HELPERS)
#: Backend name -> (distribution folder under plugins/, import package).
PACKAGES = {
    "tensorrt": ("facelib-tensorrt", "facelib_tensorrt"),
    "ascend": ("facelib-ascend", "facelib_ascend"),
    "sophon": ("facelib-sophon", "facelib_sophon"),
    "cambricon": ("facelib-cambricon", "facelib_cambricon"),
}


def _helper(name: str) -> ModuleType:
    """Import a plugin's double helper by file, without leaving its folder on ``sys.path``."""
    path, module_name, _ = HELPERS[name]
    module = sys.modules.get(module_name)
    if module is not None and Path(getattr(module, "__file__", "")).resolve() == path.resolve():
        return module
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def _use_checkout(name: str) -> None:
    """Import the plugin from this checkout, even when another copy is pip-installed (editable
    installs of a different tree): the code under test is the code beside these tests."""
    folder, package = PACKAGES[name]
    root = PLUGINS / folder
    sys.path.insert(0, str(root))
    for module_name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        module_file = getattr(sys.modules[module_name], "__file__", None)
        if module_file is None or root not in Path(module_file).resolve().parents:
            del sys.modules[module_name]
    from facelib.backends import reload_plugins

    reload_plugins()  # entry points loaded earlier may hold the other copy's classes


@contextlib.contextmanager
def plugin_backend(name: str, workdir: Path, **activation: Any) -> Iterator[None]:
    """Make backend ``name`` runnable through its doubles; compiled files and caches go to ``workdir``.

    ``FACELIB_HOME`` points into ``workdir`` for the duration (timing caches, compiled files of
    read-only packages), so nothing lands in the user's cache.  ``activation`` goes to the
    plugin's context manager (e.g. ``version="11.1.0"`` for the TensorRT double).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    saved_home = os.environ.get("FACELIB_HOME")
    os.environ["FACELIB_HOME"] = str(workdir / "facelib-home")
    saved_path = list(sys.path)
    try:
        _use_checkout(name)
        module = _helper(name)
        activate = getattr(module, HELPERS[name][2])
        context = activate(workdir / "sophon", **activation) if name == "sophon" else activate(**activation)
        with context:
            yield
    finally:
        sys.path[:] = saved_path
        if saved_home is None:
            os.environ.pop("FACELIB_HOME", None)
        else:
            os.environ["FACELIB_HOME"] = saved_home
