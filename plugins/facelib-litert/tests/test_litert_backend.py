"""The LiteRT backend on the real runtime: the package's TFLite sources behind the ONNX interface."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from facelib.backends import CompileRequest, backend_class, get_backend, list_backends
from facelib.backends.onnxruntime import physical_cores
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError
from facelib.models import ModelPackage
from facelib.models.tflite import read_interface
from facelib.testing.conformance import count_compiles

ROLES = ("detector", "landmarks", "blendshapes")
#: The ONNX conversions and the TFLite models on these seeded inputs: largest output difference
#: measured 4.1e-4 (face-mesh landmarks, in crop pixels of 256), detector 1.1e-4, blendshapes 1e-6.
CLOSE_TO_ONNX = 2e-3

pytestmark = pytest.mark.usefixtures("litert_available")


def _feeds(session, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for spec in session.inputs:
        shape = [batch if not isinstance(d, int) else d for d in spec.shape]
        out[spec.name] = rng.random(shape, dtype=np.float32)
    return out


def _raw_tflite(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The .tflite file run directly on LiteRT's interpreter (batch 1), outputs by TFLite name."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feeds[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def test_backend_describes_itself() -> None:
    from importlib.metadata import version

    cls = backend_class("litert")
    assert cls.available(), cls.available().reason
    assert cls.version() == version("ai-edge-litert")
    info = next(b for b in list_backends() if b.name == "litert")
    assert info.available and info.formats == (".tflite",)
    assert 0 < info.priority < 100  # above ONNX Runtime, below the accelerators
    assert get_backend("auto").name == "onnxruntime"  # no package known: LiteRT runs none for sure
    backend = get_backend("litert", num_threads=2)
    assert backend.needs_compile and backend.cache_key() == get_backend("litert").cache_key()  # same artefact


@pytest.mark.parametrize("role", ROLES)
def test_sessions_are_the_tflite_models_behind_the_onnx_interface(role: str, mediapipe_copy: Path) -> None:
    package = ModelPackage.load(mediapipe_copy)
    source = package.card.metadata["tflite"][role]
    with package.session(role, get_backend("litert")) as lite, package.session(role, get_backend("onnxruntime")) as ort:
        assert lite.inputs == ort.inputs and lite.outputs == ort.outputs  # names, shapes, dtypes, order
        assert Path(lite.model_path).suffix == ".tflite"
        assert mediapipe_copy / ".facelib-cache" / "litert" in Path(lite.model_path).parents
        feeds = _feeds(lite)
        got, want = lite.run(feeds), ort.run(feeds)
        assert list(got) == [o.name for o in ort.outputs]
        raw = _raw_tflite(mediapipe_copy / source["path"], feeds)
        for name, value in got.items():
            assert value.shape == want[name].shape and value.dtype == want[name].dtype == np.float32
            np.testing.assert_array_equal(value, raw[source["outputs"][name]].reshape(value.shape))
            np.testing.assert_allclose(value, want[name], rtol=0, atol=CLOSE_TO_ONNX, err_msg=f"{role}:{name}")


def test_read_interface_agrees_with_the_runtime(mediapipe_copy: Path) -> None:
    """facelib's flatbuffer reader (used when converting) sees what LiteRT sees."""
    from ai_edge_litert.interpreter import Interpreter

    for path in sorted(mediapipe_copy.glob("*.tflite")):
        inputs, outputs = read_interface(path.read_bytes(), path.name)
        it = Interpreter(model_path=str(path))
        for specs, details in ((inputs, it.get_input_details()), (outputs, it.get_output_details())):
            assert [s.name for s in specs] == [d["name"] for d in details]
            assert [tuple(-1 if x is None else x for x in s.shape) for s in specs] == [
                tuple(int(x) for x in d["shape_signature"]) for d in details
            ]
            assert [s.dtype for s in specs] == [np.dtype(d["dtype"]).name for d in details]


def test_batches_run_row_by_row(mediapipe_copy: Path) -> None:
    """The face-mesh model takes any number of faces: a batch equals its rows run alone."""
    package = ModelPackage.load(mediapipe_copy)
    with package.session("landmarks", get_backend("litert")) as session:
        feeds = _feeds(session, batch=3)
        (name,) = feeds
        batch = session.run(feeds)
        for i in range(3):
            row = session.run({name: feeds[name][i : i + 1]})
            for key in batch:
                np.testing.assert_array_equal(batch[key][i : i + 1], row[key])
        empty = session.run({name: feeds[name][:0]})
        assert [v.shape for v in empty.values()] == [(0, 1, 1, 1434), (0, 1, 1, 1), (0, 1)]
    with (
        package.session("detector", get_backend("litert")) as detector,  # a fixed batch of 1
        pytest.raises(InputError, match="expects"),
    ):
        detector.run({"input": np.zeros((2, 128, 128, 3), np.float32)})


def test_wrong_inputs_are_input_errors(mediapipe_copy: Path) -> None:
    package = ModelPackage.load(mediapipe_copy)
    with package.session("blendshapes", get_backend("litert")) as session:
        (name,) = [s.name for s in session.inputs]
        good = np.zeros((1, 146, 2), np.float32)
        with pytest.raises(InputError):
            session.run({"not_an_input": good})
        with pytest.raises(InputError):
            session.run({name: np.zeros((1, 146, 3), np.float32)})
        with pytest.raises(InputError, match="no outputs"):
            session.run({name: good}, output_names=["no_such_output"])
        with pytest.raises(InputError, match="dtype"):
            session.run({name: np.full((1, 146, 2), "x")})
        assert session.run({name: good.astype(np.float64)})["StatefulPartitionedCall:0"].dtype == np.float32


def test_close_is_idempotent_and_final(mediapipe_copy: Path) -> None:
    session = ModelPackage.load(mediapipe_copy).session("blendshapes", get_backend("litert"))
    feeds = _feeds(session)
    assert session.run(feeds)
    session.close()
    session.close()
    with pytest.raises(InferenceError, match="closed"):
        session.run(feeds)


def test_opening_a_model_prints_nothing(mediapipe_copy: Path) -> None:
    """LiteRT announces its XNNPACK delegate on descriptor 2 (once per process) when a model is
    opened; facelib keeps native libraries quiet unless FACELIB_NATIVE_LOGS=1.  A fresh process
    each time, since the message comes only once."""
    import os
    import subprocess

    code = (
        "import sys; from facelib.backends import get_backend; from facelib.models.package import ModelPackage; "
        "ModelPackage.load(sys.argv[1]).session('detector', get_backend('litert')).close()"
    )
    env = {k: v for k, v in os.environ.items() if k != "FACELIB_NATIVE_LOGS"}
    quiet = subprocess.run([sys.executable, "-c", code, str(mediapipe_copy)], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    env["FACELIB_NATIVE_LOGS"] = "1"
    shown = subprocess.run([sys.executable, "-c", code, str(mediapipe_copy)], env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "XNNPACK" in shown.stderr, shown.stderr


def test_threads_option(mediapipe_copy: Path) -> None:
    package = ModelPackage.load(mediapipe_copy)
    outputs = []
    for threads in (1, 2):
        with package.session("landmarks", get_backend("litert", num_threads=threads)) as session:
            outputs.append(session.run(_feeds(session)))
    for key in outputs[0]:  # XNNPACK splits work, not sums: the same bits on any thread count
        np.testing.assert_array_equal(outputs[0][key], outputs[1][key])
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InputError, match="num_threads"):
            get_backend("litert", num_threads=bad)
    with pytest.raises(InputError, match="unknown LiteRT backend options"):
        get_backend("litert", device_id=0)
    assert get_backend("litert").for_workload("small_models").options == {"num_threads": 1}
    assert get_backend("litert").for_workload("pipelined").options == {"num_threads": physical_cores()}
    assert get_backend("litert", num_threads=1).for_workload("pipelined").options == {"num_threads": 1}
    assert get_backend("litert", num_threads=2).for_workload("small_models").options == {"num_threads": 2}
    assert get_backend("litert").for_workload("batched").options == {}
    with pytest.raises(BackendError, match="unknown workload"):
        get_backend("litert").for_workload("no_such_workload")


def test_package_compiles_once_and_caches(mediapipe_copy: Path) -> None:
    package = ModelPackage.load(mediapipe_copy)
    backend = get_backend("litert")
    cached = package.compiled_path("detector", backend)
    if cached.exists():
        cached.unlink()
    calls = count_compiles(backend)
    for _ in range(2):
        with package.session("detector", backend):
            pass
    assert len(calls) == 1 and cached.is_file()
    interface = json.loads(cached.with_name(cached.name + ".io.json").read_text())
    assert [i["name"] for i in interface["inputs"]] == ["input"]
    assert [(o["name"], o["tflite"]) for o in interface["outputs"]] == [
        ("regressors", "regressors"),
        ("classificators", "classificators"),
    ]
    assert (mediapipe_copy / "face_detector.tflite").read_bytes() == cached.read_bytes()
    assert not list(cached.parent.glob("*.tmp"))
    with pytest.raises(InputError, match="unknown LiteRT compile options"):
        package.session("landmarks", backend, {"no_such_option": 1})
    with pytest.raises(BackendError, match="precision"):
        package.session("landmarks", backend, {"precision": "fp16"})


def test_models_without_a_tflite_source_are_refused(fsanet_copy: Path, mediapipe_copy: Path, tmp_path: Path) -> None:
    from facelib_litert import TFLiteSourceError

    backend = get_backend("litert")
    fsanet = ModelPackage.load(fsanet_copy)
    role = next(iter(fsanet.card.files))
    with pytest.raises(TFLiteSourceError, match=r"only models converted from TFLite.*onnxruntime"):
        fsanet.session(role, backend)
    with pytest.raises(TFLiteSourceError, match="not in a package"):  # a bare ONNX file, compiled
        bare = tmp_path / "bare.onnx"
        shutil.copyfile(fsanet.path(role), bare)
        backend.compile(CompileRequest(bare, tmp_path / "bare.tflite"))
    with pytest.raises(TFLiteSourceError, match="through its model package"):
        backend.load(fsanet.path(role))
    # a package converted before facelib kept the sources: re-convert
    old = tmp_path / "old"
    shutil.copytree(mediapipe_copy, old, ignore=shutil.ignore_patterns(".facelib-cache", "*.tflite"))
    card = json.loads((old / "facelib.json").read_text())
    del card["metadata"]["tflite"]
    (old / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(TFLiteSourceError, match="re-convert"):
        ModelPackage.load(old).session("landmarks", backend)
    # a changed ONNX file (a quantized variant) no longer has this source
    changed = tmp_path / "changed"
    shutil.copytree(mediapipe_copy, changed, ignore=shutil.ignore_patterns(".facelib-cache"))
    with open(changed / "face_blendshapes.onnx", "ab") as f:
        f.write(b"\0")  # a trailing byte: still a loadable ONNX file, another sha256
    with pytest.raises(TFLiteSourceError, match="not the ONNX file converted"):
        ModelPackage.load(changed).session("blendshapes", backend)
    # a damaged .tflite: the card's sha256 catches it, validate() says so too
    (changed / "face_detector.tflite").write_bytes(b"x" * 100)
    with pytest.raises(TFLiteSourceError, match="differs from the sha256"):
        ModelPackage.load(changed).session("detector", backend)
    assert any("TFLite source of detector" in p for p in ModelPackage.load(changed).validate())


def test_auto_picks_litert_only_for_packages_it_runs(fsanet_copy: Path, mediapipe_copy: Path, tmp_path: Path) -> None:
    from facelib_litert import LiteRTSession

    from facelib.tasks.blendshapes import BlendshapeCapture
    from facelib.tasks.head_pose import HeadPose

    mediapipe, fsanet = ModelPackage.load(mediapipe_copy), ModelPackage.load(fsanet_copy)
    assert backend_class("auto", mediapipe.card).name == "litert"
    assert backend_class("auto", fsanet.card).name == "onnxruntime"
    with mediapipe.session("landmarks", get_backend("auto")) as session:  # an "auto" backend, re-chosen
        assert isinstance(session, LiteRTSession)
    with fsanet.session(next(iter(fsanet.card.files)), get_backend("auto")) as session:
        assert type(session).__module__ == "facelib.backends.onnxruntime"
    with BlendshapeCapture(mediapipe_copy) as cap:
        assert cap._engine.landmarker.backend.name == "litert"  # type: ignore[attr-defined]
    with BlendshapeCapture(mediapipe_copy, backend_options={"intra_op_num_threads": 1}) as cap:
        assert cap._engine.landmarker.backend.name == "onnxruntime"  # options written for ONNX Runtime
    with HeadPose(fsanet_copy) as pose:
        assert pose.backend.name == "onnxruntime"
    # a variant whose ONNX files changed (quantized): its card's hashes no longer match the sources
    variant = tmp_path / "variant"
    shutil.copytree(mediapipe_copy, variant, ignore=shutil.ignore_patterns(".facelib-cache"))
    card = json.loads((variant / "facelib.json").read_text())
    card["files"]["landmarks"]["sha256"] = "0" * 64
    (variant / "facelib.json").write_text(json.dumps(card))
    assert backend_class("auto", ModelPackage.load(variant).card).name == "onnxruntime"


def test_missing_runtime_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, mediapipe_copy: Path) -> None:
    from facelib_litert import LiteRTSession

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    cls = backend_class("litert")
    availability = cls.available()
    assert not availability and "pip install 'facelib[litert]'" in availability.reason
    with pytest.raises(BackendUnavailableError, match="LiteRT is not installed"):
        LiteRTSession(mediapipe_copy / "face_detector.tflite")


def test_bare_tflite_files_load_with_their_own_interface(mediapipe_copy: Path, tmp_path: Path) -> None:
    from facelib.errors import ModelFileError

    (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        get_backend("litert").load(tmp_path / "junk.tflite")
    with pytest.raises(ModelFileError, match="not found"):
        get_backend("litert").load(tmp_path / "missing.tflite")
    with get_backend("litert").load(mediapipe_copy / "face_landmarks_detector.tflite") as session:
        assert [(s.name, s.shape) for s in session.inputs] == [("input_12", (None, 256, 256, 3))]
        out = session.run(_feeds(session, batch=2))
        assert out["Identity"].shape == (2, 1, 1, 1434)


def test_blendshape_capture_runs_on_litert(mediapipe_copy: Path, media_dir: Path) -> None:
    """The task end to end on LiteRT (every session a LiteRT one), near ONNX Runtime's results."""
    from facelib_litert import LiteRTSession

    from facelib.tasks.blendshapes import BlendshapeCapture

    image = media_dir / "images" / "obama.jpg"
    results = {}
    for backend in ("litert", "onnxruntime"):
        with BlendshapeCapture(mediapipe_copy, mode="image", backend=backend) as cap:
            results[backend] = cap.process(image)
            if backend == "litert":
                sessions = cap._engine.landmarker._sessions  # type: ignore[attr-defined]
                assert {"detector", "landmarks", "blendshapes"} <= set(sessions)
                assert all(isinstance(s, LiteRTSession) for s in sessions.values())
    (lite,), (ort,) = results["litert"].faces, results["onnxruntime"].faces
    assert np.abs(lite.blendshapes - ort.blendshapes).max() < 0.01
    assert np.abs(lite.landmarks - ort.landmarks)[:, :2].max() < 0.5  # pixels
