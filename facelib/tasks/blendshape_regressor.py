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

import attrs
import numpy as np

from facelib.backends.batching import run_batched
from facelib.errors import InputError, ModelCardError, ModelFileError
from facelib.io.image import to_rgb_uint8
from facelib.io.video import Frame
from facelib.models.package import ModelPackage
from facelib.processing.arkit import ARKIT_NAMES, arkit_index
from facelib.processing.crop import INTERPOLATIONS, face_crop
from facelib.results import ResultMixin
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.blendshape_results import FaceBlendshapes
from facelib.tasks.detection import DetectorSource, FaceBox, FaceDetectorLike, open_detector

#: Head-pose output units a card may declare, as factors to degrees.
HEAD_POSE_UNITS = {"degrees": 1.0, "radians": 180.0 / np.pi, "livelink": 180.0}


@attrs.frozen
class RegressorSpec:
    """Everything the engine reads from a regressor card (validated)."""

    input_name: str
    output_name: str
    size: tuple[int, int]  # (height, width)
    layout: str  # "NCHW" or "NHWC"
    bgr: bool
    pixel_scale: float
    mean: np.ndarray  # (3,) float32
    std: np.ndarray  # (3,) float32
    margin: float
    square: bool
    interpolation: str
    names: tuple[str, ...]
    clip: bool
    activation: str
    arkit_columns: np.ndarray  # (52,) index into the outputs, -1 = absent
    extra_columns: dict[str, int]
    head_pose_columns: tuple[int, int, int] | None
    head_pose_factor: float
    min_face: float

    @classmethod
    def from_package(cls, package: ModelPackage) -> RegressorSpec:
        card = package.card
        where = f"regressor card of {package.root}"
        pre, out = card.preprocessing, card.outputs
        regressor = card.file("regressor")
        if len(regressor.inputs) != 1:
            raise ModelCardError(f"{where}: the regressor must have exactly one image input")
        try:
            size = tuple(int(v) for v in pre["input_size"])
            layout = str(pre.get("layout", "NCHW")).upper()
            colour = str(pre.get("colour_order", "RGB")).upper()
            pixel_scale = float(pre.get("pixel_scale", 1.0 / 255.0))
            mean = np.asarray(pre.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(-1)
            std = np.asarray(pre.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(-1)
            margin = float(pre.get("margin", 0.0))
            make_square = bool(pre.get("square", True))
            interpolation = str(pre.get("interpolation", "linear"))
            min_face = float(pre.get("min_face", 8.0))
            names = tuple(str(n) for n in out["names"])
            clip = bool(out.get("clip", True))
            activation = str(out.get("activation", "none"))
            output_name = str(out.get("output") or (regressor.outputs[0].name if regressor.outputs else ""))
            head = out.get("head_pose")
        except KeyError as exc:
            raise ModelCardError(f"{where} lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ModelCardError(f"{where} has a malformed value: {exc}") from exc
        problems = []
        if len(size) != 2 or min(size) < 1:
            problems.append(f"input_size must be [height, width], got {pre.get('input_size')}")
        if layout not in ("NCHW", "NHWC"):
            problems.append(f"layout must be NCHW or NHWC, got {layout!r}")
        if colour not in ("RGB", "BGR"):
            problems.append(f"colour_order must be RGB or BGR, got {colour!r}")
        if mean.shape not in ((1,), (3,)) or std.shape not in ((1,), (3,)) or (std == 0).any():
            problems.append("mean and std need 1 or 3 values and std must not be 0")
        if margin < 0 or margin > 2:
            problems.append(f"margin must be in [0, 2], got {margin}")
        if interpolation not in INTERPOLATIONS:
            problems.append(f"interpolation must be one of {sorted(INTERPOLATIONS)}")
        if activation not in ("none", "sigmoid"):
            problems.append(f"activation must be 'none' or 'sigmoid', got {activation!r}")
        if not names:
            problems.append("outputs.names is empty")
        if len(set(names)) != len(names):
            problems.append("outputs.names has duplicates")
        if regressor.outputs and output_name not in {o.name for o in regressor.outputs}:
            problems.append(f"output {output_name!r} is not an output of the regressor file")
        if problems:
            raise ModelCardError(f"{where}: " + "; ".join(problems))

        head_cols: tuple[int, int, int] | None = None
        factor = 1.0
        if head:
            try:
                head_names = [str(n) for n in head["names"]]
                factor = HEAD_POSE_UNITS[str(head.get("unit", "degrees"))]
                cols = [names.index(n) for n in head_names]
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelCardError(
                    f"{where}: outputs.head_pose needs 'names' (3 of outputs.names: yaw, pitch, roll) "
                    f"and 'unit' in {sorted(HEAD_POSE_UNITS)} ({exc})"
                ) from None
            if len(cols) != 3:
                raise ModelCardError(f"{where}: outputs.head_pose.names needs 3 names (yaw, pitch, roll)")
            head_cols = (cols[0], cols[1], cols[2])
        arkit_columns = np.full(len(ARKIT_NAMES), -1, np.int64)
        extra: dict[str, int] = {}
        for col, name in enumerate(names):
            if head_cols is not None and col in head_cols:
                continue
            idx = arkit_index(name)
            if idx is None:
                extra[name] = col
            elif arkit_columns[idx] >= 0:
                raise ModelCardError(
                    f"{where}: outputs {names[arkit_columns[idx]]!r} and {name!r} both map to ARKit "
                    f"{ARKIT_NAMES[idx]!r}"
                )
            else:
                arkit_columns[idx] = col

        spec = cls(
            input_name=regressor.inputs[0].name,
            output_name=output_name,
            size=(size[0], size[1]),
            layout=layout,
            bgr=colour == "BGR",
            pixel_scale=pixel_scale,
            mean=mean,
            std=std,
            margin=margin,
            square=make_square,
            interpolation=interpolation,
            names=names,
            clip=clip,
            activation=activation,
            arkit_columns=arkit_columns,
            extra_columns=extra,
            head_pose_columns=head_cols,
            head_pose_factor=factor,
            min_face=min_face,
        )
        spec.check_shapes(regressor.inputs[0].shape, regressor.outputs[0].shape if regressor.outputs else None, where)
        return spec

    def check_shapes(self, input_shape: Sequence[Any], output_shape: Sequence[Any] | None, where: str) -> None:
        """Raise :class:`ModelCardError` when fixed dims of the ONNX I/O contradict the card."""
        if len(input_shape) != 4:
            raise ModelCardError(f"{where}: the regressor input must be rank 4, the card says {list(input_shape)}")
        h, w = self.size
        want = (None, 3, h, w) if self.layout == "NCHW" else (None, h, w, 3)
        for have, expect in zip(input_shape, want):
            if expect is not None and isinstance(have, int) and have > 0 and have != expect:
                raise ModelCardError(
                    f"{where}: regressor input shape {list(input_shape)} does not fit input_size {[h, w]} "
                    f"and layout {self.layout}"
                )
        if output_shape:
            last = output_shape[-1]
            if isinstance(last, int) and last > 0 and last != len(self.names):
                raise ModelCardError(f"{where}: the regressor has {last} outputs but the card names {len(self.names)}")

    def tensor(self, crops: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 RGB crops -> the model's input tensor (float32)."""
        x = crops[..., ::-1] if self.bgr else crops
        x = (x.astype(np.float32) * np.float32(self.pixel_scale) - self.mean) / self.std
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=np.float32)


@attrs.frozen
class RegressorFace(ResultMixin):
    """One face from a regressor: the canonical result plus what does not fit it.

    Attributes
    ----------
    face:
        The :class:`FaceBlendshapes` (52 ARKit weights; shapes the model lacks are 0).
    extra:
        Outputs whose names are not ARKit blendshapes (name -> value), unclipped.
    raw:
        (K,) float32 outputs as the model returned them (after the card's activation).
    """

    face: FaceBlendshapes
    extra: dict[str, float]
    raw: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))


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
