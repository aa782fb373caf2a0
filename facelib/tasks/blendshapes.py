"""BlendshapeCapture: ARKit-52 blendshapes and head pose from photos, videos and webcams.

One class for every capture engine, chosen by the model card's ``variant``:

``"mediapipe"``
    Google's Face Landmarker models (:class:`facelib.tasks.face_landmarker.FaceLandmarker`):
    478 landmarks, 52 blendshapes, facial transformation matrix and head pose.
``"regressor"``
    A face detector + crop + blendshape regressor package (the kind the port we replace ran),
    implemented by ``facelib.tasks.blendshape_regressor.RegressorEngine``.

Example::

    from facelib import BlendshapeCapture

    with BlendshapeCapture.from_pretrained("mediapipe-face-landmarker", mode="video") as cap:
        for frame in cap.process_video("clip.mp4"):
            if frame.faces:
                print(frame.timestamp_ms, frame.faces[0].blendshapes[17])  # 17 = jawOpen

Modes: ``"image"`` treats every image on its own; ``"video"`` tracks faces from frame to frame
(the detector only runs when a face is lost); ``"live"`` is video mode for a camera, dropping
frames that arrive while the previous one is processed so the output never lags behind.
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np

from facelib.errors import InputError, MediaReadError, ModelCardError
from facelib.io.image import ImageSource, read_image
from facelib.io.video import Frame, VideoReader
from facelib.models.package import ModelPackage
from facelib.processing.arkit import from_mediapipe
from facelib.processing.face_geometry import head_pose_angles
from facelib.results import BlendshapeFrame, FaceBlendshapes
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.detection import DetectorSource
from facelib.tasks.face_landmarker import LandmarkerResult

MODES = ("image", "video", "live")
VideoSource = str | os.PathLike[str] | int
#: What an engine returns for a stream of frames: each frame with its faces, in order.
FrameResults = Iterator[tuple[Frame, list[FaceBlendshapes]]]


class CaptureEngine(Protocol):
    """What BlendshapeCapture needs from an engine (one per card variant)."""

    def process(self, image_rgb: np.ndarray, timestamp_ms: float) -> list[FaceBlendshapes]:
        """Faces of one RGB uint8 image (``timestamp_ms`` increases from frame to frame)."""
        ...

    def stream(self, frames: Iterator[Frame]) -> FrameResults:
        """Faces of each frame of a stream, in order (an engine may overlap frames)."""
        ...

    def reset(self) -> None:
        """Forget tracked faces (a new video starts)."""
        ...

    def close(self) -> None: ...


class _MediaPipeEngine:
    """Adapts :class:`FaceLandmarker` (image or video mode) to the engine protocol."""

    def __init__(self, package: ModelPackage, mode: str, **options: Any) -> None:
        from facelib.tasks.face_landmarker import FaceLandmarker

        self.mode = mode
        self.landmarker = FaceLandmarker(
            package,
            mode="image" if mode == "image" else "video",
            output_blendshapes=True,
            output_transform=True,
            **options,
        )

    def process(self, image_rgb: np.ndarray, timestamp_ms: float = 0.0) -> list[FaceBlendshapes]:
        if self.mode == "image":
            return self.convert(self.landmarker.detect(image_rgb))
        return self.convert(self.landmarker.detect_for_video(image_rgb, timestamp_ms))

    def stream(self, frames: Iterator[Frame]) -> FrameResults:
        if self.mode == "image":
            for frame in frames:
                yield frame, self.process(frame.image, frame.timestamp_ms)
            return
        # pipelined: blendshapes of frame t overlap the mesh of frame t+1 (FaceLandmarker.stream)
        waiting: deque[Frame] = deque()

        def feed() -> Iterator[tuple[np.ndarray, float]]:
            for frame in frames:
                waiting.append(frame)
                yield frame.image, frame.timestamp_ms

        for result in self.landmarker.stream(feed()):
            yield waiting.popleft(), self.convert(result)

    @staticmethod
    def convert(result: LandmarkerResult) -> list[FaceBlendshapes]:
        """FaceLandmarker faces -> FaceBlendshapes (ARKit order, head pose)."""
        faces = []
        for face in result.faces:
            assert face.blendshapes is not None
            pose = None if face.transform is None else head_pose_angles(face.transform).astype(np.float32)
            faces.append(
                FaceBlendshapes(
                    box=face.box,
                    score=face.score,
                    blendshapes=from_mediapipe(face.blendshapes),
                    landmarks=face.landmarks,
                    transform=face.transform,
                    head_pose=pose,
                )
            )
        return faces

    def reset(self) -> None:
        self.landmarker.reset()

    def close(self) -> None:
        self.landmarker.close()


class BlendshapeCapture(Task):
    """Expression capture: per image / frame and per face, 52 ARKit blendshapes and head pose.

    Parameters
    ----------
    model:
        A ``blendshapes`` model package: directory, hub name or
        :class:`~facelib.models.package.ModelPackage`; see :meth:`from_pretrained`.
    mode:
        Running mode: ``"image"``, ``"video"`` or ``"live"`` (module docstring).
    backend, backend_options:
        As for every task; the engine (and its detector) run there.
    num_faces:
        Most faces per image (default 1).
    min_face_detection_confidence, min_face_presence_confidence, min_tracking_confidence:
        MediaPipe packages: thresholds in [0, 1] (default: the card's, 0.5).
    smoothing:
        MediaPipe packages: One-Euro landmark filter in video/live mode (default off).
    detector:
        Regressor packages: the face detector, any ``face_detection`` package (path or hub name)
        or object with ``detect(image) -> list[FaceBox]`` (default: the detector package its card
        names).

    Results are :class:`~facelib.results.BlendshapeFrame` objects whose faces
    hold blendshapes in :data:`facelib.processing.arkit.ARKIT_NAMES` order (``tongueOut`` is 0
    for MediaPipe), landmarks (478, 3) in pixels, the 4x4 transform and ``head_pose`` = yaw,
    pitch, roll in degrees (convention: :func:`facelib.processing.face_geometry.head_pose_angles`).
    """

    task_name = "blendshapes"

    def __init__(
        self,
        model: ModelSource,
        *,
        mode: str = "image",
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        num_faces: int = 1,
        min_face_detection_confidence: float | None = None,
        min_face_presence_confidence: float | None = None,
        min_tracking_confidence: float | None = None,
        smoothing: bool = False,
        detector: DetectorSource | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        super().__init__(model, backend=backend, backend_options=backend_options)
        self.mode = mode
        self.num_faces = int(num_faces)
        mediapipe_options = {
            "min_face_detection_confidence": min_face_detection_confidence,
            "min_face_presence_confidence": min_face_presence_confidence,
            "min_tracking_confidence": min_tracking_confidence,
        }
        variant = self.card.variant
        self._engine: CaptureEngine
        if variant == "mediapipe":
            if detector is not None:
                raise InputError("detector= is for regressor packages; MediaPipe packages bring their own detector")
            self._engine = _MediaPipeEngine(
                self.package,
                mode,
                num_faces=self.num_faces,
                smoothing=smoothing,
                **mediapipe_options,
                **self._sub_backend(),
            )
        elif variant == "regressor":
            given = [k for k, v in {**mediapipe_options, "smoothing": smoothing or None}.items() if v is not None]
            if given:
                raise InputError(f"{', '.join(given)}: options of MediaPipe packages, not of regressor packages")
            self._engine = _regressor_engine(self.package)(
                self.package, detector=detector, max_faces=self.num_faces, **self._sub_backend()
            )
        else:
            raise ModelCardError(
                f"{self.package.root}: unknown blendshape model variant {variant!r}; "
                "facelib knows 'mediapipe' and 'regressor'"
            )
        self._own(self._engine)
        self._index = 0
        self._last_ts: float | None = None

    def _repr_options(self) -> dict[str, Any]:
        return {"mode": self.mode, "num_faces": self.num_faces, "variant": self.card.variant}

    # -- images -------------------------------------------------------------------------------

    def process(self, image: ImageSource, timestamp_ms: float | None = None) -> BlendshapeFrame:
        """Blendshapes of every face in one image (RGB array (H, W, 3) or a path).

        In video/live mode ``timestamp_ms`` must increase from call to call; when omitted,
        frames are assumed 1/30 s apart.
        """
        rgb = read_image(image)
        if self.mode == "image":
            ts = 0.0 if timestamp_ms is None else float(timestamp_ms)
        else:
            ts = float(timestamp_ms) if timestamp_ms is not None else self._next_timestamp()
        faces = self._run(rgb, ts)
        frame = BlendshapeFrame(self._index, ts, tuple(faces))
        self._index += 1
        self._last_ts = ts
        return frame

    def _next_timestamp(self) -> float:
        return 0.0 if self._last_ts is None else self._last_ts + 1000.0 / 30.0

    def _run(self, rgb: np.ndarray, timestamp_ms: float) -> list[FaceBlendshapes]:
        return list(self._engine.process(rgb, timestamp_ms))

    def reset(self) -> None:
        """Forget tracked faces and timestamps (done automatically by :meth:`process_video`)."""
        self._index = 0
        self._last_ts = None
        self._engine.reset()

    # -- videos and webcams -------------------------------------------------------------------

    def iter_video(self, source: VideoSource, max_frames: int | None = None) -> Iterator[tuple[Frame, BlendshapeFrame]]:
        """Like :meth:`process_video`, also yielding each decoded :class:`~facelib.io.video.Frame`."""
        self.reset()
        reader = VideoReader(source)
        live = reader.is_live or self.mode == "live"
        frames: Iterator[Frame] = _latest_frames(reader) if live else iter(reader)
        count = 0
        limited = frames if max_frames is None else itertools.islice(frames, max_frames)
        try:
            for frame, faces in self._engine.stream(limited):
                yield frame, BlendshapeFrame(frame.index, frame.timestamp_ms, tuple(faces))
                count += 1
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            reader.close()
        if count == 0 and max_frames != 0:
            raise MediaReadError(f"{source} has no decodable frames")

    def process_video(self, source: VideoSource, max_frames: int | None = None) -> Iterator[BlendshapeFrame]:
        """Stream the blendshapes of a video file or webcam (int device index), frame by frame.

        Memory stays bounded: frames are decoded, processed and dropped one at a time.  Files are
        read frame by frame (timestamps from the container's frame rate); a webcam (or
        ``mode="live"``) always gets its newest frame, frames that arrived meanwhile are skipped.
        In image mode every frame is processed on its own; otherwise faces are tracked.
        """
        for _, result in self.iter_video(source, max_frames=max_frames):
            yield result


def _regressor_engine(package: ModelPackage) -> Any:
    """The regressor engine class (its module is optional in trimmed installs)."""
    try:
        module = importlib.import_module("facelib.tasks.blendshape_regressor")
    except ModuleNotFoundError as exc:
        if exc.name != "facelib.tasks.blendshape_regressor":
            raise
        raise ModelCardError(
            f"{package.root} is a 'regressor' blendshape package, but this facelib has no "
            "regressor engine (facelib.tasks.blendshape_regressor is missing); upgrade facelib"
        ) from None
    return module.RegressorEngine


def _latest_frames(reader: VideoReader) -> Iterator[Frame]:
    """Frames of a live source, always the newest: a thread keeps reading and the consumer
    takes whatever frame is current, so slow processing skips frames instead of lagging."""
    state: dict[str, Any] = {"frame": None, "done": False}
    cond = threading.Condition()
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            frame = reader.read()
            with cond:
                if frame is None:
                    state["done"] = True
                    cond.notify_all()
                    return
                state["frame"] = frame
                cond.notify_all()

    thread = threading.Thread(target=pump, name="facelib-live-reader", daemon=True)
    thread.start()
    try:
        while True:
            with cond:
                cond.wait_for(lambda: state["frame"] is not None or state["done"])
                frame, state["frame"] = state["frame"], None
                if frame is None:
                    return
            yield frame
    finally:
        stop.set()
        thread.join(timeout=2.0)
