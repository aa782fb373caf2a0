"""Images on which facelib's Face Landmarker is compared with Google's ``mediapipe`` package.

Shared by ``scripts/make_mediapipe_refs.py`` (which runs the package and writes
``tests/data/mediapipe_refs/*.npz``) and ``tests/test_face_landmarker_fidelity.py`` (which runs
facelib on the same images).  The source images stay in ``../shared/assets/media``; the variants
(scaled up, rotated in the image plane) are made here, deterministically, with OpenCV on uint8
RGB.  Each reference records a digest of the exact pixels it was made from, so a test can tell a
changed input from a changed pipeline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np

#: AFLW2000-3D images in ../shared/assets/media/aflw2000 (large yaw/pitch/roll).
AFLW = ("image00050", "image00081", "image00251", "image00430", "image00475", "image00514")
#: Portraits in ../shared/assets/media/images.
PORTRAITS = ("obama.jpg", "obama2.jpg", "two_people.jpg", "fomm_source_02.png", "fomm_source_05.png")
#: Images with a long side under this are also scaled up 8x (larger ones 4x only, for memory).
EIGHT_X_BELOW = 500
#: In-plane rotations, degrees counter-clockwise on screen (OpenCV's convention).
ROTATIONS = (30, -30)
#: Frames per image in the VIDEO-mode clips (the first is found by the detector, the rest tracked).
VIDEO_FRAMES = 3
#: Frame interval of the VIDEO-mode clips, milliseconds.
VIDEO_STEP_MS = 33


@attrs.frozen
class Case:
    """One test image: ``source`` (path relative to the media folder) and a variant name.

    Variants: ``orig``; ``up4``/``up8`` (``cv2.resize`` by 4 or 8, INTER_LINEAR); ``rot+30``/
    ``rot-30`` (rotated about the centre on a canvas that holds the whole rotated image, black
    outside, INTER_LINEAR); ``up4rot+30`` (both, scale first).
    """

    source: str
    variant: str

    @property
    def key(self) -> str:
        """File-name-safe identifier, e.g. ``image00475_jpg__rot+30``."""
        return f"{Path(self.source).name.replace('.', '_')}__{self.variant}"

    def image(self, media_dir: Path) -> np.ndarray:
        """The case's RGB uint8 image (H, W, 3)."""
        import cv2

        bgr = cv2.imread(str(media_dir / self.source), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(media_dir / self.source)
        return transform(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.variant)


def transform(rgb: np.ndarray, variant: str) -> np.ndarray:
    """Apply a :class:`Case` variant to an RGB uint8 image."""
    import cv2

    out = rgb
    rest = variant
    if rest == "orig":
        return np.ascontiguousarray(out)
    if rest.startswith("up"):
        factor = int(rest[2])
        rest = rest[3:]
        out = cv2.resize(out, (out.shape[1] * factor, out.shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    if rest.startswith("rot"):
        angle = float(rest[3:])
        h, w = out.shape[:2]
        c, s = abs(np.cos(np.radians(angle))), abs(np.sin(np.radians(angle)))
        nw, nh = int(np.ceil(w * c + h * s)), int(np.ceil(w * s + h * c))
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        matrix[0, 2] += nw / 2 - w / 2
        matrix[1, 2] += nh / 2 - h / 2
        out = cv2.warpAffine(out, matrix, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        rest = ""
    if rest:
        raise ValueError(f"unknown variant {variant!r}")
    return np.ascontiguousarray(out)


def digest(rgb: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the image's shape and bytes."""
    h = hashlib.sha256(repr(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:16]


def cases(media_dir: Path) -> Iterator[Case]:
    """Every case, AFLW2000 first."""
    import cv2

    sources = [f"aflw2000/{name}.jpg" for name in AFLW] + [f"images/{name}" for name in PORTRAITS]
    for source in sources:
        shape = cv2.imread(str(media_dir / source), cv2.IMREAD_COLOR).shape
        variants = ["orig", "up4"]
        if max(shape[:2]) < EIGHT_X_BELOW:
            variants.append("up8")
        variants += [f"rot{a:+d}" for a in ROTATIONS] + [f"up4rot{ROTATIONS[0]:+d}"]
        for variant in variants:
            yield Case(source, variant)
