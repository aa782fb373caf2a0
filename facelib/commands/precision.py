"""``facelib convert precision``: write a reduced-precision (int8) variant of a model package."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.commands._common import _print_json

#: Card task -> the adapter (``facelib check``/``bench`` task name) that turns media into calls.
ADAPTER_OF_TASK = {
    "head_pose": "headpose",
    "blendshapes": "blendshapes",
    "audio2face": "audio2face",
    "motion_transfer": "motion",
}


def add_precision_args(p: argparse.ArgumentParser, required: bool = False) -> None:
    """``--precision``, ``--calibrate`` and ``--roles``, shared by ``convert precision`` and ``check``."""
    g = p.add_argument_group("reduced precision")
    g.add_argument(
        "--precision",
        required=required,
        default=None if required else "fp32",
        help="int8 (ONNX Runtime on CPU), or bf16 (accelerator plugins only); default fp32",
    )
    g.add_argument(
        "--calibrate",
        action="append",
        default=[],
        type=Path,
        metavar="MEDIA",
        help="real input for calibrating the convolutional files, in the task's --input form (repeatable)",
    )
    g.add_argument(
        "--roles",
        nargs="+",
        metavar="ROLE",
        help="quantize exactly these files, even ones measured slower than fp32 (default: the measured choice)",
    )


def _add_convert_precision(sub: Any) -> None:
    p = sub.add_parser("precision", help="model package -> its int8 variant (files chosen by measurement)")
    p.add_argument("package", help="model package directory or hub name")
    p.add_argument("-o", "--output", type=Path, required=True, help="package directory to write")
    add_precision_args(p, required=True)
    p.add_argument("--max-frames", type=int, default=64, help="frames read from a calibration video (default 64)")
    p.add_argument("--detector", metavar="PKG|NAME", help="face detector for head-pose calibration images")
    p.add_argument("--json", action="store_true", help="print the card's quantization record as JSON")
    p.set_defaults(func=_run_convert_precision)


def _run_convert_precision(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.models.hub import resolve_package
    from facelib.models.precision import check_precision
    from facelib.tools.adapters import get_adapter
    from facelib.tools.precision_check import make_variant
    from facelib.tools.task_tools import TaskRun

    check_precision(args.precision)
    package = resolve_package(args.package, progress=False)
    if package.card.task not in ADAPTER_OF_TASK:
        raise InputError(f"{package.card.task!r} packages have no precision variants; tasks: {sorted(ADAPTER_OF_TASK)}")
    adapter = get_adapter(ADAPTER_OF_TASK[package.card.task])
    options = {"detector": args.detector} if args.detector else {}
    run = TaskRun(adapter, package, tuple(args.calibrate), options)
    variant = make_variant(run, args.precision, args.output, args.calibrate, args.roles, args.max_frames)
    methods = variant.card.metadata.get("quantization", {})
    if args.json:
        _print_json({"package": str(variant.root), "precision": args.precision, "quantization": methods})
        return 0
    print(f"wrote {variant.root} ({args.precision})")
    for role, method in methods.items():
        print(f"  {role}: {method}")
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = []
CONVERTERS: list[Callable[[Any], None]] = [_add_convert_precision]
EVALUATIONS: list[Callable[[Any], None]] = []
