"""Task adapters for ``facelib bench TASK`` and ``facelib check TASK``: inputs -> task calls.

One small adapter per task names the task class, turns ``--input`` files (an image, a video, an
audio clip) into calls of the task, and says how many items (images, frames) each call produces.
Tasks are opened the same way for every adapter (``Task(model, backend=..., **options)``: the
model is a package directory, a loaded package or a hub name; the default model is the task's
entry of :data:`facelib.models.registry.DEFAULT_MODELS`).  The measuring code in
:mod:`facelib.tools.task_tools` is the same for every task; comparing results needs nothing
task-specific (every numeric field of the result objects is compared).

Adding a task: subclass :class:`TaskAdapter` and list it in :data:`ADAPTERS`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from facelib.backends.base import Backend
from facelib.errors import InputError, MediaReadError
from facelib.io.image import IMAGE_SUFFIXES, read_image
from facelib.tasks.base import ModelSource, Task

BackendArg = str | Backend


@attrs.frozen
class Call:
    """One task call: ``run()`` returns the task's result(s) for ``items`` images/frames."""

    run: Callable[[], object]
    items: int = 1
    #: Items counted from the result, when only the result knows (e.g. animation frames).
    count: Callable[[Any], int] | None = None


def load_frames(path: Path, max_frames: int) -> list[np.ndarray]:
    """RGB uint8 (H, W, 3) images: one for an image file, up to ``max_frames`` for a video."""
    if not path.exists():
        raise MediaReadError(f"input not found: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [read_image(path)]
    from facelib.io.video import VideoReader

    frames: list[np.ndarray] = []
    reader = VideoReader(path)
    try:
        for frame in reader:
            frames.append(frame.image)
            if len(frames) >= max_frames:
                break
    finally:
        reader.close()
    if not frames:
        raise MediaReadError(f"{path} has no decodable frames (expected an image or a video)")
    return frames


def _single_input(adapter: TaskAdapter, inputs: Sequence[Path]) -> Path:
    if len(inputs) != 1:
        raise InputError(f"{adapter.name} takes one --input: {adapter.input_help}; got {len(inputs)}")
    return inputs[0]


class TaskAdapter:
    """How the measuring tools drive one task."""

    #: Name on the command line.
    name: ClassVar[str]
    #: The task class, ``"module:Class"`` (imported when used).
    task: ClassVar[str]
    #: What ``--input`` must be, for messages.
    input_help: ClassVar[str]
    #: Largest max-abs difference ``check`` accepts by default (units of the result fields).
    default_tolerance: ClassVar[float] = 1e-3
    #: True when one call can process ``batch`` items at once.
    batched: ClassVar[bool] = False

    def task_class(self) -> type[Task]:
        module, _, attr = self.task.partition(":")
        cls: type[Task] = getattr(importlib.import_module(module), attr)
        return cls

    @property
    def default_model(self) -> str:
        """Hub name of the model used when ``--model`` is not given."""
        return self.task_class().default_model()

    def options(self, inputs: Sequence[Path], given: Mapping[str, Any]) -> dict[str, Any]:
        """Task constructor options for ``inputs`` and the tool's ``given`` options."""
        return {}

    def open(
        self,
        model: ModelSource,
        backend: BackendArg,
        backend_options: dict[str, Any] | None,
        inputs: Sequence[Path],
        **options: Any,
    ) -> Task:
        """The task on ``backend`` (a name gets the task's own workload tuning)."""
        return self.task_class()(
            model, backend=backend, backend_options=backend_options, **self.options(inputs, options)
        )

    def calls(self, task: Any, inputs: Sequence[Path], batch: int, max_frames: int) -> list[Call]:
        """The calls that process ``inputs`` once, in order."""
        raise NotImplementedError

    def check_inputs(self, inputs: Sequence[Path]) -> None:
        """Raise a usable error when ``inputs`` is empty (:class:`InputError`) or a file is missing
        (:class:`MediaReadError`), before any model is fetched."""
        if not inputs:
            raise InputError(f"{self.name} needs --input: {self.input_help}")
        for path in inputs:
            if not Path(path).is_file():
                raise MediaReadError(f"input not found: {path}")


class HeadPoseAdapter(TaskAdapter):
    """HeadPose on every face of an image or of each video frame (``--batch`` images per call)."""

    name = "headpose"
    task = "facelib.tasks.head_pose:HeadPose"
    input_help = "an image or a video with faces (e.g. ../shared/assets/media/images/obama.jpg)"
    default_tolerance = 0.01  # degrees (issue 3's parity tolerance); boxes in pixels
    batched = True

    def options(self, inputs: Sequence[Path], given: Mapping[str, Any]) -> dict[str, Any]:
        from facelib.models.registry import DEFAULT_MODELS

        return {"detector": given.get("detector") or DEFAULT_MODELS["face_detection"]}

    def calls(self, task: Any, inputs: Sequence[Path], batch: int, max_frames: int) -> list[Call]:
        frames = load_frames(_single_input(self, inputs), max_frames)
        if len(frames) == 1 and batch > 1:
            frames = frames * batch
        out = []
        for start in range(0, len(frames), batch):
            group = frames[start : start + batch]
            if len(group) == 1:
                out.append(Call(functools.partial(task.predict, group[0]), 1))
            else:
                out.append(Call(functools.partial(task.predict, group), len(group)))
        return out


class BlendshapesAdapter(TaskAdapter):
    """BlendshapeCapture: image mode on a photo, video mode (tracking) frame by frame on a video."""

    name = "blendshapes"
    task = "facelib.tasks.blendshapes:BlendshapeCapture"
    input_help = "an image or a video with a face (e.g. ../shared/assets/media/video/talking_face_01.mp4)"
    default_tolerance = 0.01  # blendshape weights in [0, 1]; landmarks in pixels

    def options(self, inputs: Sequence[Path], given: Mapping[str, Any]) -> dict[str, Any]:
        return {"mode": given.get("mode") or self.mode_for(inputs)}

    def calls(self, task: Any, inputs: Sequence[Path], batch: int, max_frames: int) -> list[Call]:
        frames = load_frames(_single_input(self, inputs), max_frames)
        return [Call(functools.partial(task.process, image), 1) for image in frames]

    @staticmethod
    def mode_for(inputs: Sequence[Path]) -> str:
        """``image`` for a photo, ``video`` for a clip."""
        return "image" if inputs and inputs[0].suffix.lower() in IMAGE_SUFFIXES else "video"


class MotionAdapter(TaskAdapter):
    """MotionTransfer: one call animates a source image with the (first ``--max-frames`` frames
    of the) driving video; items are output frames, the result the (T, H, W, 3) float32 clip."""

    name = "motion"
    task = "facelib.tasks.motion_transfer:MotionTransfer"
    input_help = (
        "two files, the source image then the driving video "
        "(e.g. --input ../shared/assets/media/images/fomm_source_02.png "
        "--input ../shared/assets/media/video/fomm_driving_00.mp4)"
    )
    default_tolerance = 1e-3  # RGB in [0, 1]

    def check_inputs(self, inputs: Sequence[Path]) -> None:
        super().check_inputs(inputs)
        if len(inputs) != 2:
            raise InputError(f"motion needs --input twice: {self.input_help}; got {len(inputs)} file(s)")

    def calls(self, task: Any, inputs: Sequence[Path], batch: int, max_frames: int) -> list[Call]:
        source = read_image(inputs[0])
        driving = np.stack(load_frames(inputs[1], max_frames))

        def animate() -> dict[str, np.ndarray]:
            return {"frames": task.predict(source, driving).frames}  # compared: the pixels only

        return [Call(animate, len(driving))]


class Audio2FaceAdapter(TaskAdapter):
    """Audio2Face: one call animates the whole clip (decoded to 16 kHz up front, so decoding is
    not timed); items are animation frames, the result holds the (T, V, 3) vertices."""

    name = "audio2face"
    task = "facelib.tasks.audio2face:Audio2Face"
    input_help = "a speech recording (e.g. ../shared/assets/media/audio/jfk_16k_mono.wav)"
    default_tolerance = 1e-4  # vertex positions in template units (metres for VOCASET)
    #: Neutral mesh (.ply/.obj/.npy) for packages without a template (``--template``).
    template: str | None = None

    def options(self, inputs: Sequence[Path], given: Mapping[str, Any]) -> dict[str, Any]:
        self.template = given.get("template")
        return {}

    def calls(self, task: Any, inputs: Sequence[Path], batch: int, max_frames: int) -> list[Call]:
        from facelib.io.audio import load_audio

        samples = load_audio(_single_input(self, inputs))
        run = functools.partial(task.predict, samples, template=self.template, sample_rate=16000)
        return [Call(run, count=lambda result: int(result.num_frames))]


ADAPTERS: dict[str, type[TaskAdapter]] = {
    Audio2FaceAdapter.name: Audio2FaceAdapter,
    HeadPoseAdapter.name: HeadPoseAdapter,
    BlendshapesAdapter.name: BlendshapesAdapter,
    MotionAdapter.name: MotionAdapter,
}


def get_adapter(name: str) -> TaskAdapter:
    """The adapter of task ``name`` (see :data:`ADAPTERS`)."""
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise InputError(f"unknown task {name!r}; bench/check know {', '.join(ADAPTERS)}") from None
