"""Run the TensorRT backend against the test doubles in ``doubles/`` (reusable by task tests).

    from trt_double_env import activated

    with activated() as make_backend:          # TensorRT 10.x double, one simulated GPU
        backend = make_backend()               # facelib.get_backend("tensorrt", ...)
        ...

``activated(version="11.1.0")`` simulates TensorRT 11; ``activated(sdk=False)`` hides the SDK;
``activated(devices=[])`` / ``activated(driver_version=0)`` simulate no GPU / no driver.
The plugin code under test is unchanged: only ``sys.path`` and ``sys.modules`` differ.
:func:`doubles` is the activator the conformance suite uses.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facelib.testing.doubles import register_if_missing, sdk_doubles, use_checkout

HERE = Path(__file__).resolve().parent
DOUBLES = HERE / "doubles"
PLUGIN_ROOT = HERE.parent
_SDK_MODULES = ("tensorrt", "cuda")


@contextlib.contextmanager
def activated(
    version: str = "10.16.1",
    sdk: bool = True,
    devices: list[tuple[str, int, int, int]] | None = None,
    driver_version: int | None = None,
) -> Iterator[Callable[..., Any]]:
    """Put the doubles on sys.path for the duration; yield ``make_backend(**options)``."""
    env = {"FACELIB_TRT_DOUBLE_VERSION": version}
    with (
        tempfile.TemporaryDirectory(prefix="facelib-trt-") as cache,
        sdk_doubles(DOUBLES, _SDK_MODULES, env, place="first" if sdk else "none"),
    ):
        if sdk:
            from cuda.bindings import runtime

            runtime._reset()
            runtime._configure(devices=devices, driver_version=driver_version)
        from facelib_tensorrt.backend import TensorRTBackend

        register_if_missing([TensorRTBackend], "facelib-tensorrt (source tree)")

        def make_backend(**options: Any) -> Any:
            from facelib.backends import get_backend

            options.setdefault("timing_cache", str(Path(cache) / "timing.cache"))
            return get_backend("tensorrt", **options)

        yield make_backend


@contextlib.contextmanager
def doubles(workdir: Path, **activation: Any) -> Iterator[None]:
    """The activator of :mod:`facelib.testing.doubles`: this checkout's plugin on the doubles."""
    use_checkout(PLUGIN_ROOT, "facelib_tensorrt")
    with activated(**activation):
        yield
