"""The backend conformance suite: what every facelib backend must do, as pytest tests.

A backend plugin runs the whole suite by subclassing :class:`BackendConformance` once in a
test module of its own (the class name must start with ``Test``)::

    from facelib.testing.conformance import BackendConformance

    class TestMyBackend(BackendConformance, backend="my-backend"):
        pass

The shared data folder must be reachable (``../shared`` or ``FACELIB_SHARED``); facelib's
pytest plugin provides the fixtures.  Keywords of the class statement configure the run:

``backend``
    The registered backend name (required).
``options``
    Backend options every test passes (``get_backend(backend, **options)``).
``doubles``
    An activator ``doubles(workdir, **activation) -> context manager`` inside which the
    backend runs (a plugin's vendor-SDK test doubles); default: nothing, the real SDK.
``activation``
    Keyword arguments for ``doubles`` (e.g. the SDK version a double simulates).
``source_root``
    When given, the backend's modules must be imported from below this folder (the tests
    really ran this checkout's plugin, not another installed copy).
``other_options``
    Options that change compiled artefacts (the compile cache must keep them apart).
``version``
    Text the backend's ``version()`` must contain.
``fixed_shapes``
    True for artefacts compiled for fixed input shapes: tasks whose shapes vary are expected
    to refuse them (Audio2Face) or are skipped (FaceBoxes sees each image at its own size).

:class:`SessionConformance` holds the session-level tests (describe, real models against ONNX
Runtime, batching/padding, wrong inputs, closing, the compile cache) and
:class:`TaskConformance` every task end to end against ONNX Runtime, :class:`ToolConformance` the
``check`` / ``bench`` tools; :class:`BackendConformance` is all three.  Subclass :class:`TaskConformance` alone
for an extra configuration of a backend already covered (e.g. fixed-shape builds).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from facelib.backends import Backend, CompileRequest, backend_class, get_backend
from facelib.errors import InferenceError, InputError
from facelib.testing.compare import TOL, assert_results_match
from facelib.testing.model_cases import CASES, Case, fsanet_crops, onnxruntime_outputs
from facelib.testing.packages import FSANET_INPUT, FSANET_OUTPUT, head_pose_card_package
from facelib.testing.pytest_plugin import SharedPackages

Activator = Callable[..., AbstractContextManager[Any]]


def count_compiles(backend: Backend) -> list[CompileRequest]:
    """Record every :meth:`~facelib.backends.Backend.compile` call of ``backend`` (this instance)
    in the returned list, which grows as compiles happen."""
    calls: list[CompileRequest] = []
    original = backend.compile

    def counting(request: CompileRequest) -> Path:
        calls.append(request)
        return Path(original(request))

    backend.compile = counting  # type: ignore[method-assign]
    return calls


def _no_doubles(workdir: Path, **activation: Any) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


class _Conformance:
    """Configuration and the environment fixture shared by the suites."""

    backend: ClassVar[str]
    options: ClassVar[Mapping[str, Any]] = {}
    activation: ClassVar[Mapping[str, Any]] = {}
    source_root: ClassVar[Path | None] = None
    other_options: ClassVar[Mapping[str, Any] | None] = None
    version: ClassVar[str | None] = None
    fixed_shapes: ClassVar[bool] = False
    _doubles: ClassVar[Activator] = staticmethod(_no_doubles)

    def __init_subclass__(
        cls,
        backend: str | None = None,
        options: Mapping[str, Any] | None = None,
        doubles: Activator | None = None,
        activation: Mapping[str, Any] | None = None,
        source_root: Path | None = None,
        other_options: Mapping[str, Any] | None = None,
        version: str | None = None,
        fixed_shapes: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in {
            "backend": backend,
            "options": options,
            "activation": activation,
            "source_root": Path(source_root).resolve() if source_root else None,
            "other_options": other_options,
            "version": version,
            "fixed_shapes": fixed_shapes,
        }.items():
            if value is not None:
                setattr(cls, name, value)
        if doubles is not None:
            cls._doubles = staticmethod(doubles)

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def conformance_environment(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        """The backend made runnable (through its doubles, if any) for the whole class; compiled
        artefacts of read-only packages and caches go to a temporary ``FACELIB_HOME``."""
        if not hasattr(cls, "backend"):
            pytest.fail(f"{cls.__name__}: name the backend: class {cls.__name__}(..., backend=NAME)")
        workdir = tmp_path_factory.mktemp(f"conformance-{cls.backend}")
        saved_home, saved_path = os.environ.get("FACELIB_HOME"), list(sys.path)
        os.environ["FACELIB_HOME"] = str(workdir / "facelib-home")
        try:
            with cls._doubles(workdir, **cls.activation):
                yield
        finally:
            sys.path[:] = saved_path
            if saved_home is None:
                os.environ.pop("FACELIB_HOME", None)
            else:
                os.environ["FACELIB_HOME"] = saved_home

    # -- hooks a plugin's subclass may override to add what is specific to its SDK ---------------

    def inspect_session(self, session: Any, case: Case) -> None:
        """Called with each real-model session (and its case) before it runs; assert SDK specifics."""

    def inspect_cache(self, cached: Path) -> None:
        """Called with a compiled artefact in a package cache; assert SDK specifics (leftovers...)."""

    # -- helpers -----------------------------------------------------------------------------------

    def make_backend(self, **options: Any) -> Backend:
        """The backend under test with the class's options (``options`` added)."""
        return get_backend(self.backend, **{**self.options, **options})

    def task_options(self) -> dict[str, Any]:
        """Task keyword arguments selecting the backend under test."""
        return {"backend": self.backend, "backend_options": dict(self.options) or None}

    def open_model(self, backend: Backend, models_dir: Path, case: Case, workdir: Path) -> Any:
        """A session of ``case``'s model on ``backend``, compiled first (for the case's shape ranges,
        its inputs as calibration samples) when the backend needs it."""
        onnx = models_dir / case.onnx
        if not backend.needs_compile:
            return backend.load(onnx)
        out = workdir / f"{onnx.stem}{backend.formats[0]}"
        request = CompileRequest(onnx, out, shapes=case.shapes, calibration=case.inputs(models_dir))
        return backend.load(Path(backend.compile(request)))

    def assert_backend_sessions(self, task: Any, roles: set[str]) -> None:
        """The task really ran on the backend under test, configured as asked: its sessions are the
        backend's (from ``source_root`` when given), loaded from artefacts the backend compiled
        into the package cache when it compiles."""
        assert task.backend.name == self.backend
        for key, value in self.options.items():
            assert task.backend.options.get(key) == value, f"backend option {key}={value!r} did not reach {task}"
        sessions = dict(task._sessions)
        assert roles <= set(sessions), f"sessions opened: {sorted(sessions)}, expected at least {sorted(roles)}"
        package = backend_class(self.backend).__module__.split(".")[0]
        for role in roles:
            session = sessions[role]
            module = sys.modules[type(session).__module__]
            assert module.__name__.split(".")[0] == package, (role, type(session))
            if self.source_root is not None:
                where = Path(module.__file__ or "").resolve()
                assert self.source_root in where.parents, f"{where} is not this checkout's"
            if task.backend.needs_compile:
                path = Path(session.model_path)
                assert path.suffix != ".onnx" and path.is_file(), f"{role}: {path} is not a compiled artefact"
                assert task.package.root / ".facelib-cache" / self.backend in path.parents

    def test_backend_is_the_one_asked_for(self) -> None:
        """Available, from ``source_root`` when given, the SDK version asked for."""
        cls = backend_class(self.backend)
        assert cls.available(), cls.available().reason
        module = importlib.import_module(cls.__module__)
        if self.source_root is not None:
            assert self.source_root in Path(module.__file__ or "").resolve().parents
        if self.version is not None:  # the simulated SDK release is the one asked for
            assert self.version in str(cls.version())


class SessionConformance(_Conformance):
    """Session-level conformance: describe, real models vs ONNX Runtime, batches, errors, close, cache."""

    def test_backend_describes_itself(self) -> None:
        cls = backend_class(self.backend)
        version = cls.version()
        assert version is None or (isinstance(version, str) and version), version
        backend = self.make_backend()
        assert backend.name == self.backend and type(backend) is cls
        assert backend.formats and all(f.startswith(".") for f in backend.formats)
        assert isinstance(backend.cache_key(), str) and backend.cache_key()

    @pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
    def test_real_models_match_onnxruntime(self, case: Case, models_dir: Path, tmp_path: Path) -> None:
        onnx = models_dir / case.onnx
        samples = case.inputs(models_dir)
        if case.key.startswith("fsanet"):  # 6 real crops: batch 6 and 3 (padded to 8 / 4 on static stages)
            crops = fsanet_crops(models_dir)
            samples = [*samples, {FSANET_INPUT: crops}, {FSANET_INPUT: crops[:3]}]
        reference = get_backend("onnxruntime").load(onnx)
        with self.open_model(self.make_backend(), models_dir, case, tmp_path) as session:
            self.inspect_session(session, case)
            assert [s.name for s in session.inputs] == [s.name for s in reference.inputs]
            assert [s.name for s in session.outputs] == [s.name for s in reference.outputs]
            for feeds in samples:
                got, want = session.run(feeds), reference.run(feeds)
                assert list(got) == list(want)
                for name in want:
                    assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype, name
                    np.testing.assert_allclose(got[name], want[name], rtol=0, atol=TOL, err_msg=f"{case.key}:{name}")

    def test_a_batch_equals_its_rows_run_alone(self, models_dir: Path, tmp_path: Path) -> None:
        """Batching (and padding up to a compiled batch) changes no row's result."""
        case = CASES[0]
        crops = fsanet_crops(models_dir)
        with self.open_model(self.make_backend(), models_dir, case, tmp_path) as session:
            rows = np.concatenate([session.run({FSANET_INPUT: crops[i : i + 1]})[FSANET_OUTPUT] for i in range(5)])
            for n in (5, 3, 2):
                batch = session.run({FSANET_INPUT: crops[:n]})[FSANET_OUTPUT]
                assert batch.shape == (n, 3)
                np.testing.assert_allclose(batch, rows[:n], rtol=0, atol=TOL)

    def test_wrong_inputs_are_input_errors(self, models_dir: Path, tmp_path: Path) -> None:
        case = CASES[0]
        crops = fsanet_crops(models_dir)
        backend = self.make_backend()
        with self.open_model(backend, models_dir, case, tmp_path) as session:
            with pytest.raises(InputError):
                session.run({"not_an_input": crops[:1]})
            with pytest.raises(InputError):
                session.run({FSANET_INPUT: np.zeros((2, 32, 32, 3), np.float32)})
            with pytest.raises(InputError, match="no outputs"):
                session.run({FSANET_INPUT: crops[:1]}, output_names=["no_such_output"])
            if backend.needs_compile:  # compiled for batches up to 8: never truncated
                with pytest.raises(InputError):
                    session.run({FSANET_INPUT: np.concatenate([crops, crops])[:9]})
            assert session.run({FSANET_INPUT: crops[:1]}, output_names=[FSANET_OUTPUT])[FSANET_OUTPUT].shape == (1, 3)

    def test_close_is_idempotent_and_final(self, models_dir: Path, tmp_path: Path) -> None:
        case = next(c for c in CASES if c.key == "mediapipe_blendshapes")
        session = self.open_model(self.make_backend(), models_dir, case, tmp_path)
        (feeds,) = case.inputs(models_dir)
        assert session.run(feeds)
        session.close()
        session.close()
        with pytest.raises(InferenceError, match="closed"):
            session.run(feeds)

    def test_model_package_compiles_once_and_caches(self, models_dir: Path, tmp_path: Path) -> None:
        from facelib.models import ModelPackage

        package = ModelPackage.load(head_pose_card_package(models_dir, tmp_path / "pkg"))
        backend = self.make_backend()
        calls = count_compiles(backend) if backend.needs_compile else []
        crops = fsanet_crops(models_dir)[:5]
        want = onnxruntime_outputs(package.path("capsule"), {FSANET_INPUT: crops})[FSANET_OUTPUT]
        with package.session("capsule", backend) as session:
            got = session.run({FSANET_INPUT: crops})[FSANET_OUTPUT]
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
        with package.session("capsule", backend) as again:
            np.testing.assert_array_equal(again.run({FSANET_INPUT: crops})[FSANET_OUTPUT], got)
        with package.session("detector", backend) as det:
            assert [o.name for o in det.outputs] == ["scores", "boxes"]
        if not backend.needs_compile:
            return
        assert len(calls) == 2, "capsule compiled once (then reused), detector once"
        cached = package.compiled_path("capsule", backend)
        assert cached.is_file() and cached.suffix in backend.formats
        assert package.root / ".facelib-cache" / self.backend in cached.parents
        stamp = cached.stat().st_mtime_ns
        with package.session("capsule", backend):
            pass
        assert cached.stat().st_mtime_ns == stamp and len(calls) == 2  # reused, not recompiled
        assert not list(cached.parent.glob("*.tmp")), "a partial artefact was left behind"
        self.inspect_cache(cached)
        if self.other_options is not None:
            assert package.compiled_path("capsule", self.make_backend(**self.other_options)) != cached
        with pytest.raises(InputError, match="unknown"):
            package.session("capsule", backend, {"no_such_compile_option": 1})


class TaskConformance(_Conformance):
    """Every task end to end on the backend, results equal to ONNX Runtime's within 1e-5."""

    # -- HeadPose (FSA-Net + UltraFace) --------------------------------------------------------

    def _head_pose_run(self, packages: SharedPackages, on: dict[str, Any], check: bool) -> tuple[Any, Any, Any]:
        from facelib.tasks.head_pose import HeadPose

        task: Any  # each task's own type (Task.__enter__ is typed as the base class)
        media = packages.media_dir
        images = [media / "images" / "obama.jpg", media / "images" / "two_people.jpg"]
        with HeadPose(packages.get("fsanet"), detector=packages.get("ultraface"), **on) as task:
            images_result = task.predict(images)  # one batch of 3 faces through the ensemble graph
            frames = [f for _, f in zip(range(3), task.predict_video(media / "video" / "talking_face_01.mp4"))]
            if check:
                self.assert_backend_sessions(task, {"ensemble"})
                self.assert_backend_sessions(task.detector, {"detector"})
        with HeadPose(packages.get("fsanet"), **on, variants=["capsule", "noS_capsule"]) as task:
            crops = task.crops(np.asarray(frames[0].image), np.stack([f.box for f in frames[0].faces]))
            crops = np.concatenate([crops] * 3)  # per-variant files, a batch that is no static stage
            variants_result = task.predict_crops(crops)
            if check:
                self.assert_backend_sessions(task, {"capsule", "noS_capsule"})
        return images_result, frames, variants_result

    def test_head_pose(self, shared_packages: SharedPackages) -> None:
        images, frames, variants = shared_packages.reference(
            "head_pose", lambda: self._head_pose_run(shared_packages, {"backend": "onnxruntime"}, False)
        )
        got = self._head_pose_run(shared_packages, self.task_options(), True)
        assert [len(faces) for faces in images] == [1, 2], "the reference should see 1 + 2 faces"
        assert_results_match(got[0], images, f"HeadPose images on {self.backend}")
        assert_results_match(got[1], frames, f"HeadPose video on {self.backend}")
        assert_results_match(list(got[2]), list(variants), f"HeadPose crops (2 variants) on {self.backend}")

    # -- BlendshapeCapture (MediaPipe Face Landmarker) ---------------------------------------------

    def _blendshapes_run(self, packages: SharedPackages, on: dict[str, Any], check: bool) -> tuple[Any, Any]:
        from facelib.tasks.blendshapes import BlendshapeCapture

        media = packages.media_dir
        images = [media / "images" / "obama.jpg", media / "images" / "two_people.jpg"]
        with BlendshapeCapture(packages.get("mediapipe"), mode="image", **on, num_faces=2) as cap:
            still = [cap.process(image) for image in images]
            if check:
                engine: Any = cap._engine  # the MediaPipe engine: a FaceLandmarker inside
                self.assert_backend_sessions(engine.landmarker, {"detector", "landmarks", "blendshapes"})
        with BlendshapeCapture(packages.get("mediapipe"), mode="video", **on) as cap:
            video = list(cap.process_video(media / "video" / "talking_face_01.mp4", max_frames=4))
        return still, video

    def test_blendshape_capture(self, shared_packages: SharedPackages) -> None:
        want_still, want_video = shared_packages.reference(
            "blendshapes", lambda: self._blendshapes_run(shared_packages, {"backend": "onnxruntime"}, False)
        )
        still, video = self._blendshapes_run(shared_packages, self.task_options(), True)
        assert [len(f.faces) for f in want_still] == [1, 2]
        assert all(len(f.faces) == 1 for f in want_video)
        assert_results_match(still, want_still, f"BlendshapeCapture images on {self.backend}")
        assert_results_match(video, want_video, f"BlendshapeCapture video on {self.backend}")

    def _regressor_run(self, packages: SharedPackages, on: dict[str, Any], check: bool) -> list[Any]:
        from facelib.tasks.blendshapes import BlendshapeCapture

        media = packages.media_dir
        images = [media / "images" / "obama.jpg", media / "images" / "two_people.jpg"]
        with BlendshapeCapture(packages.get("regressor"), mode="image", **on, num_faces=2) as cap:
            frames = [cap.process(image) for image in images]
            if check:
                engine: Any = cap._engine  # the regressor engine: a detector, then the regressor
                self.assert_backend_sessions(engine, {"regressor"})
                self.assert_backend_sessions(engine.detector, {"detector"})
        return frames

    def test_blendshape_capture_regressor(self, shared_packages: SharedPackages) -> None:
        """The regressor engine: the real FaceBoxes detector + a small seeded regressor."""
        if self.fixed_shapes:
            pytest.skip("FaceBoxes takes each image at its own size; a fixed-shape build would need resizing")
        pytest.importorskip("torch")
        want = shared_packages.reference(
            "regressor", lambda: self._regressor_run(shared_packages, {"backend": "onnxruntime"}, False)
        )
        got = self._regressor_run(shared_packages, self.task_options(), True)
        assert [len(f.faces) for f in want] == [1, 2]
        assert_results_match(got, want, f"BlendshapeCapture (FaceBoxes + regressor) on {self.backend}")

    # -- Audio2Face (FaceFormer) ---------------------------------------------------------------

    def _audio2face_run(self, packages: SharedPackages, on: dict[str, Any], check: bool) -> tuple[Any, Any]:
        from facelib.tasks.audio2face import Audio2Face

        task: Any
        with np.load(packages.reference_dir / "faceformer_vocaset_tiny_seed1_ref.npz") as z:
            audio, template = z["audio_16k"][: 16000 * 2], z["template"]
        with Audio2Face(packages.get("faceformer"), **on) as task:
            whole = task.predict(audio, 1, template)  # one encoder call, then one decoder step per frame
            causal = task.predict(audio, 1, template, causal=True)  # streaming windows: other shapes
            if check:
                self.assert_backend_sessions(task, {"audio_encoder", "decoder_step"})
        return whole, causal

    def test_audio2face(self, shared_packages: SharedPackages) -> None:
        pytest.importorskip("torch")
        if self.fixed_shapes:
            # sequence lengths vary (audio windows, the growing decoder cache): an artefact built for
            # fixed shapes cannot run FaceFormer, and says so instead of padding or truncating
            with pytest.raises(InputError, match="compiled shapes"):
                self._audio2face_run(shared_packages, self.task_options(), True)
            return
        want_whole, want_causal = shared_packages.reference(
            "audio2face", lambda: self._audio2face_run(shared_packages, {"backend": "onnxruntime"}, False)
        )
        whole, causal = self._audio2face_run(shared_packages, self.task_options(), True)
        assert want_whole.num_frames == 59
        assert_results_match(whole, want_whole, f"Audio2Face on {self.backend}")
        assert_results_match(causal, want_causal, f"Audio2Face causal windows on {self.backend}")

    def test_audio2face_refuses_what_a_compiled_model_cannot_take(self, shared_packages: SharedPackages) -> None:
        pytest.importorskip("torch")
        from facelib.tasks.audio2face import Audio2Face, Windowing

        package = shared_packages.get("faceformer")
        if self.make_backend().needs_compile:
            with pytest.raises(InputError, match="max_context"):
                Audio2Face(package, **self.task_options(), max_context=None)  # an unbounded cache
            with pytest.raises(InputError, match="windows of up to 60 s"):
                Audio2Face(package, **self.task_options(), windowing=Windowing(whole_seconds=60.0))
        Audio2Face(package, backend="onnxruntime", max_context=None).close()  # ONNX Runtime: no limit

    # -- MotionTransfer (First Order Motion Model) ----------------------------------------------

    def _motion_run(self, packages: SharedPackages, on: dict[str, Any], check: bool) -> tuple[Any, Any]:
        from facelib.io.video import VideoReader
        from facelib.tasks.motion_transfer import MotionTransfer

        media = packages.media_dir
        with VideoReader(media / "video" / "fomm_driving_00.mp4") as reader:
            driving = [frame.image for _, frame in zip(range(5), reader)]
        source = media / "images" / "fomm_source_02_256.png"
        with MotionTransfer(packages.get("fomm"), **on, batch_size=3) as task:  # batches of 3 and 2
            relative = np.stack(list(task.animate(source, driving)))
            if check:
                self.assert_backend_sessions(task, {"kp_detector", "source_encoder", "generator"})
        with MotionTransfer(packages.get("fomm"), **on, movement="absolute", adapt_scale=True, best_frame=2) as task:
            absolute = np.stack(list(task.animate(source, driving)))
        return relative, absolute

    def test_motion_transfer(self, shared_packages: SharedPackages) -> None:
        pytest.importorskip("torch")
        want_relative, want_absolute = shared_packages.reference(
            "motion", lambda: self._motion_run(shared_packages, {"backend": "onnxruntime"}, False)
        )
        relative, absolute = self._motion_run(shared_packages, self.task_options(), True)
        assert want_relative.shape == (5, 256, 256, 3)
        assert_results_match(relative, want_relative, f"MotionTransfer (relative) on {self.backend}")
        assert_results_match(absolute, want_absolute, f"MotionTransfer (absolute, best frame 2) on {self.backend}")


class ToolConformance(_Conformance):
    """The ``check`` / ``bench`` tools on the backend: whole tasks compared with ONNX Runtime."""

    def test_headpose_check_and_bench_tools(self, shared_packages: SharedPackages) -> None:
        """``facelib check headpose`` / ``bench headpose``: the whole task compared with ONNX Runtime
        field by field, both faces found, the stages timed."""
        from facelib.tools.task_tools import bench_task, check_task, prepare

        image = shared_packages.media_dir / "images" / "two_people.jpg"
        run = prepare(
            "headpose", shared_packages.get("fsanet"), [image], detector=str(shared_packages.get("ultraface"))
        )
        backend = self.make_backend()
        task: Any
        with run.adapter.open(run.model, backend, None, run.inputs, **run.options) as task:
            task.predict(str(image))
            assert task.backend.name == self.backend and task.detector.backend.name == self.backend
            self.assert_backend_sessions(task, set(task._sessions))
        fields = {d.output: d for d in check_task(run, backend, "onnxruntime")}
        assert {"yaw", "pitch", "roll", "box", "score", "variants.capsule"} <= set(fields)
        assert fields["yaw"].shape == (2,)  # both faces found on the device too
        assert all(d.max_abs <= 0.01 for d in fields.values())
        timing = bench_task(run, backend, batch=2, loop=3, warmup=1)
        assert timing.batch == 2 and timing.throughput > 0
        stages = timing.stages_ms
        assert stages["inference"] > 0 and sum(stages.values()) == pytest.approx(timing.mean_ms, rel=0.05, abs=0.3)

    def test_blendshapes_check_tool(self, shared_packages: SharedPackages) -> None:
        from facelib.tools.task_tools import check_task, prepare

        image = shared_packages.media_dir / "images" / "obama.jpg"
        diffs = check_task(
            prepare("blendshapes", shared_packages.get("mediapipe"), [image]), self.make_backend(), "onnxruntime"
        )
        fields = {d.output: d for d in diffs}
        assert fields["faces.blendshapes"].shape == (52,) and fields["faces.blendshapes"].max_abs < 1e-3
        assert fields["faces.landmarks"].max_abs < 0.05

    def test_motion_check_tool(self, shared_packages: SharedPackages) -> None:
        pytest.importorskip("torch")  # converting the checkpoint needs it
        from facelib.tools.task_tools import check_task, prepare

        media = shared_packages.media_dir
        inputs = [media / "images" / "fomm_source_02.png", media / "video" / "fomm_driving_00.mp4"]
        run = prepare("motion", shared_packages.get("fomm"), inputs)
        (diff,) = check_task(run, self.make_backend(), "onnxruntime", max_frames=3)
        assert diff.output == "frames" and diff.shape == (3 * 256 * 256 * 3,) and diff.max_abs < 1e-4


class BackendConformance(SessionConformance, TaskConformance, ToolConformance):
    """The whole conformance suite: subclass it once per backend (see the module docstring)."""
