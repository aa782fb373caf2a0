"""UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB) pre- and post-processing in numpy.

Facts from Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB @0f9ca4a9 (``vision/ssd/config/
fd_config.py``, ``vision/utils/box_utils_numpy.py``, ``detect_imgs_onnx.py``):

* Input: RGB, stretched (no letterbox, bilinear) to 320 x 240 (RFB-320) or 640 x 480 (RFB-640),
  ``(pixel - 127) / 128``, CHW, batch 1, float32.
* The released ONNX files already apply the softmax and decode the boxes with the priors:
  ``scores`` (1, N, 2) with column 1 the face probability, ``boxes`` (1, N, 4) normalised
  ``x1, y1, x2, y2`` (may fall slightly outside [0, 1]).  :func:`priors` and :func:`decode`
  rebuild that step for raw-output exports (ncnn/MNN style).
* Post-processing: keep face probability > 0.7 (strict), hard NMS (IoU > 0.3 suppressed,
  IoU denominator + 1e-5, best 200 candidates), scale to pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelib.errors import InputError
from facelib.processing.boxes import hard_nms

#: Defaults of the reference ONNX demo.
MEAN = 127.0
STD = 128.0
SCORE_THRESHOLD = 0.7
IOU_THRESHOLD = 0.3
CANDIDATE_SIZE = 200
NMS_EPS = 1e-5
CENTER_VARIANCE = 0.1
SIZE_VARIANCE = 0.2
STRIDES = (8, 16, 32, 64)
MIN_BOXES: tuple[tuple[float, ...], ...] = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))


def preprocess(image: np.ndarray, size: Sequence[int] = (320, 240), mean: float = MEAN, std: float = STD) -> np.ndarray:
    """Detector input for one image.

    Parameters
    ----------
    image:
        RGB uint8 (H, W, 3).
    size:
        Network input ``(width, height)``.
    mean, std:
        ``(pixel - mean) / std`` is applied to every channel.

    Returns
    -------
    numpy.ndarray
        (1, 3, height, width) float32, RGB.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    resized = cv2.resize(image, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)
    x = (resized.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def priors(
    size: Sequence[int] = (320, 240),
    strides: Sequence[int] = STRIDES,
    min_boxes: Sequence[Sequence[float]] = MIN_BOXES,
) -> np.ndarray:
    """SSD priors of UltraFace as ``fd_config.py`` generates them.

    For each feature map ``k`` (``ceil(size / stride)`` cells), each row ``j``, each column
    ``i`` and each min box ``m``: ``(cx, cy, w, h) = ((i + 0.5) / fw, (j + 0.5) / fh,
    m / width, m / height)``, all clamped to [0, 1].

    Returns
    -------
    numpy.ndarray
        (P, 4) float32 ``cx, cy, w, h`` normalised to the input (P = 4420 for 320 x 240).
    """
    width, height = int(size[0]), int(size[1])
    out = []
    for stride, boxes in zip(strides, min_boxes):
        fw = int(np.ceil(width / stride))
        fh = int(np.ceil(height / stride))
        jj, ii = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (ii + 0.5) / fw
        cy = (jj + 0.5) / fh
        m = np.asarray(boxes, dtype=np.float64)
        grid = np.empty((fh, fw, len(m), 4), dtype=np.float64)
        grid[..., 0] = cx[..., None]
        grid[..., 1] = cy[..., None]
        grid[..., 2] = m / width
        grid[..., 3] = m / height
        out.append(grid.reshape(-1, 4))
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)


def decode(
    locations: np.ndarray,
    prior_boxes: np.ndarray,
    center_variance: float = CENTER_VARIANCE,
    size_variance: float = SIZE_VARIANCE,
) -> np.ndarray:
    """Raw regressions (P, 4) -> corner boxes (P, 4) ``x1, y1, x2, y2`` normalised."""
    loc = np.asarray(locations, dtype=np.float32).reshape(-1, 4)
    p = np.asarray(prior_boxes, dtype=np.float32).reshape(-1, 4)
    centre = loc[:, :2] * np.float32(center_variance) * p[:, 2:] + p[:, :2]
    wh = np.exp(loc[:, 2:] * np.float32(size_variance)) * p[:, 2:]
    return np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float32)."""
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def postprocess(
    scores: np.ndarray,
    boxes: np.ndarray,
    image_size: Sequence[int],
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = IOU_THRESHOLD,
    candidate_size: int = CANDIDATE_SIZE,
    top_k: int = -1,
    clip: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Faces from the detector's outputs.

    Parameters
    ----------
    scores:
        (1, P, 2) or (P, 2) class probabilities (column 1 = face), or (P,) face probabilities.
    boxes:
        (1, P, 4) or (P, 4) normalised ``x1, y1, x2, y2``.
    image_size:
        ``(width, height)`` of the original image in pixels.
    score_threshold, iou_threshold, candidate_size, top_k:
        Keep probability > ``score_threshold``; hard NMS as upstream.
    clip:
        Clip boxes to the image.

    Returns
    -------
    tuple of numpy.ndarray
        boxes (K, 4) float32 ``x1, y1, x2, y2`` in pixels, scores (K,) float32, best first.
    """
    s = np.asarray(scores, dtype=np.float32)
    s = s.reshape(-1, s.shape[-1])[:, 1] if s.ndim > 1 and s.shape[-1] == 2 else s.reshape(-1)
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(s) != len(b):
        raise InputError(f"detector gave {len(s)} scores but {len(b)} boxes")
    mask = s > score_threshold
    s, b = s[mask], b[mask]
    if s.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    keep = hard_nms(b, s, iou_threshold, top_k=top_k, candidate_size=candidate_size, eps=NMS_EPS)
    width, height = float(image_size[0]), float(image_size[1])
    out = b[keep].astype(np.float64) * np.array([width, height, width, height])
    if clip:
        out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
        out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out.astype(np.float32), s[keep].astype(np.float32)
