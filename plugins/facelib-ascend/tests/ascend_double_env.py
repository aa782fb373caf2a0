"""Run the Ascend backends against the test doubles in ``doubles/`` (reusable by task tests).

    from ascend_double_env import activated

    with activated() as make_backend:           # one simulated Ascend310P3, atc on PATH
        backend = make_backend()                # facelib.get_backend("ascend", ...)

``activated(sdk=False)`` hides ais_bench/acl, ``activated(devices=0)`` shows no NPU,
``activated(atc=False)`` removes the atc double from PATH, ``soc=`` sets the detected SoC.
The plugin code under test is unchanged: only sys.path, sys.modules, PATH and the doubles'
environment variables differ.  :func:`doubles` is the activator the conformance suite uses.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facelib.testing.doubles import register_if_missing, sdk_doubles, use_checkout, write_executable

HERE = Path(__file__).resolve().parent
DOUBLES = HERE / "doubles"
PLUGIN_ROOT = HERE.parent
_SDK_MODULES = ("ais_bench", "aclruntime", "acl", "om_format")


@contextlib.contextmanager
def activated(
    sdk: bool = True, devices: int = 1, soc: str = "Ascend310P3", atc: bool = True
) -> Iterator[Callable[..., Any]]:
    """Put the doubles on sys.path (and atc on PATH) for the duration; yield ``make_backend(**options)``."""
    env = {"FACELIB_ACL_DOUBLE_DEVICES": str(devices), "FACELIB_ACL_DOUBLE_SOC": soc}
    with (
        tempfile.TemporaryDirectory(prefix="facelib-atc-bin-") as bindir,
        sdk_doubles(DOUBLES, _SDK_MODULES, env, place="first" if sdk else "none"),
    ):
        if atc:
            write_executable(
                Path(bindir) / "atc",
                f'#!/bin/sh\nPYTHONPATH="{DOUBLES}" exec "{sys.executable}" "{DOUBLES / "atc_double.py"}" "$@"\n',
            )
            os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
        else:
            os.environ["PATH"] = os.pathsep.join(
                p for p in os.environ.get("PATH", "").split(os.pathsep) if not (Path(p) / "atc").exists()
            )
        from facelib_ascend import AscendBackend, AscendCannBackend

        register_if_missing([AscendBackend, AscendCannBackend], "facelib-ascend (source tree)")

        def make_backend(name: str = "ascend", **options: Any) -> Any:
            from facelib.backends import get_backend

            return get_backend(name, **options)

        yield make_backend


@contextlib.contextmanager
def doubles(workdir: Path, **activation: Any) -> Iterator[None]:
    """The activator of :mod:`facelib.testing.doubles`: this checkout's plugin on the doubles."""
    use_checkout(PLUGIN_ROOT, "facelib_ascend")
    with activated(**activation):
        yield
