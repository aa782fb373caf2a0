"""ONNX -> bmodel with TPU-MLIR's command-line tools.

The pipeline, per compiled stage (one set of static input shapes, or one dynamic build)::

    model_transform --model_name NAME --model_def m.onnx --input_shapes [[...]] \
        --test_input NAME_test.npz --test_result NAME_top.npz --mlir NAME.mlir
    run_calibration NAME.mlir --dataset calib/ --input_num K -o NAME_cali_table     (INT8 only)
    model_deploy --mlir NAME.mlir --quantize F32|F16|BF16|INT8 --chip bm1684x \
        [--calibration_table NAME_cali_table] --test_input NAME_in_f32.npz \
        --test_reference NAME_top.npz [--dynamic] --model NAME.bmodel

then ``model_tool --combine`` joins the stages into one bmodel.  Each static stage is its own
net (graph) named ``<model>_b<batch>`` so that SAIL can tell the stages apart by graph name and
shape (SAIL's Python API has no per-stage introspection).  The test input is drawn from the
calibration samples (real data) when given, so TPU-MLIR's own comparisons (top MLIR vs ONNX,
bmodel vs top MLIR) run on real inputs; a failing comparison fails the compile with the tool's
output in the error.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from facelib.backends.base import CompileRequest, ShapeRange, TensorSpec
from facelib.errors import BackendError, InputError
from facelib.models import read_onnx_specs

#: facelib precision -> TPU-MLIR ``--quantize``.
QUANTIZE = {"fp32": "F32", "fp16": "F16", "bf16": "BF16", "int8": "INT8"}
#: Chips model_deploy accepts (``--chip``); the plugin targets bm1684x and newer.
CHIPS = ("bm1684x", "bm1688", "bm1690", "cv186x", "bm1684")

Shape = tuple[int, ...]


@attrs.frozen
class CompilePlan:
    """What will be compiled: the model name and one shape set per stage."""

    model_name: str
    input_names: tuple[str, ...]
    stages: tuple[dict[str, Shape], ...]
    dynamic: bool

    def _batch(self, index: int) -> int:
        shape = self.stages[index][self.input_names[0]]
        return shape[0] if shape else 0

    def stage_name(self, index: int) -> str:
        if self.dynamic or len(self.stages) == 1:
            return self.model_name
        batches = [self._batch(i) for i in range(len(self.stages))]
        if len(set(batches)) < len(batches):  # stages differing in other inputs: name by position
            return f"{self.model_name}_s{index}"
        return f"{self.model_name}_b{batches[index]}"


def sanitize(name: str) -> str:
    """A net name TPU-MLIR accepts (letters, digits, underscore)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "model"
    return out if not out[0].isdigit() else f"m_{out}"


def _ranges_for(specs: Sequence[TensorSpec], shapes: Mapping[str, ShapeRange]) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Input name -> (min, opt, max) shapes; fixed inputs have all three equal."""
    out: dict[str, tuple[Shape, Shape, Shape]] = {}
    for spec in specs:
        if spec.name in shapes:
            rng = shapes[spec.name]
            out[spec.name] = (tuple(rng.min), tuple(rng.opt), tuple(rng.max))
        elif not spec.is_dynamic:
            fixed = tuple(int(d) for d in spec.shape)  # type: ignore[arg-type]
            out[spec.name] = (fixed, fixed, fixed)
        else:
            raise BackendError(
                f"input {spec.name!r} has dynamic dims {list(spec.shape)} and no shape range; TPU-MLIR "
                "needs concrete shapes: add 'shapes' to the model card or pass stages=[{...}]"
            )
    return out


def batch_only(ranges: Mapping[str, tuple[Shape, Shape, Shape]]) -> bool:
    """True when static stages can serve every shape of ``ranges``: only axis 0 varies, and it
    varies alike for every input (the session pads one common batch up to a stage's)."""
    batches = set()
    for lo, mid, hi in ranges.values():
        if not lo or lo[1:] != mid[1:] or lo[1:] != hi[1:]:
            return False
        batches.add((lo[0], mid[0], hi[0]))
    return len(batches) <= 1


def plan(
    specs: Sequence[TensorSpec],
    shapes: Mapping[str, ShapeRange],
    model_name: str,
    dynamic: bool | None = None,
    stages: Sequence[Mapping[str, Sequence[int]]] | None = None,
) -> CompilePlan:
    """Decide the stages: explicit ``stages``, else min/opt/max of the shape ranges (static), or
    one dynamic build at the maximum shapes.  ``dynamic=None`` (auto) builds static stages when
    only a batch common to all inputs varies (:func:`batch_only`), a dynamic bmodel otherwise
    (sequence lengths, or inputs whose batches vary independently, cannot be padded)."""
    names = tuple(s.name for s in specs)
    if stages:
        chosen: list[dict[str, Shape]] = []
        for stage in stages:
            if set(stage) != set(names):
                raise InputError(f"each stage must give a shape for every input {list(names)}, got {sorted(stage)}")
            shaped = {n: tuple(int(d) for d in stage[n]) for n in names}
            for spec in specs:
                if not spec.accepts(shaped[spec.name]):
                    raise InputError(f"stage shape {list(shaped[spec.name])} does not fit input {spec}")
            chosen.append(shaped)
        return CompilePlan(model_name, names, tuple(chosen), bool(dynamic))
    ranges = _ranges_for(specs, shapes)
    if dynamic is None:
        dynamic = not batch_only(ranges)
    if dynamic:
        return CompilePlan(model_name, names, ({n: ranges[n][2] for n in names},), True)
    candidates: list[dict[str, Shape]] = []
    for index in range(3):
        candidate = {n: ranges[n][index] for n in names}
        if candidate not in candidates:
            candidates.append(candidate)
    return CompilePlan(model_name, names, tuple(candidates), False)


def shapes_arg(plan_: CompilePlan, stage: Mapping[str, Shape]) -> str:
    """``--input_shapes`` text, e.g. ``[[1,64,64,3]]`` (inputs in ONNX order)."""
    return "[" + ",".join("[" + ",".join(str(d) for d in stage[n]) + "]" for n in plan_.input_names) + "]"


def transform_command(
    tool: str,
    onnx_path: Path,
    name: str,
    input_shapes: str,
    mlir: Path,
    test_input: Path,
    test_result: Path,
    dynamic: bool,
    extra: Sequence[str] = (),
) -> list[str]:
    cmd = [
        tool,
        "--model_name",
        name,
        "--model_def",
        str(onnx_path),
        "--input_shapes",
        input_shapes,
        "--test_input",
        str(test_input),
        "--test_result",
        str(test_result),
        "--mlir",
        str(mlir),
    ]
    if dynamic:
        cmd.append("--dynamic")
    return cmd + list(extra)


def calibration_command(tool: str, mlir: Path, dataset: Path, count: int, table: Path) -> list[str]:
    return [tool, str(mlir), "--dataset", str(dataset), "--input_num", str(count), "-o", str(table)]


def deploy_command(
    tool: str,
    mlir: Path,
    quantize: str,
    chip: str,
    test_input: Path,
    test_reference: Path,
    model: Path,
    calibration_table: Path | None = None,
    dynamic: bool = False,
    tolerance: str | None = None,
    asymmetric: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    cmd = [tool, "--mlir", str(mlir), "--quantize", quantize, "--chip", chip]
    if calibration_table is not None:
        cmd += ["--calibration_table", str(calibration_table)]
        if asymmetric:
            cmd.append("--asymmetric")
    cmd += ["--test_input", str(test_input), "--test_reference", str(test_reference)]
    if tolerance:
        cmd += ["--tolerance", tolerance]
    if dynamic:
        cmd.append("--dynamic")
    return [*cmd, "--model", str(model), *extra]


def combine_command(tool: str, bmodels: Sequence[Path], output: Path) -> list[str]:
    return [tool, "--combine", *(str(b) for b in bmodels), "-o", str(output)]


def find_tool(name: str, tools_dir: str | os.PathLike[str] | None = None) -> str:
    """Path of a TPU-MLIR tool: ``name`` (pip wheel) or ``name.py`` (docker/source tree)."""
    search = os.fspath(tools_dir) if tools_dir else None
    for candidate in (name, f"{name}.py"):
        found = shutil.which(candidate, path=search)
        if found:
            return found
    where = f"in {tools_dir}" if tools_dir else "on PATH"
    raise BackendError(
        f"TPU-MLIR's {name} was not found {where}. Install TPU-MLIR (pip install 'tpu_mlir[onnx]' in a "
        "Python 3.10 environment, or use the sophgo/tpuc_dev docker image and source envsetup.sh), "
        "or pass tools_dir= to the sophon backend."
    )


def run_tool(cmd: Sequence[str], cwd: Path, what: str, env: Mapping[str, str] | None = None) -> str:
    """Run one tool; a non-zero exit becomes a :class:`BackendError` with its output."""
    try:
        done = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False, env=env)
    except OSError as exc:
        raise BackendError(f"cannot run {cmd[0]} ({what}): {exc}") from exc
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-40:])
        raise BackendError(
            f"{Path(cmd[0]).name} failed (exit {done.returncode}) while {what}.\n"
            f"command: {shlex.join(cmd)}\n--- tool output (last lines) ---\n{tail}"
        )
    return output


def stage_batch(
    samples: Sequence[Mapping[str, np.ndarray]], stage: Mapping[str, Shape], start: int
) -> dict[str, np.ndarray]:
    """Fill one stage-shaped input set from real samples, cycling through them from ``start``.

    Every sample must have the stage's shape apart from axis 0 (its batch); rows are taken
    from successive samples until the stage batch is full.
    """
    out = {}
    for name, shape in stage.items():
        rows: list[np.ndarray] = []
        have = 0
        i = start
        while have < (shape[0] if shape else 1):
            sample = np.asarray(samples[i % len(samples)][name], dtype=np.float32)
            if not shape:
                rows.append(sample)
                break
            if sample.ndim != len(shape) or tuple(sample.shape[1:]) != tuple(shape[1:]):
                raise InputError(
                    f"calibration sample for {name!r} has shape {sample.shape}; the compiled shape is {list(shape)} "
                    "(only axis 0 may differ)"
                )
            rows.append(sample)
            have += sample.shape[0]
            i += 1
        value = rows[0] if not shape else np.concatenate(rows, axis=0)[: shape[0]]
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def synthetic_batch(stage: Mapping[str, Shape], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded uniform [0, 1) inputs, used for the compiler's checks only without calibration data."""
    rng = np.random.default_rng(seed)
    return {n: rng.random(s, dtype=np.float32) for n, s in stage.items()}


@attrs.frozen
class SophonCompileOptions:
    """Compile options of the sophon backend (``SophonBackend(**options)`` or compile options).

    chip: ``--chip`` (bm1684x default).  quantize: override of the facelib precision
    (F32/F16/BF16/INT8).  dynamic: True for one ``--dynamic`` bmodel instead of static stages,
    None (default) for static stages only when a common batch is all that varies.
    stages: explicit list of {input: shape} stages.  model_name: net name (default: ONNX file
    stem).  calibration_count: ``--input_num``.  asymmetric: asymmetric INT8.
    tolerance: ``--tolerance`` for model_deploy.  tools_dir: where the TPU-MLIR tools are.
    keep_workdir: keep the intermediate files (printed in errors) for debugging.
    """

    chip: str = "bm1684x"
    quantize: str | None = None
    dynamic: bool | None = None
    stages: tuple[dict[str, tuple[int, ...]], ...] | None = None
    model_name: str | None = None
    calibration_count: int = 100
    asymmetric: bool = False
    tolerance: str | None = None
    tools_dir: str | None = None
    keep_workdir: bool = False
    transform_args: tuple[str, ...] = ()
    deploy_args: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> SophonCompileOptions:
        known = {f.name for f in attrs.fields(cls)}
        kwargs = {k: v for k, v in options.items() if k in known}
        if kwargs.get("stages") is not None:
            kwargs["stages"] = tuple(dict(s) for s in kwargs["stages"])
        for key in ("transform_args", "deploy_args"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def compile_onnx(request: CompileRequest, options: SophonCompileOptions) -> Path:
    """Compile ``request.onnx_path`` to a bmodel at ``request.output_path``; see the module doc."""
    if options.chip not in CHIPS:
        raise InputError(f"chip must be one of {CHIPS}, got {options.chip!r}")
    quantize = options.quantize or QUANTIZE.get(request.precision)
    if quantize is None:
        raise BackendError(f"the sophon backend supports precisions {sorted(QUANTIZE)}, not {request.precision!r}")
    quantize = quantize.upper()
    samples = list(request.calibration or [])
    if quantize == "INT8" and not samples:
        raise BackendError(
            "INT8 needs calibration data: pass calibration=[{input: array}, ...] drawn from real inputs "
            "(TPU-MLIR suggests 100-1000 samples)"
        )
    # The tools run inside a scratch directory: every path handed to them must be absolute.
    onnx_path, output = request.onnx_path.resolve(), request.output_path.resolve()
    inputs, _ = read_onnx_specs(onnx_path)
    the_plan = plan(
        inputs, request.shapes, sanitize(options.model_name or onnx_path.stem), options.dynamic, options.stages
    )
    transform = find_tool("model_transform", options.tools_dir)
    deploy = find_tool("model_deploy", options.tools_dir)
    calibrate = find_tool("run_calibration", options.tools_dir) if quantize == "INT8" else None
    combine = find_tool("model_tool", options.tools_dir) if len(the_plan.stages) > 1 else None

    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="facelib-sophon-", dir=output.parent))
    try:
        bmodels = []
        for index, stage in enumerate(the_plan.stages):
            name = the_plan.stage_name(index)
            where = f"compiling {onnx_path.name} stage {name} {shapes_arg(the_plan, stage)}"
            test = stage_batch(samples, stage, index) if samples else synthetic_batch(stage, index)
            test_npz = workdir / f"{name}_test.npz"
            np.savez(test_npz, **test)  # type: ignore[arg-type]
            mlir, top = workdir / f"{name}.mlir", workdir / f"{name}_top_outputs.npz"
            run_tool(
                transform_command(
                    transform,
                    onnx_path,
                    name,
                    shapes_arg(the_plan, stage),
                    mlir,
                    test_npz,
                    top,
                    the_plan.dynamic,
                    options.transform_args,
                ),
                workdir,
                f"{where} (model_transform)",
            )
            table = None
            if calibrate is not None:
                dataset = workdir / f"{name}_calibration"
                dataset.mkdir()
                count = min(options.calibration_count, len(samples))
                for k in range(count):
                    np.savez(dataset / f"{k:05d}.npz", **stage_batch(samples, stage, k))  # type: ignore[arg-type]
                table = workdir / f"{name}_cali_table"
                run_tool(
                    calibration_command(calibrate, mlir, dataset, count, table), workdir, f"{where} (run_calibration)"
                )
            bmodel = workdir / f"{name}_{quantize.lower()}.bmodel"
            run_tool(
                deploy_command(
                    deploy,
                    mlir,
                    quantize,
                    options.chip,
                    workdir / f"{name}_in_f32.npz",
                    top,
                    bmodel,
                    table,
                    the_plan.dynamic,
                    options.tolerance,
                    options.asymmetric,
                    options.deploy_args,
                ),
                workdir,
                f"{where} (model_deploy)",
            )
            bmodels.append(bmodel)
        if combine is not None:
            run_tool(
                combine_command(combine, bmodels, output), workdir, f"combining {len(bmodels)} stages (model_tool)"
            )
        else:
            shutil.copyfile(bmodels[0], output)
        return output
    finally:
        if not options.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def combine_bmodels(
    bmodels: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str], tools_dir: str | None = None
) -> Path:
    """Join bmodels into one file with ``model_tool --combine`` (each net keeps its graph name).

    Useful to ship the models of one package (e.g. the three FSA-Net variants, or a detector and
    its landmark model) as one file loaded by one ``sail.Engine``: select a graph family with
    ``SophonBackend(graph=...)``.
    """
    out = Path(output).resolve()
    tool = find_tool("model_tool", tools_dir)
    sources = [Path(b).resolve() for b in bmodels]
    run_tool(combine_command(tool, sources, out), out.parent, "combining bmodels (model_tool)")
    return out
