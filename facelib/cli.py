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
    _add_convert,
    _add_eval,
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
