"""Command-line doubles of TPU-MLIR's model_transform, run_calibration, model_deploy, model_tool.

They accept the real tools' flags (python/tools/model_transform.py / model_deploy.py argparse
names), enforce what the real tools enforce for our use (required flags, chips, quantize modes,
INT8 needs a calibration table, input shapes matching the ONNX inputs, the test-input and
reference comparison, combine rules), and write a fake bmodel (see fake_bmodel.py) whose graphs
the SAIL double runs through onnxruntime.  Precision is *not* simulated: every mode computes in
float32.  Exit status 1 with a message on stderr on any error, as the real tools do.
"""

from __future__ import annotations

import argparse
import ast
import base64
import json
import sys
from pathlib import Path
from typing import Any

import fake_bmodel
import numpy as np

CHIPS = (
    "bm1684x",
    "bm1684",
    "bm1688",
    "bm1690",
    "cv186x",
    "cv183x",
    "cv182x",
    "cv181x",
    "cv180x",
    "mars3",
    "sg2380",
    "cpu",
)
QUANTIZE = ("F32", "F16", "BF16", "INT8", "INT4", "W8F16", "W8BF16", "W4F16", "W4BF16", "F8E4M3", "F8E5M2", "QDQ")
CALIB_HEADER = "# fake TPU-MLIR calibration table"


def _fail(message: str) -> None:
    print(f"[error] {message}", file=sys.stderr)
    raise SystemExit(1)


def _session(onnx_bytes: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def _ort_types() -> dict[str, Any]:
    return {
        "tensor(float)": np.float32,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(uint8)": np.uint8,
    }


def run_onnx(onnx_bytes: bytes, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = _session(onnx_bytes)
    types = _ort_types()
    typed = {i.name: np.asarray(feeds[i.name]).astype(types.get(i.type, np.float32)) for i in sess.get_inputs()}
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, typed)))


def _onnx_with_weights(path: Path) -> bytes:
    """The ONNX file with any external weights read in (model_transform.py loads it with onnx.load,
    which resolves them relative to the file)."""
    import onnx

    return onnx.load(str(path)).SerializeToString()


def _graph_io(onnx_path: Path) -> tuple[list[Any], list[str]]:
    sess = _session(_onnx_with_weights(onnx_path))
    return sess.get_inputs(), [o.name for o in sess.get_outputs()]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 and nb == 0:
        return 1.0
    return float(a @ b / (na * nb)) if na and nb else 0.0


def _compare(actual: dict[str, np.ndarray], reference: Any, tolerance: str, what: str) -> None:
    cos_tol = float(tolerance.split(",")[0])
    for name in reference.files:
        if name not in actual:
            continue
        ref = reference[name]
        got = actual[name]
        if got.shape != ref.shape:
            _fail(f"{what}: {name} shape {got.shape} != reference {ref.shape}; npz compare FAILED")
        cos = _cosine(got, ref)
        if cos < cos_tol or not np.allclose(got, ref, rtol=1e-3, atol=1e-3):
            _fail(f"{what}: {name} cosine {cos:.6f} < {cos_tol} or values differ; npz compare FAILED")
    print(f"{what}: npz compare PASSED")


def model_transform(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("model_transform")
    p.add_argument("--model_name", required=True)
    p.add_argument("--model_def", required=True)
    p.add_argument("--model_data")
    p.add_argument("--input_shapes", default="")
    p.add_argument("--input_types")
    p.add_argument("--output_names")
    p.add_argument("--test_input", default="", type=lambda v: [f.strip() for f in v.split(",") if f.strip()])
    p.add_argument("--test_result")
    p.add_argument("--tolerance", default="0.99,0.99")
    p.add_argument("--excepts")
    p.add_argument("--dynamic", action="store_true")
    p.add_argument("--dynamic_shape_input_names")
    p.add_argument("--mlir", required=True)
    for flag in (
        "--mean",
        "--scale",
        "--pixel_format",
        "--channel_format",
        "--resize_dims",
        "--onnx_sim",
        "--add_postprocess",
    ):
        p.add_argument(flag)
    p.add_argument("--keep_aspect_ratio", action="store_true")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    model_def = Path(args.model_def)
    if not model_def.is_file():
        _fail(f"model_def {model_def} does not exist")
    if model_def.suffix != ".onnx":
        _fail("this double only converts ONNX models")
    inputs, outputs = _graph_io(model_def)
    try:
        shapes = ast.literal_eval(args.input_shapes) if args.input_shapes else []
    except (ValueError, SyntaxError):
        _fail(f"cannot parse --input_shapes {args.input_shapes!r}")
    if not shapes:
        shapes = [list(i.shape) for i in inputs]
    if len(shapes) != len(inputs):
        _fail(f"--input_shapes gives {len(shapes)} shapes, the model has {len(inputs)} inputs")
    for inp, shape in zip(inputs, shapes):
        if len(shape) != len(inp.shape) or any(isinstance(d, int) and d != s for d, s in zip(inp.shape, shape)):
            _fail(f"input {inp.name} shape {inp.shape} cannot be set to {shape}")
        if any(not isinstance(s, int) or s <= 0 for s in shape):
            _fail(f"input {inp.name}: shape {shape} must be positive integers")
    mlir = {
        "model_name": args.model_name,
        "onnx": str(model_def.resolve()),
        "inputs": [{"name": i.name, "shape": s} for i, s in zip(inputs, shapes)],
        "outputs": outputs,
        "dynamic": bool(args.dynamic),
    }
    Path(args.mlir).write_text(json.dumps(mlir))
    if args.test_input:
        test = np.load(args.test_input[0])
        feeds = {}
        for inp, shape in zip(inputs, shapes):
            if inp.name not in test.files:
                _fail(f"test input {args.test_input} lacks {inp.name}")
            value = test[inp.name]
            if list(value.shape) != list(shape):
                _fail(f"test input {inp.name} shape {list(value.shape)} != input shape {shape}")
            feeds[inp.name] = value.astype(np.float32)
        np.savez(f"{args.model_name}_in_f32.npz", **feeds)  # the real tool writes this into cwd
        result = run_onnx(_onnx_with_weights(model_def), feeds)
        if args.test_result:
            np.savez(args.test_result, **result)
    print(f"mlir saved to {args.mlir}")


def run_calibration(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("run_calibration")
    p.add_argument("mlir_file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--input_num", type=int, default=0)
    p.add_argument("-o", "--calibration_table", required=True)
    args = p.parse_args(argv)
    mlir = json.loads(Path(args.mlir_file).read_text())
    files = sorted(Path(args.dataset).glob("*.npz"))
    if args.input_num:
        files = files[: args.input_num]
    if not files:
        _fail(f"no npz files in dataset {args.dataset}")
    lines = [CALIB_HEADER, f"# samples {len(files)}"]
    for spec in mlir["inputs"]:
        values = []
        for f in files:
            data = np.load(f)
            if spec["name"] not in data.files or list(data[spec["name"]].shape) != spec["shape"]:
                _fail(f"{f}: needs {spec['name']} with shape {spec['shape']}")
            values.append(data[spec["name"]])
        stacked = np.stack(values)
        lines.append(f"{spec['name']} {float(stacked.min())} {float(stacked.max())}")
    Path(args.calibration_table).write_text("\n".join(lines) + "\n")


def model_deploy(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("model_deploy")
    p.add_argument("--mlir", required=True)
    # sophgo/tpu-mlir python/tools/model_deploy.py: --chip type=str.lower, --quantize type=str.upper,
    # --test_input split on commas (str2list), --opt choices [1, 2]
    p.add_argument("--chip", "--processor", dest="chip", required=True, type=str.lower)
    p.add_argument("--quantize", default="F32", type=str.upper)
    p.add_argument("--calibration_table")
    p.add_argument("--asymmetric", action="store_true")
    p.add_argument("--quantize_table")
    p.add_argument("--test_input", default="", type=lambda v: [f.strip() for f in v.split(",") if f.strip()])
    p.add_argument("--test_reference", default="")
    p.add_argument("--tolerance", default="0.8,0.5")
    p.add_argument("--compare_all", action="store_true")
    p.add_argument("--skip_validation", action="store_true")
    p.add_argument("--dynamic", action="store_true")
    p.add_argument("--num_core", type=int, default=1)
    p.add_argument("--model", required=True)
    p.add_argument("--quant_input", action="store_true")
    p.add_argument("--quant_output", action="store_true")
    p.add_argument("--opt", type=int, default=2, choices=[1, 2])
    args = p.parse_args(argv)
    if len(args.test_input) > 1 or (args.test_input and not args.test_input[0].endswith(".npz")):
        _fail(f"this double takes one .npz --test_input (got {args.test_input}; a comma splits the list)")
    if args.chip not in CHIPS:
        _fail(f"argument --chip: invalid choice: {args.chip!r}")
    if args.quantize not in QUANTIZE:
        _fail(f"argument --quantize: invalid choice: {args.quantize!r}")
    if args.quantize == "INT8":
        if not args.calibration_table:
            _fail("INT8 quantization needs --calibration_table")
        table = Path(args.calibration_table)
        if not table.is_file() or not table.read_text().startswith(CALIB_HEADER):
            _fail(f"calibration table {table} is missing or invalid")
    if args.quant_output or (args.quant_input and args.quantize not in ("F16", "BF16")):
        _fail("this double models --quant_input for F16/BF16 only, and not --quant_output")
    input_dtype = {"F16": "BM_FLOAT16", "BF16": "BM_BFLOAT16"}[args.quantize] if args.quant_input else "BM_FLOAT32"
    mlir = json.loads(Path(args.mlir).read_text())
    onnx_bytes = _onnx_with_weights(Path(mlir["onnx"]))
    shapes = {i["name"]: i["shape"] for i in mlir["inputs"]}
    feeds = {n: np.ones(s, np.float32) for n, s in shapes.items()}
    if args.test_input and not args.skip_validation:
        test = np.load(args.test_input[0])
        feeds = {n: test[n] for n in shapes}
        result = run_onnx(onnx_bytes, feeds)
        if args.test_reference:
            _compare(result, np.load(args.test_reference), args.tolerance, f"{mlir['model_name']} {args.quantize}")
    else:
        result = run_onnx(onnx_bytes, feeds)
    graph = {
        "name": mlir["model_name"],
        "chip": args.chip,
        "quantize": args.quantize,
        "dynamic": bool(args.dynamic),
        "onnx": base64.b64encode(onnx_bytes).decode(),  # weights included, as a bmodel holds them
        "input_names": list(shapes),
        "input_dtype": input_dtype,
        "output_names": mlir["outputs"],
        "stages": [{"inputs": shapes, "outputs": {n: list(v.shape) for n, v in result.items()}}],
    }
    fake_bmodel.write(args.model, [graph])
    print(f"bmodel saved to {args.model}")


def model_tool(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser("model_tool")
    p.add_argument("--combine", nargs="+")
    p.add_argument("--info")
    p.add_argument("-o", "--output")
    args = p.parse_args(argv)
    if args.info:
        for g in fake_bmodel.read(args.info):
            print(f"net: [{g['name']}] chip {g['chip']} dynamic {g['dynamic']} stages {len(g['stages'])}")
        return
    if not args.combine or not args.output:
        _fail("usage: model_tool --combine a.bmodel b.bmodel ... -o out.bmodel")
    merged: dict[str, dict[str, Any]] = {}
    chips = set()
    for path in args.combine:
        try:
            graphs = fake_bmodel.read(path)
        except (OSError, ValueError) as exc:
            _fail(f"cannot read {path}: {exc}")
        for g in graphs:
            chips.add(g["chip"])
            if g["name"] in merged:
                have = merged[g["name"]]
                if have["dynamic"] or g["dynamic"]:
                    _fail(f"net {g['name']}: dynamic nets cannot be combined as stages")
                if have["input_names"] != g["input_names"]:
                    _fail(f"net {g['name']}: stages have different inputs")
                have["stages"].extend(g["stages"])
            else:
                merged[g["name"]] = json.loads(json.dumps(g))
    if len(chips) > 1:
        _fail(f"cannot combine bmodels for different chips {sorted(chips)}")
    fake_bmodel.write(args.output, list(merged.values()))
    print(f"combined into {args.output}")


TOOLS = {
    "model_transform": model_transform,
    "run_calibration": run_calibration,
    "model_deploy": model_deploy,
    "model_tool": model_tool,
}
