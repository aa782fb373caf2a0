"""Fixtures of the facelib-ascend tests: a backend factory on the SDK doubles.

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
use_checkout(HERE.parent, "facelib_ascend")  # test this checkout's plugin
sys.path.insert(0, str(HERE))  # ascend_double_env (never the doubles themselves)

from ascend_double_env import activated  # noqa: E402


@pytest.fixture
def make_backend() -> Iterator[Callable[..., Any]]:
    """``make_backend(name="ascend", **options)`` -> an Ascend backend running on the doubles."""
    with activated() as factory:
        yield factory
