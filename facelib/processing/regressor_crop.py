"""Face crops for image regressors: margin, optional square, zero padding, resize (numpy + OpenCV).

The crop rule used by :class:`~facelib.tasks.blendshape_regressor.RegressorEngine`, spelled out
so a user can reproduce it when training or checking a model:

1. grow the detector box by ``margin`` × its width on the left and on the right and × its
   height on top and at the bottom (:func:`facelib.processing.boxes.expand`);
2. if ``square``, make it square around the same centre with the longer side;
3. round the corners to whole pixels (``np.rint``), take those pixels, filling the parts
   outside the image with 0 (black);
4. resize to the model's input (width, height) with ``cv2.resize`` (``INTER_LINEAR`` unless
   the card says otherwise).
"""

from __future__ import annotations

import numpy as np

from facelib.errors import InputError
from facelib.processing.boxes import expand, square

INTERPOLATIONS = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3}


def crop_box(box: np.ndarray, margin: float, make_square: bool) -> np.ndarray:
    """(4,) int64 pixel box ``x1, y1, x2, y2`` (x2/y2 exclusive) of a face crop (steps 1-3)."""
    out = expand(np.asarray(box, np.float64).reshape(1, 4), margin)
    if make_square:
        out = square(out)
    return np.rint(out[0]).astype(np.int64)


def extract(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Pixels of ``image`` (H, W, C) inside the integer ``box``; outside the image is 0."""
    x1, y1, x2, y2 = (int(v) for v in box)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"empty crop box {list(box)}")
    out = np.zeros((y2 - y1, x2 - x1, image.shape[2]), dtype=image.dtype)
    h, w = image.shape[:2]
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return out


def face_crop(
    image: np.ndarray,
    box: np.ndarray,
    size: tuple[int, int],
    margin: float = 0.0,
    make_square: bool = True,
    interpolation: str = "linear",
) -> np.ndarray:
    """The model input crop of one face: uint8 (height, width, 3) in the image's colour order.

    ``size`` is (height, width) of the model input.
    """
    import cv2

    if interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {interpolation!r}")
    pixels = extract(image, crop_box(box, margin, make_square))
    return cv2.resize(pixels, (int(size[1]), int(size[0])), interpolation=INTERPOLATIONS[interpolation])
