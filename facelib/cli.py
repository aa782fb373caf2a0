"""The ``facelib`` command: thin — parses arguments, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares it and sets
``func`` to a ``_run_<name>(args) -> int``.  Errors that facelib raises on purpose
(:class:`~facelib.errors.FacelibError`) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from facelib import __version__
from facelib.errors import FacelibError

EXIT_USER_ERROR = 2


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


# --- facelib backends -------------------------------------------------------------------------


def _add_backends(sub: Any) -> None:
    p = sub.add_parser("backends", help="list backends: version, availability, formats, origin")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run_backends)


def _run_backends(args: argparse.Namespace) -> int:
    from facelib.backends.registry import failed_plugins, list_backends

    infos = list_backends()
    failures = failed_plugins()
    if args.json:
        _print_json(
            {
                "backends": [i.to_dict() for i in infos],
                "failed_plugins": [
                    {"entry_point": f.entry_point, "origin": f.origin, "error": f.error} for f in failures
                ],
            }
        )
        return 0
    rows = [
        [
            i.name,
            i.version or "-",
            "yes" if i.available else f"no: {i.reason}",
            " ".join(i.formats),
            str(i.priority),
            i.origin,
        ]
        for i in infos
    ]
    print(_table(rows, ["name", "version", "available", "formats", "priority", "from"]))
    for f in failures:
        print(f"\nplugin {f.entry_point!r} from {f.origin} failed to load: {f.error}")
    return 0


# --- facelib info ----------------------------------------------------------------------------


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="show a model package or model file: card, inputs, outputs")
    p.add_argument("path", type=Path, help="model package directory, facelib.json, or a model file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-hash", action="store_true", help="skip sha256 verification of package files")
    p.set_defaults(func=_run_info)


def _specs_text(title: str, specs: Sequence[Any]) -> list[str]:
    return [f"  {title}:"] + [f"    {s.name}  {list(s.shape)}  {s.dtype}" for s in specs]


def _run_info(args: argparse.Namespace) -> int:
    from facelib.errors import ModelFileError
    from facelib.models.card import CARD_FILENAME
    from facelib.models.package import ModelPackage, read_onnx_specs

    path: Path = args.path
    if path.is_dir() or path.name == CARD_FILENAME:
        package = ModelPackage.load(path)
        problems = package.validate(check_hashes=not args.no_hash)
        if args.json:
            _print_json({"path": str(package.root), "card": package.card.to_dict(), "problems": problems})
            return 1 if problems else 0
        card = package.card
        print(f"model package {package.root}")
        print(f"  name {card.name}, task {card.task}, variant {card.variant}, licence {card.licence}")
        if card.source:
            print(f"  source: {json.dumps(card.source)}")
        for role, item in card.files.items():
            print(f"file {item.path} (role {role})")
            lines = _specs_text("inputs", item.inputs) + _specs_text("outputs", item.outputs)
            print("\n".join(lines))
        if card.preprocessing:
            print(f"preprocessing: {json.dumps(card.preprocessing)}")
        if card.outputs:
            print(f"outputs: {json.dumps(card.outputs)}")
        print("valid" if not problems else "problems:\n  " + "\n  ".join(problems))
        return 1 if problems else 0
    if not path.exists():
        raise ModelFileError(f"no such file or directory: {path}")
    if path.suffix == ".onnx":
        inputs, outputs = read_onnx_specs(path)
        if args.json:
            _print_json(
                {
                    "path": str(path),
                    "inputs": [s.to_dict() for s in inputs],
                    "outputs": [s.to_dict() for s in outputs],
                }
            )
            return 0
        print(f"ONNX model {path} ({path.stat().st_size:,} bytes)")
        print("\n".join(_specs_text("inputs", inputs) + _specs_text("outputs", outputs)))
        return 0
    return _info_native(path, args.json)


def _info_native(path: Path, as_json: bool) -> int:
    from facelib.backends.registry import backend_class, list_backends
    from facelib.errors import ModelFileError

    loaders = [i for i in list_backends() if path.suffix in i.formats]
    if not loaders:
        raise ModelFileError(
            f"{path}: no registered backend reads {path.suffix!r} files; "
            "see 'facelib backends' for the formats each backend loads"
        )
    usable = [i for i in loaders if i.available]
    if not usable:
        names = ", ".join(f"{i.name} ({i.reason})" for i in loaders)
        raise ModelFileError(f"{path}: backends that read {path.suffix} files cannot run here: {names}")
    backend = backend_class(usable[0].name)()
    with backend.load(path) as session:
        if as_json:
            _print_json(
                {
                    "path": str(path),
                    "backend": backend.name,
                    "inputs": [s.to_dict() for s in session.inputs],
                    "outputs": [s.to_dict() for s in session.outputs],
                }
            )
            return 0
        print(f"{path} loaded by backend {backend.name}")
        print("\n".join(_specs_text("inputs", session.inputs) + _specs_text("outputs", session.outputs)))
    return 0


# --- facelib bench / facelib check -----------------------------------------------------------


def _backend_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` strings -> options; values parsed as JSON when they can be (numbers, lists)."""
    from facelib.errors import InputError

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"backend options are key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _add_backend_args(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument("--backend", default=default, help=f"backend name (default {default}; see 'facelib backends')")
    p.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable (e.g. intra_op_num_threads=2)",
    )


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
    "model package directory, model file, or a task: headpose, blendshapes, audio2face, motion (with --input)"
)


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
    timings = bench_model(Path(args.target), backend, batch=args.batch, loop=args.loop, warmup=args.warmup)
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
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    from facelib.backends.registry import get_backend
    from facelib.tools.check import check_model, format_differences

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
        diffs = check_model(Path(args.target), backend, reference, batch=args.batch)
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


# --- facelib models --------------------------------------------------------------------------


def _add_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list, fetch, locate and remove cached model packages")
    inner = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--mirror", metavar="URL|DIR", help="mirror laid out like shared/assets ($FACELIB_MIRROR)")
    common.add_argument("--offline", action="store_true", default=None, help="never use the network ($FACELIB_OFFLINE)")
    p_list = inner.add_parser("list", help="every known model: task, licence, size, cached or not")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_fetch = inner.add_parser("fetch", parents=[common], help="download, verify and convert a model into the cache")
    p_fetch.add_argument("name", help="model name (see 'facelib models list')")
    p_fetch.add_argument(
        "--accept-licence", action="store_true", help="accept a non-commercial licence (FaceFormer, FOMM)"
    )
    p_fetch.add_argument(
        "--allow-unverified", action="store_true", help="accept files whose sha256 upstream never published"
    )
    p_fetch.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="ROLE=PATH",
        help="use a file you downloaded by hand for a source role (e.g. checkpoint=~/vox-cpk.pth.tar)",
    )
    prebuilt = p_fetch.add_mutually_exclusive_group()
    prebuilt.add_argument("--prebuilt", dest="prebuilt", action="store_true", default=None, help="use mirror ONNX")
    prebuilt.add_argument("--convert", dest="prebuilt", action="store_false", help="always convert upstream files")
    p_fetch.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_fetch.add_argument("--quiet", action="store_true", help="no progress output")
    p_path = inner.add_parser("path", help="print the directory of a cached model package")
    p_path.add_argument("name")
    p_remove = inner.add_parser("remove", help="delete a cached model package")
    p_remove.add_argument("name")
    p_remove.add_argument("--downloads", action="store_true", help="also delete its downloaded upstream files")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.models import hub

    if args.models_command == "list":
        infos = hub.list_models()
        if args.json:
            _print_json([i.to_dict() for i in infos])
            return 0
        rows = [
            [
                i.name,
                i.task,
                f"{i.size / 1e6:.1f} MB" if i.size else "?",
                ("NON-COMMERCIAL: " if i.non_commercial else "") + i.licence,
                ", ".join(n for n, on in (("manual download", i.manual), ("prebuilt on mirrors", i.prebuilt)) if on),
                str(i.path) if i.path else "-",
            ]
            for i in infos
        ]
        print(_table(rows, ["name", "task", "download", "licence", "notes", "cached at"]))
        return 0
    if args.models_command == "fetch":
        files = {}
        for item in args.file:
            role, sep, path = item.partition("=")
            if not sep or not role or not path:
                raise InputError(f"--file expects ROLE=PATH, got {item!r}")
            files[role] = path
        path = hub.ensure_package(
            args.name,
            offline=args.offline,
            progress=not args.quiet,
            mirror=args.mirror,
            accept_licence=args.accept_licence,
            allow_unverified=args.allow_unverified,
            prebuilt=args.prebuilt,
            files=files,
            force=args.force,
        )
        print(path)
        return 0
    if args.models_command == "path":
        print(hub.package_path(args.name))
        return 0
    removed = hub.remove(args.name, downloads=args.downloads)
    print(f"removed {args.name}" if removed else f"{args.name} was not cached")
    return 0


# --- facelib convert / facelib eval: groups whose members each task adds -------------------

#: ``facelib convert NAME ...``: one ``_add_convert_<name>(subparsers)`` per converter.
_CONVERTERS: list[Callable[[Any], None]] = []
#: ``facelib eval NAME ...``: one ``_add_eval_<name>(subparsers)`` per evaluation.
_EVALUATIONS: list[Callable[[Any], None]] = []


def _add_convert(sub: Any) -> None:
    p = sub.add_parser("convert", help="convert an upstream checkpoint into a facelib model package")
    inner = p.add_subparsers(dest="converter", metavar="MODEL", required=True)
    for add in _CONVERTERS:
        add(inner)


def _add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure a task's accuracy on a labelled dataset")
    inner = p.add_subparsers(dest="evaluation", metavar="TASK", required=True)
    for add in _EVALUATIONS:
        add(inner)


# --- facelib blendshapes / facelib convert mediapipe ----------------------------------------


def _add_blendshapes(sub: Any) -> None:
    p = sub.add_parser("blendshapes", help="ARKit-52 blendshapes and head pose from an image, a video or a webcam")
    p.add_argument("input", nargs="?", help="image or video file (omit with --webcam)")
    p.add_argument("--webcam", type=int, metavar="N", help="read webcam device N instead of a file")
    p.add_argument(
        "--model", default=None, help="model package directory or pretrained name (default mediapipe-face-landmarker)"
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
    from facelib.tasks.blendshapes import DEFAULT_MODEL, BlendshapeCapture

    options: dict[str, Any] = {"mode": mode, "backend": args.backend, "num_faces": args.num_faces}
    if args.smoothing:
        options["smoothing"] = True
    model = args.model or DEFAULT_MODEL
    if Path(model).expanduser().exists():
        return BlendshapeCapture(Path(model).expanduser(), **options)
    if "/" in model or model.startswith("."):
        from facelib.errors import ModelCardError

        raise ModelCardError(f"model package not found: {model}")
    return BlendshapeCapture.from_pretrained(model, **options)


def _run_blendshapes(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.io.image import is_image_path, write_image
    from facelib.io.video import is_video_path

    if (args.input is None) == (args.webcam is None):
        raise InputError("give either an INPUT file or --webcam N")
    if args.num_faces < 1:
        raise InputError(f"--num-faces must be at least 1, got {args.num_faces}")
    is_image = args.input is not None and is_image_path(args.input) and not is_video_path(args.input)
    if args.input is not None and not Path(args.input).exists():
        raise InputError(f"input not found: {args.input}")
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
    """Writers for ``--csv`` and ``--livelink``, each a callable taking one BlendshapeFrame."""
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
        yield sinks


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
    finally:
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
    p.add_argument("output", type=Path, help="output package directory")
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
    package = build_package(sources, args.output, progress=True, opset=args.opset, optimize=not args.no_optimize)
    print(f"wrote {package.root} ({package.card.name}, variant {package.card.variant})")
    return 0


_CONVERTERS.append(_add_convert_mediapipe)
# --- facelib convert faceboxes / regressor (expression capture) ---------------------------


def _add_convert_faceboxes(sub: Any) -> None:
    p = sub.add_parser("faceboxes", help="FaceBoxes .pth (FaceBoxesProd.pth) -> face_detection package")
    p.add_argument("--weights", type=Path, required=True, help="FaceBoxesProd.pth state dict")
    p.add_argument("--output", "-o", type=Path, required=True, help="package directory to write")
    p.add_argument("--score-threshold", type=float, default=0.5, help="face probability threshold (0.5)")
    p.add_argument("--iou-threshold", type=float, default=0.3, help="NMS IoU threshold (0.3)")
    p.set_defaults(func=_run_convert_faceboxes)


def _run_convert_faceboxes(args: argparse.Namespace) -> int:
    from facelib.models.convert.faceboxes import build_package

    package = build_package(
        {"weights": args.weights},
        args.output,
        score_threshold=args.score_threshold,
        iou_threshold=args.iou_threshold,
    )
    error = package.card.metadata.get("export_max_abs_error")
    print(f"wrote {package.root} (ONNX vs torch max abs difference {error:.2g})")
    return 0


def _add_convert_regressor(sub: Any) -> None:
    p = sub.add_parser("regressor", help="package your face-crop -> blendshape ONNX regressor with a detector")
    p.add_argument("--regressor", type=Path, required=True, help="regressor .onnx (one image input)")
    p.add_argument("--detector", type=Path, required=True, help="face_detection package dir or FaceBoxes .onnx")
    p.add_argument("--output", "-o", type=Path, required=True, help="package directory to write")
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
        {"regressor": args.regressor, "detector": args.detector},
        args.output,
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


_CONVERTERS.append(_add_convert_faceboxes)
_CONVERTERS.append(_add_convert_regressor)
# --- facelib headpose / eval headpose / convert fsanet, ultraface ----------------------------


def _package_arg(value: str) -> Any:
    """A model package path when it exists, else a hub name resolved (fetched) lazily."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    from facelib.models.hub import ensure_package

    return ensure_package(value)


def _headpose_task(args: argparse.Namespace, detector: bool = True) -> Any:
    from facelib.tasks.head_pose import HeadPose

    det = _package_arg(args.detector) if detector and args.detector else None
    return HeadPose(
        _package_arg(args.model),
        detector=det,
        backend=args.backend,
        variants=args.variants.split(",") if args.variants else None,
    )


def _add_headpose_options(p: Any) -> None:
    p.add_argument("--model", default="fsanet", help="head_pose package directory or hub name (default fsanet)")
    p.add_argument("--detector", default="ultraface-rfb-320", help="face_detection package directory or hub name")
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--variants", default=None, help="comma-separated FSA-Net variants (default: all, averaged)")


def _add_headpose(sub: Any) -> None:
    p = sub.add_parser("headpose", help="head pose (yaw, pitch, roll in degrees) of every face in images or a video")
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files, or one video file")
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
    from facelib.io.draw import draw_box, draw_pose_axes

    for face in faces:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        image = draw_box(image, face.box, label=f"y{face.yaw:.0f} p{face.pitch:.0f} r{face.roll:.0f}")
        size = max(20.0, 0.5 * min(x2 - x1, y2 - y1))
        image = draw_pose_axes(image, face.yaw, face.pitch, face.roll, ((x1 + x2) / 2, (y1 + y2) / 2), size)
    return image


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
        if args.json:
            _print_json(report if len(report) > 1 else report[0])
    return 0


def _headpose_video(pose: Any, source: Path | int, args: argparse.Namespace) -> int:
    from facelib.errors import MediaReadError
    from facelib.io.video import VideoReader, VideoWriter

    frames: list[dict[str, Any]] = []
    count = 0
    with VideoReader(source) as reader:
        fps = reader.fps
        writer = VideoWriter(args.draw, fps) if args.draw is not None else None
        try:
            for frame in pose.predict_video(reader):
                count += 1
                if args.json:
                    entry = {"index": frame.index, "timestamp_ms": frame.timestamp_ms}
                    entry["reused_boxes"] = frame.reused_boxes
                    entry["faces"] = [_face_json(f) for f in frame.faces]
                    frames.append(entry)
                else:
                    note = " (previous boxes)" if frame.reused_boxes else ""
                    print(f"frame {frame.index}: {len(frame.faces)} face(s){note}", flush=True)
                    for face in frame.faces:
                        print(_face_line(face))
                if writer is not None:
                    writer.write(_annotate(frame.image, frame.faces))
        finally:
            if writer is not None:
                writer.close()
    if count == 0:
        raise MediaReadError(f"{source} has no decodable frames")
    if args.json:
        _print_json({"input": str(source), "fps": fps, "frames": frames})
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
    for role, stem in VARIANTS.items():
        if given[role] is not None:
            sources[role] = given[role]
        elif args.from_dir is not None:
            for suffix in (".pb", ".onnx"):
                if (args.from_dir / f"{stem}{suffix}").is_file():
                    sources[role] = args.from_dir / f"{stem}{suffix}"
                    break
    if not sources:
        raise InputError("give --capsule/--var-capsule/--nos-capsule files or --from-dir")
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


_CONVERTERS.append(_add_convert_fsanet)
_CONVERTERS.append(_add_convert_ultraface)
_EVALUATIONS.append(_add_eval_headpose)


# --- facelib convert fomm / facelib motion ---------------------------------------------------


def _add_convert_fomm(sub: Any) -> None:
    p = sub.add_parser("fomm", help="First Order Motion Model checkpoint (.pth.tar) -> motion_transfer package")
    p.add_argument("checkpoint", type=Path, help="released checkpoint, e.g. vox-cpk.pth.tar")
    p.add_argument("--config", default="vox-256", help="upstream YAML config file, or preset vox-256 / taichi-256")
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


_CONVERTERS.append(_add_convert_fomm)


def _add_motion(sub: Any) -> None:
    p = sub.add_parser("motion", help="animate a source face with a driving video (First Order Motion Model)")
    p.add_argument("--model", required=True, help="motion_transfer model package")
    p.add_argument("--source", required=True, type=Path, help="source image")
    p.add_argument("--driving", required=True, help="driving video file, or a webcam index (0, 1, ...)")
    p.add_argument("-o", "--output", required=True, type=Path, help="OUT.mp4, OUT.npy or a directory of PNGs")
    p.add_argument("--mode", choices=["relative", "absolute"], default="relative")
    p.add_argument("--adapt-scale", action="store_true", help="scale movement by keypoint hull areas")
    p.add_argument("--best-frame", default=None, help="reference driving frame: an index or 'auto'")
    p.add_argument("--crop", action="store_true", help="crop the faces of source and driving (needs a face detector)")
    p.add_argument("--paste-back", action="store_true", help="with --crop: paste results into the full source image")
    p.add_argument("--detector", default=None, help="face detector package for --crop (default: facelib's)")
    p.add_argument("--landmarker", default=None, help="face landmarker package for --best-frame auto")
    p.add_argument("--batch-size", type=int, default=4, help="frames per generator call (webcam: always 1)")
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--no-audio", action="store_true", help="do not copy the driving video's audio")
    p.set_defaults(func=_run_motion)


def _run_motion(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.tasks.motion_transfer import MotionTransfer, default_detector

    best: int | str | None = args.best_frame
    if best is not None and best != "auto":
        try:
            best = int(best)
        except ValueError:
            raise InputError(f"--best-frame must be an integer or 'auto', got {best!r}") from None
    driving: Any = int(args.driving) if str(args.driving).isdigit() else Path(args.driving)
    detector = default_detector(args.detector) if args.crop else None
    with MotionTransfer(
        args.model,
        backend=args.backend,
        mode=args.mode,
        adapt_scale=args.adapt_scale,
        best_frame=best,
        batch_size=args.batch_size,
        landmarker=args.landmarker,
        detector=detector,
        crop=args.crop,
        paste_back=args.paste_back,
    ) as task:
        summary = task.animate_to_file(args.source, driving, args.output, audio=not args.no_audio, progress=True)
    extra = ", audio copied" if summary.audio else ""
    print(f"wrote {summary.output}: {summary.frames} frames at {summary.fps:g} fps{extra}")
    return 0


# --- facelib convert faceformer / facelib audio2face ------------------------------------------


def _add_convert_faceformer(sub: Any) -> None:
    p = sub.add_parser("faceformer", help="FaceFormer vocaset.pth / biwi.pth -> audio2face package")
    p.add_argument("checkpoint", type=Path, help="released state_dict (.pth)")
    p.add_argument("--dataset", choices=["vocaset", "biwi"], required=True, help="training dataset of the checkpoint")
    p.add_argument("-o", "--output", type=Path, required=True, help="package directory to write")
    p.add_argument("--template", type=Path, help="neutral face mesh (.ply/.obj/.npy) or upstream templates.pkl")
    p.add_argument("--template-subject", help="entry of templates.pkl to use")
    p.add_argument("--faces", type=Path, help="mesh with the topology's triangles (when --template has none)")
    p.add_argument("--subjects", nargs="+", help="training subject names in one-hot order")
    p.add_argument("--encoder-heads", type=int, help="wav2vec2 attention heads (default: width // 64)")
    p.set_defaults(func=_run_convert_faceformer)


def _run_convert_faceformer(args: argparse.Namespace) -> int:
    from facelib.models.convert.faceformer import build_package

    sources = {"checkpoint": args.checkpoint, "template": args.template, "faces": args.faces}
    package = build_package(
        {k: v for k, v in sources.items() if v is not None},
        args.output,
        dataset=args.dataset,
        subjects=args.subjects,
        encoder_heads=args.encoder_heads,
        template_subject=args.template_subject,
    )
    meta = package.card.metadata
    print(f"wrote {package.root} ({meta['dataset']}, {len(meta['subjects'])} subjects, D={meta['feature_dim']})")
    return 0


_CONVERTERS.append(_add_convert_faceformer)


def _add_audio2face(sub: Any) -> None:
    p = sub.add_parser("audio2face", help="animate a 3D face from speech (FaceFormer)")
    p.add_argument("--model", required=True, help="audio2face package directory")
    p.add_argument("--audio", required=True, type=Path, help="speech file (any common format and rate)")
    p.add_argument("--subject", help="speaking style: training subject name or index")
    p.add_argument("--template", type=Path, help="face to animate (.ply/.obj/.npy); default: the package's")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("animation.npy"),
        help="OUT.npy (T,V,3) | DIR (one {i}.npy per frame) | OUT.mp4 (rendered, with audio) | "
        "OUT.obj/OUT.ply (folder OUT/ of meshes)",
    )
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--size", type=int, default=800, help="video size in pixels (square)")
    p.add_argument("--max-context", type=int, default=600, help="decoder cache length in frames (0 = unbounded)")
    p.set_defaults(func=_run_audio2face)


def _run_audio2face(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.io.mesh import NpyFrameWriter, read_mesh, write_sequence
    from facelib.tasks.audio2face import Audio2Face

    out: Path = args.output
    suffix = out.suffix.lower()
    task = Audio2Face(args.model, backend=args.backend, max_context=args.max_context or None)
    try:
        mesh = read_mesh(args.template) if args.template is not None else None
        template = mesh.vertices if mesh is not None else None
        faces = mesh.faces if mesh is not None and len(mesh.faces) else task.faces
        frames = task.iter_frames(args.audio, args.subject, template)
        if suffix == ".npy":
            with NpyFrameWriter(out) as writer:
                for frame in frames:
                    writer.write(frame)
            count = writer.count
        elif suffix in (".mp4", ".mov", ".mkv", ".avi"):
            from facelib.io.render import render_animation

            if faces is None:
                raise InputError(
                    "rendering needs triangles: pass --template MESH.ply/.obj or convert with a mesh template"
                )
            counter = _Counter(frames)
            render_animation(counter, faces, out, task.fps, audio=args.audio, dataset=task.dataset, size=args.size)
            count = counter.count
        elif suffix in (".obj", ".ply"):
            counter = _Counter(frames)
            write_sequence(out.with_suffix(""), counter, faces, fmt=suffix[1:])
            count = counter.count
            out = out.with_suffix("")
        elif suffix == "":
            counter = _Counter(frames)
            write_sequence(out, counter, fmt="npy")
            count = counter.count
        else:
            raise InputError(f"unsupported output {out}; use .npy, .mp4, .obj, .ply or a directory")
        print(f"wrote {count} frames at {task.fps:g} fps to {out}")
    finally:
        task.close()
    return 0


class _Counter:
    """Counts the frames an iterator yields (for the summary line)."""

    def __init__(self, frames: Any) -> None:
        self.frames = frames
        self.count = 0

    def __iter__(self) -> Any:
        for frame in self.frames:
            self.count += 1
            yield frame


# --- entry point -----------------------------------------------------------------------------

#: Every subcommand, in the order ``facelib --help`` lists them.
_COMMANDS: list[Callable[[Any], None]] = [
    _add_backends,
    _add_info,
    _add_bench,
    _add_check,
    _add_models,
    _add_convert,
    _add_eval,
    _add_headpose,
    _add_blendshapes,
    _add_motion,
    _add_audio2face,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``facelib`` command."""
    parser = argparse.ArgumentParser(
        prog="facelib",
        description="Face AI on any accelerator: head pose, blendshapes, audio-to-face, motion transfer.",
    )
    parser.add_argument("--version", action="version", version=f"facelib {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args))
    except FacelibError as exc:
        if args.debug:
            raise
        print(f"facelib: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("facelib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
