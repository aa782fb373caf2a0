"""The typed results every task returns, in one place: frozen attrs values with ``to_dict()``.

Results sit below the tasks and above nothing but :mod:`facelib.processing`: media writers
(:mod:`facelib.io`) and tasks both import them, so they never import a task.  Array fields compare
with :data:`ARRAY_EQ`; :meth:`ResultMixin.to_dict` turns arrays into lists for JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.processing.face_mesh import Roi


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class ResultMixin:
    """Adds :meth:`to_dict` (JSON-ready: arrays become lists) to an attrs result class."""

    def to_dict(self) -> dict[str, Any]:
        """Fields as plain Python values (lists instead of arrays), ready for ``json.dumps``."""
        return _plain(attrs.asdict(self, recurse=True))  # type: ignore[arg-type]


#: Equality of array fields (``attrs.field(eq=ARRAY_EQ)``): same shape and values.
ARRAY_EQ = attrs.cmp_using(eq=np.array_equal)


# -- face detection -----------------------------------------------------------------------------


def _box(value: object) -> np.ndarray:
    box = np.asarray(value, dtype=np.float32).reshape(4)
    return box


def _variants(value: Mapping[str, Any] | None) -> dict[str, tuple[float, float, float]]:
    return {str(k): tuple(float(x) for x in v) for k, v in (value or {}).items()}  # type: ignore[misc]


@attrs.frozen
class FaceBox(ResultMixin):
    """One detected face.

    Attributes
    ----------
    box:
        (4,) float32 ``x1, y1, x2, y2`` in pixels of the input image (x right, y down).
    score:
        Detector confidence in [0, 1].
    keypoints:
        Optional (K, 2) float32 ``x, y`` pixel coordinates of detector keypoints (eyes, nose...),
        in the detector's documented order.
    """

    box: np.ndarray = attrs.field(converter=_box, eq=ARRAY_EQ)
    score: float = attrs.field(converter=float)
    keypoints: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@attrs.frozen
class HeadPoseResult(ResultMixin):
    """Head pose of one face.

    Attributes
    ----------
    box:
        (4,) float32 ``x1, y1, x2, y2`` pixels: the face box the pose was estimated from.
    score:
        Detector confidence in [0, 1] (1.0 for boxes the caller gave as plain arrays).
    yaw, pitch, roll:
        Degrees, FSA-Net's convention (300W-LP / AFLW2000 ``Pose_Para`` angles; see
        docs/headpose.md): the mean of the selected variants.
    variants:
        Variant name -> (yaw, pitch, roll) degrees of each FSA-Net variant that was run.
    """

    box: np.ndarray = attrs.field(converter=_box, eq=ARRAY_EQ)
    score: float = attrs.field(converter=float)
    yaw: float = attrs.field(converter=float)
    pitch: float = attrs.field(converter=float)
    roll: float = attrs.field(converter=float)
    variants: dict[str, tuple[float, float, float]] = attrs.field(converter=_variants, factory=dict)

    @property
    def angles(self) -> np.ndarray:
        """(3,) float32 ``yaw, pitch, roll`` in degrees."""
        return np.array([self.yaw, self.pitch, self.roll], dtype=np.float32)


@attrs.frozen
class HeadPoseFrame(ResultMixin):
    """Head poses of one video frame (yielded by :meth:`HeadPose.predict_video`).

    Attributes
    ----------
    index, timestamp_ms:
        Frame number (from 0) and time in milliseconds.
    faces:
        One :class:`HeadPoseResult` per face.
    reused_boxes:
        True when the detector found no face in this frame and the previous frame's boxes were
        used (as upstream's video demo does).
    image:
        The RGB uint8 frame (not included in :meth:`to_dict`).
    """

    index: int
    timestamp_ms: float
    faces: list[HeadPoseResult]
    reused_boxes: bool = False
    image: np.ndarray | None = attrs.field(default=None, repr=False, eq=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "timestamp_ms": self.timestamp_ms,
            "reused_boxes": self.reused_boxes,
            "faces": [f.to_dict() for f in self.faces],
        }


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

    box: np.ndarray = attrs.field(eq=ARRAY_EQ)
    score: float
    blendshapes: np.ndarray = attrs.field(eq=ARRAY_EQ)
    landmarks: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)
    transform: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)
    head_pose: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)

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


@attrs.frozen
class LandmarkerFace(ResultMixin):
    """One face found by :class:`FaceLandmarker`.

    Attributes
    ----------
    box:
        (4,) float32 ``x1, y1, x2, y2`` pixels: the box of the landmarks.
    score:
        Face presence in [0, 1] (the landmark model's confidence that the crop holds a face).
    landmarks:
        (478, 3) float32: x, y in pixels; z in the same pixel scale, relative to the face centre,
        negative towards the camera.
    roi:
        The rotated crop the landmarks came from (pixels, radians).
    blendshapes:
        (52,) float32 scores in [0, 1], MediaPipe order (:data:`facelib.processing.arkit.MEDIAPIPE_NAMES`),
        or None unless asked for.
    transform:
        (4, 4) float32 facial transformation matrix (canonical face in cm -> camera space), or None.
    """

    box: np.ndarray = attrs.field(eq=ARRAY_EQ)
    score: float
    landmarks: np.ndarray = attrs.field(eq=ARRAY_EQ)
    roi: Roi
    blendshapes: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)
    transform: np.ndarray | None = attrs.field(default=None, eq=ARRAY_EQ)


@attrs.frozen
class LandmarkerResult(ResultMixin):
    """Faces of one image (``timestamp_ms`` 0 in image mode), in MediaPipe's output order."""

    timestamp_ms: float
    faces: tuple[LandmarkerFace, ...]
    image_size: tuple[int, int] = (0, 0)  # (width, height)


@attrs.frozen
class RegressorFace(ResultMixin):
    """One face from a regressor: the canonical result plus what does not fit it.

    Attributes
    ----------
    face:
        The :class:`FaceBlendshapes` (52 ARKit weights; shapes the model lacks are 0).
    extra:
        Outputs whose names are not ARKit blendshapes (name -> value), unclipped.
    raw:
        (K,) float32 outputs as the model returned them (after the card's activation).
    """

    face: FaceBlendshapes
    extra: dict[str, float]
    raw: np.ndarray = attrs.field(eq=ARRAY_EQ)


@attrs.frozen
class Audio2FaceResult(ResultMixin):
    """An animation.

    Attributes
    ----------
    vertices:
        (T, V, 3) float32 vertex positions (template units, usually metres); ``None`` for a
        coefficient model without a basis.
    fps:
        Frames per second (vocaset 30, BIWI 25).
    subject:
        Name of the training subject whose speaking style was used.
    coefficients:
        (T, K) float32 motion coefficients for coefficient models, else ``None``.
    """

    vertices: np.ndarray | None
    fps: float
    subject: str
    coefficients: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        data = self.vertices if self.vertices is not None else self.coefficients
        return 0 if data is None else len(data)

    @property
    def duration(self) -> float:
        """Seconds of animation."""
        return self.num_frames / self.fps


@attrs.frozen
class MotionResult(ResultMixin):
    """An animated clip (returned by :meth:`MotionTransfer.predict`).

    Attributes
    ----------
    frames:
        (T, H, W, 3) float32 RGB in [0, 1]: one frame per driving frame, in driving order (the
        model size, or the full source size with ``paste_back``).
    fps:
        Frame rate of the driving input (30 for frame arrays and iterators).
    reference_frame:
        Index of the driving frame the motion is taken relative to.
    """

    frames: np.ndarray = attrs.field(eq=ARRAY_EQ, repr=lambda a: f"array{a.shape}")
    fps: float
    reference_frame: int

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@attrs.frozen
class MotionSummary(ResultMixin):
    """What :meth:`MotionTransfer.animate_to_file` wrote.

    Attributes
    ----------
    output:
        The file or directory written.
    frames, fps:
        Number of frames written and their rate (frames per second).
    reference_frame:
        Index of the driving frame the motion is taken relative to.
    audio:
        True when the driving video's audio was copied into ``output``.
    """

    output: Path
    frames: int
    fps: float
    reference_frame: int
    audio: bool

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["output"] = str(self.output)
        return out
