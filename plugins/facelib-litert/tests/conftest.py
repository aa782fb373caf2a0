"""Fixtures of the facelib-litert tests: the real LiteRT runtime on the bundled MediaPipe package.

No double: ``ai-edge-litert`` runs on any Linux x86_64/aarch64 or macOS arm64 CPU.  The tests
work on copies of the packages bundled in ``facelib-models`` (compiled artefacts then go to the
copy's ``.facelib-cache``), so they need no shared data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from facelib.testing.doubles import use_checkout

HERE = Path(__file__).resolve().parent
use_checkout(HERE.parent, "facelib_litert")  # test this checkout's plugin


def _bundled(name: str) -> Path:
    from facelib.models.bundled import bundled_root

    root = bundled_root()
    if root is None or not (root / name).is_dir():
        pytest.skip("facelib-models (the bundled packages) is not installed")
    return root / name


@pytest.fixture(scope="session")
def litert_available() -> None:
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install 'facelib[litert]')")


@pytest.fixture(scope="module")
def mediapipe_copy(tmp_path_factory: pytest.TempPathFactory, litert_available: None) -> Iterator[Path]:
    """A private copy of the bundled MediaPipe Face Landmarker package (keeps its .tflite sources)."""
    target = tmp_path_factory.mktemp("litert") / "mediapipe-face-landmarker"
    shutil.copytree(_bundled("mediapipe-face-landmarker"), target, ignore=shutil.ignore_patterns(".facelib-cache"))
    yield target


@pytest.fixture(scope="module")
def fsanet_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("litert") / "fsanet"
    shutil.copytree(_bundled("fsanet"), target, ignore=shutil.ignore_patterns(".facelib-cache"))
    return target
