"""Unit tests of the stage fitting and command lines (no SDK needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from facelib_sophon import compiler

from facelib.backends.base import ShapeRange, TensorSpec
from facelib.backends.batching import Stage, fit, pad_batch, unpad_batch
from facelib.errors import BackendError, InferenceError, InputError

STAGES = [
    Stage("m_b1", {"x": (1, 64, 64, 3)}, {"y": (1, 3)}),
    Stage("m_b4", {"x": (4, 64, 64, 3)}, {"y": (4, 3)}),
    Stage("m_b16", {"x": (16, 64, 64, 3)}, {"y": (16, 3)}),
]


def test_exact_stage_is_preferred() -> None:
    assert fit(STAGES, {"x": (4, 64, 64, 3)}, "m").stage.key == "m_b4"
    assert fit(STAGES, {"x": (4, 64, 64, 3)}, "m").batch is None


@pytest.mark.parametrize(("n", "key"), [(2, "m_b4"), (3, "m_b4"), (5, "m_b16"), (15, "m_b16")])
def test_batch_padded_to_nearest_stage(n: int, key: str) -> None:
    fitted = fit(STAGES, {"x": (n, 64, 64, 3)}, "m")
    assert fitted.stage.key == key and fitted.actual_batch == n


def test_shape_fitting_no_stage_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="fit none of the compiled shapes"):
        fit(STAGES, {"x": (17, 64, 64, 3)}, "m")
    with pytest.raises(InputError, match="m_b16"):
        fit(STAGES, {"x": (1, 32, 32, 3)}, "m")


def test_dynamic_stage_bounds() -> None:
    dyn = [Stage("d", {"x": (8, 3, 240, 320)}, {"y": (8, 4420, 2)}, dynamic=True)]
    assert fit(dyn, {"x": (3, 3, 120, 160)}, "d").batch is None
    with pytest.raises(InputError):
        fit(dyn, {"x": (9, 3, 240, 320)}, "d")


def test_pad_and_unpad_round_trip() -> None:
    x = np.arange(3 * 2, dtype=np.float32).reshape(3, 2)
    padded = pad_batch(x, 4)
    assert padded.shape == (4, 2) and np.array_equal(padded[3], x[2])
    fitted = fit(STAGES, {"x": (3, 64, 64, 3)}, "m")
    out = unpad_batch({"y": np.zeros((4, 3))}, fitted, "m")
    assert out["y"].shape == (3, 3)
    with pytest.raises(InferenceError, match="padding cannot be undone"):
        unpad_batch({"y": np.zeros((52,))}, fitted, "m")


def test_plan_uses_min_opt_max_and_needs_ranges() -> None:
    spec = TensorSpec("x", ("N", 64, 64, 3))
    plan = compiler.plan([spec], {"x": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))}, "fsa")
    assert [s["x"][0] for s in plan.stages] == [1, 4, 16]
    assert [plan.stage_name(i) for i in range(3)] == ["fsa_b1", "fsa_b4", "fsa_b16"]
    dyn = compiler.plan([spec], {"x": ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (16, 64, 64, 3))}, "fsa", dynamic=True)
    assert dyn.stages == ({"x": (16, 64, 64, 3)},) and dyn.stage_name(0) == "fsa"
    with pytest.raises(BackendError, match="no shape range"):
        compiler.plan([spec], {}, "fsa")
    with pytest.raises(InputError):
        compiler.plan([spec], {}, "fsa", stages=[{"x": (2, 32, 64, 3)}])


def test_command_lines_match_tpu_mlir_flags(tmp_path: Path) -> None:
    cmd = compiler.deploy_command(
        "model_deploy",
        tmp_path / "m.mlir",
        "INT8",
        "bm1684x",
        tmp_path / "in.npz",
        tmp_path / "top.npz",
        tmp_path / "m.bmodel",
        calibration_table=tmp_path / "t",
        dynamic=True,
    )
    assert cmd[:7] == ["model_deploy", "--mlir", str(tmp_path / "m.mlir"), "--quantize", "INT8", "--chip", "bm1684x"]
    assert "--calibration_table" in cmd and "--dynamic" in cmd and cmd[-2:] == ["--model", str(tmp_path / "m.bmodel")]
    shapes = compiler.shapes_arg(
        compiler.CompilePlan("m", ("a", "b"), ({"a": (1, 3), "b": (1,)},), False), {"a": (1, 3), "b": (1,)}
    )
    assert shapes == "[[1,3],[1]]"
    assert compiler.sanitize("fsanet-capsule.v1") == "fsanet_capsule_v1"
