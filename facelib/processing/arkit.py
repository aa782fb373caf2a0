"""The one canonical list of ARKit's 52 blendshapes, and converters from other orders.

Canonical order = the column order of the Live Link Face app's CSV takes: eyes (left then
right), jaw, mouth, brows, cheeks, nose, tongue.  (Its UDP packets use Unreal's
``EARFaceBlendShape`` order instead, which swaps ``jawRight/jawLeft`` and
``mouthRight/mouthLeft``; :mod:`facelib.io.livelink` converts by name.)  Names are ARKit's raw
``ARFaceAnchor.BlendShapeLocation`` values (camelCase).  "Left"/"Right" mean the subject's own
side, as in ARKit and MediaPipe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from facelib.errors import InputError

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawRight", "jawLeft", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)  # fmt: skip

#: MediaPipe Face Landmarker's 52 outputs, in its order: ``_neutral`` first, no ``tongueOut``.
MEDIAPIPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

_INDEX = {name.lower(): i for i, name in enumerate(ARKIT_NAMES)}


def _key(name: str) -> str:
    """Case-, separator- and prefix-insensitive key: 'EyeBlink_L', 'eye_blink_left' -> 'eyeblinkleft'."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    key = re.sub(r"^(blendshape|arkit)", "", key)
    if key.endswith("l") and key[:-1] + "left" in _INDEX:
        key = key[:-1] + "left"
    elif key.endswith("r") and key[:-1] + "right" in _INDEX:
        key = key[:-1] + "right"
    return key


def arkit_index(name: str) -> int | None:
    """Position of ``name`` in :data:`ARKIT_NAMES`, matching loosely (case, ``_``, ``L``/``R``)."""
    return _INDEX.get(_key(name))


def to_arkit(values: np.ndarray, names: Sequence[str], fill: float = 0.0) -> np.ndarray:
    """Reorder weights given in the order ``names`` into the canonical ARKit-52 order.

    Parameters
    ----------
    values:
        (..., K) weights, K = len(names).
    names:
        The source order (e.g. :data:`MEDIAPIPE_NAMES` or a model card's output names).  Names
        with no ARKit counterpart (``_neutral``) are dropped.
    fill:
        Value for ARKit shapes the source lacks (e.g. ``tongueOut`` for MediaPipe).

    Returns
    -------
    (..., 52) float32 array in :data:`ARKIT_NAMES` order.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 0:
        raise InputError(f"expected an array of {len(names)} weights, got a single value ({values})")
    if values.shape[-1] != len(names):
        raise InputError(f"got {values.shape[-1]} weights for {len(names)} names")
    out = np.full((*values.shape[:-1], len(ARKIT_NAMES)), fill, dtype=np.float32)
    seen: dict[int, str] = {}
    for src, name in enumerate(names):
        dst = arkit_index(name)
        if dst is None:
            continue
        if dst in seen:
            raise InputError(f"names {seen[dst]!r} and {name!r} both map to ARKit {ARKIT_NAMES[dst]!r}")
        seen[dst] = name
        out[..., dst] = values[..., src]
    return out


def from_mediapipe(scores: np.ndarray) -> np.ndarray:
    """(..., 52) MediaPipe-order scores -> (..., 52) ARKit order (``tongueOut`` = 0)."""
    return to_arkit(scores, MEDIAPIPE_NAMES)


def unknown_names(names: Sequence[str]) -> list[str]:
    """The names in ``names`` that map to no ARKit blendshape (for validating a model card)."""
    return [n for n in names if arkit_index(n) is None]
