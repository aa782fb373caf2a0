"""Fixtures of the facelib-tensorrt tests: backend factories on the SDK doubles (TensorRT 10 and 11).

The shared-data fixtures (``models_dir``...) come from facelib's pytest plugin.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from facelib.testing.doubles import use_checkout

HERE = Path(__file__).resolve().parent
use_checkout(HERE.parent, "facelib_tensorrt")  # test this checkout's plugin
sys.path.insert(0, str(HERE))  # trt_double_env (never the doubles themselves)

from trt_double_env import activated  # noqa: E402


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
