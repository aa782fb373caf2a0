"""MediaPipe Face Landmarker on any facelib backend: 478 landmarks, 52 blendshapes, head pose.

Re-implements Google's Face Landmarker graph (BlazeFace short-range detector, rotated face
ROI, face mesh, blendshape head, geometry pipeline) in numpy around the three ONNX models of a
``mediapipe`` model package (see :mod:`facelib.models.convert.mediapipe`).

Modes (as MediaPipe's ``RunningMode``)
--------------------------------------
``"image"``
    :meth:`FaceLandmarker.detect`: every call detects faces from scratch.
``"video"``
    :meth:`FaceLandmarker.detect_for_video` with strictly increasing timestamps: faces found in
    one frame are tracked into the next from their landmarks; the detector only runs while fewer
    than ``num_faces`` faces are tracked.
``"live"``
    :meth:`FaceLandmarker.detect_async` hands a frame to a worker thread and returns at once;
    results arrive through ``result_callback``.  A frame that arrives while the worker is busy
    replaces the one waiting (older waiting frames are dropped), so the stream never falls behind.

Example::

    with FaceLandmarker("models/mediapipe-face-landmarker", output_blendshapes=True) as lm:
        result = lm.detect("photo.jpg")
        for face in result.faces:
            print(face.box, face.landmarks.shape, face.blendshapes[25])  # 25 = jawOpen
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from facelib.backends.batching import run_batched
from facelib.errors import InferenceError, InputError, ModelCardError
from facelib.io.image import ImageSource, read_image
from facelib.processing import blazeface, face_geometry, face_mesh
from facelib.processing.face_mesh import Roi
from facelib.results import LandmarkerFace, LandmarkerResult
from facelib.tasks.base import BackendSource, ModelSource, Task
from facelib.tasks.blazeface import BlazeFaceConfig

MODES = ("image", "video", "live")
_ARRAY_EQ = attrs.cmp_using(eq=np.array_equal)


ResultCallback = Callable[[LandmarkerResult, np.ndarray, float], None]


class FaceLandmarker(Task):
    """Face landmarks, blendshapes and facial transformation matrices (MediaPipe Face Landmarker).

    Parameters
    ----------
    model:
        A ``mediapipe`` model package (directory or :class:`~facelib.models.package.ModelPackage`).
    backend, backend_options:
        As for every task (``"auto"``: the best available backend).
    mode:
        ``"image"``, ``"video"`` or ``"live"`` (see the module docstring).
    num_faces:
        Most faces returned per image (MediaPipe default 1).
    min_face_detection_confidence:
        Detector score threshold (default 0.5).
    min_face_presence_confidence:
        A face is kept when its presence score is greater than this (default 0.5).
    min_tracking_confidence:
        IoU above which a new detection replaces a tracked face (default 0.5, video/live).
    output_blendshapes, output_transform:
        Also compute the 52 blendshape scores / the 4x4 transformation matrix.
    smoothing:
        One-Euro landmark smoothing in video/live mode (MediaPipe's filter, which Google's package
        applies when ``num_faces == 1``).  Off by default: results then equal frame-by-frame
        processing.  Blendshapes and matrices use the smoothed landmarks; tracking uses the raw ones.
    second_look:
        Image mode: give a detection whose landmarks fail the presence gate one more try on the ROI
        of those landmarks (default True; finds grayscale and strongly turned faces that Google's
        package misses, leaves the faces it finds unchanged).  False runs exactly Google's pipeline.
    result_callback:
        Live mode only: called as ``callback(result, image, timestamp_ms)`` from the worker thread.
    """

    task_name = "blendshapes"
    workload = "pipelined"

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
        mode: str = "image",
        num_faces: int | None = None,
        min_face_detection_confidence: float | None = None,
        min_face_presence_confidence: float | None = None,
        min_tracking_confidence: float | None = None,
        output_blendshapes: bool = False,
        output_transform: bool = False,
        smoothing: bool = False,
        second_look: bool = True,
        result_callback: ResultCallback | None = None,
    ) -> None:
        super().__init__(model, backend=backend, backend_options=backend_options)
        card = self.card
        if card.variant != "mediapipe":
            raise ModelCardError(
                f"{self.package.root} is a {card.variant!r} blendshape model; FaceLandmarker needs a "
                "'mediapipe' package (use BlendshapeCapture for other variants)"
            )
        if mode not in MODES:
            raise InputError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "live" and result_callback is None:
            raise InputError("live mode needs a result_callback(result, image, timestamp_ms)")
        if mode != "live" and result_callback is not None:
            raise InputError("result_callback is only used in live mode")
        meta = card.metadata
        defaults = dict(meta.get("defaults", {}))
        self.mode = mode
        self.num_faces = int(num_faces if num_faces is not None else defaults.get("num_faces", 1))
        if self.num_faces < 1:
            raise InputError(f"num_faces must be at least 1, got {self.num_faces}")
        self.min_detection = _unit(
            "min_face_detection_confidence",
            min_face_detection_confidence,
            defaults.get("min_face_detection_confidence"),
        )
        self.min_presence = _unit(
            "min_face_presence_confidence", min_face_presence_confidence, defaults.get("min_face_presence_confidence")
        )
        self.min_tracking = _unit(
            "min_tracking_confidence", min_tracking_confidence, defaults.get("min_tracking_confidence")
        )
        self.output_blendshapes = output_blendshapes
        self.output_transform = output_transform
        self.smoothing = smoothing and mode != "image"
        #: Image mode only: retry a detection that fails the presence gate on its landmarks' ROI
        #: (finds grayscale and strongly turned faces Google's package misses; False gives exactly
        #: Google's image-mode pipeline).
        self.second_look = second_look
        self._callback = result_callback
        try:
            self._tensors: dict[str, dict[str, str]] = meta["tensors"]
            det = meta["detector"]
            lm = meta["landmarks"]
            self._blend_idx = np.asarray(meta["blendshape_landmarks"], dtype=np.int64)
            geometry = meta["geometry"]
            smooth = meta.get("smoothing", {})
        except KeyError as exc:
            raise ModelCardError(f"model card of {self.package.root} lacks metadata {exc}") from None
        self._detector = BlazeFaceConfig.from_card(card, self.package.root)
        self._det_roi_scale = float(det["roi_scale"])
        self._crop = int(lm["crop_size"])
        self._lm_roi_scale = float(lm["roi_scale"])
        self._fov = float(geometry["vertical_fov_degrees"])
        self._near = float(geometry["near"])
        self._smooth_params = {k: float(v) for k, v in smooth.items()}
        shapes = self.card.file("landmarks").shapes
        limit = next(iter(shapes.values())).max[0] if shapes else 0
        self._max_batch = int(limit) if isinstance(limit, int) and limit > 0 else 1
        self._canonical: face_geometry.CanonicalFace | None = None
        # one crop buffer per thread: threads may share this landmarker in image mode
        self._buffers = threading.local()
        # open the sessions now so the first frame is not slow and errors show early
        for role in ("detector", "landmarks") + (("blendshapes",) if output_blendshapes else ()):
            self._session(role)
        if output_transform:
            self._geometry()
        self._lock = threading.Lock()
        self.reset()
        self._worker: threading.Thread | None = None
        self._pending: tuple[np.ndarray, float] | None = None
        self._wake = threading.Condition()
        self._closing = False
        self.dropped_frames = 0
        self._error: Exception | None = None

    # -- public API ---------------------------------------------------------------------------

    def detect(self, image: ImageSource) -> LandmarkerResult:
        """Image mode: faces in one RGB image (array (H, W, 3) uint8, or a path)."""
        self._require_mode("image", "detect")
        return self._process(read_image(image), 0.0, track=False)

    def detect_for_video(self, image: ImageSource, timestamp_ms: float) -> LandmarkerResult:
        """Video mode: faces in one frame; ``timestamp_ms`` must increase from call to call."""
        self._require_mode("video", "detect_for_video")
        rgb = read_image(image)
        with self._lock:
            self._check_timestamp(timestamp_ms)
            return self._process(rgb, timestamp_ms, track=True)

    def detect_async(self, image: ImageSource, timestamp_ms: float) -> None:
        """Live mode: queue a frame and return at once; the result goes to ``result_callback``.

        If the worker is still busy with an earlier frame, this frame waits in a one-frame slot;
        a frame already waiting there is dropped (counted in :attr:`dropped_frames`).
        """
        self._require_mode("live", "detect_async")
        rgb = read_image(image)
        with self._wake:
            if self._closing:
                raise InputError("this FaceLandmarker is closed")
            if self._error is not None:
                error, self._error = self._error, None
                raise InferenceError(f"live processing of an earlier frame failed: {error}") from error
            self._check_timestamp(timestamp_ms)
            if self._pending is not None:
                self.dropped_frames += 1
            self._pending = (rgb, float(timestamp_ms))
            if self._worker is None:
                self._worker = threading.Thread(target=self._live_loop, name="facelib-face-landmarker", daemon=True)
                self._worker.start()
            self._wake.notify()

    def flush(self, timeout: float | None = None) -> None:
        """Live mode: wait until every queued frame has been processed."""
        with self._wake:
            self._wake.wait_for(lambda: self._pending is None and not self._busy, timeout=timeout)

    def reset(self) -> None:
        """Forget tracked faces, smoothing history and the last timestamp (start a new video)."""
        self._tracked: list[Roi] = []
        self._last_ts: float | None = None
        self._filters: list[face_mesh.OneEuroLandmarkFilter] = []
        self._busy = False

    def close(self) -> None:
        """Stop the live worker (after the frame in progress) and free the sessions."""
        worker = getattr(self, "_worker", None)
        if worker is not None:
            with self._wake:
                self._closing = True
                self._pending = None
                self._wake.notify_all()
            worker.join()
            self._worker = None
        super().close()

    # -- pipeline -----------------------------------------------------------------------------

    def detect_faces(self, image: np.ndarray) -> blazeface.Detections:
        """Run the BlazeFace detector on an RGB uint8 image; detections in pixels, best first."""
        return self._detector.detect(self._session("detector"), image, self.min_detection)

    def _detected_rois(self, image: np.ndarray) -> list[Roi]:
        found = self.detect_faces(image)
        height, width = image.shape[:2]
        rois = [
            face_mesh.roi_from_relative_detection(
                found.relative_boxes[i], found.relative_keypoints[i], width, height, self._det_roi_scale
            )
            for i in range(len(found))
        ]
        return rois[: self.num_faces]

    def _process(self, image: np.ndarray, timestamp_ms: float, track: bool) -> LandmarkerResult:
        meshes = self._mesh_stage(image, track)
        return self._face_stage(meshes, image.shape[1], image.shape[0], timestamp_ms, track)

    def _mesh_stage(self, image: np.ndarray, track: bool) -> list[tuple[np.ndarray, Roi, float]]:
        """ROIs (tracked or detected) -> landmark model -> presence gate; updates the tracking.

        Returns (normalised landmarks (478, 3), ROI, presence) per kept face.
        """
        height, width = image.shape[:2]
        if track and len(self._tracked) >= self.num_faces:
            rois = self._tracked[: self.num_faces]
        elif track:
            rois = face_mesh.merge_tracked(self._tracked, self._detected_rois(image), self.min_tracking)
            rois = rois[: self.num_faces]
        else:
            rois = self._detected_rois(image)
        raw, presence = self._landmarks(image, rois)
        if not track and self.second_look:
            rois, raw, presence = self._second_look(image, rois, raw, presence)
        meshes = []
        for i, roi in enumerate(rois):
            if presence[i] > self.min_presence:
                meshes.append((face_mesh.project(raw[i], roi, width, height, self._crop), roi, float(presence[i])))
        if track:
            self._tracked = [face_mesh.roi_from_landmarks(m[0], width, height, self._lm_roi_scale) for m in meshes]
        return meshes

    def _second_look(
        self, image: np.ndarray, rois: list[Roi], raw: np.ndarray, presence: np.ndarray
    ) -> tuple[list[Roi], np.ndarray, np.ndarray]:
        """Image mode: a detection whose landmarks fail the presence gate gets one more try, on the
        ROI of those landmarks (as video mode's tracking would use on the next frame).

        BlazeFace's box of a strongly turned face, and more so of a grayscale photo, can be too
        loose for the landmark model (presence 0.14 on a grayscale AFLW2000 profile) while the
        landmarks it returns still locate the face (0.9999 on their ROI).  Faces Google's package
        finds are unchanged; this only adds faces it would have missed (docs/blendshapes.md).
        """
        retry = [i for i in range(len(rois)) if not presence[i] > self.min_presence]
        if not retry:
            return rois, raw, presence
        height, width = image.shape[:2]
        refined = [
            face_mesh.roi_from_landmarks(
                face_mesh.project(raw[i], rois[i], width, height, self._crop), width, height, self._lm_roi_scale
            )
            for i in retry
        ]
        raw2, presence2 = self._landmarks(image, refined)
        rois, raw, presence = list(rois), raw.copy(), presence.copy()
        for j, i in enumerate(retry):
            if presence2[j] > presence[i]:
                rois[i], raw[i], presence[i] = refined[j], raw2[j], presence2[j]
        return rois, raw, presence

    def _face_stage(
        self, meshes: list[tuple[np.ndarray, Roi, float]], width: int, height: int, timestamp_ms: float, track: bool
    ) -> LandmarkerResult:
        """Smoothing, blendshapes and matrices of the faces of one frame (touches no tracking state)."""
        faces = [self._face(norm, roi, p, width, height, i, timestamp_ms) for i, (norm, roi, p) in enumerate(meshes)]
        if track and len(faces) != len(self._filters):
            self._filters = []  # a face was lost or found: smoothing restarts
        return LandmarkerResult(float(timestamp_ms), tuple(faces), (width, height))

    def stream(self, frames: Iterable[tuple[ImageSource, float]]) -> Iterator[LandmarkerResult]:
        """Video mode over ``(image, timestamp_ms)`` pairs: the same results as calling
        :meth:`detect_for_video` on each, in order, but faster on several cores.

        The landmark model of frame t+1 only depends on the landmarks of frame t, so the
        blendshapes, smoothing and matrix of frame t are computed on a second thread while the
        mesh of frame t+1 runs.  At most two frames are in flight (bounded memory).  A process
        that may use only one core processes frame by frame (a second thread would only add
        hand-offs).
        """
        self._require_mode("video", "stream")
        from concurrent.futures import Future, ThreadPoolExecutor

        from facelib.backends.onnxruntime import usable_cores

        if usable_cores() < 2:
            yield from (self.detect_for_video(image, timestamp_ms) for image, timestamp_ms in frames)
            return

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="facelib-face-stage") as pool:
            previous: Future[LandmarkerResult] | None = None
            for image, timestamp_ms in frames:
                rgb = read_image(image)
                with self._lock:
                    self._check_timestamp(timestamp_ms)
                    meshes = self._mesh_stage(rgb, track=True)
                future = pool.submit(self._face_stage, meshes, rgb.shape[1], rgb.shape[0], float(timestamp_ms), True)
                if previous is not None:
                    yield previous.result()
                previous = future
            if previous is not None:
                yield previous.result()

    def _landmarks(self, image: np.ndarray, rois: Sequence[Roi]) -> tuple[np.ndarray, np.ndarray]:
        if not rois:
            return np.zeros((0, 1434), np.float32), np.zeros((0,), np.float64)
        names = self._tensors["landmarks"]
        batch = self._crop_buffer(len(rois))
        for j, roi in enumerate(rois):
            face_mesh.crop(image, roi, out=batch[j], size=self._crop)
        out = run_batched(
            self._session("landmarks"),
            {names["input"]: batch},
            max_batch=self._max_batch,
            output_names=[names["landmarks"], names["presence"]],
        )
        presence = np.array([face_mesh.sigmoid(v) for v in out[names["presence"]].reshape(len(rois)).tolist()])
        return out[names["landmarks"]].reshape(len(rois), -1), presence

    def _crop_buffer(self, n: int) -> np.ndarray:
        """(n, crop, crop, 3) float32 landmark-model input of the calling thread (reused)."""
        buffer: np.ndarray | None = getattr(self._buffers, "array", None)
        if buffer is None or len(buffer) < n:
            buffer = np.empty((max(n, self._max_batch), self._crop, self._crop, 3), dtype=np.float32)
            self._buffers.array = buffer
        return buffer[:n]

    def _face(
        self, norm: np.ndarray, roi: Roi, presence: float, width: int, height: int, slot: int, timestamp_ms: float
    ) -> LandmarkerFace:
        pixels = norm * np.array([width, height, width], dtype=np.float64)
        if self.smoothing:
            while len(self._filters) <= slot:
                self._filters.append(face_mesh.OneEuroLandmarkFilter(**self._smooth_params))
            pixels = self._filters[slot](pixels, round(timestamp_ms * 1000))
            norm = pixels / np.array([width, height, width], dtype=np.float64)
        blend = None
        if self.output_blendshapes:
            names = self._tensors["blendshapes"]
            feed = (pixels[self._blend_idx, :2]).astype(np.float32)[None]
            blend = self._session("blendshapes").run({names["input"]: feed}, [names["scores"]])[names["scores"]]
            blend = np.asarray(blend, dtype=np.float32).reshape(-1)
        transform = None
        if self.output_transform:
            matrix = face_geometry.transformation_matrix(norm, width, height, self._geometry(), self._fov, self._near)
            transform = None if matrix is None else matrix.astype(np.float32)
        box = np.array(
            [pixels[:, 0].min(), pixels[:, 1].min(), pixels[:, 0].max(), pixels[:, 1].max()], dtype=np.float32
        )
        return LandmarkerFace(box, presence, pixels.astype(np.float32), roi, blend, transform)

    def _geometry(self) -> face_geometry.CanonicalFace:
        if self._canonical is None:
            path = self.package.path("geometry")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelCardError(f"cannot read the face geometry {path}: {exc}") from exc
            self._canonical = face_geometry.CanonicalFace.from_dict(data)
        return self._canonical

    # -- helpers ------------------------------------------------------------------------------

    def _require_mode(self, mode: str, method: str) -> None:
        if self.mode != mode:
            hint = {"image": "detect", "video": "detect_for_video", "live": "detect_async"}[self.mode]
            raise InputError(
                f"{method}() needs mode={mode!r}; this FaceLandmarker is in {self.mode!r} mode (use {hint})"
            )

    def _check_timestamp(self, timestamp_ms: float) -> None:
        ts = float(timestamp_ms)
        if not np.isfinite(ts):
            raise InputError(f"timestamp_ms must be a finite number, got {timestamp_ms!r}")
        if self._last_ts is not None and ts <= self._last_ts:
            raise InputError(
                f"timestamps must increase monotonically: got {ts} ms after {self._last_ts} ms "
                "(call reset() to start a new video)"
            )
        self._last_ts = ts

    def _live_loop(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._closing)
                if self._closing:
                    return
                assert self._pending is not None
                image, ts = self._pending
                self._pending = None
                self._busy = True
            try:
                result = self._process(image, ts, track=True)
                assert self._callback is not None
                self._callback(result, image, ts)
            except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()


def _unit(name: str, value: float | None, default: Any) -> float:
    out = float(value if value is not None else (default if default is not None else 0.5))
    if not 0.0 <= out <= 1.0:
        raise InputError(f"{name} must be in [0, 1], got {out}")
    return out
