"""Pure-numpy parts of the MediaPipe pipeline: anchors, decoding, ROIs, smoothing, geometry."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import ModelFileError
from facelib.processing import blazeface, face_geometry, face_mesh


def test_anchor_layout() -> None:
    anchors = blazeface.ssd_anchors()
    assert anchors.shape == (896, 2)
    # stride 8: 16x16 grid, two anchors per cell, row-major
    np.testing.assert_allclose(anchors[0], anchors[1])
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[32], [0.5 / 16, 1.5 / 16])
    # stride 16 (three layers merged): 8x8 grid, six anchors per cell
    np.testing.assert_allclose(anchors[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def test_letterbox_maps_tensor_to_image() -> None:
    box = blazeface.Letterbox(200, 100)  # wide image: padded top and bottom
    corners = box.to_image(np.array([[0.0, 0.25], [1.0, 0.75]]))
    np.testing.assert_allclose(corners, [[0.0, 0.0], [200.0, 100.0]])
    m = box.inverse_matrix()
    np.testing.assert_allclose(m @ [128, 96, 1], [200.0, 100.0])  # tensor (128, 96) = image (W, H)


def test_decode_one_synthetic_detection() -> None:
    anchors = blazeface.ssd_anchors()
    reg = np.zeros((896, 16), np.float32)
    logits = np.full((896,), -10.0, np.float32)
    a = 100  # anchor (x=2, y=3) of the stride-8 grid
    reg[a, 2:4] = 32.0  # 32 tensor pixels wide and high
    reg[a, 4:6] = [-8.0, -4.0]  # keypoint 0 (image-left eye)
    reg[a, 6:8] = [8.0, -4.0]
    logits[a] = 3.0
    logits[a + 1] = 2.0  # same anchor centre: merged by weighted NMS
    reg[a + 1] = reg[a]
    dets = blazeface.decode(reg, logits, anchors, blazeface.Letterbox(128, 128))
    assert len(dets) == 1
    assert dets.scores[0] == pytest.approx(1 / (1 + math.exp(-3.0)))
    cx, cy = anchors[a] * 128
    np.testing.assert_allclose(dets.boxes[0], [cx - 16, cy - 16, cx + 16, cy + 16], atol=1e-4)
    np.testing.assert_allclose(dets.keypoints[0, 0], [cx - 8, cy - 4], atol=1e-9)
    empty = blazeface.decode(reg, np.full((896,), -1.0), anchors, blazeface.Letterbox(10, 10))
    assert len(empty) == 0 and empty.keypoints.shape == (0, 6, 2)


def test_roi_crop_and_projection_agree() -> None:
    roi = face_mesh.Roi(cx=120.0, cy=80.0, width=90.0, height=90.0, rotation=0.4)
    m = roi.inverse_matrix()
    np.testing.assert_allclose(m @ [128, 128, 1], [120.0, 80.0])
    # a crop pixel projected with `project` lands where the warp samples it
    raw = np.zeros((478, 3))
    raw[0] = [40.0, 200.0, 12.0]
    out = face_mesh.project(raw, roi, width=300, height=200)
    np.testing.assert_allclose(out[0, :2] * [300, 200], m @ [40.0, 200.0, 1.0], atol=1e-9)
    # z scales like x: length of the crop's x axis in image-normalised units
    assert out[0, 2] == pytest.approx(12.0 / 256 * math.hypot(math.cos(0.4) * 90 / 300, math.sin(0.4) * 90 / 200))


def test_crop_replicates_borders() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    image[:, :25] = 255
    roi = face_mesh.Roi(cx=0.0, cy=25.0, width=100.0, height=100.0)
    tensor = face_mesh.crop(image, roi, size=64)
    assert tensor.dtype == np.float32 and tensor.shape == (64, 64, 3)
    assert tensor[32, 0, 0] == pytest.approx(1.0)  # left of the image: replicated white, not black


def test_roi_from_landmarks_is_square_and_rotated() -> None:
    pts = np.zeros((478, 3))
    rng = np.random.default_rng(0)
    pts[:, 0] = rng.uniform(0.4, 0.6, 478)
    pts[:, 1] = rng.uniform(0.3, 0.5, 478)
    pts[33, :2] = [0.45, 0.40]
    pts[263, :2] = [0.55, 0.45]
    roi = face_mesh.roi_from_landmarks(pts, 200, 100)
    assert roi.width == pytest.approx(roi.height)
    assert roi.width == pytest.approx(1.5 * max(np.ptp(pts[:, 0]) * 200, np.ptp(pts[:, 1]) * 100))
    assert roi.rotation == pytest.approx(math.atan2(0.05 * 100, 0.10 * 200))


def test_merge_tracked_prefers_detections() -> None:
    tracked = [face_mesh.Roi(50, 50, 40, 40), face_mesh.Roi(200, 50, 40, 40)]
    detected = [face_mesh.Roi(52, 50, 40, 40)]
    merged = face_mesh.merge_tracked(tracked, detected, 0.5)
    assert merged == [tracked[1], detected[0]]


def test_one_euro_filter_rules() -> None:
    filt = face_mesh.OneEuroLandmarkFilter()
    pts = np.array([[10.0, 10.0, 0.0], [20.0, 30.0, 1.0]])
    np.testing.assert_array_equal(filt(pts, 0), pts)  # the first sample passes through (and is stored)
    np.testing.assert_allclose(filt(pts, 33_000), pts)  # constant input stays constant
    moved = filt(pts + 5.0, 66_000)
    assert np.all(moved > pts) and np.all(moved < pts + 5.0)  # smoothed towards the new value
    np.testing.assert_array_equal(filt(pts, 66_000), pts)  # repeated timestamp: unfiltered, not stored
    filt.reset()
    np.testing.assert_array_equal(filt(pts + 5.0, 99_000), pts + 5.0)  # history forgotten


# --- geometry ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canonical(models_dir: Path) -> face_geometry.CanonicalFace:
    with zipfile.ZipFile(models_dir / "mediapipe" / "face_landmarker.task") as z:
        return face_geometry.CanonicalFace.from_binarypb(z.read("geometry_pipeline_metadata_landmarks.binarypb"))


def test_canonical_face_from_bundle(canonical: face_geometry.CanonicalFace) -> None:
    assert canonical.vertices.shape == (468, 3)
    assert canonical.triangles.shape == (898, 3)
    assert np.count_nonzero(canonical.weights) == 33
    assert canonical.weights.sum() == pytest.approx(1.055, abs=1e-6)
    np.testing.assert_allclose(canonical.vertices[0], [0.0, -3.406404, 5.979507], atol=1e-6)
    np.testing.assert_allclose(canonical.uv[0], [0.499977, 0.652534], atol=1e-6)
    assert canonical.weights[4] == pytest.approx(0.070909939706326)
    again = face_geometry.CanonicalFace.from_dict(canonical.to_dict())
    np.testing.assert_allclose(again.vertices, canonical.vertices, atol=1e-6)
    np.testing.assert_array_equal(again.weights, canonical.weights)


def test_protobuf_reader_rejects_garbage() -> None:
    with pytest.raises(ModelFileError):
        face_geometry.CanonicalFace.from_binarypb(b"\x0a\x05\x01")  # truncated sub-message
    with pytest.raises(ModelFileError):
        face_geometry.CanonicalFace.from_binarypb(b"\x18\x01")  # no canonical mesh


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def test_weighted_procrustes_recovers_similarity(canonical: face_geometry.CanonicalFace) -> None:
    rot = _rotation(20, -10, 5)
    target = 1.7 * rot @ canonical.vertices.T + np.array([[1.0], [2.0], [-50.0]])
    m = face_geometry.weighted_procrustes(canonical.vertices.T, target, canonical.weights)
    np.testing.assert_allclose(m[:3, :3], 1.7 * rot, atol=1e-9)
    np.testing.assert_allclose(m[:3, 3], [1.0, 2.0, -50.0], atol=1e-9)
    # facelib's convention (AFLW2000 Pose_Para): R = Ry(-yaw) Rx(-pitch) Rz(-roll)
    np.testing.assert_allclose(face_geometry.head_pose_angles(m), [-20, 10, -5], atol=1e-9)


def test_matrix_from_reference_landmarks(canonical: face_geometry.CanonicalFace, reference_dir: Path) -> None:
    ref = np.load(reference_dir / "mediapipe_face_landmarker_ref.npz")
    m = face_geometry.transformation_matrix(ref["obama_jpg_landmarks"][0], 910, 1137, canonical)
    assert m is not None
    np.testing.assert_allclose(m, ref["obama_jpg_matrix"][0], atol=2e-4)
    assert face_geometry.transformation_matrix(np.full((478, 3), 0.5), 100, 100, canonical) is None


def test_detection_scores_are_correctly_rounded_sigmoids() -> None:
    """MediaPipe's ``1 / (1 + expf(-x))`` with a correctly rounded expf, in float32.

    numpy's own float32 ``exp`` is off by an ulp on many inputs; the score weights the weighted
    NMS, so an ulp there moved the merged keypoints (and, through the 1/32-pixel crop grid, the
    landmarks) on 28 of 68 detections of the fidelity cases.
    """
    f32 = np.float32
    logits = np.linspace(-6.0, 6.0, 4001, dtype=np.float32)
    assert (np.exp(-logits) != np.exp(-logits.astype(np.float64)).astype(np.float32)).any()  # the trap
    anchors = blazeface.ssd_anchors()
    for start in range(0, logits.size, 896):
        raw = np.full((896,), 100.0, np.float32)
        part = logits[start : start + 896]
        raw[: part.size] = part
        reg = np.zeros((896, 16), np.float32)
        reg[:, 2:4] = 1e-3  # tiny boxes far apart: no merging, one detection per anchor
        reg[:, 0] = np.arange(896, dtype=np.float32) * 1e3
        dets = blazeface.decode(reg, raw, anchors, blazeface.Letterbox(128, 128), min_score=0.0, iou_threshold=0.99)
        expected = f32(1.0) / (f32(1.0) + np.array([math.exp(-float(x)) for x in raw], np.float64).astype(np.float32))
        np.testing.assert_array_equal(np.sort(dets.scores.astype(np.float32)), np.sort(expected))


def test_roi_rotation_is_a_correctly_rounded_atan2() -> None:
    """``DetectionsToRectsCalculator::ComputeRotation``: atan2 of the float32 differences rounded
    once to float32 (numpy's float32 arctan2 differs by an ulp on about a third of the inputs)."""
    rng = np.random.default_rng(3)
    points = rng.random((2000, 2, 2)).astype(np.float32)
    mismatches = 0
    for start, end in points:
        f32 = np.float32
        x0, y0, x1, y1 = (
            f32(start[0]) * f32(640),
            f32(start[1]) * f32(480),
            f32(end[0]) * f32(640),
            f32(end[1]) * f32(480),
        )
        want = f32(face_mesh.normalize_radians(float(f32(0.0) - f32(math.atan2(float(-(y1 - y0)), float(x1 - x0))))))
        mismatches += np.arctan2(-(y1 - y0), x1 - x0) != f32(math.atan2(float(-(y1 - y0)), float(x1 - x0)))
        assert face_mesh._rotation_f32(start, end, 640, 480) == float(want)
    assert mismatches > 0  # the inputs do reach numpy's ulp differences
