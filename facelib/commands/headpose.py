"""``facelib headpose``, ``facelib eval headpose`` and the FSA-Net / UltraFace converters."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.commands._common import _JsonListWriter, _print_json
from facelib.models.registry import DEFAULT_MODELS

# --- facelib headpose / eval headpose / convert fsanet, ultraface ----------------------------


def _headpose_task(args: argparse.Namespace, detector: bool = True) -> Any:
    from facelib.tasks.head_pose import HeadPose

    return HeadPose(
        args.model,
        detector=args.detector if detector and args.detector else None,
        backend=args.backend,
        variants=args.variants.split(",") if args.variants else None,
    )


def _add_headpose_options(p: Any) -> None:
    model, detector = DEFAULT_MODELS["head_pose"], DEFAULT_MODELS["face_detection"]
    p.add_argument("--model", default=model, help=f"head_pose package directory or hub name (default {model})")
    p.add_argument(
        "--detector",
        default=detector,
        help=f"face_detection package directory or hub name: UltraFace or FaceBoxes (default {detector})",
    )
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--variants", default=None, help="comma-separated FSA-Net variants (default: all, averaged)")


def _add_headpose(sub: Any) -> None:
    p = sub.add_parser("headpose", help="head pose (yaw, pitch, roll in degrees) of every face in images or a video")
    p.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT",
        help="image files, one video file, or a webcam device number (facelib headpose 0)",
    )
    _add_headpose_options(p)
    p.add_argument("--json", action="store_true", help="print JSON: per face box, score, yaw, pitch, roll")
    p.add_argument(
        "--draw",
        type=Path,
        default=None,
        metavar="OUT",
        help="write annotated output: an image file (one image), a directory (several), a video file (video)",
    )
    p.set_defaults(func=_run_headpose)


def _annotate(image: Any, faces: Any) -> Any:
    from facelib.io.draw import draw_head_poses

    return draw_head_poses(image, faces)


def _face_line(face: Any) -> str:
    box = ", ".join(f"{v:.1f}" for v in face.box)
    return f"  box [{box}] score {face.score:.3f}  yaw {face.yaw:7.2f}  pitch {face.pitch:7.2f}  roll {face.roll:7.2f}"


def _face_json(face: Any) -> dict[str, Any]:
    return {
        "box": [round(float(v), 2) for v in face.box],
        "score": round(face.score, 5),
        "yaw": face.yaw,
        "pitch": face.pitch,
        "roll": face.roll,
    }


def _run_headpose(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.io.image import read_image, write_image
    from facelib.io.video import is_video_path

    # a bare number that is not a file is a webcam index
    videos: list[Path | int] = [
        int(str(p)) if str(p).isdigit() and not p.exists() else p
        for p in args.inputs
        if is_video_path(p) or (str(p).isdigit() and not p.exists())
    ]
    if videos and len(args.inputs) > 1:
        raise InputError("give either image files or exactly one video file")
    _check_headpose_paths(args, videos)
    with _headpose_task(args) as pose:
        if videos:
            return _headpose_video(pose, videos[0], args)
        images = [read_image(p) for p in args.inputs]
        results = pose.predict(images)
        report = []
        for index, (path, image, faces) in enumerate(zip(args.inputs, images, results)):
            report.append({"input": str(path), "faces": [_face_json(f) for f in faces]})
            if not args.json:
                print(f"{path}: {len(faces)} face(s)")
                for face in faces:
                    print(_face_line(face))
            if args.draw is not None:
                target = args.draw if len(images) == 1 else args.draw / f"{index:04d}_{Path(path).stem}.png"
                write_image(target, _annotate(image, faces))
                print(f"wrote {target}", file=sys.stderr)
        if args.json:
            _print_json(report if len(report) > 1 else report[0])
    return 0


def _check_headpose_paths(args: argparse.Namespace, videos: list[Path | int]) -> None:
    """Inputs exist and ``--draw`` fits them, before any model is loaded."""
    from facelib.errors import InputError
    from facelib.io.image import is_image_path
    from facelib.io.paths import require_input_file
    from facelib.io.video import is_video_path

    for path in args.inputs:
        if not (videos and isinstance(videos[0], int)):
            require_input_file(path)
    draw = args.draw
    if draw is None:
        return
    if videos and not is_video_path(draw):
        raise InputError(f"--draw {draw}: a video input is drawn to a video file (.mp4, .mkv, .avi ...)")
    if not videos and len(args.inputs) == 1 and (draw.is_dir() or not is_image_path(draw)):
        raise InputError(f"--draw {draw}: one image is drawn to an image file (.png, .jpg ...)")
    if not videos and len(args.inputs) > 1 and (draw.suffix or draw.is_file()) and not draw.is_dir():
        raise InputError(f"--draw {draw}: several images are drawn into a directory; give a folder name")


def _headpose_video(pose: Any, source: Path | int, args: argparse.Namespace) -> int:
    from facelib._progress import progress
    from facelib.errors import MediaReadError
    from facelib.io.video import VideoReader, VideoWriter

    count = 0
    with VideoReader(source) as reader:
        fps = reader.fps
        listing = _JsonListWriter({"input": str(source), "fps": fps}, "frames") if args.json else None
        writer = VideoWriter(args.draw, fps) if args.draw is not None else None
        try:
            # a bar on stderr when the per-frame lines are not on the terminal (--json, or redirected)
            bar: bool | None = None if args.json or not sys.stdout.isatty() else False
            stream = progress(pose.predict_video(reader), reader.frame_count or None, "headpose", bar, "frame")
            for frame in stream:
                count += 1
                if listing is not None:
                    entry = {"index": frame.index, "timestamp_ms": frame.timestamp_ms}
                    entry["reused_boxes"] = frame.reused_boxes
                    entry["faces"] = [_face_json(f) for f in frame.faces]
                    listing.add(entry)
                else:
                    note = " (previous boxes)" if frame.reused_boxes else ""
                    print(f"frame {frame.index}: {len(frame.faces)} face(s){note}", flush=True)
                    for face in frame.faces:
                        print(_face_line(face))
                if writer is not None:
                    writer.write(_annotate(frame.image, frame.faces))
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
    if count == 0:
        raise MediaReadError(f"{source} has no decodable frames")
    if writer is not None:
        print(f"wrote {args.draw}", file=sys.stderr)
    if listing is not None:
        listing.close()
    return 0


def _add_eval_headpose(sub: Any) -> None:
    p = sub.add_parser("headpose", help="MAE of yaw/pitch/roll on AFLW2000-style .jpg + .mat (Pose_Para)")
    p.add_argument("directory", type=Path, metavar="DIR")
    p.add_argument("--crop", choices=["detector", "landmarks"], default="detector", help="where face boxes come from")
    p.add_argument("--limit", type=int, default=None, help="evaluate at most this many images")
    _add_headpose_options(p)
    p.add_argument("--json", action="store_true", help="print JSON with per-image results")
    p.set_defaults(func=_run_eval_headpose)


def _run_eval_headpose(args: argparse.Namespace) -> int:
    from facelib.tasks.head_pose_eval import evaluate_aflw, format_evaluation

    with _headpose_task(args, detector=args.crop == "detector") as pose:
        result = evaluate_aflw(args.directory, pose, crop=args.crop, limit=args.limit)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(format_evaluation(result))
    return 0


def _add_convert_fsanet(sub: Any) -> None:
    p = sub.add_parser(
        "fsanet", help="FSA-Net TF frozen graphs (.pb, or .onnx converted from them) -> head_pose package"
    )
    p.add_argument(
        "checkpoints",
        nargs="*",
        type=Path,
        metavar="FILE_OR_DIR",
        help="the three .pb (or .onnx) files under their upstream names, or the folder holding them",
    )
    p.add_argument("--capsule", type=Path, help="fsanet_capsule_3_16_2_21_5.pb (or .onnx)")
    p.add_argument("--var-capsule", type=Path, help="fsanet_var_capsule_3_16_2_21_5.pb (or .onnx)")
    p.add_argument("--nos-capsule", type=Path, help="fsanet_noS_capsule_3_16_2_192_5.pb (or .onnx)")
    p.add_argument("--from-dir", type=Path, help="a folder holding the three files under their upstream names")
    p.add_argument("-o", "--output", type=Path, required=True, help="package directory to write")
    p.set_defaults(func=_run_convert_fsanet)


def _run_convert_fsanet(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.models.convert.fsanet import VARIANTS, build_package

    sources: dict[str, Path] = {}
    given = {"capsule": args.capsule, "var_capsule": args.var_capsule, "noS_capsule": args.nos_capsule}
    folders = [args.from_dir] if args.from_dir is not None else []
    for path in args.checkpoints:  # positional: files named as upstream names them, or folders
        if path.is_dir():
            folders.append(path)
            continue
        role = next((r for r, stem in VARIANTS.items() if path.stem == stem), None)
        if role is None:
            raise InputError(f"{path}: not an FSA-Net file name ({', '.join(VARIANTS.values())}); use --capsule etc.")
        given[role] = given[role] or path
    for role, stem in VARIANTS.items():
        if given[role] is not None:
            sources[role] = given[role]
            continue
        for folder, suffix in ((f, s) for f in folders for s in (".pb", ".onnx")):
            if (folder / f"{stem}{suffix}").is_file():
                sources[role] = folder / f"{stem}{suffix}"
                break
    if not sources:
        raise InputError("give the FSA-Net files or their folder (or --capsule/--var-capsule/--nos-capsule)")
    package = build_package(sources, args.output, progress=True)
    print(f"wrote {package.root} ({', '.join(package.card.files)})")
    return 0


def _add_convert_ultraface(sub: Any) -> None:
    p = sub.add_parser("ultraface", help="UltraFace ONNX (version-RFB-320.onnx ...) -> face_detection package")
    p.add_argument("source", type=Path, help="the released .onnx file")
    p.add_argument("--variant", default="RFB-320", help="RFB-320 (default), RFB-320-simplified, RFB-640, slim-320")
    p.add_argument("-o", "--output", type=Path, required=True, help="package directory to write")
    p.set_defaults(func=_run_convert_ultraface)


def _run_convert_ultraface(args: argparse.Namespace) -> int:
    from facelib.models.convert.ultraface import build_package

    package = build_package({"detector": args.source}, args.output, variant=args.variant)
    print(f"wrote {package.root}")
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_headpose]
CONVERTERS: list[Callable[[Any], None]] = [_add_convert_fsanet, _add_convert_ultraface]
EVALUATIONS: list[Callable[[Any], None]] = [_add_eval_headpose]
