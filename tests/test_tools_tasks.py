"""``facelib bench TASK`` / ``facelib check TASK`` on real models and media (ONNX Runtime)."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.cli import main
from facelib.errors import InputError, MediaReadError
from facelib.tools.stages import StageClock, TimedSession, instrument
from facelib.tools.task_tools import TaskRun, bench_task, check_task, prepare, result_fields


@pytest.fixture(scope="module")
def packages(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tools-tasks")
    return build_fsanet(models_dir, root / "fsanet"), build_ultraface(models_dir, root / "ultraface")


@pytest.fixture(scope="module")
def headpose_run(packages: tuple[Path, Path], media_dir: Path) -> TaskRun:
    fsanet, ultraface = packages
    return prepare("headpose", fsanet, [media_dir / "images" / "two_people.jpg"], detector=str(ultraface))


def _adds_up(stages: dict[str, float], mean_ms: float) -> None:
    assert set(stages) == {"preprocess", "inference", "postprocess"}
    assert all(v >= 0 for v in stages.values()) and stages["inference"] > 0
    # the split covers the whole call: only the clock's own cost is outside it
    assert sum(stages.values()) == pytest.approx(mean_ms, rel=0.05, abs=0.3)


def test_bench_headpose_batches_images_and_splits_stages(headpose_run: TaskRun) -> None:
    timing = bench_task(headpose_run, "onnxruntime", batch=2, loop=4, warmup=1)
    assert timing.name == "headpose" and timing.batch == 2 and timing.loop == 4
    assert 0 < timing.p50_ms <= timing.p90_ms <= timing.p99_ms
    assert timing.throughput == pytest.approx(2000 / timing.mean_ms, rel=1e-6)
    assert timing.peak_rss_mb > 0
    _adds_up(timing.stages_ms, timing.mean_ms)
    # the detector's network counts as inference too: both sessions were timed
    assert timing.stages_ms["preprocess"] < timing.stages_ms["inference"]


def test_bench_blendshapes_on_video_tracks_frames(mediapipe_package: Path, media_dir: Path) -> None:
    run = prepare("blendshapes", mediapipe_package, [media_dir / "video" / "talking_face_01.mp4"])
    timing = bench_task(run, "onnxruntime", loop=6, warmup=1, max_frames=4)
    assert timing.batch == 1 and timing.throughput > 0
    _adds_up(timing.stages_ms, timing.mean_ms)


def test_instrument_wraps_sessions_opened_in_the_constructor(mediapipe_package: Path) -> None:
    from facelib.tasks.blendshapes import BlendshapeCapture

    with BlendshapeCapture(mediapipe_package) as capture:
        clock = StageClock()
        instrument(capture, clock)
        landmarker = capture._engine.landmarker
        assert landmarker._sessions and all(isinstance(s, TimedSession) for s in landmarker._sessions.values())
        instrument(capture, clock)  # idempotent: no double wrapping
        assert all(not isinstance(s._inner, TimedSession) for s in landmarker._sessions.values())  # type: ignore[attr-defined]


def test_check_headpose_reports_every_result_field(headpose_run: TaskRun) -> None:
    diffs = check_task(headpose_run, "onnxruntime", "onnxruntime")
    fields = {d.output for d in diffs}
    assert {"yaw", "pitch", "roll", "box", "score", "variants.capsule"} <= fields
    assert all(d.max_abs == 0 for d in diffs)
    assert next(d for d in diffs if d.output == "yaw").shape == (2,)  # two faces


def test_check_blendshapes_with_other_graph_optimisation(mediapipe_package: Path, media_dir: Path) -> None:
    run = prepare("blendshapes", mediapipe_package, [media_dir / "images" / "obama.jpg"])
    diffs = {
        d.output: d for d in check_task(run, "onnxruntime", "onnxruntime", {"graph_optimization_level": "disable"})
    }
    assert {"faces.blendshapes", "faces.landmarks", "faces.transform", "faces.head_pose"} <= set(diffs)
    assert diffs["faces.blendshapes"].shape == (52,)
    assert 0 < diffs["faces.landmarks"].max_abs < 0.05  # pixels: different kernels, same answer
    assert diffs["faces.blendshapes"].max_abs < 1e-3


@attrs.frozen
class _Face:
    box: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=np.array_equal))
    score: float
    name: str = "x"
    image: np.ndarray | None = attrs.field(default=None, eq=False)
    extra: dict[str, tuple[float, float]] = attrs.field(factory=dict)


def test_result_fields_flatten_nested_results() -> None:
    a = _Face(np.arange(4.0), 0.5, image=np.zeros((2, 2)), extra={"v": (1.0, 2.0)})
    fields = result_fields([[a, a], []])
    assert set(fields) == {"box", "score", "extra.v"}  # strings and eq=False fields skipped
    assert fields["box"].shape == (8,) and fields["extra.v"].tolist() == [1.0, 2.0, 1.0, 2.0]
    assert result_fields([{"frames": np.ones((2, 3), np.uint8)}])["frames"].shape == (6,)


def test_check_reports_missing_faces_as_infinite(headpose_run: TaskRun, monkeypatch: pytest.MonkeyPatch) -> None:
    from facelib.tools import task_tools

    real = task_tools.run_task
    calls = iter([0, 1])

    def one_face_less(*args: object, **kwargs: object) -> list[object]:
        out = real(*args, **kwargs)  # type: ignore[arg-type]
        return [r[:1] for r in out] if next(calls) == 0 else out  # type: ignore[index]

    monkeypatch.setattr(task_tools, "run_task", one_face_less)
    diffs = check_task(headpose_run, "onnxruntime")
    assert all(d.max_abs == float("inf") for d in diffs)


def test_cli_bench_and_check_tasks(
    packages: tuple[Path, Path], media_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fsanet, ultraface = packages
    image = str(media_dir / "images" / "obama.jpg")
    common = ["--model", str(fsanet), "--detector", str(ultraface), "--input", image]
    assert main(["bench", "headpose", *common, "--loop", "3", "--warmup", "0", "--json"]) == 0
    (timing,) = json.loads(capsys.readouterr().out)["timings"]
    assert timing["name"] == "headpose" and set(timing["stages_ms"]) == {"preprocess", "inference", "postprocess"}
    assert main(["check", "headpose", *common, "--backend", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert "yaw" in out and "tolerance 0.01" in out
    args = ["check", "headpose", *common, "--backend-option", "graph_optimization_level=disable"]
    assert main([*args, "--tolerance", "-1"]) == 1


def test_cli_task_errors_are_actionable(packages: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    fsanet, _ = packages
    assert main(["bench", "headpose", "--model", str(fsanet)]) == 2
    assert "needs --input" in capsys.readouterr().err
    assert main(["check", "headpose", "--model", str(fsanet), "--input", "/nonexistent/face.jpg"]) == 2
    assert "not found" in capsys.readouterr().err
    image = str(Path(__file__))  # exists; the package does not
    assert main(["bench", "headpose", "--model", "./missing-package", "--input", image]) == 2
    assert "model package not found" in capsys.readouterr().err


def test_unbatched_task_refuses_batch(mediapipe_package: Path, media_dir: Path) -> None:
    run = prepare("blendshapes", mediapipe_package, [media_dir / "images" / "obama.jpg"])
    with pytest.raises(InputError, match="--batch must be 1"):
        bench_task(run, "onnxruntime", batch=2, loop=1)
    with pytest.raises(InputError, match="unknown task"):
        prepare("nosuchtask", None, [])


def test_undecodable_input(packages: tuple[Path, Path], tmp_path: Path) -> None:
    fsanet, ultraface = packages
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video")
    run = prepare("headpose", fsanet, [bad], detector=str(ultraface))
    with pytest.raises(MediaReadError):
        bench_task(run, "onnxruntime", loop=1)


def test_motion_bench_and_check(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")  # to convert the checkpoint; running it needs only onnxruntime
    from facelib.models.convert.fomm import build_package

    pkg = build_package(
        {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"},
        tmp_path / "fomm",
        config=reference_dir / "fomm_tiny_seed1.yaml",
    ).root
    inputs = [media_dir / "images" / "fomm_source_02.png", media_dir / "video" / "fomm_driving_00.mp4"]
    with pytest.raises(InputError, match="--input twice"):
        prepare("motion", pkg, inputs[:1])
    run = prepare("motion", pkg, inputs)
    timing = bench_task(run, "onnxruntime", loop=2, warmup=0, max_frames=3)
    assert timing.batch == 3 and timing.throughput == pytest.approx(3000 / timing.mean_ms, rel=1e-6)
    _adds_up(timing.stages_ms, timing.mean_ms)
    (diff,) = check_task(run, "onnxruntime", "onnxruntime", {"graph_optimization_level": "disable"}, max_frames=3)
    assert diff.output == "frames" and diff.shape == (3 * 256 * 256 * 3,) and diff.max_abs < 1e-4


def test_audio2face_bench_and_check(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("facelib.tasks.audio2face")  # merged from the audio2face branch
    pytest.importorskip("torch")  # to convert the tiny FaceFormer checkpoint
    convert = pytest.importorskip("faceformer_helpers").convert  # tests/ of the audio2face branch
    pkg = convert(reference_dir, tmp_path / "faceformer", "vocaset")
    audio = media_dir / "audio" / "jfk_16k_mono.wav"
    template = str(media_dir / "meshes" / "FLAME_sample.ply")
    run = prepare("audio2face", pkg, [audio], template=template)
    timing = bench_task(run, "onnxruntime", loop=1, warmup=0)
    assert timing.batch == 329  # 11 s at 30 fps: items are animation frames
    _adds_up(timing.stages_ms, timing.mean_ms)
    diffs = {
        d.output: d for d in check_task(run, "onnxruntime", "onnxruntime", {"graph_optimization_level": "disable"})
    }
    assert diffs["vertices"].shape == (329 * 5023 * 3,) and diffs["vertices"].max_abs < 1e-4
