"""Test double of CANN's ``atc`` command line (ONNX -> .om), run as ``atc`` through a wrapper script."""

from __future__ import annotations

import os
import platform
import sys

import om_format

# SoCs without shape-range support in their ATC documentation (hiascend ATC "--input_shape" /
# "--input_shape_range" pages: not for Atlas 200/300/500 inference products or Atlas 200I/500 A2).
NO_RANGE_SOCS = ("Ascend310", "Ascend310B1")
SOCS = ("Ascend310", "Ascend310B1", "Ascend310P1", "Ascend310P3", "Ascend910A", "Ascend910B1", "Ascend910B3")
PRECISION = (
    "force_fp32",
    "cube_fp16in_fp32out",
    "force_fp16",
    "allow_fp32_to_fp16",
    "must_keep_origin_dtype",
    "allow_mix_precision",
    "allow_mix_precision_fp16",
    "allow_mix_precision_bf16",
    "allow_fp32_to_bf16",
)
KNOWN = {
    "framework",
    "model",
    "output",
    "soc_version",
    "input_shape",
    "input_shape_range",
    "input_format",
    "dynamic_batch_size",
    "dynamic_image_size",
    "dynamic_dims",
    "precision_mode",
    "precision_mode_v2",
    "log",
    "mode",
    "out_nodes",
}
_ONNX_TYPES = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 2: "uint8", 3: "int8", 9: "bool", 11: "double"}


class AtcError(Exception):
    pass


def fail(code: str, message: str) -> None:
    raise AtcError(f"{code}: {message}")


def parse_args(argv: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    i = 0
    while i < len(argv):
        item = argv[i]
        if not item.startswith("-"):
            fail("E10001", f"Value [{item}] is not a parameter.")
        key = item.lstrip("-")
        if "=" in key:
            key, value = key.split("=", 1)
        else:
            i += 1
            if i >= len(argv):
                fail("E10004", f"Value for parameter [--{key}] is empty.")
            value = argv[i]
        key = key.replace("-", "_")
        if key not in KNOWN:
            fail("E10007", f"[--{key}] is invalid. Reason: unknown parameter.")
        args[key] = value
        i += 1
    return args


def parse_dim(text: str) -> tuple[int, int]:
    if "~" in text:
        lo, hi = text.split("~")
        return int(lo), int(hi)
    v = int(text)
    return v, v


def parse_shapes(text: str, bracketed: bool) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for part in text.split(";"):
        name, _, dims = part.rpartition(":")
        if not name:
            fail("E10002", f"Value [{part}] for parameter [--input_shape] is invalid. Reason: expected name:dims.")
        if bracketed:
            if not (dims.startswith("[") and dims.endswith("]")):
                fail("E10002", f"Value [{part}] for parameter [--input_shape_range] needs [dims].")
            dims = dims[1:-1]
        out[name] = [parse_dim(d) for d in dims.split(",")] if dims else []
    return out


def main(argv: list[str]) -> int:
    import onnx

    args = parse_args(argv)
    for key in ("framework", "model", "output", "soc_version"):
        if key not in args:
            fail("E10004", f"Value for parameter [--{key}] is empty.")
    if args["framework"] != "5":
        fail("E10001", f"Value [{args['framework']}] for parameter [--framework] is invalid for an ONNX model.")
    if args["soc_version"] not in SOCS:
        fail(
            "E10001",
            f"Value [{args['soc_version']}] for parameter [--soc_version] is invalid. Reason: unsupported SoC.",
        )
    if "precision_mode" in args and "precision_mode_v2" in args:
        fail("E10001", "--precision_mode and --precision_mode_v2 are mutually exclusive.")
    if args.get("precision_mode", "force_fp16") not in PRECISION:
        fail("E10001", f"Value [{args['precision_mode']}] for parameter [--precision_mode] is invalid.")
    fmt = args.get("input_format", "NCHW")
    if fmt not in ("NCHW", "NHWC", "ND", "NCDHW", "NDHWC"):
        fail("E10001", f"Value [{fmt}] for parameter [--input_format] is invalid.")
    try:
        model = onnx.load(args["model"])
    except Exception as exc:  # noqa: BLE001
        fail("E19999", f"Parse onnx model [{args['model']}] failed: {exc}")
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            fail("E11001", f"Op [{node.name}] type [{node.op_type}] of domain [{node.domain}] is not supported.")
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in initializers]
    declared = {
        v.name: [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        for v in graph_inputs
    }
    dynamic_opts = [
        k for k in ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims", "input_shape_range") if k in args
    ]
    ranged = "input_shape" in args and any("~" in part for part in args["input_shape"].split(","))
    if len(dynamic_opts) + int(ranged) > 1:
        fail("E10001", f"dynamic options {dynamic_opts} are mutually exclusive.")
    if (ranged or "input_shape_range" in args) and args["soc_version"] in NO_RANGE_SOCS:
        fail("E10001", f"shape ranges are not supported for soc_version [{args['soc_version']}].")
    shapes: dict[str, list[tuple[int, int]]] = {}
    if "input_shape" in args:
        shapes = parse_shapes(args["input_shape"], bracketed=False)
    if "input_shape_range" in args:
        shapes = parse_shapes(args["input_shape_range"], bracketed=True)
    for name, dims in shapes.items():
        if name not in declared:
            fail("E10016", f"Input parameter [--input_shape]'s opname [{name}] is not found in model.")
        if len(dims) != len(declared[name]):
            fail("E10002", f"Shape of [{name}] has rank {len(dims)}, the model input has {len(declared[name])}.")
        for (lo, hi), d in zip(dims, declared[name]):
            if d >= 0 and (lo, hi) != (d, d) and (lo, hi) != (-1, -1):
                fail("E10002", f"Shape {dims} of [{name}] conflicts with the model's fixed dim {d}.")
    final = {name: [lo for lo, _ in shapes.get(name, [(d, d) for d in dims])] for name, dims in declared.items()}
    dynamic: dict[str, object] = {"kind": "static"}
    if "dynamic_batch_size" in args:
        gears = [int(v) for v in args["dynamic_batch_size"].split(",")]
        # hiascend ATC "--dynamic_batch_size": 2 to 100 gears, distinct positive values
        if not 2 <= len(gears) <= 100 or any(g <= 0 for g in gears) or len(set(gears)) != len(gears):
            fail("E10035", "[--dynamic_batch_size] needs 2..100 distinct positive values.")
        for name, dims in final.items():
            if any(d < 0 for d in dims[1:]):
                fail("E10036", f"[--dynamic_batch_size]: only dim 0 of [{name}] may be -1.")
        if not any(dims and dims[0] < 0 for dims in final.values()):
            fail("E10031", "[--dynamic_batch_size] is set but no input has -1 in its batch dim in --input_shape.")
        dynamic = {"kind": "batch", "batch_gears": gears}
    elif "dynamic_dims" in args:
        if fmt != "ND":
            fail("E10001", "[--dynamic_dims] requires --input_format=ND.")
        slots = [(name, i) for name, dims in final.items() for i, d in enumerate(dims) if d < 0]
        gear_list = []
        for text in args["dynamic_dims"].split(";"):
            values = [int(v) for v in text.split(",")]
            if len(values) != len(slots):
                fail("E10042", f"gear [{text}] has {len(values)} values, --input_shape has {len(slots)} -1 dims.")
            gear = {name: list(dims) for name, dims in final.items() if any(d < 0 for d in dims)}
            for (name, i), v in zip(slots, values):
                gear[name][i] = v
            gear_list.append(gear)
        if not 2 <= len(gear_list) <= 100:  # hiascend ATC "--dynamic_dims": 2 to 100 gears
            fail("E10035", "[--dynamic_dims] needs 2..100 gears.")
        dynamic = {"kind": "dims", "dims_gears": gear_list}
    elif ranged or "input_shape_range" in args:
        ranges = {}
        for name, dims in shapes.items():
            if any(lo != hi for lo, hi in dims):
                ranges[name] = [[lo for lo, _ in dims], [hi for _, hi in dims]]
        dynamic = {"kind": "shape", "ranges": ranges}
        final = {
            name: [-1 if name in ranges and lo != hi else lo for lo, hi in shapes.get(name, [])] or dims
            for name, dims in final.items()
        }
    else:
        for name, dims in final.items():
            if any(d < 0 for d in dims):
                fail(
                    "E10031",
                    f"Input [{name}] is dynamic {dims}: give --input_shape with fixed dims or a dynamic option.",
                )
    header = {
        "soc_version": args["soc_version"],
        "precision_mode": args.get("precision_mode", "force_fp16"),
        "inputs": [
            {
                "name": v.name,
                "shape": final[v.name],
                "dtype": _ONNX_TYPES[v.type.tensor_type.elem_type],
                "format": 1 if fmt == "NHWC" else 0,
            }
            for v in graph_inputs
        ],
        "outputs": [
            {
                "name": f"om_output_{i}",
                "shape": [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim],
                "dtype": _ONNX_TYPES[v.type.tensor_type.elem_type],
            }
            for i, v in enumerate(model.graph.output)
        ],
        "dynamic": dynamic,
    }
    # hiascend ATC "--output": the file may be named <output>_<os>_<arch>.om (its example shows
    # ..._linux_x86_64.om); FACELIB_ATC_DOUBLE_NAMING=plain gives the older <output>.om.
    if os.environ.get("FACELIB_ATC_DOUBLE_NAMING", "os_arch") == "plain":
        target = args["output"] + ".om"
    else:
        target = f"{args['output']}_linux_{platform.machine()}.om"
    om_format.write(target, header, model.SerializeToString())
    return 0


if __name__ == "__main__":
    print("ATC start working now, please wait for a moment.")
    try:
        code = main(sys.argv[1:])
    except AtcError as exc:
        print("ATC run failed, Please check the detail log, Try 'atc --help' for more information")
        print(exc)
        sys.exit(255)
    print("ATC run success, welcome to the next use.")
    sys.exit(code)
