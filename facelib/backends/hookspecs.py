"""The plugin contract: every hook a facelib plugin may implement.

A plugin is an ordinary installed distribution that declares an entry point in the group
``facelib.backends`` pointing at a module (or object) with hook implementations::

    # pyproject.toml of the plugin
    [project.entry-points."facelib.backends"]
    mybackend = "facelib_mybackend.plugin"

    # facelib_mybackend/plugin.py
    from facelib.backends import hookimpl

    @hookimpl
    def facelib_backends():
        return [MyBackend]

The built-in ONNX Runtime backend is registered through this same hook, first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from facelib.backends.base import Backend

PROJECT_NAME = "facelib"
#: Entry-point group that plugins declare.
ENTRY_POINT_GROUP = "facelib.backends"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def facelib_backends() -> list[type[Backend]]:  # type: ignore[empty-body]
    """Return the :class:`~facelib.backends.base.Backend` subclasses this plugin provides."""
