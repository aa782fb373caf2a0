"""Compiling ONNX to ``.om`` with CANN's ATC command line, and the sidecar that describes the result.

The ATC command is built from the :class:`~facelib.backends.base.CompileRequest`::

    atc --framework=5 --model=m.onnx --output=<dir>/m --soc_version=Ascend310P3 \
        --input_format=ND --input_shape="x:-1,64,64,3" --dynamic_batch_size="1,2,4,8,16" \
        --precision_mode=must_keep_origin_dtype --log=error

Dynamic inputs (from the card's min/opt/max) become one of:

* ``batch`` — only dim 0 varies: ``--dynamic_batch_size`` with gears (powers of two between min
  and max, plus min/opt/max); at run time batches are padded up to the next gear.
* ``dims`` — ``--dynamic_dims`` with the min/opt/max shapes (or ``gears=`` given) as gears;
  shapes must then match a gear exactly.
* ``shape`` — shape ranges (``--input_shape="x:1~16,64,64,3"``, or the older
  ``--input_shape_range`` with ``range_syntax="input_shape_range"``); any shape in the range.

``auto`` (default) picks ``batch`` when only batch dims vary, else ``shape`` -- or ``dims``
on SoCs whose ATC has no shape-range support (Atlas 200/300/500 inference products and
Atlas 200I/500 A2: ``Ascend310``, ``Ascend310B*``).  ATC takes 2 to 100 gears; a range that
leaves a single gear is compiled static at that shape.

ATC writes ``<output>.om``, or ``<output>_<os>_<arch>.om`` (e.g. ``m_linux_x86_64.om``, as its
``--output`` documentation shows); both are accepted.

ATC keeps input names but not necessarily ONNX output names, and an ``.om`` does not record how
it was made; so compile writes ``<om>.facelib.json`` (I/O names, dtypes, mode, gears, ranges,
output sizes) which :class:`~facelib_ascend.backend.AscendSession` reads.  The sidecar carries
the ``.om``'s size and sha256, so it is found again after the ``.om`` is renamed in its folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelib.backends.base import CompileRequest, ShapeRange, TensorSpec
from facelib.errors import BackendError, BackendUnavailableError, InputError
from facelib.models.package import read_onnx_specs

SIDECAR_SUFFIX = ".facelib.json"
#: facelib precision -> ATC --precision_mode (fp32 keeps every op in fp32 or fails loudly).
PRECISION_MODES = {"fp32": "must_keep_origin_dtype", "fp16": "force_fp16", "bf16": "allow_fp32_to_bf16"}
#: ATC's --dynamic_batch_size / --dynamic_dims take 2 to 100 gears (hiascend ATC parameter pages).
MIN_GEARS, MAX_GEARS = 2, 100
#: SoCs whose ATC documentation lists no shape-range support (--input_shape ranges and
#: --input_shape_range): Atlas 200/300/500 inference products (Ascend310) and Atlas 200I/500 A2
#: (Ascend310B*).  Ascend310P and Ascend910 support ranges.
NO_SHAPE_RANGE_SOCS = ("Ascend310", "Ascend310B")


def supports_shape_range(soc_version: str) -> bool:
    """Whether ATC can compile shape ranges for ``soc_version``."""
    soc = str(soc_version)
    return not (soc == "Ascend310" or soc.startswith("Ascend310B"))


def cann_version(atc: str | None = None) -> str:
    """The CANN toolkit version ATC belongs to (``version=`` of ``ascend_toolkit_install.info``).

    Looked up under ``$ASCEND_TOOLKIT_HOME`` / ``$ASCEND_HOME_PATH`` and the folders above the
    ``atc`` executable (``<toolkit>/bin/atc``, ``<toolkit>/compiler/bin/atc``); without that file,
    a fingerprint of the atc executable (path, size, mtime) so that another ATC still changes it.
    """
    import platform

    roots: list[Path] = []
    for env in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH"):
        if os.environ.get(env):
            roots.append(Path(os.environ[env]))
    exe = Path(atc).resolve() if atc else None
    if exe is not None:
        roots.extend(list(exe.parents)[:4])
    arch = platform.machine()
    for root in roots:
        for info in (root / f"{arch}-linux" / "ascend_toolkit_install.info", root / "ascend_toolkit_install.info"):
            try:
                text = info.read_text(errors="replace")
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "version" and value.strip():
                    return f"CANN {value.strip()}"
    if exe is not None and exe.is_file():
        st = exe.stat()
        return f"atc {exe} {st.st_size} {int(st.st_mtime)}"
    return "CANN unknown"


def _gear_count(count: int, what: str) -> None:
    if count > MAX_GEARS:
        raise InputError(f"ATC takes at most {MAX_GEARS} {what} gears, got {count}; give fewer 'gears'")


def find_atc(options: Mapping[str, Any]) -> str:
    explicit = options.get("atc")
    found = str(explicit) if explicit else shutil.which("atc")
    if not found or not Path(found).exists():
        raise BackendUnavailableError(
            "the ATC compiler ('atc') is not on PATH; install the CANN toolkit and "
            "source /usr/local/Ascend/ascend-toolkit/set_env.sh (or pass atc='/path/to/atc')"
        )
    return found


def _dims(spec: TensorSpec) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in spec.shape)


def _batch_gears(lo: int, opt: int, hi: int) -> list[int]:
    gears = {lo, opt, hi}
    g = 1
    while g < hi:
        if g > lo:
            gears.add(g)
        g *= 2
    return sorted(gears)


def plan_dynamic(
    inputs: Sequence[TensorSpec],
    shapes: Mapping[str, ShapeRange],
    dynamic: str,
    gears: Any,
    soc_version: str = "Ascend310P3",
) -> dict[str, Any]:
    """Choose the dynamic mode and its gears/ranges for ATC (see the module docstring)."""
    dims = {s.name: _dims(s) for s in inputs}
    unknown = sorted(set(shapes) - set(dims))
    if unknown:
        raise InputError(f"shape ranges given for inputs the model does not have: {unknown}")
    dyn = {name: d for name, d in dims.items() if any(v < 0 for v in d)}
    missing = sorted(set(dyn) - set(shapes))
    if missing:
        raise InputError(
            f"inputs {missing} have dynamic dimensions; ATC needs their min/opt/max shapes: "
            "add them to the model card's 'shapes' (or CompileRequest.shapes)"
        )
    for name, rng in shapes.items():
        d = dims[name]
        if len(rng.min) != len(d):
            raise InputError(f"shape range of {name!r} has rank {len(rng.min)}, the model input is {d}")
        for i, v in enumerate(d):
            if v >= 0 and not rng.min[i] == rng.max[i] == v:
                raise InputError(
                    f"shape range of {name!r} gives dim {i} as {rng.min[i]}..{rng.max[i]}, the model fixes {v}"
                )
    if not dyn:
        return {"mode": "static", "fixed": {n: list(d) for n, d in dims.items()}}
    varying = {
        name: [i for i in range(len(d)) if shapes[name].min[i] != shapes[name].max[i] or d[i] < 0]
        for name, d in dyn.items()
    }
    only_batch = all(v == [0] for v in varying.values())
    batch_ranges = {(shapes[n].min[0], shapes[n].opt[0], shapes[n].max[0]) for n in dyn}
    ranges_ok = supports_shape_range(soc_version)
    if dynamic == "auto":
        dynamic = "batch" if only_batch and len(batch_ranges) == 1 else ("shape" if ranges_ok else "dims")
    if dynamic == "shape" and not ranges_ok:
        raise InputError(
            f"ATC cannot compile shape ranges for {soc_version} (Atlas 200/300/500 inference and 200I/500 A2 "
            "SoCs); use dynamic='dims' (gears) or 'batch'"
        )
    # shapes with the dynamic dims pinned to each range's values (for static parts and ATC)
    fixed_other = {
        name: [shapes[name].min[i] if (i not in varying[name]) else -1 for i in range(len(d))]
        for name, d in dyn.items()
    }
    base = {n: list(d) for n, d in dims.items() if n not in dyn}
    base.update(fixed_other)
    if dynamic == "batch":
        if not (only_batch and len(batch_ranges) == 1):
            raise InputError("dynamic='batch' needs every dynamic input to vary in dim 0 only, over one batch range")
        lo, opt, hi = batch_ranges.pop()
        batch = sorted({int(g) for g in gears}) if gears else _batch_gears(lo, opt, hi)
        _gear_count(len(batch), "batch")
        if len(batch) < MIN_GEARS:  # one gear: ATC refuses --dynamic_batch_size; compile it static
            static = {n: list(d) for n, d in dims.items()}
            for name in dyn:
                static[name] = [batch[0] if v < 0 else v for v in base[name]]
            return {"mode": "static", "fixed": static}
        return {"mode": "dymbatch", "fixed": base, "batch_gears": batch}
    if dynamic == "dims":
        if gears:
            gear_list = [{n: list(g[n]) for n in dyn} for g in gears]
        else:
            gear_list = []
            for pick in ("min", "opt", "max"):
                gear = {n: list(getattr(shapes[n], pick)) for n in dyn}
                if gear not in gear_list:
                    gear_list.append(gear)
        _gear_count(len(gear_list), "dims")
        if len(gear_list) < MIN_GEARS:  # one gear: compile it static
            static = {n: list(d) for n, d in dims.items()}
            static.update({n: list(v) for n, v in gear_list[0].items()})
            return {"mode": "static", "fixed": static}
        return {"mode": "dymdims", "fixed": base, "dims_gears": gear_list}
    if dynamic == "shape":
        ranges = {n: [list(shapes[n].min), list(shapes[n].max)] for n in dyn}
        return {"mode": "dymshape", "fixed": base, "ranges": ranges}
    raise InputError(f"dynamic must be 'auto', 'batch', 'dims' or 'shape', got {dynamic!r}")


def _shape_text(name: str, dims: Sequence[int]) -> str:
    return f"{name}:{','.join(str(v) for v in dims)}"


def atc_command(
    atc: str,
    onnx_path: Path,
    output_stem: Path,
    soc_version: str,
    inputs: Sequence[TensorSpec],
    plan: Mapping[str, Any],
    precision_mode: str,
    options: Mapping[str, Any],
) -> list[str]:
    """The ATC argument list for ``plan`` (from :func:`plan_dynamic`)."""
    names = [s.name for s in inputs]
    mode = plan["mode"]
    cmd = [atc, "--framework=5", f"--model={onnx_path}", f"--output={output_stem}", f"--soc_version={soc_version}"]
    fixed = plan["fixed"]
    # NCHW only for 4-D inputs that look channel-first (dim 1 of 1..4); ND for everything else
    # and always for dims/shape modes (ATC requires ND for --dynamic_dims).
    nchw = all(len(fixed[n]) == 4 and 1 <= fixed[n][1] <= 4 for n in names)
    nd = mode in ("dymdims", "dymshape") or not nchw
    cmd.append(f"--input_format={options.get('input_format') or ('ND' if nd else 'NCHW')}")
    if mode == "dymshape":
        lo_hi = plan["ranges"]
        if options.get("range_syntax", "input_shape") == "input_shape_range":
            parts = []
            for n in names:
                if n in lo_hi:
                    lo, hi = lo_hi[n]
                    parts.append(f"{n}:[{','.join(str(a) if a == b else f'{a}~{b}' for a, b in zip(lo, hi))}]")
                else:
                    parts.append(f"{n}:[{','.join(str(v) for v in fixed[n])}]")
            cmd.append(f"--input_shape_range={';'.join(parts)}")
        else:
            parts = []
            for n in names:
                if n in lo_hi:
                    lo, hi = lo_hi[n]
                    parts.append(f"{n}:{','.join(str(a) if a == b else f'{a}~{b}' for a, b in zip(lo, hi))}")
                else:
                    parts.append(_shape_text(n, fixed[n]))
            cmd.append(f"--input_shape={';'.join(parts)}")
    else:
        cmd.append(f"--input_shape={';'.join(_shape_text(n, fixed[n]) for n in names)}")
    if mode == "dymbatch":
        cmd.append(f"--dynamic_batch_size={','.join(str(g) for g in plan['batch_gears'])}")
    elif mode == "dymdims":
        gear_texts = []
        for gear in plan["dims_gears"]:
            values = [gear[n][i] for n in names if n in gear for i, v in enumerate(fixed[n]) if v < 0]
            gear_texts.append(",".join(str(v) for v in values))
        cmd.append(f"--dynamic_dims={';'.join(gear_texts)}")
    cmd.append(f"--precision_mode={precision_mode}")
    cmd.append(f"--log={options.get('atc_log', 'error')}")
    cmd.extend(str(a) for a in options.get("atc_args", ()))
    return cmd


def _max_output_bytes(onnx_path: Path, inputs: Sequence[TensorSpec], plan: Mapping[str, Any]) -> list[int]:
    """Bytes each output needs at the largest input shapes (ais_bench 'dymshape' custom sizes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in inputs:
        shape = plan["ranges"][spec.name][1] if spec.name in plan["ranges"] else plan["fixed"][spec.name]
        feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return [int(v.nbytes) for v in session.run(None, feeds)]


def _error_lines(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    keep = [ln for ln in lines if (ln[:1] == "E" and ln[1:6].isdigit()) or "ERROR" in ln or "failed" in ln.lower()]
    return "\n  ".join((keep or lines)[-12:])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _produced_om(stem: Path) -> Path | None:
    """The ``.om`` ATC wrote for ``--output=<stem>``: ``<stem>.om`` or ``<stem>_<os>_<arch>.om``."""
    exact = stem.with_name(stem.name + ".om")
    if exact.is_file():
        return exact
    suffixed = sorted(stem.parent.glob(f"{glob.escape(stem.name)}_*.om"))
    return suffixed[0] if len(suffixed) == 1 else None


def compile_om(request: CompileRequest, options: Mapping[str, Any], soc_version: str) -> Path:
    """Run ATC for ``request``; write the ``.om`` to ``request.output_path`` and its sidecar."""
    atc = find_atc(options)
    onnx_path = Path(request.onnx_path)
    inputs, outputs = read_onnx_specs(onnx_path)
    if request.precision == "int8":
        raise BackendError(
            "ATC compiles int8 only from AMCT-quantized models: quantize the ONNX with AMCT "
            "(amct_onnx) first, then compile that file with precision 'fp16'"
        )
    precision_mode = options.get("precision_mode") or PRECISION_MODES.get(request.precision)
    if precision_mode is None:
        raise InputError(f"precision must be one of {sorted(PRECISION_MODES)} or 'int8', got {request.precision!r}")
    plan = plan_dynamic(inputs, request.shapes, str(options.get("dynamic", "auto")), options.get("gears"), soc_version)
    with tempfile.TemporaryDirectory(prefix="facelib-atc-") as tmp:
        stem = Path(tmp) / onnx_path.stem
        cmd = atc_command(atc, onnx_path, stem, soc_version, inputs, plan, str(precision_mode), options)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=float(options.get("atc_timeout", 7200)), check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"could not run ATC ({exc}); command: {' '.join(cmd)}") from exc
        produced = _produced_om(stem)
        if proc.returncode != 0 or produced is None:
            if proc.returncode == 0:
                found = sorted(p.name for p in stem.parent.iterdir())
                raise BackendError(
                    f"ATC reported success compiling {onnx_path.name} for {soc_version} but wrote no "
                    f"{stem.name}.om or {stem.name}_<os>_<arch>.om (the folder holds {found})\n"
                    f"command: {' '.join(cmd)}"
                )
            raise BackendError(
                f"ATC failed (exit code {proc.returncode}) compiling {onnx_path.name} for {soc_version}:\n  "
                f"{_error_lines(proc.stdout + proc.stderr)}\ncommand: {' '.join(cmd)}"
            )
        output = Path(request.output_path)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(produced), os.fspath(output))
    info = {
        "format": 1,
        "onnx": onnx_path.name,
        "om_size": output.stat().st_size,
        "om_sha256": sha256_of(output),
        "soc_version": soc_version,
        "cann_version": cann_version(atc),
        "precision_mode": precision_mode,
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [s.to_dict() for s in outputs],
        **plan,
    }
    if plan["mode"] == "dymshape":
        info["output_bytes"] = _max_output_bytes(onnx_path, inputs, plan)
    Path(str(output) + SIDECAR_SUFFIX).write_text(json.dumps(info, indent=1))
    return output


def read_sidecar(om_path: Path) -> dict[str, Any] | None:
    """The sidecar of ``om_path``: ``<om>.facelib.json``, or one in the folder naming its sha256."""
    canonical = Path(str(om_path) + SIDECAR_SUFFIX)
    if canonical.is_file():
        return dict(json.loads(canonical.read_text()))
    size = om_path.stat().st_size
    digest: str | None = None
    for candidate in sorted(om_path.parent.glob("*" + SIDECAR_SUFFIX)):
        try:
            info = json.loads(candidate.read_text())
        except (OSError, ValueError):
            continue
        if info.get("om_size") != size:
            continue
        digest = digest or sha256_of(om_path)
        if info.get("om_sha256") == digest:
            try:
                shutil.copyfile(candidate, canonical)  # found by content: remember under the new name
                candidate.unlink()
            except OSError:
                pass
            return dict(info)
    return None
