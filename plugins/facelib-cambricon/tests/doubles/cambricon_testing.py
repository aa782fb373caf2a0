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
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facelib.testing.doubles import register_if_missing, sdk_doubles, use_checkout

DOUBLES = Path(__file__).resolve().parent
PLUGIN_ROOT = DOUBLES.parents[1]


@contextmanager
def cambricon_doubles(mlus: int = 1, magicmind: bool = True, fail: str | None = None) -> Iterator[type]:
    """Activate the double; yields the ``CambriconBackend`` class (registered as ``"cambricon"``)."""
    env = {"FACELIB_MM_DOUBLE_MLUS": str(mlus), **({"FACELIB_MM_DOUBLE_FAIL": fail} if fail else {})}
    place, hide = ("first", ()) if magicmind else ("none", ("magicmind",))
    with sdk_doubles(DOUBLES, ["magicmind"], env, place=place, hide=hide, home=False):
        if importlib.util.find_spec("facelib_cambricon") is None:
            sys.path.insert(0, str(PLUGIN_ROOT))
        from facelib_cambricon.backend import CambriconBackend

        register_if_missing([CambriconBackend], "facelib-cambricon (test doubles)")
        yield CambriconBackend


@contextmanager
def doubles(workdir: Path, **activation: Any) -> Iterator[None]:
    """The activator of :mod:`facelib.testing.doubles`: this checkout's plugin on the doubles."""
    use_checkout(PLUGIN_ROOT, "facelib_cambricon")
    with cambricon_doubles(**activation):
        yield
