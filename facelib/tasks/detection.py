"""What every face detector returns, the protocol tasks use to accept any detector, and the one
factory that opens a detector package with the class its card names (:func:`open_detector`).

Adding a detector: a :class:`~facelib.tasks.base.Task` with ``task_name = "face_detection"`` and
``detect(image) -> list[FaceBox]``, listed in :data:`DETECTOR_CLASSES` under its card's variant.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facelib.errors import InputError
from facelib.models.package import ModelPackage
from facelib.results import FaceBox


@runtime_checkable
class FaceDetectorLike(Protocol):
    """Anything with ``detect(image) -> list[FaceBox]`` (image: RGB uint8 (H, W, 3))."""

    def detect(self, image: np.ndarray) -> list[FaceBox]: ...


#: Detector class ("module:Class") by the ``variant`` of a model card: ``face_detection``
#: packages, and ``mediapipe`` blendshape packages (their BlazeFace detector); other
#: ``face_detection`` variants (UltraFace's ``RFB-320``, ``slim-320``...) use
#: :data:`DEFAULT_DETECTOR_CLASS`.
DETECTOR_CLASSES: dict[str, str] = {
    "faceboxes": "facelib.tasks.faceboxes:FaceBoxesDetector",
    "mediapipe": "facelib.tasks.blazeface:BlazeFaceDetector",
}
#: Card tasks whose packages can serve as detectors.
DETECTOR_TASKS = ("face_detection", "blendshapes")
DEFAULT_DETECTOR_CLASS = "facelib.tasks.face_detection:FaceDetector"

#: What tasks accept as a detector: an object with ``detect``, or a ``face_detection`` package
#: (directory, hub name or loaded package).
DetectorSource = FaceDetectorLike | str | os.PathLike[str] | ModelPackage


def open_detector(
    source: DetectorSource,
    *,
    backend: Any = "auto",
    backend_options: Mapping[str, Any] | None = None,
    hub_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> FaceDetectorLike:
    """A face detector from what a user gives.

    An object with ``detect(image) -> list[FaceBox]`` is returned unchanged.  A package (path, hub
    name or :class:`~facelib.models.package.ModelPackage`) is resolved as a ``face_detection``
    model, or a ``mediapipe`` package for its BlazeFace (``hub_options``: ``offline``,
    ``progress``, ``mirror``...) and opened on ``backend``
    with the class its card's variant names (:data:`DETECTOR_CLASSES`) and ``options``
    (``score_threshold``...); the caller owns (and closes) what this creates.
    """
    if isinstance(source, FaceDetectorLike):
        return source
    from facelib.models.hub import resolve_package

    if not isinstance(source, str | os.PathLike | ModelPackage):
        raise InputError(
            "detector must be a face_detection model package (path or hub name), or an object with "
            f"detect(image) -> list[FaceBox]; got {type(source).__name__}"
        )
    package = resolve_package(source, task=DETECTOR_TASKS, **dict(hub_options or {}))
    variant = package.card.variant
    if package.card.task != "face_detection" and variant not in DETECTOR_CLASSES:
        raise InputError(f"{package.root} is a {variant!r} {package.card.task} package, which holds no face detector")
    module, _, name = DETECTOR_CLASSES.get(variant, DEFAULT_DETECTOR_CLASS).partition(":")
    cls = getattr(importlib.import_module(module), name)
    detector: FaceDetectorLike = cls(package, backend=backend, backend_options=backend_options, **options)
    return detector
