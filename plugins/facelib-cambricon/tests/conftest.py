"""Fixtures of the facelib-cambricon tests: shared models, and the MagicMind double."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelib.backends import reload_plugins

HERE = Path(__file__).resolve().parent
# Test this checkout's plugin even when another copy is pip-installed (e.g. editable from another
# tree): its source folder goes first, and copies imported earlier in the session are forgotten.
sys.path.insert(0, str(HERE.parent))
for _name in [m for m in sys.modules if m.split(".")[0] == "facelib_cambricon"]:
    del sys.modules[_name]
reload_plugins()  # backend classes registered from such a copy are dropped too


def _load_helper() -> object:
    """Import doubles/cambricon_testing.py without leaving the doubles folder on sys.path."""
    spec = importlib.util.spec_from_file_location("cambricon_testing", HERE / "doubles" / "cambricon_testing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cambricon_testing"] = module
    spec.loader.exec_module(module)
    return module


cambricon_doubles = _load_helper().cambricon_doubles  # type: ignore[attr-defined]

REPO = HERE.parents[2]


def _shared() -> Path | None:
    path = Path(os.environ.get("FACELIB_SHARED", REPO.parent / "shared"))
    return path if (path / "assets").is_dir() else None


@pytest.fixture(scope="session")
def models_dir() -> Path:
    path = _shared()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("the shared data folder is missing (../shared or FACELIB_SHARED)")
        pytest.skip("../shared is not present (set FACELIB_SHARED)")
    return path / "assets" / "models"


@pytest.fixture
def cambricon() -> Iterator[type]:
    """The CambriconBackend class with the MagicMind double active."""
    with cambricon_doubles() as cls:
        yield cls
