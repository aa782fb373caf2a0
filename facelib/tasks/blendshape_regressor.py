"""Expression capture with a user's image regressor: detect faces, crop, regress blendshapes.

A "regressor" package (``task: blendshapes``, ``variant: regressor``; schema in
docs/regressor-packages.md) holds an ONNX model that maps a face crop to K numbers, and declares
how to feed it (input size, colour order, scaling, mean/std, layout, crop margin, square or not)
and what the K outputs are (names such as ARKit's, in any order and spelling; 51, 52, 57, ...).
Faces come from a detector package inside the regressor package (``preprocessing.detector``)
or from any :class:`~facelib.tasks.detection.FaceDetectorLike` passed in.

Names that are not ARKit blendshapes are not dropped silently: they are returned in
:attr:`RegressorFace.extra` (name -> value) by :meth:`RegressorEngine.predict`, and listed in
:attr:`RegressorEngine.extra_names`.  Outputs named in ``outputs.head_pose`` become the face's
``head_pose`` (yaw, pitch, roll in degrees) instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from facelib.backends.batching import run_batched
from facelib.errors import InputError, ModelCardError, ModelFileError
from facelib.io.image import to_rgb_uint8
from facelib.io.video import Frame
from facelib.models.package import ModelPackage
from facelib.models.regressor_spec import RegressorSpec
from facelib.processing.arkit import ARKIT_NAMES
from facelib.processing.regressor_crop import face_crop
from facelib.results import FaceBlendshapes, FaceBox, RegressorFace
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import DetectorSource, FaceDetectorLike, open_detector


class RegressorEngine(Task):
    """Detector + crop + regressor capture engine (``BlendshapeCapture`` dispatches here).

    Parameters
    ----------
    package:
        A ``blendshapes`` package with variant ``regressor``.
    backend, backend_options:
        Backend for the regressor (and for the bundled detector).
    detector:
        Any object with ``detect(image_rgb) -> list[FaceBox]``; None = the detector package the
        card declares in ``preprocessing.detector``.
    max_faces:
        Keep at most this many faces per image (best detector scores first); None = all.
    """

    task_name = "blendshapes"
    workload = "interleaved"

    def __init__(
        self,
        package: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        detector: DetectorSource | None = None,
        max_faces: int | None = None,
    ) -> None:
        super().__init__(package, backend=backend, backend_options=backend_options)
        if self.card.variant != "regressor":
            raise ModelCardError(f"{self.package.root} is a {self.card.variant!r} blendshape model, not a regressor")
        self.spec = RegressorSpec.from_package(self.package)
        self.extra_names: tuple[str, ...] = tuple(self.spec.extra_columns)
        self.detector: FaceDetectorLike = (
            open_detector(detector, **self._sub_backend()) if detector is not None else self._bundled_detector()
        )
        if self.detector is not detector:
            self._own(self.detector)
        if max_faces is not None and max_faces < 1:
            raise InputError(f"max_faces must be >= 1, got {max_faces}")
        self.max_faces = max_faces

    def _bundled_detector(self) -> FaceDetectorLike:
        ref = self.card.preprocessing.get("detector")
        if not isinstance(ref, dict) or "package" not in ref:
            raise ModelCardError(
                f"{self.package.root}: the card declares no detector (preprocessing.detector.package); "
                "pass detector=... (any object with detect(image) -> list[FaceBox])"
            )
        root = (self.package.root / str(ref["package"])).resolve()
        if not root.is_relative_to(self.package.root.resolve()):
            raise ModelCardError(f"{self.package.root}: the detector package points outside the package")
        det_package = ModelPackage.load(root)
        if det_package.card.task != "face_detection":
            raise ModelCardError(f"{root} is a {det_package.card.task!r} package, not a face detector")
        options = {k: ref[k] for k in ("score_threshold", "iou_threshold") if k in ref}
        return open_detector(det_package, **self._sub_backend(), **options)

    def regress(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 RGB crops of the input size -> (N, K) float32 outputs (after activation)."""
        spec = self.spec
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (*spec.size, 3):
            raise InputError(f"crops must be (N, {spec.size[0]}, {spec.size[1]}, 3), got {crops.shape}")
        if len(crops) == 0:
            out = np.zeros((0, len(spec.names)), np.float32)
        else:
            result = run_batched(self._session("regressor"), {spec.input_name: spec.tensor(crops)})
            if spec.output_name not in result:
                raise ModelFileError(f"the regressor returned {sorted(result)}, not {spec.output_name!r}")
            out = np.asarray(result[spec.output_name], np.float32).reshape(len(crops), -1)
            if out.shape[1] != len(spec.names):
                raise ModelCardError(
                    f"the regressor returned {out.shape[1]} values per face but the card names "
                    f"{len(spec.names)}; fix outputs.names in {self.package.root / 'facelib.json'}"
                )
        if spec.activation == "sigmoid":
            return (1.0 / (1.0 + np.exp(-out))).astype(np.float32)
        return out.astype(np.float32)

    def crops(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """(N, h, w, 3) uint8 RGB crops of ``boxes`` in an RGB image (the card's crop rule)."""
        spec = self.spec
        out = [face_crop(image, b, spec.size, spec.margin, spec.square, spec.interpolation) for b in boxes]
        return np.stack(out) if out else np.zeros((0, *spec.size, 3), np.uint8)

    def to_face(self, box: FaceBox, values: np.ndarray) -> RegressorFace:
        """Map one face's (K,) outputs to the canonical result."""
        spec = self.spec
        weights = np.zeros(len(ARKIT_NAMES), np.float32)
        have = spec.arkit_columns >= 0
        weights[have] = values[spec.arkit_columns[have]]
        if spec.clip:
            weights = np.clip(weights, 0.0, 1.0)
        head = None
        if spec.head_pose_columns is not None:
            head = (values[list(spec.head_pose_columns)] * spec.head_pose_factor).astype(np.float32)
        face = FaceBlendshapes(
            box=np.asarray(box.box, np.float32), score=box.score, blendshapes=weights, head_pose=head
        )
        extra = {name: float(values[col]) for name, col in spec.extra_columns.items()}
        return RegressorFace(face, extra, values.astype(np.float32))

    def predict(self, image: np.ndarray) -> list[RegressorFace]:
        """All faces in an RGB uint8 (H, W, 3) image with extras and raw outputs, best detection first."""
        image = to_rgb_uint8(image)
        boxes = [b for b in self.detector.detect(image) if min(b.width, b.height) >= self.spec.min_face]
        if self.max_faces is not None:
            boxes = boxes[: self.max_faces]
        if not boxes:
            return []
        values = self.regress(self.crops(image, [b.box for b in boxes]))
        return [self.to_face(b, v) for b, v in zip(boxes, values)]

    def process(self, image: np.ndarray, timestamp_ms: float = 0.0) -> list[FaceBlendshapes]:
        """Blendshapes of every face in an RGB uint8 (H, W, 3) image ([] when there is none).

        Every image is processed on its own (``timestamp_ms`` is accepted for the capture-engine
        protocol and not used).
        """
        return [r.face for r in self.predict(image)]

    def stream(self, frames: Iterator[Frame]) -> Iterator[tuple[Frame, list[FaceBlendshapes]]]:
        """Each frame with its faces (capture-engine protocol)."""
        for frame in frames:
            yield frame, self.process(frame.image, frame.timestamp_ms)

    def reset(self) -> None:
        """Nothing to forget: no tracking (capture-engine protocol)."""
