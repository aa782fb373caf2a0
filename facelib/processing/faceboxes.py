"""FaceBoxes pre- and post-processing in pure numpy: input tensor, priors, decoding, NMS.

Facts (cleardusk/3DDFA_V2 ``FaceBoxes/`` and zisianw/FaceBoxes.PyTorch, read for reference):

* Input: BGR float32, the per-channel mean (104, 117, 123) subtracted, no scaling, NCHW, any
  size (the network is fully convolutional; feature maps are ``ceil(size / stride)``).
* Priors: three levels with strides 32, 64, 128 and anchor sizes {32, 64, 128}, {256}, {512}
  pixels.  A level's cells are visited row by row (``i`` = row, ``j`` = column); in each cell,
  the anchor sizes in order; an anchor of size 32 is densified 4×4 (centre offsets
  ``j + {0, .25, .5, .75}`` in cell units, y outer and x inner), size 64 is densified 2×2
  (offsets ``{0, .5}``), other sizes sit at the cell centre (offset 0.5).  Priors are
  ``(cx, cy, w, h)`` normalised by the input width / height, not clipped.
* Decoding (SSD, variances 0.1 and 0.2): ``c = p_c + l_xy * 0.1 * p_wh``,
  ``wh = p_wh * exp(l_wh * 0.2)``, corners ``c ∓ wh / 2``; score = softmax(conf)[:, 1].
* Upstream keeps scores > 0.05, the best 5000, NMS at IoU 0.3 with the "+1 pixel" box
  convention, the best 750, then draws those > 0.5.  Filtering at the final threshold before
  NMS gives the same faces (a box below the threshold can only suppress boxes scoring lower).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from facelib.errors import InputError, ModelCardError
from facelib.processing.boxes import hard_nms

#: Upstream constants (also written to the model card by the converter).
MEAN_BGR = (104.0, 117.0, 123.0)
STRIDES = (32, 64, 128)
MIN_SIZES = ((32, 64, 128), (256,), (512,))
DENSIFY = {32: 4, 64: 2}
VARIANCES = (0.1, 0.2)


@attrs.frozen
class PriorConfig:
    """Anchor layout of a FaceBoxes-style detector (read from a model card).

    Attributes
    ----------
    strides:
        Stride in pixels of each detection level.
    min_sizes:
        Anchor sizes in pixels of each level, in the order the network's channels use.
    densify:
        Anchor size -> n: that anchor is repeated n×n times per cell at offsets k/n.
    variances:
        (centre, size) variances of the box encoding.
    """

    strides: tuple[int, ...] = STRIDES
    min_sizes: tuple[tuple[int, ...], ...] = MIN_SIZES
    densify: Mapping[int, int] = attrs.field(factory=lambda: dict(DENSIFY))
    variances: tuple[float, float] = VARIANCES

    @classmethod
    def from_card(cls, data: Mapping[str, object]) -> PriorConfig:
        """Build from a card's ``outputs["priors"]`` object (keys as the attributes)."""
        try:
            strides = tuple(int(s) for s in data["strides"])  # type: ignore[attr-defined]
            min_sizes = tuple(tuple(int(m) for m in level) for level in data["min_sizes"])  # type: ignore[attr-defined]
            densify = {int(k): int(v) for k, v in dict(data.get("densify", {})).items()}  # type: ignore[call-overload]
            variances = tuple(float(v) for v in data["variances"])  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelCardError(
                f"model card priors need strides, min_sizes, densify and variances; got {dict(data)!r}"
            ) from exc
        if len(strides) != len(min_sizes) or len(variances) != 2 or any(s <= 0 for s in strides):
            raise ModelCardError(f"inconsistent prior settings in the model card: {dict(data)!r}")
        return cls(strides, min_sizes, densify, (variances[0], variances[1]))

    def to_dict(self) -> dict[str, object]:
        return {
            "strides": list(self.strides),
            "min_sizes": [list(m) for m in self.min_sizes],
            "densify": {str(k): v for k, v in self.densify.items()},
            "variances": list(self.variances),
        }

    def anchors_per_cell(self, level: int) -> int:
        return sum(self.densify.get(m, 1) ** 2 for m in self.min_sizes[level])

    def count(self, height: int, width: int) -> int:
        """Number of priors for an input of ``height`` × ``width`` pixels."""
        return sum(
            math.ceil(height / s) * math.ceil(width / s) * self.anchors_per_cell(k) for k, s in enumerate(self.strides)
        )


def _cell_anchors(min_sizes: Sequence[int], densify: Mapping[int, int]) -> np.ndarray:
    """(A, 3) ``(offset_x, offset_y, size)`` of one cell's anchors, in channel order."""
    rows = []
    for size in min_sizes:
        n = densify.get(size, 1)
        offsets = [k / n for k in range(n)] if n > 1 else [0.5]
        rows += [(ox, oy, size) for oy in offsets for ox in offsets]
    return np.asarray(rows, dtype=np.float64)


def priors(height: int, width: int, config: PriorConfig | None = None) -> np.ndarray:
    """FaceBoxes priors for an input of ``height`` × ``width`` pixels.

    Returns
    -------
    (P, 4) float32 ``(cx, cy, w, h)`` normalised by the input width (x, w) and height (y, h),
    in the order of the network's flattened outputs.
    """
    if height < 1 or width < 1:
        raise InputError(f"input size must be positive, got {height}x{width}")
    config = config or PriorConfig()
    levels = []
    for k, stride in enumerate(config.strides):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        cell = _cell_anchors(config.min_sizes[k], config.densify)  # (A, 3)
        jj, ii = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))
        cx = (jj[:, :, None] + cell[None, None, :, 0]) * stride / width
        cy = (ii[:, :, None] + cell[None, None, :, 1]) * stride / height
        w = np.broadcast_to(cell[:, 2] / width, cx.shape)
        h = np.broadcast_to(cell[:, 2] / height, cx.shape)
        levels.append(np.stack([cx, cy, w, h], axis=-1).reshape(-1, 4))
    return np.concatenate(levels).astype(np.float32)


def decode(loc: np.ndarray, prior_boxes: np.ndarray, variances: Sequence[float] = VARIANCES) -> np.ndarray:
    """SSD box decoding: (P, 4) offsets + (P, 4) priors -> (P, 4) float32 ``x1, y1, x2, y2``.

    Output is in the priors' normalised unit (multiply by the input width/height for pixels).
    """
    loc = np.asarray(loc, dtype=np.float32)
    prior_boxes = np.asarray(prior_boxes, dtype=np.float32)
    if loc.shape != prior_boxes.shape:
        raise InputError(f"{loc.shape[0]} box offsets for {prior_boxes.shape[0]} priors")
    centre = prior_boxes[:, :2] + loc[:, :2] * np.float32(variances[0]) * prior_boxes[:, 2:]
    size = prior_boxes[:, 2:] * np.exp(loc[:, 2:] * np.float32(variances[1]))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def softmax_face_score(conf: np.ndarray) -> np.ndarray:
    """(P, 2) class logits -> (P,) float32 face probability (softmax column 1)."""
    conf = np.asarray(conf, dtype=np.float32)
    shifted = conf - conf.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return (e[:, 1] / e.sum(axis=1)).astype(np.float32)


def preprocess(image_rgb: np.ndarray, mean_bgr: Sequence[float] = MEAN_BGR) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> (1, 3, H, W) float32 BGR with ``mean_bgr`` subtracted."""
    height, width = image_rgb.shape[:2]
    out = np.empty((1, 3, height, width), dtype=np.float32)
    for c in range(3):  # channel c of the BGR tensor is RGB channel 2 - c
        np.subtract(image_rgb[:, :, 2 - c], np.float32(mean_bgr[c]), out=out[0, c], dtype=np.float32)
    return out


def postprocess(
    loc: np.ndarray,
    conf: np.ndarray,
    input_size: tuple[int, int],
    *,
    config: PriorConfig | None = None,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.3,
    top_k: int = 5000,
    keep_top_k: int = 750,
    scale: tuple[float, float] = (1.0, 1.0),
    pixel_offset: float = 1.0,
    prior_boxes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw network outputs of one image -> boxes and scores, best first.

    Parameters
    ----------
    loc, conf:
        (P, 4) box offsets and (P, 2) class logits of one image.
    input_size:
        (height, width) of the network input in pixels.
    score_threshold:
        Keep faces with probability strictly greater than this.
    iou_threshold:
        Greedy NMS drops boxes whose IoU with a kept box is greater than this.
    top_k, keep_top_k:
        Candidates kept before NMS and faces kept after it (-1: all).
    scale:
        (sx, sy) factor from the original image to the network input; boxes are divided by it.
    pixel_offset:
        Added to x2/y2 for the IoU of NMS only (1.0 = upstream's "+1 pixel" area convention).
    prior_boxes:
        Precomputed :func:`priors` of this input size and ``config`` (computed when None).

    Returns
    -------
    boxes (K, 4) float32 ``x1, y1, x2, y2`` in original-image pixels, scores (K,) float32.
    """
    height, width = input_size
    config = config or PriorConfig()
    loc = np.asarray(loc, dtype=np.float32).reshape(-1, 4)
    conf = np.asarray(conf, dtype=np.float32).reshape(loc.shape[0], -1)
    if prior_boxes is None:
        prior_boxes = priors(height, width, config)
    if prior_boxes.shape[0] != loc.shape[0]:
        raise InputError(
            f"the detector returned {loc.shape[0]} boxes but a {width}x{height} input has "
            f"{prior_boxes.shape[0]} priors; the model card's prior settings do not fit this model"
        )
    scores = softmax_face_score(conf)
    keep = np.flatnonzero(scores > score_threshold)
    if keep.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    if top_k > 0:
        order = order[:top_k]
    boxes = decode(loc[order], prior_boxes[order], config.variances)
    boxes = boxes * np.asarray([width, height, width, height], np.float32)
    boxes = boxes / np.asarray([scale[0], scale[1], scale[0], scale[1]], np.float32)
    picked = scores[order]
    nms_boxes = boxes.astype(np.float64)
    nms_boxes[:, 2:] += pixel_offset
    kept = hard_nms(nms_boxes, picked, iou_threshold, top_k=keep_top_k)
    return boxes[kept].astype(np.float32), picked[kept].astype(np.float32)
