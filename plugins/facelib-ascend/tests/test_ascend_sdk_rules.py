"""Rules of the real Ascend tools that the plugin must follow (issue 18), held by the doubles.

Each test names the vendor source of the rule; docs/plugins/ascend.md lists them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ascend_double_env import activated

from facelib.backends import CompileRequest, ShapeRange
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import InputError

FSA = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
OUT = "pred_pose/mul_24:0"
FSA_RANGE = ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))


def _compile(backend: Any, onnx_path: Path, out: Path, shapes: dict[str, ShapeRange], **kw: Any) -> Path:
    return Path(backend.compile(CompileRequest(onnx_path, out, shapes=shapes, **kw)))


def _crops(n: int) -> np.ndarray:
    return np.random.default_rng(n).uniform(0, 255, (n, 64, 64, 3)).astype(np.float32)


def _check(session: Any, onnx_path: Path, batches: list[int]) -> None:
    reference = OnnxRuntimeBackend().load(onnx_path)
    for n in batches:
        feeds = {"input_1:0": _crops(n)}
        np.testing.assert_allclose(session.run(feeds)[OUT], reference.run(feeds)[OUT], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("naming", ["os_arch", "plain"])
def test_atc_output_with_or_without_os_arch_suffix(
    naming: str, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ATC --output may produce <stem>_linux_<arch>.om (hiascend ATC --output page)."""
    monkeypatch.setenv("FACELIB_ATC_DOUBLE_NAMING", naming)
    with activated() as make_backend:
        backend = make_backend()
        om = _compile(backend, models_dir / FSA, tmp_path / "m.om", {"input_1:0": FSA_RANGE})
        assert om == tmp_path / "m.om" and om.is_file()
        with backend.load(om) as session:
            _check(session, models_dir / FSA, [2])


@pytest.mark.parametrize("api", ["msit", "tools-2023"])
def test_padded_batches_run_with_either_ais_bench_generation(
    api: str, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2023 Ascend/tools InferSession.infer never sets the dynamic batch; the plugin sets it itself."""
    monkeypatch.setenv("FACELIB_AIS_BENCH_DOUBLE_API", api)
    with activated() as make_backend:
        backend = make_backend()
        om = _compile(backend, models_dir / FSA, tmp_path / "m.om", {"input_1:0": FSA_RANGE})
        with backend.load(om) as session:
            assert session.mode == "dymbatch"
            _check(session, models_dir / FSA, [1, 3, 4, 16])  # 3 is padded to gear 4


def test_double_model_without_dynamic_batch_set_takes_only_the_largest_gear(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACELIB_AIS_BENCH_DOUBLE_API", "tools-2023")
    with activated() as make_backend:
        om = _compile(make_backend(), models_dir / FSA, tmp_path / "m.om", {"input_1:0": FSA_RANGE})
        from ais_bench.infer.interface import InferSession

        session = InferSession(0, str(om))
        assert session.infer([_crops(16)], mode="dymbatch")[0].shape == (16, 3)
        with pytest.raises(RuntimeError, match="realsize"):
            session.infer([_crops(4)], mode="dymbatch")  # ignored by the 2023 wrapper


def test_one_gear_compiles_static_and_gear_counts_are_bounded(models_dir: Path, tmp_path: Path) -> None:
    """ATC --dynamic_batch_size / --dynamic_dims take 2..100 gears (hiascend ATC parameter pages)."""
    one = ShapeRange((4, 64, 64, 3), (4, 64, 64, 3), (4, 64, 64, 3))
    with activated() as make_backend:
        for dynamic in ("auto", "batch", "dims"):
            backend = make_backend(dynamic=dynamic)
            om = _compile(backend, models_dir / FSA, tmp_path / f"one-{dynamic}.om", {"input_1:0": one})
            assert json.loads(Path(str(om) + ".facelib.json").read_text())["mode"] == "static"
            with backend.load(om) as session:
                _check(session, models_dir / FSA, [4])
        backend = make_backend(dynamic="batch", gears=[8])
        om = _compile(backend, models_dir / FSA, tmp_path / "g8.om", {"input_1:0": FSA_RANGE})
        with backend.load(om) as session:
            assert session.mode == "static"
        with pytest.raises(InputError, match="at most 100"):
            _compile(
                make_backend(dynamic="batch", gears=list(range(1, 102))),
                models_dir / FSA,
                tmp_path / "many.om",
                {"input_1:0": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (101, 64, 64, 3))},
            )


def _sequence_model(path: Path) -> Path:
    """A decoder-shaped graph (FaceFormer's decoder grows T per step): a sequence dim varies."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 8])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


@pytest.mark.parametrize("soc", ["Ascend310", "Ascend310B1"])
def test_socs_without_shape_ranges_get_gears(soc: str, models_dir: Path, tmp_path: Path) -> None:
    """Atlas 200/300/500 inference and 200I/500 A2 SoCs have no shape-range support in ATC."""
    model = _sequence_model(tmp_path / "seq.onnx")
    rng = ShapeRange((1, 1, 8), (1, 64, 8), (1, 600, 8))
    with activated(soc=soc) as make_backend:
        backend = make_backend()
        om = _compile(backend, model, tmp_path / "m.om", {"x": rng})
        with backend.load(om) as session:
            assert session.mode == "dymdims"  # gears min/opt/max instead of a range
            x = np.ones((1, 64, 8), np.float32)
            np.testing.assert_allclose(
                session.run({"x": x})["y"], OnnxRuntimeBackend().load(model).run({"x": x})["y"], rtol=1e-5
            )
        with pytest.raises(InputError, match="cannot compile shape ranges"):
            _compile(make_backend(dynamic="shape"), model, tmp_path / "s.om", {"x": rng})
    with activated(soc="Ascend310P3") as make_backend:
        om = _compile(make_backend(), model, tmp_path / "p.om", {"x": rng})
        with make_backend().load(om) as session:
            assert session.mode == "dymshape"


def test_double_atc_refuses_ranges_on_socs_without_them(models_dir: Path, tmp_path: Path) -> None:
    import subprocess

    with activated(soc="Ascend310"):
        proc = subprocess.run(
            ["atc", "--framework=5", f"--model={models_dir / FSA}", f"--output={tmp_path / 'x'}",
             "--soc_version=Ascend310", "--input_shape=input_1:0:1~16,64,64,3", "--input_format=ND"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode != 0 and "not supported for soc_version [Ascend310]" in proc.stdout
        proc = subprocess.run(
            ["atc", "--framework=5", f"--model={models_dir / FSA}", f"--output={tmp_path / 'y'}",
             "--soc_version=Ascend310P3", "--input_shape=input_1:0:-1,64,64,3", "--dynamic_batch_size=4"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode != 0 and "2..100" in proc.stdout


def test_cache_key_follows_the_cann_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled .om files depend on the CANN/ATC that made them (ascend_toolkit_install.info version=)."""
    import platform

    info = tmp_path / f"{platform.machine()}-linux" / "ascend_toolkit_install.info"
    info.parent.mkdir()
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(tmp_path))
    keys = []
    with activated() as make_backend:
        for version in ("7.0.0", "8.0.RC2"):
            info.write_text(f"package_name=Ascend-cann-toolkit\nversion={version}\n")
            keys.append(make_backend().cache_key())
    assert "CANN 7.0.0" in keys[0] and "CANN 8.0.RC2" in keys[1]
    monkeypatch.delenv("ASCEND_TOOLKIT_HOME")
    with activated() as make_backend:
        assert "atc " in make_backend().cache_key()  # no toolkit file: the atc executable's fingerprint


def _probed() -> dict[str, Any]:
    return dict(json.loads((Path(__file__).parent / "sdk_names" / "onnxruntime-cann-1.24.4.json").read_text()))


def test_cann_provider_options_are_ones_the_real_wheel_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys facelib sends were accepted by onnxruntime-cann 1.24.4 itself (probe_onnxruntime_cann.py)."""
    import onnxruntime as ort
    from facelib_ascend.cann import KNOWN_OPTIONS, PROVIDER

    probed = _probed()
    assert PROVIDER in probed["available"]  # the provider name the real wheel registers
    assert "precision_mode" in probed["accepted"] and "precision_mode_v2" in probed["refused"]
    assert set(probed["accepted"]) <= set(KNOWN_OPTIONS)
    have = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CANNExecutionProvider", *have])
    with activated() as make_backend:
        backend = make_backend("ascend-cann", device_id=0, precision_mode="force_fp16")
        sent = backend.options["providers"][0][1]
        assert set(sent) <= set(probed["accepted"])
        with pytest.raises(InputError, match="unknown CANNExecutionProvider options"):
            make_backend("ascend-cann", provider_options={"enable_graph": True})


# this onnxruntime has no CANN provider: it warns and drops it, as a real onnxruntime-cann does
# (with an "EP Error" instead) when the provider's options are refused or CANN cannot start
@pytest.mark.filterwarnings("ignore:Specified provider 'CANNExecutionProvider' is not in available:UserWarning")
def test_silent_fallback_to_cpu_is_an_error(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime runs on CPU when the CANN provider cannot start; facelib must not pretend."""
    import onnxruntime as ort

    from facelib.errors import BackendError

    have = ort.get_available_providers()
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CANNExecutionProvider", *have])
    with activated() as make_backend:
        backend = make_backend("ascend-cann", provider_options={"npu_mem_limit": 1 << 30})
        with pytest.raises(BackendError, match=r"did not put face_blendshapes\.onnx on the NPU"):
            backend.load(models_dir / "mediapipe/face_blendshapes.onnx")
