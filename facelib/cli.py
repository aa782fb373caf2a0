"""The ``facelib`` command: thin — parses arguments, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares it and sets
``func`` to a ``_run_<name>(args) -> int``.  Errors that facelib raises on purpose
(:class:`~facelib.errors.FacelibError`) print one clear line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
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


# --- entry point -----------------------------------------------------------------------------

#: Every subcommand, in the order ``facelib --help`` lists them.
_COMMANDS: list[Callable[[Any], None]] = [
    _add_backends,
    _add_info,
    _add_convert,
    _add_eval,
    _add_motion,
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
