"""``facelib bench`` and ``facelib check`` on real models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facelib.backends.base import TensorSpec
from facelib.cli import main
from facelib.tools.check import compare_arrays
from facelib.tools.inputs import random_feeds, resolve_shape


def test_resolve_shape_uses_batch_and_card_ranges() -> None:
    from facelib.backends.base import ShapeRange

    spec = TensorSpec("x", ("N", "T", 64), "float32")
    assert resolve_shape(spec, 4) == (4, 1, 64)
    assert resolve_shape(spec, 2, ShapeRange((1, 1, 64), (1, 50, 64), (8, 500, 64))) == (2, 50, 64)
    feeds = random_feeds([spec, TensorSpec("m", (3,), "bool")], batch=2)
    assert feeds["x"].shape == (2, 1, 64) and feeds["x"].dtype == np.float32 and feeds["m"].dtype == bool


def test_compare_arrays() -> None:
    d = compare_arrays("m", "y", np.array([1.0, 2.0]), np.array([1.0, 2.5]))
    assert d.max_abs == 0.5 and d.max_rel == pytest.approx(0.2) and d.mse == pytest.approx(0.125)
    assert compare_arrays("m", "y", np.zeros(2), np.zeros(3)).max_abs == float("inf")


def test_bench_cli_on_fsanet(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = models_dir / "fsanet" / "fsanet_var_capsule_3_16_2_21_5.onnx"
    assert main(["bench", str(path), "--batch", "4", "--loop", "5", "--warmup", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (timing,) = data["timings"]
    assert timing["batch"] == 4 and timing["loop"] == 5
    assert 0 < timing["p50_ms"] <= timing["p99_ms"] and timing["throughput"] > 0 and timing["peak_rss_mb"] > 0


def test_check_cli_against_itself_and_the_example_plugin(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = models_dir / "ultraface" / "version-RFB-320.onnx"
    assert main(["check", str(path), "--backend", "onnxruntime", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and {d["output"] for d in data["differences"]} == {"scores", "boxes"}
    assert all(d["max_abs"] == 0 for d in data["differences"])


def test_check_cli_fails_beyond_tolerance(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = models_dir / "fsanet" / "fsanet_capsule_3_16_2_21_5.onnx"
    code = main(["check", str(path), "--backend-option", "graph_optimization_level=disable", "--tolerance", "-1"])
    assert code == 1
    assert "NO" in capsys.readouterr().out


def test_bad_backend_option(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = models_dir / "fsanet" / "fsanet_capsule_3_16_2_21_5.onnx"
    assert main(["bench", str(path), "--backend-option", "novalue"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_check_cli_takes_a_hub_name(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``facelib check NAME`` resolves a hub name as every other command does (was: "model file not found")."""
    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACELIB_MIRROR", str(shared / "assets"))
    assert main(["check", "ultraface-rfb-320", "--backend", "onnxruntime", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and {d["output"] for d in data["differences"]} == {"scores", "boxes"}
