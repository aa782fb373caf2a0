"""Fixtures for the TensorRT plugin tests: shared data, the SDK doubles, a backend factory."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from facelib.backends import reload_plugins

HERE = Path(__file__).resolve().parent
# Test this checkout's plugin even when another copy is pip-installed (e.g. editable from another
# tree): its source folder goes first, and copies imported earlier in the session are forgotten.
sys.path.insert(0, str(HERE.parent))
for _name in [m for m in sys.modules if m.split(".")[0] == "facelib_tensorrt"]:
    del sys.modules[_name]
reload_plugins()  # backend classes registered from such a copy are dropped too
sys.path.insert(0, str(HERE))  # trt_double_env (never the doubles themselves)

from trt_double_env import activated  # noqa: E402

ROOT = HERE.parents[2]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    shared = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
    if not (shared / "assets").is_dir():
        if os.environ.get("CI"):
            raise RuntimeError("../shared is missing (set FACELIB_SHARED)")
        pytest.skip("../shared is not present (set FACELIB_SHARED)")
    return shared / "assets" / "models"


@pytest.fixture
def backend_name() -> str:
    """The backend these tests exercise (for task-level tests parametrized by backend)."""
    return "tensorrt"


@pytest.fixture(params=["10.16.1", "11.1.0"], ids=["trt10", "trt11"])
def trt_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(trt_version: str) -> Iterator[Callable[..., Any]]:
    """``make_backend(**options)`` -> a TensorRT backend running on the doubles."""
    with activated(version=trt_version) as factory:
        yield factory


@pytest.fixture
def make_backend10() -> Iterator[Callable[..., Any]]:
    with activated(version="10.16.1") as factory:
        yield factory
