"""Square face crops for image animation, and pasting results back (numpy + OpenCV resize).

Boxes are float ``x1, y1, x2, y2`` in pixels (x right, y down).  A crop box may extend past the
image border; the outside is filled by replicating the border pixels so the face stays centred.
"""

from __future__ import annotations

import attrs
import numpy as np

from facelib.errors import InputError


@attrs.frozen
class CropBox:
    """A square crop: integer pixel box ``x1, y1, x2, y2`` (x2 - x1 == y2 - y1) in the full image."""

    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def side(self) -> int:
        return self.x2 - self.x1

    def as_array(self) -> np.ndarray:
        return np.array([self.x1, self.y1, self.x2, self.y2], dtype=np.int64)


def square_box(box: np.ndarray, margin: float = 0.6, shift_up: float = 0.1) -> CropBox:
    """Square crop box around a face box.

    The side is ``max(w, h) * (1 + margin)``; the centre is the face box centre moved up by
    ``shift_up * h`` (detector boxes sit low on the forehead for 256x256 talking-head crops).
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    w, h = x2 - x1, y2 - y1
    if not (w > 0 and h > 0) or not np.isfinite([x1, y1, x2, y2]).all():
        raise InputError(f"face box must have positive width and height, got {[x1, y1, x2, y2]}")
    if margin < 0:
        raise InputError(f"crop margin must be >= 0, got {margin}")
    side = max(round(max(w, h) * (1.0 + margin)), 2)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 - shift_up * h
    left, top = round(cx - side / 2.0), round(cy - side / 2.0)
    return CropBox(left, top, left + side, top + side)


def crop(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """The ``box`` region of an (H, W, C) image resized to (size, size, C); borders replicated."""
    import cv2

    h, w = image.shape[:2]
    pad_l, pad_t = max(0, -box.x1), max(0, -box.y1)
    pad_r, pad_b = max(0, box.x2 - w), max(0, box.y2 - h)
    region = image[max(box.y1, 0) : min(box.y2, h), max(box.x1, 0) : min(box.x2, w)]
    if region.size == 0:
        raise InputError(f"crop box {box} lies outside the {w}x{h} image")
    if pad_l or pad_t or pad_r or pad_b:
        region = cv2.copyMakeBorder(region, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if box.side > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


def paste_back(full: np.ndarray, patch: np.ndarray, box: CropBox, feather: float = 0.05) -> np.ndarray:
    """Put an animated crop back into the full frame.

    Parameters
    ----------
    full:
        (H, W, 3) frame (uint8 or float in [0, 1]); not modified.
    patch:
        (s, s, 3) result for ``box``, same value range as ``full``.
    feather:
        Width of the blended border as a fraction of the box side (0: hard edge).

    Returns
    -------
    A copy of ``full`` (its dtype) with the patch resized to the box and alpha-blended in.
    """
    import cv2

    h, w = full.shape[:2]
    side = box.side
    resized = cv2.resize(np.asarray(patch, dtype=np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    ramp = max(round(feather * side), 0)
    alpha = np.ones((side, side), dtype=np.float32)
    if ramp > 0:
        edge = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
        line = np.clip((edge + 1) / (ramp + 1), 0, 1)
        alpha = np.minimum(line[:, None], line[None, :])
    x1, y1, x2, y2 = max(box.x1, 0), max(box.y1, 0), min(box.x2, w), min(box.y2, h)
    if x1 >= x2 or y1 >= y2:
        return full.copy()
    sx, sy = x1 - box.x1, y1 - box.y1
    out = full.astype(np.float32)
    a = alpha[sy : sy + (y2 - y1), sx : sx + (x2 - x1), None]
    out[y1:y2, x1:x2] = a * resized[sy : sy + (y2 - y1), sx : sx + (x2 - x1)] + (1 - a) * out[y1:y2, x1:x2]
    if full.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(full.dtype)
