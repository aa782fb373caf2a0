"""Run the TensorRT backend against the test doubles in ``doubles/`` (reusable by task tests).

    from trt_double_env import activated

    with activated() as make_backend:          # TensorRT 10.x double, one simulated GPU
        backend = make_backend()               # facelib.get_backend("tensorrt", ...)
        ...

``activated(version="11.1.0")`` simulates TensorRT 11; ``activated(sdk=False)`` hides the SDK;
``activated(devices=[])`` / ``activated(driver_version=0)`` simulate no GPU / no driver.
The plugin code under test is unchanged: only ``sys.path`` and ``sys.modules`` differ.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOUBLES = HERE / "doubles"
PLUGIN_ROOT = HERE.parent
_SDK_MODULES = ("tensorrt", "cuda")


def _forget_sdk() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _SDK_MODULES:
            del sys.modules[name]


def ensure_plugin_importable() -> None:
    """Make ``facelib_tensorrt`` importable from the source tree when it is not installed."""
    try:
        importlib.import_module("facelib_tensorrt")
    except ImportError:
        sys.path.insert(0, str(PLUGIN_ROOT))


def ensure_registered() -> None:
    """Register the backend by hand when its entry point is not installed (source checkout)."""
    from facelib.backends import backend_class, register_backend, reload_plugins
    from facelib.errors import BackendNotFoundError

    reload_plugins()
    try:
        backend_class("tensorrt")
    except BackendNotFoundError:
        from facelib_tensorrt.backend import TensorRTBackend

        register_backend(TensorRTBackend, origin="facelib-tensorrt (source tree)")


@contextlib.contextmanager
def activated(
    version: str = "10.16.1",
    sdk: bool = True,
    devices: list[tuple[str, int, int, int]] | None = None,
    driver_version: int | None = None,
) -> Iterator[Callable[..., Any]]:
    """Put the doubles on sys.path for the duration; yield ``make_backend(**options)``."""
    ensure_plugin_importable()
    old_env = os.environ.get("FACELIB_TRT_DOUBLE_VERSION")
    os.environ["FACELIB_TRT_DOUBLE_VERSION"] = version
    home = None if os.environ.get("FACELIB_HOME") else tempfile.TemporaryDirectory(prefix="facelib-home-")
    if home is not None:  # compiled artefacts and timing caches stay out of the user's cache
        os.environ["FACELIB_HOME"] = home.name
    _forget_sdk()
    added = False
    if sdk:
        sys.path.insert(0, str(DOUBLES))
        added = True
    cache = tempfile.TemporaryDirectory(prefix="facelib-trt-")
    try:
        if sdk:
            from cuda.bindings import runtime

            runtime._reset()
            runtime._configure(devices=devices, driver_version=driver_version)
        ensure_registered()

        def make_backend(**options: Any) -> Any:
            from facelib.backends import get_backend

            options.setdefault("timing_cache", str(Path(cache.name) / "timing.cache"))
            return get_backend("tensorrt", **options)

        yield make_backend
    finally:
        if added:
            sys.path.remove(str(DOUBLES))
        _forget_sdk()
        if old_env is None:
            os.environ.pop("FACELIB_TRT_DOUBLE_VERSION", None)
        else:
            os.environ["FACELIB_TRT_DOUBLE_VERSION"] = old_env
        from facelib.backends import reload_plugins

        reload_plugins()
        cache.cleanup()
        if home is not None:
            os.environ.pop("FACELIB_HOME", None)
            home.cleanup()
