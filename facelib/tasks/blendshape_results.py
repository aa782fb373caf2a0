"""Result types of expression capture (BlendshapeCapture), shared by every capture engine."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from facelib.results import ResultMixin, _plain

_ARRAY_EQ = attrs.cmp_using(eq=np.array_equal)


@attrs.frozen(repr=False)
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as the ``facelib blendshapes --json`` output: ``blendshapes`` maps the 52
        ARKit names to weights, ``head_pose`` is ``{"yaw", "pitch", "roll"}`` (degrees) or None."""
        from facelib.processing.arkit import ARKIT_NAMES

        weights = np.asarray(self.blendshapes, np.float64).reshape(-1).tolist()
        pose = None if self.head_pose is None else np.asarray(self.head_pose, np.float64).reshape(3).tolist()
        return {
            "box": _plain(np.asarray(self.box)),
            "score": float(self.score),
            "blendshapes": dict(zip(ARKIT_NAMES, weights)),
            "head_pose": None if pose is None else dict(zip(("yaw", "pitch", "roll"), pose)),
            "transform": None if self.transform is None else _plain(np.asarray(self.transform)),
            "landmarks": None if self.landmarks is None else _plain(np.asarray(self.landmarks)),
        }

    def __repr__(self) -> str:
        from facelib.processing.arkit import ARKIT_NAMES

        box = ", ".join(f"{float(v):.1f}" for v in np.asarray(self.box).reshape(-1))
        weights = np.asarray(self.blendshapes, np.float64).reshape(-1)
        top = ", ".join(f"{ARKIT_NAMES[i]}={weights[i]:.2f}" for i in np.argsort(-weights, kind="stable")[:3])
        parts = [f"box=[{box}]", f"score={float(self.score):.3f}", f"top=({top})"]
        if self.head_pose is not None:
            yaw, pitch, roll = (float(v) for v in np.asarray(self.head_pose).reshape(3))
            parts.append(f"head_pose=(yaw={yaw:.1f}, pitch={pitch:.1f}, roll={roll:.1f})")
        if self.landmarks is not None:
            parts.append(f"landmarks={len(self.landmarks)}")
        return f"FaceBlendshapes({', '.join(parts)})"


@attrs.frozen
class BlendshapeFrame(ResultMixin):
    """All faces of one image or video frame; ``timestamp_ms`` is 0 for still images."""

    index: int
    timestamp_ms: float
    faces: tuple[FaceBlendshapes, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``index``, ``timestamp_ms`` and ``faces`` (see :meth:`FaceBlendshapes.to_dict`)."""
        return {
            "index": int(self.index),
            "timestamp_ms": float(self.timestamp_ms),
            "faces": [face.to_dict() for face in self.faces],
        }
