"""Default models shipped ready to run in the ``facelib-models`` distribution.

``pip install facelib`` also installs ``facelib-models``, whose import package ``facelib_models``
holds complete model packages (card, ONNX files, ``hub.json`` provenance) for the defaults of
head pose and expression capture: :data:`BUNDLED_MODELS`.  They were converted once by facelib's
own converters from the upstream files, each checked against the upstream sha256 recorded in
:mod:`facelib.models.registry` (``scripts/build_default_models.py`` regenerates them; see
docs/decisions.md).  The hub (:func:`facelib.models.hub.ensure_package`) looks here before its
cache, so the main job runs with no network, no mirror and no TensorFlow.

A bundled package is only used while its recipe (converter, options, source sha256s) equals the
registry's; a stale one is ignored and the hub builds the package as before.  ``FACELIB_BUNDLED=0``
turns the lookup off (the hub then fetches and converts as it does for every other model).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["BUNDLED_ENV", "BUNDLED_MODELS", "BUNDLE_MODULE", "bundled_dir", "bundled_root", "is_bundled"]

#: Import package of the ``facelib-models`` distribution.
BUNDLE_MODULE = "facelib_models"
#: Environment variable: ``0`` / ``false`` / ``no`` / ``off`` disables the bundled packages.
BUNDLED_ENV = "FACELIB_BUNDLED"
#: Registry names of the packages ``facelib-models`` ships.
BUNDLED_MODELS: tuple[str, ...] = ("fsanet", "ultraface-rfb-320", "mediapipe-face-landmarker")

_OFF = {"0", "false", "no", "off"}


def bundled_root() -> Path | None:
    """Directory of the installed ``facelib_models`` package, or None (not installed / disabled).

    Found without importing it (``importlib.util.find_spec``), so a broken or absent
    distribution costs nothing.
    """
    if os.environ.get(BUNDLED_ENV, "").strip().lower() in _OFF:
        return None
    try:
        spec = importlib.util.find_spec(BUNDLE_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_dir(name: str) -> Path | None:
    """The bundled package directory of registry model ``name``, or None when not shipped.

    Only existence is checked here; the hub also compares its recipe with the registry's.
    """
    root = bundled_root()
    if root is None or name not in BUNDLED_MODELS:
        return None
    path = root / name
    return path if path.is_dir() else None


def is_bundled(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies inside the installed ``facelib_models`` package (read-only data)."""
    root = bundled_root()
    if root is None:
        return False
    try:
        return Path(path).resolve().is_relative_to(root.resolve())
    except OSError:
        return False
