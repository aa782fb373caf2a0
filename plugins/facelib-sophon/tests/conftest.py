"""Fixtures of the facelib-sophon tests: the SAIL / TPU-MLIR doubles.

The shared-data fixtures (``models_dir``...) come from facelib's pytest plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facelib.testing.doubles import load_module, use_checkout

HERE = Path(__file__).resolve().parent
use_checkout(HERE.parent, "facelib_sophon")  # test this checkout's plugin
sophon_testing = load_module(HERE / "doubles" / "sophon_testing.py", "sophon_testing")


@pytest.fixture
def sophon(tmp_path: Path) -> Iterator[type]:
    """The SophonBackend class with the SAIL and TPU-MLIR doubles active."""
    with sophon_testing.sophon_doubles(tmp_path) as cls:
        yield cls
