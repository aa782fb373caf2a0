"""MediaPipe's image-to-tensor resampling: 1/32-pixel sample grid, integer weights, half-up rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelib.processing import rect_warp


def _ramp(width: int = 256, height: int = 8) -> np.ndarray:
    """uint8 image whose value is its x coordinate (all channels)."""
    return np.repeat(np.tile(np.arange(width, dtype=np.uint8), (height, 1))[..., None], 3, axis=2)


def test_sample_positions_are_quantised_to_1_32_pixel_and_rounded_half_up() -> None:
    image = _ramp()
    # 200 output columns over 202 image columns, centred: sample x = (i / 200 - 0.5) * 202 + 128
    out = rect_warp.warp_rect(image, 128.0, 4.0, 202.0, 8.0, 0.0, 200, 8, border="replicate")
    x = (np.arange(200) / 200 - 0.5) * 202 + 128
    # on a ramp bilinear blending returns the sample position itself: quantised to 1/32 pixel,
    # then rounded half up to an integer grey level
    expected = np.floor(np.rint(x * 32) / 32 + 0.5)
    np.testing.assert_array_equal(out[4, :, 0], expected)
    # a float-position warp rounding to nearest (recent OpenCV) differs on this ramp
    assert np.any(np.rint(x) != expected)


def test_half_grey_level_rounds_up() -> None:
    image = np.zeros((4, 2, 3), np.uint8)
    image[:, 1] = 1
    # one output pixel sampling x = 0.5 exactly: (0 + 1) / 2 -> 1 (half up), not 0 (half to even)
    out = rect_warp.warp_rect(image, 1.0, 2.0, 1.0, 1.0, 0.0, 1, 1)
    assert out[0, 0, 0] == 1


def test_matrix_maps_rect_corners_to_tensor_corners() -> None:
    m = rect_warp.rect_to_tensor_matrix(100.0, 50.0, 40.0, 20.0, 0.3, 256, 128)
    c, s = math.cos(0.3), math.sin(0.3)
    # the rectangle's top-left corner (before rotation: centre - (w/2, h/2)) goes to tensor (0, 0)
    corner = np.array([100 - 20 * c + 10 * s, 50 - 20 * s - 10 * c, 1.0])
    mapped = m @ corner
    np.testing.assert_allclose(mapped[:2] / mapped[2], [0.0, 0.0], atol=1e-3)
    centre = m @ np.array([100.0, 50.0, 1.0])
    np.testing.assert_allclose(centre[:2] / centre[2], [128.0, 64.0], atol=1e-3)


@pytest.mark.parametrize("border, expected", [("zero", 0), ("replicate", 200)])
def test_borders(border: str, expected: int) -> None:
    image = np.full((10, 10, 3), 200, np.uint8)
    out = rect_warp.warp_rect(image, 0.0, 5.0, 40.0, 40.0, 0.0, 16, 16, border=border)
    assert out[8, 0, 0] == expected  # far left of the image
    assert out[8, 10, 0] == 200  # inside (x = 5)


def test_rotation_matches_the_ideal_map_to_a_grey_level() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    import cv2

    image = cv2.GaussianBlur(image, (0, 0), 3)  # smooth: one grey level of rounding is all that differs
    cx, cy, w, h, rot = 80.0, 60.0, 70.0, 70.0, 0.7
    out = rect_warp.warp_rect(image, cx, cy, w, h, rot, 64, 64).astype(int)
    c, s = math.cos(rot), math.sin(rot)
    inverse = np.array(
        [[c * w / 64, -s * h / 64, cx - c * w / 2 + s * h / 2], [s * w / 64, c * h / 64, cy - s * w / 2 - c * h / 2]]
    )
    ideal = cv2.warpAffine(image, inverse, (64, 64), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).astype(int)
    assert np.abs(out - ideal).max() <= 1


def test_bad_border() -> None:
    with pytest.raises(ValueError):
        rect_warp.warp_rect(np.zeros((4, 4, 3), np.uint8), 2, 2, 2, 2, 0, 4, 4, border="wrap")


def _random_rects(count: int, seed: int) -> list[np.ndarray]:
    """Rectangle-to-tensor matrices of face-crop-like and extreme ROIs (tiny, huge, far outside)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        size = float(np.exp(rng.uniform(np.log(2.0), np.log(5000.0))))
        cx, cy = rng.uniform(-3 * size, 2000, 2)
        aspect = rng.uniform(0.5, 2.0)
        out.append(rect_warp.rect_to_tensor_matrix(cx, cy, size, size * aspect, rng.uniform(-7, 7), 256, 256))
    return out


@pytest.mark.parametrize("size", [(256, 256), (128, 128), (192, 64)])
def test_fast_sample_grid_is_the_general_one_to_the_bit(size: tuple[int, int]) -> None:
    import cv2

    width, height = size
    rows = min(32 // 2, height)
    cols = min(32 * 32 // rows, width)
    taken = 0
    for matrix in _random_rects(120, seed=width + height):
        _, inverse = cv2.invert(matrix, flags=cv2.DECOMP_LU)
        fast = rect_warp._fast_fixed_point_maps(inverse.ravel(), cols, width, height)
        general = rect_warp._general_fixed_point_maps(inverse.ravel(), cols, width, height)
        if fast is None:
            continue
        taken += 1
        np.testing.assert_array_equal(fast[0], general[0])
        np.testing.assert_array_equal(fast[1], general[1])
        assert fast[0].dtype == general[0].dtype and fast[1].dtype == general[1].dtype
    assert taken >= 100  # the fast path is what face crops take


def test_fast_sample_grid_declines_what_it_cannot_do_exactly() -> None:
    # a true perspective divisor crossing zero inside the tensor, and positions beyond float32
    persp = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -0.01, 0.0, 1.0])
    assert rect_warp._fast_fixed_point_maps(persp, 64, 256, 256) is None
    far = np.array([1.0, 0.0, 1e7, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    assert rect_warp._fast_fixed_point_maps(far, 64, 256, 256) is None
    assert rect_warp._fast_fixed_point_maps(np.eye(3).ravel(), 64, 200, 8) is None  # not whole blocks
    # and fixed_point_maps still answers for them (the general path)
    map1, map2 = rect_warp.fixed_point_maps(np.linalg.inv(far.reshape(3, 3)), 256, 256)
    assert map1.shape == (256, 256, 2) and map2.shape == (256, 256)
