"""Axis-aligned boxes: IoU, non-maximum suppression, clipping and margins (pure numpy).

Boxes are float arrays (N, 4) as (x1, y1, x2, y2), x to the right and y down, in whatever unit
the caller uses (pixels or normalised); x2 >= x1 and y2 >= y1 for valid boxes.
"""

from __future__ import annotations

import numpy as np


def area(boxes: np.ndarray) -> np.ndarray:
    """(N,) areas of (N, 4) boxes; inverted boxes have area 0."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def iou(a: np.ndarray, b: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """(N, M) intersection over union of (N, 4) and (M, 4) boxes.

    ``eps`` is added to the denominator (UltraFace's reference uses 1e-5); pairs with zero union
    get IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a)[:, None] + area(b)[None, :] - inter + eps
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out


def hard_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    top_k: int = -1,
    candidate_size: int = -1,
    eps: float = 0.0,
) -> np.ndarray:
    """Indices of the boxes greedy hard NMS keeps, best score first.

    Sort by score (descending; ties keep input order), keep only the best ``candidate_size``
    candidates (-1: all), then repeatedly keep the best box and drop those whose IoU with it is
    greater than ``iou_threshold``; stop after ``top_k`` kept boxes (-1: no limit).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if candidate_size > 0:
        order = order[:candidate_size]
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if 0 < top_k <= len(keep):
            break
        rest = order[1:]
        overlaps = iou(boxes[best][None], boxes[rest], eps=eps)[0]
        order = rest[overlaps <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, extra: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe-style weighted NMS: each cluster becomes its score-weighted mean.

    Repeatedly take the best remaining box; every remaining box (itself included) whose IoU with
    it is greater than ``iou_threshold`` joins its cluster.  The output box (and ``extra`` rows,
    e.g. flattened keypoints (N, K)) is the score-weighted mean of the cluster; the output score
    is the best box's score.

    Returns (boxes (K, 4), scores (K,), extra (K, ...) or None), best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_scores, out_extra = [], [], []
    while order.size:
        best = order[0]
        overlaps = iou(boxes[best][None], boxes[order])[0]
        members = order[overlaps > iou_threshold]
        if members.size == 0:  # degenerate box (zero area): it forms its own cluster
            members = order[:1]
        weights = scores[members] / max(scores[members].sum(), 1e-300)
        out_boxes.append(weights @ boxes[members])
        out_scores.append(scores[best])
        if extra is not None:
            flat = np.asarray(extra, dtype=np.float64)[members].reshape(members.size, -1)
            out_extra.append((weights @ flat).reshape(np.shape(extra)[1:]))
        order = order[~np.isin(order, members)]
    extra_out = np.asarray(out_extra) if extra is not None else None
    return np.asarray(out_boxes).reshape(-1, 4), np.asarray(out_scores), extra_out


def clip(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Boxes clipped to the image [0, width] x [0, height]."""
    boxes = np.array(boxes, dtype=np.float64)
    boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, width)
    boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, height)
    return boxes


def expand(boxes: np.ndarray, margin: float) -> np.ndarray:
    """Grow each box by ``margin`` × its width on the left and right and × its height on top and bottom."""
    boxes = np.array(boxes, dtype=np.float64)
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    boxes[..., 0] -= margin * w
    boxes[..., 2] += margin * w
    boxes[..., 1] -= margin * h
    boxes[..., 3] += margin * h
    return boxes


def square(boxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Square boxes with the same centres, side = ``scale`` × the longer side."""
    boxes = np.asarray(boxes, dtype=np.float64)
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    cy = (boxes[..., 1] + boxes[..., 3]) / 2
    half = scale * np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)
