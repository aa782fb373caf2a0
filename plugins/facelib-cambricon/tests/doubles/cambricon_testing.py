"""Make the ``cambricon`` backend run here: the MagicMind double importable.

Usage (any test, including task-level tests outside this plugin)::

    sys.path.insert(0, "plugins/facelib-cambricon/tests/doubles")
    from cambricon_testing import cambricon_doubles
    sys.path.pop(0)          # the double must not stay importable outside the context

    with cambricon_doubles() as CambriconBackend:
        backend = facelib.get_backend("cambricon")       # or CambriconBackend(precision_mode=...)
        session = package.session("capsule", backend)    # builds ONNX -> .mm, cached

Everything is undone on exit (sys.path, environment, imported double modules, backend
registry).  ``mlus=0`` simulates a machine without an MLU; ``magicmind=False`` one without
MagicMind; ``fail="enqueue"`` / ``"sync"`` makes that runtime call return a bad Status.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOUBLES = Path(__file__).resolve().parent
PLUGIN_ROOT = DOUBLES.parents[1]


def _drop_double_modules() -> None:
    for name in [m for m in sys.modules if m == "magicmind" or m.startswith("magicmind.")]:
        sys.modules.pop(name, None)


@contextmanager
def cambricon_doubles(mlus: int = 1, magicmind: bool = True, fail: str | None = None) -> Iterator[type]:
    """Activate the double; yields the ``CambriconBackend`` class (registered as ``"cambricon"``)."""
    from facelib.backends import registry

    saved_path, saved_env = list(sys.path), dict(os.environ)
    _drop_double_modules()
    try:
        if magicmind:
            sys.path.insert(0, str(DOUBLES))
        else:
            sys.modules["magicmind"] = None  # type: ignore[assignment]  # import -> ImportError
        if importlib.util.find_spec("facelib_cambricon") is None:
            sys.path.insert(0, str(PLUGIN_ROOT))
        os.environ["FACELIB_MM_DOUBLE_MLUS"] = str(mlus)
        if fail:
            os.environ["FACELIB_MM_DOUBLE_FAIL"] = fail
        from facelib_cambricon.backend import CambriconBackend

        try:
            registry.backend_class("cambricon")
        except Exception:  # noqa: BLE001 - not installed as a distribution: register it here
            registry.register_backend(CambriconBackend, "facelib-cambricon (test doubles)")
        yield CambriconBackend
    finally:
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)
        _drop_double_modules()
        registry.reload_plugins()
