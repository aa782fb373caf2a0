"""Face detection with UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT).

The built-in detector other tasks use when the user gives no boxes::

    from facelib.tasks.face_detection import FaceDetector
    with FaceDetector("models/ultraface-rfb-320") as detector:
        faces = detector.detect(image_rgb)      # list[FaceBox], best score first

Every constant (input size, mean/std, thresholds, prior layout) comes from the model card.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from facelib.errors import ModelCardError
from facelib.io.image import ImageSource, read_image
from facelib.processing import ultraface
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import FaceBox


class FaceDetector(Task):
    """UltraFace face detector.

    Parameters
    ----------
    model:
        A ``face_detection`` model package (directory with ``facelib.json``, hub name such as
        ``"ultraface-rfb-320"``, or :class:`~facelib.models.package.ModelPackage`), e.g. made by
        ``facelib convert ultraface``.
    backend, backend_options:
        Where to run (see ``facelib backends``).
    score_threshold:
        Keep faces whose probability is greater than this (upstream ONNX demo: 0.7).
    iou_threshold:
        Hard-NMS overlap above which the lower-scored box is dropped (0.3).
    """

    task_name = "face_detection"

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        score_threshold: float | None = None,
        iou_threshold: float | None = None,
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        card = self.card
        pre = card.preprocessing
        post = dict(card.outputs.get("postprocessing") or {})
        try:
            self.input_size = (int(pre["size"][0]), int(pre["size"][1]))
            self.mean = float(pre.get("mean", ultraface.MEAN))
            self.std = float(pre.get("std", ultraface.STD))
        except (KeyError, TypeError, IndexError) as exc:
            raise ModelCardError(f"{self.package.root}: preprocessing needs 'size' [width, height]") from exc
        self.score_threshold = float(
            score_threshold if score_threshold is not None else post.get("score_threshold", ultraface.SCORE_THRESHOLD)
        )
        self.iou_threshold = float(
            iou_threshold if iou_threshold is not None else post.get("iou_threshold", ultraface.IOU_THRESHOLD)
        )
        self.candidate_size = int(post.get("candidate_size", ultraface.CANDIDATE_SIZE))
        self.decoded = bool(card.outputs.get("decoded", True))
        self.scores_name = str(card.outputs.get("scores", "scores"))
        self.boxes_name = str(card.outputs.get("boxes", "boxes"))
        self.input_name = card.file("detector").inputs[0].name if card.file("detector").inputs else "input"
        self._priors: np.ndarray | None = None
        if not self.decoded:
            prior_cfg = dict(card.outputs.get("priors") or {})
            self._priors = ultraface.priors(
                self.input_size,
                prior_cfg.get("strides", ultraface.STRIDES),
                prior_cfg.get("min_boxes", ultraface.MIN_BOXES),
            )
            self._variances = (
                float(prior_cfg.get("center_variance", ultraface.CENTER_VARIANCE)),
                float(prior_cfg.get("size_variance", ultraface.SIZE_VARIANCE)),
            )

    def _repr_options(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold}

    def detect(self, image: ImageSource) -> list[FaceBox]:
        """Faces in one image, best score first.

        Parameters
        ----------
        image:
            RGB uint8 (H, W, 3) array (grayscale, RGBA, 16-bit and float arrays are converted),
            or an image file path.

        Returns
        -------
        list of FaceBox
            Boxes ``x1, y1, x2, y2`` in pixels of ``image``, clipped to it; empty when no face.
        """
        rgb = read_image(image)
        height, width = rgb.shape[:2]
        x = ultraface.preprocess(rgb, self.input_size, self.mean, self.std)
        out = self._session("detector").run({self.input_name: x})
        scores, boxes = out[self.scores_name], out[self.boxes_name]
        if not self.decoded:
            assert self._priors is not None
            scores = ultraface.softmax(scores)
            boxes = ultraface.decode(boxes, self._priors, *self._variances)
        kept, kept_scores = ultraface.postprocess(
            scores,
            boxes,
            (width, height),
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            candidate_size=self.candidate_size,
        )
        return [FaceBox(b, s) for b, s in zip(kept, kept_scores)]

    def __call__(self, image: ImageSource) -> list[FaceBox]:
        return self.detect(image)
