"""TFLite sources in model packages (facelib.models.tflite): the flatbuffer reader, the name
matching the MediaPipe converter records, and the bundled package's record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facelib.backends.base import TensorSpec
from facelib.errors import ConversionError, ModelCardError
from facelib.models import ModelPackage
from facelib.models.bundled import bundled_dir
from facelib.models.package import read_onnx_specs, sha256_file
from facelib.models.tflite import match_by_name, read_interface, sources


@pytest.fixture(scope="module")
def mediapipe() -> Path:
    root = bundled_dir("mediapipe-face-landmarker")
    if root is None:
        pytest.skip("facelib-models is not installed")
    return root


def test_the_bundled_package_records_each_source(mediapipe: Path) -> None:
    package = ModelPackage.load(mediapipe)
    recorded = sources(package.card.metadata)
    assert set(recorded) == {"detector", "landmarks", "blendshapes"}
    for role, source in recorded.items():
        onnx = package.path(role)
        assert source.onnx_sha256 == sha256_file(onnx) == package.card.file(role).sha256
        assert source.sha256 == sha256_file(mediapipe / source.path)
        inputs, outputs = read_onnx_specs(onnx)
        assert list(source.inputs) == [s.name for s in inputs] and list(source.outputs) == [s.name for s in outputs]
        tfl_inputs, tfl_outputs = read_interface((mediapipe / source.path).read_bytes())
        assert set(source.inputs.values()) == {s.name for s in tfl_inputs}
        assert set(source.outputs.values()) == {s.name for s in tfl_outputs}
    assert package.validate() == []


def test_read_interface(mediapipe: Path) -> None:
    inputs, outputs = read_interface((mediapipe / "face_landmarks_detector.tflite").read_bytes())
    assert inputs == (TensorSpec("input_12", (None, 256, 256, 3), "float32"),)
    assert [(s.name, s.shape) for s in outputs] == [
        ("Identity", (None, 1, 1, 1434)),
        ("Identity_1", (None, 1, 1, 1)),
        ("Identity_2", (None, 1)),
    ]
    with pytest.raises(ConversionError, match="not a TFLite model"):
        read_interface(b"\x08\x01" * 20, "x.tflite")
    with pytest.raises(ConversionError, match="cannot read"):
        read_interface(b"\x00\x00\x00\x7fTFL3" + b"\x00" * 8, "x.tflite")


def test_match_by_name_refuses_what_does_not_line_up() -> None:
    onnx = [TensorSpec("x", ("N", 4), "float32")]
    assert match_by_name(onnx, [TensorSpec("x", (None, 4), "float32")], "input", "m") == {"x": "x"}
    for tflite, why in (
        ([TensorSpec("y", (1, 4), "float32")], "no TFLite input of that name"),
        ([TensorSpec("x", (1, 5), "float32")], "ONNX"),
        ([TensorSpec("x", (1, 4), "float16")], "float16"),
        ([TensorSpec("x", (1, 4), "float32"), TensorSpec("z", (1,), "float32")], "2 TFLite inputs"),
    ):
        with pytest.raises(ConversionError, match=why):
            match_by_name(onnx, tflite, "input", "m")


def test_validate_reports_a_damaged_or_missing_source(mediapipe: Path, tmp_path: Path) -> None:
    copy = tmp_path / "pkg"
    shutil.copytree(mediapipe, copy, ignore=shutil.ignore_patterns(".facelib-cache"))
    (copy / "face_blendshapes.tflite").write_bytes(b"damaged")
    (copy / "face_detector.tflite").unlink()
    problems = ModelPackage.load(copy).validate()
    assert any("blendshapes" in p and "sha256" in p for p in problems)
    assert any("detector" in p and "missing" in p for p in problems)
    card = json.loads((copy / "facelib.json").read_text())
    card["metadata"]["tflite"]["landmarks"] = {"path": "x.tflite"}
    (copy / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="malformed"):
        sources(ModelPackage.load(copy).card.metadata)
