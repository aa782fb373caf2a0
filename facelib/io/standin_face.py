"""A small stand-in face with the 52 ARKit blend shapes, so an export opens and plays on its own.

The head is an ellipsoid (15 cm wide, 20 cm tall, 17 cm deep; metres, Y up, looking along +Z)
made of quads, denser than it needs to be nowhere; each ARKit shape moves a soft (Gaussian)
patch of the front of the head in the direction the shape moves a real face (a blink pulls the
eye patch down, ``jawOpen`` drops the chin, ``mouthSmileLeft`` pulls the subject's left mouth
corner up and out, ...).  "Left" is the subject's left, at +X, as in ARKit.  It is a test card,
not a character: use ``--rig`` to animate your own.
"""

from __future__ import annotations

import functools

import numpy as np

from facelib.io.face_rig import FaceRig, RigMesh
from facelib.processing.arkit import ARKIT_NAMES

_RADII = (0.075, 0.1, 0.085)  # half width, half height, half depth (metres)

# name: ((patch centre x, y on the front of the head), patch radius, (dx, dy, dz) at full weight)
# For "...Left" shapes; "...Right" mirrors x.  cheekPuff moves both cheeks.
_PATCHES: dict[str, tuple[tuple[float, float], float, tuple[float, float, float]]] = {
    "eyeBlinkLeft": ((0.03, 0.022), 0.012, (0.0, -0.01, -0.002)),
    "eyeLookDownLeft": ((0.03, 0.02), 0.009, (0.0, -0.004, 0.0)),
    "eyeLookInLeft": ((0.03, 0.02), 0.009, (-0.004, 0.0, 0.0)),
    "eyeLookOutLeft": ((0.03, 0.02), 0.009, (0.004, 0.0, 0.0)),
    "eyeLookUpLeft": ((0.03, 0.02), 0.009, (0.0, 0.004, 0.0)),
    "eyeSquintLeft": ((0.03, 0.012), 0.011, (0.0, 0.005, 0.0)),
    "eyeWideLeft": ((0.03, 0.03), 0.011, (0.0, 0.006, 0.0)),
    "jawForward": ((0.0, -0.07), 0.03, (0.0, 0.0, 0.012)),
    "jawLeft": ((0.0, -0.07), 0.03, (0.012, 0.0, 0.0)),
    "jawOpen": ((0.0, -0.065), 0.035, (0.0, -0.025, 0.0)),
    "mouthClose": ((0.0, -0.05), 0.012, (0.0, 0.007, 0.0)),
    "mouthFunnel": ((0.0, -0.042), 0.015, (0.0, 0.0, 0.01)),
    "mouthPucker": ((0.0, -0.042), 0.011, (0.0, 0.0, 0.014)),
    "mouthLeft": ((0.0, -0.042), 0.016, (0.01, 0.0, 0.0)),
    "mouthSmileLeft": ((0.022, -0.042), 0.01, (0.006, 0.008, -0.002)),
    "mouthFrownLeft": ((0.022, -0.044), 0.01, (0.002, -0.008, 0.0)),
    "mouthDimpleLeft": ((0.025, -0.042), 0.008, (0.003, 0.0, -0.005)),
    "mouthStretchLeft": ((0.022, -0.044), 0.01, (0.007, -0.003, 0.0)),
    "mouthRollLower": ((0.0, -0.048), 0.01, (0.0, 0.003, -0.006)),
    "mouthRollUpper": ((0.0, -0.036), 0.01, (0.0, -0.003, -0.006)),
    "mouthShrugLower": ((0.0, -0.052), 0.012, (0.0, 0.005, 0.004)),
    "mouthShrugUpper": ((0.0, -0.035), 0.01, (0.0, 0.004, 0.003)),
    "mouthPressLeft": ((0.01, -0.042), 0.008, (0.0, 0.0, -0.004)),
    "mouthLowerDownLeft": ((0.01, -0.048), 0.01, (0.0, -0.007, 0.0)),
    "mouthUpperUpLeft": ((0.01, -0.035), 0.01, (0.0, 0.006, 0.0)),
    "browDownLeft": ((0.03, 0.045), 0.015, (0.0, -0.007, 0.0)),
    "browInnerUp": ((0.0, 0.045), 0.015, (0.0, 0.009, 0.0)),
    "browOuterUpLeft": ((0.045, 0.045), 0.012, (0.0, 0.009, 0.0)),
    "cheekPuff": ((0.042, -0.025), 0.015, (0.007, 0.0, 0.004)),
    "cheekSquintLeft": ((0.04, -0.005), 0.012, (0.0, 0.006, 0.0)),
    "noseSneerLeft": ((0.012, 0.0), 0.008, (0.0, 0.005, 0.0)),
    "tongueOut": ((0.0, -0.046), 0.01, (0.0, -0.002, 0.018)),
}


# Static features of the rest face: ((x, y), radius, depth along +Z); mirrored features have x > 0.
_FEATURES = (
    ((0.0, -0.006), 0.011, 0.022),  # nose
    ((0.0, 0.012), 0.007, 0.008),  # bridge of the nose
    ((0.03, 0.021), 0.011, -0.012),  # eye sockets
    ((0.03, 0.04), 0.012, 0.006),  # brow ridges
    ((0.0, -0.036), 0.007, 0.007),  # upper lip
    ((0.0, -0.049), 0.007, 0.006),  # lower lip
    ((0.0, -0.042), 0.004, -0.006),  # mouth line
    ((0.0, -0.078), 0.012, 0.007),  # chin
)


def _sculpt(points: np.ndarray) -> np.ndarray:
    """Push the front of the ellipsoid in and out to give it a nose, eyes, brows, lips, chin."""
    front = np.clip(points[:, 2] / _RADII[2], 0.0, 1.0) ** 2
    out = points.copy()
    for (x, y), radius, depth in _FEATURES:
        for cx in {x, -x}:
            d2 = (points[:, 0] - cx) ** 2 + (points[:, 1] - y) ** 2
            out[:, 2] += depth * np.exp(-d2 / (2 * radius**2)) * front
    return out


def _grid(lon: int, lat: int) -> tuple[np.ndarray, np.ndarray]:
    """Ellipsoid points (poles + rings) and its quads/triangles as (counts, indices)."""
    a, b, c = _RADII
    rings = []
    for i in range(1, lat):
        theta = np.pi * i / lat  # from the top pole
        phi = 2 * np.pi * np.arange(lon) / lon
        rings.append(
            np.stack(
                [a * np.sin(theta) * np.sin(phi), np.full(lon, b * np.cos(theta)), c * np.sin(theta) * np.cos(phi)],
                axis=1,
            )
        )
    points = np.concatenate([[[0.0, b, 0.0]], *rings, [[0.0, -b, 0.0]]]).astype(np.float32)
    bottom = len(points) - 1
    counts: list[int] = []
    indices: list[int] = []
    for j in range(lon):
        counts.append(3)
        indices += [0, 1 + j, 1 + (j + 1) % lon]
    for i in range(lat - 2):
        for j in range(lon):
            p, q = 1 + i * lon, 1 + (i + 1) * lon
            counts.append(4)
            indices += [p + j, q + j, q + (j + 1) % lon, p + (j + 1) % lon]
    last = 1 + (lat - 2) * lon
    for j in range(lon):
        counts.append(3)
        indices += [last + j, bottom, last + (j + 1) % lon]
    return points, (np.asarray(counts, np.int32), np.asarray(indices, np.int32))  # type: ignore[return-value]


def _offsets(points: np.ndarray, name: str) -> np.ndarray:
    base = name.replace("Right", "Left")
    (cx, cy), radius, (dx, dy, dz) = _PATCHES[base]
    mirror = name.endswith("Right") or name in ("jawRight", "mouthRight")
    if mirror:
        cx, dx = -cx, -dx
    front = np.clip(points[:, 2] / _RADII[2], 0.0, 1.0) ** 2
    out = np.zeros_like(points)
    centres = [(cx, dx), (-cx, -dx)] if name == "cheekPuff" else [(cx, dx)]
    for x0, ddx in centres:
        d2 = (points[:, 0] - x0) ** 2 + (points[:, 1] - cy) ** 2
        w = np.exp(-d2 / (2 * radius**2)) * front
        w[w < 1e-3] = 0.0
        out += w[:, None] * np.asarray([ddx, dy, dz], np.float32)
    return out.astype(np.float32)


@functools.lru_cache(maxsize=1)
def standin_face() -> FaceRig:
    """The stand-in face: one mesh ``"StandInFace"`` (3,386 points) with all 52 ARKit shapes."""
    points, (counts, indices) = _grid(72, 48)
    points = _sculpt(points)
    offsets = np.stack([_offsets(points, n) for n in ARKIT_NAMES])
    mesh = RigMesh("StandInFace", points, counts, indices, tuple(ARKIT_NAMES), offsets)
    return FaceRig((mesh,), "stand-in")
