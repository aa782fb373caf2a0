"""FaceBoxes face detector: RGB image in, :class:`~facelib.tasks.detection.FaceBox` list out.

Every constant (mean, colour order, priors, variances, thresholds, downscale cap) comes from
the package's model card (``task: face_detection``, ``variant: faceboxes``); make the package
with ``facelib convert faceboxes``.

Example::

    from facelib import FaceBoxesDetector, read_image
    with FaceBoxesDetector("models/faceboxes") as detector:
        faces = detector.detect(read_image("group.jpg"))   # best first
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from facelib.errors import InputError, ModelCardError
from facelib.io.image import to_rgb_uint8
from facelib.processing.faceboxes import PriorConfig, postprocess, preprocess, priors
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import FaceBox

#: Smallest input side the network accepts (its last level has stride 128; 32 keeps 1 cell).
MIN_SIDE = 32


class FaceBoxesDetector(Task):
    """FaceBoxes (Zhang et al. 2017) on any backend.

    Parameters
    ----------
    model:
        A ``face_detection`` package with variant ``faceboxes`` (directory, hub name ``"faceboxes"``
        or ModelPackage).
    backend, backend_options:
        Backend name (``"auto"``) or instance, and its options.
    score_threshold, iou_threshold:
        Face probability threshold (strictly greater) and NMS IoU threshold; None = the card's
        values (upstream: 0.5 and 0.3).
    scale:
        Resize factor applied to the image before the network (after the card's ``max_size``
        downscale cap); > 1 finds smaller faces (upstream evaluated FDDB at 3×), < 1 is faster.
    max_size:
        (height, width) cap: larger images are downscaled to fit, as upstream's 3DDFA_V2
        wrapper does (720, 1080).  ``"card"`` = the card's value; None = never downscale.
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
        scale: float = 1.0,
        max_size: tuple[int, int] | str | None = "card",
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        card = self.card
        if card.variant != "faceboxes":
            raise ModelCardError(f"{self.package.root} is a {card.variant!r} detector, not a FaceBoxes package")
        pre, out = card.preprocessing, card.outputs
        try:
            self.priors = PriorConfig.from_card(out["priors"])
            self.mean = tuple(float(m) for m in pre.get("mean", (104.0, 117.0, 123.0)))
            colour = str(pre.get("colour_order", "BGR")).upper()
            self.score_threshold = float(
                out.get("score_threshold", 0.5) if score_threshold is None else score_threshold
            )
            self.iou_threshold = float(out.get("iou_threshold", 0.3) if iou_threshold is None else iou_threshold)
            self.top_k = int(out.get("top_k", 5000))
            self.keep_top_k = int(out.get("keep_top_k", 750))
            self.pixel_offset = float(out.get("nms_pixel_offset", 1.0))
            card_cap = pre.get("max_size")
        except KeyError as exc:
            raise ModelCardError(f"FaceBoxes model card lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"FaceBoxes model card has a malformed value: {exc}") from exc
        if colour not in ("BGR", "RGB") or len(self.mean) != 3:
            raise ModelCardError(f"FaceBoxes card: colour_order {colour!r} / mean {self.mean} not usable")
        self.bgr = colour == "BGR"
        if not 0.0 <= self.score_threshold < 1.0 or not 0.0 < self.iou_threshold <= 1.0:
            raise InputError(
                f"score_threshold must be in [0, 1) and iou_threshold in (0, 1], "
                f"got {self.score_threshold} and {self.iou_threshold}"
            )
        if not scale > 0:
            raise InputError(f"scale must be positive, got {scale}")
        self.scale = float(scale)
        self._priors: dict[tuple[int, int], np.ndarray] = {}  # by network input (height, width)
        cap = card_cap if isinstance(max_size, str) and max_size == "card" else max_size
        self.max_size: tuple[int, int] | None = (int(cap[0]), int(cap[1])) if cap else None

    @classmethod
    def default_model(cls) -> str:
        return "faceboxes"

    def _repr_options(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold, "scale": self.scale}

    def input_scale(self, height: int, width: int) -> float:
        """Factor from the image to the network input (upstream's rule, then ``scale``)."""
        factor = 1.0
        if self.max_size is not None:
            max_h, max_w = self.max_size
            if height > max_h:
                factor = max_h / height
            if width * factor > max_w:
                factor *= max_w / (width * factor)
        return factor * self.scale

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in an RGB uint8 (H, W, 3) image, best score first.

        Boxes are ``x1, y1, x2, y2`` in image pixels, not clipped to the image (as upstream), so
        a face at the border can have a box reaching outside it.
        """
        import cv2

        image = to_rgb_uint8(image)
        height, width = image.shape[:2]
        factor = self.input_scale(height, width)
        if factor != 1.0:
            size = (max(int(width * factor), 1), max(int(height * factor), 1))
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        in_h, in_w = image.shape[:2]
        if min(in_h, in_w) < MIN_SIDE:
            raise InputError(
                f"image of {width}x{height} pixels is too small for FaceBoxes (network input "
                f"{in_w}x{in_h}; needs at least {MIN_SIDE} pixels per side); upscale it or pass scale>1"
            )
        tensor = preprocess(image if self.bgr else image[:, :, ::-1], self.mean)
        outputs = self._session("detector").run({"input": tensor})
        prior_boxes = self._priors.get((in_h, in_w))
        if prior_boxes is None:
            if len(self._priors) > 16:  # video sizes rarely change; keep the cache small
                self._priors.clear()
            prior_boxes = self._priors[(in_h, in_w)] = priors(in_h, in_w, self.priors)
        boxes, scores = postprocess(
            outputs["loc"][0],
            outputs["conf"][0],
            (in_h, in_w),
            config=self.priors,
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            top_k=self.top_k,
            keep_top_k=self.keep_top_k,
            scale=(factor, factor),
            pixel_offset=self.pixel_offset,
            prior_boxes=prior_boxes,
        )
        return [FaceBox(box, float(score)) for box, score in zip(boxes, scores)]

    __call__ = detect
