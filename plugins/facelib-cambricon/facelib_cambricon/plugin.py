"""The pluggy hook registering the ``cambricon`` backend (entry point ``facelib.backends``)."""

from __future__ import annotations

from facelib.backends import Backend, hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the backend this plugin provides (MagicMind is imported only when used)."""
    from facelib_cambricon.backend import CambriconBackend

    return [CambriconBackend]
