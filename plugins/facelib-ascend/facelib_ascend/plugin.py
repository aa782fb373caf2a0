"""The pluggy hook registering the Ascend backends (entry point ``facelib.backends: ascend``)."""

from __future__ import annotations

from facelib.backends import Backend, hookimpl


@hookimpl
def facelib_backends() -> list[type[Backend]]:
    """Return both Ascend backends (the SDKs are imported only when used)."""
    from facelib_ascend.backend import AscendBackend
    from facelib_ascend.cann import AscendCannBackend

    return [AscendBackend, AscendCannBackend]
