"""Head pose (yaw, pitch, roll in degrees) with FSA-Net, for images, batches and video.

::

    from facelib import HeadPose
    with HeadPose.from_pretrained("fsanet", detector="ultraface-rfb-320") as pose:
        for face in pose.predict("photo.jpg"):
            print(face.box, face.yaw, face.pitch, face.roll)

All faces of all images given to one :meth:`HeadPose.predict` call go through the network
together (one backend call per chunk of ``max_batch`` faces).  With every variant of the card
selected and a merged ``ensemble`` file present, one call runs all three FSA-Net variants and
averages them inside the graph; otherwise each variant runs in turn and the mean is taken here.
Preprocessing (margin, size, colour order, min-max stretch) is read from the model card.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelib.backends.batching import run_batched
from facelib.errors import InputError, ModelCardError
from facelib.io.image import ImageSource, read_image
from facelib.io.video import Frame
from facelib.models.registry import DEFAULT_MODELS
from facelib.processing.fsanet import crop_faces
from facelib.results import FaceBox, HeadPoseFrame, HeadPoseResult
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import DetectorSource, FaceDetectorLike, open_detector

#: Boxes for one image: an (N, 4) array of ``x1, y1, x2, y2`` pixels, or FaceBox objects.
BoxesLike = np.ndarray | Sequence[FaceBox] | Sequence[Sequence[float]]


def _is_single_image(images: object) -> bool:
    if isinstance(images, np.ndarray):
        return images.ndim in (2, 3)
    return isinstance(images, str | os.PathLike) or not isinstance(images, list | tuple)  # None: read_image says


class HeadPose(Task):
    """FSA-Net head pose estimation.

    Parameters
    ----------
    model:
        A ``head_pose`` model package: directory, hub name (``"fsanet"``) or
        :class:`~facelib.models.package.ModelPackage` (``facelib convert fsanet``).
    detector:
        Finds faces when :meth:`predict` gets no boxes: any ``face_detection`` package (path or
        hub name: UltraFace, FaceBoxes; opened on this task's backend and closed with it) or any
        object with ``detect(image) -> list[FaceBox]``; None means boxes must always be given.
    backend, backend_options:
        Where to run the pose network (and a detector given as a package).  A backend named
        without options is tuned for the ``small_models`` workload (ONNX Runtime: one intra-op
        thread; these networks are small and per-face calls are faster without thread hand-offs),
        and batches of ``BATCHED_FROM`` (4) faces or more run on a second session tuned for
        ``batched`` (one thread per usable physical core); benchmarks/bench_defaults.py measures both.
    variants:
        Variant names to run and average (default: every variant of the card, e.g. ``capsule``,
        ``var_capsule``, ``noS_capsule`` as the upstream demos do).
    min_max:
        Override the card's per-crop min-max stretch (upstream demos: on).
    max_batch:
        Largest number of faces per backend call (default: the card's ``max_batch``).
    """

    task_name = "head_pose"
    workload = "small_models"

    def __init__(
        self,
        model: ModelSource,
        *,
        detector: DetectorSource | None = None,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        variants: Sequence[str] | None = None,
        min_max: bool | None = None,
        max_batch: int | None = None,
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        card = self.card
        pre = card.preprocessing
        try:
            self.size = (int(pre["size"][0]), int(pre["size"][1]))
            self.margin = float(pre["margin"])
            self.colour_order = str(pre.get("colour_order", "BGR"))
        except (KeyError, TypeError, IndexError) as exc:
            raise ModelCardError(f"{self.package.root}: head_pose preprocessing needs 'size' and 'margin'") from exc
        self.min_max = bool(pre.get("min_max", True)) if min_max is None else bool(min_max)
        self.max_batch = int(max_batch or pre.get("max_batch", 64))
        if self.max_batch < 1:
            raise InputError(f"max_batch must be at least 1, got {self.max_batch}")
        outputs = card.outputs
        self.order = tuple(outputs.get("order", ("yaw", "pitch", "roll")))
        if sorted(self.order) != ["pitch", "roll", "yaw"]:
            raise ModelCardError(f"{self.package.root}: outputs.order must name yaw, pitch and roll, got {self.order}")
        index = [self.order.index(k) for k in ("yaw", "pitch", "roll")]
        #: Column selector bringing the network's order to (yaw, pitch, roll); a plain slice when equal.
        self._index: slice | list[int] = slice(None) if index == [0, 1, 2] else index
        available: dict[str, str] = dict(outputs.get("variants") or {})
        if not available:
            raise ModelCardError(f"{self.package.root}: outputs.variants names no FSA-Net variant file")
        chosen = list(variants) if variants is not None else list(available)
        unknown = [v for v in chosen if v not in available]
        if unknown or not chosen:
            raise InputError(f"unknown FSA-Net variants {unknown or chosen}; this model has {list(available)}")
        self.variants: tuple[str, ...] = tuple(dict.fromkeys(chosen))
        self._variant_outputs = available
        ensemble = outputs.get("ensemble") or None
        self._ensemble: dict[str, Any] | None = None
        if ensemble and set(self.variants) == set(available) and ensemble.get("role") in card.files:
            self._ensemble = dict(ensemble)
        self.detector: FaceDetectorLike | None = None
        if detector is not None:
            self.detector = open_detector(detector, **self._sub_backend())
            if self.detector is not detector:
                self._own(self.detector)

    @classmethod
    def from_pretrained(
        cls,
        name: str | None = None,
        *,
        detector: DetectorSource | None = DEFAULT_MODELS["face_detection"],
        offline: bool | None = None,
        progress: bool = True,
        hub_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> HeadPose:
        """A HeadPose from facelib's model hub; ``detector`` is a hub name (default UltraFace
        RFB-320), a package path, a detector object or None."""
        hub = {"offline": offline, "progress": progress, **dict(hub_options or {})}
        if isinstance(detector, str):
            from facelib.models.hub import resolve_package

            detector = resolve_package(detector, task="face_detection", **hub)
        return super().from_pretrained(
            name, offline=offline, progress=progress, hub_options=hub_options, detector=detector, **options
        )

    def _repr_options(self) -> dict[str, Any]:
        detector: Any = self.detector
        name = (
            None if detector is None else detector.card.name if isinstance(detector, Task) else type(detector).__name__
        )
        return {"variants": list(self.variants), "detector": name if detector is not None else None}

    # -- inference on crops ------------------------------------------------------------------

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Network inputs (N, 64, 64, 3) float32 for ``boxes`` of an RGB uint8 ``image``."""
        return crop_faces(
            image, boxes, margin=self.margin, size=self.size, colour_order=self.colour_order, min_max=self.min_max
        )

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the network on preprocessed crops.

        Parameters
        ----------
        crops:
            (N, 64, 64, 3) float32 as :meth:`crops` makes them.

        Returns
        -------
        tuple
            (N, 3) float32 ``yaw, pitch, roll`` degrees (mean of the variants) and a dict
            variant -> (N, 3) float32 in the same order.
        """
        crops = np.asarray(crops, dtype=np.float32)
        expected = (self.size[1], self.size[0], 3)
        if crops.ndim != 4 or crops.shape[1:] != expected:
            raise InputError(f"crops must have shape (N, {', '.join(map(str, expected))}), got {crops.shape}")
        n = len(crops)
        if n == 0:
            return np.empty((0, 3), np.float32), {v: np.empty((0, 3), np.float32) for v in self.variants}
        if self._ensemble is not None:
            session = self._session(self._ensemble["role"], batch=n)
            out = run_batched(session, {session.inputs[0].name: crops}, max_batch=self.max_batch)
            # the runtime's own (N, 3) float32 arrays, reordered only when the card's order differs
            names = self._ensemble["variant_outputs"]
            mean = self._ordered(out[self._ensemble["output"]])
            return mean, {v: self._ordered(out[names[v]]) for v in self.variants}
        per_variant = {v: np.empty((n, 3), np.float32) for v in self.variants}
        mean = np.empty((n, 3), np.float32)
        total = np.zeros((n, 3), np.float32)
        for v in self.variants:
            session = self._session(v, batch=len(crops))
            out = run_batched(session, {session.inputs[0].name: crops}, max_batch=self.max_batch)
            per_variant[v][:] = out[self._variant_outputs[v]][:, self._index]
            total += per_variant[v]
        mean[:] = total / np.float32(len(self.variants))
        return mean, per_variant

    def _ordered(self, values: np.ndarray) -> np.ndarray:
        """(N, 3) network output as float32 ``yaw, pitch, roll`` (no copy when already so)."""
        values = np.asarray(values, dtype=np.float32)
        return values if isinstance(self._index, slice) else values[:, self._index]

    # -- public API --------------------------------------------------------------------------

    def predict(
        self,
        images: ImageSource | Sequence[ImageSource],
        boxes: BoxesLike | Sequence[BoxesLike] | None = None,
    ) -> list[HeadPoseResult] | list[list[HeadPoseResult]]:
        """Head pose of every face in one image or a list of images.

        Parameters
        ----------
        images:
            One image (RGB uint8 (H, W, 3) array — grayscale/RGBA/16-bit are converted — or a
            file path) or a list of them.
        boxes:
            Face boxes (``x1, y1, x2, y2`` pixels, (N, 4) array or FaceBox list) for the image,
            or one such entry per image for a list; None runs the detector.

        Returns
        -------
        list
            For one image, a list of :class:`HeadPoseResult` (empty when no face); for a list
            of images, one such list per image.
        """
        single = _is_single_image(images)
        seq: list[ImageSource] = [images] if single else list(images)  # type: ignore[list-item, arg-type]
        if boxes is None:
            per_image: list[Any] = [None] * len(seq)
        elif single:
            per_image = [boxes]
        else:
            per_image = list(boxes)
            if len(per_image) != len(seq):
                raise InputError(f"got {len(seq)} images but {len(per_image)} box lists; give one per image")
        rgbs = [read_image(im) for im in seq]
        faces = [self._faces(rgb, b) for rgb, b in zip(rgbs, per_image)]
        results = self._run(rgbs, faces)
        return results[0] if single else results

    def _faces(self, image: np.ndarray, boxes: Any) -> list[FaceBox]:
        if boxes is None:
            if self.detector is None:
                raise InputError(
                    "this HeadPose has no face detector; pass boxes=..., or create it with detector=... "
                    "(e.g. HeadPose.from_pretrained('fsanet', detector='ultraface-rfb-320'))"
                )
            return list(self.detector.detect(image))
        if isinstance(boxes, FaceBox):
            return [boxes]
        if (
            isinstance(boxes, Sequence)
            and not isinstance(boxes, np.ndarray)
            and boxes
            and all(isinstance(b, FaceBox) for b in boxes)
        ):
            return list(boxes)
        array = np.asarray(boxes, dtype=np.float64)
        if array.size == 0:
            return []
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != 4:
            raise InputError(f"boxes must be (N, 4) x1, y1, x2, y2 pixels or a list of FaceBox; got {array.shape}")
        return [FaceBox(b, 1.0) for b in array]

    def _run(self, images: Sequence[np.ndarray], faces: Sequence[list[FaceBox]]) -> list[list[HeadPoseResult]]:
        batches = [self.crops(image, np.stack([f.box for f in fs])) for image, fs in zip(images, faces) if fs]
        if not batches:
            return [[] for _ in images]
        mean, per_variant = self.predict_crops(np.concatenate(batches))
        out: list[list[HeadPoseResult]] = []
        k = 0
        for fs in faces:
            row = []
            for face in fs:
                row.append(
                    HeadPoseResult(
                        box=face.box,
                        score=face.score,
                        yaw=mean[k, 0],
                        pitch=mean[k, 1],
                        roll=mean[k, 2],
                        variants={v: per_variant[v][k] for v in self.variants},
                    )
                )
                k += 1
            out.append(row)
        return out

    def predict_video(
        self,
        source: str | os.PathLike[str] | int | Iterable[np.ndarray | Frame],
        *,
        max_missed: int | None = None,
    ) -> Iterator[HeadPoseFrame]:
        """Head poses frame by frame, streaming (memory stays bounded).

        Parameters
        ----------
        source:
            A video file, a webcam index, or an iterable of RGB frames / :class:`Frame`.
        max_missed:
            When the detector finds no face, the last boxes are reused (upstream's demo does
            this forever, the default); after ``max_missed`` consecutive misses they are dropped.

        Yields
        ------
        HeadPoseFrame
            One per decoded frame.  A video that ends early (truncated file) simply stops; a
            file with no decodable frame raises :class:`~facelib.errors.MediaReadError`.
        """
        if self.detector is None:
            raise InputError("predict_video needs a face detector; create HeadPose with detector=...")
        last: list[FaceBox] = []
        missed = 0
        for frame in _frames(source):
            found = list(self.detector.detect(frame.image))
            reused = False
            if found:
                last, missed = found, 0
            elif last and (max_missed is None or missed < max_missed):
                found, reused = last, True
                missed += 1
            else:
                last = []
            faces = self._run([frame.image], [found])[0]
            yield HeadPoseFrame(frame.index, frame.timestamp_ms, faces, reused, frame.image)


def _frames(source: str | os.PathLike[str] | int | Iterable[np.ndarray | Frame]) -> Iterator[Frame]:
    if isinstance(source, str | os.PathLike | int):
        from facelib.io.video import iter_frames

        if not isinstance(source, int) and not Path(source).exists():
            from facelib.errors import MediaReadError

            raise MediaReadError(f"video not found: {source}")
        yield from iter_frames(source)
        return
    for i, item in enumerate(source):
        if isinstance(item, Frame):
            yield item
        else:
            yield Frame(i, 1000.0 * i / 30.0, read_image(item))
