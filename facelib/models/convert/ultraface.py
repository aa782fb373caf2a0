"""UltraFace (Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT) -> ``face_detection`` package.

Source role ``detector``: one of the released ONNX files (``models/onnx/version-RFB-320.onnx``,
``version-RFB-640.onnx``, the ``_simplified`` or ``_without_postprocessing`` exports).  The file
is copied unchanged (its sha256 stays the upstream one); the card records the input size, the
normalisation, whether the graph already decodes boxes, the prior layout and the reference
post-processing (threshold 0.7, hard NMS IoU 0.3, 200 candidates).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facelib.errors import ConversionError, InputError
from facelib.models.card import ModelCard
from facelib.models.convert._output import writes_whole_package
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file
from facelib.processing import ultraface

UPSTREAM_REPO = "https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"
UPSTREAM_COMMIT = "0f9ca4a9fc80170fd505168fd1132b837141f7df"
#: Variant -> (upstream file name, input (width, height)).
VARIANTS: dict[str, tuple[str, tuple[int, int]]] = {
    "RFB-320": ("version-RFB-320.onnx", (320, 240)),
    "RFB-320-simplified": ("version-RFB-320_simplified.onnx", (320, 240)),
    "RFB-640": ("version-RFB-640.onnx", (640, 480)),
    "slim-320": ("version-slim-320.onnx", (320, 240)),
}


def upstream_url(variant: str) -> str:
    """Download URL of the released ONNX file of ``variant`` at the pinned commit."""
    return f"{UPSTREAM_REPO}/raw/{UPSTREAM_COMMIT}/models/onnx/{VARIANTS[variant][0]}"


@writes_whole_package
def build_package(
    sources: Mapping[str, Path],
    output_dir: Path,
    *,
    progress: bool = False,
    variant: str = "RFB-320",
    **options: Any,
) -> ModelPackage:
    """Make an UltraFace model package at ``output_dir`` from ``sources["detector"]`` (.onnx).

    Raises
    ------
    InputError
        Unknown variant or option, missing source.
    ConversionError
        The ONNX file does not look like an UltraFace export for ``variant``.
    """
    import onnx

    from facelib._version import __version__

    if options:
        raise InputError(f"unknown UltraFace converter options: {sorted(options)}")
    if variant not in VARIANTS:
        raise InputError(f"unknown UltraFace variant {variant!r}; known: {list(VARIANTS)}")
    if set(sources) != {"detector"}:
        raise InputError(f"UltraFace takes one source role 'detector', got {sorted(sources)}")
    source = Path(sources["detector"])
    if not source.is_file():
        raise InputError(f"UltraFace source not found: {source}")
    if source.suffix != ".onnx":
        raise InputError(f"UltraFace source must be an .onnx file from {UPSTREAM_REPO}/models/onnx, got {source.name}")
    inputs, outputs = read_onnx_specs(source)
    file_name, (width, height) = VARIANTS[variant]
    want_shape = (1, 3, height, width)
    real_inputs = [s for s in inputs if s.name == "input"]
    if not real_inputs or tuple(real_inputs[0].shape) != want_shape:
        raise ConversionError(
            f"{source.name}: expected an input 'input' of shape {list(want_shape)} for UltraFace {variant}, "
            f"found {[(s.name, list(s.shape)) for s in inputs][:3]}"
        )
    out_names = {s.name for s in outputs}
    if not {"scores", "boxes"} <= out_names:
        raise ConversionError(f"{source.name}: expected outputs 'scores' and 'boxes', found {sorted(out_names)}")
    model = onnx.load(os.fspath(source))
    decoded = any(node.op_type == "Exp" for node in model.graph.node)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / file_name
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    digest = sha256_file(target)
    by_name = {s.name: s for s in outputs}
    card = ModelCard(
        name=f"ultraface-{variant.lower()}",
        task="face_detection",
        variant=variant,
        licence="MIT",
        source={
            "repository": UPSTREAM_REPO,
            "commit": UPSTREAM_COMMIT,
            "files": {"detector": {"file": source.name, "sha256": digest, "upstream_url": upstream_url(variant)}},
            "converter": "facelib.models.convert.ultraface",
            "facelib_version": __version__,
            "tool": "copied unchanged",
        },
        files={
            "detector": {
                "path": file_name,
                "sha256": digest,
                "inputs": [{"name": "input", "shape": list(want_shape), "dtype": "float32"}],
                "outputs": [
                    {"name": n, "shape": list(by_name[n].shape), "dtype": "float32"} for n in ("scores", "boxes")
                ],
            }
        },
        preprocessing={
            "size": [width, height],
            "resize": "stretch, bilinear (no letterbox)",
            "colour_order": "RGB",
            "layout": "NCHW",
            "mean": ultraface.MEAN,
            "std": ultraface.STD,
        },
        outputs={
            "decoded": decoded,
            "scores": "scores",
            "boxes": "boxes",
            "face_class": 1,
            "box_format": "x1, y1, x2, y2 normalised to the input" if decoded else "raw SSD regressions",
            "priors": {
                "strides": list(ultraface.STRIDES),
                "min_boxes": [list(m) for m in ultraface.MIN_BOXES],
                "center_variance": ultraface.CENTER_VARIANCE,
                "size_variance": ultraface.SIZE_VARIANCE,
            },
            "postprocessing": {
                "score_threshold": ultraface.SCORE_THRESHOLD,
                "nms": "hard",
                "iou_threshold": ultraface.IOU_THRESHOLD,
                "candidate_size": ultraface.CANDIDATE_SIZE,
                "iou_eps": ultraface.NMS_EPS,
            },
        },
        metadata={"paper": "Ultra-Light-Fast-Generic-Face-Detector-1MB (Linzaer, 2019)"},
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
