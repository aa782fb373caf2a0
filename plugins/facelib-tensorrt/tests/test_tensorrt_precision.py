"""fp16 / int8 on strongly typed TensorRT (11.x, or 10.x with strongly_typed): built from a
float16 or Q/DQ copy of the ONNX; accuracy against float32 onnxruntime on real FSA-Net crops.

The double computes with onnxruntime on the ONNX inside the plan, i.e. on the converted copy:
the errors measured here are those of the converted ONNX, not of TensorRT kernels.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from trt_double_env import activated

from facelib.backends import CompileRequest, ShapeRange
from facelib.errors import BackendError
from facelib.testing.model_cases import fsanet_crops, onnxruntime_outputs

FSA = "fsanet/fsanet_capsule_3_16_2_21_5.onnx"
OUT = "pred_pose/mul_24:0"
RANGE = {"input_1:0": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (8, 64, 64, 3))}


def _plan_onnx(engine: Path) -> tuple[dict[str, Any], onnx.ModelProto]:
    data = engine.read_bytes()
    (size,) = struct.unpack("<Q", data[8:16])
    return dict(json.loads(data[16 : 16 + size])), onnx.load_model_from_string(data[16 + size :])


def _errors(backend: Any, engine: Path, onnx_path: Path, crops: np.ndarray) -> np.ndarray:
    want = onnxruntime_outputs(onnx_path, {"input_1:0": crops})[OUT]
    with backend.load(engine) as session:
        got = session.run({"input_1:0": crops})[OUT]
    assert got.dtype == np.float32 and got.shape == want.shape
    return np.abs(got - want)


@pytest.fixture
def make_backend11() -> Any:
    with activated(version="11.1.0") as factory:
        yield factory


def test_fp16_builds_from_a_float16_copy(models_dir: Path, make_backend11: Callable[..., Any], tmp_path: Path) -> None:
    onnx_path = models_dir / FSA
    backend = make_backend11()
    engine = Path(backend.compile(CompileRequest(onnx_path, tmp_path / "h.engine", shapes=RANGE, precision="fp16")))
    header, model = _plan_onnx(engine)
    assert header["strongly_typed"] and not {"FP16", "INT8"} & set(header["flags"])
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert header["inputs"][0][2] == 0  # float32 I/O kept: callers feed the same arrays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.engine"]  # the converted copy is gone
    err = _errors(backend, engine, onnx_path, fsanet_crops(models_dir))
    # measured 2026-12-01: max 2.39, mean 0.71 degrees over the 6 reference crops
    assert 0 < err.max() < 5 and err.mean() < 1.5


def test_int8_is_qdq_calibrated_on_real_inputs(
    models_dir: Path, make_backend11: Callable[..., Any], tmp_path: Path
) -> None:
    onnx_path = models_dir / FSA
    crops = fsanet_crops(models_dir)
    samples = tmp_path / "calibration.npz"
    np.savez(samples, **{"input_1:0": crops[:4]})  # calibrate on 4 real crops, 2 held out
    backend = make_backend11(precision="int8", calibration_data=str(samples))
    engine = Path(backend.compile(CompileRequest(onnx_path, tmp_path / "q.engine", shapes=RANGE)))
    _, model = _plan_onnx(engine)
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and {n.op_type for n in model.graph.node} >= {"DequantizeLinear", "Conv"}
    zero_points = {i.name: i for i in model.graph.initializer}
    for node in quantize:  # TensorRT takes symmetric int8 Q/DQ only: zero point 0
        zp = onnx.numpy_helper.to_array(zero_points[node.input[2]])
        assert zp.dtype == np.int8 and not zp.any()
    err = _errors(backend, engine, onnx_path, crops)
    # measured 2026-12-01: max 12.9, mean 1.50 degrees (Q/DQ on Conv/Gemm/MatMul inputs only)
    assert 0 < err.max() < 20 and err.mean() < 3
    with pytest.raises(BackendError, match="calibration samples from real inputs"):
        make_backend11().compile(CompileRequest(onnx_path, tmp_path / "n.engine", shapes=RANGE, precision="int8"))
    assert not list(tmp_path.glob(".n.engine*"))


def test_onnx_already_typed_is_built_as_it_is(
    models_dir: Path, make_backend11: Callable[..., Any], tmp_path: Path
) -> None:
    from facelib_tensorrt.precision import to_fp16

    typed = to_fp16(models_dir / FSA, tmp_path / "fsa16.onnx")
    backend = make_backend11()
    engine = Path(backend.compile(CompileRequest(typed, tmp_path / "t.engine", shapes=RANGE, precision="fp16")))
    assert _plan_onnx(engine)[1] == onnx.load(typed)


def test_facelib_check_reports_fp16_accuracy(
    models_dir: Path, make_backend11: Callable[..., Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``facelib check <package> --backend tensorrt --backend-option precision=fp16`` against fp32 ORT."""
    from facelib.cli import main
    from facelib.models import sha256_file

    root = tmp_path / "pkg"
    root.mkdir()
    shutil.copy(models_dir / FSA, root / "capsule.onnx")
    card = {
        "name": "fsanet-capsule",
        "task": "head_pose",
        "variant": "capsule",
        "licence": "Apache-2.0",
        "files": {
            "capsule": {
                "path": "capsule.onnx",
                "sha256": sha256_file(root / "capsule.onnx"),
                "inputs": [{"name": "input_1:0", "shape": [None, 64, 64, 3], "dtype": "float32"}],
                "outputs": [{"name": OUT, "shape": [None, 3], "dtype": "float32"}],
                "shapes": {"input_1:0": {"min": [1, 64, 64, 3], "opt": [4, 64, 64, 3], "max": [8, 64, 64, 3]}},
            }
        },
    }
    (root / "facelib.json").write_text(json.dumps(card))
    args = ["check", str(root), "--backend", "tensorrt", "--backend-option", "precision=fp16", "--json"]
    code = main([*args, "--tolerance", "10", "--batch", "4"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] and report["reference"] == "onnxruntime"
    (diff,) = report["differences"]
    assert diff["output"] == OUT and 0 < diff["max_abs"] < 10  # a real fp16 difference, reported
    assert main([*args, "--tolerance", "1e-9", "--batch", "4"]) == 1  # and held against the tolerance
