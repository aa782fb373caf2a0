"""Drawing results on images: face boxes and head-pose axes.  Every function returns a new image.

Axes of :func:`draw_pose_axes` are the head's own axes in facelib's one head-pose convention
(``docs/decisions.md``, "Head-pose angles"; AFLW2000 ``Pose_Para`` signs): the head rotation is
``R = Ry(-yaw) @ Rx(-pitch) @ Rz(-roll)`` in camera space (+X image right, +Y up, +Z towards the
viewer), and each axis end is the orthographic image projection ``(R[0, k], -R[1, k])`` (x right,
y down) of a head axis, scaled by ``size`` pixels from the centre:

* X, drawn **red**: towards the subject's left (image right for a frontal face);
* Y, drawn **green**: towards the top of the head (image up for a frontal face);
* Z, drawn **blue**: out of the face through the nose (zero length for a frontal face).

These are the axes :func:`facelib.io.draw_face.draw_pose_axes` draws from a MediaPipe facial
transformation matrix, so both tasks' drawings agree.  X and Z are the axes FSA-Net's and
HopeNet's ``draw_axis`` draws; their Y points down (a left-handed frame, upstream issue #47), ours
points up (right-handed).  A positive yaw swings Z to the image's left, a positive pitch swings
it up, a positive roll turns X clockwise.
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
    y, p, r = (-float(np.radians(a)) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = np.cos(y), np.sin(y), np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    rot_y = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rot_x = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    rot_z = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    rot = rot_y @ rot_x @ rot_z
    return size * np.stack([rot[0], -rot[1]], axis=1) + 0.0  # row k: image offset of head axis k


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
        Degrees, facelib's convention (see the module docstring).
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
