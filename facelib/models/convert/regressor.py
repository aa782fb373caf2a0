"""Package a user's face-crop -> blendshape regressor (ONNX) with a face detector.

Sources:

* ``regressor``: an ONNX model with one image input (N, 3, H, W) or (N, H, W, 3) and an output
  of K values per face;
* ``detector``: a facelib ``face_detection`` package directory (copied in), or a FaceBoxes ONNX
  exported by ``facelib convert faceboxes`` (packaged on the fly).

The card (schema: docs/regressor-packages.md) records how to feed the regressor and what its
outputs mean; the package is validated (by :class:`~facelib.models.regressor_spec.RegressorSpec`)
before this function returns.  No torch is needed.

Usage::

    facelib convert regressor --regressor mnv3.onnx --detector models/faceboxes \\
        --input-size 224 224 --colour-order RGB --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 \\
        --margin 0.2 --names-file names.txt --output models/my-capture
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from facelib._version import __version__
from facelib.errors import ConversionError, ModelError
from facelib.models.card import CARD_FILENAME, ModelCard
from facelib.models.convert._output import writes_whole_package
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file
from facelib.processing.arkit import arkit_index

REGRESSOR_NAME = "regressor.onnx"
DETECTOR_DIR = "detector"
#: Detector variants a regressor package can bundle (what BlendshapeCapture's regressor engine runs).
DETECTOR_VARIANTS = ("faceboxes",)


def _detector(source: Path, output_dir: Path, options: Mapping[str, Any]) -> ModelPackage:
    target = output_dir / DETECTOR_DIR
    if target.exists():
        shutil.rmtree(target)
    if source.is_dir() or source.name == CARD_FILENAME:
        root = source if source.is_dir() else source.parent
        package = ModelPackage.load(root)
        if package.card.task != "face_detection":
            raise ConversionError(f"{root} is a {package.card.task!r} package, not a face detector")
        if package.card.variant not in DETECTOR_VARIANTS:
            raise ConversionError(
                f"{root} holds the face detector {package.card.name!r} (variant {package.card.variant!r}); "
                "regressor packages bundle "
                f"{' or '.join(DETECTOR_VARIANTS)} detectors (facelib convert faceboxes FaceBoxesProd.pth -o DIR, "
                "or pass the FaceBoxes .onnx)"
            )
        shutil.copytree(root, target, ignore=shutil.ignore_patterns(".facelib-cache"))
        return ModelPackage.load(target).check()
    if source.suffix == ".onnx":
        from facelib.models.convert.faceboxes import package_from_onnx

        return package_from_onnx(source, target, **options)
    raise ConversionError(f"detector source {source} must be a face_detection package directory or a FaceBoxes .onnx")


@writes_whole_package
def build_package(
    sources: Mapping[str, Path],
    output_dir: Path,
    *,
    progress: bool = False,
    input_size: Sequence[int] = (224, 224),
    output_names: Sequence[str] = (),
    colour_order: str = "RGB",
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
    pixel_scale: float = 1.0 / 255.0,
    layout: str = "NCHW",
    margin: float = 0.0,
    square: bool = True,
    interpolation: str = "linear",
    clip: bool = True,
    activation: str = "none",
    output: str | None = None,
    head_pose: Mapping[str, Any] | None = None,
    name: str = "regressor",
    licence: str = "unknown",
    detector_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> ModelPackage:
    """Build a ``blendshapes`` / ``regressor`` package in ``output_dir``.

    Parameters
    ----------
    input_size:
        (height, width) of the regressor input.
    output_names:
        The K output names in output order (ARKit names in any case / separator style;
        other names are kept as extras; see docs/regressor-packages.md).
    colour_order, mean, std, pixel_scale, layout:
        Input tensor = ``(pixel * pixel_scale - mean) / std`` in ``colour_order``, ``layout``.
    margin, square, interpolation:
        Crop rule (:mod:`facelib.processing.regressor_crop`).
    clip, activation:
        Clip the ARKit weights to [0, 1]; apply ``"sigmoid"`` to raw outputs first, or ``"none"``.
    output:
        Name of the ONNX output to read (default: the first).
    head_pose:
        ``{"names": [yaw, pitch, roll output names], "unit": "degrees" | "radians" | "livelink"}``.
    """
    if options:
        raise ConversionError(f"unknown regressor packaging options {sorted(options)}")
    missing = {"regressor", "detector"} - set(sources)
    if missing:
        raise ConversionError(f"regressor packaging needs sources {sorted(missing)} (got {sorted(sources)})")
    names = [str(n) for n in output_names]
    head_names = [str(n) for n in (head_pose or {}).get("names", [])]
    if not names:
        raise ConversionError("output_names is empty: list the regressor's outputs in order")
    regressor = Path(sources["regressor"])
    inputs, outputs = read_onnx_specs(regressor)  # ModelFileError for missing / corrupt files
    if len(inputs) != 1:
        raise ConversionError(f"{regressor} has {len(inputs)} inputs; a regressor takes exactly one image input")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    detector = _detector(Path(sources["detector"]), output_dir, dict(detector_options or {}))
    target = output_dir / REGRESSOR_NAME
    shutil.copyfile(regressor, target)
    h, w = (int(v) for v in input_size)
    shape = [1, 3, h, w] if layout.upper() == "NCHW" else [1, h, w, 3]
    det_file = detector.card.file("detector")
    card = ModelCard(
        name=name,
        task="blendshapes",
        variant="regressor",
        licence=licence,
        source={
            "regressor": {"file": regressor.name, "sha256": sha256_file(regressor)},
            "detector": {"name": detector.card.name, "variant": detector.card.variant},
            "converter": "facelib.models.convert.regressor",
            "facelib_version": __version__,
        },
        files={
            "regressor": {
                "path": REGRESSOR_NAME,
                "sha256": sha256_file(target),
                "inputs": [s.to_dict() for s in inputs],
                "outputs": [s.to_dict() for s in outputs],
                "shapes": {inputs[0].name: {"min": shape, "opt": shape, "max": [16, *shape[1:]]}},
            },
            "detector": {
                "path": f"{DETECTOR_DIR}/{det_file.path}",
                "sha256": det_file.sha256,
                "inputs": [s.to_dict() for s in det_file.inputs],
                "outputs": [s.to_dict() for s in det_file.outputs],
            },
        },
        preprocessing={
            "input_size": [h, w],
            "colour_order": colour_order.upper(),
            "layout": layout.upper(),
            "pixel_scale": float(pixel_scale),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
            "margin": float(margin),
            "square": bool(square),
            "interpolation": interpolation,
            "detector": {"package": DETECTOR_DIR},
        },
        outputs={
            "names": names,
            "output": output or outputs[0].name,
            "clip": bool(clip),
            "activation": activation,
            **({"head_pose": dict(head_pose)} if head_pose else {}),
            "non_arkit_names": [n for n in names if arkit_index(n) is None and n not in head_names],
        },
    )
    card.write(output_dir)
    package = ModelPackage.load(output_dir).check()
    from facelib.models.regressor_spec import RegressorSpec

    try:
        RegressorSpec.from_package(package)
    except ModelError as exc:
        raise ConversionError(f"the regressor package would not be usable: {exc}") from exc
    return package
