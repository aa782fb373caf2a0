"""Rules the SOPHON plugin must keep with what it compiles itself (issue 18)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelib.backends import CompileRequest, ShapeRange
from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import InputError


def _sequence_model(path: Path) -> Path:
    """A decoder-shaped graph (FaceFormer's decoder grows T per step): batch 1, T varies."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 8])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


def test_static_stages_with_one_batch_load_back(sophon: type, tmp_path: Path) -> None:
    """Stages sharing a batch are named <model>_s<i>; loading must treat them as one model."""
    onnx_path = _sequence_model(tmp_path / "seq.onnx")
    backend = sophon(dynamic=False)
    rng = ShapeRange((1, 1, 8), (1, 16, 8), (1, 64, 8))
    bmodel = backend.compile(CompileRequest(onnx_path, tmp_path / "seq.bmodel", shapes={"x": rng}))
    reference = OnnxRuntimeBackend().load(onnx_path)
    with backend.load(bmodel) as session:
        assert sorted(s.key for s in session.stages) == ["seq_s0", "seq_s1", "seq_s2"]
        for t in (1, 16, 64):
            x = np.random.default_rng(t).normal(size=(1, t, 8)).astype(np.float32)
            np.testing.assert_allclose(session.run({"x": x})["y"], reference.run({"x": x})["y"], rtol=1e-5, atol=1e-5)
        with pytest.raises(InputError):
            session.run({"x": np.zeros((1, 5, 8), np.float32)})  # no stage has T=5
