"""BlazeFace (MediaPipe's short-range face detector) as a face detector of its own.

The detector inside every ``mediapipe`` blendshape package: :class:`FaceLandmarker` runs it to
find faces, and :class:`BlazeFaceDetector` offers it to any task that takes a detector (HeadPose,
MotionTransfer's crop, regressor packages) through :func:`~facelib.tasks.detection.open_detector`::

    with BlazeFaceDetector("mediapipe-face-landmarker") as detector:
        faces = detector.detect(image_rgb)   # list[FaceBox] with 6 keypoints each, best first
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import Session
from facelib.errors import InputError, ModelCardError
from facelib.io.image import ImageSource, read_image
from facelib.models.card import ModelCard
from facelib.processing import blazeface
from facelib.results import FaceBox
from facelib.tasks.base import BackendSource, ModelSource, Task


@attrs.frozen
class BlazeFaceConfig:
    """What running BlazeFace needs from a ``mediapipe`` card: tensor names, anchors, decoding."""

    names: Mapping[str, str]
    size: int
    anchors: np.ndarray = attrs.field(eq=False, repr=False)
    scale: float
    nms_iou: float

    @classmethod
    def from_card(cls, card: ModelCard, where: object) -> BlazeFaceConfig:
        meta = card.metadata
        try:
            anchors, det = meta["anchors"], meta["detector"]
            size = int(anchors["input_size"])
            return cls(
                names=dict(meta["tensors"]["detector"]),
                size=size,
                anchors=blazeface.ssd_anchors(
                    size, anchors["strides"], anchors["anchors_per_cell_per_layer"], anchors["offset"]
                ),
                scale=float(det["scale"]),
                nms_iou=float(det["nms_iou"]),
            )
        except KeyError as exc:
            raise ModelCardError(f"model card of {where} lacks metadata {exc}") from None

    def detect(self, session: Session, image: np.ndarray, min_score: float) -> blazeface.Detections:
        """Detections in pixels of an RGB uint8 image, best first."""
        height, width = image.shape[:2]
        box = blazeface.Letterbox(width, height, self.size)
        names = self.names
        out = session.run({names["input"]: blazeface.preprocess(image, box)}, [names["regressors"], names["scores"]])
        return blazeface.decode(
            out[names["regressors"]],
            out[names["scores"]],
            self.anchors,
            box,
            min_score=min_score,
            iou_threshold=self.nms_iou,
            size=self.scale,
        )


class BlazeFaceDetector(Task):
    """BlazeFace short-range detector of a ``mediapipe`` package.

    Parameters
    ----------
    model:
        A ``mediapipe`` blendshape package: directory, hub name (``"mediapipe-face-landmarker"``)
        or :class:`~facelib.models.package.ModelPackage`.
    backend, backend_options:
        As for every task.
    score_threshold:
        Keep faces whose score is at least this (default: the card's
        ``min_face_detection_confidence``, 0.5).
    """

    task_name = "blendshapes"

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        if self.card.variant != "mediapipe":
            raise ModelCardError(f"{self.package.root} is a {self.card.variant!r} package; BlazeFace needs 'mediapipe'")
        self.config = BlazeFaceConfig.from_card(self.card, self.package.root)
        defaults = dict(self.card.metadata.get("defaults", {}))
        threshold = score_threshold if score_threshold is not None else defaults.get("min_face_detection_confidence")
        self.score_threshold = float(threshold if threshold is not None else 0.5)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise InputError(f"score_threshold must be in [0, 1], got {self.score_threshold}")

    def _repr_options(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold}

    def detect(self, image: ImageSource) -> list[FaceBox]:
        """Faces in an RGB image (array or path), best first, each with its 6 keypoints (pixels)."""
        found = self.config.detect(self._session("detector"), read_image(image), self.score_threshold)
        return [FaceBox(found.boxes[i], found.scores[i], found.keypoints[i]) for i in range(len(found))]

    __call__ = detect
