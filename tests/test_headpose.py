"""HeadPose end to end on the real FSA-Net weights: parity with upstream TF, batching, video, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from headpose_support import REF_KEYS, TOLERANCE_DEG, build_fsanet, build_ultraface, load_reference

from facelib.errors import InputError, MediaReadError
from facelib.io.image import read_image
from facelib.processing.fsanet import min_max_stretch
from facelib.tasks.detection import FaceBox
from facelib.tasks.face_detection import FaceDetector
from facelib.tasks.head_pose import HeadPose, HeadPoseFrame, HeadPoseResult
from facelib.tasks.head_pose_eval import evaluate_aflw


@pytest.fixture(scope="module")
def packages(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("headpose")
    return {
        "fsanet": build_fsanet(models_dir, root / "fsanet"),
        "fsanet_separate": build_fsanet(models_dir, root / "fsanet_separate", ensemble=False),
        "ultraface": build_ultraface(models_dir, root / "ultraface"),
    }


@pytest.fixture(scope="module")
def pose(packages):
    with HeadPose(packages["fsanet"], detector=packages["ultraface"]) as task:
        yield task


@pytest.fixture(scope="module")
def ref(reference_dir):
    return load_reference(reference_dir)


def _aflw(media_dir, ref):
    return [read_image(media_dir / "aflw2000" / str(n)) for n in ref["names"]]


def test_card(packages):
    from facelib.models.package import ModelPackage

    card = ModelPackage.load(packages["fsanet"]).card
    assert card.task == "head_pose" and card.licence == "Apache-2.0"
    assert set(card.files) == {"capsule", "var_capsule", "noS_capsule", "ensemble"}
    assert card.preprocessing["margin"] == 0.6 and card.preprocessing["colour_order"] == "BGR"
    assert card.preprocessing["min_max"] is True and card.outputs["order"] == ["yaw", "pitch", "roll"]
    assert card.source["commit"].startswith("4361d0e")
    files = card.source["files"]
    assert files["capsule"]["upstream_url"].endswith("pre-trained/converted-models/tf/fsanet_capsule_3_16_2_21_5.pb")
    assert card.files["capsule"].inputs[0].shape == ("N", 64, 64, 3)
    assert card.files["ensemble"].shapes["input_1:0"].max[0] == 64


@pytest.mark.parametrize("kind", ["raw", "minmax"])
def test_parity_on_reference_crops(packages, ref, kind):
    """The ONNX pipeline matches upstream TF within 0.01 deg, per variant and averaged."""
    crops = ref["crops_bgr_u8"].astype(np.float32)
    if kind == "minmax":
        crops = min_max_stretch(ref["crops_bgr_u8"]).astype(np.float32)
    for package in (packages["fsanet"], packages["fsanet_separate"]):
        with HeadPose(package) as task:
            mean, per_variant = task.predict_crops(crops)
        np.testing.assert_allclose(mean, ref[f"{kind}_ensemble"], atol=TOLERANCE_DEG, rtol=0)
        for variant, key in REF_KEYS.items():
            np.testing.assert_allclose(per_variant[variant], ref[f"{kind}_{key}"], atol=TOLERANCE_DEG, rtol=0)


@pytest.mark.parametrize("min_max", [False, True])
def test_parity_end_to_end_from_images(packages, media_dir, ref, min_max):
    """Crop from the AFLW images + landmark boxes, then the network: equals upstream's outputs."""
    kind = "minmax" if min_max else "raw"
    images = _aflw(media_dir, ref)
    with HeadPose(packages["fsanet"], min_max=min_max) as task:
        results = task.predict(images, boxes=[b[None] for b in ref["landmark_box_xyxy"]])
    got = np.array([r[0].angles for r in results])
    err = np.abs(got - ref[f"{kind}_ensemble"]).max()
    assert err < TOLERANCE_DEG, err
    for variant, key in REF_KEYS.items():
        per = np.array([r[0].variants[variant] for r in results])
        assert np.abs(per - ref[f"{kind}_{key}"]).max() < TOLERANCE_DEG


def test_single_variant(packages, ref):
    crops = min_max_stretch(ref["crops_bgr_u8"]).astype(np.float32)
    with HeadPose(packages["fsanet"], variants=["noS_capsule"]) as task:
        mean, per = task.predict_crops(crops)
    assert list(per) == ["noS_capsule"]
    np.testing.assert_allclose(mean, ref["minmax_noS_capsule_3_16_2_192_5"], atol=TOLERANCE_DEG)
    with pytest.raises(InputError, match="unknown FSA-Net variants"):
        HeadPose(packages["fsanet"], variants=["nope"])


def test_detector_faces(pose, media_dir):
    obama = pose.predict(media_dir / "images" / "obama.jpg")
    assert len(obama) == 1 and isinstance(obama[0], HeadPoseResult)
    assert abs(obama[0].yaw) < 15 and abs(obama[0].pitch) < 20 and abs(obama[0].roll) < 15
    two = pose.predict(media_dir / "images" / "two_people.jpg")
    assert len(two) == 2
    json.dumps([f.to_dict() for f in two])
    assert set(two[0].to_dict()) >= {"box", "score", "yaw", "pitch", "roll", "variants"}


def test_batch_is_one_backend_call(packages, media_dir, monkeypatch):
    images = [media_dir / "images" / "obama.jpg", media_dir / "images" / "two_people.jpg"]
    with HeadPose(packages["fsanet"], detector=packages["ultraface"]) as task:
        singles = [task.predict(p) for p in images]
        session = task._session("ensemble")
        calls = []
        original = session.run

        def counting(feeds, output_names=None):
            calls.append(next(iter(feeds.values())).shape[0])
            return original(feeds, output_names)

        monkeypatch.setattr(session, "run", counting)
        batch = task.predict(images)
    assert calls == [3]
    assert [len(b) for b in batch] == [1, 2]
    for single, many in zip(singles, batch):
        for a, b in zip(single, many):
            np.testing.assert_allclose(a.angles, b.angles, atol=1e-4)


def test_chunking_to_max_batch(packages, ref):
    crops = min_max_stretch(np.concatenate([ref["crops_bgr_u8"]] * 3)).astype(np.float32)
    with HeadPose(packages["fsanet"], max_batch=4) as task:
        chunked, _ = task.predict_crops(crops)
    with HeadPose(packages["fsanet"]) as task:
        whole, _ = task.predict_crops(crops)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    np.testing.assert_allclose(chunked[:6], ref["minmax_ensemble"], atol=TOLERANCE_DEG)


def test_user_boxes_and_custom_detector(packages, media_dir):
    image = read_image(media_dir / "images" / "obama.jpg")
    box = [382.7, 90.2, 603.1, 404.7]

    class Fixed:
        def detect(self, img):
            return [FaceBox(box, 0.5)]

    with HeadPose(packages["fsanet"], detector=Fixed()) as task:
        via_detector = task.predict(image)
        via_array = task.predict(image, boxes=np.array([box]))
        via_facebox = task.predict(image, boxes=[FaceBox(box, 0.7)])
        none = task.predict(image, boxes=np.zeros((0, 4)))
    assert via_detector[0].score == 0.5 and via_array[0].score == 1.0 and via_facebox[0].score == pytest.approx(0.7)
    np.testing.assert_allclose(via_detector[0].angles, via_array[0].angles, atol=1e-5)
    assert none == []


def test_accuracy_on_aflw2000_with_builtin_detector(pose, media_dir, ref):
    """MAE on the 6 shared AFLW2000 images (upstream: 5.07 on the full set, landmark crops)."""
    result = evaluate_aflw(media_dir / "aflw2000", pose, crop="detector")
    print(
        f"AFLW2000 (6 images) detector crops: yaw {result.mae_yaw:.2f} pitch {result.mae_pitch:.2f} "
        f"roll {result.mae_roll:.2f} mean {result.mae_mean:.2f}"
    )
    assert result.count == 6 and not result.missed
    assert result.mae_mean < 8.0
    landmarks = evaluate_aflw(media_dir / "aflw2000", pose, crop="landmarks")
    got = np.array([s.predicted for s in landmarks.samples])
    np.testing.assert_allclose(got, ref["minmax_ensemble"], atol=TOLERANCE_DEG)


def test_no_face_and_odd_images(pose, media_dir):
    assert pose.predict(np.zeros((240, 320, 3), np.uint8)) == []
    rgb = read_image(media_dir / "images" / "obama.jpg")
    ref = pose.predict(rgb)[0]
    gray = rgb.mean(axis=2).astype(np.uint8)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    deep = rgb.astype(np.uint16) * 257
    assert len(pose.predict(gray)) == 1
    for image in (rgba, deep):
        got = pose.predict(image)[0]
        np.testing.assert_allclose(got.angles, ref.angles, atol=1e-3)


def test_bad_inputs(pose, packages, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    for path in (empty, corrupt, tmp_path / "missing.jpg"):
        with pytest.raises(MediaReadError):
            pose.predict(path)
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(InputError, match="boxes"):
        pose.predict(image, boxes=np.zeros((2, 3)))
    with pytest.raises(InputError, match="outside"):
        pose.predict(image, boxes=np.array([[200, 200, 300, 300]]))
    with pytest.raises(InputError, match="one per image"):
        pose.predict([image, image], boxes=[np.array([[1, 1, 50, 50]])])
    with HeadPose(packages["fsanet"]) as no_detector:
        with pytest.raises(InputError, match="no face detector"):
            no_detector.predict(image)
        with pytest.raises(InputError, match="crops must have shape"):
            no_detector.predict_crops(np.zeros((1, 32, 32, 3)))
    with pytest.raises(InputError, match="detector must be"):
        HeadPose(packages["fsanet"], detector=42)


def test_wrong_package_task(packages):
    from facelib.errors import ModelCardError

    with pytest.raises(ModelCardError, match="not a 'head_pose' model"):
        HeadPose(packages["ultraface"])
    with pytest.raises(ModelCardError, match="not a 'face_detection' model"):
        FaceDetector(packages["fsanet"])


def test_video_keeps_last_box_when_detector_misses(pose, media_dir):
    face = read_image(media_dir / "images" / "obama.jpg")
    blank = np.zeros_like(face)
    frames = list(pose.predict_video([face, blank, blank, face]))
    assert [isinstance(f, HeadPoseFrame) for f in frames] == [True] * 4
    assert [len(f.faces) for f in frames] == [1, 1, 1, 1]
    assert [f.reused_boxes for f in frames] == [False, True, True, False]
    np.testing.assert_array_equal(frames[1].faces[0].box, frames[0].faces[0].box)
    limited = list(pose.predict_video([face, blank, blank], max_missed=1))
    assert [len(f.faces) for f in limited] == [1, 1, 0]
    assert "image" not in frames[0].to_dict()


def test_video_file_and_truncated_video(pose, media_dir, tmp_path):
    source = media_dir / "video" / "talking_face_01.mp4"
    data = source.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    frames = []
    for frame in pose.predict_video(truncated):
        frames.append(frame)
    assert 0 < len(frames) < 240  # decoding stops where the file ends, without an exception
    assert all(len(f.faces) == 1 for f in frames)
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(data[:64])
    with pytest.raises(MediaReadError):
        list(pose.predict_video(header_only))
    with pytest.raises(MediaReadError):
        list(pose.predict_video(tmp_path / "missing.mp4"))


def test_output_order_read_from_card(packages, ref, tmp_path):
    """Tasks take the output order from the card: a card saying (pitch, yaw, roll) swaps the columns."""
    import shutil

    from facelib.models.card import ModelCard

    copy = tmp_path / "reordered"
    shutil.copytree(packages["fsanet"], copy)
    card = ModelCard.read(copy / "facelib.json").to_dict()
    card["outputs"]["order"] = ["pitch", "yaw", "roll"]
    ModelCard.from_dict(card).write(copy)
    crops = min_max_stretch(ref["crops_bgr_u8"]).astype(np.float32)
    with HeadPose(copy) as task:
        mean, _ = task.predict_crops(crops)
    np.testing.assert_allclose(mean, ref["minmax_ensemble"][:, [1, 0, 2]], atol=TOLERANCE_DEG)


def test_default_runtime_threads(packages):
    with HeadPose(packages["fsanet"]) as task:
        assert task.backend.name == "onnxruntime"
        assert task.backend.options["intra_op_num_threads"] == 1
    with HeadPose(packages["fsanet"], backend="onnxruntime", backend_options={"intra_op_num_threads": 2}) as task:
        assert task.backend.options["intra_op_num_threads"] == 2


def test_array_batch_and_detector_ownership(packages, media_dir):
    image = read_image(media_dir / "images" / "obama.jpg")
    detector = FaceDetector(packages["ultraface"])
    with HeadPose(packages["fsanet"], detector=detector) as task:
        stacked = task.predict(np.stack([image, image]))  # (N, H, W, 3) is a batch of images
        assert [len(r) for r in stacked] == [1, 1]
        np.testing.assert_allclose(stacked[0][0].angles, stacked[1][0].angles)
    assert len(detector.detect(image)) == 1  # a detector the caller gave stays open
    detector.close()
