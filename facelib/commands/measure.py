"""``facelib bench`` and ``facelib check``: speed and agreement of a model or task on a backend."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.commands._common import (
    _add_backend_args,
    _backend_options,
    _print_json,
)
from facelib.commands.precision import add_precision_args


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="latency percentiles, throughput and peak memory of a model or task")
    p.add_argument("target", help=_TARGET_HELP)
    _add_backend_args(p)
    p.add_argument("--batch", type=int, default=1, help="batch size for dynamic batch inputs (default 1)")
    p.add_argument("--loop", type=int, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    _add_task_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_bench)


_TARGET_HELP = (
    "model package directory, model file, hub model name (facelib models list), or a task: headpose, "
    "blendshapes, audio2face, motion (with --input)"
)


def _model_target(target: str) -> Path:
    """``target`` as a path when it exists, else a hub model name resolved (fetched) to its package."""
    path = Path(target)
    if path.exists():
        return path
    from facelib.models.hub import resolve_model

    return resolve_model(target)


def _add_task_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tasks")
    g.add_argument("--model", metavar="PKG|NAME", help="task model: package directory or hub name (default per task)")
    g.add_argument(
        "--input", action="append", default=[], metavar="FILE", help="real input: image, video or audio (repeatable)"
    )
    g.add_argument("--detector", metavar="PKG|NAME", help="face detector of tasks that use one")
    g.add_argument("--template", metavar="MESH", help="audio2face: neutral mesh when the package has none")
    g.add_argument("--max-frames", type=int, default=64, help="frames read from a video input (default 64)")


def _task_target(args: argparse.Namespace) -> Any:
    """The resolved task run when ``args.target`` names a task (and no such file exists), else None."""
    from facelib.tools.adapters import ADAPTERS

    if args.target not in ADAPTERS or Path(args.target).exists():
        return None
    from facelib.tools.task_tools import prepare

    return prepare(args.target, args.model, args.input, detector=args.detector, template=args.template)


def _run_bench(args: argparse.Namespace) -> int:
    from facelib.backends.registry import get_backend
    from facelib.errors import InputError
    from facelib.tools.bench import bench_model

    if args.batch < 1 or args.loop < 1 or args.warmup < 0:
        raise InputError("--batch and --loop must be >= 1 and --warmup >= 0")
    run = _task_target(args)
    if run is not None:
        from facelib.tools.task_tools import bench_task

        options = _backend_options(args.backend_option)
        timing = bench_task(
            run, args.backend, options, batch=args.batch, loop=args.loop, warmup=args.warmup, max_frames=args.max_frames
        )
        return _print_timings(args, get_backend(args.backend, **options).name, [timing])
    backend = get_backend(args.backend, **_backend_options(args.backend_option))
    timings = bench_model(_model_target(args.target), backend, batch=args.batch, loop=args.loop, warmup=args.warmup)
    return _print_timings(args, backend.name, timings)


def _print_timings(args: argparse.Namespace, backend: str, timings: list[Any]) -> int:
    from facelib.tools.bench import format_timings

    if args.json:
        _print_json({"backend": backend, "timings": [t.to_dict() for t in timings]})
    else:
        print(f"backend {backend}")
        print(format_timings(timings))
    return 0


def _add_check(sub: Any) -> None:
    p = sub.add_parser("check", help="compare a backend's outputs with a reference backend's")
    p.add_argument("target", help=_TARGET_HELP)
    _add_backend_args(p)
    p.add_argument("--reference", default="onnxruntime", help="reference backend (default onnxruntime)")
    p.add_argument(
        "--tolerance", type=float, help="largest max-abs difference accepted (default 1e-4 for models, per task)"
    )
    p.add_argument("--batch", type=int, default=1, help="batch size for dynamic batch inputs (default 1)")
    _add_task_args(p)
    add_precision_args(p)
    p.add_argument(
        "--dataset",
        type=Path,
        metavar="DIR",
        help="with --precision, head pose: AFLW2000-3D style folder (*.jpg + .mat) for the MAE of both",
    )
    p.add_argument(
        "--mediapipe-task",
        type=Path,
        metavar="FILE",
        help="with --precision, blendshapes: Google's face_landmarker.task, to compare both with the mediapipe package",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_check)


def _run_check_precision(args: argparse.Namespace) -> int:
    """``check TASK --precision int8``: the variant's accuracy cost against float32 (a report)."""
    from facelib.errors import InputError
    from facelib.models.precision import check_precision
    from facelib.tools.precision_check import format_report, precision_report

    check_precision(args.precision, args.backend if args.backend != "auto" else "onnxruntime")
    if args.precision != "fp32" and args.backend not in ("auto", "onnxruntime"):
        raise InputError(
            f"check --precision compares ONNX Runtime variants; for {args.backend} pass "
            f"--backend-option precision={args.precision} and check it against the reference backend"
        )
    run = _task_target(args)
    if run is None:
        raise InputError("check --precision needs a task (headpose, blendshapes, audio2face, motion) with --input")
    report = precision_report(
        run,
        args.precision,
        calibrate=args.calibrate,
        roles=args.roles,
        dataset=args.dataset,
        mediapipe_task=args.mediapipe_task,
        max_frames=args.max_frames,
    )
    limit = float("inf") if args.tolerance is None else args.tolerance
    failed = [d for d in report.differences if not d.max_abs <= limit]
    if args.json:
        _print_json({**report.to_dict(), "tolerance": args.tolerance, "ok": not failed})
    else:
        print(format_report(report))
    return 1 if failed else 0


def _run_check(args: argparse.Namespace) -> int:
    from facelib.backends.registry import get_backend
    from facelib.tools.check import check_model, format_differences

    if args.precision != "fp32" or args.dataset is not None or args.mediapipe_task is not None:
        return _run_check_precision(args)

    run = _task_target(args)
    if run is not None:
        from facelib.tools.task_tools import check_task

        tolerance = run.adapter.default_tolerance if args.tolerance is None else args.tolerance
        options = _backend_options(args.backend_option)
        diffs = check_task(run, args.backend, args.reference, options, max_frames=args.max_frames)
        backend_name = get_backend(args.backend, **options).name
        reference_name = get_backend(args.reference).name
    else:
        tolerance = 1e-4 if args.tolerance is None else args.tolerance
        backend = get_backend(args.backend, **_backend_options(args.backend_option))
        reference = get_backend(args.reference)
        diffs = check_model(_model_target(args.target), backend, reference, batch=args.batch)
        backend_name, reference_name = backend.name, reference.name
    failed = [d for d in diffs if not d.max_abs <= tolerance]
    if args.json:
        _print_json(
            {
                "backend": backend_name,
                "reference": reference_name,
                "tolerance": tolerance,
                "differences": [d.to_dict() for d in diffs],
                "ok": not failed,
            }
        )
    else:
        print(f"backend {backend_name} against {reference_name}, tolerance {tolerance:g}")
        print(format_differences(diffs, tolerance))
    return 1 if failed else 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_bench, _add_check]
CONVERTERS: list[Callable[[Any], None]] = []
EVALUATIONS: list[Callable[[Any], None]] = []
