"""FSA-Net (shamangary/FSA-Net) -> facelib ``head_pose`` model package.

Sources (roles ``capsule``, ``var_capsule``, ``noS_capsule``): the three TensorFlow frozen
graphs released upstream under ``pre-trained/converted-models/tf/`` (converted with tf2onnx,
the ``convert`` extra), or ONNX files already converted from them (copied).  Every variant
keeps its upstream tensor names (input ``input_1:0`` (N, 64, 64, 3) BGR 0..255, output
``pred_pose/mul_24:0`` (N, 3) = yaw, pitch, roll in degrees) with a dynamic batch dimension.

When all three variants are given, the package also holds ``fsanet_ensemble.onnx`` (role
``ensemble``): the three graphs side by side in one ONNX model sharing the input, with one
output per variant and their mean (``pose``) — the upstream demos' ``Average()`` of the three
models, computed in one runtime call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facelib.errors import ConversionError, InputError
from facelib.models.card import ModelCard
from facelib.models.package import ModelPackage, read_onnx_specs, sha256_file

UPSTREAM_REPO = "https://github.com/shamangary/FSA-Net"
UPSTREAM_COMMIT = "4361d0e48103bb215d15734220c9d17e6812bb48"
#: Role -> upstream file stem (pre-trained/converted-models/tf/<stem>.pb).
VARIANTS: dict[str, str] = {
    "capsule": "fsanet_capsule_3_16_2_21_5",
    "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
    "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
}
#: sha256 of the released .pb files (to recognise them; other files are converted with a warning-free note).
UPSTREAM_SHA256: dict[str, str] = {
    "capsule": "95d12028571084c6bf8f97825272e1f3324e075627024854fe1e584bd4b6dae1",
    "var_capsule": "f9760f6d2a378de625d511337ec75e8400f02d2615e9713ca4e154b5d61fefb1",
    "noS_capsule": "96600aa7939b9ac027fab0531b823f933f80390e45f736ac939444ebdbd5c9e4",
}
INPUT_NAME = "input_1:0"
OUTPUT_NAME = "pred_pose/mul_24:0"
ENSEMBLE_OUTPUT = "pose"
BATCH_DIM = "N"
OPSET = 17
IR_VERSION = 10
#: Largest batch the package advertises to compiling backends (the task chunks to it).
MAX_BATCH = 64


def upstream_url(role: str) -> str:
    """Download URL of the released frozen graph of ``role`` at the pinned commit."""
    return f"{UPSTREAM_REPO}/raw/{UPSTREAM_COMMIT}/pre-trained/converted-models/tf/{VARIANTS[role]}.pb"


def _convert_pb(path: Path) -> Any:
    """Frozen TF graph -> ONNX ModelProto (tf2onnx, opset 17)."""
    from facelib.errors import require

    tf: Any = require("tensorflow", "convert", "Converting FSA-Net TensorFlow graphs")
    tf2onnx: Any = require("tf2onnx", "convert", "Converting FSA-Net TensorFlow graphs")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf DecodeError
        raise ConversionError(f"{path} is not a TensorFlow frozen graph (.pb): {exc}") from exc
    names = {node.name for node in graph_def.node}
    for tensor in (INPUT_NAME, OUTPUT_NAME):
        if tensor.split(":")[0] not in names:
            raise ConversionError(
                f"{path}: no tensor {tensor!r} in the graph; is it one of the FSA-Net graphs "
                f"from {UPSTREAM_REPO} pre-trained/converted-models/tf?"
            )
    try:
        model, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset=OPSET
        )
    except Exception as exc:
        raise ConversionError(f"tf2onnx failed on {path}: {type(exc).__name__}: {exc}") from exc
    return model


def _load_onnx(path: Path) -> Any:
    import onnx

    read_onnx_specs(path)  # clear errors for empty/corrupt files
    model = onnx.load(os.fspath(path))
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
        raise ConversionError(
            f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r} (an FSA-Net graph "
            f"converted with tf2onnx), found inputs {inputs} and outputs {outputs}"
        )
    return model


def _normalise(model: Any) -> Any:
    """Name the batch dimension, keep shapes (N, 64, 64, 3) -> (N, 3), IR version 10."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
        elif dims and dims[0].dim_value != 0:
            raise ConversionError(f"{value.name} has a fixed batch size {dims[0].dim_value}; expected a dynamic one")
    model.ir_version = IR_VERSION
    return model


def merge_ensemble(models: Mapping[str, Any]) -> Any:
    """One ONNX model running every variant on a shared input, with their mean.

    Parameters
    ----------
    models:
        Role -> ONNX ModelProto of one FSA-Net variant (input ``input_1:0``, output
        ``pred_pose/mul_24:0``).

    Returns
    -------
    onnx.ModelProto
        Input ``input_1:0`` (N, 64, 64, 3); outputs ``<role>`` (N, 3) for each variant and
        ``pose`` (N, 3), their arithmetic mean (sum then divide, as Keras ``Average``).
    """
    import onnx
    from onnx import TensorProto, helper

    nodes, initializers, value_info, functions = [], [], [], []
    opsets: dict[str, int] = {}
    for role, model in models.items():
        graph = onnx.GraphProto()
        graph.CopyFrom(model.graph)
        _prefix_graph(graph, f"{role}/", keep={INPUT_NAME})
        nodes.extend(graph.node)
        nodes.append(helper.make_node("Identity", [f"{role}/{OUTPUT_NAME}"], [role], name=f"{role}/out"))
        initializers.extend(graph.initializer)
        value_info.extend(graph.value_info)
        functions.extend(model.functions)
        for op in model.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    roles = list(models)
    nodes.append(helper.make_node("Sum", roles, ["pose_sum"], name="ensemble/sum"))
    count = helper.make_tensor("ensemble/count", TensorProto.FLOAT, [], [float(len(roles))])
    initializers.append(count)
    nodes.append(helper.make_node("Div", ["pose_sum", "ensemble/count"], [ENSEMBLE_OUTPUT], name="ensemble/mean"))
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH_DIM, 64, 64, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [BATCH_DIM, 3]) for n in [*roles, ENSEMBLE_OUTPUT]]
    graph = helper.make_graph(nodes, "fsanet_ensemble", [x], outs, initializer=initializers, value_info=value_info)
    merged = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        producer_name="facelib",
        functions=functions,
    )
    merged.ir_version = IR_VERSION
    onnx.checker.check_model(merged)
    return merged


def _prefix_graph(graph: Any, prefix: str, keep: set[str]) -> None:
    """Prefix every tensor and node name of ``graph`` and its subgraphs (names in ``keep`` stay)."""

    def name(value: str) -> str:
        return value if not value or value in keep else prefix + value

    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = name(value.name)
    for init in graph.initializer:
        init.name = name(init.name)
    for node in graph.node:
        node.name = name(node.name)
        node.input[:] = [name(v) for v in node.input]
        node.output[:] = [name(v) for v in node.output]
        for attr in node.attribute:
            if attr.HasField("g"):
                _prefix_graph(attr.g, prefix, keep)
            for sub in attr.graphs:
                _prefix_graph(sub, prefix, keep)


def _file_entry(path: Path, name: str, outputs: list[str]) -> dict[str, Any]:
    shapes = {INPUT_NAME: {"min": [1, 64, 64, 3], "opt": [1, 64, 64, 3], "max": [MAX_BATCH, 64, 64, 3]}}
    return {
        "path": name,
        "sha256": sha256_file(path),
        "inputs": [{"name": INPUT_NAME, "shape": [BATCH_DIM, 64, 64, 3], "dtype": "float32"}],
        "outputs": [{"name": o, "shape": [BATCH_DIM, 3], "dtype": "float32"} for o in outputs],
        "shapes": shapes,
    }


def build_package(
    sources: Mapping[str, Path], output_dir: Path, *, progress: bool = False, ensemble: bool = True, **options: Any
) -> ModelPackage:
    """Convert FSA-Net graphs into a model package at ``output_dir``.

    Parameters
    ----------
    sources:
        Role (``capsule``, ``var_capsule``, ``noS_capsule``; at least one) -> a ``.pb`` frozen
        graph as released upstream, or an ``.onnx`` converted from it.
    output_dir:
        Directory to create (or overwrite) with ``facelib.json`` and the ONNX files.
    progress:
        Show a progress bar over the variants.
    ensemble:
        Also write the merged ``ensemble`` file (needs all three variants).

    Raises
    ------
    InputError
        Unknown roles, missing files, unsupported suffixes.
    ConversionError
        A file is not an FSA-Net graph or tf2onnx failed.
    MissingDependencyError
        A ``.pb`` was given and tensorflow/tf2onnx (``facelib[convert]``) are not installed.
    """
    import onnx

    from facelib import __version__
    from facelib._progress import progress as bar

    if options:
        raise InputError(f"unknown FSA-Net converter options: {sorted(options)}")
    unknown = sorted(set(sources) - set(VARIANTS))
    if unknown or not sources:
        raise InputError(f"FSA-Net sources must be among {list(VARIANTS)}; got {sorted(sources)}")
    roles = [r for r in VARIANTS if r in sources]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    source_info: dict[str, Any] = {}
    models: dict[str, Any] = {}
    tool = None
    with tempfile.TemporaryDirectory(dir=output_dir) as tmp_dir:
        tmp = Path(tmp_dir)
        for role in bar(roles, total=len(roles), desc="converting FSA-Net", enabled=progress or None):
            path = Path(sources[role])
            if not path.is_file():
                raise InputError(f"FSA-Net source {role!r} not found: {path}")
            if path.stat().st_size == 0:
                raise InputError(f"FSA-Net source {role!r} is empty: {path}")
            digest = sha256_file(path)
            if path.suffix == ".pb":
                model = _convert_pb(path)
                import tf2onnx  # present: _convert_pb required it

                tool = f"tf2onnx {tf2onnx.__version__} (opset {OPSET})"
            elif path.suffix == ".onnx":
                model = _load_onnx(path)
            else:
                raise InputError(f"FSA-Net source {role!r} must be a .pb or .onnx file, got {path.name}")
            model = _normalise(model)
            models[role] = model
            name = f"{VARIANTS[role]}.onnx"
            target = tmp / name
            onnx.save(model, os.fspath(target))
            files[role] = _file_entry(target, name, [OUTPUT_NAME])
            source_info[role] = {
                "file": path.name,
                "sha256": digest,
                "upstream_url": upstream_url(role),
                "upstream_sha256": UPSTREAM_SHA256[role],
                "is_upstream_file": digest == UPSTREAM_SHA256[role],
            }
        if ensemble and len(models) == len(VARIANTS):
            merged = merge_ensemble(models)
            name = "fsanet_ensemble.onnx"
            onnx.save(merged, os.fspath(tmp / name))
            files["ensemble"] = _file_entry(tmp / name, name, [*models, ENSEMBLE_OUTPUT])
        for item in files.values():
            shutil.move(os.fspath(tmp / item["path"]), os.fspath(output_dir / item["path"]))
    card = ModelCard(
        name="fsanet",
        task="head_pose",
        variant="ensemble" if len(roles) > 1 else roles[0],
        licence="Apache-2.0",
        source={
            "repository": UPSTREAM_REPO,
            "commit": UPSTREAM_COMMIT,
            "paper": "Yang et al., FSA-Net: Learning Fine-Grained Structure Aggregation for Head Pose "
            "Estimation from a Single Image, CVPR 2019",
            "training_data": "300W-LP",
            "files": source_info,
            "converter": "facelib.models.convert.fsanet",
            "facelib_version": __version__,
            "tool": tool or "copied from ONNX converted by tf2onnx",
        },
        files=files,
        preprocessing={
            "size": [64, 64],
            "margin": 0.6,
            "crop": "box enlarged by margin*w left/right and margin*h top/bottom, truncated to int, "
            "clamped to the image, far edge inclusive, bilinear resize",
            "colour_order": "BGR",
            "layout": "NHWC",
            "range": [0, 255],
            "min_max": True,
            "max_batch": MAX_BATCH,
        },
        outputs={
            "order": ["yaw", "pitch", "roll"],
            "unit": "degree",
            "variants": {role: OUTPUT_NAME for role in roles},
            "ensemble": {"role": "ensemble", "output": ENSEMBLE_OUTPUT, "variant_outputs": {r: r for r in roles}}
            if "ensemble" in files
            else None,
            "convention": "300W-LP / AFLW2000 Pose_Para angles (pitch, yaw, roll) converted to degrees; "
            "see docs/headpose.md for the axes",
        },
        metadata={"opset": OPSET, "ir_version": IR_VERSION},
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
