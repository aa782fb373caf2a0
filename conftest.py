"""Root conftest: facelib's pytest plugin, also when the installed metadata predates its entry point.

The plugin (:mod:`facelib.testing.pytest_plugin`) is registered through the ``pytest11`` entry
point ``facelib``; an editable install made before that entry point existed lacks it until
``pip install -e .`` runs again, so it is registered here in that case.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin("facelib") is None:
        from facelib.testing import pytest_plugin

        config.pluginmanager.register(pytest_plugin, "facelib")
