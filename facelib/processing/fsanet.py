"""FSA-Net preprocessing: face crops exactly as the upstream demos make them (numpy + OpenCV resize).

Upstream (shamangary/FSA-Net @4361d0e, ``demo/demo_FSANET_ssd.py``) crops every detected face
like this, and the released 300W-LP weights expect it:

1. The detector box ``(x1, y1, x2, y2)`` has width ``w = x2 - x1`` and height ``h = y2 - y1``.
2. It is enlarged by ``margin * w`` left and right and ``margin * h`` top and bottom
   (``margin`` = 0.6), truncated to integer pixels and clamped to ``[0, W - 1] x [0, H - 1]``.
3. The crop includes its far edge (rows ``y1 .. y2``, columns ``x1 .. x2`` inclusive) and is
   resized (bilinear, aspect ratio not kept) to 64 x 64.
4. Colour order is BGR, values 0..255 as float, channels last; no normalisation layer exists
   in the network.
5. The demos then stretch each crop with ``cv2.normalize(..., NORM_MINMAX)`` to [0, 255]:
   one minimum and one maximum over all three channels of the 64 x 64 crop.

The functions here take RGB uint8 images (facelib's convention) and do the BGR swap themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelib.errors import InputError

#: Upstream's enlargement of the detector box on each side, as a fraction of its width/height.
DEFAULT_MARGIN = 0.6
#: Network input size (width, height).
DEFAULT_SIZE = (64, 64)


def enlarge_boxes(boxes: np.ndarray, image_shape: Sequence[int], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Integer crop windows for face boxes, enlarged and clamped as upstream does.

    Parameters
    ----------
    boxes:
        (N, 4) or (4,) float ``x1, y1, x2, y2`` in pixels (x right, y down).
    image_shape:
        ``(H, W, ...)`` of the image the boxes belong to.
    margin:
        Fraction of the box width (height) added on the left and right (top and bottom).

    Returns
    -------
    numpy.ndarray
        (N, 4) int64 ``x1, y1, x2, y2`` with **inclusive** far edges: the crop is
        ``image[y1 : y2 + 1, x1 : x2 + 1]``.  Coordinates lie in ``[0, W - 1] x [0, H - 1]``.

    Raises
    ------
    InputError
        A box is not finite, is inverted, or lies entirely outside the image.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim == 1:
        boxes = boxes.reshape(1, -1)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"face boxes must have shape (N, 4) as x1, y1, x2, y2; got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise InputError("face boxes contain NaN or infinite values")
    height, width = int(image_shape[0]), int(image_shape[1])
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    bad = np.flatnonzero((w < 0) | (h < 0))
    if bad.size:
        raise InputError(f"face box {boxes[bad[0]].tolist()} is inverted; boxes are x1, y1, x2, y2 with x2 >= x1")
    # Upstream applies Python int() (truncation toward zero) then max/min; for the clamped
    # results truncation and floor agree (negative values end at 0 either way).
    x1 = np.maximum(np.trunc(boxes[:, 0] - margin * w), 0)
    y1 = np.maximum(np.trunc(boxes[:, 1] - margin * h), 0)
    x2 = np.minimum(np.trunc(boxes[:, 2] + margin * w), width - 1)
    y2 = np.minimum(np.trunc(boxes[:, 3] + margin * h), height - 1)
    out = np.stack([x1, y1, x2, y2], axis=1).astype(np.int64)
    empty = np.flatnonzero((out[:, 2] < out[:, 0]) | (out[:, 3] < out[:, 1]))
    if empty.size:
        raise InputError(
            f"face box {boxes[empty[0]].tolist()} lies outside the {width}x{height} image; nothing to crop"
        )
    return out


def min_max_stretch(crops: np.ndarray) -> np.ndarray:
    """Stretch each crop to [0, 255] with one min and max over all its pixels and channels.

    Equals ``cv2.normalize(crop, None, 0, 255, cv2.NORM_MINMAX)`` on a float64 crop, as the
    upstream demos run it; a constant crop becomes all zeros (OpenCV's behaviour).

    Parameters
    ----------
    crops:
        (N, H, W, C) array, any real dtype.

    Returns
    -------
    numpy.ndarray
        (N, H, W, C) float64 in [0, 255].
    """
    x = np.asarray(crops, dtype=np.float64)
    axes = tuple(range(1, x.ndim))
    lo = x.min(axis=axes, keepdims=True)
    hi = x.max(axis=axes, keepdims=True)
    span = hi - lo
    scale = np.where(span > np.finfo(np.float64).eps, 255.0 / np.where(span > 0, span, 1.0), 0.0)
    return (x - lo) * scale


def crop_faces(
    image: np.ndarray,
    boxes: np.ndarray,
    *,
    margin: float = DEFAULT_MARGIN,
    size: Sequence[int] = DEFAULT_SIZE,
    colour_order: str = "BGR",
    min_max: bool = True,
) -> np.ndarray:
    """FSA-Net input batch for the faces ``boxes`` of one image.

    Parameters
    ----------
    image:
        RGB uint8 (H, W, 3).
    boxes:
        (N, 4) float face boxes ``x1, y1, x2, y2`` in pixels (detector output).
    margin, size:
        Enlargement per side (fraction of box size) and network input ``(width, height)``.
    colour_order:
        ``"BGR"`` (the released weights) or ``"RGB"``.
    min_max:
        Apply the demos' per-crop min-max stretch (:func:`min_max_stretch`).

    Returns
    -------
    numpy.ndarray
        (N, height, width, 3) float32, values in [0, 255], channels last in ``colour_order``.
    """
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    if colour_order not in ("BGR", "RGB"):
        raise InputError(f"colour_order must be 'BGR' or 'RGB', got {colour_order!r}")
    out_w, out_h = int(size[0]), int(size[1])
    windows = enlarge_boxes(boxes, image.shape, margin)
    crops = np.empty((len(windows), out_h, out_w, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(windows):
        crops[i] = cv2.resize(image[y1 : y2 + 1, x1 : x2 + 1], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    if colour_order == "BGR":
        crops = crops[..., ::-1]
    batch = min_max_stretch(crops) if min_max else crops
    return np.ascontiguousarray(batch, dtype=np.float32)
