"""The MediaPipe converter: bundle reading, the card, the PRelu rewrite, tf2onnx conversion."""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import ConversionError
from facelib.models.convert import mediapipe as conv
from facelib.models.package import ModelPackage, sha256_file
from facelib.processing.arkit import ARKIT_NAMES, MEDIAPIPE_NAMES


def _sources(models_dir: Path) -> dict[str, Path]:
    mp = models_dir / "mediapipe"
    return {
        "task": mp / "face_landmarker.task",
        "detector": mp / "face_detector.onnx",
        "landmarks": mp / "face_landmarks_detector.onnx",
        "blendshapes": mp / "face_blendshapes.onnx",
    }


def test_build_package_card(mediapipe_package: Path, models_dir: Path) -> None:
    package = ModelPackage.load(mediapipe_package).check()
    card = package.card
    assert (card.task, card.variant, card.licence) == ("blendshapes", "mediapipe", "Apache-2.0")
    assert card.source["url"].startswith("https://storage.googleapis.com/mediapipe-models/face_landmarker/")
    assert card.source["sha256"] == sha256_file(models_dir / "mediapipe" / "face_landmarker.task")
    assert card.source["sha256"] == conv.SOURCE_SHA256
    assert tuple(card.outputs["blendshape_names"]) == MEDIAPIPE_NAMES
    assert tuple(card.outputs["arkit_names"]) == ARKIT_NAMES
    assert set(card.files) == {"detector", "landmarks", "blendshapes", "geometry"}
    assert card.metadata["tensors"]["detector"] == {
        "input": "input",
        "regressors": "regressors",
        "scores": "classificators",
    }
    assert len(card.metadata["blendshape_landmarks"]) == 146
    geometry = json.loads(package.path("geometry").read_text())
    assert len(geometry["vertices"]) == 468 and len(geometry["procrustes_landmarks"]) == 33
    import onnx

    for role in ("detector", "landmarks", "blendshapes"):
        model = onnx.load(str(package.path(role)), load_external_data=False)
        assert model.ir_version <= 10
        assert not any(n.op_type == "PRelu" for n in model.graph.node)


def test_prelu_rewrite_is_exact(mediapipe_package: Path, models_dir: Path) -> None:
    import onnxruntime as ort

    x = np.random.default_rng(1).random((2, 256, 256, 3), dtype=np.float32)
    original = ort.InferenceSession(str(models_dir / "mediapipe" / "face_landmarks_detector.onnx"))
    rewritten = ort.InferenceSession(str(mediapipe_package / "face_landmarks_detector.onnx"))
    a = original.run(None, {"input_12": x})
    b = rewritten.run(None, {"input_12": x})
    assert np.abs(a[0] - b[0]).max() < 2e-3  # crop pixels (of 256)
    assert np.abs(a[1] - b[1]).max() < 1e-3


def test_fused_relu_form_is_bit_identical(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relu((1 - s) x) where every 1 - s > 0 gives the very floats of (1 - s) Relu(x)."""
    import onnx
    import onnxruntime as ort

    source = models_dir / "mediapipe" / "face_landmarks_detector.onnx"
    fused = onnx.load(str(source))
    assert conv.prelu_to_depthwise(fused) == 69
    fused_relus = [n for n in fused.graph.node if n.op_type == "Relu" and n.input[0].endswith("__scaled")]
    assert len(fused_relus) == 26
    plain_part = conv._positive_part
    monkeypatch.setattr(conv, "_positive_part", lambda *args: plain_part(*args[:-1], False))
    plain = onnx.load(str(source))
    conv.prelu_to_depthwise(plain)
    assert not any(n.input[0].endswith("__scaled") for n in plain.graph.node)
    rng = np.random.default_rng(3)
    # a smooth face-like image in [0, 1] and noise: activations of both signs everywhere
    ramp = np.linspace(0, 1, 256, dtype=np.float32)
    smooth = np.stack([np.add.outer(ramp, ramp) / 2, np.multiply.outer(ramp, ramp), np.ones((256, 256))], -1)
    x = np.stack([smooth.astype(np.float32), rng.random((256, 256, 3), dtype=np.float32)])
    runs = [
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input_12": x})
        for m in (fused, plain)
    ]
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_bundle_must_be_the_landmarker_task(tmp_path: Path, models_dir: Path) -> None:
    not_zip = tmp_path / "x.task"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match=r"not a MediaPipe \.task bundle"):
        conv.build_package({"task": not_zip}, tmp_path / "out")
    evil = tmp_path / "evil.task"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../escape.tflite", b"x")
        z.writestr("face_detector.tflite", b"x")
    with pytest.raises(ConversionError, match="lacks"):
        conv.build_package({"task": evil}, tmp_path / "out")
    assert not (tmp_path.parent / "escape.tflite").exists()
    with pytest.raises(ConversionError, match="sources"):
        conv.build_package({"model": evil}, tmp_path / "out")
    wrong = _sources(models_dir)
    wrong["landmarks"] = wrong["detector"]
    with pytest.raises(ConversionError, match="landmarks"):
        conv.build_package(wrong, tmp_path / "out2")


@pytest.mark.slow
@pytest.mark.convert
def test_convert_from_task_with_tf2onnx(tmp_path: Path, models_dir: Path, reference_dir: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (the 'convert' extra); tf2onnx needs it to read .tflite")
    if importlib.util.find_spec("tf2onnx") is None:
        pytest.skip("tf2onnx is not installed (the 'convert' extra)")
    package = conv.build_package({"task": models_dir / "mediapipe" / "face_landmarker.task"}, tmp_path / "pkg")
    assert "tf2onnx" in package.card.source["made_from"]["landmarks"]
    from facelib.tasks.face_landmarker import FaceLandmarker

    ref = np.load(reference_dir / "mediapipe_face_landmarker_ref.npz")
    with FaceLandmarker(package, output_blendshapes=True) as lm:
        result = lm.detect(models_dir.parent / "media" / "images" / "obama.jpg")
    face = result.faces[0]
    w, h = result.image_size
    assert np.abs(face.landmarks[:, :2] / [w, h] - ref["obama_jpg_landmarks"][0, :, :2]).max() < 1e-3
    assert face.blendshapes is not None
    assert np.abs(face.blendshapes - ref["obama_jpg_blendshapes"][0]).mean() < 5e-3
