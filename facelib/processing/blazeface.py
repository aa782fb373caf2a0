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

from facelib.processing import rect_warp

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

    def to_relative(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) normalised tensor coordinates to normalised image coordinates, in float32.

        The float32 arithmetic of MediaPipe's ``DetectionProjectionCalculator`` with the matrix of
        ``GetRotatedSubRectToRectTransformMatrix`` for the padded, unrotated ROI: on a large image
        the float64 result differs in the last bits, and those bits decide which 1/32-pixel sample
        positions the landmark crop uses.
        """
        f32 = np.float32
        w, h = f32(self.width), f32(self.height)
        cx, cy = f32(0.5) * w, f32(0.5) * h
        side_w, side_h = (w, w) if f32(self.size) / f32(self.size) > h / w else (h, h)
        m0 = side_w * f32(1.0) * f32(1.0) * (f32(1.0) / w)
        m3 = (f32(-0.5) * side_w * f32(1.0) * f32(1.0) + f32(0.5) * side_h * f32(0.0) + cx) * (f32(1.0) / w)
        m5 = side_h * f32(1.0) * (f32(1.0) / h)
        m7 = (f32(-0.5) * side_h * f32(1.0) - f32(0.5) * side_w * f32(0.0) * f32(1.0) + cy) * (f32(1.0) / h)
        pts = np.asarray(points, dtype=np.float32)
        out = np.empty_like(pts)
        out[..., 0] = pts[..., 0] * m0 + pts[..., 1] * f32(-0.0) + m3
        out[..., 1] = pts[..., 0] * f32(0.0) + pts[..., 1] * m5 + m7
        return out

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) normalised tensor coordinates to image pixels."""
        points = np.asarray(points, dtype=np.float64)
        out = np.empty_like(points)
        out[..., 0] = (points[..., 0] - 0.5) * self.side + self.width / 2
        out[..., 1] = (points[..., 1] - 0.5) * self.side + self.height / 2
        return out


def preprocess(image: np.ndarray, letterbox: Letterbox | None = None) -> np.ndarray:
    """Letterbox an RGB uint8 (H, W, 3) image into the (1, 128, 128, 3) float32 input in [-1, 1].

    Resampling is MediaPipe's (:func:`facelib.processing.rect_warp.warp_rect`: bilinear on the
    uint8 image, 1/32-pixel fixed point); padding is black (-1).
    """
    box = letterbox or Letterbox(image.shape[1], image.shape[0])
    warped = rect_warp.warp_rect(
        image, box.width / 2, box.height / 2, box.side, box.side, 0.0, box.size, box.size, border="zero"
    )
    tensor = warped.astype(np.float32)
    tensor *= 2.0 / 255.0
    tensor -= 1.0
    return tensor[None]


@attrs.frozen
class Detections:
    """Decoded detections, best first.

    Attributes
    ----------
    boxes:
        (N, 4) float64 ``x1, y1, x2, y2`` pixels.
    scores:
        (N,) float64 in [0, 1].
    keypoints:
        (N, 6, 2) float64 ``x, y`` pixels (order in the module docstring).
    relative_boxes:
        (N, 4) float32 ``xmin, ymin, width, height`` normalised by the image size, as MediaPipe
        holds them (the landmark ROI is built from these, see
        :func:`facelib.processing.face_mesh.roi_from_relative_detection`).
    relative_keypoints:
        (N, 6, 2) float32 normalised keypoints.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    relative_boxes: np.ndarray = attrs.field(factory=lambda: np.zeros((0, 4), np.float32))
    relative_keypoints: np.ndarray = attrs.field(factory=lambda: np.zeros((0, 6, 2), np.float32))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def _weighted_nms_f32(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS on ``xmin, ymin, width, height`` boxes, in its float32 order of sums.

    Clusters as :func:`facelib.processing.boxes.weighted_nms`; the weighted means are summed one
    detection at a time in float32 (best first), the box as weighted ``xmin``/``ymin`` and
    weighted ``xmin + width``/``ymin + height``, exactly as ``NonMaxSuppressionCalculator``.
    """
    from facelib.processing.boxes import iou

    f32 = np.float32
    corners = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]], axis=1).astype(
        np.float64
    )
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_scores, out_kps = [], [], []
    while order.size:
        best = order[0]
        members = order[iou(corners[best][None], corners[order])[0] > iou_threshold]
        if members.size == 0:  # degenerate box (zero area): its own cluster
            members = order[:1]
        total = f32(0.0)
        acc = np.zeros(4, np.float32)
        kps = np.zeros(keypoints.shape[1:], np.float32)
        for i in members:
            score = scores[i]
            total = f32(total + score)
            xmin, ymin, width, height = boxes[i]
            acc += np.array([xmin * score, ymin * score, (xmin + width) * score, (ymin + height) * score], np.float32)
            kps += keypoints[i] * score
        xmin, ymin = acc[0] / total, acc[1] / total
        out_boxes.append(np.array([xmin, ymin, acc[2] / total - xmin, acc[3] / total - ymin], np.float32))
        out_kps.append(kps / total)
        out_scores.append(scores[best])
        order = order[~np.isin(order, members)]
    return np.asarray(out_boxes, np.float32), np.asarray(out_scores, np.float32), np.asarray(out_kps, np.float32)


def decode(
    regressors: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    letterbox: Letterbox,
    min_score: float = 0.5,
    iou_threshold: float = 0.5,
    size: float = INPUT_SIZE,
) -> Detections:
    """Raw detector outputs -> merged detections (pixels and normalised image coordinates).

    Arithmetic is float32 in MediaPipe's order (``TensorsToDetectionsCalculator``,
    ``NonMaxSuppressionCalculator``, ``DetectionProjectionCalculator``), so the normalised
    results equal Google's package bit for bit on the same model outputs.

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
        Placement of the image in the tensor, used to map results back to the image.
    min_score:
        Keep anchors with score >= ``min_score``.
    iou_threshold:
        Weighted-NMS merge threshold (IoU strictly greater joins a cluster); NMS runs in tensor
        coordinates, before the letterbox is undone.
    """
    f32 = np.float32
    reg = np.asarray(regressors, dtype=np.float32).reshape(-1, 16)
    raw = np.clip(np.asarray(logits, dtype=np.float32).reshape(-1), f32(-100.0), f32(100.0))
    # expf correctly rounded (float64 exp, rounded once): numpy's float32 exp is off by an ulp on
    # many inputs, and the score weights the merged keypoints of the weighted NMS
    with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: score 0, as expf
        scores = f32(1.0) / (f32(1.0) + np.exp(-raw.astype(np.float64)).astype(np.float32))
    keep = np.nonzero(scores >= f32(min_score))[0]
    empty = Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 6, 2)))
    if not keep.size:
        return empty
    reg, scores, anc = reg[keep], scores[keep], np.asarray(anchors, dtype=np.float32)[keep]
    scale = f32(size)
    cx = reg[:, 0] / scale * f32(1.0) + anc[:, 0]
    cy = reg[:, 1] / scale * f32(1.0) + anc[:, 1]
    w = reg[:, 2] / scale * f32(1.0)
    h = reg[:, 3] / scale * f32(1.0)
    xmin, ymin = cx - w / f32(2.0), cy - h / f32(2.0)
    boxes = np.stack([xmin, ymin, (cx + w / f32(2.0)) - xmin, (cy + h / f32(2.0)) - ymin], axis=1)
    kps = reg[:, 4:16].reshape(-1, 6, 2) / scale * f32(1.0) + anc[:, None, :]
    valid = (boxes[:, 2] >= 0) & (boxes[:, 3] >= 0)  # also drops NaN
    if not valid.any():
        return empty
    boxes, scores, kps = _weighted_nms_f32(boxes[valid], scores[valid], kps[valid], iou_threshold)
    # project the four corners and keep their bounding box, as DetectionProjectionCalculator
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    corners = letterbox.to_relative(
        np.stack([np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1), np.stack([x0, y1], -1)], 1)
    )
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    rel_boxes = np.concatenate([lo, hi - lo], axis=1).astype(np.float32)
    rel_kps = letterbox.to_relative(kps)
    image_size = np.array([letterbox.width, letterbox.height], dtype=np.float64)
    pixel_boxes = np.concatenate([lo, hi], axis=1).astype(np.float64) * np.tile(image_size, 2)
    return Detections(
        pixel_boxes, scores.astype(np.float64), rel_kps.astype(np.float64) * image_size, rel_boxes, rel_kps
    )
