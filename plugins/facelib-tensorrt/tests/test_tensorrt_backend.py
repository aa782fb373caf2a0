"""The TensorRT plugin on real models, through faithful doubles of tensorrt and cuda-bindings."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trt_double_env import activated

from facelib.backends import CompileRequest, ShapeRange, get_backend
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError, ModelFileError
from facelib.models import ModelPackage
from facelib.testing.conformance import count_compiles
from facelib.testing.model_cases import assert_matches_onnxruntime, decoder_like_onnx, random_feeds
from facelib.testing.packages import head_pose_card_package

# model file -> (shape ranges for dynamic inputs, batches to run in one session, value range)
MODELS: dict[str, tuple[dict[str, ShapeRange], list[int], tuple[float, float]]] = {
    "fsanet/fsanet_capsule_3_16_2_21_5.onnx": (
        {"input_1:0": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))},
        [1, 5, 16, 2],
        (0.0, 255.0),
    ),
    "fsanet/fsanet_var_capsule_3_16_2_21_5.onnx": (
        {"input_1:0": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))},
        [3, 16],
        (0.0, 255.0),
    ),
    "fsanet/fsanet_noS_capsule_3_16_2_192_5.onnx": (
        {"input_1:0": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))},
        [2, 7],
        (0.0, 255.0),
    ),
    "ultraface/version-RFB-320.onnx": ({}, [1], (-1.0, 1.0)),
    "mediapipe/face_detector.onnx": ({}, [1], (-1.0, 1.0)),
    "mediapipe/face_landmarks_detector.onnx": (
        {"input_12": ShapeRange((1, 256, 256, 3), (1, 256, 256, 3), (4, 256, 256, 3))},
        [1, 3],
        (0.0, 1.0),
    ),
    "mediapipe/face_blendshapes.onnx": ({}, [1], (0.0, 1.0)),
}


def _compile(backend: Any, onnx_path: Path, out: Path, shapes: dict[str, ShapeRange], **kw: Any) -> Path:
    return Path(backend.compile(CompileRequest(onnx_path, out, shapes=shapes, **kw)))


def _plan_header(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[8:16])
    return dict(json.loads(data[16 : 16 + size]))


@pytest.mark.parametrize("model", list(MODELS))
def test_real_models_match_onnxruntime(
    model: str, models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    shapes, batches, (lo, hi) = MODELS[model]
    onnx_path = models_dir / model
    backend = make_backend()
    engine = _compile(backend, onnx_path, tmp_path / "model.engine", shapes)
    with backend.load(engine) as session:  # shapes change between calls in one session
        feeds = [random_feeds(session, batch, lo, hi, seed=i) for i, batch in enumerate(batches)]
        assert_matches_onnxruntime(session, onnx_path, feeds, ordered=False)


def test_buffers_grow_only_when_needed_and_are_freed(
    models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path
) -> None:
    from cuda.bindings import runtime

    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    shapes = MODELS[model][0]
    backend = make_backend10()
    engine = _compile(backend, models_dir / model, tmp_path / "m.engine", shapes)
    session = backend.load(engine)
    session.run(random_feeds(session, 8, 0, 255, 0))
    after_first = runtime._stats()["malloc"]
    session.run(random_feeds(session, 3, 0, 255, 1))  # smaller: buffers are reused
    assert runtime._stats()["malloc"] == after_first
    session.run(random_feeds(session, 16, 0, 255, 2))  # larger: input and output grow
    assert runtime._stats()["malloc"] == after_first + 2
    assert runtime._live_allocations()
    out = session.run(random_feeds(session, 1, 0, 255, 3), output_names=["pred_pose/mul_24:0"])
    assert out["pred_pose/mul_24:0"].shape == (1, 3)
    session.close()
    assert runtime._live_allocations() == {}
    assert runtime._stats()["streams"] == 0
    with pytest.raises(InferenceError, match="closed"):
        session.run(random_feeds(session, 1, 0, 255, 0))
    session.close()  # idempotent


def test_shape_outside_profile_is_refused_clearly(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend()
    engine = _compile(backend, models_dir / model, tmp_path / "m.engine", MODELS[model][0])
    with backend.load(engine) as session:
        assert session.shape_range("input_1:0") == ((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))
        with pytest.raises(InputError, match=r"outside the engine's optimisation profile.*max \(16, 64, 64, 3\)"):
            session.run({"input_1:0": np.zeros((17, 64, 64, 3), np.float32)})
        with pytest.raises(InputError, match="expects"):
            session.run({"input_1:0": np.zeros((2, 32, 32, 3), np.float32)})
        with pytest.raises(InputError, match="missing"):
            session.run({})
        # the session still works after refusals
        assert session.run({"input_1:0": np.zeros((2, 64, 64, 3), np.float32)})["pred_pose/mul_24:0"].shape == (2, 3)


def test_double_refuses_what_tensorrt_refuses(
    models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path
) -> None:
    """The double is strict: no execute without shapes/addresses, no foreign pointers."""
    import tensorrt as trt
    from cuda.bindings import runtime as rt

    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend10()
    engine_path = _compile(backend, models_dir / model, tmp_path / "m.engine", MODELS[model][0])
    logger = trt.Logger(trt.Logger.ERROR)
    engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    assert engine.get_tensor_mode(names[0]) == trt.TensorIOMode.OUTPUT  # inputs are not first
    ctx = engine.create_execution_context()
    _, stream = rt.cudaStreamCreate()
    assert not ctx.execute_async_v3(int(stream))  # input shape not set
    assert not ctx.set_input_shape("input_1:0", (0, 64, 64, 3))  # below the profile
    assert ctx.set_input_shape("input_1:0", (2, 64, 64, 3))
    assert tuple(ctx.get_tensor_shape("pred_pose/mul_24:0")) == (2, 3)
    assert not ctx.execute_async_v3(int(stream))  # no addresses
    _, small = rt.cudaMalloc(16)
    ctx.set_tensor_address("input_1:0", small)
    ctx.set_tensor_address("pred_pose/mul_24:0", small)
    assert not ctx.execute_async_v3(int(stream))  # buffers too small
    host = np.zeros(4, np.float32)
    assert rt.cudaMemcpyAsync(host.ctypes.data, small + 8, 16, 2, stream)[0] != 0  # out of bounds
    rt.cudaFree(small)
    assert rt.cudaFree(small)[0] != 0  # double free
    rt.cudaStreamDestroy(stream)


def test_missing_profile_shapes_and_bad_ranges_are_reported(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    backend = make_backend()
    onnx_path = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    with pytest.raises(InputError, match=r"input_1:0.*min/opt/max"):
        _compile(backend, onnx_path, tmp_path / "a.engine", {})
    bad = {"input_1:0": ShapeRange((1, 32, 32, 3), (1, 32, 32, 3), (2, 32, 32, 3))}
    with pytest.raises(InputError, match="fixes it at 64"):
        _compile(backend, onnx_path, tmp_path / "b.engine", bad)
    typo = {"input_1": ShapeRange((1, 64, 64, 3), (1, 64, 64, 3), (2, 64, 64, 3))}
    with pytest.raises(InputError, match="does not have"):
        _compile(backend, onnx_path, tmp_path / "c.engine", typo)


def test_onnx_parse_failures_are_reported(make_backend: Callable[..., Any], tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    backend = make_backend()
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07this is not a protobuf model" * 10)
    with pytest.raises(BackendError, match=r"could not parse garbage\.onnx"):
        _compile(backend, garbage, tmp_path / "g.engine", {})
    graph = helper.make_graph(
        [helper.make_node("FancyOp", ["x"], ["y"], domain="com.example", name="fancy")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)], ir_version=10
    )
    custom = tmp_path / "custom.onnx"
    onnx.save(model, custom)
    with pytest.raises(BackendError, match=r"node fancy \(FancyOp\): No importer registered for op: FancyOp"):
        _compile(backend, custom, tmp_path / "c.engine", {})


def test_precision_follows_the_installed_version(
    models_dir: Path, make_backend: Callable[..., Any], trt_version: str, tmp_path: Path
) -> None:
    backend = make_backend()
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    if trt_version.startswith("10"):
        engine = _compile(backend, onnx_path, tmp_path / "h.engine", {}, precision="fp16")
        header = _plan_header(engine)
        assert "FP16" in header["flags"] and not header["strongly_typed"]
    else:  # strongly typed: built from a float16 copy of the ONNX (tests/test_tensorrt_precision.py)
        engine = _compile(backend, onnx_path, tmp_path / "h.engine", {}, precision="fp16")
        header = _plan_header(engine)
        assert header["strongly_typed"] and not {"FP16", "INT8"} & set(header["flags"])
        with pytest.raises(BackendError, match="strongly typed"):
            _compile(backend, onnx_path, tmp_path / "b.engine", {}, precision="bf16")
    with pytest.raises(InputError, match="precision"):
        _compile(backend, onnx_path, tmp_path / "x.engine", {}, precision="fp8")


def test_int8_calibration_feeds_batches_from_the_request(
    models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path
) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    cache = tmp_path / "calib.cache"
    backend = make_backend10(calibration_cache=str(cache))
    rng = np.random.default_rng(0)
    calibration = [{"input_1:0": rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)} for _ in range(3)]
    with pytest.raises(BackendError, match="calibration data"):
        _compile(backend, models_dir / model, tmp_path / "n.engine", MODELS[model][0], precision="int8")
    engine = _compile(
        backend, models_dir / model, tmp_path / "q.engine", MODELS[model][0], precision="int8", calibration=calibration
    )
    header = _plan_header(engine)
    assert "INT8" in header["flags"] and header["calibrated"]
    assert cache.read_bytes().startswith(b"TRT-double-EntropyCalibration2")
    mixed = [*calibration, {"input_1:0": np.zeros((3, 64, 64, 3), np.float32)}]
    with pytest.raises(InputError, match="one shape"):
        _compile(
            backend, models_dir / model, tmp_path / "m.engine", MODELS[model][0], precision="int8", calibration=mixed
        )
    wrong = [{"input_1:0": np.zeros((2, 32, 32, 3), np.float32)}]
    with pytest.raises(InputError, match="the network takes"):
        _compile(
            backend, models_dir / model, tmp_path / "w.engine", MODELS[model][0], precision="int8", calibration=wrong
        )
    with backend.load(engine) as session:  # the double computes in fp32: the engine is usable
        assert session.run(random_feeds(session, 2, 0, 255, 0))["pred_pose/mul_24:0"].shape == (2, 3)


def test_timing_cache_is_written_and_reused(models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    backend = make_backend(timing_cache=str(cache))
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    _compile(backend, onnx_path, tmp_path / "a.engine", {})
    assert cache.is_file()
    first = json.loads(cache.read_bytes()[8:])["entries"]
    _compile(backend, onnx_path, tmp_path / "b.engine", {})
    assert len(json.loads(cache.read_bytes()[8:])["entries"]) == len(first) + 1
    _compile(make_backend(timing_cache=False), onnx_path, tmp_path / "c.engine", {})


def test_cache_key_names_gpu_version_and_options(make_backend: Callable[..., Any], trt_version: str) -> None:
    key = make_backend(builder_optimization_level=5).cache_key()
    assert trt_version in key and "RTX 4090" in key and "sm89" in key and "builder_optimization_level" in key
    assert key != make_backend(builder_optimization_level=3).cache_key()
    with pytest.raises(InputError, match="unknown TensorRT backend options"):
        make_backend(fp16=True)


def test_engines_from_another_version_or_gpu_are_refused(models_dir: Path, tmp_path: Path) -> None:
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    with activated(version="10.16.1") as make_backend:
        engine = _compile(make_backend(), onnx_path, tmp_path / "a.engine", {})
    with activated(version="10.15.0") as make_backend, pytest.raises(ModelFileError, match="rebuild"):
        make_backend().load(engine)
    with activated(devices=[("NVIDIA A100 (double)", 8, 0, 8 << 30)]) as make_backend:
        with pytest.raises(ModelFileError, match="incompatible device"):
            make_backend().load(engine)
        with pytest.raises(InputError, match="device_id 3 does not exist"):
            make_backend(device_id=3).cache_key()


def test_unavailable_reasons_name_what_is_missing() -> None:
    import sys

    from facelib_tensorrt import TensorRTBackend

    cases = [
        ({"sdk": False}, "TensorRT Python package is not installed"),
        ({"devices": []}, "no CUDA-capable GPU"),
        ({"driver_version": 0}, "no NVIDIA driver"),
    ]
    for kwargs, reason in cases:
        with activated(**kwargs):
            availability = TensorRTBackend.available()
            assert not availability and reason in availability.reason
            with pytest.raises(BackendUnavailableError, match=reason):
                get_backend("tensorrt")
    with activated():
        assert TensorRTBackend.available()
        for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
            sys.modules[name] = None  # type: ignore[assignment]  # cleaned up by activated()
        availability = TensorRTBackend.available()
        assert not availability and "cuda-bindings" in availability.reason
    with activated(version="8.6.1"):
        assert "too old" in TensorRTBackend.available().reason


def test_model_package_compiles_once_and_caches(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    package = ModelPackage.load(head_pose_card_package(models_dir, tmp_path / "pkg")).check()
    backend = make_backend()
    calls = count_compiles(backend)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 240, 320)).astype(np.float32)
    want = OnnxRuntimeBackend().load(package.path("detector")).run({"input": x})
    with package.session("detector", backend) as session:
        got = session.run({"input": x})
    with package.session("detector", backend) as again:
        again_out = again.run({"input": x})
    assert len(calls) == 1 and calls[0].shapes["input"].max == (1, 3, 240, 320)
    cached = list((tmp_path / "pkg" / ".facelib-cache" / "tensorrt").glob("detector-*.engine"))
    assert len(cached) == 1
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(again_out[name], got[name])
    with package.session("detector", backend, {"precision": "fp32", "builder_optimization_level": 5}):
        pass
    assert len(calls) == 2  # other compile options -> another cached artefact
    assert calls[1].options == {"builder_optimization_level": 5}
    with pytest.raises(InputError, match="unknown TensorRT compile options"):
        package.session("detector", backend, {"optimisation": 5})


def test_plugin_declares_its_entry_point() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from facelib_tensorrt.plugin import facelib_backends

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["facelib.backends"] == {"tensorrt": "facelib_tensorrt.plugin"}
    (cls,) = facelib_backends()
    assert cls.name == "tensorrt" and cls.formats == (".engine", ".plan") and cls.priority == 300


def test_corrupt_timing_cache_is_replaced(models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"garbage from an older run")
    backend = make_backend(timing_cache=str(cache))
    engine = _compile(backend, models_dir / "mediapipe/face_blendshapes.onnx", tmp_path / "a.engine", {})
    assert engine.is_file() and cache.read_bytes().startswith(b"TRTDBLTC")


def test_growing_sequence_inputs_like_a_decoder(make_backend: Callable[..., Any], tmp_path: Path) -> None:
    onnx_path = decoder_like_onnx(tmp_path / "decoder.onnx")
    shapes = {
        "x": ShapeRange((1, 1, 8), (1, 64, 8), (1, 600, 8)),
        "memory": ShapeRange((1, 1, 8), (1, 200, 8), (1, 900, 8)),
    }
    backend = make_backend()
    engine = _compile(backend, onnx_path, tmp_path / "d.engine", shapes)
    reference = OnnxRuntimeBackend().load(onnx_path)
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(1, 300, 8)).astype(np.float32)
    with backend.load(engine) as session:
        for t in (1, 2, 3, 17, 600):  # one more step each call, then the longest
            feeds = {"x": rng.normal(size=(1, t, 8)).astype(np.float32), "memory": memory}
            np.testing.assert_allclose(session.run(feeds)["y"], reference.run(feeds)["y"], rtol=1e-5, atol=1e-5)
        with pytest.raises(InputError, match="outside the engine's optimisation profile"):
            session.run({"x": np.zeros((1, 601, 8), np.float32), "memory": memory})


def test_concurrent_runs_on_one_session(models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path) -> None:
    import threading

    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend10()
    engine = _compile(backend, models_dir / model, tmp_path / "m.engine", MODELS[model][0])
    reference = OnnxRuntimeBackend().load(models_dir / model)
    errors: list[BaseException] = []
    with backend.load(engine) as session:

        def work(seed: int) -> None:
            try:
                for k in range(3):
                    feeds = random_feeds(session, 1 + (seed + k) % 6, 0, 255, seed * 10 + k)
                    got = session.run(feeds)["pred_pose/mul_24:0"]
                    want = reference.run(feeds)["pred_pose/mul_24:0"]
                    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert not errors, errors


def test_cli_info_and_backends_show_the_plugin(
    models_dir: Path, make_backend10: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facelib.cli import main

    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    engine = _compile(make_backend10(), models_dir / model, tmp_path / "m.engine", MODELS[model][0])
    assert main(["info", "--json", str(engine)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "tensorrt"
    assert info["inputs"] == [{"name": "input_1:0", "shape": [None, 64, 64, 3], "dtype": "float32"}]
    assert main(["backends"]) == 0
    assert "tensorrt" in capsys.readouterr().out


def test_version_compatible_engines_load_on_later_runtimes(models_dir: Path, tmp_path: Path) -> None:
    """VC plans carry host code (the lean runtime): loading must allow it; versions compare as numbers."""
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    with activated(version="10.9.0") as make_backend:
        vc = _compile(make_backend(version_compatible=True), onnx_path, tmp_path / "vc.engine", {})
        plain = _compile(make_backend(), onnx_path, tmp_path / "plain.engine", {})
        assert _plan_header(vc)["host_code"] and not _plan_header(plain)["host_code"]
    feeds = {"serving_default_input_points:0": np.zeros((1, 146, 2), np.float32)}
    for later in ("10.16.1", "11.1.0"):  # 10.9.0 < 10.16.1 numerically; TRT 10 VC plans also run on 11
        with activated(version=later) as make_backend:
            with make_backend(version_compatible=True).load(vc) as session:
                assert session.run(feeds)["StatefulPartitionedCall:0"].shape == (52,)
            with pytest.raises(ModelFileError, match="rebuild"):  # not version compatible
                make_backend().load(plain)
    with activated(version="10.16.1") as make_backend:
        newer = _compile(make_backend(version_compatible=True), onnx_path, tmp_path / "newer.engine", {})
    with activated(version="10.9.0") as make_backend, pytest.raises(ModelFileError, match="rebuild"):
        make_backend(version_compatible=True).load(newer)  # never on an older runtime


def test_double_refuses_host_code_unless_allowed(models_dir: Path, tmp_path: Path) -> None:
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    with activated(version="10.16.1") as make_backend:
        vc = _compile(make_backend(version_compatible=True), onnx_path, tmp_path / "vc.engine", {})
        import tensorrt as trt

        runtime = trt.Runtime(trt.Logger())
        assert runtime.engine_host_code_allowed is False
        assert runtime.deserialize_cuda_engine(vc.read_bytes()) is None
        runtime.engine_host_code_allowed = True
        assert runtime.deserialize_cuda_engine(vc.read_bytes()) is not None
