"""``facelib check TASK --precision int8``: what a reduced-precision variant costs, on real data.

The variant is made exactly as ``facelib convert precision`` makes it (the files
:func:`facelib.models.precision.plan_for` picks, calibrated on the ``calibrate`` media), in a
temporary folder; then the float32 package and the variant run the same inputs and every
numeric result field is compared (max abs / max rel / MSE, the units of the field: degrees,
blendshape weights in [0, 1], landmark pixels, vertex positions, RGB in [0, 1]).  Head pose
also gets the AFLW2000 MAE of both against the ground truth when a dataset folder
(``*.jpg`` with ``.mat`` beside them) is given.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from facelib.errors import InputError
from facelib.models.package import ModelPackage
from facelib.models.precision import PrecisionWarning, check_precision, quantize_package, record_feeds
from facelib.tools.adapters import TaskAdapter
from facelib.tools.check import Difference, compare_arrays
from facelib.tools.task_tools import TaskRun, result_fields, run_task


@attrs.frozen
class PrecisionReport:
    """The accuracy cost of one variant against float32 (see the module docstring)."""

    task: str
    precision: str
    model: str
    #: Per role: how the file was made (``static``, ``dynamic``, ``fp32 (why)``).
    quantization: dict[str, str]
    differences: list[Difference]
    calibrated_on: list[str]
    #: Task-specific figures (e.g. ``aflw2000_mae_fp32``, ``aflw2000_mae_int8``, ``aflw2000_faces``).
    figures: dict[str, float] = attrs.field(factory=dict)

    @property
    def quantized(self) -> list[str]:
        """Roles whose files run in reduced precision."""
        return [r for r, m in self.quantization.items() if not m.startswith("fp32")]

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["differences"] = [d.to_dict() for d in self.differences]
        data["quantized"] = self.quantized
        return data


def calibration_feeds(
    adapter: TaskAdapter, package: ModelPackage, media: Sequence[Path], options: dict[str, Any], max_frames: int = 64
) -> dict[str, list[dict[str, Any]]]:
    """Session inputs per role, recorded while the float32 task runs ``media`` (as ``--input``)."""
    paths = tuple(Path(p) for p in media)
    adapter.check_inputs(paths)
    task = adapter.open(package, "onnxruntime", None, paths, **options)
    try:
        calls = adapter.calls(task, paths, 1, max_frames)
        return record_feeds(task, lambda: [call.run() for call in calls])
    finally:
        task.close()


def make_variant(
    run: TaskRun,
    precision: str,
    output: str | os.PathLike[str],
    calibrate: Sequence[Path] = (),
    roles: Sequence[str] | None = None,
    max_frames: int = 64,
) -> ModelPackage:
    """The ``precision`` variant of ``run.model`` written to ``output``, calibrated on ``calibrate``
    (real media in the task's ``--input`` form) when any file it quantizes is static."""
    check_precision(precision)
    calibration = (
        calibration_feeds(run.adapter, run.model, calibrate, dict(run.options), max_frames) if calibrate else None
    )
    with warnings.catch_warnings():  # the card (and so the report) says which files stay float32
        warnings.simplefilter("ignore", PrecisionWarning)
        return ModelPackage.load(quantize_package(run.model, precision, output, calibration=calibration, roles=roles))


def _aflw_mae(dataset: Path, packages: dict[str, ModelPackage]) -> dict[str, float]:
    from facelib.tasks.head_pose import HeadPose
    from facelib.tasks.head_pose_eval import evaluate_aflw

    figures: dict[str, float] = {}
    for name, package in packages.items():
        with HeadPose(package, backend="onnxruntime") as pose:
            result = evaluate_aflw(dataset, pose, crop="landmarks")
        if not result.count:
            raise InputError(f"{dataset}: no *.jpg with a .mat beside it (an AFLW2000-3D style folder)")
        figures[f"aflw2000_mae_{name}"] = result.mae_mean
        figures["aflw2000_faces"] = float(result.count)
    return figures


def _mediapipe_scores(task_file: Path, frames: Sequence[Any], video: bool) -> list[dict[str, float] | None]:
    """Blendshape scores by name of Google's ``mediapipe`` landmarker (first face) for each frame."""
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError:
        raise InputError("--mediapipe-task needs the mediapipe package (pip install mediapipe)") from None
    if not Path(task_file).is_file():
        raise InputError(f"not a file: {task_file} (face_landmarker.task)")
    mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task_file)),
        running_mode=mode,
        num_faces=1,
        output_face_blendshapes=True,
    )
    out: list[dict[str, float] | None] = []
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for i, frame in enumerate(frames):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
            result = landmarker.detect_for_video(image, i * 33) if video else landmarker.detect(image)
            faces = result.face_blendshapes
            out.append({c.category_name: float(c.score) for c in faces[0]} if faces else None)
    return out


def _against_mediapipe(results: Sequence[Any], scores: Sequence[dict[str, float] | None]) -> tuple[float, int]:
    """Max |ours - mediapipe| over the ARKit blendshapes of frames where both found a face."""
    from facelib.processing.arkit import ARKIT_NAMES

    worst, frames = 0.0, 0
    for result, theirs in zip(results, scores):
        if theirs is None or not result.faces:
            continue
        ours = result.faces[0].blendshapes
        worst = max(
            worst, max(abs(float(ours[i]) - theirs[name]) for i, name in enumerate(ARKIT_NAMES) if name in theirs)
        )
        frames += 1
    return worst, frames


def precision_report(
    run: TaskRun,
    precision: str = "int8",
    *,
    calibrate: Sequence[Path] = (),
    roles: Sequence[str] | None = None,
    dataset: str | os.PathLike[str] | None = None,
    mediapipe_task: str | os.PathLike[str] | None = None,
    max_frames: int = 64,
) -> PrecisionReport:
    """Make the ``precision`` variant of ``run.model`` (calibrated on ``calibrate``, default the
    inputs themselves) and compare it with float32 on ``run.inputs``; ``dataset``: an AFLW2000
    folder for head pose (MAE of both against its labels); ``mediapipe_task``: Google's
    ``face_landmarker.task`` for blendshapes (both sides' blendshapes against the ``mediapipe``
    package on the same frames)."""
    check_precision(precision)
    if dataset is not None and run.model.card.task != "head_pose":
        raise InputError("--dataset (AFLW2000 MAE) is for head pose; other tasks are compared on --input")
    if mediapipe_task is not None and run.model.card.task != "blendshapes":
        raise InputError("--mediapipe-task is for blendshapes (a parity check against the mediapipe package)")
    media = list(calibrate) or list(run.inputs)
    with tempfile.TemporaryDirectory(prefix="facelib-precision-") as tmp:
        variant = make_variant(run, precision, Path(tmp) / "variant", media, roles, max_frames)
        fp32_results = run_task(run, "onnxruntime", max_frames=max_frames)
        variant_results = run_task(attrs.evolve(run, model=variant), "onnxruntime", max_frames=max_frames)
        want, got = result_fields(fp32_results), result_fields(variant_results)
        figures = _aflw_mae(Path(dataset), {"fp32": run.model, precision: variant}) if dataset is not None else {}
        if mediapipe_task is not None:
            from facelib.tools.adapters import BlendshapesAdapter, load_frames

            frames = load_frames(run.inputs[0], max_frames)
            video = BlendshapesAdapter.mode_for(run.inputs) == "video"
            scores = _mediapipe_scores(Path(mediapipe_task), frames, video)
            for name, results in (("fp32", fp32_results), (precision, variant_results)):
                worst, count = _against_mediapipe(results, scores)
                figures[f"mediapipe_blendshapes_max_{name}"] = worst
                figures["mediapipe_frames"] = float(count)
        quantization = {str(k): str(v) for k, v in variant.card.metadata.get("quantization", {}).items()}
    diffs = []
    for field in sorted(set(got) | set(want)):
        if field not in got or field not in want:
            inf = float("inf")
            diffs.append(Difference(run.adapter.name, field, inf, inf, inf, ()))
        else:
            diffs.append(compare_arrays(run.adapter.name, field, got[field], want[field]))
    return PrecisionReport(
        task=run.adapter.name,
        precision=precision,
        model=str(run.model.root),
        quantization=quantization,
        differences=diffs,
        calibrated_on=[str(p) for p in media],
        figures=figures,
    )


def format_report(report: PrecisionReport) -> str:
    """Human-readable: the files and how each was made, the figures, the per-field table."""
    lines = [f"{report.task}: {report.precision} variant of {report.model} against float32"]
    lines += [f"  {role}: {method}" for role, method in report.quantization.items()]
    if not report.quantized:
        lines.append(f"  no file is quantized: the {report.precision} variant runs float32 (see the reasons above)")
    lines.append(f"  calibrated on: {', '.join(report.calibrated_on)}")
    f = report.figures
    if "aflw2000_mae_fp32" in f:
        lines.append(
            f"  AFLW2000 MAE over {int(f['aflw2000_faces'])} faces: fp32 {f['aflw2000_mae_fp32']:.2f} deg, "
            f"{report.precision} {f[f'aflw2000_mae_{report.precision}']:.2f} deg"
        )
    if "mediapipe_frames" in f:
        lines.append(
            f"  blendshapes vs the mediapipe package over {int(f['mediapipe_frames'])} frames: max |fp32 - mediapipe| "
            f"{f['mediapipe_blendshapes_max_fp32']:.3f}, max |{report.precision} - mediapipe| "
            f"{f[f'mediapipe_blendshapes_max_{report.precision}']:.3f}"
        )
    lines.append(f"{'field':<40}{'max abs':>12}{'max rel':>12}{'mse':>12}")
    lines += [f"{d.output[:39]:<40}{d.max_abs:>12.3g}{d.max_rel:>12.3g}{d.mse:>12.3g}" for d in report.differences]
    return "\n".join(line.rstrip() for line in lines)
