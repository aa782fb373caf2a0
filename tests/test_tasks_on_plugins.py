"""Every task, end to end, through every device plugin (with its SDK doubles) vs ONNX Runtime.

Issues 7 and 8: with the vendor-SDK doubles, each task runs end to end through each plugin
and its *results* (angles, boxes, blendshapes, landmarks, vertices, frames) match the ONNX
Runtime backend within 1e-5.  The path under test is the hardware one: the task opens its
sessions with ``ModelPackage.session`` -> ``backend.compile`` (TensorRT builder, ATC,
TPU-MLIR, MagicMind builder) -> ``backend.load`` -> the plugin's ``Session.run``; only the
vendor modules are doubles (they run the ONNX carried inside the compiled artefact with
onnxruntime and enforce the real SDK's rules: static stages, profiles, dtypes, positional IO).

Packages are built once per test session; ONNX Runtime references are computed once; each
plugin compiles each model file once (cached in the package, as on a real machine).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from plugin_doubles import BACKENDS, PLUGINS, plugin_backend

from facelib.errors import InputError
from facelib.io.video import VideoReader

TOL = 1e-5
#: Module prefix of each plugin's Session classes (the sessions a task opens must be these).
PLUGIN_MODULES = {
    "tensorrt": "facelib_tensorrt",
    "ascend": "facelib_ascend",
    "sophon": "facelib_sophon",
    "cambricon": "facelib_cambricon",
}


# -- comparing task results ----------------------------------------------------------------------


def differences(got: Any, want: Any, path: str = "result") -> dict[str, float]:
    """Max absolute difference per field path between two task results of the same structure.

    Walks attrs result classes, dicts, lists/tuples and arrays; structure (types, lengths,
    keys, None-ness, shapes) must be identical, otherwise the assertion names the path.
    """
    if attrs.has(type(want)):
        assert type(got) is type(want), f"{path}: {type(got).__name__} != {type(want).__name__}"
        out: dict[str, float] = {}
        for field in attrs.fields(type(want)):
            out.update(differences(getattr(got, field.name), getattr(want, field.name), f"{path}.{field.name}"))
        return out
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        out = {}
        for key in want:
            out.update(differences(got[key], want[key], f"{path}[{key!r}]"))
        return out
    if isinstance(want, list | tuple) and not (want and isinstance(want[0], int | float | np.floating)):
        assert isinstance(got, list | tuple) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        out = {}
        for i, (g, w) in enumerate(zip(got, want)):
            for key, value in differences(g, w, f"{path}[{i}]").items():
                out[key] = max(out.get(key, 0.0), value)
        return out
    if want is None:
        assert got is None, f"{path}: got a value where the reference has None"
        return {}
    if isinstance(want, str):
        assert got == want, f"{path}: {got!r} != {want!r}"
        return {}
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"{path}: shape {g.shape} != {w.shape}"
    if w.dtype.kind in "biu" and g.dtype.kind in "biu":
        return {_generic(path): float(np.max(np.abs(g.astype(np.int64) - w.astype(np.int64)), initial=0))}
    return {_generic(path): float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)), initial=0.0))}


def _generic(path: str) -> str:
    """``result[0].faces[1].box`` -> ``result[].faces[].box`` (one figure per field)."""
    import re

    return re.sub(r"\[\d+\]", "[]", path)


def assert_results_match(got: Any, want: Any, what: str, tol: float = TOL) -> dict[str, float]:
    diffs = differences(got, want)
    assert diffs, f"{what}: nothing was compared"
    worst = {k: v for k, v in diffs.items() if not math.isfinite(v) or v > tol}
    assert not worst, f"{what}: results differ from ONNX Runtime by more than {tol}: {worst}"
    print(f"\n{what}: max |difference| {max(diffs.values()):.3g} over {len(diffs)} fields")
    return diffs


def on(target: Target | None) -> dict[str, Any]:
    """Task keyword arguments selecting ``target``, or ONNX Runtime (the reference) for None."""
    if target is None:
        return {"backend": "onnxruntime"}
    return {"backend": target.name, "backend_options": target.options}


def assert_plugin_sessions(task: Any, target: Target, roles: set[str]) -> None:
    """The task really ran on the plugin, configured as asked: its sessions are the plugin's
    (this checkout's code), loaded from artefacts the plugin compiled into the package cache."""
    assert task.backend.name == target.name
    for key, value in (target.options or {}).items():
        assert task.backend.options.get(key) == value, f"backend option {key}={value!r} did not reach {task}"
    sessions = dict(task._sessions)
    assert roles <= set(sessions), f"sessions opened: {sorted(sessions)}, expected at least {sorted(roles)}"
    for role in roles:
        session = sessions[role]
        module = sys.modules[type(session).__module__]
        assert module.__name__.startswith(PLUGIN_MODULES[target.name]), (role, type(session))
        assert PLUGINS in Path(module.__file__ or "").resolve().parents, f"{module.__file__} is not this checkout's"
        path = Path(session.model_path)
        assert path.suffix != ".onnx" and path.is_file(), f"{role}: {path} is not a compiled artefact"
        assert task.package.root / ".facelib-cache" / target.name in path.parents


def test_result_comparison_catches_differences() -> None:
    """The comparison used above fails on a small numeric change and on any structural change."""
    from facelib.tasks.blendshape_results import BlendshapeFrame, FaceBlendshapes

    face = FaceBlendshapes(np.array([1.0, 2.0, 3.0, 4.0], np.float32), 0.9, np.full(52, 0.5, np.float32))
    frame = BlendshapeFrame(0, 0.0, (face,))
    nudged = attrs.evolve(face, blendshapes=face.blendshapes + np.float32(2e-5))
    same = differences(frame, frame)
    assert set(same) == {
        "result.index",
        "result.timestamp_ms",
        "result.faces[].box",
        "result.faces[].score",
        "result.faces[].blendshapes",
    } and set(same.values()) == {0.0}
    with pytest.raises(AssertionError, match="blendshapes"):
        assert_results_match(attrs.evolve(frame, faces=(nudged,)), frame, "nudged")
    with pytest.raises(AssertionError, match="length"):
        assert_results_match(attrs.evolve(frame, faces=()), frame, "no face")
    with pytest.raises(AssertionError, match="None"):
        assert_results_match(attrs.evolve(frame, faces=(attrs.evolve(face, landmarks=np.zeros((478, 3))),)), frame, "x")


# -- fixtures --------------------------------------------------------------------------------------


@attrs.frozen
class Target:
    """A plugin backend configuration the tasks run on: ``Task(..., backend=name, backend_options=options)``."""

    label: str
    name: str
    options: dict[str, Any] | None = None
    activation: dict[str, Any] = attrs.field(factory=dict)

    @property
    def static(self) -> bool:
        """True for artefacts built with fixed input shapes (the plugin pads batches)."""
        return bool(self.options and self.options.get("mutable") is False)


#: Every plugin with its default build (dynamic inputs: TensorRT profiles, ATC gears/ranges,
#: TPU-MLIR static batch stages or a dynamic bmodel, MagicMind mutable shapes), TensorRT 11
#: (strongly typed networks), and MagicMind built with fixed shapes (the card's ``opt``
#: shapes) to run the tasks on static artefacts.
TARGETS = [
    *(Target(name, name) for name in BACKENDS),
    Target("tensorrt-11", "tensorrt", activation={"version": "11.1.0"}),  # strongly typed networks
    Target("cambricon-fixed", "cambricon", {"mutable": False}),
]


@pytest.fixture(scope="module", params=TARGETS, ids=[t.label for t in TARGETS])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One device plugin configuration at a time, active through its SDK doubles."""
    chosen: Target = request.param
    with plugin_backend(chosen.name, tmp_path_factory.mktemp(f"plugin-{chosen.label}"), **chosen.activation):
        yield chosen


@pytest.fixture(scope="session")
def fsanet_package(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from headpose_support import build_fsanet

    return build_fsanet(models_dir, tmp_path_factory.mktemp("e2e") / "fsanet")


@pytest.fixture(scope="session")
def ultraface_package(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from headpose_support import build_ultraface

    return build_ultraface(models_dir, tmp_path_factory.mktemp("e2e") / "ultraface")


# -- HeadPose (FSA-Net + UltraFace) ------------------------------------------------------------------


def _head_pose_run(fsanet: Path, ultraface: Path, media_dir: Path, target: Target | None) -> tuple[Any, Any, Any]:
    from facelib import HeadPose

    images = [media_dir / "images" / "obama.jpg", media_dir / "images" / "two_people.jpg"]
    with HeadPose(fsanet, detector=ultraface, **on(target)) as task:
        images_result = task.predict(images)  # one batch of 3 faces through the ensemble graph
        frames = [f for _, f in zip(range(3), task.predict_video(media_dir / "video" / "talking_face_01.mp4"))]
        if target is not None:
            assert_plugin_sessions(task, target, {"ensemble"})
            assert_plugin_sessions(task.detector, target, {"detector"})
    with HeadPose(fsanet, **on(target), variants=["capsule", "noS_capsule"]) as task:
        crops = task.crops(np.asarray(frames[0].image), np.stack([f.box for f in frames[0].faces]))
        crops = np.concatenate([crops] * 3)  # per-variant files, a batch that is no static stage
        variants_result = task.predict_crops(crops)
        if target is not None:
            assert_plugin_sessions(task, target, {"capsule", "noS_capsule"})
    return images_result, frames, variants_result


@pytest.fixture(scope="session")
def head_pose_reference(fsanet_package: Path, ultraface_package: Path, media_dir: Path) -> tuple[Any, Any, Any]:
    return _head_pose_run(fsanet_package, ultraface_package, media_dir, None)


def test_head_pose(
    target: Target,
    fsanet_package: Path,
    ultraface_package: Path,
    media_dir: Path,
    head_pose_reference: tuple[Any, Any, Any],
) -> None:
    got = _head_pose_run(fsanet_package, ultraface_package, media_dir, target)
    images, frames, variants = head_pose_reference
    assert [len(faces) for faces in images] == [1, 2], "the reference should see 1 + 2 faces"
    assert_results_match(got[0], images, f"HeadPose images on {target.label}")
    assert_results_match(got[1], frames, f"HeadPose video on {target.label}")
    assert_results_match(list(got[2]), list(variants), f"HeadPose crops (2 variants) on {target.label}")


# -- BlendshapeCapture (MediaPipe Face Landmarker) --------------------------------------------------


def _blendshapes_run(package: Path, media_dir: Path, target: Target | None) -> tuple[Any, Any]:
    from facelib import BlendshapeCapture

    images = [media_dir / "images" / "obama.jpg", media_dir / "images" / "two_people.jpg"]
    with BlendshapeCapture(package, mode="image", **on(target), num_faces=2) as cap:
        still = [cap.process(image) for image in images]
        if target is not None:
            assert_plugin_sessions(cap._engine.landmarker, target, {"detector", "landmarks", "blendshapes"})
    with BlendshapeCapture(package, mode="video", **on(target)) as cap:
        video = list(cap.process_video(media_dir / "video" / "talking_face_01.mp4", max_frames=4))
    return still, video


@pytest.fixture(scope="session")
def blendshapes_reference(mediapipe_package: Path, media_dir: Path) -> tuple[Any, Any]:
    return _blendshapes_run(mediapipe_package, media_dir, None)


def test_blendshape_capture(
    target: Target, mediapipe_package: Path, media_dir: Path, blendshapes_reference: tuple[Any, Any]
) -> None:
    still, video = _blendshapes_run(mediapipe_package, media_dir, target)
    want_still, want_video = blendshapes_reference
    assert [len(f.faces) for f in want_still] == [1, 2]
    assert all(len(f.faces) == 1 for f in want_video)
    assert_results_match(still, want_still, f"BlendshapeCapture images on {target.label}")
    assert_results_match(video, want_video, f"BlendshapeCapture video on {target.label}")


@pytest.fixture(scope="session")
def regressor_package(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The regressor engine variant: the real FaceBoxes detector + a small seeded MobileNetV3-like
    regressor (the test_regressor net), NHWC BGR input, head pose among the outputs."""
    pytest.importorskip("torch")
    from test_regressor import NAMES_57, SIZE, _export, _make_net

    from facelib.models.convert.faceboxes import build_package as build_faceboxes
    from facelib.models.convert.regressor import build_package

    tmp = tmp_path_factory.mktemp("e2e")
    faceboxes = build_faceboxes({"weights": models_dir / "faceboxes" / "FaceBoxesProd.pth"}, tmp / "faceboxes")
    onnx = _export(_make_net(len(NAMES_57), seed=1, nhwc=True), tmp / "regressor.onnx", (1, *SIZE, 3))
    return build_package(
        {"regressor": onnx, "detector": faceboxes.root},
        tmp / "regressor",
        input_size=SIZE,
        output_names=NAMES_57,
        colour_order="BGR",
        mean=(127.5, 127.5, 127.5),
        std=(127.5, 127.5, 127.5),
        pixel_scale=1.0,
        layout="NHWC",
        margin=0.1,
        square=False,
        head_pose={"names": ["HeadYaw", "HeadPitch", "HeadRoll"], "unit": "livelink"},
    ).root


def _regressor_run(package: Path, media_dir: Path, target: Target | None) -> list[Any]:
    from facelib import BlendshapeCapture

    images = [media_dir / "images" / "obama.jpg", media_dir / "images" / "two_people.jpg"]
    with BlendshapeCapture(package, mode="image", **on(target), num_faces=2) as cap:
        frames = [cap.process(image) for image in images]
        if target is not None:
            assert_plugin_sessions(cap._engine, target, {"regressor"})
            assert_plugin_sessions(cap._engine.detector, target, {"detector"})
    return frames


@pytest.fixture(scope="session")
def regressor_reference(regressor_package: Path, media_dir: Path) -> list[Any]:
    return _regressor_run(regressor_package, media_dir, None)


def test_blendshape_capture_regressor(
    target: Target, regressor_package: Path, media_dir: Path, regressor_reference: list[Any]
) -> None:
    if target.static:
        pytest.skip("FaceBoxes takes each image at its own size; a fixed-shape build would need resizing")
    got = _regressor_run(regressor_package, media_dir, target)
    assert [len(f.faces) for f in regressor_reference] == [1, 2]
    assert_results_match(got, regressor_reference, f"BlendshapeCapture (FaceBoxes + regressor) on {target.label}")


# -- Audio2Face (FaceFormer) ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def faceformer_package(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from facelib.models.convert.faceformer import build_package

    out = tmp_path_factory.mktemp("e2e") / "faceformer"
    checkpoint = reference_dir / "faceformer_vocaset_tiny_seed1.pth"
    return build_package({"checkpoint": checkpoint}, out, dataset="vocaset", encoder_heads=4).root


def _audio2face_run(package: Path, reference_dir: Path, target: Target | None) -> tuple[Any, Any]:
    from facelib.tasks.audio2face import Audio2Face

    with np.load(reference_dir / "faceformer_vocaset_tiny_seed1_ref.npz") as z:
        audio, template = z["audio_16k"][: 16000 * 2], z["template"]
    with Audio2Face(package, **on(target)) as task:
        whole = task.predict(audio, 1, template)  # one encoder call, then one decoder step per frame
        causal = task.predict(audio, 1, template, causal=True)  # streaming windows: other shapes
        if target is not None:
            assert_plugin_sessions(task, target, {"audio_encoder", "decoder_step"})
    return whole, causal


@pytest.fixture(scope="session")
def audio2face_reference(faceformer_package: Path, reference_dir: Path) -> tuple[Any, Any]:
    return _audio2face_run(faceformer_package, reference_dir, None)


def test_audio2face(
    target: Target, faceformer_package: Path, reference_dir: Path, audio2face_reference: tuple[Any, Any]
) -> None:
    if target.static:
        # sequence lengths vary (audio windows, the growing decoder cache): an artefact built for
        # fixed shapes cannot run FaceFormer, and says so instead of padding or truncating
        with pytest.raises(InputError, match="compiled shapes"):
            _audio2face_run(faceformer_package, reference_dir, target)
        return
    whole, causal = _audio2face_run(faceformer_package, reference_dir, target)
    want_whole, want_causal = audio2face_reference
    assert want_whole.num_frames == 59
    assert_results_match(whole, want_whole, f"Audio2Face on {target.label}")
    assert_results_match(causal, want_causal, f"Audio2Face causal windows on {target.label}")


# -- MotionTransfer (First Order Motion Model) ------------------------------------------------------


@pytest.fixture(scope="session")
def fomm_package(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from facelib.models.convert.fomm import build_package

    out = tmp_path_factory.mktemp("e2e") / "fomm"
    sources = {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"}
    return build_package(sources, out, config=reference_dir / "fomm_tiny_seed1.yaml").root


def _motion_run(package: Path, media_dir: Path, target: Target | None) -> tuple[Any, Any]:
    from facelib.tasks.motion_transfer import MotionTransfer

    with VideoReader(media_dir / "video" / "fomm_driving_00.mp4") as reader:
        driving = [frame.image for _, frame in zip(range(5), reader)]
    source = media_dir / "images" / "fomm_source_02_256.png"
    with MotionTransfer(package, **on(target), batch_size=3) as task:  # batches of 3 and 2
        relative = np.stack(list(task.animate(source, driving)))
        if target is not None:
            assert_plugin_sessions(task, target, {"kp_detector", "source_encoder", "generator"})
    with MotionTransfer(package, **on(target), movement="absolute", adapt_scale=True, best_frame=2) as task:
        absolute = np.stack(list(task.animate(source, driving)))
    return relative, absolute


@pytest.fixture(scope="session")
def motion_reference(fomm_package: Path, media_dir: Path) -> tuple[Any, Any]:
    return _motion_run(fomm_package, media_dir, None)


def test_motion_transfer(
    target: Target, fomm_package: Path, media_dir: Path, motion_reference: tuple[Any, Any]
) -> None:
    relative, absolute = _motion_run(fomm_package, media_dir, target)
    want_relative, want_absolute = motion_reference
    assert want_relative.shape == (5, 256, 256, 3)
    assert_results_match(relative, want_relative, f"MotionTransfer (relative) on {target.label}")
    assert_results_match(absolute, want_absolute, f"MotionTransfer (absolute, best frame 2) on {target.label}")


def test_plugins_come_from_this_checkout(target: Target) -> None:
    import importlib

    from facelib.backends import backend_class

    cls = backend_class(target.name)
    module = importlib.import_module(cls.__module__)
    assert cls.__module__.startswith(PLUGIN_MODULES[target.name])
    assert PLUGINS in Path(module.__file__ or "").resolve().parents
    assert cls.available(), cls.available().reason
    if "version" in target.activation:  # the simulated SDK release is the one asked for
        assert target.activation["version"] in str(cls.version())


def test_audio2face_refuses_what_a_compiled_model_cannot_take(target: Target, faceformer_package: Path) -> None:
    from facelib.tasks.audio2face import Audio2Face, Windowing

    with pytest.raises(InputError, match="max_context"):
        Audio2Face(faceformer_package, **on(target), max_context=None)  # an unbounded cache
    with pytest.raises(InputError, match="windows of up to 60 s"):
        Audio2Face(faceformer_package, **on(target), windowing=Windowing(whole_seconds=60.0))
    Audio2Face(faceformer_package, **on(None), max_context=None).close()  # ONNX Runtime: no limit
