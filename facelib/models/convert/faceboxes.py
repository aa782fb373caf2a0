"""FaceBoxes ``.pth`` state dict -> facelib ``face_detection`` package (variant ``faceboxes``).

Source role ``weights``: the released ``FaceBoxesProd.pth`` (cleardusk/3DDFA_V2
``FaceBoxes/weights``, MIT; same layout as zisianw/FaceBoxes.PyTorch).  The checkpoint is read
with ``torch.load(weights_only=True)`` (tensors only, never arbitrary pickled objects), loaded
strictly into facelib's own :class:`~facelib.models.convert._faceboxes_net.FaceBoxesNet` and
exported to ONNX with a dynamic batch, height and width (the network is fully convolutional).
The export is checked against the torch module on a test input before the package is written.

Usage::

    facelib convert faceboxes --weights FaceBoxesProd.pth --output models/faceboxes
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facelib._version import __version__
from facelib.errors import ConversionError, require
from facelib.models import checkpoints
from facelib.models.card import ModelCard
from facelib.models.convert._output import writes_whole_package
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file
from facelib.processing.faceboxes import MEAN_BGR, PriorConfig

ONNX_NAME = "faceboxes.onnx"
SOURCE_URL = "https://github.com/cleardusk/3DDFA_V2/tree/master/FaceBoxes/weights"
#: Largest ONNX-vs-torch difference accepted at export time (float32 conv stacks).
EXPORT_TOLERANCE = 1e-3


def load_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a FaceBoxes checkpoint (weights-only unpickling; ``module.`` prefixes removed)."""
    state = checkpoints.load_state_dict(path, "Converting FaceBoxes weights", expected="FaceBoxesProd.pth")
    if not all(hasattr(v, "shape") for v in state.values()):
        raise ConversionError(f"{path} does not hold a state dict of tensors")
    return state


def build_module(state_dict: Mapping[str, Any]) -> Any:
    """facelib's FaceBoxesNet in eval mode with ``state_dict`` loaded strictly."""
    require("torch", "convert", "Converting FaceBoxes weights")
    from facelib.models.convert._faceboxes_net import FaceBoxesNet

    net = FaceBoxesNet()
    try:
        net.load_state_dict(dict(state_dict), strict=True)
    except RuntimeError as exc:
        raise ConversionError(f"the checkpoint does not fit the FaceBoxes layout: {exc}") from exc
    return net.eval()


def export_onnx(net: Any, path: Path, opset: int = 17) -> None:
    """Export ``net`` with input ``input`` (N, 3, H, W) and outputs ``loc``, ``conf``; IR 10."""
    torch: Any = require("torch", "convert", "Exporting FaceBoxes to ONNX")
    import onnx

    dummy = torch.zeros(1, 3, 256, 320)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # legacy exporter chosen on purpose
            torch.onnx.export(
                net,
                (dummy,),
                os.fspath(raw),
                input_names=["input"],
                output_names=["loc", "conf"],
                dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "loc": {0: "N", 1: "P"}, "conf": {0: "N", 1: "P"}},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        model = onnx.load(os.fspath(raw))
    for output, last in zip(model.graph.output, (4, 2)):  # the exporter leaves these symbolic
        output.type.tensor_type.shape.dim[2].dim_value = last
    model.ir_version = 10
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, os.fspath(path))


def check_export(net: Any, path: Path, sizes: tuple[tuple[int, int], ...] = ((240, 320), (333, 517))) -> float:
    """Largest |ONNX Runtime - torch| over ``loc`` and ``conf`` on seeded inputs of ``sizes``."""
    torch: Any = require("torch", "convert", "Checking the FaceBoxes export")
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in sizes:
        x = rng.uniform(-128, 128, size=(1, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in net(torch.from_numpy(x))]
        got = session.run(["loc", "conf"], {"input": x})
        for a, b in zip(ref, got):
            if a.shape != b.shape:
                raise ConversionError(f"exported FaceBoxes gives shape {b.shape}, torch {a.shape}")
            worst = max(worst, float(np.abs(a - b).max()))
    if worst > EXPORT_TOLERANCE:
        raise ConversionError(f"exported FaceBoxes differs from torch by {worst:.3g} (> {EXPORT_TOLERANCE})")
    return worst


@writes_whole_package
def build_package(
    sources: Mapping[str, Path], output_dir: Path, *, progress: bool = False, **options: Any
) -> ModelPackage:
    """Convert ``sources["weights"]`` (FaceBoxesProd.pth) into a package in ``output_dir``.

    Options: ``score_threshold`` (0.5), ``iou_threshold`` (0.3), ``max_size`` ((720, 1080)
    height, width: inputs larger than this are downscaled as upstream's 3DDFA_V2 wrapper does;
    None disables it), ``opset`` (17).
    """
    if "weights" not in sources:
        raise ConversionError(f"FaceBoxes conversion needs sources['weights'] (a .pth); got {sorted(sources)}")
    unknown = set(options) - {"score_threshold", "iou_threshold", "max_size", "opset"}
    if unknown:
        raise ConversionError(f"unknown FaceBoxes conversion options {sorted(unknown)}")
    weights = Path(sources["weights"])
    output_dir = Path(output_dir)
    state = load_state_dict(weights)
    net = build_module(state)
    onnx_path = output_dir / ONNX_NAME
    export_onnx(net, onnx_path, opset=int(options.get("opset", 17)))
    error = check_export(net, onnx_path)
    source = {
        "weights": {"file": weights.name, "sha256": sha256_file(weights), "url": SOURCE_URL},
        "upstream": "cleardusk/3DDFA_V2 FaceBoxes (zisianw/FaceBoxes.PyTorch layout)",
    }
    return write_package(onnx_path, output_dir, source, {"export_max_abs_error": error}, **options)


def write_package(
    onnx_path: Path, output_dir: Path, source: dict[str, Any], metadata: dict[str, Any], **options: Any
) -> ModelPackage:
    """Write the card of a FaceBoxes ONNX already in ``output_dir`` (name ``faceboxes.onnx``)."""
    output_dir = Path(output_dir)
    inputs, outputs = read_onnx_specs(onnx_path)
    max_size = options.get("max_size", (720, 1080))
    card = ModelCard(
        name="faceboxes",
        task="face_detection",
        variant="faceboxes",
        licence="MIT",
        source={
            **source,
            "converter": "facelib.models.convert.faceboxes",
            "facelib_version": __version__,
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
        },
        files={
            "detector": {
                "path": ONNX_NAME,
                "sha256": sha256_file(onnx_path),
                "inputs": [s.to_dict() for s in inputs],
                "outputs": [s.to_dict() for s in outputs],
                "shapes": {"input": {"min": [1, 3, 32, 32], "opt": [1, 3, 720, 1080], "max": [1, 3, 2160, 3840]}},
            }
        },
        preprocessing={
            "colour_order": "BGR",
            "layout": "NCHW",
            "mean": list(MEAN_BGR),
            "std": [1.0, 1.0, 1.0],
            "max_size": list(max_size) if max_size else None,
        },
        outputs={
            "loc": "(N, P, 4) SSD box offsets (variances below)",
            "conf": "(N, P, 2) class logits; face probability = softmax(conf)[..., 1]",
            "priors": PriorConfig().to_dict(),
            "score_threshold": float(options.get("score_threshold", 0.5)),
            "iou_threshold": float(options.get("iou_threshold", 0.3)),
            "top_k": 5000,
            "keep_top_k": 750,
            "nms_pixel_offset": 1.0,
        },
        metadata=metadata,
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()


def package_from_onnx(onnx_file: Path, output_dir: Path, **options: Any) -> ModelPackage:
    """Package an already exported FaceBoxes ONNX (input ``input``, outputs ``loc``/``conf``).

    No torch needed.  The file is copied into ``output_dir``; its I/O is checked first.
    """
    import shutil

    onnx_file = Path(onnx_file)
    inputs, outputs = read_onnx_specs(onnx_file)
    names_in, names_out = [s.name for s in inputs], [s.name for s in outputs]
    if names_in != ["input"] or names_out[:2] != ["loc", "conf"] or len(inputs[0].shape) != 4:
        raise ConversionError(
            f"{onnx_file} is not a FaceBoxes export facelib understands: inputs {names_in}, outputs "
            f"{names_out} (expected input 'input' (N, 3, H, W) and outputs 'loc', 'conf'; "
            "export it with 'facelib convert faceboxes')"
        )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / ONNX_NAME
    shutil.copyfile(onnx_file, target)
    source = {"onnx": {"file": onnx_file.name, "sha256": sha256_file(onnx_file)}}
    return write_package(target, output_dir, source, {}, **options)
