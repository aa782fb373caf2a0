"""facelib's pytest plugin: shared-data fixtures for facelib's tests and every backend plugin's.

Registered through the ``pytest11`` entry point ``facelib`` (active wherever facelib is
installed; a project's own fixtures of the same names take precedence).  Every fixture is
session-scoped:

``shared``
    The shared data folder (``FACELIB_SHARED`` or ``../shared``).  A test using it is skipped
    when the folder is missing, and fails on CI (``CI`` set), where a missing folder is a
    broken runner rather than a reason to skip.
``models_dir``, ``media_dir``, ``reference_dir``
    ``shared/assets/models``, ``shared/assets/media`` and ``shared/reference``.
``mediapipe_package``
    A MediaPipe Face Landmarker model package built from the shared ``.task`` and its ONNX
    files (in a temporary folder).
``shared_packages``
    :class:`SharedPackages`: every task's model package, built once on first use, and ONNX
    Runtime reference results kept by name (the conformance suite's task tests use it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facelib.testing.shared import in_ci, shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of the shared data folder (skips the test when it is absent outside CI)."""
    path = shared_dir()
    if path is None:
        message = "the shared data folder is missing: ../shared beside the project, or set FACELIB_SHARED"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
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


class SharedPackages:
    """Model packages built once per test session from the shared data (each on first use), and
    ONNX Runtime reference results computed once and kept by name."""

    def __init__(self, shared: Path, workdir: Path) -> None:
        self.models_dir = shared / "assets" / "models"
        self.media_dir = shared / "assets" / "media"
        self.reference_dir = shared / "reference"
        self.workdir = workdir
        self._built: dict[str, Path] = {}
        self._references: dict[str, Any] = {}

    def _build(self, name: str, build: Callable[[Path], Path]) -> Path:
        if name not in self._built:
            self._built[name] = build(self.workdir / name)
        return self._built[name]

    def fsanet(self) -> Path:
        """The three-variant FSA-Net head-pose package."""
        from facelib.testing import packages

        return self._build("fsanet", lambda out: packages.build_fsanet(self.models_dir, out))

    def ultraface(self) -> Path:
        """The UltraFace RFB-320 detector package."""
        from facelib.testing import packages

        return self._build("ultraface", lambda out: packages.build_ultraface(self.models_dir, out))

    def mediapipe(self) -> Path:
        """The MediaPipe Face Landmarker package."""
        from facelib.testing import packages

        return self._build("mediapipe", lambda out: packages.build_mediapipe(self.models_dir, out))

    def faceformer(self) -> Path:
        """FaceFormer from the tiny seeded reference checkpoint (needs torch)."""
        from facelib.testing import packages

        return self._build("faceformer", lambda out: packages.build_faceformer(self.reference_dir, out))

    def fomm(self) -> Path:
        """First Order Motion Model from the tiny seeded reference checkpoint (needs torch)."""
        from facelib.testing import packages

        return self._build("fomm", lambda out: packages.build_fomm(self.reference_dir, out))

    def regressor(self) -> Path:
        """FaceBoxes + a small seeded blendshape regressor (needs torch)."""
        from facelib.testing import packages

        return self._build("regressor", lambda out: packages.build_regressor(self.models_dir, out))

    def reference(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result, computed on the first call for ``name`` and kept."""
        if name not in self._references:
            self._references[name] = compute()
        return self._references[name]


@pytest.fixture(scope="session")
def shared_packages(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> SharedPackages:
    """:class:`SharedPackages` for this test session (packages built on first use)."""
    return SharedPackages(shared, tmp_path_factory.mktemp("shared-packages"))


@pytest.fixture(scope="session")
def mediapipe_package(shared_packages: SharedPackages) -> Path:
    """A MediaPipe Face Landmarker package built from the shared .task and its prebuilt ONNX."""
    return shared_packages.mediapipe()
