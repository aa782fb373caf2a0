"""Pure-numpy FOMM maths: 2x2 inverse, convex hull, normalize_kp, best frame, animation order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facelib.errors import InputError
from facelib.processing import fomm


def test_inverse_2x2_matches_linalg() -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=(7, 5, 2, 2)) + 2 * np.eye(2)
    np.testing.assert_allclose(fomm.inverse_2x2(m), np.linalg.inv(m), rtol=1e-10, atol=1e-12)


def test_hull_of_square_with_inner_and_collinear_points() -> None:
    pts = np.array([[0, 0], [2, 0], [2, 2], [0, 2], [1, 1], [1, 0], [0.5, 0.5], [2, 1]])
    hull = fomm.convex_hull(pts)
    assert len(hull) == 4
    assert fomm.hull_area(pts) == pytest.approx(4.0)


def test_hull_degenerate_sets() -> None:
    assert fomm.hull_area(np.array([[0.0, 0.0]])) == 0.0
    assert fomm.hull_area(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])) == 0.0
    with pytest.raises(InputError):
        fomm.convex_hull(np.array([[np.nan, 0.0], [1, 1], [2, 0]]))


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 30), st.just(2)), elements=st.floats(-1, 1, width=32)))
def test_hull_area_properties(points: np.ndarray) -> None:
    area = fomm.hull_area(points)
    hull = fomm.convex_hull(points)
    # every point lies inside or on the counter-clockwise hull
    if len(hull) >= 3:
        for i in range(len(hull)):
            a, b = hull[i], hull[(i + 1) % len(hull)]
            cross = (b[0] - a[0]) * (points[:, 1] - a[1]) - (b[1] - a[1]) * (points[:, 0] - a[0])
            assert (cross >= -1e-9).all()
    # the hull area is invariant to translation and scales with the square of a scale
    assert fomm.hull_area(points + 3.0) == pytest.approx(area, abs=1e-9)
    assert fomm.hull_area(points * 2.0) == pytest.approx(4 * area, rel=1e-9, abs=1e-9)


def test_hull_area_against_scipy() -> None:
    spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(1)
    for _ in range(20):
        pts = rng.normal(size=(10, 2))
        assert fomm.hull_area(pts) == pytest.approx(spatial.ConvexHull(pts).volume, rel=1e-12)


def test_normalize_kp_reproduces_upstream(reference_dir: Path) -> None:
    ref = np.load(reference_dir / "fomm_tiny_seed1_ref.npz")
    src = (ref["kp_source_value"], ref["kp_source_jacobian"])
    drv = (ref["kp_driving_value"], ref["kp_driving_jacobian"])
    ini = (ref["kp_driving_value"][0], ref["kp_driving_jacobian"][0])
    v, j = fomm.normalize_kp(src, drv, ini, "relative", adapt_scale=True)
    np.testing.assert_allclose(v, ref["relative_adapt_kp_value"], atol=1e-6)
    np.testing.assert_allclose(j, ref["relative_adapt_kp_jacobian"], atol=1e-5)
    v, j = fomm.normalize_kp(src, drv, ini, fomm.MotionMode.ABSOLUTE)
    np.testing.assert_array_equal(v, ref["absolute_kp_value"])
    np.testing.assert_array_equal(j, ref["absolute_kp_jacobian"])


def test_normalize_kp_relative_identity_on_reference_frame() -> None:
    rng = np.random.default_rng(2)
    src = (rng.uniform(-1, 1, (4, 2)), np.eye(2) + 0.1 * rng.normal(size=(4, 2, 2)))
    ini = (rng.uniform(-1, 1, (4, 2)), np.eye(2) + 0.1 * rng.normal(size=(4, 2, 2)))
    v, j = fomm.normalize_kp(src, ini, ini, "relative")
    np.testing.assert_allclose(v[0], src[0], atol=1e-6)
    np.testing.assert_allclose(j[0], src[1], atol=1e-5)


def test_movement_scale_degenerate_driving_is_an_error() -> None:
    with pytest.raises(InputError, match="degenerate"):
        fomm.movement_scale(np.eye(3)[:, :2], np.zeros((3, 2)))


def test_animation_order_matches_upstream_concatenation() -> None:
    backward, forward = fomm.animation_order(6, 2)
    assert backward == [2, 1, 0] and forward == [2, 3, 4, 5]
    assert backward[::-1] + forward[1:] == list(range(6))
    with pytest.raises(InputError):
        fomm.animation_order(3, 3)
    with pytest.raises(InputError):
        fomm.animation_order(0, 0)


def test_best_frame_search_picks_the_most_similar_shape() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0, 100, (20, 2))
    search = fomm.BestFrameSearch(base)
    # frames: distorted, none, the same shape shifted and scaled (distance 0 after normalising), distorted
    search.update(base + rng.normal(scale=5, size=base.shape))
    search.update(None)
    search.update(base * 1.7 + 40)
    search.update(base + rng.normal(scale=1, size=base.shape))
    assert search.index == 2 and search.distance == pytest.approx(0.0, abs=1e-9)
    assert search.count == 4


def test_model_io_roundtrip_and_resizing() -> None:
    img = np.random.default_rng(4).integers(0, 256, (31, 47, 3), dtype=np.uint8)
    x = fomm.to_model_input(img, (64, 64))
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    same = fomm.to_model_input(img, (31, 47))
    np.testing.assert_array_equal(fomm.to_uint8(fomm.from_model_output(same))[0], img)
    with pytest.raises(InputError):
        fomm.to_model_input(np.zeros((4, 4), np.uint8), (8, 8))
