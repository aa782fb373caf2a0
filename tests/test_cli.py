"""``facelib backends`` and ``facelib info``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facelib.cli import main


def test_backends_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "builtin" in out
    assert "failed to load" in out  # the broken test plugin


def test_backends_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [b["name"] for b in data["backends"]]
    assert "onnxruntime" in names
    assert any(f["entry_point"] == "broken" for f in data["failed_plugins"])


def test_info_bare_onnx(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(models_dir / "ultraface" / "version-RFB-320.onnx"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"] == [{"name": "input", "shape": [1, 3, 240, 320], "dtype": "float32"}]


def test_info_missing_file_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "nope.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facelib: error:") and "Traceback" not in err


def test_info_corrupt_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    assert main(["info", str(bad)]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err


def test_info_unknown_native_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    native = tmp_path / "model.xyz"
    native.write_bytes(b"123")
    assert main(["info", str(native)]) == 2
    assert "no registered backend reads '.xyz'" in capsys.readouterr().err


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "facelib", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("facelib ")


def test_info_package_reads_line_by_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The card's nested fields come one per line, indented under their key (not one JSON line)."""
    package = Path(__file__).resolve().parents[1] / "models" / "facelib_models" / "fsanet"
    assert main(["info", str(package)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  source:" in lines
    assert '    repository: "https://github.com/shamangary/FSA-Net"' in lines
    assert "preprocessing:" in lines and '  colour_order: "BGR"' in lines
    assert "outputs:" in lines and '  order: ["yaw", "pitch", "roll"]' in lines
    assert "  variants:" in lines and '    capsule: "pred_pose/mul_24:0"' in lines
    assert lines[-1] == "valid"
