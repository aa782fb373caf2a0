"""Model packages built from the shared data, for tests (each in a folder the caller chooses).

Every builder takes ``models_dir`` (``shared/assets/models``) or ``reference_dir``
(``shared/reference``) and an output folder, and returns the package root.  The converters
that need torch import it lazily; callers skip with ``pytest.importorskip("torch")`` first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

#: FSA-Net role -> file stem under ``models/fsanet``.
FSANET_STEMS = {
    "capsule": "fsanet_capsule_3_16_2_21_5",
    "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
    "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
}
#: FSA-Net capsule's input and output names.
FSANET_INPUT, FSANET_OUTPUT = "input_1:0", "pred_pose/mul_24:0"


def build_fsanet(models_dir: Path, out: Path, suffix: str = ".onnx", **options: object) -> Path:
    """The three-variant FSA-Net head-pose package (``suffix`` ``.pb`` converts the TF graphs)."""
    from facelib.models.convert.fsanet import build_package

    sources = {role: models_dir / "fsanet" / f"{stem}{suffix}" for role, stem in FSANET_STEMS.items()}
    return build_package(sources, out, **options).root  # type: ignore[arg-type]


def build_ultraface(models_dir: Path, out: Path, variant: str = "RFB-320") -> Path:
    """The UltraFace face-detector package."""
    from facelib.models.convert.ultraface import VARIANTS, build_package

    return build_package({"detector": models_dir / "ultraface" / VARIANTS[variant][0]}, out, variant=variant).root


def build_mediapipe(models_dir: Path, out: Path) -> Path:
    """The MediaPipe Face Landmarker package from the shared ``.task`` and its prebuilt ONNX."""
    from facelib.models.convert.mediapipe import build_package

    mp = models_dir / "mediapipe"
    sources = {
        "task": mp / "face_landmarker.task",
        "detector": mp / "face_detector.onnx",
        "landmarks": mp / "face_landmarks_detector.onnx",
        "blendshapes": mp / "face_blendshapes.onnx",
    }
    return build_package(sources, out).root


def build_faceformer(reference_dir: Path, out: Path) -> Path:
    """FaceFormer (VOCASET, 4 encoder heads) from the tiny seeded checkpoint of the references."""
    from facelib.models.convert.faceformer import build_package

    checkpoint = reference_dir / "faceformer_vocaset_tiny_seed1.pth"
    return build_package({"checkpoint": checkpoint}, out, dataset="vocaset", encoder_heads=4).root


def build_fomm(reference_dir: Path, out: Path) -> Path:
    """First Order Motion Model from the tiny seeded checkpoint and config of the references."""
    from facelib.models.convert.fomm import build_package

    sources = {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"}
    return build_package(sources, out, config=reference_dir / "fomm_tiny_seed1.yaml").root


def build_regressor(models_dir: Path, out: Path) -> Path:
    """A blendshape regressor package: the real FaceBoxes detector + a small seeded MobileNetV3-like
    regressor (:mod:`facelib.testing.regressor_net`), NHWC BGR input, head pose among the outputs."""
    from facelib.models.convert.faceboxes import build_package as build_faceboxes
    from facelib.models.convert.regressor import build_package
    from facelib.testing.regressor_net import NAMES_57, SIZE, export, make_net

    out.mkdir(parents=True, exist_ok=True)
    faceboxes = build_faceboxes({"weights": models_dir / "faceboxes" / "FaceBoxesProd.pth"}, out / "faceboxes")
    onnx = export(make_net(len(NAMES_57), seed=1, nhwc=True), out / "regressor.onnx", (1, *SIZE, 3))
    return build_package(
        {"regressor": onnx, "detector": faceboxes.root},
        out / "regressor",
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
    ).root


def head_pose_card_package(models_dir: Path, root: Path) -> Path:
    """A hand-written card over two shared ONNX files: FSA-Net capsule (batch 1..8, opt 4) and
    UltraFace RFB-320 (static ``[1, 3, 240, 320]``), for compile-cache tests."""
    from facelib.models import sha256_file

    root.mkdir(parents=True)
    shutil.copy(models_dir / "fsanet" / f"{FSANET_STEMS['capsule']}.onnx", root / "capsule.onnx")
    shutil.copy(models_dir / "ultraface" / "version-RFB-320.onnx", root / "detector.onnx")
    card = {
        "format_version": 1,
        "name": "fsanet-test",
        "task": "head_pose",
        "variant": "capsule",
        "licence": "Apache-2.0",
        "source": {"url": "file://shared"},
        "files": {
            "capsule": {
                "path": "capsule.onnx",
                "sha256": sha256_file(root / "capsule.onnx"),
                "inputs": [{"name": FSANET_INPUT, "shape": ["N", 64, 64, 3], "dtype": "float32"}],
                "outputs": [{"name": FSANET_OUTPUT, "shape": ["N", 3], "dtype": "float32"}],
                "shapes": {FSANET_INPUT: {"min": [1, 64, 64, 3], "opt": [4, 64, 64, 3], "max": [8, 64, 64, 3]}},
            },
            "detector": {
                "path": "detector.onnx",
                "sha256": sha256_file(root / "detector.onnx"),
                "inputs": [{"name": "input", "shape": [1, 3, 240, 320], "dtype": "float32"}],
                "outputs": [
                    {"name": "scores", "shape": [1, 4420, 2], "dtype": "float32"},
                    {"name": "boxes", "shape": [1, 4420, 4], "dtype": "float32"},
                ],
                "shapes": {"input": {"min": [1, 3, 240, 320], "opt": [1, 3, 240, 320], "max": [1, 3, 240, 320]}},
            },
        },
        "preprocessing": {},
        "outputs": {},
        "metadata": {},
    }
    (root / "facelib.json").write_text(json.dumps(card))
    return root
