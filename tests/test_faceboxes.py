"""FaceBoxes: converter (real FaceBoxesProd.pth), export parity, numpy post-processing, detector."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import ConversionError, InputError, ModelCardError
from facelib.io.image import read_image
from facelib.processing import faceboxes as fbp
from facelib.processing.boxes import hard_nms, iou

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def weights(models_dir: Path) -> Path:
    return models_dir / "faceboxes" / "FaceBoxesProd.pth"


@pytest.fixture(scope="module")
def package(weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facelib.models.convert.faceboxes import build_package

    out = tmp_path_factory.mktemp("faceboxes")
    build_package({"weights": weights}, out)
    return out


@pytest.fixture(scope="module")
def detector(package: Path):  # type: ignore[no-untyped-def]
    from facelib.tasks.faceboxes import FaceBoxesDetector

    with FaceBoxesDetector(package, backend="onnxruntime") as det:
        yield det


# --- priors and decoding against a plain loop written from the upstream description -------


def _loop_priors(height: int, width: int) -> np.ndarray:
    out = []
    for stride, sizes in zip((32, 64, 128), ((32, 64, 128), (256,), (512,))):
        for i in range(math.ceil(height / stride)):
            for j in range(math.ceil(width / stride)):
                for m in sizes:
                    if m == 32:
                        offs = [0.0, 0.25, 0.5, 0.75]
                    elif m == 64:
                        offs = [0.0, 0.5]
                    else:
                        offs = [0.5]
                    for oy in offs:
                        for ox in offs:
                            out.append([(j + ox) * stride / width, (i + oy) * stride / height, m / width, m / height])
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize("size", [(32, 32), (240, 320), (333, 517), (720, 576)])
def test_priors_equal_plain_loop(size: tuple[int, int]) -> None:
    got = fbp.priors(*size)
    want = _loop_priors(*size)
    assert got.shape == want.shape == (fbp.PriorConfig().count(*size), 4)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_postprocess_equals_independent_computation() -> None:
    rng = np.random.default_rng(3)
    h, w = 240, 320
    pri = _loop_priors(h, w).astype(np.float64)
    loc = rng.normal(0, 1, size=(len(pri), 4)).astype(np.float32)
    conf = rng.normal(0, 2, size=(len(pri), 2)).astype(np.float32)
    boxes, scores = fbp.postprocess(loc, conf, (h, w), score_threshold=0.9, iou_threshold=0.3, scale=(0.5, 0.5))

    # independent: explicit softmax, per-box decode, greedy NMS with the +1 pixel areas
    prob = np.exp(conf[:, 1]) / (np.exp(conf[:, 0]) + np.exp(conf[:, 1]))
    cand = [k for k in range(len(pri)) if prob[k] > 0.9]
    dec = {}
    for k in cand:
        cx = pri[k, 0] + loc[k, 0] * 0.1 * pri[k, 2]
        cy = pri[k, 1] + loc[k, 1] * 0.1 * pri[k, 3]
        bw = pri[k, 2] * math.exp(loc[k, 2] * 0.2)
        bh = pri[k, 3] * math.exp(loc[k, 3] * 0.2)
        dec[k] = np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]) / 0.5
    order = sorted(cand, key=lambda k: -prob[k])
    kept: list[int] = []
    for k in order:
        ok = True
        for q in kept:
            a, b = dec[k], dec[q]
            iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
            ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
            inter = iw * ih
            union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
            if inter / union > 0.3:
                ok = False
                break
        if ok:
            kept.append(k)
    assert len(kept) > 3
    np.testing.assert_allclose(scores, prob[kept], atol=1e-6)
    np.testing.assert_allclose(boxes, np.stack([dec[k] for k in kept]), rtol=1e-5, atol=1e-3)


def test_postprocess_rejects_mismatched_priors() -> None:
    with pytest.raises(InputError, match="priors"):
        fbp.postprocess(np.zeros((10, 4)), np.zeros((10, 2)), (240, 320))


# --- converter and export parity --------------------------------------------------------


def test_package_card(package: Path) -> None:
    card = json.loads((package / "facelib.json").read_text())
    assert card["task"] == "face_detection" and card["variant"] == "faceboxes" and card["licence"] == "MIT"
    assert card["preprocessing"]["colour_order"] == "BGR"
    assert card["preprocessing"]["mean"] == [104.0, 117.0, 123.0]
    assert card["outputs"]["priors"]["strides"] == [32, 64, 128]
    assert card["outputs"]["priors"]["variances"] == [0.1, 0.2]
    assert card["files"]["detector"]["outputs"][0]["shape"] == ["N", "P", 4]
    assert len(card["source"]["weights"]["sha256"]) == 64
    assert card["metadata"]["export_max_abs_error"] < 1e-4


def test_onnx_equals_torch_on_real_image(package: Path, weights: Path, media_dir: Path) -> None:
    import onnxruntime as ort

    from facelib.models.convert.faceboxes import build_module, load_state_dict

    net = build_module(load_state_dict(weights))
    image = read_image(media_dir / "images" / "two_people.jpg")
    x = fbp.preprocess(image)
    with torch.no_grad():
        loc_t, conf_t = (t.numpy() for t in net(torch.from_numpy(x)))
    sess = ort.InferenceSession(str(package / "faceboxes.onnx"), providers=["CPUExecutionProvider"])
    loc_o, conf_o = sess.run(["loc", "conf"], {"input": x})
    assert loc_o.shape == (1, fbp.PriorConfig().count(*image.shape[:2]), 4)
    assert np.abs(loc_o - loc_t).max() < 1e-4
    assert np.abs(conf_o - conf_t).max() < 1e-4


def test_checkpoint_errors(tmp_path: Path, weights: Path) -> None:
    from facelib.models.convert.faceboxes import build_package, load_state_dict

    with pytest.raises(ConversionError, match="not found"):
        load_state_dict(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConversionError, match="weights_only"):
        load_state_dict(bad)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ConversionError, match="layout"):
        build_package({"weights": wrong}, tmp_path / "out")
    with pytest.raises(ConversionError, match="sources"):
        build_package({"checkpoint": weights}, tmp_path / "out")


# --- detector ----------------------------------------------------------------------------


def _ultraface_boxes(models_dir: Path, image: np.ndarray) -> np.ndarray:
    import cv2
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(
        str(models_dir / "ultraface" / "version-RFB-320.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    h, w = image.shape[:2]
    x = ((cv2.resize(image, (320, 240)).astype(np.float32) - 127) / 128).transpose(2, 0, 1)[None]
    scores, boxes = sess.run(None, {"input": x})
    keep = scores[0, :, 1] > 0.7
    b = boxes[0][keep] * np.array([w, h, w, h])
    return b[hard_nms(b, scores[0, keep, 1], 0.3)]


@pytest.mark.parametrize(("name", "count"), [("obama.jpg", 1), ("two_people.jpg", 2)])
def test_detects_the_faces_ultraface_finds(detector, models_dir: Path, media_dir: Path, name: str, count: int) -> None:  # type: ignore[no-untyped-def]
    image = read_image(media_dir / "images" / name)
    faces = detector.detect(image)
    assert len(faces) == count
    assert all(f.score > 0.9 for f in faces)
    reference = _ultraface_boxes(models_dir, image)
    overlaps = iou(np.stack([f.box for f in faces]), reference)
    assert overlaps.max(axis=1).min() > 0.85  # measured 0.90 (obama), 0.96 / 0.94 (two_people)


def test_downscale_cap_and_scale(detector, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    import cv2

    image = read_image(media_dir / "images" / "obama.jpg")
    big = cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2))
    assert detector.input_scale(*big.shape[:2]) < 0.5  # 2274 px high -> capped to 720
    small_box = detector.detect(image)[0].box
    big_box = detector.detect(big)[0].box
    assert iou(big_box[None] / 2, small_box[None])[0, 0] > 0.8


def test_no_face_and_bad_input(detector) -> None:  # type: ignore[no-untyped-def]
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert isinstance(detector.detect(np.zeros((100, 120), np.float32)), list)  # grayscale float
    assert isinstance(detector.detect(np.zeros((100, 120, 4), np.uint8)), list)  # RGBA
    with pytest.raises(InputError, match="too small"):
        detector.detect(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(InputError):
        detector.detect(np.zeros((10, 10, 5), np.uint8))


def test_card_errors(package: Path, tmp_path: Path) -> None:
    from facelib.tasks.faceboxes import FaceBoxesDetector

    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    card = json.loads((copy / "facelib.json").read_text())
    card["variant"] = "ultraface"
    (copy / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="not a FaceBoxes"):
        FaceBoxesDetector(copy)
    card["variant"] = "faceboxes"
    del card["outputs"]["priors"]
    (copy / "facelib.json").write_text(json.dumps(card))
    with pytest.raises(ModelCardError, match="priors"):
        FaceBoxesDetector(copy)
    with pytest.raises(InputError):
        FaceBoxesDetector(package, score_threshold=1.5)


def test_cli_convert_faceboxes(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from facelib.cli import main

    assert main(["convert", "faceboxes", "--weights", str(weights), "--output", str(tmp_path / "fb")]) == 0
    assert "max abs difference" in capsys.readouterr().out
    assert (tmp_path / "fb" / "faceboxes.onnx").is_file()
    assert main(["convert", "faceboxes", "--weights", str(tmp_path / "nope.pth"), "-o", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err
