"""``facelib bench TASK`` / ``check TASK`` on the TensorRT backend (SDK test double): real models,
real media, whole tasks compiled to engines and compared with ONNX Runtime field by field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from facelib.tools.task_tools import bench_task, check_task, prepare


def _headpose_packages(models_dir: Path, root: Path) -> tuple[Path, Path]:
    from facelib.models.convert import fsanet, ultraface

    stems = {
        "capsule": "fsanet_capsule_3_16_2_21_5",
        "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
        "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
    }
    pose = fsanet.build_package({r: models_dir / "fsanet" / f"{s}.onnx" for r, s in stems.items()}, root / "fsanet")
    det_file = models_dir / "ultraface" / ultraface.VARIANTS["RFB-320"][0]
    det = ultraface.build_package({"detector": det_file}, root / "ultraface", variant="RFB-320")
    return pose.root, det.root


def test_headpose_bench_and_check_on_tensorrt(
    models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path
) -> None:
    pose, det = _headpose_packages(models_dir, tmp_path)
    image = models_dir.parent / "media" / "images" / "two_people.jpg"
    run = prepare("headpose", pose, [image], detector=str(det))
    backend = make_backend10()
    with run.adapter.open(run.model, backend, None, run.inputs, **run.options) as task:
        task.predict(str(image))
        assert task.backend.name == "tensorrt" and task.detector.backend.name == "tensorrt"  # type: ignore[union-attr]
        assert all(type(s).__module__.startswith("facelib_tensorrt") for s in task._sessions.values())
    diffs = check_task(run, backend, "onnxruntime")
    fields = {d.output: d for d in diffs}
    assert {"yaw", "pitch", "roll", "box", "score"} <= set(fields)
    assert fields["yaw"].shape == (2,)  # both faces found on TensorRT too
    assert all(d.max_abs <= 0.01 for d in diffs)
    timing = bench_task(run, backend, batch=2, loop=3, warmup=1)
    assert timing.batch == 2 and timing.throughput > 0
    stages = timing.stages_ms
    assert stages["inference"] > 0 and sum(stages.values()) == pytest.approx(timing.mean_ms, rel=0.05, abs=0.3)


def test_blendshapes_check_on_tensorrt(models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path) -> None:
    from facelib.models.convert.mediapipe import build_package

    mp = models_dir / "mediapipe"
    sources = {
        "task": mp / "face_landmarker.task",
        "detector": mp / "face_detector.onnx",
        "landmarks": mp / "face_landmarks_detector.onnx",
        "blendshapes": mp / "face_blendshapes.onnx",
    }
    package = build_package(sources, tmp_path / "mediapipe").root
    image = models_dir.parent / "media" / "images" / "obama.jpg"
    diffs = check_task(prepare("blendshapes", package, [image]), make_backend10(), "onnxruntime")
    fields = {d.output: d for d in diffs}
    assert fields["faces.blendshapes"].shape == (52,) and fields["faces.blendshapes"].max_abs < 1e-3
    assert fields["faces.landmarks"].max_abs < 0.05


def test_motion_check_on_tensorrt(models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path) -> None:
    pytest.importorskip("torch")  # converting the checkpoint needs it
    from facelib.models.convert.fomm import build_package

    reference = models_dir.parents[1] / "reference"
    pkg = build_package(
        {"checkpoint": reference / "fomm_tiny_seed1.pth.tar"},
        tmp_path / "fomm",
        config=reference / "fomm_tiny_seed1.yaml",
    ).root
    media = models_dir.parent / "media"
    run = prepare("motion", pkg, [media / "images" / "fomm_source_02.png", media / "video" / "fomm_driving_00.mp4"])
    (diff,) = check_task(run, make_backend10(), "onnxruntime", max_frames=3)
    assert diff.output == "frames" and diff.shape == (3 * 256 * 256 * 3,) and diff.max_abs < 1e-4
