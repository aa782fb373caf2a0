"""Drawing results on images: face boxes and head-pose axes.  Every function returns a new image.

Axis convention of :func:`draw_pose_axes` (FSA-Net's ``draw_axis``, the same as HopeNet's):
angles are in degrees and **yaw is negated** before use; with ``p = pitch``, ``y = -yaw``,
``r = roll`` (radians) and image coordinates (x right, y down) the axis end points are

* X, drawn **red**: ``(cos y cos r,  cos p sin r + cos r sin p sin y)``
* Y, drawn **green**: ``(-cos y sin r,  cos p cos r - sin p sin y sin r)``
* Z, drawn **blue** (out of the face, towards the viewer for yaw = pitch = 0 it has zero length
  and grows as the head turns): ``(sin y,  -cos y sin p)``

each scaled by ``size`` pixels from the centre.  So for a frontal face X points right, Y points
down, and a positive yaw swings the blue Z axis to the image's left.  Upstream issue #47 points
out the handedness is debatable; we keep upstream's drawing so pictures match its demos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from facelib.io.image import to_rgb_uint8

#: RGB colours.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)


def pose_axes(yaw: float, pitch: float, roll: float, size: float = 50.0) -> np.ndarray:
    """(3, 2) float64 offsets in pixels (x right, y down) of the X, Y, Z axis ends (see module doc)."""
    p = np.radians(pitch)
    y = -np.radians(yaw)
    r = np.radians(roll)
    return size * np.array(
        [
            [np.cos(y) * np.cos(r), np.cos(p) * np.sin(r) + np.cos(r) * np.sin(p) * np.sin(y)],
            [-np.cos(y) * np.sin(r), np.cos(p) * np.cos(r) - np.sin(p) * np.sin(y) * np.sin(r)],
            [np.sin(y), -np.cos(y) * np.sin(p)],
        ]
    )


def draw_pose_axes(
    image: np.ndarray,
    yaw: float,
    pitch: float,
    roll: float,
    centre: Sequence[float] | None = None,
    size: float = 50.0,
    thickness: int = 3,
) -> np.ndarray:
    """A copy of RGB ``image`` with head-pose axes drawn at ``centre`` (default: image centre).

    Parameters
    ----------
    image:
        RGB uint8 (H, W, 3) (other layouts are converted).
    yaw, pitch, roll:
        Degrees, FSA-Net convention.
    centre:
        ``(x, y)`` pixels; default the image centre.
    size:
        Axis length in pixels.
    thickness:
        Line width of X and Y (Z is drawn one pixel thinner, as upstream).
    """
    import cv2

    out = to_rgb_uint8(image).copy()
    if centre is None:
        cx, cy = out.shape[1] / 2.0, out.shape[0] / 2.0
    else:
        cx, cy = float(centre[0]), float(centre[1])
    ends = pose_axes(yaw, pitch, roll, size)
    origin = (int(cx), int(cy))
    for (dx, dy), colour, width in zip(ends, (RED, GREEN, BLUE), (thickness, thickness, max(thickness - 1, 1))):
        cv2.line(out, origin, (int(cx + dx), int(cy + dy)), colour, width)
    return out


def draw_box(
    image: np.ndarray,
    box: Sequence[float] | np.ndarray,
    colour: tuple[int, int, int] = GREEN,
    thickness: int = 2,
    label: str | None = None,
) -> np.ndarray:
    """A copy of RGB ``image`` with the box ``x1, y1, x2, y2`` (pixels) and an optional label."""
    import cv2

    out = to_rgb_uint8(image).copy()
    x1, y1, x2, y2 = (round(float(v)) for v in np.asarray(box, dtype=np.float64).reshape(4))
    cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
    if label:
        cv2.putText(out, label, (x1, max(y1 - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


def draw_head_poses(image: np.ndarray, faces: Sequence[Any]) -> np.ndarray:
    """A copy of RGB ``image`` with each face's box, ``y/p/r`` label and pose axes drawn.

    ``faces`` are :class:`~facelib.results.HeadPoseResult`-like objects: ``box`` (x1, y1, x2, y2
    pixels) and ``yaw``, ``pitch``, ``roll`` in degrees.  The axes are drawn at the box centre,
    half the box's smaller side long (at least 20 pixels).
    """
    for face in faces:
        yaw, pitch, roll = float(face.yaw), float(face.pitch), float(face.roll)
        x1, y1, x2, y2 = (float(v) for v in face.box)
        image = draw_box(image, face.box, label=f"y{yaw:.0f} p{pitch:.0f} r{roll:.0f}")
        size = max(20.0, 0.5 * min(x2 - x1, y2 - y1))
        image = draw_pose_axes(image, yaw, pitch, roll, ((x1 + x2) / 2, (y1 + y2) / 2), size)
    return image
