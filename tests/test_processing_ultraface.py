"""UltraFace numpy pieces: priors equal the ONNX's embedded constants, decoding, thresholds, NMS."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.errors import InputError
from facelib.processing import ultraface


@pytest.mark.parametrize(
    "file, size, count", [("version-RFB-320.onnx", (320, 240), 4420), ("version-RFB-640.onnx", (640, 480), 17640)]
)
def test_priors_equal_the_onnx_constants(models_dir, file, size, count):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(models_dir / "ultraface" / file))
    consts = [numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"]
    pairs = [c.reshape(-1, 2) for c in consts if c.size == count * 2]
    priors = ultraface.priors(size)
    assert priors.shape == (count, 4)
    # The graph decodes with centres (cx, cy) and sizes (w, h) stored as two (1, P, 2) constants.
    assert any(np.array_equal(c, priors[:, :2]) for c in pairs)
    assert any(np.array_equal(c, priors[:, 2:]) for c in pairs)


def test_priors_layout():
    p = ultraface.priors((320, 240))
    # first map: 40 x 30 cells x 3 boxes, row-major, min boxes innermost
    np.testing.assert_allclose(p[0], [0.5 / 40, 0.5 / 30, 10 / 320, 10 / 240], rtol=1e-6)
    np.testing.assert_allclose(p[1, 2], 16 / 320, rtol=1e-6)
    np.testing.assert_allclose(p[3, 0], 1.5 / 40, rtol=1e-6)
    assert p.min() >= 0 and p.max() <= 1
    assert np.sum(p[:, 3] == 1.0) == 20  # 256/240 clamped


def test_decode_zero_regression_gives_prior_corners():
    p = ultraface.priors((320, 240))
    boxes = ultraface.decode(np.zeros_like(p), p)
    np.testing.assert_allclose(boxes[:, :2], p[:, :2] - p[:, 2:] / 2, atol=1e-7)
    np.testing.assert_allclose(boxes[:, 2:], p[:, :2] + p[:, 2:] / 2, atol=1e-7)
    shifted = ultraface.decode(np.tile([1.0, 0, np.log(2) / 0.2, 0], (len(p), 1)), p)
    np.testing.assert_allclose(shifted[:, 2] - shifted[:, 0], 2 * p[:, 2], rtol=1e-5)


def test_postprocess_threshold_is_strict_and_nms_suppresses():
    scores = np.array([[0.3, 0.7], [0.1, 0.9], [0.15, 0.85], [0.2, 0.8]], np.float32)
    boxes = np.array(
        [[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.7, 0.7], [0.51, 0.5, 0.71, 0.7], [0.0, 0.0, 0.2, 0.2]], np.float32
    )
    out, s = ultraface.postprocess(scores, boxes, (200, 100))
    np.testing.assert_allclose(s, [0.9, 0.8])  # 0.7 not > 0.7; 0.85 overlaps 0.9
    np.testing.assert_allclose(out[0], [100, 50, 140, 70], rtol=1e-5)
    empty, es = ultraface.postprocess(scores * 0, boxes, (200, 100))
    assert empty.shape == (0, 4) and es.shape == (0,)


def test_postprocess_clips_to_image():
    out, _ = ultraface.postprocess(np.array([0.99]), np.array([[-0.2, -0.1, 1.2, 1.1]]), (100, 50))
    np.testing.assert_allclose(out[0], [0, 0, 100, 50])


def test_postprocess_mismatched_lengths():
    with pytest.raises(InputError):
        ultraface.postprocess(np.ones((3,)), np.ones((2, 4)), (10, 10))


def test_preprocess_layout_and_values():
    image = np.zeros((10, 20, 3), np.uint8)
    image[..., 0] = 255
    x = ultraface.preprocess(image, (320, 240))
    assert x.shape == (1, 3, 240, 320) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0], (255 - 127) / 128)
    np.testing.assert_allclose(x[0, 1], -127 / 128)
    with pytest.raises(InputError):
        ultraface.preprocess(np.zeros((10, 10), np.uint8))
