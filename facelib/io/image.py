"""Reading images and bringing arrays to facelib's one image convention.

Convention: every image that enters or leaves facelib's public API is a numpy array of shape
(H, W, 3), dtype uint8, colour order **RGB**, pixel (0, 0) at the top-left, x to the right and
y down.  Functions that need BGR (FSA-Net, FaceBoxes) convert internally.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facelib.errors import InputError, MediaReadError

#: Largest image accepted, in pixels (about 100 megapixels), to fail early instead of swapping.
MAX_PIXELS = 100_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

ImageSource = str | os.PathLike[str] | np.ndarray


def read_image(source: ImageSource) -> np.ndarray:
    """Read an image file (or take an array) as RGB uint8 (H, W, 3).

    Grayscale gains three equal channels, an alpha channel is dropped, 16-bit and float images
    are scaled to 0..255.  Arrays are assumed RGB(A) already.

    Raises
    ------
    MediaReadError
        The file is missing, empty, not an image or corrupt.
    InputError
        The array has an unusable shape or dtype, or the image is larger than ``MAX_PIXELS``.
    """
    if isinstance(source, np.ndarray):
        return to_rgb_uint8(source)
    if not isinstance(source, str | os.PathLike):
        raise InputError(f"expected an image file path or an RGB uint8 array, got {type(source).__name__}")
    import cv2

    path = Path(source)
    if not path.exists():
        raise MediaReadError(f"image not found: {path}")
    if path.is_dir():
        raise MediaReadError(f"{path} is a directory, not an image")
    size = path.stat().st_size
    if size == 0:
        raise MediaReadError(f"image file {path} is empty (0 bytes)")
    from facelib.io.quiet import native_stderr_silenced

    data = np.fromfile(path, dtype=np.uint8)
    with native_stderr_silenced():  # libpng warns on stderr about harmless colour-profile quirks
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise MediaReadError(
            f"cannot decode {path} as an image (corrupt, truncated, or not a format OpenCV reads: "
            f"{', '.join(IMAGE_SUFFIXES)})"
        )
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return to_rgb_uint8(image)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Bring an array to RGB uint8 (H, W, 3).

    Accepts (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of uint8, uint16 (scaled by 1/257),
    bool, or float in [0, 1] (scaled by 255 and clipped).  Channel order is kept (RGB in, RGB out).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected an image as a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"image is empty: shape {image.shape}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise InputError(
            f"image of {image.shape[1]}x{image.shape[0]} pixels is larger than the "
            f"{MAX_PIXELS:,}-pixel limit; downscale it first"
        )
    image = image[:, :, :3]
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 + 32767) // 65535
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise InputError("image contains NaN or infinite values")
        image = np.clip(np.rint(image * 255.0), 0, 255)
    else:
        raise InputError(f"unsupported image dtype {image.dtype}; use uint8, uint16 or float in [0, 1]")
    return np.ascontiguousarray(image, dtype=np.uint8)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB uint8 image; the format follows the file suffix (``.png`` when there is none).

    The file appears only when complete (written aside, then renamed: :mod:`facelib.io.atomic`).
    Raises :class:`InputError` for a suffix OpenCV cannot encode or a path that is a directory.
    """
    import cv2

    from facelib.io.atomic import write_bytes_atomic

    path = Path(path)
    rgb = to_rgb_uint8(image)
    suffix = path.suffix or ".png"
    writable = ", ".join(s for s in IMAGE_SUFFIXES if s not in (".pgm", ".ppm"))
    try:
        ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot write an image as {suffix!r} ({path}); use one of {writable}")
    return write_bytes_atomic(path, encoded.tobytes(), "image")


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a common image file suffix."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES
