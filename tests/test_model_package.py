"""Model cards and packages: loading, validation and clear errors for wrong files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facelib.backends.onnxruntime import OnnxRuntimeBackend
from facelib.errors import ModelCardError, ModelFileError
from facelib.models import ModelCard, ModelPackage, sha256_file

ULTRA = "ultraface/version-RFB-320.onnx"


def _card(sha: str | None = None, **overrides: Any) -> dict[str, Any]:
    card: dict[str, Any] = {
        "format_version": 1,
        "name": "ultraface-rfb-320",
        "task": "face_detection",
        "variant": "RFB-320",
        "licence": "MIT",
        "source": {"url": "https://example.invalid/version-RFB-320.onnx", "sha256": sha},
        "files": {
            "detector": {
                "path": "detector.onnx",
                "sha256": sha,
                "inputs": [{"name": "input", "shape": [1, 3, 240, 320], "dtype": "float32"}],
                "outputs": [
                    {"name": "scores", "shape": [1, 4420, 2], "dtype": "float32"},
                    {"name": "boxes", "shape": [1, 4420, 4], "dtype": "float32"},
                ],
            }
        },
        "preprocessing": {"colour_order": "RGB", "mean": 127.0, "std": 128.0, "size": [320, 240]},
    }
    card.update(overrides)
    return card


@pytest.fixture
def package_dir(models_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    root.mkdir()
    shutil.copy(models_dir / ULTRA, root / "detector.onnx")
    (root / "facelib.json").write_text(json.dumps(_card(sha256_file(root / "detector.onnx"))))
    return root


def test_valid_package_loads_validates_and_runs(package_dir: Path) -> None:
    package = ModelPackage.load(package_dir)
    assert package.validate() == []
    session = package.session("detector", OnnxRuntimeBackend())
    out = session.run({"input": np.zeros((1, 3, 240, 320), np.float32)})
    assert out["boxes"].shape == (1, 4420, 4)


def test_card_round_trips(package_dir: Path, tmp_path: Path) -> None:
    card = ModelCard.read(package_dir / "facelib.json")
    card.write(tmp_path / "copy")
    assert ModelCard.read(tmp_path / "copy" / "facelib.json") == card


def test_missing_card(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="no model card"):
        ModelPackage.load(tmp_path)


def test_missing_package(tmp_path: Path) -> None:
    with pytest.raises(ModelCardError, match="not found"):
        ModelPackage.load(tmp_path / "nope")


def test_card_not_json(package_dir: Path) -> None:
    (package_dir / "facelib.json").write_text("{not json")
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelPackage.load(package_dir)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "juggling"}, "unknown task"),
        ({"files": {}}, "non-empty"),
        ({"format_version": 99}, "format_version 99"),
        ({"colour": "RGB"}, "unknown fields"),
        ({"files": {"detector": {"inputs": []}}}, "needs at least a 'path'"),
    ],
)
def test_bad_card_fields(package_dir: Path, change: dict[str, Any], message: str) -> None:
    (package_dir / "facelib.json").write_text(json.dumps(_card(**change)))
    with pytest.raises(ModelCardError, match=message):
        ModelPackage.load(package_dir)


def test_missing_card_field(package_dir: Path) -> None:
    card = _card()
    del card["task"]
    (package_dir / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="missing required fields"):
        ModelPackage.load(package_dir)


def test_missing_file(package_dir: Path) -> None:
    (package_dir / "detector.onnx").unlink()
    with pytest.raises(ModelFileError, match=r"detector\.onnx.*missing"):
        ModelPackage.load(package_dir)


def test_truncated_file_fails_hash_and_parse(package_dir: Path) -> None:
    data = (package_dir / "detector.onnx").read_bytes()
    (package_dir / "detector.onnx").write_bytes(data[:1000])
    problems = ModelPackage.load(package_dir).validate()
    assert any("sha256 differs" in p for p in problems)
    assert any("not a readable ONNX model" in p for p in problems)
    with pytest.raises(ModelFileError, match="truncated"):
        ModelPackage.load(package_dir).session("detector", OnnxRuntimeBackend())


def test_wrong_model_for_card(package_dir: Path, models_dir: Path) -> None:
    shutil.copy(models_dir / "fsanet" / "fsanet_capsule_3_16_2_21_5.onnx", package_dir / "detector.onnx")
    package = ModelPackage.load(package_dir)
    problems = package.validate(check_hashes=False)
    assert any("input 'input' is missing" in p for p in problems)
    with pytest.raises(ModelFileError, match="does not match the model card"):
        package.session("detector", OnnxRuntimeBackend())


def test_wrong_shape_on_card(package_dir: Path) -> None:
    card = _card()
    card["files"]["detector"]["inputs"][0]["shape"] = [1, 3, 480, 640]
    (package_dir / "facelib.json").write_text(json.dumps(card))
    problems = ModelPackage.load(package_dir).validate()
    assert any("dim 2 is 240, card says 480" in p for p in problems)


def test_path_outside_package_refused(package_dir: Path) -> None:
    card = _card()
    card["files"]["detector"]["path"] = "../../etc/passwd"
    (package_dir / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="outside the package"):
        ModelPackage.load(package_dir)


def test_unknown_role(package_dir: Path) -> None:
    with pytest.raises(ModelCardError, match="has no file with role 'landmarks'"):
        ModelPackage.load(package_dir).path("landmarks")
