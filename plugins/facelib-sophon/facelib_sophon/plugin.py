"""The pluggy hook registering the ``sophon`` backend (entry point ``facelib.backends``)."""

from __future__ import annotations

from facelib.backends import Backend, hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the backend this plugin provides (the SDK is imported only when used)."""
    from facelib_sophon.backend import SophonBackend

    return [SophonBackend]
