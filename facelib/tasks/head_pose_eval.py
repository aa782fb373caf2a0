"""Head pose accuracy on AFLW2000-style data: ``NAME.jpg`` + ``NAME.mat`` with ground truth.

Each ``.mat`` holds ``Pose_Para`` (1, 7): pitch, yaw, roll in **radians** then scale and
translation, and ``pt2d`` (2, K) landmark x / y pixels (missing points are negative).  Upstream
FSA-Net reports the mean absolute error in degrees on AFLW2000 over samples whose three angles
all lie within ±99° (the same filter is applied here).

Two ways to find the face:

* ``"landmarks"``: the box spanning every ``pt2d`` point (the shared reference crops were made
  this way), then FSA-Net's usual 0.6 margin.  Upstream's training-DB script drops points with a
  coordinate <= 0 first and crops without the far edge; on images with missing landmarks this
  gives slightly different crops.
* ``"detector"``: the HeadPose detector; the detection overlapping the landmark box most is
  used, and images where it finds no face are counted as missed (not scored).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.errors import InputError
from facelib.io.image import read_image
from facelib.io.matfile import read_mat
from facelib.processing.boxes import iou
from facelib.results import ResultMixin
from facelib.tasks.head_pose import HeadPose

#: Samples with any ground-truth angle beyond this many degrees are skipped (upstream test filter).
ANGLE_LIMIT = 99.0


@attrs.frozen
class PoseSample:
    """One evaluated image: ground truth and prediction, ``yaw, pitch, roll`` degrees."""

    name: str
    truth: tuple[float, float, float]
    predicted: tuple[float, float, float]
    box: tuple[float, float, float, float]


@attrs.frozen
class PoseEvaluation(ResultMixin):
    """Mean absolute errors in degrees over the scored samples."""

    mae_yaw: float
    mae_pitch: float
    mae_roll: float
    mae_mean: float
    count: int
    crop: str
    missed: list[str] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    samples: list[PoseSample] = attrs.field(factory=list)


def read_aflw_annotation(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth of one AFLW2000 ``.mat``: (3,) ``yaw, pitch, roll`` degrees and (K, 2) landmarks."""
    data = read_mat(path)
    if "Pose_Para" not in data or "pt2d" not in data:
        raise InputError(f"{path}: expected 'Pose_Para' and 'pt2d' (AFLW2000-3D annotation), found {sorted(data)}")
    pose = np.asarray(data["Pose_Para"], dtype=np.float64).reshape(-1)
    pitch, yaw, roll = np.degrees(pose[:3])
    pts = np.asarray(data["pt2d"], dtype=np.float64)
    if pts.shape[0] != 2:
        pts = pts.T
    return np.array([yaw, pitch, roll]), pts.T


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(4,) ``x1, y1, x2, y2`` spanning all (K, 2) points."""
    pts = np.asarray(points, dtype=np.float64)
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])


def evaluate_aflw(
    directory: str | os.PathLike[str], pose: HeadPose, crop: str = "detector", limit: int | None = None
) -> PoseEvaluation:
    """MAE of ``pose`` on every ``*.jpg`` with a ``.mat`` beside it in ``directory``.

    Parameters
    ----------
    directory:
        AFLW2000-3D style folder.
    pose:
        The estimator (needs a detector for ``crop="detector"``).
    crop:
        ``"detector"`` or ``"landmarks"``.
    limit:
        Evaluate at most this many images (sorted by name).
    """
    if crop not in ("detector", "landmarks"):
        raise InputError(f"crop must be 'detector' or 'landmarks', got {crop!r}")
    if crop == "detector" and pose.detector is None:
        raise InputError("crop='detector' needs a HeadPose with a detector")
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"not a directory: {root}")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() == ".jpg" and p.with_suffix(".mat").is_file())
    if limit is not None:
        images = images[:limit]
    if not images:
        raise InputError(f"{root} has no .jpg images with a .mat annotation beside them")
    samples: list[PoseSample] = []
    missed: list[str] = []
    skipped: list[str] = []
    for path in images:
        truth, points = read_aflw_annotation(path.with_suffix(".mat"))
        if np.abs(truth).max() > ANGLE_LIMIT:
            skipped.append(path.name)
            continue
        image = read_image(path)
        gt_box = landmark_box(points)
        if crop == "landmarks":
            box = gt_box
        else:
            assert pose.detector is not None
            faces = pose.detector.detect(image)
            if not faces:
                missed.append(path.name)
                continue
            overlaps = iou(gt_box[None], np.stack([f.box for f in faces]))[0]
            box = np.asarray(faces[int(np.argmax(overlaps))].box, dtype=np.float64)
        result = pose.predict(image, boxes=box[None])
        face = result[0]
        assert not isinstance(face, list)
        samples.append(
            PoseSample(
                path.name,
                (float(truth[0]), float(truth[1]), float(truth[2])),
                (face.yaw, face.pitch, face.roll),
                (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            )
        )
    if not samples:
        raise InputError(f"no image of {root} could be scored (missed: {missed}, skipped: {skipped})")
    errors = np.abs(np.array([s.predicted for s in samples]) - np.array([s.truth for s in samples]))
    mae = errors.mean(axis=0)
    return PoseEvaluation(
        mae_yaw=float(mae[0]),
        mae_pitch=float(mae[1]),
        mae_roll=float(mae[2]),
        mae_mean=float(mae.mean()),
        count=len(samples),
        crop=crop,
        missed=missed,
        skipped=skipped,
        samples=samples,
    )


def format_evaluation(result: PoseEvaluation, extra: Sequence[str] = ()) -> str:
    """A short human-readable report."""
    lines: list[Any] = [
        f"images scored: {result.count} (crop from {result.crop})",
        f"MAE yaw   {result.mae_yaw:6.2f} deg",
        f"MAE pitch {result.mae_pitch:6.2f} deg",
        f"MAE roll  {result.mae_roll:6.2f} deg",
        f"MAE mean  {result.mae_mean:6.2f} deg",
    ]
    if result.missed:
        lines.append(f"no face found in {len(result.missed)}: {', '.join(result.missed)}")
    if result.skipped:
        lines.append(f"skipped (|angle| > {ANGLE_LIMIT:g} deg): {len(result.skipped)}")
    return "\n".join([*lines, *extra])
