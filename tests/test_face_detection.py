"""UltraFace FaceDetector on real images and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from headpose_support import build_ultraface

from facelib.errors import InputError, MediaReadError
from facelib.io.image import read_image
from facelib.tasks.detection import FaceBox, FaceDetectorLike
from facelib.tasks.face_detection import FaceDetector


@pytest.fixture(scope="module")
def detector(models_dir, tmp_path_factory):
    package = build_ultraface(models_dir, tmp_path_factory.mktemp("ultraface"))
    with FaceDetector(package) as det:
        yield det


def test_card(detector):
    card = detector.card
    assert card.task == "face_detection" and card.licence == "MIT"
    assert card.preprocessing["size"] == [320, 240]
    assert card.outputs["decoded"] is True
    assert "0f9ca4a9" in card.source["commit"]
    assert isinstance(detector, FaceDetectorLike)


def test_obama_one_face(detector, media_dir):
    faces = detector.detect(media_dir / "images" / "obama.jpg")
    assert len(faces) == 1 and isinstance(faces[0], FaceBox)
    # the reference re-implementation's box (mediapipe-facts.md section 6)
    np.testing.assert_allclose(faces[0].box, [382.7, 90.2, 603.1, 404.7], atol=0.1)
    assert faces[0].score > 0.99


def test_two_people_both_faces(detector, media_dir):
    faces = detector.detect(read_image(media_dir / "images" / "two_people.jpg"))
    assert len(faces) == 2
    boxes = sorted(f.box.tolist() for f in faces)
    np.testing.assert_allclose(boxes[0], [240.0, 25.9, 385.4, 224.7], atol=0.1)
    np.testing.assert_allclose(boxes[1], [791.5, 47.4, 934.6, 258.6], atol=0.1)
    assert faces[0].score >= faces[1].score


def test_blank_image_no_face(detector):
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((100, 100, 3), 255, np.uint8)) == []


def test_grayscale_rgba_16bit(detector, media_dir):
    rgb = read_image(media_dir / "images" / "obama.jpg")
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    deep = rgb.astype(np.uint16) * 257
    ref = detector.detect(rgb)[0].box
    for image in (gray, rgba, deep):
        faces = detector.detect(image)
        assert len(faces) == 1
        np.testing.assert_allclose(faces[0].box, ref, atol=8.0)


def test_empty_and_corrupt_files(detector, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg" * 10)
    for path in (empty, corrupt, tmp_path / "missing.jpg"):
        with pytest.raises(MediaReadError):
            detector.detect(path)
    with pytest.raises(InputError):
        detector.detect(np.zeros((10, 10, 5), np.uint8))


def test_thresholds_from_arguments(models_dir, tmp_path, media_dir):
    package = build_ultraface(models_dir, tmp_path / "uf")
    strict = FaceDetector(package, score_threshold=0.99999999)
    assert strict.detect(media_dir / "images" / "two_people.jpg") == [] or all(
        f.score > 0.99999999 for f in strict.detect(media_dir / "images" / "two_people.jpg")
    )
    loose = FaceDetector(package, score_threshold=0.05, iou_threshold=0.9)
    assert len(loose.detect(media_dir / "images" / "obama.jpg")) > 1


def test_rfb_640(models_dir, tmp_path, media_dir):
    with FaceDetector(build_ultraface(models_dir, tmp_path / "uf640", "RFB-640")) as det:
        assert det.input_size == (640, 480)
        assert len(det.detect(media_dir / "images" / "two_people.jpg")) == 2


def test_raw_output_model_decoded_in_numpy(models_dir, tmp_path, media_dir, detector):
    """A raw-output export (logits + SSD regressions) gives the same faces through numpy decoding."""
    import onnx
    from onnx import helper

    from facelib.models.card import ModelCard
    from facelib.models.package import sha256_file

    model = onnx.load(str(models_dir / "ultraface" / "version-RFB-320.onnx"))
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    logits = softmax.input[0]
    exp_input = next(n for n in model.graph.node if n.op_type == "Exp").input[0]
    producers = {o: n for n in model.graph.node for o in n.output}
    locations = producers[producers[exp_input].input[0]].input[0]  # Slice <- Concat (1, 4420, 4)
    model.graph.node.extend(
        [
            helper.make_node("Identity", [logits], ["scores"], name="raw_scores"),
            helper.make_node("Identity", [locations], ["boxes"], name="raw_boxes"),
        ]
    )
    for out in model.graph.output:
        out.name = out.name + "_decoded"
    for node in model.graph.node:
        node.output[:] = [
            o + "_decoded" if o in ("scores", "boxes") and node.op_type != "Identity" else o for o in node.output
        ]
    del model.graph.output[:]
    model.graph.output.extend(
        [
            helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, [1, 4420, 2]),
            helper.make_tensor_value_info("boxes", onnx.TensorProto.FLOAT, [1, 4420, 4]),
        ]
    )
    pkg = tmp_path / "raw"
    pkg.mkdir()
    onnx.save(model, str(pkg / "raw.onnx"))
    card = detector.card.to_dict()
    card["files"]["detector"]["path"] = "raw.onnx"
    card["files"]["detector"]["sha256"] = sha256_file(pkg / "raw.onnx")
    card["outputs"]["decoded"] = False
    ModelCard.from_dict(card).write(pkg)
    with FaceDetector(pkg) as raw:
        for name in ("obama.jpg", "two_people.jpg"):
            a = detector.detect(media_dir / "images" / name)
            b = raw.detect(media_dir / "images" / name)
            assert len(a) == len(b)
            for fa, fb in zip(a, b):
                np.testing.assert_allclose(fa.box, fb.box, atol=1e-2)
                assert fa.score == pytest.approx(fb.score, abs=1e-5)
