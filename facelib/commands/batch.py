"""``facelib batch TASK INPUTS... -o OUTDIR``: one task over a whole dataset (local or Ray)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.commands._common import _backend_options
from facelib.models.registry import DEFAULT_MODELS as _DEFAULT

#: Task options of ``facelib batch TASK``: (flag, keyword, argparse settings); options default to
#: None so that the adapter's defaults apply to what the user did not give.
_TASK_OPTIONS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "headpose": [
        ("--model", "model", {"help": f"head_pose package directory or hub name (default {_DEFAULT['head_pose']})"}),
        (
            "--detector",
            "detector",
            {"help": f"face_detection package or hub name (default {_DEFAULT['face_detection']})"},
        ),
        ("--variants", "variants", {"help": "comma-separated FSA-Net variants (default: all, averaged)"}),
        ("--draw", "draw", {"action": "store_true", "default": None, "help": "also write annotated .png/.mp4"}),
    ],
    "blendshapes": [
        ("--model", "model", {"help": f"blendshapes package or hub name (default {_DEFAULT['blendshapes']})"}),
        ("--num-faces", "num_faces", {"type": int, "help": "most faces per image (default 1)"}),
        ("--smoothing", "smoothing", {"action": "store_true", "default": None, "help": "One-Euro smoothing"}),
        ("--max-frames", "max_frames", {"type": int, "help": "stop each video after this many frames"}),
        ("--csv-fps", "csv_fps", {"type": float, "help": "timecode rate of the Live Link CSVs (default 60)"}),
    ],
    "audio2face": [
        ("--model", "model", {"help": f"audio2face package or hub name (default {_DEFAULT['audio2face']})"}),
        ("--subject", "subject", {"help": "speaking style for items without a 'subject' column"}),
        ("--template", "template", {"help": "face mesh for items without a 'template' column"}),
        ("--max-context", "max_context", {"type": int, "help": "decoder cache in frames (default 600)"}),
        ("--format", "format", {"choices": ["npy", "mp4"], "help": "npy (default) or rendered mp4"}),
        ("--size", "size", {"type": int, "help": "mp4 size in pixels (default 800)"}),
    ],
    "motion": [
        ("--model", "model", {"help": f"motion_transfer package or hub name (default {_DEFAULT['motion_transfer']})"}),
        ("--source", "source", {"help": "source image: INPUTS are driving videos"}),
        ("--driving", "driving", {"help": "driving video: INPUTS are source images"}),
        ("--movement", "movement", {"choices": ["relative", "absolute"], "help": "default relative"}),
        ("--adapt-scale", "adapt_scale", {"action": "store_true", "default": None}),
        ("--best-frame", "best_frame", {"type": int, "help": "reference driving frame index"}),
        ("--batch-size", "batch_size", {"type": int, "help": "frames per generator call (default 4)"}),
        ("--format", "format", {"choices": ["mp4", "npy"], "help": "mp4 (default) or npy"}),
        ("--no-audio", "audio", {"action": "store_false", "default": None, "help": "do not copy driving audio"}),
    ],
}


def _add_batch(sub: Any) -> None:
    p = sub.add_parser(
        "batch",
        help="run a task over a whole dataset (files, folders, globs, manifests) locally or on Ray",
        description="Run TASK over every input; outputs go to OUTDIR with one row per item in "
        "OUTDIR/results.parquet.  Running again with the same OUTDIR resumes: finished items are "
        "not redone.  Exit status 0 when every item is ok, 1 when some have error rows.",
    )
    tasks = p.add_subparsers(dest="batch_task", metavar="TASK", required=True)
    for task, options in _TASK_OPTIONS.items():
        t = tasks.add_parser(task, help=f"facelib {task} over many inputs")
        t.add_argument(
            "inputs",
            nargs="+",
            metavar="INPUT",
            help="files, folders, glob patterns, or a manifest .csv/.parquet (column 'input', optional "
            "'name', others are per-item parameters)",
        )
        t.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR", help="job folder")
        t.add_argument("--engine", choices=["local", "ray"], default="local", help="default local")
        t.add_argument("--workers", type=int, default=None, help="worker processes / Ray actors")
        t.add_argument("--address", default=None, help="Ray cluster address (default RAY_ADDRESS or a local one)")
        t.add_argument("--backend", default=None, help="backend name (see 'facelib backends')")
        t.add_argument("--backend-option", action="append", default=[], metavar="KEY=VALUE")
        t.add_argument("--ray-num-cpus", type=float, default=None, help="CPUs per Ray actor (default 1)")
        t.add_argument("--ray-num-gpus", type=float, default=None, help="GPUs per Ray actor (default: by backend)")
        t.add_argument(
            "--ray-resource", action="append", default=[], metavar="NAME=AMOUNT", help="custom resource per actor"
        )
        t.add_argument("--retry-errors", action="store_true", help="redo items whose row is an error")
        t.add_argument("--max-attempts", type=int, default=2, help="starts of an item whose worker dies (default 2)")
        t.add_argument("--no-progress", action="store_true", help="no progress bar")
        for flag, dest, settings in options:
            t.add_argument(flag, dest=f"opt_{dest}", **{"default": None, **settings})
    p.set_defaults(func=_run_batch)


def _ray_resources(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.ray_num_cpus is None and args.ray_num_gpus is None and not args.ray_resource:
        return None
    from facelib.batch.ray_engine import actor_resources

    wants = actor_resources(args.backend or "auto", _backend_options(args.backend_option) or None)
    if args.ray_num_cpus is not None:
        wants["num_cpus"] = args.ray_num_cpus
    if args.ray_num_gpus is not None:
        wants["num_gpus"] = args.ray_num_gpus
    if args.ray_resource:
        wants["resources"] = {k: float(v) for k, v in _backend_options(args.ray_resource).items()}
    return wants


def _run_batch(args: argparse.Namespace) -> int:
    from facelib import batch

    options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    if args.backend is not None:
        options["backend"] = args.backend
    if args.backend_option:
        options["backend_options"] = _backend_options(args.backend_option)
    result = batch.run(
        args.batch_task,
        args.inputs,
        args.output,
        engine=args.engine,
        workers=args.workers,
        address=args.address,
        ray_resources=_ray_resources(args),
        retry_errors=args.retry_errors,
        max_attempts=args.max_attempts,
        progress=False if args.no_progress else None,
        **options,
    )
    errors = _error_rows(result.results)
    print(
        f"{result.total} items: {result.processed} done now ({result.ok} ok, {result.errors} errors) in "
        f"{result.seconds:.1f} s, {result.skipped} done before; results: {result.results}"
    )
    for name, kind, message in errors[:10]:
        print(f"  error {name}: {kind}: {message}")
    if len(errors) > 10:
        print(f"  ... {len(errors) - 10} more error rows in the results table")
    return 1 if errors else 0


def _error_rows(path: Path) -> list[tuple[str, str, str]]:
    from facelib.batch.table import pyarrow_modules

    _, pq = pyarrow_modules("Reading batch results")
    table = pq.read_table(path, columns=["name", "status", "error_type", "error"]).to_pylist()
    return [(r["name"], r["error_type"], r["error"]) for r in table if r["status"] != "ok"]


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_batch]
CONVERTERS: list[Callable[[Any], None]] = []
EVALUATIONS: list[Callable[[Any], None]] = []
