"""Project-wide test setup: a missing shared data folder fails a CI run before any test.

The shared-data fixtures (``shared``, ``models_dir``, ``media_dir``, ``reference_dir``,
``mediapipe_package``) come from facelib's pytest plugin, :mod:`facelib.testing.pytest_plugin`:
the shared folder is ``../shared`` beside the project root, or wherever ``FACELIB_SHARED``
points.  Outside CI, tests that need it are skipped when it is missing.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from facelib.testing.shared import in_ci, shared_dir

# Property-based tests: "ci" replays the same examples on every run and keeps no example database,
# so a correct tree never fails CI by an unlucky draw (a found failure is pinned with @example
# instead); "explore" draws fresh examples each run and remembers failures, for looking for bugs.
# scripts/test.sh and CI (CI=true) select "ci"; HYPOTHESIS_PROFILE overrides.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if in_ci() else "explore"))


def pytest_sessionstart(session: pytest.Session) -> None:
    if shared_dir() is None and in_ci():
        raise pytest.UsageError(
            "the shared data folder is missing: expected ../shared beside the project root "
            "or FACELIB_SHARED pointing at it"
        )
