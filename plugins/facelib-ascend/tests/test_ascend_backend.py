"""The Ascend plugin on real models, through faithful doubles of ais_bench, aclruntime, pyACL and atc."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ascend_double_env import activated

from facelib.backends import CompileRequest, ShapeRange, get_backend
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import BackendError, BackendUnavailableError, InferenceError, InputError, ModelFileError
from facelib.models import ModelPackage
from facelib.testing.conformance import count_compiles
from facelib.testing.model_cases import assert_matches_onnxruntime, decoder_like_onnx, random_feeds
from facelib.testing.packages import head_pose_card_package

FSANET_RANGE = ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))
# model file -> (shape ranges of dynamic inputs, batches to run in one session, value range)
MODELS: dict[str, tuple[dict[str, ShapeRange], list[int], tuple[float, float]]] = {
    "fsanet/fsanet_capsule_3_16_2_21_5.onnx": ({"input_1:0": FSANET_RANGE}, [1, 5, 16, 2], (0.0, 255.0)),
    "fsanet/fsanet_var_capsule_3_16_2_21_5.onnx": ({"input_1:0": FSANET_RANGE}, [3, 16], (0.0, 255.0)),
    "fsanet/fsanet_noS_capsule_3_16_2_192_5.onnx": ({"input_1:0": FSANET_RANGE}, [7, 2], (0.0, 255.0)),
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


def _check_against_onnxruntime(session: Any, onnx_path: Path, batches: list[int], lo: float, hi: float) -> None:
    feeds = [random_feeds(session, batch, lo, hi, seed=i) for i, batch in enumerate(batches)]
    assert_matches_onnxruntime(session, onnx_path, feeds)


@pytest.mark.parametrize("model", list(MODELS))
def test_real_models_match_onnxruntime(
    model: str, models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    shapes, batches, (lo, hi) = MODELS[model]
    backend = make_backend()
    om = _compile(backend, models_dir / model, tmp_path / "model.om", shapes)
    with backend.load(om) as session:
        assert session.mode == ("dymbatch" if shapes else "static")
        _check_against_onnxruntime(session, models_dir / model, batches, lo, hi)


@pytest.mark.parametrize("dynamic", ["shape", "dims"])
def test_shape_range_and_dims_gear_models(
    dynamic: str, models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend(dynamic=dynamic)
    om = _compile(backend, models_dir / model, tmp_path / "m.om", {"input_1:0": FSANET_RANGE})
    with backend.load(om) as session:
        assert session.mode == {"shape": "dymshape", "dims": "dymdims"}[dynamic]
        batches = [3, 16, 1] if dynamic == "shape" else [1, 4, 16]
        _check_against_onnxruntime(session, models_dir / model, batches, 0, 255)
        match = "outside the compiled range" if dynamic == "shape" else "match no compiled gear"
        with pytest.raises(InputError, match=match):
            session.run({"input_1:0": np.zeros((17 if dynamic == "shape" else 5, 64, 64, 3), np.float32)})


def test_older_cann_range_syntax(models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend(dynamic="shape", range_syntax="input_shape_range")
    om = _compile(backend, models_dir / model, tmp_path / "m.om", {"input_1:0": FSANET_RANGE})
    with backend.load(om) as session:
        _check_against_onnxruntime(session, models_dir / model, [2, 9], 0, 255)


def test_batch_gears_pad_and_refuse_beyond_the_largest(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend()
    om = _compile(backend, models_dir / model, tmp_path / "m.om", {"input_1:0": FSANET_RANGE})
    info = json.loads(Path(str(om) + ".facelib.json").read_text())
    assert info["batch_gears"] == [1, 2, 4, 8, 16]
    with backend.load(om) as session:
        assert session.run(random_feeds(session, 3, 0, 255, 0))["pred_pose/mul_24:0"].shape == (3, 3)  # padded to 4
        with pytest.raises(InputError, match="exceeds the largest compiled batch gear 16"):
            session.run({"input_1:0": np.zeros((17, 64, 64, 3), np.float32)})
        with pytest.raises(InputError, match="expects"):
            session.run({"input_1:0": np.zeros((2, 32, 32, 3), np.float32)})
        with pytest.raises(InputError, match="no outputs named"):
            session.run(random_feeds(session, 1, 0, 255, 0), output_names=["nope"])


def test_double_enforces_positional_inputs_sizes_and_dtypes(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    from ais_bench.infer.interface import InferSession

    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    om = _compile(make_backend(), models_dir / model, tmp_path / "m.om", {"input_1:0": FSANET_RANGE})
    raw = InferSession(0, str(om))
    assert [d.name for d in raw.get_inputs()] == ["input_1:0"] and raw.get_inputs()[0].shape[0] == -1
    assert raw.get_outputs()[0].name == "om_output_0"  # not the ONNX name: the plugin maps by position
    x = np.zeros((3, 64, 64, 3), np.float32)
    with pytest.raises(RuntimeError, match="not in the model's gears"):
        raw.infer([x], mode="dymbatch")
    with pytest.raises(RuntimeError, match="realsize 786432"):  # no batch set: the largest gear (16)
        raw.infer([np.zeros((4, 64, 64, 3), np.float32)], mode="static")
    with pytest.raises(RuntimeError, match="nums not matched"):
        raw.infer([x, x], mode="dymbatch")
    with pytest.raises(RuntimeError, match="float64"):
        raw.infer([np.zeros((4, 64, 64, 3))], mode="dymbatch")
    with pytest.raises(RuntimeError, match="wrong infer_mode"):
        raw.infer([x], mode="fast")
    assert raw.infer([np.zeros((4, 64, 64, 3), np.float32)], mode="dymbatch")[0].shape == (4, 3)
    raw.free_resource()


def test_atc_errors_are_reported(models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    with pytest.raises(BackendError, match=r"(?s)ATC failed.*E10001.*soc_version"):
        _compile(make_backend(soc_version="Ascend999"), onnx_path, tmp_path / "a.om", {})
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
    with pytest.raises(BackendError, match=r"(?s)E11001.*FancyOp"):
        _compile(make_backend(), custom, tmp_path / "c.om", {})
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 not a protobuf" * 10)
    with pytest.raises(ModelFileError, match="not a readable ONNX"):
        _compile(make_backend(), garbage, tmp_path / "g.om", {})
    with pytest.raises(BackendError, match="AMCT"):
        _compile(make_backend(), onnx_path, tmp_path / "q.om", {}, precision="int8")
    with pytest.raises(InputError, match="min/opt/max"):
        _compile(make_backend(), models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx", tmp_path / "d.om", {})


def test_precision_and_soc_reach_atc(models_dir: Path, tmp_path: Path) -> None:
    onnx_path = models_dir / "mediapipe/face_blendshapes.onnx"
    with activated(soc="Ascend910B3") as make_backend:
        backend = make_backend()
        assert "Ascend910B3" in backend.cache_key()
        om = _compile(backend, onnx_path, tmp_path / "h.om", {}, precision="fp16")
        info = json.loads(Path(str(om) + ".facelib.json").read_text())
        assert info["soc_version"] == "Ascend910B3" and info["precision_mode"] == "force_fp16"
        om32 = _compile(make_backend(precision_mode="allow_fp32_to_fp16"), onnx_path, tmp_path / "p.om", {})
        assert json.loads(Path(str(om32) + ".facelib.json").read_text())["precision_mode"] == "allow_fp32_to_fp16"
    with activated(soc="Ascend310P3") as make_backend, pytest.raises(ModelFileError, match="Ascend910B3"):
        make_backend().load(om)  # an .om only loads on the SoC it was compiled for
    with activated(atc=False) as make_backend, pytest.raises(BackendUnavailableError, match="atc"):
        _compile(make_backend(), onnx_path, tmp_path / "n.om", {})


def test_unavailable_reasons_name_what_is_missing() -> None:
    from facelib_ascend import AscendBackend

    for kwargs, reason in [
        ({"sdk": False}, "ais_bench is not installed"),
        ({"devices": 0}, "no Ascend NPU is visible"),
        ({"devices": -1}, "returned error"),
    ]:
        with activated(**kwargs):  # type: ignore[arg-type]
            availability = AscendBackend.available()
            assert not availability and reason in availability.reason
            with pytest.raises(BackendUnavailableError, match=reason):
                get_backend("ascend")
    with activated():
        assert AscendBackend.available()
        import sys

        sys.modules["acl"] = None  # type: ignore[assignment]  # cleaned up by activated()
        assert "pyACL" in AscendBackend.available().reason


def test_close_frees_the_session(models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path) -> None:
    import aclruntime

    backend = make_backend()
    om = _compile(backend, models_dir / "mediapipe/face_blendshapes.onnx", tmp_path / "b.om", {})
    session = backend.load(om)
    assert aclruntime._live_sessions() == 1
    session.close()
    session.close()
    assert aclruntime._live_sessions() == 0
    with pytest.raises(InferenceError, match="closed"):
        session.run({"serving_default_input_points:0": np.zeros((1, 146, 2), np.float32)})


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
        assert [o.name for o in again.outputs] == ["scores", "boxes"]  # sidecar found after the rename
        again_out = again.run({"input": x})
    assert len(calls) == 1
    cache = tmp_path / "pkg" / ".facelib-cache" / "ascend"
    (om,) = cache.glob("detector-*.om")
    assert Path(str(om) + ".facelib.json").is_file()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(again_out[name], got[name])
    with package.session("detector", backend, {"precision": "fp16"}) as half:
        assert half.run({"input": x})["boxes"].shape == (1, 4420, 4)
    assert len(calls) == 2 and calls[1].precision == "fp16"
    with pytest.raises(ModelFileError, match="built for Ascend910B3"):  # compiled for another SoC
        package.session("detector", backend, {"soc_version": "Ascend910B3"})
    with pytest.raises(InputError, match="unknown Ascend compile options"):
        package.session("detector", backend, {"socversion": "Ascend910B3"})


def test_cann_route_needs_the_cann_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort
    from facelib_ascend import AscendCannBackend

    with activated() as make_backend:
        availability = AscendCannBackend.available()
        assert not availability and "onnxruntime-cann" in availability.reason
        with pytest.raises(BackendUnavailableError, match="CANNExecutionProvider"):
            make_backend("ascend-cann")
        have = ort.get_available_providers()
        monkeypatch.setattr(ort, "get_available_providers", lambda: ["CANNExecutionProvider", *have])
        assert AscendCannBackend.available()
        backend = make_backend(
            "ascend-cann",
            device_id=1,
            precision_mode="must_keep_origin_dtype",
            provider_options={"enable_cann_graph": False, "npu_mem_limit": 1 << 30},
        )
        assert backend.needs_compile is False and backend.formats == (".onnx",)
        assert backend.options["providers"] == [
            (
                "CANNExecutionProvider",
                {
                    "device_id": "1",
                    "precision_mode": "must_keep_origin_dtype",
                    "enable_cann_graph": "False",
                    "npu_mem_limit": str(1 << 30),
                },
            ),
            "CPUExecutionProvider",
        ]


def test_plugin_declares_its_entry_point() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from facelib_ascend.plugin import facelib_backends

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["facelib.backends"] == {"ascend": "facelib_ascend.plugin"}
    names = {cls.name: cls for cls in facelib_backends()}
    assert names["ascend"].formats == (".om",) and names["ascend-cann"].formats == (".onnx",)


def test_atc_command_line(models_dir: Path) -> None:
    from facelib_ascend.atc import atc_command, plan_dynamic

    from facelib.models import read_onnx_specs

    fsanet = models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    inputs, _ = read_onnx_specs(fsanet)
    plan = plan_dynamic(inputs, {"input_1:0": FSANET_RANGE}, "auto", None)
    cmd = atc_command("atc", fsanet, Path("/o/m"), "Ascend310P3", inputs, plan, "must_keep_origin_dtype", {})
    assert cmd == [
        "atc",
        "--framework=5",
        f"--model={fsanet}",
        "--output=/o/m",
        "--soc_version=Ascend310P3",
        "--input_format=ND",
        "--input_shape=input_1:0:-1,64,64,3",
        "--dynamic_batch_size=1,2,4,8,16",
        "--precision_mode=must_keep_origin_dtype",
        "--log=error",
    ]
    shape_plan = plan_dynamic(inputs, {"input_1:0": FSANET_RANGE}, "shape", None)
    cmd = atc_command("atc", fsanet, Path("/o/m"), "Ascend310P3", inputs, shape_plan, "force_fp16", {})
    assert "--input_shape=input_1:0:1~16,64,64,3" in cmd
    ultraface = models_dir / "ultraface/version-RFB-320.onnx"
    inputs, _ = read_onnx_specs(ultraface)
    cmd = atc_command(
        "atc", ultraface, Path("/o/u"), "Ascend310", inputs, plan_dynamic(inputs, {}, "auto", None), "x", {}
    )
    assert "--input_format=NCHW" in cmd and "--input_shape=input:1,3,240,320" in cmd


def test_om_without_sidecar_runs_with_om_names(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path
) -> None:
    model = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
    backend = make_backend()
    om = _compile(backend, models_dir / model, tmp_path / "m.om", {"input_1:0": FSANET_RANGE})
    Path(str(om) + ".facelib.json").unlink()
    with backend.load(om) as session:
        assert session.mode == "dymbatch" and [o.name for o in session.outputs] == ["om_output_0"]
        assert session.run(random_feeds(session, 4, 0, 255, 0))["om_output_0"].shape == (4, 3)
        with pytest.raises(InferenceError, match="not in the model's gears"):
            session.run(random_feeds(session, 3, 0, 255, 0))  # no sidecar: gears unknown, ais_bench refuses


def test_growing_sequence_inputs_like_a_decoder(make_backend: Callable[..., Any], tmp_path: Path) -> None:
    onnx_path = decoder_like_onnx(tmp_path / "decoder.onnx")
    shapes = {
        "x": ShapeRange((1, 1, 8), (1, 64, 8), (1, 600, 8)),
        "memory": ShapeRange((1, 1, 8), (1, 200, 8), (1, 900, 8)),
    }
    backend = make_backend()
    om = _compile(backend, onnx_path, tmp_path / "d.om", shapes)
    reference = OnnxRuntimeBackend().load(onnx_path)
    rng = np.random.default_rng(1)
    memory = rng.normal(size=(1, 300, 8)).astype(np.float32)
    with backend.load(om) as session:
        assert session.mode == "dymshape"  # a sequence dim varies: shape ranges, not gears
        for t in (1, 2, 3, 17, 600):
            feeds = {"x": rng.normal(size=(1, t, 8)).astype(np.float32), "memory": memory}
            np.testing.assert_allclose(session.run(feeds)["y"], reference.run(feeds)["y"], rtol=1e-5, atol=1e-5)
        with pytest.raises(InputError, match="outside the compiled range"):
            session.run({"x": np.zeros((1, 601, 8), np.float32), "memory": memory})


def test_cli_info_reads_an_om(
    models_dir: Path, make_backend: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facelib.cli import main

    om = _compile(make_backend(), models_dir / "ultraface/version-RFB-320.onnx", tmp_path / "u.om", {})
    assert main(["info", "--json", str(om)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "ascend" and [o["name"] for o in info["outputs"]] == ["scores", "boxes"]
