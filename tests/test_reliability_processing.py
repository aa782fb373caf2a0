"""Property-based tests (hypothesis) of the numpy pre/post-processing that had only example tests:
BlazeFace anchors and decoding, face geometry (Procrustes, head-pose angles), FaceBoxes and
UltraFace priors and box decoding, the ARKit name mapping and ROI angle helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelib.processing import arkit, blazeface, face_geometry, face_mesh, faceboxes, ultraface

PROPS = settings(max_examples=60, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


# --- BlazeFace -----------------------------------------------------------------------------------


@PROPS
@given(
    size=st.integers(16, 256),
    strides=st.lists(st.sampled_from([8, 16, 32]), min_size=1, max_size=4).map(sorted),
    per_cell=st.integers(1, 3),
    offset=st.floats(0.0, 0.99),
)
def test_ssd_anchor_count_and_range(size: int, strides: list[int], per_cell: int, offset: float) -> None:
    anchors = blazeface.ssd_anchors(size, strides, per_cell, offset)
    expected = sum(math.ceil(size / s) ** 2 * strides.count(s) * per_cell for s in sorted(set(strides)))
    assert anchors.shape == (expected, 2)
    assert np.all(anchors >= 0) and np.all(anchors < 1)


def test_short_range_anchor_count() -> None:
    assert blazeface.ssd_anchors().shape == (896, 2)


@PROPS
@given(width=st.integers(1, 4000), height=st.integers(1, 4000), u=st.floats(0, 1), v=st.floats(0, 1))
def test_letterbox_matrix_and_point_map_agree(width: int, height: int, u: float, v: float) -> None:
    box = blazeface.Letterbox(width, height)
    m = box.inverse_matrix()
    pixel = m @ np.array([u * box.size, v * box.size, 1.0])
    np.testing.assert_allclose(box.to_image(np.array([u, v])), pixel, rtol=1e-9, atol=1e-6)
    # the tensor centre is the image centre; the unit square covers the longer side exactly
    np.testing.assert_allclose(box.to_image(np.array([0.5, 0.5])), [width / 2, height / 2])
    span = box.to_image(np.array([1.0, 1.0])) - box.to_image(np.array([0.0, 0.0]))
    np.testing.assert_allclose(span, [max(width, height)] * 2)


@PROPS
@given(
    width=st.integers(32, 2000),
    height=st.integers(32, 2000),
    anchor=st.integers(0, 895),
    dx=st.floats(-20, 20),
    dy=st.floats(-20, 20),
    w=st.floats(2, 120),
    h=st.floats(2, 120),
    logit=st.floats(0.5, 50),
)
def test_blazeface_decode_recovers_an_encoded_box(
    width: int, height: int, anchor: int, dx: float, dy: float, w: float, h: float, logit: float
) -> None:
    anchors = blazeface.ssd_anchors()
    reg = np.zeros((896, 16), np.float32)
    reg[anchor, :4] = dx, dy, w, h
    reg[anchor, 4:] = np.tile([dx, dy], 6)
    logits = np.full(896, -50.0, np.float32)
    logits[anchor] = logit
    box = blazeface.Letterbox(width, height)
    det = blazeface.decode(reg, logits, anchors, box)
    assert len(det) == 1
    cx, cy = anchors[anchor] + np.array([dx, dy], np.float32) / 128
    corners = np.array([[cx - w / 256, cy - h / 256], [cx + w / 256, cy + h / 256]])
    np.testing.assert_allclose(det.boxes[0], box.to_image(corners).ravel(), rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(det.keypoints[0], box.to_image(np.tile([cx, cy], (6, 1))), rtol=1e-5, atol=1e-2)
    assert det.scores[0] == pytest.approx(1 / (1 + math.exp(-float(np.float32(logit)))))


@PROPS
@given(seed=st.integers(0, 2**31), min_score=st.floats(0.05, 0.95), iou=st.floats(0.1, 0.9))
def test_blazeface_decode_on_random_outputs(seed: int, min_score: float, iou: float) -> None:
    rng = np.random.default_rng(seed)
    reg = rng.normal(0, 30, (1, 896, 16)).astype(np.float32)
    logits = rng.normal(0, 3, (1, 896, 1)).astype(np.float32)
    det = blazeface.decode(reg, logits, blazeface.ssd_anchors(), blazeface.Letterbox(640, 480), min_score, iou)
    assert det.boxes.shape == (len(det), 4) and det.keypoints.shape == (len(det), 6, 2)
    assert np.all(np.isfinite(det.boxes)) and np.all(np.isfinite(det.keypoints))
    assert np.all(det.scores >= min_score - 1e-12) and np.all(det.scores <= 1)
    assert np.all(det.boxes[:, 2] >= det.boxes[:, 0]) and np.all(det.boxes[:, 3] >= det.boxes[:, 1])
    assert len(det) <= int((1 / (1 + np.exp(-logits.astype(np.float64))) >= min_score).sum())


# --- face geometry -------------------------------------------------------------------------------


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@PROPS
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(4, 80),
    scale=st.floats(0.05, 50),
    shift=st.tuples(finite, finite, finite),
)
def test_weighted_procrustes_recovers_a_similarity(
    seed: int, n: int, scale: float, shift: tuple[float, float, float]
) -> None:
    rng = np.random.default_rng(seed)
    source = rng.normal(0, 5, (3, n))
    rotation = _rotation(rng)
    target = scale * rotation @ source + np.array(shift)[:, None]
    weights = rng.uniform(0.1, 1.0, n)
    weights[rng.random(n) < 0.3] = 0.0  # zero weights are allowed while >= 3 points keep weight
    if np.count_nonzero(weights) < 4:
        weights[:4] = 0.5
    m = face_geometry.weighted_procrustes(source, target, weights)
    got_rotation = m[:3, :3] / scale
    np.testing.assert_allclose(got_rotation.T @ got_rotation, np.eye(3), atol=1e-6)
    assert np.linalg.det(got_rotation) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(np.linalg.norm(m[:3, 0]), scale, rtol=1e-6)
    np.testing.assert_allclose(m[:3, :3], scale * rotation, atol=1e-6 * max(scale, 1))
    np.testing.assert_allclose(m[:3, 3], shift, atol=1e-6 * (1 + np.abs(shift).max()) * max(scale, 1))
    np.testing.assert_array_equal(m[3], [0, 0, 0, 1])


@PROPS
@given(seed=st.integers(0, 2**31), n=st.integers(4, 60))
def test_weighted_procrustes_rotation_is_proper_for_any_points(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    source, target = rng.normal(size=(3, n)), rng.normal(size=(3, n))
    m = face_geometry.weighted_procrustes(source, target, rng.uniform(0.1, 1, n))
    s = np.linalg.norm(m[:3, 0])
    rot = m[:3, :3] / s if s > 0 else np.eye(3)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    assert np.linalg.det(rot) > 0


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@PROPS
@given(
    yaw=st.floats(-179, 179),
    pitch=st.floats(-89, 89),
    roll=st.floats(-179, 179),
    scale=st.floats(0.01, 100),
)
def test_head_pose_angles_invert_the_documented_composition(
    yaw: float, pitch: float, roll: float, scale: float
) -> None:
    m = np.eye(4)
    m[:3, :3] = scale * (_rot_y(math.radians(yaw)) @ _rot_x(math.radians(pitch)) @ _rot_z(math.radians(roll)))
    # facelib's convention (AFLW2000 Pose_Para): R = Ry(-yaw) Rx(-pitch) Rz(-roll)
    np.testing.assert_allclose(face_geometry.head_pose_angles(m), [-yaw, -pitch, -roll], atol=1e-6)


# --- FaceBoxes and UltraFace priors and decoding -------------------------------------------------


@PROPS
@given(height=st.integers(1, 700), width=st.integers(1, 700))
def test_faceboxes_priors_count_and_layout(height: int, width: int) -> None:
    config = faceboxes.PriorConfig()
    p = faceboxes.priors(height, width, config)
    assert p.shape == (config.count(height, width), 4) and p.dtype == np.float32
    assert np.all(p[:, :2] >= 0) and np.all(p[:, 2:] > 0)
    # centres stay within one stride of the input
    assert np.all(p[:, 0] <= 1 + 128 / width) and np.all(p[:, 1] <= 1 + 128 / height)


def test_faceboxes_priors_refuse_empty_input() -> None:
    from facelib.errors import InputError

    with pytest.raises(InputError):
        faceboxes.priors(0, 10)


def _encode(boxes: np.ndarray, priors: np.ndarray, variances: tuple[float, float]) -> np.ndarray:
    """The SSD encoding the decoders invert (written from its definition, not from facelib)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate(
        [(centre - priors[:, :2]) / (variances[0] * priors[:, 2:]), np.log(size / priors[:, 2:]) / variances[1]],
        axis=1,
    )


boxes_strategy = st.integers(0, 2**31).map(
    lambda seed: (lambda r: np.concatenate([r[:, :2], r[:, :2] + r[:, 2:] * 0.5 + 0.01], axis=1))(
        np.random.default_rng(seed).random((16, 4))
    )
)


@PROPS
@given(boxes=boxes_strategy, seed=st.integers(0, 2**31))
def test_faceboxes_decode_inverts_the_encoding(boxes: np.ndarray, seed: int) -> None:
    all_priors = faceboxes.priors(64, 96)
    p = all_priors[np.random.default_rng(seed).integers(0, len(all_priors), len(boxes))]
    loc = _encode(boxes, p.astype(np.float64), faceboxes.VARIANCES)
    np.testing.assert_allclose(faceboxes.decode(loc, p), boxes, rtol=1e-4, atol=1e-5)


@PROPS
@given(boxes=boxes_strategy, seed=st.integers(0, 2**31))
def test_ultraface_decode_inverts_the_encoding(boxes: np.ndarray, seed: int) -> None:
    p = ultraface.priors()[np.random.default_rng(seed).integers(0, 4420, len(boxes))]
    variances = (ultraface.CENTER_VARIANCE, ultraface.SIZE_VARIANCE)
    loc = _encode(boxes, p.astype(np.float64), variances)
    np.testing.assert_allclose(ultraface.decode(loc, p), boxes, rtol=1e-4, atol=1e-5)


@PROPS
@given(width=st.integers(8, 1280), height=st.integers(8, 960))
def test_ultraface_priors_count_and_range(width: int, height: int) -> None:
    p = ultraface.priors((width, height))
    cells = sum(
        math.ceil(width / s) * math.ceil(height / s) * len(m) for s, m in zip(ultraface.STRIDES, ultraface.MIN_BOXES)
    )
    assert p.shape == (cells, 4) and np.all(p >= 0) and np.all(p <= 1)


@PROPS
@given(
    seed=st.integers(0, 2**31),
    width=st.integers(16, 2000),
    height=st.integers(16, 2000),
    threshold=st.floats(0.05, 0.95),
)
def test_ultraface_postprocess_on_random_outputs(seed: int, width: int, height: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    scores = ultraface.softmax(rng.normal(0, 2, (1, 4420, 2)))
    np.testing.assert_allclose(scores.sum(-1), 1, rtol=1e-5)
    boxes = rng.uniform(-0.2, 1.2, (1, 4420, 4)).astype(np.float32)
    out_boxes, out_scores = ultraface.postprocess(scores, boxes, (width, height), score_threshold=threshold)
    assert out_boxes.shape == (len(out_scores), 4)
    assert np.all(out_scores > threshold) and np.all(np.diff(out_scores) <= 1e-7)
    assert np.all(out_boxes[:, [0, 2]] >= 0) and np.all(out_boxes[:, [0, 2]] <= width)
    assert np.all(out_boxes[:, [1, 3]] >= 0) and np.all(out_boxes[:, [1, 3]] <= height)


@PROPS
@given(logits=st.lists(st.tuples(finite, finite), min_size=1, max_size=20), shift=finite)
def test_softmaxes_are_probabilities_and_shift_invariant(logits: list[tuple[float, float]], shift: float) -> None:
    x = np.asarray(logits, np.float32)
    face = faceboxes.softmax_face_score(x)
    assert np.all((face >= 0) & (face <= 1))
    np.testing.assert_allclose(faceboxes.softmax_face_score(x + np.float32(shift)), face, atol=1e-4)
    np.testing.assert_allclose(ultraface.softmax(x)[:, 1], face, atol=1e-6)


# --- ARKit mapping and ROI angles ----------------------------------------------------------------


@PROPS
@given(perm=st.permutations(list(range(52))), seed=st.integers(0, 2**31), frames=st.integers(0, 4))
def test_to_arkit_undoes_any_permutation(perm: list[int], seed: int, frames: int) -> None:
    values = np.random.default_rng(seed).random((frames, 52)).astype(np.float32)
    names = [arkit.ARKIT_NAMES[i] for i in perm]
    out = arkit.to_arkit(values, names)
    np.testing.assert_array_equal(out[..., perm], values)


@PROPS
@given(index=st.integers(0, 51), style=st.sampled_from(["upper", "lower", "snake"]))
def test_arkit_index_matches_loosely(index: int, style: str) -> None:
    name = arkit.ARKIT_NAMES[index]
    variant = {
        "upper": name.upper(),
        "lower": name.lower(),
        "snake": "".join(f"_{c.lower()}" if c.isupper() else c for c in name),
    }[style]
    assert arkit.arkit_index(variant) == index


@PROPS
@given(seed=st.integers(0, 2**31))
def test_from_mediapipe_keeps_every_score_and_zeroes_tongue(seed: int) -> None:
    scores = np.random.default_rng(seed).random(52).astype(np.float32)
    out = arkit.from_mediapipe(scores)
    named = dict(zip(arkit.MEDIAPIPE_NAMES, scores))
    for i in range(len(arkit.ARKIT_NAMES)):
        source = next((k for k in named if arkit.arkit_index(k) == i), None)
        assert out[i] == (named[source] if source is not None else 0.0)
    assert out[arkit.ARKIT_NAMES.index("tongueOut")] == 0.0


@PROPS
@given(angle=st.floats(-1e4, 1e4))
def test_normalize_radians_wraps_into_range(angle: float) -> None:
    out = face_mesh.normalize_radians(angle)
    assert -math.pi - 1e-9 <= out < math.pi + 1e-9  # [-pi, pi) up to rounding
    assert math.isclose(math.cos(out), math.cos(angle), abs_tol=1e-6)
    assert math.isclose(math.sin(out), math.sin(angle), abs_tol=1e-6)


@PROPS
@given(x=st.floats(-500, 500), y=st.floats(-500, 500), angle=st.floats(-math.pi, math.pi), r=st.floats(1, 300))
def test_rotation_between_levels_the_line(x: float, y: float, angle: float, r: float) -> None:
    start = np.array([x, y])
    end = start + r * np.array([math.cos(angle), math.sin(angle)])
    rot = face_mesh.rotation_between(start, end)
    # the ROI rotation is the line's angle in image axes (y down): turning by -rot levels the line
    assert -math.pi - 1e-9 <= rot < math.pi + 1e-9
    assert math.isclose(math.cos(rot - angle), 1.0, abs_tol=1e-6)
