"""Run the Ascend backends against the test doubles in ``doubles/`` (reusable by task tests).

    from ascend_double_env import activated

    with activated() as make_backend:           # one simulated Ascend310P3, atc on PATH
        backend = make_backend()                # facelib.get_backend("ascend", ...)

``activated(sdk=False)`` hides ais_bench/acl, ``activated(devices=0)`` shows no NPU,
``activated(atc=False)`` removes the atc double from PATH, ``soc=`` sets the detected SoC.
The plugin code under test is unchanged: only sys.path, sys.modules, PATH and the doubles'
environment variables differ.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOUBLES = HERE / "doubles"
PLUGIN_ROOT = HERE.parent
_SDK_MODULES = ("ais_bench", "aclruntime", "acl", "om_format")


def _forget_sdk() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in _SDK_MODULES:
            del sys.modules[name]


def ensure_plugin_importable() -> None:
    try:
        importlib.import_module("facelib_ascend")
    except ImportError:
        sys.path.insert(0, str(PLUGIN_ROOT))


def ensure_registered() -> None:
    """Register both backends by hand when the entry point is not installed (source checkout)."""
    from facelib.backends import backend_class, register_backend, reload_plugins
    from facelib.errors import BackendNotFoundError

    reload_plugins()
    try:
        backend_class("ascend")
    except BackendNotFoundError:
        from facelib_ascend import AscendBackend, AscendCannBackend

        register_backend(AscendBackend, origin="facelib-ascend (source tree)")
        register_backend(AscendCannBackend, origin="facelib-ascend (source tree)")


@contextlib.contextmanager
def activated(
    sdk: bool = True, devices: int = 1, soc: str = "Ascend310P3", atc: bool = True
) -> Iterator[Callable[..., Any]]:
    """Put the doubles on sys.path (and atc on PATH) for the duration; yield ``make_backend(**options)``."""
    ensure_plugin_importable()
    saved = {k: os.environ.get(k) for k in ("PATH", "FACELIB_ACL_DOUBLE_DEVICES", "FACELIB_ACL_DOUBLE_SOC")}
    bindir = tempfile.TemporaryDirectory(prefix="facelib-atc-bin-")
    home = None if os.environ.get("FACELIB_HOME") else tempfile.TemporaryDirectory(prefix="facelib-home-")
    if home is not None:  # compiled artefacts of read-only packages stay out of the user's cache
        os.environ["FACELIB_HOME"] = home.name
    _forget_sdk()
    if sdk:
        sys.path.insert(0, str(DOUBLES))
    os.environ["FACELIB_ACL_DOUBLE_DEVICES"] = str(devices)
    os.environ["FACELIB_ACL_DOUBLE_SOC"] = soc
    if atc:
        script = Path(bindir.name) / "atc"
        script.write_text(
            f'#!/bin/sh\nPYTHONPATH="{DOUBLES}" exec "{sys.executable}" "{DOUBLES / "atc_double.py"}" "$@"\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        os.environ["PATH"] = f"{bindir.name}{os.pathsep}{os.environ.get('PATH', '')}"
    else:
        os.environ["PATH"] = os.pathsep.join(
            p for p in os.environ.get("PATH", "").split(os.pathsep) if not (Path(p) / "atc").exists()
        )
    try:
        ensure_registered()

        def make_backend(name: str = "ascend", **options: Any) -> Any:
            from facelib.backends import get_backend

            return get_backend(name, **options)

        yield make_backend
    finally:
        if sdk:
            sys.path.remove(str(DOUBLES))
        _forget_sdk()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        from facelib.backends import reload_plugins

        reload_plugins()
        bindir.cleanup()
        if home is not None:
            os.environ.pop("FACELIB_HOME", None)
            home.cleanup()
