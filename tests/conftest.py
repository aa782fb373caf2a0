"""Shared fixtures: where ../shared is, and small helpers to make model packages in tmp dirs.

The shared data folder (real weights, media, upstream references) is found at ``../shared`` from
the project root, or wherever ``FACELIB_SHARED`` points.  Outside CI, tests that need it are
skipped when it is missing; in CI (``CI=true``) a missing folder fails the run loudly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Property-based tests: "ci" replays the same examples on every run and keeps no example database,
# so a correct tree never fails CI by an unlucky draw (a found failure is pinned with @example
# instead); "explore" draws fresh examples each run and remembers failures, for looking for bugs.
# scripts/test.sh and CI (CI=true) select "ci"; HYPOTHESIS_PROFILE overrides.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore"))


def shared_dir() -> Path | None:
    """The shared data folder, or None when it is not there."""
    path = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
    return path if (path / "assets").is_dir() else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if shared_dir() is None and os.environ.get("CI"):
        raise pytest.UsageError(
            "the shared data folder is missing: expected ../shared beside the project root "
            "or FACELIB_SHARED pointing at it"
        )


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the shared data folder (skips the test when it is absent outside CI)."""
    path = shared_dir()
    if path is None:
        pytest.skip("../shared is not present (set FACELIB_SHARED)")
    return path


@pytest.fixture(scope="session")
def models_dir(shared: Path) -> Path:
    return shared / "assets" / "models"


@pytest.fixture(scope="session")
def media_dir(shared: Path) -> Path:
    return shared / "assets" / "media"


@pytest.fixture(scope="session")
def reference_dir(shared: Path) -> Path:
    return shared / "reference"


@pytest.fixture(scope="session")
def mediapipe_package(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MediaPipe Face Landmarker package built from the shared .task and its prebuilt ONNX."""
    from facelib.models.convert.mediapipe import build_package

    mp = models_dir / "mediapipe"
    out = tmp_path_factory.mktemp("mediapipe") / "mediapipe-face-landmarker"
    sources = {
        "task": mp / "face_landmarker.task",
        "detector": mp / "face_detector.onnx",
        "landmarks": mp / "face_landmarks_detector.onnx",
        "blendshapes": mp / "face_blendshapes.onnx",
    }
    return build_package(sources, out).root
