"""The one shape of the tasks (issue 14): constructors, from_pretrained, the resolver, sub-models,
backend workload presets and the chunk/pad helper."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.backends.base import Backend, Session, SpecSession, TensorSpec
from facelib.backends.batching import fixed_batch, run_batched
from facelib.backends.onnxruntime import OnnxRuntimeBackend, physical_cores
from facelib.cli import main
from facelib.errors import BackendError, ModelCardError, ModelError
from facelib.io.image import read_image
from facelib.models import hub
from facelib.models.registry import DEFAULT_MODELS, PACKAGES
from facelib.tasks.audio2face import Audio2Face
from facelib.tasks.blendshapes import BlendshapeCapture
from facelib.tasks.head_pose import HeadPose
from facelib.tasks.motion_transfer import MotionTransfer

TASKS = (HeadPose, BlendshapeCapture, Audio2Face, MotionTransfer)


@pytest.fixture(scope="module")
def headpose_pkgs(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shape")
    return build_fsanet(models_dir, root / "fsanet"), build_ultraface(models_dir, root / "uf")


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to fetch or build a package fails the test."""

    def refuse(name: str, **options: Any) -> Path:
        raise AssertionError(f"ensure_package({name!r}) was called")

    monkeypatch.setattr(hub, "ensure_package", refuse)


# -- one shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", TASKS, ids=lambda c: c.__name__)
def test_every_task_has_the_same_shape(cls: type) -> None:
    params = list(inspect.signature(cls.__init__).parameters.values())
    assert [p.name for p in params[:2]] == ["self", "model"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:]), "options are keyword-only"
    assert {"backend", "backend_options"} <= {p.name for p in params}
    assert "mode" not in {p.name for p in params} or cls is BlendshapeCapture  # "mode" = running mode only
    assert cls.default_model() == DEFAULT_MODELS[cls.task_name]
    assert PACKAGES[cls.default_model()].task == cls.task_name
    pretrained = inspect.signature(cls.from_pretrained).parameters
    assert "name" in pretrained and pretrained["name"].default is None


def test_wrong_task_is_refused_before_any_download(
    headpose_pkgs: tuple[Path, Path], media_dir: Path, no_downloads: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # issue 14: 'facelib headpose --model fomm-vox-256' asked for a 728 MB download first
    _, detector = headpose_pkgs
    image = str(media_dir / "images" / "obama.jpg")
    assert main(["headpose", image, "--model", "fomm-vox-256", "--detector", str(detector)]) == 2
    err = capsys.readouterr().err
    assert "'fomm-vox-256' is a 'motion_transfer' model, not a 'head_pose' model" in err and "fsanet" in err
    with pytest.raises(ModelError, match="not a 'face_detection' or 'blendshapes' model"):
        HeadPose(headpose_pkgs[0], detector="fsanet")
    with pytest.raises(ModelError, match="not a 'audio2face' model"):
        Audio2Face.from_pretrained("mediapipe-face-landmarker")


def test_resolver_paths_and_packages(headpose_pkgs: tuple[Path, Path], tmp_path: Path) -> None:
    fsanet, ultraface = headpose_pkgs
    package = hub.resolve_package(fsanet, task="head_pose")
    assert package.card.task == "head_pose" and hub.resolve_package(package, task="head_pose") is package
    assert hub.resolve_package(str(ultraface), task=("face_detection", "head_pose")).card.task == "face_detection"
    with pytest.raises(ModelCardError, match="not a 'head_pose' model"):
        hub.resolve_package(ultraface, task="head_pose")
    with pytest.raises(ModelError, match="model package not found"):
        hub.resolve_package(str(tmp_path / "missing"), task="head_pose")
    with pytest.raises(ModelError, match="known 'head_pose' models: fsanet"):
        hub.resolve_package("no-such-model", task="head_pose")


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["audio2face", "--audio", "speech.wav"], "faceformer-vocaset"),
        (["motion", "--source", "face.png", "--driving", "drive.mp4", "-o", "out.mp4"], "fomm-vox-256"),
    ],
)
def test_cli_takes_hub_names_and_says_how_to_get_them(
    command: list[str],
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACELIB_OFFLINE", "1")
    monkeypatch.delenv("FACELIB_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)
    for path in ("speech.wav", "face.png", "drive.mp4"):  # inputs are checked first (issue 20)
        (tmp_path / path).write_bytes(b"x")
    assert main([*command, "--model", name]) == 2
    err = capsys.readouterr().err
    assert f"facelib models fetch {name}" in err and "facelib convert" in err


def test_headpose_takes_any_detector_package(
    headpose_pkgs: tuple[Path, Path],
    models_dir: Path,
    media_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # issue 14: 'facelib headpose --detector faceboxes' failed with "preprocessing needs 'size'"
    pytest.importorskip("torch")
    from facelib.models.convert.faceboxes import build_package
    from facelib.tasks.faceboxes import FaceBoxesDetector

    faceboxes = build_package({"weights": models_dir / "faceboxes" / "FaceBoxesProd.pth"}, tmp_path / "fb").root
    image = read_image(media_dir / "images" / "two_people.jpg")
    with HeadPose(headpose_pkgs[0], detector=faceboxes, backend="onnxruntime") as pose:
        assert isinstance(pose.detector, FaceBoxesDetector)
        faces = pose.predict(image)
        with FaceBoxesDetector(faceboxes) as direct:
            boxes = direct.detect(image)
        assert len(faces) == len(boxes) == 2
        np.testing.assert_array_equal(np.stack([f.box for f in faces]), np.stack([b.box for b in boxes]))
        detector = pose.detector
    assert not detector._sessions, "the detector HeadPose opened is closed with it"
    args = ["headpose", str(media_dir / "images" / "two_people.jpg"), "--model", str(headpose_pkgs[0])]
    assert main([*args, "--detector", str(faceboxes), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["faces"]) == 2


def test_blazeface_is_a_detector_like_the_others(
    headpose_pkgs: tuple[Path, Path], mediapipe_package: Path, media_dir: Path
) -> None:
    from facelib.tasks.blazeface import BlazeFaceDetector
    from facelib.tasks.face_landmarker import FaceLandmarker

    image = read_image(media_dir / "images" / "obama.jpg")
    with FaceLandmarker(mediapipe_package) as landmarker:
        expected = landmarker.detect_faces(image)
    with BlazeFaceDetector(mediapipe_package) as detector:
        faces = detector.detect(image)
        assert "BlazeFaceDetector('mediapipe-face-landmarker'" in repr(detector)
    assert len(faces) == len(expected) == 1
    np.testing.assert_allclose(faces[0].box, expected.boxes[0], rtol=0, atol=1e-4)
    np.testing.assert_allclose(faces[0].keypoints, expected.keypoints[0], rtol=0, atol=1e-4)
    with HeadPose(headpose_pkgs[0], detector=mediapipe_package) as pose:
        assert isinstance(pose.detector, BlazeFaceDetector)
        (face,) = pose.predict(image)
        np.testing.assert_allclose(face.box, faces[0].box, rtol=0, atol=1e-4)


def test_sub_models_inherit_the_backend(headpose_pkgs: tuple[Path, Path]) -> None:
    fsanet, ultraface = headpose_pkgs
    with HeadPose(fsanet, detector=ultraface, backend="onnxruntime") as pose:
        # the pose networks get the small_models preset; the detector its own (none): as before
        assert pose.backend.options["intra_op_num_threads"] == 1
        assert pose.detector.backend.name == "onnxruntime"  # type: ignore[union-attr]
        assert pose.detector.backend.options["intra_op_num_threads"] == 0  # type: ignore[union-attr]
        assert "HeadPose('fsanet'" in repr(pose) and "backend='onnxruntime'" in repr(pose)
    mine = OnnxRuntimeBackend(intra_op_num_threads=2)
    with HeadPose(fsanet, detector=str(ultraface), backend=mine) as pose:
        assert pose.backend is mine and pose.detector.backend is mine  # type: ignore[union-attr]
    options = {"graph_optimization_level": "basic"}
    with HeadPose(fsanet, detector=ultraface, backend="onnxruntime", backend_options=options) as pose:
        for backend in (pose.backend, pose.detector.backend):  # type: ignore[union-attr]
            assert backend.options["graph_optimization_level"] == "basic"
            assert backend.options["intra_op_num_threads"] == 0  # options given: no preset


def test_head_pose_threads_follow_the_batch_size(headpose_pkgs: tuple[Path, Path]) -> None:
    """Per-face calls on one thread, batches of BATCHED_FROM faces or more on every usable core."""
    from facelib.backends.base import BATCHED_FROM

    rng = np.random.default_rng(0)
    crops = rng.uniform(0, 255, (BATCHED_FROM, 64, 64, 3)).astype(np.float32)
    with HeadPose(headpose_pkgs[0], backend="onnxruntime") as pose:
        one = pose.predict_crops(crops[:1])[0]
        assert list(pose._sessions) == ["ensemble"]
        many = pose.predict_crops(crops)[0]
        assert sorted(pose._sessions) == ["ensemble", "ensemble@batched"]
        assert pose.backend.options["intra_op_num_threads"] == 1
        assert pose._batch_backend is not None
        assert pose._batch_backend.options["intra_op_num_threads"] == physical_cores()
        np.testing.assert_allclose(many[:1], one, atol=1e-4)
    with HeadPose(headpose_pkgs[0], backend="onnxruntime", backend_options={"intra_op_num_threads": 2}) as pose:
        pose.predict_crops(crops)
        assert list(pose._sessions) == ["ensemble"]  # the caller's options: no second session


def test_workload_presets_live_in_the_backend() -> None:
    base = OnnxRuntimeBackend()
    assert base.for_workload("small_models").options["intra_op_num_threads"] == 1
    tuned = base.for_workload("interleaved").options["session_config"]
    assert tuned == {"session.force_spinning_stop": "1"}  # spinning inside a run only
    assert base.options["session_config"] == {}  # the original is unchanged
    piped = base.for_workload("pipelined").options
    assert piped["intra_op_num_threads"] == 1 and piped["session_config"] == {"session.intra_op.allow_spinning": "0"}
    batched = base.for_workload("batched").options
    assert batched["intra_op_num_threads"] == physical_cores() and batched["session_config"] == {}  # spinning on
    with pytest.raises(BackendError, match="unknown workload"):
        base.for_workload("fast")

    class Plain(Backend):
        name = "plain-test"

        @classmethod
        def available(cls) -> Any:
            return True

        def load(self, artefact: Path) -> Session:
            raise NotImplementedError

    plain = Plain()
    assert plain.for_workload("small_models") is plain


# -- chunking and padding -----------------------------------------------------------------------


class _Recorder(SpecSession):
    """A session built for batch ``fixed`` (or dynamic) that doubles ``x`` and adds ``s``."""

    def __init__(self, fixed: int | None, shared_batch: int | None = None) -> None:
        inputs = (
            TensorSpec("x", (fixed if fixed else "N", 2), "float32"),
            TensorSpec("s", (shared_batch if shared_batch else "M", 2), "float32"),
        )
        super().__init__(Path("recorder.onnx"), inputs, (TensorSpec("y", ("N", 2), "float32"),))
        self.calls: list[dict[str, np.ndarray]] = []

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        self.calls.append(dict(feeds))
        return {"y": feeds["x"] * 2 + feeds["s"][:1]}


def test_run_batched_chunks_pads_and_trims() -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    s = np.ones((1, 2), np.float32)
    fixed = _Recorder(4, shared_batch=4)
    assert fixed_batch(fixed) == 4 and fixed_batch(fixed, "s") == 4
    out = run_batched(fixed, {"x": x, "s": s}, ["x"], shared=["s"])
    np.testing.assert_array_equal(out["y"], x * 2 + 1)
    assert [len(c["x"]) for c in fixed.calls] == [4, 4, 4]  # the last chunk padded from 2 to 4
    np.testing.assert_array_equal(fixed.calls[-1]["x"][2:], np.repeat(x[-1:], 2, 0))  # copies of the last row
    assert all(len(c["s"]) == 4 for c in fixed.calls)
    dynamic = _Recorder(None)
    run_batched(dynamic, {"x": x, "s": s}, ["x"], shared=["s"])
    assert len(dynamic.calls) == 1 and dynamic.calls[0]["x"] is x  # nothing to do: one call as given
    limited = _Recorder(None)
    out = run_batched(limited, {"x": x, "s": s}, ["x"], max_batch=3, shared=["s"])
    assert [len(c["x"]) for c in limited.calls] == [3, 3, 3, 1]
    np.testing.assert_array_equal(out["y"], x * 2 + 1)
