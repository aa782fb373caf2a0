"""MotionTransfer: animate a source face image with the motion of a driving video (First Order Motion Model).

Streaming: driving frames are decoded, animated and handed on (or encoded) in batches of
``batch_size``; memory does not grow with the length of the video.  The source-only part of the
generator (its encoder features and keypoints) runs once per source image.

Reference frame ("best frame"): upstream animates forward from driving frame *i* and backward
from *i* to 0, both passes using frame *i* as the initial driving frame, and concatenates
``reversed(backward) + forward[1:]``.  Every output frame *t* therefore depends only on driving
frame *t*, the source and frame *i*; facelib gets the identical video in one forward streaming
pass once frame *i*'s keypoints are known (for ``best_frame="auto"`` a first pass over the
video computes face landmarks only, keeping nothing but the running best).

Example::

    with MotionTransfer("fomm-vox-256") as mt:
        mt.animate_to_file("face.png", "driving.mp4", "out.mp4")   # audio of driving.mp4 kept
        for frame in mt.animate("face.png", "driving.mp4"):          # float32 (256, 256, 3)
            ...
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import numpy as np

from facelib.backends.batching import run_batched
from facelib.errors import InputError, MediaReadError, NoFaceError
from facelib.io.image import ImageSource, read_image
from facelib.processing import fomm
from facelib.processing.fomm_crop import CropBox, crop, paste_back, square_box
from facelib.results import MotionResult, MotionSummary
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import DetectorSource, FaceDetectorLike, open_detector

if TYPE_CHECKING:
    from facelib.tasks.face_landmarker import FaceLandmarker

#: ``landmarks_fn(image_rgb_uint8) -> (P, 2) landmarks in pixels, or None when there is no face``.
LandmarksFn = Callable[[np.ndarray], "np.ndarray | None"]
#: What ``animate`` takes as driving input.
DrivingSource = str | os.PathLike[str] | int | np.ndarray | Iterable[np.ndarray]

KP = tuple[np.ndarray, np.ndarray]


@attrs.frozen
class SourceState:
    """Everything computed once per source image.

    ``image`` is the model input (3, H, W) float32; ``full`` the original RGB uint8 image and
    ``box`` the face crop box in it (None without cropping).
    """

    image: np.ndarray
    features: np.ndarray
    small: np.ndarray
    kp: KP
    full: np.ndarray
    box: CropBox | None


class FaceCropper:
    """Square face crops for FOMM: detect, enlarge by ``margin``, square, resize to ``size``.

    ``detector`` is anything with ``detect(image_rgb) -> list[FaceBox]``; the highest-scoring
    face is used.
    """

    def __init__(self, detector: FaceDetectorLike, margin: float = 0.6, size: int = 256) -> None:
        if not isinstance(detector, FaceDetectorLike):
            raise InputError("detector must have a detect(image) -> list[FaceBox] method")
        self.detector = detector
        self.margin = float(margin)
        self.size = int(size)

    def find(self, image: np.ndarray) -> CropBox | None:
        """The crop box of the best face in an RGB uint8 image, or None."""
        faces = self.detector.detect(image)
        if not faces:
            return None
        best = max(faces, key=lambda f: f.score)
        return square_box(best.box, self.margin)

    def box(self, image: np.ndarray, what: str = "image") -> CropBox:
        """Like :meth:`find` but raises :class:`NoFaceError` when there is no face."""
        found = self.find(image)
        if found is None:
            raise NoFaceError(f"no face found in the {what}; pass an image with a visible face or run without cropping")
        return found

    def crop(self, image: np.ndarray, box: CropBox) -> np.ndarray:
        return crop(image, box, self.size)


def landmarks_fn_of(landmarker: FaceLandmarker) -> LandmarksFn:
    """A ``landmarks_fn`` from an image-mode FaceLandmarker (x, y pixels of its 478 points)."""

    def landmarks(image: np.ndarray) -> np.ndarray | None:
        faces = landmarker.detect(image).faces
        if not faces:
            return None
        return np.asarray(faces[0].landmarks, dtype=np.float64)[:, :2]

    return landmarks


class _Driving:
    """A driving source that can be iterated (re-opened when it is a file or an in-memory array)."""

    def __init__(self, source: DrivingSource) -> None:
        self.fps = 30.0
        self.path: Path | None = None
        self.live = False
        self._array: np.ndarray | Sequence[np.ndarray] | None = None
        self._once: Iterator[np.ndarray] | None = None
        if isinstance(source, str | os.PathLike):
            from facelib.io.video import VideoReader

            self.path = Path(source)
            with VideoReader(self.path) as reader:
                self.fps = reader.fps
        elif isinstance(source, int) and not isinstance(source, bool):
            self.camera = source
            self.live = True
        elif isinstance(source, np.ndarray):
            if source.ndim != 4 or source.shape[-1] not in (3, 4):
                raise InputError(f"driving frames must be an array (T, H, W, 3), got shape {source.shape}")
            self._array = source
        elif isinstance(source, Sequence) and not isinstance(source, str):
            self._array = list(source) if not isinstance(source, list) else source
        elif isinstance(source, Iterable):
            self._once = iter(cast(Iterable[np.ndarray], source))
        else:
            raise InputError(f"driving must be a video path, a webcam index or frames, got {type(source).__name__}")

    @property
    def reopenable(self) -> bool:
        return self.path is not None or self._array is not None

    def frames(self) -> Iterator[np.ndarray]:
        if self.path is not None:
            from facelib.io.video import VideoReader

            with VideoReader(self.path) as reader:
                for frame in reader:
                    yield frame.image
        elif self.live:
            from facelib.io.video import VideoReader

            with VideoReader(self.camera) as reader:
                for frame in reader:
                    yield frame.image
        elif self._array is not None:
            yield from self._array
        else:
            if self._once is None:
                raise InputError("a one-shot frame iterator can be read only once; pass a list or a file")
            once, self._once = self._once, None
            yield from once


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


class MotionTransfer(Task):
    """Animate a source image with a driving video (First Order Motion Model).

    Parameters
    ----------
    model:
        A ``motion_transfer`` model package: directory, hub name (``"fomm-vox-256"``) or
        :class:`~facelib.models.package.ModelPackage` (``facelib convert fomm ...``).
    backend, backend_options:
        Where to run (``"auto"``, ``"onnxruntime"``, a plugin name or a :class:`Backend`); the
        detector and landmarker this task opens run there too.
    movement:
        ``"relative"`` (default; the source keeps its face shape and moves as the driver moves
        relative to the reference frame) or ``"absolute"`` (driving keypoints as they are).
    adapt_scale:
        Scale relative movement by the ratio of keypoint convex-hull sizes (source / reference).
    best_frame:
        Reference driving frame: None (the first frame), an index, or ``"auto"`` (the frame whose
        face landmarks best match the source's; needs ``landmarks_fn`` or facelib's
        FaceLandmarker).
    batch_size:
        Frames per kp detector / generator call (default 4; a backend with a fixed batch size
        uses its own; a webcam always runs frame by frame).
    landmarks_fn:
        ``image_rgb_uint8 -> (P, 2) pixel landmarks | None`` for ``best_frame="auto"``.
    landmarker:
        Without ``landmarks_fn``: the FaceLandmarker model package (path or hub name; default
        the hub's) used for ``"auto"``; opened on first use and closed with this task.
    detector:
        A face detector to crop source and driving faces (``crop``): any ``face_detection``
        package (path or hub name) or object with ``detect(image) -> list[FaceBox]``.
    crop:
        Crop a square face region (``margin``) from the source and from the driving video
        (one fixed box: the first driving frame with a face) before animating.
    paste_back:
        With ``crop``: put each animated face back into the full source image.
    margin:
        With ``crop``: how much the face box is enlarged (fraction of its size) before squaring.
    """

    task_name = "motion_transfer"
    #: the keypoint detector and the generator take turns on every frame: spin-waiting only inside
    #: a run (benchmarks/bench_defaults.py: spinning left on between runs cost 1.08-1.10x)
    workload = "interleaved"

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        movement: fomm.MotionMode | str = fomm.MotionMode.RELATIVE,
        adapt_scale: bool = False,
        best_frame: int | str | None = None,
        batch_size: int = 4,
        landmarks_fn: LandmarksFn | None = None,
        landmarker: ModelSource | None = None,
        detector: DetectorSource | None = None,
        crop: bool = False,
        paste_back: bool = False,
        margin: float = 0.6,
    ) -> None:
        try:
            self.movement = fomm.MotionMode(movement)
        except ValueError:
            raise InputError(f"movement must be 'relative' or 'absolute', got {movement!r}") from None
        if best_frame is not None and best_frame != "auto" and not (isinstance(best_frame, int) and best_frame >= 0):
            raise InputError(f"best_frame must be None, a frame index >= 0 or 'auto', got {best_frame!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if paste_back and not crop:
            raise InputError("paste_back needs crop=True")
        if crop and detector is None:
            raise InputError("crop=True needs a face detector (detector='ultraface-rfb-320' or a detector object)")
        super().__init__(model, backend=backend, backend_options=backend_options)
        meta = self.card.metadata
        size = self.card.preprocessing.get("size", (256, 256))
        self.size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.num_kp = int(meta.get("num_kp", 10))
        self.align_corners = bool(meta.get("align_corners", False))
        self.adapt_scale = bool(adapt_scale)
        self.best_frame = best_frame
        self.batch_size = batch_size
        self.landmarks_fn = landmarks_fn
        self.landmarker = landmarker
        self.cropper: FaceCropper | None = None
        if crop and detector is not None:
            found = open_detector(detector, **self._sub_backend())
            if found is not detector:
                self._own(found)
            self.cropper = FaceCropper(found, margin, self.size[0])
        self.paste_back = bool(paste_back)

    def _repr_options(self) -> dict[str, Any]:
        return {
            "movement": self.movement.value,
            "adapt_scale": self.adapt_scale,
            "best_frame": self.best_frame,
            "batch_size": self.batch_size,
            "crop": self.cropper is not None,
        }

    def _landmarks(self) -> LandmarksFn:
        """``landmarks_fn``, or one made from a FaceLandmarker this task opens (and closes)."""
        if self.landmarks_fn is None:
            from facelib.tasks.face_landmarker import FaceLandmarker

            model = self.landmarker if self.landmarker is not None else FaceLandmarker.default_model()
            self.landmarks_fn = landmarks_fn_of(self._own(FaceLandmarker(model, **self._sub_backend())))
        return self.landmarks_fn

    # -- model calls ----------------------------------------------------------------------------

    def keypoints(self, images: np.ndarray | Sequence[np.ndarray]) -> KP:
        """Keypoints of RGB image(s): value (N, K, 2) and jacobian (N, K, 2, 2), float32.

        Images are uint8 or float in [0, 1], (H, W, 3) or a sequence/array of them; other
        sizes are resized to the model's.
        """
        x = fomm.to_model_input(images, self.size)
        return self._kp(x)

    def _kp(self, x: np.ndarray) -> KP:
        out = self._run("kp_detector", {"image": x}, ("image",))
        return out["value"], out["jacobian"]

    def prepare_source(self, source: ImageSource | SourceState) -> SourceState:
        """Read, (crop), resize and encode the source image once (float input is kept unrounded)."""
        if isinstance(source, SourceState):
            return source
        full = read_image(source) if not (isinstance(source, np.ndarray) and source.dtype != np.uint8) else source
        box = None
        image = full
        if self.cropper is not None:
            full_u8 = read_image(full) if full.dtype != np.uint8 else full
            box = self.cropper.box(full_u8, "source image")
            image = self.cropper.crop(full, box)
        x = fomm.to_model_input(image, self.size)
        enc = self._run("source_encoder", {"source": x}, ("source",))
        kp = self._kp(x)
        return SourceState(x[0], enc["source_features"], enc["source_small"], kp, full, box)

    def _run(
        self, role: str, feeds: dict[str, np.ndarray], batched: Sequence[str], shared: Sequence[str] = ()
    ) -> dict[str, np.ndarray]:
        """Run ``role`` on feeds whose ``batched`` inputs share a leading batch axis; ``shared``
        inputs hold one item for the whole batch (see :func:`~facelib.backends.batching.run_batched`)."""
        return run_batched(self._session(role), feeds, batched, shared=shared)

    def generate(self, state: SourceState, kp_driving: KP) -> np.ndarray:
        """Generator on N normalised driving keypoints -> float32 (N, H, W, 3) RGB in [0, 1]."""
        value, jac = kp_driving
        feeds = {
            "source_features": state.features,
            "source_small": state.small,
            "kp_source_value": state.kp[0],
            "kp_source_jacobian": state.kp[1],
            "kp_driving_value": value,
            "kp_driving_jacobian": jac,
        }
        shared = ("source_features", "source_small", "kp_source_value", "kp_source_jacobian")
        out = self._run("generator", feeds, ("kp_driving_value", "kp_driving_jacobian"), shared)
        return fomm.from_model_output(out["prediction"])

    # -- driving video ----------------------------------------------------------------------

    def _driving_box(self, driving: _Driving) -> CropBox | None:
        if self.cropper is None:
            return None
        frames = driving.frames() if driving.reopenable else None
        if frames is None:
            return None  # decided on the first frame of the single pass
        for image in frames:
            found = self.cropper.find(np.asarray(read_image(image)))
            if found is not None:
                return found
        raise NoFaceError("no face found in any frame of the driving video; run without cropping")

    def _model_frames(self, frames: Iterable[np.ndarray], box: CropBox | None) -> Iterator[np.ndarray]:
        first = True
        for image in frames:
            arr = np.asarray(image)
            if self.cropper is not None:
                if box is None and first:
                    box = self.cropper.box(read_image(arr), "first driving frame")
                assert box is not None
                arr = self.cropper.crop(arr, box)
            first = False
            yield arr

    def find_best_frame(self, source: ImageSource | SourceState, driving: DrivingSource | _Driving) -> int:
        """Index of the driving frame whose landmarks best match the source's (upstream's rule).

        Landmarks are taken on the model-size (cropped) images, centred and scaled by the
        square root of their convex-hull area; the frame with the least squared distance wins.
        """
        state = source if isinstance(source, SourceState) else self.prepare_source(source)
        drv = driving if isinstance(driving, _Driving) else _Driving(driving)
        fn = self._landmarks()
        src_img = fomm.to_uint8(state.image.transpose(1, 2, 0))
        src_lm = fn(src_img)
        if src_lm is None:
            raise NoFaceError("best_frame='auto': no face landmarks found in the source image")
        search = fomm.BestFrameSearch(src_lm)
        box = self._driving_box(drv)
        for image in self._model_frames(drv.frames(), box):
            x = fomm.to_model_input(image, self.size)
            search.update(fn(fomm.to_uint8(x[0].transpose(1, 2, 0))))
        if search.count == 0:
            raise MediaReadError("the driving video has no frames")
        return search.index

    def _reference_kp(self, drv: _Driving, index: int, box: CropBox | None) -> KP:
        for i, image in enumerate(self._model_frames(drv.frames(), box)):
            if i == index:
                v, j = self.keypoints(image)
                return v[0], j[0]
        raise InputError(f"best_frame {index} is past the end of the driving video")

    def animate(self, source: ImageSource | SourceState, driving: DrivingSource) -> Iterator[np.ndarray]:
        """Yield the animated frames one by one, in driving order.

        Returns float32 (H, W, 3) RGB frames in [0, 1]: the model size (256x256), or the full
        source image size with ``paste_back``.  The source is encoded and the driving input opened
        at once; frames are then produced lazily, ``batch_size`` at a time.
        """
        state = source if isinstance(source, SourceState) else self.prepare_source(source)
        drv = _Driving(driving)  # a missing or unreadable video fails here, before iteration
        return self._animate(state, drv)

    def predict(self, source: ImageSource | SourceState, driving: DrivingSource) -> MotionResult:
        """Animate a whole (finite) driving input in memory; see :meth:`animate` for streaming.

        Returns a :class:`MotionResult`: (T, H, W, 3) float32 frames, the driving frame rate and
        the reference frame.  A webcam never ends: use :meth:`animate` or :meth:`animate_to_file`.
        """
        state = source if isinstance(source, SourceState) else self.prepare_source(source)
        drv = _Driving(driving)
        if drv.live:
            raise InputError(
                "predict needs a video file or frames; animate a webcam with animate() or animate_to_file()"
            )
        info: dict[str, Any] = {}
        frames = np.stack(list(self._animate(state, drv, info))).astype(np.float32, copy=False)
        return MotionResult(frames, drv.fps, int(info.get("reference_frame", 0)))

    def _animate(self, state: SourceState, drv: _Driving, info: dict[str, Any] | None = None) -> Iterator[np.ndarray]:
        reference: int | None = None
        initial: KP | None = None
        box = self._driving_box(drv)
        if self.best_frame is not None:
            if not drv.reopenable and self.best_frame != 0:
                raise InputError(
                    "best_frame other than 0 needs a video file or a frame list (a webcam or a one-shot "
                    "iterator cannot be read twice)"
                )
            reference = self.find_best_frame(state, drv) if self.best_frame == "auto" else int(self.best_frame)
            if reference != 0:
                initial = self._reference_kp(drv, reference, box)
        if info is not None:
            info["reference_frame"] = reference or 0
        count = 0
        full: np.ndarray | None = None
        if self.paste_back and state.box is not None:
            full = state.full.astype(np.float32) / np.float32(255.0) if state.full.dtype == np.uint8 else state.full
        batch_size = 1 if drv.live else self.batch_size  # a webcam wants each frame at once
        for batch in _batches(self._model_frames(drv.frames(), box), batch_size):
            x = fomm.to_model_input(batch, self.size)
            value, jac = self._kp(x)
            if initial is None:
                initial = (value[0], jac[0])
            norm = fomm.normalize_kp(state.kp, (value, jac), initial, self.movement, adapt_scale=self.adapt_scale)
            frames = self.generate(state, norm)
            for frame in frames:
                count += 1
                if full is not None and state.box is not None:
                    yield paste_back(full, frame, state.box)
                else:
                    yield frame
        if count == 0:
            raise MediaReadError("the driving video has no frames")
        if reference is not None and reference >= count:
            raise InputError(f"best_frame {reference} is past the end of the driving video ({count} frames)")

    def animate_to_file(
        self,
        source: ImageSource,
        driving: DrivingSource,
        output: str | os.PathLike[str],
        *,
        fps: float | None = None,
        audio: bool = True,
        progress: bool = False,
    ) -> MotionSummary:
        """Animate and write the result as it is produced.

        ``output``: ``.mp4`` (or another video suffix; H.264 with the driving video's audio when
        ``audio``), ``.npy`` (float32 (T, H, W, 3) RGB in [0, 1], written incrementally) or a
        directory (``frame_000000.png`` ...).  With a webcam (``driving=0``) recording runs until
        Ctrl-C, which finishes the file normally.
        """
        from facelib._progress import progress as progress_bar
        from facelib.io.sinks import open_sink

        state = self.prepare_source(source)
        drv = _Driving(driving)
        rate = float(fps or drv.fps)
        from facelib.io.ffmpeg import has_audio_stream
        from facelib.io.video import is_video_path

        has_audio = bool(audio and drv.path is not None and is_video_path(output) and has_audio_stream(drv.path))
        info: dict[str, Any] = {}
        out = Path(output)
        total = None
        if drv.path is not None:
            from facelib.io.video import VideoReader

            with VideoReader(drv.path) as reader:
                total = reader.frame_count or None
        sink = open_sink(out, rate, audio=drv.path if has_audio else None)
        try:
            for frame in progress_bar(self._animate(state, drv, info), total=total, desc="animate", enabled=progress):
                sink.write(frame)
        except KeyboardInterrupt:
            if not drv.live:  # a webcam recording ends with Ctrl-C: keep what was recorded
                sink.abort()
                raise
        except BaseException:
            sink.abort()
            raise
        written = sink.close()
        return MotionSummary(out, written, rate, int(info.get("reference_frame", 0)), has_audio)


__all__ = ["FaceCropper", "MotionResult", "MotionSummary", "MotionTransfer", "SourceState", "landmarks_fn_of"]
