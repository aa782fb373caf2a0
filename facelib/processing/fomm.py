"""First Order Motion Model maths around the sessions (pure numpy).

Keypoints are (x, y) in [-1, 1] (x right, y down; -1 and 1 are the centres of the corner pixels
of the model's 256x256 input); jacobians are (2, 2) float matrices acting on (x, y) column
vectors.  Images enter the model as float32 NCHW RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from facelib.errors import InputError


class MotionMode(str, Enum):
    """How driving keypoints move the source.

    ``RELATIVE``: the source keypoints move by the driving keypoints' displacement from the
    initial driving frame (and jacobians by their relative change) — keeps the source's face
    shape; ``ABSOLUTE``: the driving keypoints are used as they are.
    """

    RELATIVE = "relative"
    ABSOLUTE = "absolute"


def inverse_2x2(m: np.ndarray) -> np.ndarray:
    """Closed-form inverse of (..., 2, 2) matrices: ``[[d, -b], [-c, a]] / (a d - b c)``.

    Singular matrices give inf/nan entries (as a division by zero does); callers pass
    jacobians, which the model keeps well away from singular.
    """
    m = np.asarray(m)
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    out = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / det[..., None, None]


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of (P, 2) points, counter-clockwise (Andrew's monotone chain).

    Collinear points on edges are dropped.  Fewer than three distinct points give those points.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(pts).all():
        raise InputError("convex_hull: points contain NaN or infinite values")
    uniq = np.unique(pts, axis=0)  # sorted by x, then y
    if len(uniq) < 3:
        return uniq
    lower: list[np.ndarray] = []
    for p in uniq:
        while len(lower) >= 2 and _cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in uniq[::-1]:
        while len(upper) >= 2 and _cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (P, 2) points (shoelace formula); 0 for degenerate sets."""
    hull = convex_hull(points)
    if len(hull) < 3:
        return 0.0
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(kp_source: np.ndarray, kp_driving_initial: np.ndarray) -> float:
    """``sqrt(hull area of source kps) / sqrt(hull area of initial driving kps)`` (adapt scale)."""
    src = hull_area(kp_source)
    drv = hull_area(kp_driving_initial)
    if drv <= 0:
        raise InputError("adapt_scale: the initial driving keypoints are degenerate (zero hull area)")
    return float(np.sqrt(src) / np.sqrt(drv))


def normalize_kp(
    kp_source: tuple[np.ndarray, np.ndarray],
    kp_driving: tuple[np.ndarray, np.ndarray],
    kp_driving_initial: tuple[np.ndarray, np.ndarray],
    mode: MotionMode | str = MotionMode.RELATIVE,
    adapt_scale: bool = False,
    relative_jacobian: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Driving keypoints as the generator takes them.

    Parameters
    ----------
    kp_source:
        ``(value (K, 2), jacobian (K, 2, 2))`` of the source image (a leading batch axis of 1
        is accepted).
    kp_driving:
        ``(value (N, K, 2), jacobian (N, K, 2, 2))`` of N driving frames.
    kp_driving_initial:
        ``(value (K, 2), jacobian (K, 2, 2))`` of the reference driving frame.
    mode:
        ``"relative"``: value = kp_source + scale * (kp_driving - kp_initial) and (unless
        ``relative_jacobian`` is False) jacobian = J_driving inv(J_initial) J_source;
        ``"absolute"``: the driving keypoints unchanged.
    adapt_scale:
        Scale the relative movement by :func:`movement_scale` (relative mode only).

    Returns
    -------
    (value (N, K, 2), jacobian (N, K, 2, 2)) float32.
    """
    mode = MotionMode(mode)
    src_v, src_j = (np.asarray(a, dtype=np.float32) for a in kp_source)
    drv_v, drv_j = (np.asarray(a, dtype=np.float32) for a in kp_driving)
    ini_v, ini_j = (np.asarray(a, dtype=np.float32) for a in kp_driving_initial)
    src_v, src_j = src_v.reshape(-1, 2), src_j.reshape(-1, 2, 2)
    ini_v, ini_j = ini_v.reshape(-1, 2), ini_j.reshape(-1, 2, 2)
    if drv_v.ndim == 2:
        drv_v, drv_j = drv_v[None], drv_j[None]
    if mode is MotionMode.ABSOLUTE:
        return drv_v.astype(np.float32), drv_j.astype(np.float32)
    scale = movement_scale(src_v, ini_v) if adapt_scale else 1.0
    value = (drv_v - ini_v[None]) * np.float32(scale) + src_v[None]
    jac = drv_j
    if relative_jacobian is None or relative_jacobian:
        jac = np.matmul(np.matmul(drv_j, inverse_2x2(ini_j)[None]), src_j[None])
    return value.astype(np.float32), jac.astype(np.float32)


# --- images --------------------------------------------------------------------------------


def to_model_input(images: np.ndarray | Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) image(s) or float RGB in [0, 1] -> float32 (N, 3, h, w) in [0, 1].

    Images of another size are resized to ``size`` = (height, width) with area averaging when
    shrinking and bilinear interpolation when enlarging.  Float input is taken as is (not
    rounded to 8 bits) so reference arrays pass through exactly.
    """
    import cv2

    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = np.empty((len(images), 3, size[0], size[1]), dtype=np.float32)
    for i, image in enumerate(images):
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise InputError(f"expected an RGB image (H, W, 3), got shape {arr.shape}")
        arr = arr[:, :, :3]
        if arr.dtype == np.uint8:
            f = arr.astype(np.float32) / np.float32(255.0)
        elif np.issubdtype(arr.dtype, np.floating):
            f = arr.astype(np.float32)
        else:
            raise InputError(f"unsupported image dtype {arr.dtype}; use uint8 or float in [0, 1]")
        if f.shape[:2] != tuple(size):
            shrink = f.shape[0] > size[0] or f.shape[1] > size[1]
            f = cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i] = f.transpose(2, 0, 1)
    return out


def from_model_output(prediction: np.ndarray) -> np.ndarray:
    """Generator output float (N, 3, H, W) in [0, 1] -> float32 (N, H, W, 3) RGB in [0, 1]."""
    return np.ascontiguousarray(np.asarray(prediction, dtype=np.float32).transpose(0, 2, 3, 1))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> uint8, rounding to nearest (as skimage's ``img_as_ubyte``)."""
    return np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


# --- best frame ------------------------------------------------------------------------------


def normalize_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(P, D) landmarks centred on their mean, x and y divided by sqrt(convex hull area of xy).

    Returns float64 (P, D).  Extra dimensions (z) are centred but not scaled.
    """
    lm = np.array(landmarks, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[1] < 2 or len(lm) < 3:
        raise InputError(f"landmarks must be (P >= 3, 2 or 3), got shape {lm.shape}")
    lm = lm - lm.mean(axis=0, keepdims=True)
    area = hull_area(lm[:, :2])
    if area <= 0:
        raise InputError("landmarks are degenerate (zero hull area)")
    lm[:, :2] /= np.sqrt(area)
    return lm


def landmark_distance(source: np.ndarray, driving: np.ndarray) -> float:
    """Sum of squared differences between two normalised landmark sets (see :func:`normalize_landmarks`)."""
    return float(((normalize_landmarks(source) - normalize_landmarks(driving)) ** 2).sum())


class BestFrameSearch:
    """Running search for the driving frame whose face is best aligned with the source.

    Feed frames' landmarks in order with :meth:`update` (``None`` for frames without a face);
    :attr:`index` is the frame with the smallest :func:`landmark_distance` (the first on ties,
    0 when no frame had a face).
    """

    def __init__(self, source_landmarks: np.ndarray) -> None:
        self.source = normalize_landmarks(source_landmarks)
        self.index = 0
        self.distance = float("inf")
        self.count = 0

    def update(self, landmarks: np.ndarray | None) -> None:
        i = self.count
        self.count += 1
        if landmarks is None:
            return
        lm = normalize_landmarks(landmarks)
        if lm.shape != self.source.shape:
            raise InputError(f"landmark sets differ in shape: source {self.source.shape}, frame {lm.shape}")
        d = float(((self.source - lm) ** 2).sum())
        if d < self.distance:
            self.distance = d
            self.index = i


def animation_order(num_frames: int, best: int) -> tuple[list[int], list[int]]:
    """Frame indices of the two passes when animating from driving frame ``best``.

    Returns ``(backward, forward)``: backward = best, best-1, ..., 0 and forward = best, ...,
    num_frames-1, both starting at ``best`` (the reference frame of both passes).  The output
    video is ``reversed(backward results) + forward results[1:]``, i.e. frames 0..T-1 in order.
    """
    if num_frames < 1:
        raise InputError("the driving video has no frames")
    if not 0 <= best < num_frames:
        raise InputError(f"best frame {best} is outside the driving video (0..{num_frames - 1})")
    return list(range(best, -1, -1)), list(range(best, num_frames))
