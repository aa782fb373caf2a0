"""BlazeFace short-range face detection, pre- and post-processing in numpy.

The detector (MediaPipe's ``face_detector.tflite`` converted to ONNX) takes a letterboxed
(1, 128, 128, 3) float32 RGB tensor in [-1, 1] and returns, for 896 SSD anchors, 16 regression
values and one score logit.  This module builds the anchors, makes the input tensor, decodes
boxes and the 6 keypoints, merges overlapping detections with MediaPipe's weighted NMS and maps
everything back to image pixels.

Keypoint order: 0 eye on the image left, 1 eye on the image right, 2 nose tip, 3 mouth centre,
4 ear tragion on the image left, 5 ear tragion on the image right.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from facelib.processing.boxes import weighted_nms

#: Side of the square detector input, in pixels.
INPUT_SIZE = 128


def ssd_anchors(
    input_size: int = INPUT_SIZE,
    strides: Sequence[int] = (8, 16, 16, 16),
    anchors_per_cell_per_layer: int = 2,
    offset: float = 0.5,
) -> np.ndarray:
    """Anchor centres of MediaPipe's SSD anchor generator with ``fixed_anchor_size``.

    Consecutive layers with the same stride share one grid; each layer adds
    ``anchors_per_cell_per_layer`` anchors per cell (aspect ratio 1 plus the interpolated one).

    Returns
    -------
    (A, 2) float64 anchor centres ``(x, y)`` in normalised tensor coordinates (A = 896 for the
    short-range model); every anchor has width = height = 1.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer < len(strides) and strides[layer] == stride:
            same += 1
            layer += 1
        size = -(-input_size // stride)  # ceil
        ys, xs = np.meshgrid((np.arange(size) + offset) / size, (np.arange(size) + offset) / size, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, same * anchors_per_cell_per_layer, axis=0))
    return np.concatenate(centres, axis=0)


@attrs.frozen
class Letterbox:
    """Placement of an image of ``width`` x ``height`` pixels in the square detector input.

    The image is centred in a square of side ``side = max(width, height)`` (zero padding) and
    that square is scaled to ``size`` x ``size``.
    """

    width: int
    height: int
    size: int = INPUT_SIZE

    @property
    def side(self) -> float:
        return float(max(self.width, self.height))

    def inverse_matrix(self) -> np.ndarray:
        """(2, 3) float64 affine map from tensor pixels to image pixels (for ``WARP_INVERSE_MAP``).

        Tensor pixel (i, j) samples image point ``(W/2, H/2) + ((i/size - 0.5) L, (j/size - 0.5) L)``.
        """
        scale = self.side / self.size
        return np.array(
            [[scale, 0.0, self.width / 2 - self.side / 2], [0.0, scale, self.height / 2 - self.side / 2]],
            dtype=np.float64,
        )

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) normalised tensor coordinates to image pixels."""
        points = np.asarray(points, dtype=np.float64)
        out = np.empty_like(points)
        out[..., 0] = (points[..., 0] - 0.5) * self.side + self.width / 2
        out[..., 1] = (points[..., 1] - 0.5) * self.side + self.height / 2
        return out


def preprocess(image: np.ndarray, letterbox: Letterbox | None = None) -> np.ndarray:
    """Letterbox an RGB uint8 (H, W, 3) image into the (1, 128, 128, 3) float32 input in [-1, 1].

    Resampling is bilinear on the uint8 image (as MediaPipe's CPU path); padding is black (-1).
    """
    import cv2

    box = letterbox or Letterbox(image.shape[1], image.shape[0])
    warped = cv2.warpAffine(
        image,
        box.inverse_matrix(),
        (box.size, box.size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    tensor = warped.astype(np.float32)
    tensor *= 2.0 / 255.0
    tensor -= 1.0
    return tensor[None]


@attrs.frozen
class Detections:
    """Decoded detections in image pixels, best first.

    Attributes
    ----------
    boxes:
        (N, 4) float64 ``x1, y1, x2, y2`` pixels.
    scores:
        (N,) float64 in [0, 1].
    keypoints:
        (N, 6, 2) float64 ``x, y`` pixels (order in the module docstring).
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def decode(
    regressors: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    letterbox: Letterbox,
    min_score: float = 0.5,
    iou_threshold: float = 0.5,
    size: float = INPUT_SIZE,
) -> Detections:
    """Raw detector outputs -> merged detections in image pixels.

    Parameters
    ----------
    regressors:
        (1, A, 16) or (A, 16) float32: box centre offset, box size, 6 keypoint offsets, all in
        tensor pixels relative to the anchor centre (x before y).
    logits:
        (1, A, 1) or (A,) float32 score logits (clipped to [-100, 100], then sigmoid).
    anchors:
        (A, 2) anchor centres from :func:`ssd_anchors`.
    letterbox:
        Placement of the image in the tensor, used to map results back to image pixels.
    min_score:
        Keep anchors with score >= ``min_score``.
    iou_threshold:
        Weighted-NMS merge threshold (IoU strictly greater joins a cluster); NMS runs in tensor
        coordinates, before the letterbox is undone.
    """
    reg = np.asarray(regressors, dtype=np.float64).reshape(-1, 16)
    raw = np.clip(np.asarray(logits, dtype=np.float64).reshape(-1), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-raw))
    keep = np.nonzero(scores >= min_score)[0]
    if keep.size:
        reg, scores, anc = reg[keep], scores[keep], anchors[keep]
        cx = reg[:, 0] / size + anc[:, 0]
        cy = reg[:, 1] / size + anc[:, 1]
        w = reg[:, 2] / size
        h = reg[:, 3] / size
        valid = (w >= 0) & (h >= 0)  # also drops NaN
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)[valid]
        kps = (reg[:, 4:16].reshape(-1, 6, 2) / size + anc[:, None, :])[valid]
        scores = scores[valid]
    if not keep.size or not scores.size:
        return Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 6, 2)))
    boxes, scores, flat = weighted_nms(boxes, scores, iou_threshold, extra=kps.reshape(-1, 12))
    assert flat is not None
    corners = letterbox.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    keypoints = letterbox.to_image(flat.reshape(-1, 6, 2))
    return Detections(corners, scores, keypoints)
