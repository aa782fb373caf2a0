"""Real models with real inputs, for testing a backend against ONNX Runtime.

The models are the released ones in a facelib data mirror laid out like facelib's shared test
data (``<root>/assets/models/...``, ``<root>/assets/media/...``); pass its ``assets/models``
directory as ``models_dir``.

Each case gives the ONNX path (relative to assets/models), the shape ranges of its dynamic
inputs (as a model card would) and real input batches: AFLW2000 face crops for FSA-Net, a
portrait for UltraFace and the MediaPipe detector/landmarker, and MediaPipe's own landmarks of
that portrait for the blendshape model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cv2
import numpy as np

from facelib.backends.base import ShapeRange
from facelib.io.image import read_image

FSA_RANGE = ShapeRange((1, 64, 64, 3), (4, 64, 64, 3), (8, 64, 64, 3))


def _shared(models_dir: Path) -> Path:
    return models_dir.parents[1]


def _image(models_dir: Path, size: tuple[int, int]) -> np.ndarray:
    rgb = read_image(_shared(models_dir) / "assets" / "media" / "images" / "obama.jpg")
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32)


def fsanet_crops(models_dir: Path) -> np.ndarray:
    ref = np.load(_shared(models_dir) / "reference" / "fsanet_aflw_shared_ref.npz")
    return ref["crops_bgr_u8"].astype(np.float32)  # (6, 64, 64, 3) BGR 0..255


def _fsanet(models_dir: Path) -> list[dict[str, np.ndarray]]:
    crops = fsanet_crops(models_dir)
    return [{"input_1:0": crops[i : i + 1]} for i in range(len(crops))]


def _ultraface(models_dir: Path) -> list[dict[str, np.ndarray]]:
    x = (_image(models_dir, (320, 240)) - 127.0) / 128.0
    return [{"input": np.ascontiguousarray(x.transpose(2, 0, 1)[None])}]


def _detector(models_dir: Path) -> list[dict[str, np.ndarray]]:
    return [{"input": (_image(models_dir, (128, 128)) / 127.5 - 1.0)[None]}]


def _landmarks(models_dir: Path) -> list[dict[str, np.ndarray]]:
    return [{"input_12": (_image(models_dir, (256, 256)) / 255.0)[None]}]


def _blendshapes(models_dir: Path) -> list[dict[str, np.ndarray]]:
    ref = np.load(_shared(models_dir) / "reference" / "mediapipe_face_landmarker_ref.npz")
    points = ref["obama_jpg_landmarks"][0, :146, :2] * 256.0
    return [{"serving_default_input_points:0": points[None].astype(np.float32)}]


@attrs.frozen
class Case:
    key: str
    onnx: str
    shapes: dict[str, ShapeRange]
    inputs: Callable[[Path], list[dict[str, np.ndarray]]]


CASES = [
    Case("fsanet_capsule", "fsanet/fsanet_capsule_3_16_2_21_5.onnx", {"input_1:0": FSA_RANGE}, _fsanet),
    Case("fsanet_var_capsule", "fsanet/fsanet_var_capsule_3_16_2_21_5.onnx", {"input_1:0": FSA_RANGE}, _fsanet),
    Case("fsanet_noS_capsule", "fsanet/fsanet_noS_capsule_3_16_2_192_5.onnx", {"input_1:0": FSA_RANGE}, _fsanet),
    Case("ultraface_rfb320", "ultraface/version-RFB-320.onnx", {}, _ultraface),
    Case("mediapipe_detector", "mediapipe/face_detector.onnx", {}, _detector),
    Case(
        "mediapipe_landmarks",
        "mediapipe/face_landmarks_detector.onnx",
        {"input_12": ShapeRange((1, 256, 256, 3), (1, 256, 256, 3), (2, 256, 256, 3))},
        _landmarks,
    ),
    Case("mediapipe_blendshapes", "mediapipe/face_blendshapes.onnx", {}, _blendshapes),
]


def random_feeds(session: Any, batch: int, lo: float, hi: float, seed: int) -> dict[str, np.ndarray]:
    """Uniform random inputs in ``[lo, hi)`` for every input of ``session``, dynamic dims = ``batch``."""
    rng = np.random.default_rng(seed)
    return {
        s.name: rng.uniform(lo, hi, tuple(batch if d is None else d for d in s.shape)).astype(s.dtype)
        for s in session.inputs
    }


def assert_matches_onnxruntime(
    session: Any, onnx_path: Path, feeds: list[dict[str, np.ndarray]], ordered: bool = True, tol: float = 1e-5
) -> None:
    """``session`` has the ONNX model's input names (in order) and output names (in order unless
    ``ordered`` is False) and gives ONNX Runtime's outputs (shapes equal, within ``tol``) on each
    of ``feeds``, run one after another in the same session."""
    from facelib.backends import get_backend

    reference = get_backend("onnxruntime").load(onnx_path)
    assert [s.name for s in session.inputs] == [s.name for s in reference.inputs]
    names = [s.name for s in session.outputs], [s.name for s in reference.outputs]
    assert names[0] == names[1] if ordered else sorted(names[0]) == sorted(names[1])
    for one in feeds:
        got, want = session.run(one), reference.run(one)
        assert list(got) == list(want) if ordered else set(got) == set(want)
        for name in want:
            assert got[name].shape == want[name].shape, name
            np.testing.assert_allclose(got[name], want[name], rtol=tol, atol=tol, err_msg=f"{onnx_path.name}:{name}")


def decoder_like_onnx(path: Path) -> Path:
    """Write a small decoder-step-like ONNX graph to ``path``: attention of ``x`` (1, T, 8) over
    ``memory`` (1, S, 8), T and S dynamic, output ``y`` (1, T, 8); seeded weights, opset 17."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["q"]),
            helper.make_node("Transpose", ["memory"], ["mt"], perm=[0, 2, 1]),
            helper.make_node("MatMul", ["q", "mt"], ["scores"]),
            helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
            helper.make_node("MatMul", ["attn", "memory"], ["y"]),
        ],
        "decoder_like",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 8]),
            helper.make_tensor_value_info("memory", TensorProto.FLOAT, [1, "S", 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "T", 8])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), path)
    return path


def onnxruntime_outputs(onnx_path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The same model on facelib's ONNX Runtime backend (the parity reference)."""
    from facelib.backends import get_backend

    with get_backend("onnxruntime").load(onnx_path) as session:
        return session.run(feeds)
