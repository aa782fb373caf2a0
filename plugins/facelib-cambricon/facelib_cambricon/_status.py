"""Turning MagicMind ``Status`` results into facelib errors."""

from __future__ import annotations

from typing import Any

from facelib.errors import BackendError, FacelibError


def check(status: Any, what: str, error: type[FacelibError] = BackendError) -> None:
    """Raise ``error`` when ``status`` (an ``mm.Status``) is not ok; ``None`` counts as ok
    (a few runtime calls return nothing in some MagicMind versions)."""
    if status is None or status.ok():
        return
    raise error(f"MagicMind: {what} failed: {status}")
