"""The backend registry, plugin discovery and the ONNX Runtime backend on real models."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from facelib.backends import (
    Availability,
    Backend,
    Session,
    failed_plugins,
    get_backend,
    list_backends,
    register_backend,
    reload_plugins,
)
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import (
    BackendNotFoundError,
    BackendUnavailableError,
    DuplicateBackendError,
    InferenceError,
    InputError,
    ModelFileError,
)
from facelib.testing.conformance import SessionConformance


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    reload_plugins()
    yield
    reload_plugins()


def test_builtin_onnxruntime_is_listed_and_available() -> None:
    infos = {i.name: i for i in list_backends()}
    ort = infos["onnxruntime"]
    assert ort.available and ort.origin == "builtin" and ".onnx" in ort.formats
    assert isinstance(get_backend("onnxruntime"), OnnxRuntimeBackend)


def test_example_plugin_is_found_through_its_entry_point() -> None:
    infos = {i.name: i for i in list_backends()}
    assert "onnx-reference" in infos, "pip install examples/plugins/facelib-onnx-reference first"
    assert "facelib-onnx-reference" in infos["onnx-reference"].origin
    assert "entry point" in infos["onnx-reference"].origin


def test_broken_plugin_is_reported_not_raised() -> None:
    failures = {f.entry_point: f for f in failed_plugins()}
    assert "broken" in failures, "pip install tests/plugins/facelib-broken-plugin first"
    assert "ModuleNotFoundError" in failures["broken"].error
    assert "facelib_vendor_sdk_that_does_not_exist" in failures["broken"].error
    # the registry still works
    assert get_backend("onnxruntime").name == "onnxruntime"


def test_unknown_backend_names_the_registered_ones() -> None:
    with pytest.raises(BackendNotFoundError, match="onnxruntime") as info:
        get_backend("no-such-backend")
    assert "broken" in str(info.value)  # the failed plugin is hinted at


class _Unavailable(Backend):
    name: ClassVar[str] = "test-unavailable"
    priority: ClassVar[int] = 1000

    @classmethod
    def available(cls) -> Availability:
        return Availability(False, "the test SDK is not installed")

    def load(self, artefact: Path) -> Session:  # pragma: no cover - never loaded
        raise AssertionError


def test_unavailable_backend_says_why_and_auto_skips_it() -> None:
    register_backend(_Unavailable, origin="test")
    with pytest.raises(BackendUnavailableError, match="test SDK is not installed"):
        get_backend("test-unavailable")
    assert get_backend("auto").name == "onnxruntime"


def test_same_name_twice_is_a_clear_error() -> None:
    class Twin(OnnxRuntimeBackend):
        pass

    register_backend(Twin, origin="twin plugin")
    with pytest.raises(DuplicateBackendError, match="twin plugin"):
        get_backend("onnxruntime")
    info = [i for i in list_backends() if i.name == "onnxruntime"]
    assert len(info) == 2 and not any(i.available for i in info)


def test_auto_prefers_higher_priority() -> None:
    class Fast(OnnxRuntimeBackend):
        name: ClassVar[str] = "test-fast"
        priority: ClassVar[int] = 500

    register_backend(Fast, origin="test")
    assert get_backend("auto").name == "test-fast"


def test_missing_provider_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not in this onnxruntime build"):
        OnnxRuntimeBackend(providers=["NoSuchExecutionProvider"])


def test_fsanet_onnx_session_runs(models_dir: Path) -> None:
    backend = OnnxRuntimeBackend(intra_op_num_threads=1)
    with backend.load(models_dir / "fsanet" / "fsanet_capsule_3_16_2_21_5.onnx") as session:
        assert [s.name for s in session.inputs] == ["input_1:0"]
        assert session.inputs[0].shape[1:] == (64, 64, 3)
        out = session.run({"input_1:0": np.full((2, 64, 64, 3), 128, np.float32)})
        pose = out["pred_pose/mul_24:0"]
        assert pose.shape == (2, 3) and np.isfinite(pose).all()
        np.testing.assert_allclose(pose[0], pose[1], atol=1e-4)


def test_ultraface_onnx_session_runs(models_dir: Path) -> None:
    session = OnnxRuntimeBackend().load(models_dir / "ultraface" / "version-RFB-320.onnx")
    out = session.run({"input": np.zeros((1, 3, 240, 320), np.float32)})
    assert out["scores"].shape == (1, 4420, 2) and out["boxes"].shape == (1, 4420, 4)
    np.testing.assert_allclose(out["scores"].sum(-1), 1.0, atol=1e-5)


def test_sessions_are_cached_per_file(models_dir: Path) -> None:
    path = models_dir / "ultraface" / "version-RFB-320.onnx"
    a = OnnxRuntimeBackend().load(path)
    b = OnnxRuntimeBackend().load(path)
    assert a._session is b._session
    c = OnnxRuntimeBackend(intra_op_num_threads=1).load(path)
    assert c._session is not a._session


def test_bad_feeds_are_input_errors(models_dir: Path) -> None:
    session = OnnxRuntimeBackend().load(models_dir / "ultraface" / "version-RFB-320.onnx")
    with pytest.raises(InputError, match="missing"):
        session.run({"wrong": np.zeros((1, 3, 240, 320), np.float32)})
    with pytest.raises(InputError, match=r"\(1, 3, 100, 100\)"):
        session.run({"input": np.zeros((1, 3, 100, 100), np.float32)})


def test_unknown_options_and_outputs_are_input_errors(models_dir: Path) -> None:
    """Unknown backend options and output names are typed errors naming what is known
    (ONNX Runtime raised a bare TypeError / its own error before ``check_options``)."""
    with pytest.raises(InputError, match=r"unknown ONNX Runtime backend options \['intra_threads'\].*providers"):
        get_backend("onnxruntime", intra_threads=1)
    session = OnnxRuntimeBackend().load(models_dir / "ultraface" / "version-RFB-320.onnx")
    with pytest.raises(InputError, match=r"no outputs named \['box'\]; it has \['scores', 'boxes'\]"):
        session.run({"input": np.zeros((1, 3, 240, 320), np.float32)}, output_names=["box"])
    assert list(session.run({"input": np.zeros((1, 3, 240, 320), np.float32)}, output_names=["boxes"])) == ["boxes"]


def test_check_options_and_spec_session() -> None:
    from facelib.backends import SpecSession, TensorSpec, check_options

    check_options(["a", "b"], {"b": 1}, "X")  # known: nothing raised
    with pytest.raises(InputError, match=r"unknown X compile options \['c'\]; known: \['a', 'b'\]"):
        check_options(["a", "b"], {"a": 1, "c": 2}, "X", "compile")

    class Fixed(SpecSession):
        def run(self, feeds: Any, output_names: Any = None) -> dict[str, np.ndarray]:
            self.check_feeds(feeds)
            return {n: np.zeros(1) for n in self.output_names(output_names)}

    session = Fixed(Path("m.bin"), [TensorSpec("x", (None, 2))], [TensorSpec("y", (None,)), TensorSpec("z", (1,))])
    assert [s.name for s in session.inputs] == ["x"] and [s.name for s in session.outputs] == ["y", "z"]
    assert list(session.run({"x": np.zeros((3, 2))})) == ["y", "z"]
    assert list(session.run({"x": np.zeros((3, 2))}, ["z"])) == ["z"]
    with pytest.raises(InputError, match=r"m\.bin: no outputs named"):
        session.run({"x": np.zeros((3, 2))}, ["w"])


def test_runtime_failure_is_inference_error(models_dir: Path) -> None:
    session = OnnxRuntimeBackend().load(models_dir / "fsanet" / "fsanet_capsule_3_16_2_21_5.onnx")
    session.close()
    with pytest.raises(InferenceError, match="closed"):
        session.run({"input_1:0": np.zeros((1, 64, 64, 3), np.float32)})


def test_truncated_and_garbage_files_are_model_file_errors(models_dir: Path, tmp_path: Path) -> None:
    data = (models_dir / "ultraface" / "version-RFB-320.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 3])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model" * 100)
    for path in (truncated, empty, garbage, tmp_path / "missing.onnx"):
        with pytest.raises(ModelFileError, match=path.name):
            OnnxRuntimeBackend().load(path)


def test_one_session_shared_by_threads_gives_serial_results(models_dir: Path) -> None:
    session = OnnxRuntimeBackend().load(models_dir / "fsanet" / "fsanet_var_capsule_3_16_2_21_5.onnx")
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 255, (1, 64, 64, 3)).astype(np.float32) for _ in range(8)]
    serial = [session.run({"input_1:0": b})["pred_pose/mul_24:0"] for b in batches]
    results: list[np.ndarray | None] = [None] * len(batches)

    def work(i: int) -> None:
        results[i] = session.run({"input_1:0": batches[i]})["pred_pose/mul_24:0"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


def _small_model(path: Path) -> Path:
    """A small real graph (Conv -> Relu -> GlobalAveragePool -> Softmax) with random weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Softmax", ["f"], ["y"], axis=1),
        ],
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.save(model, path)
    return path


def test_example_plugin_matches_onnxruntime(tmp_path: Path) -> None:
    path = _small_model(tmp_path / "small.onnx")
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    ref = OnnxRuntimeBackend().load(path).run({"x": x})["y"]
    out = get_backend("onnx-reference").load(path).run({"x": x})["y"]
    np.testing.assert_allclose(out, ref, atol=1e-6)


class TestOnnxRuntimeConformance(SessionConformance, backend="onnxruntime"):
    """The built-in backend passes the session part of the suite every plugin runs."""
