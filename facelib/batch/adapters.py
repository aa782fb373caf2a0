"""Per-task adapters: the only place where batch jobs call the four task APIs.

An adapter knows, for one task: its options and their defaults, which files are its inputs,
how to open one task instance (once per worker), how to run one item (writing its outputs, as
the task's CLI names them, into a staging folder) and which typed summary columns its rows
have.  Everything else (items, engines, resume, the results table) is task-independent.

Summary column types are written as small strings that :mod:`facelib.batch.table` maps to
Arrow types: ``int32``, ``float64``, ``bool``, ``string``, ``list<int32>``, ``list<float32>``
and ``list<box>`` (a list of 4-float ``x1, y1, x2, y2`` pixel boxes).

Per-face columns (``face_*``, ``yaw``/``pitch``/``roll``, blendshape names) hold one entry per
detected face: for an image every face; for a video every face of every frame, with
``face_frame`` giving the frame index of each entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from facelib.batch.items import Item
from facelib.errors import InputError
from facelib.models.registry import DEFAULT_MODELS
from facelib.processing.arkit import ARKIT_NAMES


@attrs.frozen
class ItemOutput:
    """What running one item produced: files (relative to the staging folder) and summary values."""

    files: list[str]
    summary: dict[str, Any]


def _is_image(path: Path) -> bool:
    from facelib.io.image import is_image_path
    from facelib.io.video import is_video_path

    return is_image_path(path) and not is_video_path(path)


def _is_video(path: Path) -> bool:
    from facelib.io.video import is_video_path

    return is_video_path(path)


#: Columns of face detections, shared by head pose and blendshapes.
_FACE_FIELDS = {
    "frames": "int32",
    "frames_with_face": "int32",
    "face_frame": "list<int32>",
    "face_box": "list<box>",
    "face_score": "list<float32>",
    "yaw": "list<float32>",
    "pitch": "list<float32>",
    "roll": "list<float32>",
}


class _Faces:
    """Collects per-face summary values over the frames of one item."""

    def __init__(self, blendshapes: bool = False) -> None:
        self.frames = 0
        self.with_face = 0
        per_face = ("face_frame", "face_box", "face_score", "yaw", "pitch", "roll")
        self.columns: dict[str, list[Any]] = {k: [] for k in per_face}
        self.blendshapes = blendshapes
        if blendshapes:
            self.columns.update({n: [] for n in ARKIT_NAMES})

    def add(self, index: int, faces: list[tuple[Any, float, Any, Any]]) -> None:
        """One frame: ``(box, score, (yaw, pitch, roll) or None, blendshapes or None)`` per face."""
        self.frames += 1
        self.with_face += bool(faces)
        for box, score, pose, weights in faces:
            self.columns["face_frame"].append(index)
            self.columns["face_box"].append([float(v) for v in np.asarray(box).reshape(4)])
            self.columns["face_score"].append(float(score))
            angles = [float("nan")] * 3 if pose is None else [float(v) for v in pose]
            for key, value in zip(("yaw", "pitch", "roll"), angles):
                self.columns[key].append(value)
            if self.blendshapes:
                for name, value in zip(ARKIT_NAMES, np.asarray(weights, dtype=np.float64)):
                    self.columns[name].append(float(value))

    def summary(self) -> dict[str, Any]:
        return {"frames": self.frames, "frames_with_face": self.with_face, **self.columns}


class Adapter:
    """Base of the per-task adapters (see the module docstring)."""

    name: ClassVar[str] = ""
    #: Option defaults; options not listed here are rejected.
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: Manifest columns (and options) holding paths.
    path_params: ClassVar[tuple[str, ...]] = ()
    #: Summary columns of this task's rows: name -> type string.
    fields: ClassVar[Mapping[str, str]] = {}

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` merged over the defaults; unknown options are InputErrors."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise InputError(f"{self.name} batch jobs take no option {unknown}; they take {sorted(self.defaults)}")
        merged = {**self.defaults, **{k: v for k, v in given.items() if v is not None}}
        for key in self.path_params:
            if merged.get(key) is not None:
                merged[key] = str(Path(str(merged[key])).expanduser().resolve())
        for key in ("model", "detector"):  # a package path or a hub name; workers may run elsewhere
            value = merged.get(key)
            if isinstance(value, str | os.PathLike) and Path(value).expanduser().exists():
                merged[key] = str(Path(value).expanduser().resolve())
        return merged

    def accepts(self, path: Path, options: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def open(self, options: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def process(self, task: Any, item: Item, staging: Path, options: Mapping[str, Any]) -> ItemOutput:
        raise NotImplementedError

    @staticmethod
    def close(task: Any) -> None:
        close = getattr(task, "close", None)
        if close is not None:
            close()


class HeadPoseAdapter(Adapter):
    """``facelib headpose``: ``<name>.json`` per image (``{"input", "faces": [HeadPoseResult.to_dict()]}``)
    or video (``{"input", "fps", "frames": [HeadPoseFrame.to_dict()]}``), with ``draw``: the
    annotated ``<name>.png`` / ``<name>.mp4`` (as ``facelib headpose --draw``)."""

    name = "headpose"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": DEFAULT_MODELS["head_pose"],
        "detector": DEFAULT_MODELS["face_detection"],
        "backend": "auto",
        "backend_options": None,
        "variants": None,
        "draw": False,
    }
    fields: ClassVar[Mapping[str, str]] = _FACE_FIELDS

    def accepts(self, path: Path, options: Mapping[str, Any]) -> bool:
        return _is_image(path) or _is_video(path)

    def open(self, options: Mapping[str, Any]) -> Any:
        from facelib.tasks.head_pose import HeadPose

        variants = options["variants"]
        return HeadPose(
            options["model"],
            detector=options["detector"],
            backend=options["backend"],
            backend_options=options["backend_options"],
            variants=variants.split(",") if isinstance(variants, str) else variants,
        )

    def process(self, task: Any, item: Item, staging: Path, options: Mapping[str, Any]) -> ItemOutput:
        from facelib.io.draw import draw_head_poses
        from facelib.io.image import read_image, write_image

        faces = _Faces()
        files = [f"{item.name}.json"]
        if not _is_video(Path(item.input)):
            image = read_image(item.input)
            results = task.predict(image)
            faces.add(0, [(f.box, f.score, (f.yaw, f.pitch, f.roll), None) for f in results])
            report: dict[str, Any] = {"input": item.input, "faces": [f.to_dict() for f in results]}
            if options["draw"]:
                write_image(staging / f"{item.name}.png", draw_head_poses(image, results))
                files.append(f"{item.name}.png")
        else:
            from facelib.io.video import VideoReader, VideoWriter

            entries = []
            with VideoReader(item.input) as reader:
                fps = reader.fps
                writer = VideoWriter(staging / f"{item.name}.mp4", fps) if options["draw"] else None
                try:
                    for frame in task.predict_video(reader):
                        faces.add(frame.index, [(f.box, f.score, (f.yaw, f.pitch, f.roll), None) for f in frame.faces])
                        entries.append(frame.to_dict())
                        if writer is not None:
                            writer.write(draw_head_poses(frame.image, frame.faces))
                finally:
                    if writer is not None:
                        writer.close()
            if writer is not None:
                files.append(f"{item.name}.mp4")
            report = {"input": item.input, "fps": fps, "frames": entries}
        _write_json(staging / f"{item.name}.json", report)
        return ItemOutput(files, faces.summary())


class BlendshapesAdapter(Adapter):
    """``facelib blendshapes``: ``<name>.json`` per image or video (facelib's blendshape JSON,
    :func:`facelib.io.blendshape_export.save_json`, which ``facelib export`` reads) and for a
    video also a Live Link Face ``<name>.csv`` (as ``facelib blendshapes --csv``)."""

    name = "blendshapes"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": DEFAULT_MODELS["blendshapes"],
        "backend": "auto",
        "backend_options": None,
        "num_faces": 1,
        "smoothing": False,
        "max_frames": None,
        "csv_fps": 60.0,
    }
    fields: ClassVar[Mapping[str, str]] = {**_FACE_FIELDS, **{n: "list<float32>" for n in ARKIT_NAMES}}

    def accepts(self, path: Path, options: Mapping[str, Any]) -> bool:
        return _is_image(path) or _is_video(path)

    def open(self, options: Mapping[str, Any]) -> Any:
        captures = _Captures(options)
        captures.get("video")  # opened now: a bad model stops the job at once, not item by item
        return captures

    @staticmethod
    def close(task: Any) -> None:
        task.close()

    def process(self, task: Any, item: Item, staging: Path, options: Mapping[str, Any]) -> ItemOutput:
        from facelib.io.blendshape_export import save_json

        faces = _Faces(blendshapes=True)
        target = staging / f"{item.name}.json"
        if not _is_video(Path(item.input)):
            frame = task.get("image").process(item.input)
            faces.add(0, [(f.box, f.score, f.head_pose, f.blendshapes) for f in frame.faces])
            save_json([frame], target)
            return ItemOutput([f"{item.name}.json"], faces.summary())
        from facelib.io.livelink import LiveLinkCSVWriter

        with LiveLinkCSVWriter(staging / f"{item.name}.csv", fps=float(options["csv_fps"])) as csv:

            def frames() -> Any:
                for result in task.get("video").process_video(item.input, max_frames=options["max_frames"]):
                    faces.add(result.index, [(f.box, f.score, f.head_pose, f.blendshapes) for f in result.faces])
                    csv.write(result)
                    yield result

            save_json(frames(), target)
        return ItemOutput([f"{item.name}.csv", f"{item.name}.json"], faces.summary())


class _Captures:
    """One BlendshapeCapture per mode (``image`` for stills, ``video`` for clips), opened on first use."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options
        self._open: dict[str, Any] = {}

    def get(self, mode: str) -> Any:
        if mode not in self._open:
            from facelib.tasks.blendshapes import BlendshapeCapture

            self._open[mode] = BlendshapeCapture(
                self.options["model"],
                mode=mode,
                backend=self.options["backend"],
                backend_options=self.options["backend_options"],
                num_faces=int(self.options["num_faces"]),
                smoothing=bool(self.options["smoothing"]),
            )
        return self._open[mode]

    def close(self) -> None:
        for capture in self._open.values():
            capture.close()
        self._open.clear()


class Audio2FaceAdapter(Adapter):
    """``facelib audio2face``: ``<name>.npy`` (T, V, 3) float32 vertices, or a rendered
    ``<name>.mp4`` with ``format="mp4"``.  Manifest columns: ``subject``, ``template``."""

    name = "audio2face"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": DEFAULT_MODELS["audio2face"],
        "backend": "auto",
        "backend_options": None,
        "subject": None,
        "template": None,
        "max_context": 600,
        "format": "npy",
        "size": 800,
    }
    path_params = ("template",)
    fields: ClassVar[Mapping[str, str]] = {
        "frames": "int32",
        "fps": "float64",
        "duration_s": "float64",
        "subject": "string",
        "vertices": "int32",
    }

    def accepts(self, path: Path, options: Mapping[str, Any]) -> bool:
        return path.suffix.lower() in (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus")

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().options(given)
        if merged["format"] not in ("npy", "mp4"):
            raise InputError(f"audio2face batch format must be 'npy' or 'mp4', got {merged['format']!r}")
        return merged

    def open(self, options: Mapping[str, Any]) -> Any:
        from facelib.tasks.audio2face import Audio2Face

        return Audio2Face(
            options["model"],
            backend=options["backend"],
            backend_options=options["backend_options"],
            max_context=options["max_context"] or None,
        )

    def process(self, task: Any, item: Item, staging: Path, options: Mapping[str, Any]) -> ItemOutput:
        from facelib.io.mesh import NpyFrameWriter

        subject = item.params.get("subject", options["subject"])
        template = item.params.get("template", options["template"])
        _, subject_name = task.subject_index(subject)
        frames = task.iter_frames(item.input, subject, template)
        vertices = 0
        if options["format"] == "npy":
            rel = f"{item.name}.npy"
            with NpyFrameWriter(staging / rel) as writer:
                for frame in frames:
                    writer.write(frame)
                    vertices = int(frame.shape[0])
            count = writer.count
        else:
            from facelib.io.mesh import read_mesh
            from facelib.io.render import render_animation

            rel = f"{item.name}.mp4"
            mesh = read_mesh(template) if template is not None else None
            faces = mesh.faces if mesh is not None and len(mesh.faces) else task.faces
            if faces is None:
                raise InputError("rendering needs triangles: give a template mesh (.ply/.obj) with faces")
            counted: list[int] = []

            def counting() -> Any:
                for frame in frames:
                    counted.append(int(frame.shape[0]))
                    yield frame

            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            render_animation(
                counting(),
                faces,
                staging / rel,
                task.fps,
                audio=item.input,
                dataset=task.dataset,
                size=int(options["size"]),
            )
            count, vertices = len(counted), (counted[-1] if counted else 0)
        summary = {
            "frames": count,
            "fps": float(task.fps),
            "duration_s": count / float(task.fps),
            "subject": subject_name,
            "vertices": vertices,
        }
        return ItemOutput([rel], summary)


class MotionAdapter(Adapter):
    """``facelib motion``: ``<name>.mp4`` (or ``.npy`` with ``format="npy"``) per source/driving
    pair.  Inputs are source images with ``driving=VIDEO``, driving videos with ``source=IMAGE``,
    or a manifest with ``input`` (the source image) and ``driving`` columns."""

    name = "motion"
    defaults: ClassVar[Mapping[str, Any]] = {
        "model": DEFAULT_MODELS["motion_transfer"],
        "backend": "auto",
        "backend_options": None,
        "source": None,
        "driving": None,
        "movement": "relative",
        "adapt_scale": False,
        "best_frame": None,
        "batch_size": 4,
        "format": "mp4",
        "audio": True,
    }
    path_params = ("source", "driving")
    fields: ClassVar[Mapping[str, str]] = {
        "frames": "int32",
        "fps": "float64",
        "reference_frame": "int32",
        "audio": "bool",
        "source": "string",
        "driving": "string",
    }

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        merged = super().options(given)
        if merged["source"] is not None and merged["driving"] is not None:
            raise InputError("give source=IMAGE (inputs are driving videos) or driving=VIDEO (inputs are images)")
        if merged["format"] not in ("mp4", "npy"):
            raise InputError(f"motion batch format must be 'mp4' or 'npy', got {merged['format']!r}")
        return merged

    def accepts(self, path: Path, options: Mapping[str, Any]) -> bool:
        return _is_video(path) if options["source"] is not None else _is_image(path)

    def open(self, options: Mapping[str, Any]) -> Any:
        from facelib.tasks.motion_transfer import MotionTransfer

        return MotionTransfer(
            options["model"],
            backend=options["backend"],
            backend_options=options["backend_options"],
            movement=options["movement"],
            adapt_scale=bool(options["adapt_scale"]),
            best_frame=options["best_frame"],
            batch_size=int(options["batch_size"]),
        )

    def process(self, task: Any, item: Item, staging: Path, options: Mapping[str, Any]) -> ItemOutput:
        if options["source"] is not None:
            source, driving = options["source"], item.params.get("driving", item.input)
        else:
            source, driving = item.params.get("source", item.input), item.params.get("driving", options["driving"])
        if driving is None:
            raise InputError(f"item {item.name!r} has no driving video (a 'driving' column or driving=VIDEO)")
        rel = f"{item.name}.{options['format']}"
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        result = task.animate_to_file(source, driving, staging / rel, audio=bool(options["audio"]))
        summary = {
            "frames": result.frames,
            "fps": float(result.fps),
            "reference_frame": result.reference_frame,
            "audio": bool(result.audio),
            "source": str(source),
            "driving": str(driving),
        }
        return ItemOutput([rel], summary)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


#: Adapters by the task names ``facelib batch`` takes.
ADAPTERS: dict[str, Adapter] = {
    a.name: a for a in (HeadPoseAdapter(), BlendshapesAdapter(), Audio2FaceAdapter(), MotionAdapter())
}


def get_adapter(task: str) -> Adapter:
    """The adapter of ``task`` (``headpose``, ``blendshapes``, ``audio2face``, ``motion``)."""
    try:
        return ADAPTERS[task]
    except KeyError:
        raise InputError(f"unknown batch task {task!r}; choose one of {sorted(ADAPTERS)}") from None
