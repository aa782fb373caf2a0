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
from typing import Any, ClassVar

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

    #: Package name -> (builder in :mod:`facelib.testing.packages`, the folder it reads).
    BUILDERS: ClassVar[dict[str, tuple[str, str]]] = {
        "fsanet": ("build_fsanet", "models"),  # FSA-Net, three variants
        "ultraface": ("build_ultraface", "models"),  # UltraFace RFB-320
        "mediapipe": ("build_mediapipe", "models"),  # MediaPipe Face Landmarker
        "regressor": ("build_regressor", "models"),  # FaceBoxes + a seeded regressor (torch)
        "faceformer": ("build_faceformer", "reference"),  # tiny seeded FaceFormer (torch)
        "fomm": ("build_fomm", "reference"),  # tiny seeded First Order Motion Model (torch)
    }

    def get(self, name: str) -> Path:
        """The root of package ``name`` (a key of :attr:`BUILDERS`), built on first use."""
        from facelib.testing import packages

        if name not in self._built:
            builder, source = self.BUILDERS[name]
            folder = self.models_dir if source == "models" else self.reference_dir
            self._built[name] = getattr(packages, builder)(folder, self.workdir / name)
        return self._built[name]

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
    return shared_packages.get("mediapipe")
