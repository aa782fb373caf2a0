"""Fixtures of the facelib-cambricon tests: the MagicMind double.

The shared-data fixtures (``models_dir``...) come from facelib's pytest plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facelib.testing.doubles import load_module, use_checkout

HERE = Path(__file__).resolve().parent
use_checkout(HERE.parent, "facelib_cambricon")  # test this checkout's plugin
cambricon_testing = load_module(HERE / "doubles" / "cambricon_testing.py", "cambricon_testing")


@pytest.fixture
def cambricon() -> Iterator[type]:
    """The CambriconBackend class with the MagicMind double active."""
    with cambricon_testing.cambricon_doubles() as cls:
        yield cls
