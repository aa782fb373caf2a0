"""``facelib motion`` and ``facelib convert fomm``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.models.registry import DEFAULT_MODELS

# --- facelib convert fomm / facelib motion ---------------------------------------------------


def _add_convert_fomm(sub: Any) -> None:
    p = sub.add_parser("fomm", help="First Order Motion Model checkpoint (.pth.tar) -> motion_transfer package")
    p.add_argument("checkpoint", type=Path, help="released checkpoint, e.g. vox-cpk.pth.tar")
    p.add_argument(
        "--config", default=None, help="upstream YAML config file, or preset vox-256 / taichi-256 (default: vox-256)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="package directory to write")
    p.add_argument(
        "--align-corners",
        action="store_true",
        help="grid_sample align_corners=True (PyTorch 1.0 training-time behaviour; default: False as upstream today)",
    )
    p.add_argument("--name", help="package name for the card")
    p.set_defaults(func=_run_convert_fomm)


def _run_convert_fomm(args: argparse.Namespace) -> int:
    from facelib.models.convert.fomm import build_package

    package = build_package(
        {"checkpoint": args.checkpoint},
        args.output,
        progress=True,
        config=args.config,
        align_corners=args.align_corners,
        name=args.name,
    )
    print(f"wrote {package.root} ({', '.join(sorted(package.card.files))})")
    return 0


def _add_motion(sub: Any) -> None:
    p = sub.add_parser("motion", help="animate a source face with a driving video (First Order Motion Model)")
    p.add_argument(
        "--model", default=DEFAULT_MODELS["motion_transfer"], help="motion_transfer package directory or hub name"
    )
    p.add_argument("--source", required=True, type=Path, help="source image")
    p.add_argument("--driving", required=True, help="driving video file, or a webcam index (0, 1, ...)")
    p.add_argument("-o", "--output", required=True, type=Path, help="OUT.mp4, OUT.npy or a directory of PNGs")
    p.add_argument(
        "--movement",
        "--mode",
        dest="movement",
        choices=["relative", "absolute"],
        default="relative",
        help="relative: the source moves as the driver moves from the reference frame (default); "
        "absolute: driving keypoints as they are (--mode is an older name)",
    )
    p.add_argument("--adapt-scale", action="store_true", help="scale movement by keypoint hull areas")
    p.add_argument("--best-frame", default=None, help="reference driving frame: an index or 'auto'")
    p.add_argument("--crop", action="store_true", help="crop the faces of source and driving (needs a face detector)")
    p.add_argument("--paste-back", action="store_true", help="with --crop: paste results into the full source image")
    p.add_argument(
        "--detector",
        default=DEFAULT_MODELS["face_detection"],
        help="face_detection package directory or hub name for --crop: UltraFace or FaceBoxes",
    )
    p.add_argument(
        "--landmarker",
        default=DEFAULT_MODELS["blendshapes"],
        help="MediaPipe face landmarker package or hub name for --best-frame auto",
    )
    p.add_argument("--batch-size", type=int, default=4, help="frames per generator call (webcam: always 1)")
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--no-audio", action="store_true", help="do not copy the driving video's audio")
    p.set_defaults(func=_run_motion)


def _run_motion(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.tasks.motion_transfer import MotionTransfer

    best: int | str | None = args.best_frame
    if best is not None and best != "auto":
        try:
            best = int(best)
        except ValueError:
            raise InputError(f"--best-frame must be an integer or 'auto', got {best!r}") from None
    from facelib.io.paths import require_input_file

    driving: Any = int(args.driving) if str(args.driving).isdigit() else Path(args.driving)
    require_input_file(args.source, "source image")
    if isinstance(driving, Path):
        require_input_file(driving, "driving video")
    with MotionTransfer(
        args.model,
        backend=args.backend,
        movement=args.movement,
        adapt_scale=args.adapt_scale,
        best_frame=best,
        batch_size=args.batch_size,
        landmarker=args.landmarker,
        detector=args.detector if args.crop else None,
        crop=args.crop,
        paste_back=args.paste_back,
    ) as task:
        summary = task.animate_to_file(args.source, driving, args.output, audio=not args.no_audio, progress=True)
    extra = ", audio copied" if summary.audio else ""
    print(f"wrote {summary.output}: {summary.frames} frames at {summary.fps:g} fps{extra}")
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_motion]
CONVERTERS: list[Callable[[Any], None]] = [_add_convert_fomm]
EVALUATIONS: list[Callable[[Any], None]] = []
