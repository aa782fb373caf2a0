"""Convert Google's ``face_landmarker.task`` into a facelib model package (task ``blendshapes``).

Sources
-------
``task`` (required)
    The official bundle (a zip of ``face_detector.tflite``, ``face_landmarks_detector.tflite``,
    ``face_blendshapes.tflite`` and ``geometry_pipeline_metadata_landmarks.binarypb``).
``detector``, ``landmarks``, ``blendshapes`` (optional)
    Already converted ONNX files of the three models.  Each one given is used as is (after a
    load check); each one missing is converted from the bundle's ``.tflite`` with tf2onnx (the
    ``convert`` extra: ``python -m tf2onnx.convert --tflite X --opset 17``).

The package holds the three ONNX files, the three ``.tflite`` models they were made from (card
``metadata["tflite"]``, :mod:`facelib.models.tflite`: which TFLite tensor each ONNX input and
output is, so the LiteRT backend plugin runs Google's own models behind the ONNX interface),
``face_geometry.json`` (the canonical face model and its
Procrustes weights, read from the bundle's geometry metadata) and a card with every constant the
task uses (anchors, thresholds, ROI scales, crop sizes, the 146 blendshape landmarks, the
camera of the geometry pipeline, the blendshape names in MediaPipe order and ARKit order).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facelib._version import __version__
from facelib.errors import ConversionError, ModelFileError, require
from facelib.models.card import ModelCard, ModelFile
from facelib.models.convert._graph import set_nodes
from facelib.models.convert._output import writes_whole_package
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file
from facelib.models.tflite import METADATA_KEY, TFLiteSource, match_by_name, read_interface
from facelib.processing.arkit import ARKIT_NAMES, MEDIAPIPE_NAMES
from facelib.processing.face_geometry import NEAR, VERTICAL_FOV_DEGREES, CanonicalFace
from facelib.processing.face_mesh import BLENDSHAPE_LANDMARKS

#: The official float16 bundle this converter was written for.
SOURCE_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
SOURCE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
DEFAULT_NAME = "mediapipe-face-landmarker"
GEOMETRY_FILE = "face_geometry.json"
#: Bundle member -> (package role, package file name).
MEMBERS = {
    "face_detector.tflite": ("detector", "face_detector.onnx"),
    "face_landmarks_detector.tflite": ("landmarks", "face_landmarks_detector.onnx"),
    "face_blendshapes.tflite": ("blendshapes", "face_blendshapes.onnx"),
}
GEOMETRY_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
#: Refuse bundle members larger than this (a zip bomb, or not the right file).
MAX_MEMBER_BYTES = 64 << 20
#: Largest landmark-model batch declared for compiling backends.
MAX_FACES_PER_BATCH = 8


def read_bundle(task: Path) -> dict[str, bytes]:
    """The bundle's four known members by name, read in memory (nothing is extracted to disk
    under a name taken from the archive, so paths like ``../x`` cannot escape)."""
    if not task.is_file():
        raise ConversionError(f"MediaPipe task bundle not found: {task}")
    if not zipfile.is_zipfile(task):
        raise ConversionError(
            f"{task} is not a MediaPipe .task bundle (not a zip archive); "
            f"download face_landmarker.task from {SOURCE_URL}"
        )
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(task) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            missing = [m for m in (*MEMBERS, GEOMETRY_MEMBER) if m not in infos]
            if missing:
                raise ConversionError(f"{task} lacks {missing}; is it face_landmarker.task? It has {sorted(infos)}")
            for name in (*MEMBERS, GEOMETRY_MEMBER):
                info = infos[name]
                if info.file_size > MAX_MEMBER_BYTES:
                    raise ConversionError(f"{task}: member {name} is {info.file_size} bytes, too large to be a model")
                out[name] = archive.read(info)
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
        raise ConversionError(f"cannot read {task} as a zip archive: {exc}") from exc
    return out


def _tflite_to_onnx(tflite: Path, onnx_path: Path, opset: int) -> None:
    require("tensorflow", "convert", "Converting MediaPipe .tflite models")
    require("tf2onnx", "convert", "Converting MediaPipe .tflite models")
    cmd = [sys.executable, "-m", "tf2onnx.convert", "--tflite", os.fspath(tflite)]
    cmd += ["--output", os.fspath(onnx_path), "--opset", str(opset)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not onnx_path.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise ConversionError(f"tf2onnx failed converting {tflite.name}:\n{tail}")


def _finalise_onnx(path: Path, optimize: bool) -> int:
    """Check the file loads as ONNX, apply :func:`prelu_to_depthwise` when ``optimize``, and keep
    the IR version at most 10 (what onnxruntime 1.31 reads).  Returns the number of PRelu rewritten."""
    import onnx

    try:
        model = onnx.load(os.fspath(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ConversionError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    rewritten = prelu_to_depthwise(model) if optimize else 0
    if model.ir_version > 10 or rewritten:
        model.ir_version = min(model.ir_version, 10)
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise ConversionError(f"{path.name} is not a valid ONNX model after conversion: {exc}") from exc
        onnx.save(model, os.fspath(path))
    return rewritten


def prelu_to_depthwise(model: Any) -> int:
    """Rewrite per-channel ``PRelu`` nodes of an NCHW ONNX graph into ops ONNX Runtime runs fast.

    ``PRelu(x, s) = (1 - s) * Relu(x) + s * x`` exactly; both products are 1x1 depthwise
    convolutions, which ONNX Runtime keeps in its blocked (NCHWc) layout and fuses with the
    addition, whereas its PRelu kernel is a slow broadcast loop that also forces layout
    reorders around it.  On the face-mesh model this takes the run time from about 21 ms to
    8 ms on one CPU core, with outputs equal to 2e-4 crop pixels.  Only PRelu nodes whose slope
    is a constant of shape (1, C, 1, 1) or (C, 1, 1) are changed.

    Where every ``1 - s`` is positive (26 of the mesh model's 69 PRelu) the first product is
    written ``Relu((1 - s) * x)``, which ONNX Runtime fuses into one convolution instead of a
    separate pass over ``x``; it is the same number to the bit, since rounding a product by a
    positive factor keeps its sign (:func:`_positive_part`).

    Returns the number of nodes rewritten (``model`` is changed in place).
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    nodes = []
    count = 0
    for node in graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" and len(node.input) == 2 else None
        dims = list(slope.dims) if slope is not None else []
        if (
            slope is None
            or len(dims) not in (3, 4)
            or any(d != 1 for d in dims[-2:])
            or (len(dims) == 4 and dims[0] != 1)
        ):
            nodes.append(node)
            continue
        values = numpy_helper.to_array(slope).astype(np.float32).reshape(-1)
        channels = values.size
        out = node.output[0]
        graph.initializer.append(numpy_helper.from_array((1.0 - values).reshape(channels, 1, 1, 1), f"{out}__pos_w"))
        graph.initializer.append(numpy_helper.from_array(values.reshape(channels, 1, 1, 1), f"{out}__all_w"))
        nodes += [
            *_positive_part(node.input[0], out, node.name, channels, bool((1.0 - values > 0).all())),
            helper.make_node(
                "Conv",
                [node.input[0], f"{out}__all_w"],
                [f"{out}__all"],
                name=f"{node.name}__all",
                group=channels,
                kernel_shape=[1, 1],
            ),
            helper.make_node("Add", [f"{out}__pos", f"{out}__all"], [out], name=f"{node.name}__add"),
        ]
        count += 1
    if count:
        set_nodes(graph, nodes)
    return count


def _positive_part(x: str, out: str, name: str, channels: int, positive: bool) -> list[Any]:
    """Nodes computing ``f"{out}__pos" = (1 - s) * Relu(x)`` (weights ``f"{out}__pos_w"``).

    With every ``1 - s > 0`` as ``Relu((1 - s) * x)``: for a factor c > 0 the rounded product
    ``c * x`` has the sign of ``x``, so ``c * max(x, 0)`` and ``max(c * x, 0)`` are the same
    float32 (up to the sign of a zero, which the following addition drops), and ONNX Runtime
    runs a convolution followed by Relu as one fused kernel.  Otherwise ``Relu`` comes first.
    """
    from onnx import helper

    def conv(source: str, target: str) -> Any:
        return helper.make_node(
            "Conv", [source, f"{out}__pos_w"], [target], name=f"{name}__pos", group=channels, kernel_shape=[1, 1]
        )

    if positive:
        return [
            conv(x, f"{out}__scaled"),
            helper.make_node("Relu", [f"{out}__scaled"], [f"{out}__pos"], name=f"{name}__relu"),
        ]
    return [helper.make_node("Relu", [x], [f"{out}__relu"], name=f"{name}__relu"), conv(f"{out}__relu", f"{out}__pos")]


def _tensor_names(role: str, path: Path) -> dict[str, str]:
    """Semantic tensor names of a converted model, found by shape (tf2onnx names are not stable)."""
    inputs, outputs = read_onnx_specs(path)
    names: dict[str, str] = {"input": inputs[0].name}
    for spec in outputs:
        last = spec.shape[-1] if spec.shape else None
        if role == "detector":
            names["regressors" if last == 16 else "scores"] = spec.name
        elif role == "landmarks":
            if last == 1434:
                names["landmarks"] = spec.name
            elif len(spec.shape) == 4:
                names["presence"] = spec.name
            else:
                names["tongue_out"] = spec.name
        else:
            names["scores"] = spec.name
    wanted = {
        "detector": ("regressors", "scores"),
        "landmarks": ("landmarks", "presence"),
        "blendshapes": ("scores",),
    }[role]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise ConversionError(
            f"{path.name} does not look like the MediaPipe {role} model: no output for {missing} "
            f"(outputs {[(s.name, s.shape) for s in outputs]})"
        )
    return names


def _keep_tflite(model: bytes, path: Path, onnx_path: Path, inputs: Any, outputs: Any) -> dict[str, Any]:
    """Write the source ``model`` to ``path`` and return its card record (:class:`TFLiteSource`):
    each ONNX input/output matched to the TFLite tensor of the same name and shape."""
    tfl_inputs, tfl_outputs = read_interface(model, path.name)
    what = f"{onnx_path.name} (from {path.name})"
    source = TFLiteSource(
        path=path.name,
        sha256=hashlib.sha256(model).hexdigest(),
        onnx_sha256=sha256_file(onnx_path),
        inputs=match_by_name(inputs, tfl_inputs, "input", what),
        outputs=match_by_name(outputs, tfl_outputs, "output", what),
    )
    path.write_bytes(model)
    return source.to_dict()


@writes_whole_package
def build_package(
    sources: Mapping[str, Path],
    output_dir: Path,
    *,
    progress: bool = False,
    opset: int = 17,
    optimize: bool = True,
    name: str = DEFAULT_NAME,
    **options: Any,
) -> ModelPackage:
    """Build the package in ``output_dir`` (see the module docstring for ``sources``).

    ``optimize`` rewrites the mesh model's PRelu activations into an equivalent form ONNX
    Runtime runs 2.5x faster (:func:`prelu_to_depthwise`); ``opset`` is passed to tf2onnx.

    Raises
    ------
    ConversionError
        The bundle is not a zip, lacks a member, a model cannot be converted or an ONNX file
        given does not look like the expected model.
    MissingDependencyError
        A model must be converted and tensorflow / tf2onnx are not installed.
    """
    if options:
        raise ConversionError(f"unknown options for the MediaPipe converter: {sorted(options)}")
    unknown = sorted(set(sources) - {"task", "detector", "landmarks", "blendshapes"})
    if unknown or "task" not in sources:
        raise ConversionError(
            f"the MediaPipe converter takes sources 'task' (required), 'detector', 'landmarks', 'blendshapes'; "
            f"got {sorted(sources)}"
        )
    from facelib._progress import progress as bar

    task = Path(sources["task"])
    bundle = read_bundle(task)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, ModelFile] = {}
    tensors: dict[str, dict[str, str]] = {}
    made_from: dict[str, str] = {}
    tflite_sources: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="facelib-mediapipe-") as tmp:
        for member, (role, filename) in bar(list(MEMBERS.items()), desc="converting", enabled=progress):
            target = output_dir / filename
            given = sources.get(role)
            if given is not None:
                given = Path(given)
                if not given.is_file():
                    raise ConversionError(f"{role} ONNX file not found: {given}")
                if given.resolve() != target.resolve():
                    shutil.copyfile(given, target)
                made_from[role] = f"prebuilt ONNX {given.name} (sha256 {sha256_file(given)})"
            else:
                tflite = Path(tmp) / member  # fixed, known name: never a path from the archive
                tflite.write_bytes(bundle[member])
                _tflite_to_onnx(tflite, target, opset)
                made_from[role] = f"{member} from the bundle, tf2onnx --tflite --opset {opset}"
            if _finalise_onnx(target, optimize):
                made_from[role] += "; PRelu rewritten as depthwise 1x1 convolutions (exact identity)"
            try:
                tensors[role] = _tensor_names(role, target)
                inputs, outputs = read_onnx_specs(target)
            except ModelFileError as exc:
                raise ConversionError(f"{role}: {exc}") from exc
            shapes = {}
            if role == "landmarks":
                shapes = {
                    inputs[0].name: {
                        "min": [1, 256, 256, 3],
                        "opt": [1, 256, 256, 3],
                        "max": [MAX_FACES_PER_BATCH, 256, 256, 3],
                    }
                }
            files[role] = ModelFile(filename, inputs, outputs, sha256_file(target), shapes)
            try:
                tflite_sources[role] = _keep_tflite(bundle[member], output_dir / member, target, inputs, outputs)
            except ConversionError as exc:
                if given is None:  # our own conversion always lines up
                    raise
                made_from[role] += f"; no TFLite source kept (the LiteRT backend cannot run it): {exc}"
    canonical = CanonicalFace.from_binarypb(bundle[GEOMETRY_MEMBER])
    geometry_path = output_dir / GEOMETRY_FILE
    geometry_path.write_text(json.dumps(canonical.to_dict()) + "\n", encoding="utf-8")
    files["geometry"] = ModelFile(GEOMETRY_FILE, sha256=sha256_file(geometry_path))

    task_sha = sha256_file(task)
    card = ModelCard(
        name=name,
        task="blendshapes",
        variant="mediapipe",
        licence="Apache-2.0",
        source={
            "url": SOURCE_URL,
            "sha256": task_sha,
            "file": task.name,
            "official_sha256": SOURCE_SHA256,
            "converter": "facelib.models.convert.mediapipe",
            "facelib_version": __version__,
            "made_from": made_from,
            "options": {"opset": opset, "optimize": optimize},
        },
        files=files,
        preprocessing={
            "colour_order": "RGB",
            "detector": {
                "size": [128, 128],
                "value_range": [-1.0, 1.0],
                "keep_aspect_ratio": True,
                "border": "zero",
                "interpolation": "bilinear",
            },
            "landmarks": {
                "size": [256, 256],
                "value_range": [0.0, 1.0],
                "keep_aspect_ratio": False,
                "border": "replicate",
                "interpolation": "bilinear",
            },
        },
        outputs={
            "blendshape_names": list(MEDIAPIPE_NAMES),
            "arkit_names": list(ARKIT_NAMES),
            "landmarks": "478 x (x, y, z): x, y in pixels, z in the same pixel scale (negative towards the camera)",
            "transform": "4x4 canonical face (cm) -> camera space, right-handed, camera looking along -Z",
        },
        metadata={
            "tensors": tensors,
            METADATA_KEY: tflite_sources,
            "anchors": {"input_size": 128, "strides": [8, 16, 16, 16], "anchors_per_cell_per_layer": 2, "offset": 0.5},
            "detector": {
                "num_coords": 16,
                "num_keypoints": 6,
                "scale": 128.0,
                "score_clip": 100.0,
                "nms_iou": 0.5,
                "roi_scale": 1.5,
                "rotation_keypoints": [0, 1],
            },
            "landmarks": {
                "num_landmarks": 478,
                "crop_size": 256,
                "roi_scale": 1.5,
                "rotation_landmarks": [33, 263],
                "square_long": True,
            },
            "blendshape_landmarks": list(BLENDSHAPE_LANDMARKS),
            "geometry": {"vertical_fov_degrees": VERTICAL_FOV_DEGREES, "near": NEAR, "far": 10000.0},
            "defaults": {
                "num_faces": 1,
                "min_face_detection_confidence": 0.5,
                "min_face_presence_confidence": 0.5,
                "min_tracking_confidence": 0.5,
            },
            "smoothing": {"min_cutoff": 0.05, "beta": 80.0, "derivate_cutoff": 1.0, "frequency": 30.0},
        },
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
