"""Project-wide test setup: a missing shared data folder fails a CI run before any test.

The shared-data fixtures (``shared``, ``models_dir``, ``media_dir``, ``reference_dir``,
``mediapipe_package``) come from facelib's pytest plugin, :mod:`facelib.testing.pytest_plugin`:
the shared folder is ``../shared`` beside the project root, or wherever ``FACELIB_SHARED``
points.  Outside CI, tests that need it are skipped when it is missing.
"""

from __future__ import annotations

import pytest

from facelib.testing.shared import in_ci, shared_dir


def pytest_sessionstart(session: pytest.Session) -> None:
    if shared_dir() is None and in_ci():
        raise pytest.UsageError(
            "the shared data folder is missing: expected ../shared beside the project root "
            "or FACELIB_SHARED pointing at it"
        )
