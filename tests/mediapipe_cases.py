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
import math
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
#: Frames per image in the VIDEO-mode sequences (the first is found by the detector, the rest tracked).
VIDEO_FRAMES = 4
#: Frame rate of the VIDEO-mode sequences (timestamps ``round(t * 1000 / VIDEO_FPS)`` ms: 0, 33, 67, 100).
VIDEO_FPS = 30.0
#: Motion of the VIDEO-mode sequences: the image content moves by this fraction of the image
#: width, height per frame (right and down; 1.8 x 1.35 pixels per frame on a 450 x 450 image).
VIDEO_MOTION = (0.004, 0.003)
#: A real clip (../shared/assets/media) run in VIDEO mode, and how many of its first frames.
CLIP = "video/talking_face_01.mp4"
CLIP_FRAMES = 30


@attrs.frozen
class Case:
    """One test image: ``source`` (path relative to the media folder) and a variant name.

    Variants: ``orig``; ``up4``/``up8`` (``cv2.resize`` by 4 or 8, INTER_LINEAR); ``rot+30``/
    ``rot-30`` (rotated about the centre on a canvas that holds the whole rotated image, black
    outside, :func:`rotate`); ``up4rot+30`` (rotated, then scaled up 4x).
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
    """Apply a :class:`Case` variant to an RGB uint8 image.

    Scaling is ``cv2.resize`` (INTER_LINEAR, stable across OpenCV 5.0/5.1); rotation is
    :func:`rotate` (numpy, integer arithmetic), because ``cv2.warpAffine``'s pixels changed from
    OpenCV 5.0 to 5.1 (the version ``mediapipe`` pulls in) and the references record the pixels.
    ``up4rot+30`` rotates first, then scales.
    """
    import cv2

    if variant == "orig":
        return np.ascontiguousarray(rgb)
    rest = variant
    factor = 1
    if rest.startswith("up"):
        factor = int(rest[2])
        rest = rest[3:]
    out = rgb
    if rest.startswith("rot"):
        out = rotate(out, int(rest[3:]))
        rest = ""
    if rest:
        raise ValueError(f"unknown variant {variant!r}")
    if factor != 1:
        out = cv2.resize(out, (out.shape[1] * factor, out.shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


def rotate(rgb: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate an RGB uint8 image about its centre by ``degrees`` counter-clockwise on screen, on a
    canvas that holds the whole rotated image (black outside).

    Bilinear, with sample positions rounded to 1/256 pixel and integer weights, so the pixels are
    the same on every platform and library version.
    """
    h, w = rgb.shape[:2]
    rad = math.radians(degrees)
    c, s = math.cos(rad), math.sin(rad)
    nw = math.ceil(w * abs(c) + h * abs(s))
    nh = math.ceil(w * abs(s) + h * abs(c))
    ys, xs = np.mgrid[0:nh, 0:nw].astype(np.float64)
    dx, dy = xs - nw / 2, ys - nh / 2
    # output pixel -> source pixel: rotate back by -degrees (y down, so on-screen ccw is clockwise
    # in these coordinates)
    sx = c * dx - s * dy + w / 2
    sy = s * dx + c * dy + h / 2
    qx = np.round(sx * 256).astype(np.int32)
    qy = np.round(sy * 256).astype(np.int32)
    x0, y0 = qx >> 8, qy >> 8
    fx, fy = qx & 255, qy & 255
    # two black pixels around the image: a neighbour pair outside it reads only black
    padded = np.zeros((h + 4, w + 4, 3), np.uint8)
    padded[2:-2, 2:-2] = rgb
    flat = padded.reshape(-1, 3)
    base = np.clip(y0 + 2, 0, h + 2) * (w + 4) + np.clip(x0 + 2, 0, w + 2)
    out = np.zeros((nh, nw, 3), np.int32)
    for offset, wgt in ((0, (256 - fx) * (256 - fy)), (1, fx * (256 - fy)), (w + 4, (256 - fx) * fy), (w + 5, fx * fy)):
        out += flat[base + offset].astype(np.int32) * wgt[..., None]
    return ((out + 32768) >> 16).astype(np.uint8)


def video_timestamps(frames: int = VIDEO_FRAMES, fps: float = VIDEO_FPS) -> list[int]:
    """Timestamps (ms) of a VIDEO-mode sequence: ``round(t * 1000 / fps)``."""
    return [round(t * 1000.0 / fps) for t in range(frames)]


def video_frame(rgb: np.ndarray, t: int) -> np.ndarray:
    """Frame ``t`` of an image's VIDEO-mode sequence: the image moved by ``t`` steps of
    :data:`VIDEO_MOTION` (whole pixels, right and down), the edge repeated where it uncovers."""
    h, w = rgb.shape[:2]
    dx, dy = round(t * VIDEO_MOTION[0] * w), round(t * VIDEO_MOTION[1] * h)
    if dx == dy == 0:
        return np.ascontiguousarray(rgb)
    padded = np.pad(rgb, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(padded[:h, :w])


def clip_frames(media_dir: Path) -> tuple[list[np.ndarray], list[int]]:
    """The first :data:`CLIP_FRAMES` RGB frames of :data:`CLIP` and their timestamps (ms, from
    the clip's frame rate, rounded)."""
    import cv2

    capture = cv2.VideoCapture(str(media_dir / CLIP))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        frames = []
        while len(frames) < CLIP_FRAMES:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if len(frames) < CLIP_FRAMES or not fps > 0:
        raise FileNotFoundError(f"{media_dir / CLIP}: fewer than {CLIP_FRAMES} readable frames")
    return frames, video_timestamps(CLIP_FRAMES, fps)


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
