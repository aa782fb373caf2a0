"""FSA-Net crops: exact reproduction of the reference crops, upstream crop maths, min-max stretch."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from headpose_support import load_reference
from hypothesis import given, settings
from hypothesis import strategies as st

from facelib.errors import InputError
from facelib.io.image import read_image
from facelib.io.matfile import read_mat
from facelib.processing.fsanet import crop_faces, enlarge_boxes, min_max_stretch
from facelib.tasks.head_pose_eval import landmark_box


def test_crops_reproduce_reference_from_landmark_boxes(media_dir, reference_dir):
    ref = load_reference(reference_dir)
    for name, box, want in zip(ref["names"], ref["landmark_box_xyxy"], ref["crops_bgr_u8"]):
        image = read_image(media_dir / "aflw2000" / str(name))
        got = crop_faces(image, box[None], min_max=False)
        assert got.dtype == np.float32 and got.shape == (1, 64, 64, 3)
        np.testing.assert_array_equal(got[0], want.astype(np.float32), err_msg=str(name))


def test_landmark_box_from_mat_matches_reference(media_dir, reference_dir):
    ref = load_reference(reference_dir)
    for name, box in zip(ref["names"], ref["landmark_box_xyxy"]):
        pts = read_mat(media_dir / "aflw2000" / str(name).replace(".jpg", ".mat"))["pt2d"]
        np.testing.assert_allclose(landmark_box(pts.T), box, atol=1e-4)


def test_min_max_equals_cv2_normalize(reference_dir):
    crops = load_reference(reference_dir)["crops_bgr_u8"]
    got = min_max_stretch(crops)
    for crop, g in zip(crops, got):
        want = cv2.normalize(crop.astype(np.float64), None, alpha=0, beta=255, norm_type=cv2.NORM_MINMAX)
        np.testing.assert_allclose(g, want, atol=1e-9)
    assert got.min() == 0 and got.max() == pytest.approx(255)


def test_min_max_constant_crop_is_zero():
    out = min_max_stretch(np.full((1, 4, 4, 3), 77, np.uint8))
    assert np.all(out == 0)


def test_crop_matches_upstream_demo_formula():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = np.array([30.0, 20.0, 90.0, 100.0])
    # Upstream demo: w = x2 - x1, xw1 = max(int(x1 - 0.6 w), 0), xw2 = min(int(x2 + 0.6 w), W - 1), inclusive.
    w, h = 60, 80
    xw1, yw1 = max(int(30 - 0.6 * w), 0), max(int(20 - 0.6 * h), 0)
    xw2, yw2 = min(int(90 + 0.6 * w), 159), min(int(100 + 0.6 * h), 119)
    bgr = image[..., ::-1]
    want = cv2.resize(np.ascontiguousarray(bgr[yw1 : yw2 + 1, xw1 : xw2 + 1]), (64, 64)).astype(np.float64)
    want = cv2.normalize(want, None, alpha=0, beta=255, norm_type=cv2.NORM_MINMAX)
    got = crop_faces(image, box[None])
    np.testing.assert_allclose(got[0], want, atol=1e-3)
    rgb = crop_faces(image, box[None], colour_order="RGB", min_max=False)
    np.testing.assert_array_equal(rgb[0][..., ::-1], crop_faces(image, box[None], min_max=False)[0])


@pytest.mark.parametrize(
    "box, match",
    [
        ([np.nan, 0, 10, 10], "NaN"),
        ([10, 10, 5, 20], "inverted"),
        ([500, 500, 600, 600], "outside"),
        ([[1, 2, 3]], "shape"),
    ],
)
def test_bad_boxes_are_input_errors(box, match):
    image = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(InputError, match=match):
        crop_faces(image, np.asarray(box, dtype=np.float64))


def test_non_rgb_image_is_refused():
    with pytest.raises(InputError, match="RGB uint8"):
        crop_faces(np.zeros((10, 10), np.uint8), np.array([[1, 1, 5, 5]]))


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    x=st.floats(-200, 600),
    y=st.floats(-200, 600),
    bw=st.floats(0, 300),
    bh=st.floats(0, 300),
    margin=st.floats(0, 1.5),
)
def test_enlarged_windows_stay_inside_and_cover_the_box(width, height, x, y, bw, bh, margin):
    box = np.array([[x, y, x + bw, y + bh]])
    try:
        ((x1, y1, x2, y2),) = enlarge_boxes(box, (height, width), margin)
    except InputError:
        # Only windows that miss the image entirely may fail.
        x1 = int(max(np.trunc(x - margin * bw), 0))
        x2 = int(min(np.trunc(x + bw + margin * bw), width - 1))
        y1 = int(max(np.trunc(y - margin * bh), 0))
        y2 = int(min(np.trunc(y + bh + margin * bh), height - 1))
        assert x2 < x1 or y2 < y1
        return
    assert 0 <= x1 <= x2 <= width - 1
    assert 0 <= y1 <= y2 <= height - 1
    # The window covers the box's pixels that lie in the image (up to the integer truncation).
    assert x1 <= max(x, 0) + 1e-9 or x1 == 0
    assert y1 <= max(y, 0) + 1e-9 or y1 == 0
    assert x2 >= min(np.trunc(x + bw), width - 1)
    assert y2 >= min(np.trunc(y + bh), height - 1)


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 4),
    size=st.tuples(st.integers(8, 96), st.integers(8, 96)),
)
def test_crop_batch_shape_dtype_range(seed, n, size):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    xy = rng.uniform(0, 40, (n, 2))
    wh = rng.uniform(1, 30, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    out = crop_faces(image, boxes, size=size)
    assert out.shape == (n, size[1], size[0], 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    for crop in out:  # every crop is stretched on its own
        assert crop.min() == 0.0 and (crop.max() == 0.0 or crop.max() == pytest.approx(255.0))
