"""Rotated-rectangle crops resampled exactly as MediaPipe's CPU image-to-tensor step does.

MediaPipe (``ImageToTensorCalculator``, OpenCV converter) turns a rotated rectangle of the
image into a model input like this:

1. the rectangle (centre, size in pixels, rotation in radians) is held in float32 and its
   rotation converted to degrees (``rotation * 180.f / M_PI``);
2. ``cv::boxPoints`` gives its four corners, which ``cv::getPerspectiveTransform`` maps to the
   tensor corners (0, H), (0, 0), (W, 0), (W, H);
3. ``cv::warpPerspective`` (bilinear, uint8 in, uint8 out) resamples the image with the
   OpenCV bundled in Google's package, which computes sample positions in 1/32 pixel fixed
   point and blends the four neighbours with integer weights, rounding half up.

Recent OpenCV releases (the ``opencv-python`` wheels facelib installs) compute the same warp
with float positions instead, which moves most output pixels by one grey level.  On a face
seen side-on the detector and landmark models are sensitive enough to that for the landmarks
to drift by up to 2e-3 of the image size.  This module therefore computes the legacy fixed-point
sample grid itself and lets ``cv2.remap`` (whose fixed-point path is the same in every OpenCV
version) do the blending, giving bit-identical tensors whatever OpenCV is installed.

Coordinates: pixels, x to the right, y down; rotation positive from the x axis towards the y
axis (clockwise on screen).  Images are (H, W, C) uint8 in any channel order.
"""

from __future__ import annotations

import math

import numpy as np

#: Sub-pixel steps per pixel of OpenCV's fixed-point warp (``INTER_TAB_SIZE``).
SUBPIXEL_STEPS = 32
#: Side of OpenCV's warp blocks (``BLOCK_SZ``); the block layout changes the double rounding
#: of the sample positions, so it is reproduced.
_BLOCK = 32
#: Sample positions past this no longer fit OpenCV's int16 maps; larger images fall back to
#: ``cv2.warpPerspective``.
_MAX_FIXED_POINT = 32767
BORDERS = ("zero", "replicate")


def rect_to_tensor_matrix(
    cx: float, cy: float, width: float, height: float, rotation: float, out_width: int, out_height: int
) -> np.ndarray:
    """(3, 3) float64 perspective matrix from image pixels to tensor pixels, as MediaPipe builds it.

    The rectangle is rounded to float32 first (MediaPipe keeps it in ``float``), the corner
    order is ``cv::boxPoints``'s, and the matrix comes from ``cv2.getPerspectiveTransform``.
    """
    import cv2

    f32 = np.float32
    degrees = float(f32(float(f32(rotation) * f32(180.0)) / math.pi))
    rect = ((float(f32(cx)), float(f32(cy))), (float(f32(width)), float(f32(height))), degrees)
    src = cv2.boxPoints(rect).astype(np.float32)
    dst = np.array([[0, out_height], [0, 0], [out_width, 0], [out_width, out_height]], dtype=np.float32)
    return np.asarray(cv2.getPerspectiveTransform(src, dst), dtype=np.float64)


def fixed_point_maps(matrix: np.ndarray, out_width: int, out_height: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample grid of OpenCV's legacy bilinear ``warpPerspective`` for ``cv2.remap``.

    Parameters
    ----------
    matrix:
        (3, 3) map from source pixels to output pixels (inverted here with ``cv2.invert``, LU,
        as ``warpPerspective`` does without ``WARP_INVERSE_MAP``).

    Returns
    -------
    ``map1`` (out_height, out_width, 2) int16 whole-pixel source ``x, y`` and ``map2``
    (out_height, out_width) uint16 sub-pixel index ``32 * (y % 32) + (x % 32)`` in 1/32 pixel.
    """
    import cv2

    _, inverse = cv2.invert(np.asarray(matrix, dtype=np.float64), flags=cv2.DECOMP_LU)
    m = inverse.ravel()
    rows = min(_BLOCK // 2, out_height)
    cols = min(_BLOCK * _BLOCK // rows, out_width)
    fast = _fast_fixed_point_maps(m, cols, out_width, out_height)
    if fast is not None:
        return fast
    return _general_fixed_point_maps(m, cols, out_width, out_height)


def _general_fixed_point_maps(
    m: np.ndarray, cols: int, out_width: int, out_height: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fixed_point_maps` for any matrix: OpenCV's loop transcribed pixel by pixel."""
    x = np.arange(out_width, dtype=np.float64)
    y = np.arange(out_height, dtype=np.float64)[:, None]
    block_x = np.floor(x / cols) * cols  # first column of each pixel's block
    x1 = x - block_x
    # same double operations, in the same order, as OpenCV's loop over a block's rows
    x0 = (m[0] * block_x + m[1] * y) + m[2]
    y0 = (m[3] * block_x + m[4] * y) + m[5]
    w = ((m[6] * block_x + m[7] * y) + m[8]) + m[6] * x1
    nonzero = w != 0
    w = np.where(nonzero, SUBPIXEL_STEPS / np.where(nonzero, w, 1.0), 0.0)
    limit = (float(np.iinfo(np.int32).min), float(np.iinfo(np.int32).max))
    fx = np.rint(np.clip((x0 + m[0] * x1) * w, *limit)).astype(np.int64)
    fy = np.rint(np.clip((y0 + m[3] * x1) * w, *limit)).astype(np.int64)
    map1 = np.empty((out_height, out_width, 2), dtype=np.int16)
    map1[..., 0] = np.clip(fx >> 5, -32768, 32767)
    map1[..., 1] = np.clip(fy >> 5, -32768, 32767)
    map2 = ((fy & (SUBPIXEL_STEPS - 1)) * SUBPIXEL_STEPS + (fx & (SUBPIXEL_STEPS - 1))).astype(np.uint16)
    return map1, map2


#: ``x + _ROUNDING - _ROUNDING`` rounds a double to the nearest integer, ties to even (as
#: ``cvRound``) for ``|x| < 2**51``: the sum has no fraction bits left.
_ROUNDING = 1.5 * 2.0**52
#: The fast path hands positions to ``cv2.convertMaps`` as float32 pixels, exact below 2**24
#: sub-pixel steps; it is taken only when every position is provably far below that.
_FAST_LIMIT = 2.0**22


def _fast_fixed_point_maps(
    m: np.ndarray, cols: int, out_width: int, out_height: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The same grid as :func:`_general_fixed_point_maps` in about a quarter of the time, or None
    when its conditions do not hold (then the general path runs).

    The double operations per pixel are the same, in the same order; what is saved is work that
    does not change a bit: the per-row, per-block terms ``X0, Y0, W0`` are computed once per block
    instead of once per pixel, the clipping to int32 is skipped when a bound on the positions
    (from those terms) shows it cannot act, the rounding uses the 1.5 * 2**52 trick instead of
    ``np.rint``, and OpenCV's own ``cv2.convertMaps`` splits the rounded positions (as float32
    pixels, exact below :data:`_FAST_LIMIT`) into whole pixels and 1/32 fractions.

    Conditions: the width is a whole number of blocks and the perspective divisor ``W`` keeps
    one sign, away from zero, over every block.
    """
    import cv2

    if out_width % cols:
        return None
    blocks = out_width // cols
    block_x = np.arange(blocks, dtype=np.float64) * cols
    y = np.arange(out_height, dtype=np.float64)[:, None]
    x1 = np.tile(np.arange(cols, dtype=np.float64), blocks)  # column within its block
    # (out_height, blocks): the same expressions as OpenCV's per-block-row terms
    x0 = (m[0] * block_x + m[1] * y) + m[2]
    y0 = (m[3] * block_x + m[4] * y) + m[5]
    w0 = (m[6] * block_x + m[7] * y) + m[8]
    reach = cols - 1
    w_floor = float(np.abs(w0).min()) - abs(m[6]) * reach
    if not (w_floor > 0 and (np.sign(w0) == np.sign(w0.flat[0])).all()):
        return None
    most = max(float(np.abs(x0).max()) + abs(m[0]) * reach, float(np.abs(y0).max()) + abs(m[3]) * reach)
    if not most * SUBPIXEL_STEPS / w_floor * (1 + 1e-6) + 1 < _FAST_LIMIT:
        return None
    w = np.repeat(w0, cols, axis=1)
    w += m[6] * x1
    np.divide(float(SUBPIXEL_STEPS), w, out=w)
    pixels = []
    for start, step in ((x0, m[0]), (y0, m[3])):
        pos = np.repeat(start, cols, axis=1)
        pos += step * x1
        pos *= w
        pos += _ROUNDING
        pos -= _ROUNDING
        pos *= 1.0 / SUBPIXEL_STEPS
        pixels.append(pos.astype(np.float32))
    map1, map2 = cv2.convertMaps(pixels[0], pixels[1], cv2.CV_16SC2)
    return np.asarray(map1), np.asarray(map2)


def warp_rect(
    image: np.ndarray,
    cx: float,
    cy: float,
    width: float,
    height: float,
    rotation: float,
    out_width: int,
    out_height: int,
    border: str = "replicate",
) -> np.ndarray:
    """Resample a rotated rectangle of ``image`` to (out_height, out_width, C) uint8, as MediaPipe.

    Output pixel (i, j) samples the image near ``centre + R(rotation) ((i/out_width - 0.5) width,
    (j/out_height - 0.5) height)``, on the 1/32-pixel grid of :func:`fixed_point_maps`.
    ``border`` is ``"zero"`` (black outside the image) or ``"replicate"`` (edge pixels repeated).
    """
    import cv2

    if border not in BORDERS:
        raise ValueError(f"border must be one of {BORDERS}, got {border!r}")
    mode = cv2.BORDER_CONSTANT if border == "zero" else cv2.BORDER_REPLICATE
    matrix = rect_to_tensor_matrix(cx, cy, width, height, rotation, out_width, out_height)
    if max(image.shape[:2]) >= _MAX_FIXED_POINT:  # beyond int16 maps: OpenCV's own (float) warp
        return np.asarray(
            cv2.warpPerspective(image, matrix, (out_width, out_height), flags=cv2.INTER_LINEAR, borderMode=mode)
        )
    map1, map2 = fixed_point_maps(matrix, out_width, out_height)
    return np.asarray(cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=mode, borderValue=0))
