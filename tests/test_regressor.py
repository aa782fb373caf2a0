"""User regressor packages: a real (small, seeded) MobileNetV3-like net + the real FaceBoxes detector.

The engine's output must equal running the torch net directly on a crop computed here
independently from the card's documented crop rule.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from facelib.errors import ConversionError, InputError, ModelCardError, ModelFileError
from facelib.io.image import read_image
from facelib.processing.arkit import ARKIT_NAMES
from facelib.tasks.detection import FaceBox

torch = pytest.importorskip("torch")
nn = torch.nn

from facelib.testing.regressor_net import NAMES_51, NAMES_57, SIZE  # noqa: E402
from facelib.testing.regressor_net import export as _export  # noqa: E402
from facelib.testing.regressor_net import make_net as _make_net  # noqa: E402


@pytest.fixture(scope="module")
def faceboxes_pkg(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facelib.models.convert.faceboxes import build_package

    out = tmp_path_factory.mktemp("fb")
    build_package({"weights": models_dir / "faceboxes" / "FaceBoxesProd.pth"}, out)
    return out


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Path]]:
    tmp = tmp_path_factory.mktemp("nets")
    n51 = _make_net(51, seed=0)
    n57 = _make_net(57, seed=1, nhwc=True)
    return {
        "51": (n51, _export(n51, tmp / "r51.onnx", (1, 3, *SIZE))),
        "57": (n57, _export(n57, tmp / "r57.onnx", (1, *SIZE, 3))),
    }


@pytest.fixture(scope="module")
def pkg51(nets, faceboxes_pkg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from facelib.models.convert.regressor import build_package

    out = tmp_path_factory.mktemp("pkg51")
    build_package(
        {"regressor": nets["51"][1], "detector": faceboxes_pkg},
        out,
        input_size=SIZE,
        output_names=NAMES_51,
        colour_order="RGB",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        margin=0.2,
        square=True,
    )
    return out


@pytest.fixture(scope="module")
def pkg57(nets, faceboxes_pkg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    from facelib.models.convert.regressor import build_package

    out = tmp_path_factory.mktemp("pkg57")
    build_package(
        {"regressor": nets["57"][1], "detector": faceboxes_pkg / "faceboxes.onnx"},  # bare ONNX detector
        out,
        input_size=SIZE,
        output_names=NAMES_57,
        colour_order="BGR",
        mean=(127.5, 127.5, 127.5),
        std=(127.5, 127.5, 127.5),
        pixel_scale=1.0,
        layout="NHWC",
        margin=0.1,
        square=False,
        head_pose={"names": ["HeadYaw", "HeadPitch", "HeadRoll"], "unit": "livelink"},
    )
    return out


def _independent_crop(image: np.ndarray, box: np.ndarray, margin: float, make_square: bool) -> np.ndarray:
    """The documented crop rule, written without facelib's helpers."""
    import cv2

    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    x1, x2, y1, y2 = x1 - margin * w, x2 + margin * w, y1 - margin * h, y2 + margin * h
    if make_square:
        cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
        x1, x2, y1, y2 = cx - half, cx + half, cy - half, cy + half
    X1, Y1, X2, Y2 = (int(np.rint(v)) for v in (x1, y1, x2, y2))
    canvas = np.zeros((Y2 - Y1, X2 - X1, 3), np.uint8)
    for yy in range(max(Y1, 0), min(Y2, image.shape[0])):
        xs, xe = max(X1, 0), min(X2, image.shape[1])
        canvas[yy - Y1, xs - X1 : xe - X1] = image[yy, xs:xe]
    return cv2.resize(canvas, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_LINEAR)


def _torch_outputs(net: nn.Module, crop: np.ndarray, *, bgr: bool, mean, std, scale: float, nhwc: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = crop[:, :, ::-1] if bgr else crop
    x = (x.astype(np.float64) * scale - np.asarray(mean)) / np.asarray(std)
    t = torch.from_numpy(x.astype(np.float32))
    t = t[None] if nhwc else t.permute(2, 0, 1)[None]
    with torch.no_grad():
        return net(t).numpy()[0]


def test_51_outputs_equal_torch_on_independent_crop(pkg51: Path, nets, faceboxes_pkg: Path, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from facelib.tasks.blendshape_regressor import RegressorEngine
    from facelib.tasks.faceboxes import FaceBoxesDetector

    image = read_image(media_dir / "images" / "two_people.jpg")
    with FaceBoxesDetector(faceboxes_pkg) as det:
        boxes = det.detect(image)
    with RegressorEngine(pkg51, backend="onnxruntime") as engine:
        results = engine.predict(image)
        faces = engine.process(image)
    assert len(results) == len(faces) == len(boxes) == 2
    for res, box in zip(results, boxes):
        np.testing.assert_array_equal(res.face.box, box.box)
        raw = _torch_outputs(
            nets["51"][0],
            _independent_crop(image, box.box, 0.2, True),
            bgr=False,
            mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225),
            scale=1 / 255,
            nhwc=False,
        )
        np.testing.assert_allclose(res.raw, raw, atol=2e-5)
        want = np.zeros(52)
        for k, name in enumerate(NAMES_51):
            want[ARKIT_NAMES.index(name)] = raw[k]
        np.testing.assert_allclose(res.face.blendshapes, np.clip(want, 0, 1), atol=2e-5)
        assert res.face.blendshapes[ARKIT_NAMES.index("tongueOut")] == 0.0
        assert res.extra == {} and res.face.head_pose is None
        assert (raw < 0).any() or (raw > 1).any()  # clipping was exercised


def test_57_outputs_nhwc_bgr_head_pose_and_extras(pkg57: Path, nets, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from facelib.tasks.blendshape_regressor import RegressorEngine

    image = read_image(media_dir / "images" / "obama.jpg")
    box = FaceBox([380.0, 90.0, 610.0, 410.0], 0.99)

    class FixedDetector:
        def detect(self, img: np.ndarray) -> list[FaceBox]:
            return [box]

    with RegressorEngine(pkg57, detector=FixedDetector()) as engine:
        assert engine.extra_names == ("JawOpenAux", "Gaze")
        (res,) = engine.predict(image)
    raw = _torch_outputs(
        nets["57"][0],
        _independent_crop(image, box.box, 0.1, False),
        bgr=True,
        mean=(127.5,) * 3,
        std=(127.5,) * 3,
        scale=1.0,
        nhwc=True,
    )
    np.testing.assert_allclose(res.raw, raw, atol=2e-5)
    np.testing.assert_allclose(res.face.blendshapes, np.clip(raw[:52], 0, 1), atol=2e-5)
    np.testing.assert_allclose(res.face.head_pose, raw[52:55] * 180, rtol=1e-4, atol=1e-3)
    assert res.extra == pytest.approx({"JawOpenAux": raw[55], "Gaze": raw[56]}, abs=2e-5)


def test_bundled_onnx_detector_and_no_face(pkg57: Path, media_dir: Path) -> None:
    from facelib.tasks.blendshape_regressor import RegressorEngine

    with RegressorEngine(pkg57) as engine:
        assert len(engine.process(read_image(media_dir / "images" / "obama.jpg"))) == 1
        assert engine.process(np.full((200, 200, 3), 90, np.uint8)) == []
        gray = read_image(media_dir / "images" / "obama.jpg")[:, :, 1]  # (H, W) grayscale works too
        assert len(engine.process(gray)) == 1
        with pytest.raises(InputError, match="too small"):
            engine.process(np.zeros((16, 16, 3), np.uint8))


def _edit(pkg: Path, tmp: Path, change) -> Path:  # type: ignore[no-untyped-def]
    copy = tmp / f"edited{len(list(tmp.iterdir()))}"
    shutil.copytree(pkg, copy)
    card = json.loads((copy / "facelib.json").read_text())
    change(card)
    (copy / "facelib.json").write_text(json.dumps(card))
    return copy


def test_wrong_card_fields(pkg51: Path, tmp_path: Path) -> None:
    from facelib.tasks.blendshape_regressor import RegressorEngine

    cases = [
        (lambda c: c["outputs"].update(names=NAMES_51[:-1]), "names 50"),  # output count != names
        (lambda c: c["outputs"].update(names=["jawOpen", "JawOpen", *NAMES_51[2:]]), r"duplicates|both map"),
        (lambda c: c["preprocessing"].update(layout="CHWN"), "layout"),
        (lambda c: c["preprocessing"].update(input_size=[64, 64]), "input_size"),
        (lambda c: c["preprocessing"].update(colour_order="YUV"), "colour_order"),
        (lambda c: c["preprocessing"].update(std=[0, 1, 1]), "std"),
        (lambda c: c["preprocessing"].pop("input_size"), "input_size"),
        (lambda c: c["preprocessing"].pop("detector"), "no detector"),
        (lambda c: c.update(variant="mediapipe"), "not a regressor"),
        (lambda c: c["outputs"].update(head_pose={"names": ["a"], "unit": "degrees"}), "head_pose"),
    ]
    for change, message in cases:
        with pytest.raises(ModelCardError, match=message):
            RegressorEngine(_edit(pkg51, tmp_path, change))


def test_runtime_output_count_mismatch(pkg51: Path, nets, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A model whose output length is dynamic and differs from the names fails clearly at run time."""
    from facelib.tasks.blendshape_regressor import RegressorEngine

    copy = tmp_path / "dyn"
    shutil.copytree(pkg51, copy)
    card = json.loads((copy / "facelib.json").read_text())
    card["outputs"]["names"] = [*NAMES_51, "tongueOut"]
    card["files"]["regressor"]["outputs"][0]["shape"] = ["N", "K"]
    card["files"]["regressor"].pop("sha256")
    import onnx

    model = onnx.load(os.fspath(copy / "regressor.onnx"))
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "K"
    onnx.save(model, os.fspath(copy / "regressor.onnx"))
    (copy / "facelib.json").write_text(json.dumps(card))
    detector = type("D", (), {"detect": lambda s, i: [FaceBox([0, 0, 50, 50], 1)]})()
    with RegressorEngine(copy, detector=detector) as e, pytest.raises(ModelCardError, match="returned 51 values"):
        e.process(np.zeros((100, 100, 3), np.uint8))


def test_converter_errors(nets, faceboxes_pkg: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from facelib.models.convert.regressor import build_package

    ok = {"regressor": nets["51"][1], "detector": faceboxes_pkg}
    with pytest.raises(ConversionError, match="names"):
        build_package(ok, tmp_path / "a", input_size=SIZE, output_names=NAMES_51[:40])
    with pytest.raises(ConversionError, match="empty"):
        build_package(ok, tmp_path / "b", input_size=SIZE)
    with pytest.raises(ConversionError, match="sources"):
        build_package({"regressor": nets["51"][1]}, tmp_path / "c", input_size=SIZE, output_names=NAMES_51)
    with pytest.raises(ConversionError, match=r"input_size|layout"):
        build_package(ok, tmp_path / "d", input_size=(64, 64), output_names=NAMES_51)
    with pytest.raises(ConversionError, match="FaceBoxes export"):
        build_package({**ok, "detector": nets["51"][1]}, tmp_path / "e", input_size=SIZE, output_names=NAMES_51)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError):
        build_package({**ok, "regressor": broken}, tmp_path / "f", input_size=SIZE, output_names=NAMES_51)
    with pytest.raises(ConversionError, match="unknown"):
        build_package(ok, tmp_path / "g", input_size=SIZE, output_names=NAMES_51, colour="RGB")


def test_cli_convert_regressor(nets, faceboxes_pkg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from facelib.cli import main

    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES_57) + "\n")
    args = ["convert", "regressor", "--regressor", str(nets["57"][1]), "--detector", str(faceboxes_pkg)]
    args += ["--input-size", str(SIZE[0]), str(SIZE[1]), "--layout", "NHWC", "--names-file", str(names)]
    args += ["--head-pose", "HeadYaw", "HeadPitch", "HeadRoll", "livelink", "--output", str(tmp_path / "p")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "57 outputs" in out and "JawOpenAux" in out
    card = json.loads((tmp_path / "p" / "facelib.json").read_text())
    assert card["variant"] == "regressor" and card["outputs"]["head_pose"]["unit"] == "livelink"
    bad = [*args[:-2], "--output", str(tmp_path / "q")]
    bad[bad.index("NHWC")] = "NCHW"
    assert main(bad) == 2  # fixed input dims contradict the layout
    assert "layout" in capsys.readouterr().err


def test_blendshape_capture_dispatches_to_the_regressor(pkg57: Path, media_dir: Path) -> None:
    from facelib.results import BlendshapeFrame
    from facelib.tasks.blendshape_regressor import RegressorEngine
    from facelib.tasks.blendshapes import BlendshapeCapture

    image = read_image(media_dir / "images" / "obama.jpg")
    with BlendshapeCapture(pkg57) as capture, RegressorEngine(pkg57) as engine:
        frame = capture.process(image)
        direct = engine.process(image)
    assert isinstance(frame, BlendshapeFrame) and len(frame.faces) == 1
    np.testing.assert_allclose(frame.faces[0].blendshapes, direct[0].blendshapes, atol=1e-6)
    with BlendshapeCapture(pkg57, mode="video") as capture:
        frames = list(capture.process_video(media_dir / "video" / "talking_face_01.mp4", max_frames=3))
    assert [f.index for f in frames] == [0, 1, 2]
