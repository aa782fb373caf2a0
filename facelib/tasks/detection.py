"""What every face detector returns, and the protocol tasks use to accept any detector."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs
import numpy as np

from facelib.results import ResultMixin


def _box(value: object) -> np.ndarray:
    box = np.asarray(value, dtype=np.float32).reshape(4)
    return box


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

    box: np.ndarray = attrs.field(converter=_box, eq=attrs.cmp_using(eq=np.array_equal))
    score: float = attrs.field(converter=float)
    keypoints: np.ndarray | None = attrs.field(default=None, eq=attrs.cmp_using(eq=np.array_equal))

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


@runtime_checkable
class FaceDetectorLike(Protocol):
    """Anything with ``detect(image) -> list[FaceBox]`` (image: RGB uint8 (H, W, 3))."""

    def detect(self, image: np.ndarray) -> list[FaceBox]: ...
