"""Box maths: IoU, NMS, margins — against hand-computed values and properties."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facelib.processing import arkit, boxes


def test_iou_known_values() -> None:
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(boxes.iou(a, b), [[1 / 7, 1.0, 0.0]])


def test_iou_empty_and_degenerate() -> None:
    assert boxes.iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert boxes.iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0


def test_hard_nms_keeps_best_of_overlapping() -> None:
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    s = np.array([0.8, 0.9, 0.7])
    np.testing.assert_array_equal(boxes.hard_nms(b, s, 0.3), [1, 2])
    np.testing.assert_array_equal(boxes.hard_nms(b, s, 0.3, top_k=1), [1])
    assert boxes.hard_nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0


def test_weighted_nms_averages_cluster() -> None:
    b = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], float)
    s = np.array([0.75, 0.25, 0.5])
    kp = np.array([[[0, 0]], [[4, 4]], [[9, 9]]], float)
    out_b, out_s, out_kp = boxes.weighted_nms(b, s, 0.5, extra=kp)
    np.testing.assert_allclose(out_b[0], [0.5, 0, 10.5, 10])
    np.testing.assert_allclose(out_s, [0.75, 0.5])
    assert out_kp is not None
    np.testing.assert_allclose(out_kp[0, 0], [1, 1])


box_strategy = arrays(np.float64, (6, 4), elements=st.floats(0, 100))


@given(box_strategy, arrays(np.float64, 6, elements=st.floats(0, 1)), st.floats(0, 1))
def test_hard_nms_properties(raw: np.ndarray, scores: np.ndarray, threshold: float) -> None:
    b = np.concatenate([np.minimum(raw[:, :2], raw[:, 2:]), np.maximum(raw[:, :2], raw[:, 2:])], 1)
    keep = boxes.hard_nms(b, scores, threshold)
    assert len(set(keep.tolist())) == len(keep)
    kept = b[keep]
    overlaps = boxes.iou(kept, kept)
    np.fill_diagonal(overlaps, 0)
    assert (overlaps <= threshold + 1e-12).all()
    assert np.all(np.diff(scores[keep]) <= 0)


def test_expand_and_square() -> None:
    np.testing.assert_allclose(boxes.expand([[10, 20, 20, 40]], 0.5), [[5, 10, 25, 50]])
    np.testing.assert_allclose(boxes.square([[0, 0, 10, 20]]), [[-5, 0, 15, 20]])
    np.testing.assert_allclose(boxes.clip([[-5, -1, 15, 50]], 10, 30), [[0, 0, 10, 30]])


def test_arkit_names_and_mediapipe_conversion() -> None:
    assert len(arkit.ARKIT_NAMES) == 52 == len(set(arkit.ARKIT_NAMES))
    assert len(arkit.MEDIAPIPE_NAMES) == 52
    mp = np.arange(52, dtype=np.float32) / 100
    out = arkit.from_mediapipe(mp)
    assert out[arkit.ARKIT_NAMES.index("jawOpen")] == mp[arkit.MEDIAPIPE_NAMES.index("jawOpen")]
    assert out[arkit.ARKIT_NAMES.index("tongueOut")] == 0
    assert arkit.arkit_index("EyeBlink_L") == arkit.ARKIT_NAMES.index("eyeBlinkLeft")
    assert arkit.arkit_index("MouthSmileRight") == arkit.ARKIT_NAMES.index("mouthSmileRight")
    assert arkit.unknown_names(["jawOpen", "_neutral", "nonsense"]) == ["_neutral", "nonsense"]
