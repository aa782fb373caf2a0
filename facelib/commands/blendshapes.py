"""``facelib blendshapes`` and the expression-capture converters (mediapipe, faceboxes, regressor)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from facelib.commands._common import _print_json
from facelib.models.registry import DEFAULT_MODELS

# --- facelib blendshapes / facelib convert mediapipe ----------------------------------------


def _add_blendshapes(sub: Any) -> None:
    p = sub.add_parser("blendshapes", help="ARKit-52 blendshapes and head pose from an image, a video or a webcam")
    p.add_argument("input", nargs="?", help="image or video file (omit with --webcam)")
    p.add_argument("--webcam", type=int, metavar="N", help="read webcam device N instead of a file")
    p.add_argument(
        "--model",
        default=DEFAULT_MODELS["blendshapes"],
        help=f"model package directory or hub name (default {DEFAULT_MODELS['blendshapes']})",
    )
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--num-faces", type=int, default=1, help="most faces per image (default 1)")
    p.add_argument("--mode", choices=["image", "video", "live"], help="default: image for images, video for files")
    p.add_argument("--smoothing", action="store_true", help="One-Euro landmark smoothing in video mode")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--json", action="store_true", help="print JSON (one object per frame for videos)")
    p.add_argument("--landmarks", action="store_true", help="include the 478 landmarks in the JSON")
    p.add_argument("--draw", type=Path, metavar="OUT", help="write the input with the results drawn (.png / .mp4)")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write a Live Link Face CSV (Unreal, Blender, Maya)")
    p.add_argument("--csv-fps", type=float, default=60.0, help="timecode frame rate of --csv (default 60)")
    p.add_argument("--livelink", metavar="HOST:PORT", help="stream every frame to a Live Link Face receiver over UDP")
    p.add_argument(
        "--export", type=Path, metavar="OUT", help="write the take as animation: OUT.fbx | OUT.glb | OUT.usd"
    )
    p.add_argument("--rig", type=Path, help="animate this character (.glb/.fbx/.usd) in --export (default: stand-in)")
    p.set_defaults(func=_run_blendshapes)


def _frame_json(frame: Any, landmarks: bool) -> dict[str, Any]:
    from facelib.processing.arkit import ARKIT_NAMES

    faces = []
    for face in frame.faces:
        item: dict[str, Any] = {
            "box": [round(float(v), 2) for v in face.box],
            "score": round(float(face.score), 5),
            "blendshapes": {n: round(float(v), 5) for n, v in zip(ARKIT_NAMES, face.blendshapes)},
        }
        if face.head_pose is not None:
            item["head_pose"] = dict(zip(("yaw", "pitch", "roll"), (round(float(v), 3) for v in face.head_pose)))
        if face.transform is not None:
            item["transform"] = face.transform.round(6).tolist()
        if landmarks and face.landmarks is not None:
            item["landmarks"] = face.landmarks.round(3).tolist()
        faces.append(item)
    return {"index": frame.index, "timestamp_ms": round(float(frame.timestamp_ms), 3), "faces": faces}


def _open_capture(args: argparse.Namespace, mode: str) -> Any:
    from facelib.tasks.blendshapes import BlendshapeCapture

    return BlendshapeCapture(
        args.model, mode=mode, backend=args.backend, num_faces=args.num_faces, smoothing=args.smoothing
    )


def _run_blendshapes(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.io.image import is_image_path, write_image
    from facelib.io.video import is_video_path

    if (args.input is None) == (args.webcam is None):
        raise InputError("give either an INPUT file or --webcam N")
    if args.num_faces < 1:
        raise InputError(f"--num-faces must be at least 1, got {args.num_faces}")
    is_image = args.input is not None and is_image_path(args.input) and not is_video_path(args.input)
    if args.input is not None:
        from facelib.io.paths import require_input_file

        require_input_file(args.input)
    _check_blendshape_outputs(args, is_image)
    if is_image:
        from facelib.io.draw_face import draw_frame

        with _open_capture(args, args.mode or "image") as capture:
            frame = capture.process(args.input)
        if args.json:
            _print_json(_frame_json(frame, args.landmarks))
        else:
            _print_blendshape_frame(frame)
        if args.draw:
            from facelib.io.image import read_image

            write_image(args.draw, draw_frame(read_image(args.input), frame))
        with _blendshape_sinks(args) as sinks:
            for sink in sinks:
                sink(frame)
        return 0
    return _run_blendshapes_video(args)


def _check_blendshape_outputs(args: argparse.Namespace, is_image: bool) -> None:
    """``--draw`` and ``--csv`` name files of the right kind, before any model is loaded."""
    from facelib.errors import InputError
    from facelib.io.atomic import check_output_file
    from facelib.io.image import is_image_path
    from facelib.io.video import is_video_path

    if args.csv is not None:
        check_output_file(args.csv, "CSV")
    if args.draw is not None:
        check_output_file(args.draw, "image" if is_image else "video")
        if is_image and not is_image_path(args.draw):
            raise InputError(f"--draw {args.draw}: an image input is drawn to an image file (.png, .jpg ...)")
        if not is_image and not is_video_path(args.draw):
            raise InputError(f"--draw {args.draw}: a video input is drawn to a video file (.mp4, .mkv, .avi ...)")


def _print_blendshape_frame(frame: Any) -> None:
    from facelib.processing.arkit import ARKIT_NAMES

    if not frame.faces:
        print("no face found")
    for i, face in enumerate(frame.faces):
        box = ", ".join(f"{float(v):.1f}" for v in face.box)
        print(f"face {i}: box [{box}] score {float(face.score):.3f}")
        if face.head_pose is not None:
            yaw, pitch, roll = (float(v) for v in face.head_pose)
            print(f"  head pose: yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f} degrees")
        order = sorted(range(len(face.blendshapes)), key=lambda j: -float(face.blendshapes[j]))[:10]
        print("  " + ", ".join(f"{ARKIT_NAMES[j]} {float(face.blendshapes[j]):.3f}" for j in order))


@contextlib.contextmanager
def _blendshape_sinks(args: argparse.Namespace) -> Iterator[list[Callable[[Any], object]]]:
    """Writers for ``--csv``, ``--livelink`` and ``--export``, each a callable taking one BlendshapeFrame.

    ``--export`` collects the frames and writes the animation file when the run ends without error.
    """
    from facelib.errors import InputError
    from facelib.io.livelink import LiveLinkCSVWriter, LiveLinkSender

    with contextlib.ExitStack() as stack:
        sinks: list[Callable[[Any], object]] = []
        if args.csv is not None:
            sinks.append(stack.enter_context(LiveLinkCSVWriter(args.csv, fps=args.csv_fps)).write)
        if args.livelink is not None:
            host, sep, port = args.livelink.rpartition(":")
            if not sep or not port.isdigit():
                raise InputError(f"--livelink takes HOST:PORT, got {args.livelink!r}")
            sender = stack.enter_context(LiveLinkSender(host or "127.0.0.1", int(port)))
            sinks.append(lambda frame: sender.send_frame(frame, use_timestamp=True))
        collector = None
        if args.export is not None:
            from facelib.io.animation_export import TakeCollector, check_export_path

            check_export_path(args.export, args.rig)
            collector = TakeCollector()
            sinks.append(collector)
        elif args.rig is not None:
            raise InputError("--rig is used with --export")
        yield sinks
        if collector is not None:
            from facelib.io.animation_export import export_blendshapes

            print(export_blendshapes(args.export, collector.take(), args.rig).summary(), file=sys.stderr)


def _run_blendshapes_video(args: argparse.Namespace) -> int:
    from facelib._progress import progress

    source: Any = args.webcam if args.webcam is not None else args.input
    mode = args.mode or ("live" if args.webcam is not None else "video")
    writer = None
    frames = faces_seen = 0
    try:
        with _open_capture(args, mode) as capture, _blendshape_sinks(args) as sinks:
            from facelib.io.draw_face import draw_frame
            from facelib.io.video import VideoReader, VideoWriter

            fps = 30.0
            total = None
            if args.webcam is None:
                with VideoReader(source) as probe:
                    fps, total = probe.fps, probe.frame_count or None
            if args.max_frames is not None and total is not None:
                total = min(total, args.max_frames)
            stream = capture.iter_video(source, max_frames=args.max_frames)
            for frame, result in progress(stream, total=total, desc="blendshapes", unit="frame"):
                frames += 1
                faces_seen += bool(result.faces)
                if args.json:
                    print(json.dumps(_frame_json(result, args.landmarks)), flush=True)
                for sink in sinks:
                    sink(result)
                if args.draw:
                    if writer is None:
                        writer = VideoWriter(args.draw, fps)
                    writer.write(draw_frame(frame.image, result))
    except BaseException:
        if writer is not None:
            writer.abort()  # Ctrl-C, SIGTERM or an error: no half-written video
        raise
    if writer is not None:
        writer.close()
    if not args.json:
        print(f"{frames} frames, a face in {faces_seen}")
        if args.draw:
            print(f"wrote {args.draw}")
    return 0


def _add_convert_mediapipe(sub: Any) -> None:
    p = sub.add_parser("mediapipe", help="Google MediaPipe face_landmarker.task -> blendshapes package")
    p.add_argument("task", type=Path, help="face_landmarker.task (float16/1)")
    _add_output(p, legacy_positional=True)
    p.add_argument("--detector", type=Path, help="use this ONNX of face_detector.tflite instead of converting")
    p.add_argument("--landmarks", type=Path, help="use this ONNX of face_landmarks_detector.tflite")
    p.add_argument("--blendshapes", type=Path, help="use this ONNX of face_blendshapes.tflite")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset for tf2onnx (default 17)")
    p.add_argument("--no-optimize", action="store_true", help="keep the PRelu activations as converted")
    p.set_defaults(func=_run_convert_mediapipe)


def _run_convert_mediapipe(args: argparse.Namespace) -> int:
    from facelib.models.convert.mediapipe import build_package

    sources = {"task": args.task}
    for role in ("detector", "landmarks", "blendshapes"):
        if getattr(args, role) is not None:
            sources[role] = getattr(args, role)
    package = build_package(sources, _output(args), progress=True, opset=args.opset, optimize=not args.no_optimize)
    print(f"wrote {package.root} ({package.card.name}, variant {package.card.variant})")
    return 0


# --- facelib convert faceboxes / regressor (expression capture) ---------------------------


def _add_output(p: Any, legacy_positional: bool = False) -> None:
    """``-o/--output DIR`` as every converter spells it (plus the old positional where there was one)."""
    p.add_argument("-o", "--output", type=Path, help="package directory to write (replaced if it holds a package)")
    if legacy_positional:
        p.add_argument("output_positional", type=Path, nargs="?", help=argparse.SUPPRESS)


def _output(args: argparse.Namespace) -> Path:
    return _one_of(args.output, getattr(args, "output_positional", None), "-o/--output DIR")


def _one_of(first: Path | None, second: Path | None, what: str) -> Path:
    """The value given once, in either spelling; an InputError when neither or two different ones."""
    from facelib.errors import InputError

    if first is not None and second is not None and first != second:
        raise InputError(f"{what} given twice ({first} and {second}); give it once")
    value = first if first is not None else second
    if value is None:
        raise InputError(f"give {what}")
    return value


def _add_convert_faceboxes(sub: Any) -> None:
    p = sub.add_parser("faceboxes", help="FaceBoxes .pth (FaceBoxesProd.pth) -> face_detection package")
    p.add_argument("weights", type=Path, nargs="?", help="FaceBoxesProd.pth state dict")
    p.add_argument("--weights", dest="weights_flag", type=Path, help=argparse.SUPPRESS)  # the old spelling
    _add_output(p)
    p.add_argument("--score-threshold", type=float, default=0.5, help="face probability threshold (0.5)")
    p.add_argument("--iou-threshold", type=float, default=0.3, help="NMS IoU threshold (0.3)")
    p.set_defaults(func=_run_convert_faceboxes)


def _run_convert_faceboxes(args: argparse.Namespace) -> int:
    from facelib.models.convert.faceboxes import build_package

    package = build_package(
        {"weights": _one_of(args.weights, args.weights_flag, "WEIGHTS (FaceBoxesProd.pth)")},
        _output(args),
        score_threshold=args.score_threshold,
        iou_threshold=args.iou_threshold,
    )
    error = package.card.metadata.get("export_max_abs_error")
    print(f"wrote {package.root} (ONNX vs torch max abs difference {error:.2g})")
    return 0


def _add_convert_regressor(sub: Any) -> None:
    p = sub.add_parser("regressor", help="package your face-crop -> blendshape ONNX regressor with a detector")
    p.add_argument("regressor", type=Path, nargs="?", help="regressor .onnx (one image input)")
    p.add_argument("--regressor", dest="regressor_flag", type=Path, help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--detector", type=Path, required=True, help="FaceBoxes face_detection package dir or .onnx")
    _add_output(p)
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), required=True)
    names = p.add_mutually_exclusive_group(required=True)
    names.add_argument("--names", help="comma-separated output names, in output order")
    names.add_argument("--names-file", type=Path, help="text file with one output name per line")
    p.add_argument("--colour-order", choices=["RGB", "BGR"], default="RGB")
    p.add_argument("--layout", choices=["NCHW", "NHWC"], default="NCHW")
    p.add_argument("--pixel-scale", type=float, default=1.0 / 255.0, help="pixel multiplier before mean/std")
    p.add_argument("--mean", type=float, nargs=3, default=[0.0, 0.0, 0.0])
    p.add_argument("--std", type=float, nargs=3, default=[1.0, 1.0, 1.0])
    p.add_argument("--margin", type=float, default=0.0, help="crop margin per side, fraction of the box")
    p.add_argument("--no-square", action="store_true", help="keep the crop's aspect instead of squaring it")
    p.add_argument("--no-clip", action="store_true", help="do not clip ARKit weights to [0, 1]")
    p.add_argument("--activation", choices=["none", "sigmoid"], default="none")
    p.add_argument(
        "--head-pose",
        nargs=4,
        metavar=("YAW", "PITCH", "ROLL", "UNIT"),
        help="output names of yaw, pitch, roll and their unit (degrees, radians, livelink)",
    )
    p.add_argument("--name", default="regressor", help="package name")
    p.add_argument("--licence", default="unknown", help="licence of your weights")
    p.set_defaults(func=_run_convert_regressor)


def _run_convert_regressor(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.models.convert.regressor import build_package

    if args.names_file is not None:
        try:
            text = args.names_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read {args.names_file}: {exc}") from exc
        names = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        names = [n.strip() for n in args.names.split(",") if n.strip()]
    head = None
    if args.head_pose:
        head = {"names": args.head_pose[:3], "unit": args.head_pose[3]}
    package = build_package(
        {"regressor": _one_of(args.regressor, args.regressor_flag, "REGRESSOR (.onnx)"), "detector": args.detector},
        _output(args),
        input_size=args.input_size,
        output_names=names,
        colour_order=args.colour_order,
        layout=args.layout,
        pixel_scale=args.pixel_scale,
        mean=args.mean,
        std=args.std,
        margin=args.margin,
        square=not args.no_square,
        clip=not args.no_clip,
        activation=args.activation,
        head_pose=head,
        name=args.name,
        licence=args.licence,
    )
    extra = package.card.outputs.get("non_arkit_names") or []
    print(f"wrote {package.root}: {len(names)} outputs" + (f", non-ARKit (kept as extras): {extra}" if extra else ""))
    return 0


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_blendshapes]
CONVERTERS: list[Callable[[Any], None]] = [_add_convert_mediapipe, _add_convert_faceboxes, _add_convert_regressor]
EVALUATIONS: list[Callable[[Any], None]] = []
