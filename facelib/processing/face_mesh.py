"""MediaPipe face mesh: rotated face ROIs, the 256x256 crop, landmark decoding and tracking (numpy).

Coordinates: image pixels, x to the right, y down.  A :class:`Roi` is a rotated rectangle
(centre, width, height in pixels, rotation in radians, positive = clockwise on screen, i.e. from
the x axis towards the y axis).  Landmarks leave this module as (478, 3) float64 arrays in
*normalised* image units ``(x / W, y / H, z / W)`` (MediaPipe's convention; z is negative
towards the camera and scaled like x); tasks turn them into pixels.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from facelib.processing import rect_warp

#: Side of the landmark model input, in pixels.
INPUT_SIZE = 256
#: Number of landmarks the model returns: 468 mesh points + 2 x 5 iris points.
NUM_LANDMARKS = 478
#: Landmarks whose line gives the ROI rotation when tracking (eye outer corners, image-left first).
ROTATION_LANDMARKS = (33, 263)
#: The 146 landmarks, in order, fed (x, y in pixels) to the blendshape model.
BLENDSHAPE_LANDMARKS: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153,
    154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249,
    251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473,
    474, 475, 476, 477,
)  # fmt: skip


def normalize_radians(angle: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def rotation_between(start: np.ndarray, end: np.ndarray) -> float:
    """ROI rotation (radians) that makes the line ``start -> end`` (pixels) horizontal."""
    return normalize_radians(-math.atan2(-(float(end[1]) - float(start[1])), float(end[0]) - float(start[0])))


def _rotation_f32(start: np.ndarray, end: np.ndarray, width: int, height: int) -> float:
    """:func:`rotation_between` for normalised float32 points, in MediaPipe's float32 arithmetic
    (``DetectionsToRectsCalculator::ComputeRotation``, then ``NormalizeRadians`` in double)."""
    f32 = np.float32
    w, h = f32(width), f32(height)
    x0, y0 = f32(start[0]) * w, f32(start[1]) * h
    x1, y1 = f32(end[0]) * w, f32(end[1]) * h
    # atan2 of the float32 differences rounded once to float32, as a correctly rounded atan2f
    # (numpy's float32 arctan2 is off by an ulp on about a third of the inputs)
    angle = f32(0.0) - f32(math.atan2(float(-(y1 - y0)), float(x1 - x0)))
    return float(f32(normalize_radians(float(angle))))


def _rect_to_roi(
    xmin: np.float32, ymin: np.float32, box_w: np.float32, box_h: np.float32, rotation: float,
    width: int, height: int, scale: float, square_long: bool,
) -> Roi:  # fmt: skip
    """Normalised box -> pixel :class:`Roi` in MediaPipe's float32 steps (``RectFromBox``,
    ``RectTransformationCalculator`` without shift, ``GetRoi``)."""
    f32 = np.float32
    w, h = f32(width), f32(height)
    cx, cy = xmin + box_w / f32(2.0), ymin + box_h / f32(2.0)
    if square_long:
        long_side = max(box_w * w, box_h * h)
        box_w, box_h = long_side / w, long_side / h
    box_w, box_h = box_w * f32(scale), box_h * f32(scale)
    return Roi(float(cx * w), float(cy * h), float(box_w * w), float(box_h * h), rotation)


@attrs.frozen
class Roi:
    """A rotated rectangle in image pixels: centre ``(cx, cy)``, size ``(width, height)``, ``rotation`` rad."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0

    def scaled(self, factor: float) -> Roi:
        """The same rectangle with both sides multiplied by ``factor``."""
        return attrs.evolve(self, width=self.width * factor, height=self.height * factor)

    def aabb(self) -> np.ndarray:
        """(4,) ``x1, y1, x2, y2`` of the unrotated rectangle (rotation ignored, as MediaPipe's tracker)."""
        return np.array(
            [self.cx - self.width / 2, self.cy - self.height / 2, self.cx + self.width / 2, self.cy + self.height / 2]
        )

    def inverse_matrix(self, size: int = INPUT_SIZE) -> np.ndarray:
        """(2, 3) affine map from crop pixels (size x size) to image pixels (for ``WARP_INVERSE_MAP``).

        Crop pixel (i, j) samples ``centre + R(rotation) ((i/size - 0.5) w, (j/size - 0.5) h)``.
        """
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        sx, sy = self.width / size, self.height / size
        return np.array(
            [
                [c * sx, -s * sy, self.cx - c * self.width / 2 + s * self.height / 2],
                [s * sx, c * sy, self.cy - s * self.width / 2 - c * self.height / 2],
            ],
            dtype=np.float64,
        )


def roi_from_detection(box: np.ndarray, keypoints: np.ndarray, scale: float = 1.5) -> Roi:
    """Landmark ROI from a detector box (pixels) and its keypoints (eyes are keypoints 0 and 1).

    float64 arithmetic; :func:`roi_from_relative_detection` is MediaPipe's exact float32 version.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    rotation = rotation_between(keypoints[0], keypoints[1])
    return Roi((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, rotation).scaled(scale)


def roi_from_relative_detection(
    box: np.ndarray, keypoints: np.ndarray, width: int, height: int, scale: float = 1.5
) -> Roi:
    """Landmark ROI from a detection in normalised float32 coordinates, as MediaPipe computes it.

    Parameters
    ----------
    box:
        (4,) ``xmin, ymin, box width, box height`` normalised by the image size
        (:attr:`facelib.processing.blazeface.Detections.relative_boxes`).
    keypoints:
        (6, 2) normalised keypoints; the eyes (0 and 1) give the rotation.
    width, height:
        Image size in pixels.
    """
    f32 = np.float32
    xmin, ymin, box_w, box_h = (f32(v) for v in np.asarray(box, np.float32))
    rotation = _rotation_f32(keypoints[0], keypoints[1], width, height)
    return _rect_to_roi(xmin, ymin, box_w, box_h, rotation, width, height, scale, square_long=False)


def roi_from_landmarks(landmarks: np.ndarray, width: int, height: int, scale: float = 1.5) -> Roi:
    """Next-frame ROI from (478, >=2) normalised landmarks: their box, squared on the long side, x1.5.

    MediaPipe's float32 steps (``LandmarksToDetectionCalculator``, ``DetectionsToRectsCalculator``
    with the eye corners 33 and 263, ``RectTransformationCalculator`` with ``square_long``): the
    next frame's crop is sampled on a 1/32-pixel grid, so float64 rounding here would move it.
    """
    pts = np.asarray(landmarks, dtype=np.float32)
    x_min, x_max = pts[:, 0].min(), pts[:, 0].max()
    y_min, y_max = pts[:, 1].min(), pts[:, 1].max()
    a, b = ROTATION_LANDMARKS
    rotation = _rotation_f32(pts[a, :2], pts[b, :2], width, height)
    return _rect_to_roi(x_min, y_min, x_max - x_min, y_max - y_min, rotation, width, height, scale, square_long=True)


def crop(image: np.ndarray, roi: Roi, out: np.ndarray | None = None, size: int = INPUT_SIZE) -> np.ndarray:
    """Warp the rotated ROI of an RGB uint8 image to a (size, size, 3) float32 tensor in [0, 1].

    MediaPipe's resampling (:func:`facelib.processing.rect_warp.warp_rect`: bilinear on uint8,
    1/32-pixel fixed point) with replicated borders.  ``out``, if given, is a (size, size, 3)
    float32 array to write into (avoids an allocation per face).
    """
    warped = rect_warp.warp_rect(image, roi.cx, roi.cy, roi.width, roi.height, roi.rotation, size, size, "replicate")
    if out is None:
        out = np.empty((size, size, 3), dtype=np.float32)
    np.multiply(warped, np.float32(1.0 / 255.0), out=out, casting="unsafe")
    return out


def project(raw: np.ndarray, roi: Roi, width: int, height: int, size: int = INPUT_SIZE) -> np.ndarray:
    """Model output -> normalised image landmarks.

    Parameters
    ----------
    raw:
        (1434,) or (478, 3) landmark values in crop pixels (``size`` units).
    roi:
        The ROI the crop was taken from.

    Returns
    -------
    (478, 3) float64 holding float32 values ``(x / W, y / H, z / W)``; z scaled by the length of
    the crop's x axis in the image.  The arithmetic is float32 in the order of MediaPipe's
    ``TensorsToLandmarksCalculator`` and ``LandmarkProjectionCalculator`` (matrix from
    ``GetRotatedSubRectToRectTransformMatrix``), so the next frame's ROI, built from these
    values, is MediaPipe's to the bit.
    """
    f32 = np.float32
    pts = np.asarray(raw, dtype=np.float32).reshape(-1, 3) / f32(size)
    a, b = f32(roi.width), f32(roi.height)
    e, f = f32(roi.cx), f32(roi.cy)
    c, d = f32(math.cos(f32(roi.rotation))), f32(math.sin(f32(roi.rotation)))
    g, h = f32(1.0) / f32(width), f32(1.0) / f32(height)
    m0, m1 = a * c * f32(1.0) * g, -b * d * g
    m3 = (f32(-0.5) * a * c * f32(1.0) + f32(0.5) * b * d + e) * g
    m4, m5 = a * d * f32(1.0) * h, b * c * h
    m7 = (f32(-0.5) * b * c - f32(0.5) * a * d * f32(1.0) + f) * h
    out = np.empty(pts.shape, dtype=np.float32)
    out[:, 0] = pts[:, 0] * m0 + pts[:, 1] * m1 + pts[:, 2] * f32(0.0) + m3
    out[:, 1] = pts[:, 0] * m4 + pts[:, 1] * m5 + pts[:, 2] * f32(0.0) + m7
    z_scale = f32(math.sqrt(float(m0) ** 2 + float(m4) ** 2))
    out[:, 2] = z_scale * pts[:, 2]
    return out.astype(np.float64)


def blendshape_input(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """(1, 146, 2) float32 blendshape-model input: the subset's x, y in image pixels."""
    subset = landmarks[BLENDSHAPE_LANDMARKS, :2] * np.array([width, height], dtype=np.float64)
    return subset.astype(np.float32)[None]


def sigmoid(x: float) -> float:
    """Logistic function, safe for large |x|."""
    return float(1.0 / (1.0 + math.exp(-max(min(x, 100.0), -100.0))))


def merge_tracked(tracked: list[Roi], detected: list[Roi], iou_threshold: float) -> list[Roi]:
    """MediaPipe's association: detector ROIs replace tracked ROIs they overlap (IoU > threshold).

    Starts from ``tracked``; each detected ROI, in order, removes every ROI already in the list
    whose axis-aligned IoU with it exceeds ``iou_threshold`` and is then appended.
    """
    from facelib.processing.boxes import iou

    merged = list(tracked)
    for roi in detected:
        if merged:
            overlaps = iou(roi.aabb()[None], np.stack([r.aabb() for r in merged]))[0]
            merged = [r for r, o in zip(merged, overlaps) if o <= iou_threshold]
        merged.append(roi)
    return merged


class OneEuroLandmarkFilter:
    """MediaPipe's landmark smoothing (One-Euro filter on pixel coordinates, scale-invariant).

    Parameters follow ``LandmarksSmoothingCalculator`` as configured by the Face Landmarker:
    ``min_cutoff`` 0.05, ``beta`` 80, ``derivate_cutoff`` 1, ``frequency`` 30 Hz until two
    timestamps have been seen.  Input and output are (N, 3) pixel landmarks ``(x, y, z)``.
    """

    def __init__(
        self,
        min_cutoff: float = 0.05,
        beta: float = 80.0,
        derivate_cutoff: float = 1.0,
        frequency: float = 30.0,
        min_allowed_object_scale: float = 1e-6,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivate_cutoff = derivate_cutoff
        self.frequency = frequency
        self.min_allowed_object_scale = min_allowed_object_scale
        self.reset()

    def reset(self) -> None:
        """Forget the history (called when the face is lost)."""
        self._last_time_us: int | None = None
        self._freq = self.frequency
        self._raw: np.ndarray | None = None
        self._value: np.ndarray | None = None
        self._dvalue: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, frequency: float) -> np.ndarray | float:
        return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) * frequency)

    def __call__(self, landmarks: np.ndarray, timestamp_us: int) -> np.ndarray:
        """Smooth (N, 3) pixel landmarks taken at ``timestamp_us`` (microseconds).

        A sample not later than the last stored one is returned unchanged and not stored.  The
        sampling frequency stays at ``frequency`` until two samples after time 0 have been seen.
        (A first sample at time 0 *is* stored: Google's package gives the same results whether a
        video starts at 0 or 1000 ms, which only holds if it is.)
        """
        pts = np.asarray(landmarks, dtype=np.float64)
        scale = ((pts[:, 0].max() - pts[:, 0].min()) + (pts[:, 1].max() - pts[:, 1].min())) / 2
        last = self._last_time_us
        if scale < self.min_allowed_object_scale or (last is not None and timestamp_us <= last):
            return pts
        if last is not None and last != 0 and timestamp_us != 0:
            self._freq = 1e6 / (timestamp_us - last)
        self._last_time_us = timestamp_us
        if self._raw is None or self._value is None or self._dvalue is None:
            self._dvalue = np.zeros_like(pts)
            self._raw = pts.copy()
            self._value = pts.copy()
            return pts
        dx = (pts - self._raw) * (self._freq / scale)
        a_d = self._alpha(self.derivate_cutoff, self._freq)
        edx = a_d * dx + (1 - a_d) * self._dvalue
        a = self._alpha(self.min_cutoff + self.beta * np.abs(edx), self._freq)
        out = a * pts + (1 - a) * self._value
        self._raw, self._dvalue, self._value = pts.copy(), edx, out
        return out
