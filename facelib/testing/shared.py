"""Where the shared test data folder is: ``FACELIB_SHARED``, else ``../shared`` beside the checkout.

The folder holds the real weights (``assets/models``), media (``assets/media``) and upstream
reference outputs (``reference``) the tests read in place; see the project README.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The checkout holding this copy of facelib (``<root>/facelib/testing/shared.py``).
CHECKOUT = Path(__file__).resolve().parents[2]


def shared_dir(start: Path | None = None) -> Path | None:
    """The shared data folder, or None when it is not there.

    ``FACELIB_SHARED`` wins; otherwise ``shared`` beside the project folder ``start`` (default:
    the checkout facelib was imported from, then the current directory).
    """
    env = os.environ.get("FACELIB_SHARED")
    if env:
        candidates = [Path(env)]
    else:
        roots = [start] if start is not None else [CHECKOUT, Path.cwd()]
        candidates = [root.parent / "shared" for root in roots]
    for path in candidates:
        if (path / "assets").is_dir():
            return path
    return None


def in_ci() -> bool:
    """True on a CI runner (``CI`` set), where missing shared data must fail, not skip."""
    return bool(os.environ.get("CI"))
