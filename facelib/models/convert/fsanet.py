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

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import ConversionError, InputError
from facelib.models.card import ModelCard
from facelib.models.convert._graph import set_nodes
from facelib.models.convert._output import writes_whole_package
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


def vectorise_map_loops(model: Any) -> int:
    """Replace tf2onnx's per-sample ``Loop`` (from ``K.map_fn`` in the capsule layer) by batched ops.

    The capsule layer maps ``x -> batch_dot(x, W)`` over the batch with ``tf.map_fn``, which
    tf2onnx turns into an ONNX ``Loop`` running one small MatMul per face.  The loop body is
    ``Gather(X, i) -> Reshape(S) -> MatMul(W) -> Squeeze(A)``; the same values come from
    ``Reshape(X, [-1, *S]) -> MatMul(W) -> Squeeze(A + 1)`` in one step for the whole batch
    (MatMul broadcasts ``W`` over the leading dimension).  Loops that do not have exactly this
    shape are left alone.  Nodes only the loop needed are removed.

    Returns
    -------
    int
        How many loops were replaced (0 when the graph had none of this form).
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    replaced = 0
    new_nodes = []
    for node in graph.node:
        plan = _map_loop_plan(node, consts) if node.op_type == "Loop" else None
        if plan is None:
            new_nodes.append(node)
            continue
        source, shape, weight, axes, output = plan
        tag = f"{node.name or output}/vectorised"
        shape_name, axes_name = f"{tag}/shape", f"{tag}/axes"
        if weight not in consts:  # a constant of the loop body: move it to the graph
            body = next(a.g for a in node.attribute if a.name == "body")
            value = next(numpy_helper.to_array(i) for i in body.initializer if i.name == weight)
            graph.initializer.append(numpy_helper.from_array(value, f"{tag}/weight"))
            weight = f"{tag}/weight"
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.asarray([-1, *shape], dtype=np.int64), shape_name),
                numpy_helper.from_array(np.asarray([a + 1 if a >= 0 else a for a in axes], dtype=np.int64), axes_name),
            ]
        )
        new_nodes += [
            helper.make_node("Reshape", [source, shape_name], [f"{tag}/reshaped"], name=f"{tag}/Reshape"),
            helper.make_node("MatMul", [f"{tag}/reshaped", weight], [f"{tag}/matmul"], name=f"{tag}/MatMul"),
            helper.make_node("Squeeze", [f"{tag}/matmul", axes_name], [output], name=f"{tag}/Squeeze"),
        ]
        replaced += 1
    if replaced:
        set_nodes(graph, _live_nodes(new_nodes, [o.name for o in graph.output]))
    return replaced


def _map_loop_plan(loop: Any, consts: Mapping[str, np.ndarray]) -> tuple[str, list[int], str, list[int], str] | None:
    """(X, per-sample shape S, weight name, squeeze axes, scan output) of a map_fn Loop, or None."""
    from onnx import numpy_helper

    body = next((a.g for a in loop.attribute if a.name == "body"), None)
    if body is None or len(loop.output) < 1:
        return None
    body_consts = {init.name: numpy_helper.to_array(init) for init in body.initializer}

    def const(name: str) -> np.ndarray | None:
        return body_consts.get(name, consts.get(name))

    by_type: dict[str, list[Any]] = {}
    for n in body.node:
        by_type.setdefault(n.op_type, []).append(n)
    gathers, reshapes, matmuls = by_type.get("Gather", []), by_type.get("Reshape", []), by_type.get("MatMul", [])
    if len(gathers) != 1 or len(reshapes) != 1 or len(matmuls) != 1:
        return None
    scan_outputs = list(body.output)[1 + len(loop.input) - 2 :]
    loop_scan = list(loop.output)[len(loop.input) - 2 :]
    if len(scan_outputs) != 1 or len(loop_scan) != 1:
        return None
    producers = {o: n for n in body.node for o in n.output}
    squeeze = producers.get(scan_outputs[0].name)
    if squeeze is None or squeeze.op_type != "Squeeze" or squeeze.input[0] != matmuls[0].output[0]:
        return None
    gather, reshape, matmul = gathers[0], reshapes[0], matmuls[0]
    # Gather(X, Unsqueeze(i)) -> Squeeze(axis 0) -> Reshape -> MatMul(const W)
    index_node = producers.get(gather.input[1])
    iteration = body.input[0].name
    if (
        index_node is None
        or index_node.op_type != "Unsqueeze"
        or index_node.input[0]
        not in {
            iteration,
            *(body.input[k].name for k in range(2, len(body.input))),
        }
    ):
        return None
    gather_squeeze = producers.get(reshape.input[0])
    if gather_squeeze is None or gather_squeeze.op_type != "Squeeze" or gather_squeeze.input[0] != gather.output[0]:
        return None
    shape = const(reshape.input[1])
    weight = const(matmul.input[1])
    axes = const(squeeze.input[1]) if len(squeeze.input) > 1 else None
    if shape is None or weight is None or axes is None or matmul.input[0] != reshape.output[0]:
        return None
    if (np.asarray(shape) < 0).any():
        return None
    # the loop counter and the carried copy of it must both start at 0 (map_fn over every sample)
    return gather.input[0], [int(v) for v in shape], matmul.input[1], [int(a) for a in np.ravel(axes)], loop_scan[0]


def fold_input_depthwise(model: Any, max_channels: int = 4) -> int:
    """Fold each depthwise convolution on a few channels into the 1x1 convolution after it.

    The first separable convolutions of FSA-Net's two streams run a 3x3 depthwise convolution
    on the 3 colour channels, then a 1x1 (pointwise) convolution: as three groups of one
    channel, ONNX Runtime cannot use its blocked (NCHWc) kernels and runs them one small GEMM
    per channel.  Depthwise ``D`` (C, 1, kh, kw) with bias ``d`` then pointwise ``P`` (O, C, 1, 1)
    with bias ``p`` is one convolution with weights ``W[o, c] = P[o, c] * D[c]`` and bias
    ``p + P @ d`` (computed in float64, stored float32), which those kernels take.  Only pairs
    where the depthwise output feeds nothing but a stride-1, unpadded, ungrouped 1x1
    convolution, and every weight is a constant, are folded.

    Returns
    -------
    int
        How many pairs were folded.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    dropped: set[int] = set()
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in consts or any(i and i not in consts for i in node.input[1:]):
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        depthwise = numpy_helper.to_array(consts[node.input[1]]).astype(np.float64)
        group = int(attrs.get("group", 1))
        if group == 1 or group > max_channels or depthwise.shape[:2] != (group, 1):
            continue
        users = consumers.get(node.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv" or node.output[0] in graph_outputs:
            continue
        pointwise_node = users[0]
        if any(i and i not in consts for i in pointwise_node.input[1:]):
            continue
        pw_attrs = {a.name: helper.get_attribute_value(a) for a in pointwise_node.attribute}
        pointwise = numpy_helper.to_array(consts[pointwise_node.input[1]]).astype(np.float64)
        if (
            pointwise.shape[1:] != (group, 1, 1)
            or int(pw_attrs.get("group", 1)) != 1
            or any(int(v) != 0 for v in pw_attrs.get("pads", []))
            or any(int(v) != 1 for v in [*pw_attrs.get("strides", []), *pw_attrs.get("dilations", [])])
            or pw_attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
        ):
            continue
        mix = pointwise[:, :, 0, 0]
        weight = mix[:, :, None, None] * depthwise[None, :, 0]
        bias = (
            numpy_helper.to_array(consts[pointwise_node.input[2]]).astype(np.float64)
            if len(pointwise_node.input) > 2
            else np.zeros(len(mix))
        )
        if len(node.input) > 2 and node.input[2]:
            bias = bias + mix @ numpy_helper.to_array(consts[node.input[2]]).astype(np.float64)
        tag = f"{pointwise_node.name or pointwise_node.output[0]}/folded"
        graph.initializer.extend(
            [
                numpy_helper.from_array(weight.astype(np.float32), f"{tag}/weight"),
                numpy_helper.from_array(bias.astype(np.float32), f"{tag}/bias"),
            ]
        )
        del pointwise_node.input[:]
        pointwise_node.input.extend([node.input[0], f"{tag}/weight", f"{tag}/bias"])
        del pointwise_node.attribute[:]
        pointwise_node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items() if k != "group")
        dropped.add(id(node))
    if dropped:
        set_nodes(graph, [n for n in graph.node if id(n) not in dropped])
    return len(dropped)


def constant_reshape_shapes(model: Any) -> int:
    """Give each ``Reshape`` whose target shape is computed at run time a constant one.

    tf2onnx builds the target shape of Keras ``Reshape`` layers from the input's run-time shape
    (``Shape -> Gather -> Cast -> Slice -> Concat -> Cast``): six small operators per reshape,
    run on every call.  Where ONNX shape inference (with data propagation) proves the output is
    ``(N, d1, ..., dk)`` for an input ``(N, e1, ...)`` with the same batch symbol ``N`` and
    ``d1*...*dk == e1*...``, the shape becomes the constant ``(-1, d1, ..., dk)``, which gives
    the same result for every batch size, and the operators that computed it are removed.

    Returns
    -------
    int
        How many reshapes got a constant shape.
    """
    from onnx import numpy_helper, shape_inference

    graph = model.graph
    consts = {init.name for init in graph.initializer}
    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is an optimisation here; without it nothing changes
        return 0

    def dims(value: Any) -> list[int | str]:
        return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in value.type.tensor_type.shape.dim]

    shapes = {v.name: dims(v) for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] in consts:
            continue
        source, target = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not source or not target or len(target) < 2:
            continue
        batch, rest_in, rest_out = source[0], source[1:], target[1:]
        if not isinstance(batch, str) or not batch or target[0] != batch:
            continue
        if not all(isinstance(d, int) and d > 0 for d in [*rest_in, *rest_out]):
            continue
        if math.prod(int(d) for d in rest_in) != math.prod(int(d) for d in rest_out):
            continue
        name = f"{node.name or node.output[0]}/constant_shape"
        graph.initializer.append(numpy_helper.from_array(np.asarray([-1, *rest_out], dtype=np.int64), name))
        node.input[1] = name
        changed += 1
    if changed:
        set_nodes(graph, _live_nodes(list(graph.node), [o.name for o in graph.output]))
    return changed


def _live_nodes(nodes: list[Any], outputs: list[str]) -> list[Any]:
    """``nodes`` without those whose outputs nothing needs (order kept)."""
    needed = set(outputs)
    live = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            live.append(node)
            needed.update(node.input)
            for attr in node.attribute:
                for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                    needed.update(i for n in sub.node for i in n.input)
    return list(reversed(live))


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


@writes_whole_package
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

    from facelib._progress import progress as bar
    from facelib._version import __version__

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
            loops = vectorise_map_loops(model)
            folded = fold_input_depthwise(model)
            reshapes = constant_reshape_shapes(model)
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
                "map_loops_vectorised": loops,
                "depthwise_folded": folded,
                "reshapes_made_constant": reshapes,
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
        metadata={
            "opset": OPSET,
            "ir_version": IR_VERSION,
            "optimisations": [
                "tf.map_fn Loop of the capsule layer replaced by one batched MatMul (vectorise_map_loops)",
                "3x3 depthwise convolutions on the colour channels folded into the 1x1 convolutions after them "
                "(fold_input_depthwise)",
                "run-time shape computations of Keras Reshape layers replaced by constant shapes "
                "(constant_reshape_shapes)",
                "ensemble: the three variants merged into one ONNX graph with their mean",
            ],
        },
    )
    card.write(output_dir)
    return ModelPackage.load(output_dir).check()
