"""Test scaffolding for facelib and its backend plugins.

- :mod:`facelib.testing.pytest_plugin`: the pytest plugin (registered through the ``pytest11``
  entry point, so it is active wherever facelib is installed): fixtures locating the shared
  data folder (``../shared`` or ``FACELIB_SHARED``) and building model packages from it.
- :mod:`facelib.testing.conformance`: the backend conformance suite; a plugin runs it by
  subclassing :class:`~facelib.testing.conformance.BackendConformance` in one test module.
- :mod:`facelib.testing.doubles`: putting a plugin's vendor-SDK test doubles in place.
- :mod:`facelib.testing.compare`: comparing task results field by field.
- :mod:`facelib.testing.model_cases`: real models with real inputs.

Nothing here is imported by facelib itself; these modules import pytest lazily or only where a
test is running.
"""
