"""The SAIL and TPU-MLIR doubles enforce what the real ones do (so the plugin is held to it)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from facelib.backends import CompileRequest


@pytest.fixture
def bmodel(sophon: type, models_dir: Path, tmp_path: Path) -> Iterator[Path]:
    yield sophon().compile(CompileRequest(models_dir / "mediapipe/face_blendshapes.onnx", tmp_path / "b.bmodel"))


def test_engine_is_positional_only_and_takes_str(bmodel: Path) -> None:
    import sophon.sail as sail

    with pytest.raises(TypeError):
        sail.Engine(bmodel_path=str(bmodel), tpu_id=0, mode=sail.IOMode.SYSIO)
    with pytest.raises(TypeError):
        sail.Engine(bmodel, 0, sail.IOMode.SYSIO)  # pathlib.Path is not a std::string
    with pytest.raises(sail.SailEngineError, match="invalid bmodel"):
        sail.Engine(str(bmodel) + ".missing", 0, sail.IOMode.SYSIO)
    assert sail.Engine(0).load(str(bmodel) + ".missing") is False


def test_numpy_process_needs_system_memory_inputs_and_stage_shapes(bmodel: Path) -> None:
    import sophon.sail as sail

    engine = sail.Engine(0)
    assert engine.load(str(bmodel))
    graph = engine.get_graph_names()[0]
    name = engine.get_input_names(graph)[0]
    x = np.zeros((1, 146, 2), np.float32)
    with pytest.raises(sail.SailEngineError, match="bad input"):
        engine.process(graph, {name: x})  # DEVIO after Engine(id) + load
    engine.set_io_mode(graph, sail.IOMode.SYSIO)
    out = engine.process(graph, {name: x.astype(np.float64)})  # converted to float32 like pybind
    assert all(v.dtype == np.float32 for v in out.values())
    with pytest.raises(sail.SailEngineError, match="bad input"):
        engine.process(graph, {name: np.zeros((2, 146, 2), np.float32)})  # no such stage
    with pytest.raises(sail.SailEngineError, match="bad input"):
        engine.process(graph, {"other": x})
    with pytest.raises(sail.SailEngineError, match="invalid argument"):
        engine.process("nope", {name: x})
    assert engine.get_input_shape(graph, name) == [1, 146, 2]


def test_tool_doubles_refuse_what_tpu_mlir_refuses(sophon: type, models_dir: Path, tmp_path: Path) -> None:
    onnx = models_dir / "mediapipe/face_blendshapes.onnx"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=tmp_path, capture_output=True, text=True, check=False)

    bad_shape = run(
        "model_transform",
        "--model_name",
        "m",
        "--model_def",
        str(onnx),
        "--input_shapes",
        "[[1,140,2]]",
        "--mlir",
        "m.mlir",
    )
    assert bad_shape.returncode == 1 and "cannot be set" in bad_shape.stderr
    assert run("model_transform", "--model_name", "m", "--model_def", str(onnx), "--mlir", "m.mlir").returncode == 0
    no_table = run("model_deploy", "--mlir", "m.mlir", "--quantize", "INT8", "--chip", "bm1684x", "--model", "m.bmodel")
    assert no_table.returncode == 1 and "calibration_table" in no_table.stderr
    bad_chip = run("model_deploy", "--mlir", "m.mlir", "--chip", "bm9999", "--model", "m.bmodel")
    assert bad_chip.returncode == 1 and "invalid choice" in bad_chip.stderr
    missing = run("model_deploy", "--mlir", "m.mlir", "--model", "m.bmodel")
    assert missing.returncode == 2  # argparse: --chip is required
