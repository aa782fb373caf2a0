"""The pluggy hook that registers the LiteRT backend (entry point ``facelib.backends: litert``)."""

from __future__ import annotations

from facelib.backends import Backend, hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return the LiteRT backend class (``ai_edge_litert`` itself is imported only when used)."""
    from facelib_litert.backend import LiteRTBackend

    return [LiteRTBackend]
