"""Result types of expression capture (BlendshapeCapture), shared by every capture engine."""

from __future__ import annotations

import attrs
import numpy as np

from facelib.results import ResultMixin

_ARRAY_EQ = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen
class FaceBlendshapes(ResultMixin):
    """Expression of one face in one image.

    Attributes
    ----------
    box:
        (4,) float32 ``x1, y1, x2, y2`` in pixels.
    score:
        Detection / face-presence confidence in [0, 1].
    blendshapes:
        (52,) float32 weights in [0, 1] in canonical ARKit order
        (:data:`facelib.processing.arkit.ARKIT_NAMES`); shapes a model lacks are 0.
    landmarks:
        (N, 3) float32 (N = 478 for the MediaPipe mesh): x, y in pixels, z in the same pixel
        scale (negative towards the camera), or None for engines without landmarks.
    transform:
        (4, 4) float32 facial transformation matrix (canonical face -> camera, centimetres,
        MediaPipe's convention), or None.
    head_pose:
        (3,) float32 yaw, pitch, roll in degrees, or None.
    """

    box: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    score: float
    blendshapes: np.ndarray = attrs.field(eq=_ARRAY_EQ)
    landmarks: np.ndarray | None = attrs.field(default=None, eq=_ARRAY_EQ)
    transform: np.ndarray | None = attrs.field(default=None, eq=_ARRAY_EQ)
    head_pose: np.ndarray | None = attrs.field(default=None, eq=_ARRAY_EQ)


@attrs.frozen
class BlendshapeFrame(ResultMixin):
    """All faces of one image or video frame; ``timestamp_ms`` is 0 for still images."""

    index: int
    timestamp_ms: float
    faces: tuple[FaceBlendshapes, ...]
