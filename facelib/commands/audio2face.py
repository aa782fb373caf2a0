"""``facelib audio2face`` and ``facelib convert faceformer``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facelib.models.registry import DEFAULT_MODELS

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


def _add_audio2face(sub: Any) -> None:
    p = sub.add_parser("audio2face", help="animate a 3D face from speech (FaceFormer)")
    p.add_argument("--model", default=DEFAULT_MODELS["audio2face"], help="audio2face package directory or hub name")
    p.add_argument("--audio", required=True, type=Path, help="speech file (any common format and rate)")
    p.add_argument("--subject", help="speaking style: training subject name or index")
    p.add_argument("--template", type=Path, help="face to animate (.ply/.obj/.npy); default: the package's")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("animation.npy"),
        help="OUT.npy (T,V,3) | DIR (one {i}.npy per frame) | OUT.mp4 (rendered, with audio) | "
        "OUT.obj/OUT.ply (folder OUT/ of meshes) | OUT.usd (animated mesh) | OUT.pc2 (point cache + OUT.obj); "
        "USD and PC2 get the speech copied beside them",
    )
    p.add_argument("--backend", default="auto", help="backend name (see 'facelib backends')")
    p.add_argument("--size", type=int, default=800, help="video size in pixels (square)")
    p.add_argument("--max-context", type=int, default=600, help="decoder cache length in frames (0 = unbounded)")
    p.set_defaults(func=_run_audio2face)


def _run_audio2face(args: argparse.Namespace) -> int:
    from facelib.errors import InputError
    from facelib.io.mesh import NpyFrameWriter, read_mesh, write_sequence
    from facelib.io.paths import require_input_file
    from facelib.tasks.audio2face import Audio2Face

    require_input_file(args.audio, "audio file")
    if args.template is not None:
        require_input_file(args.template, "template mesh")
    out: Path = args.output
    suffix = out.suffix.lower()
    task = Audio2Face(args.model, backend=args.backend, max_context=args.max_context or None)
    try:
        mesh = read_mesh(args.template) if args.template is not None else None
        template = mesh.vertices if mesh is not None else None
        faces = mesh.faces if mesh is not None and len(mesh.faces) else task.faces
        frames = _with_progress(task.iter_frames(args.audio, args.subject, template), args.audio, task.fps)
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
        elif suffix in (".usd", ".usda", ".usdc", ".pc2"):
            from facelib.io.animation_export import export_mesh_animation

            if faces is None:
                raise InputError(
                    f"{suffix} needs triangles: pass --template MESH.ply/.obj or convert with a mesh template"
                )
            out, count = export_mesh_animation(out, frames, faces, task.fps, rest=template, audio=args.audio)
        elif suffix == "":
            counter = _Counter(frames)
            write_sequence(out, counter, fmt="npy")
            count = counter.count
        else:
            raise InputError(f"unsupported output {out}; use .npy, .mp4, .obj, .ply, .usd, .pc2 or a directory")
        print(f"wrote {count} frames at {task.fps:g} fps to {out}")
    finally:
        task.close()
    return 0


def _with_progress(frames: Any, audio: Path, fps: float) -> Any:
    """``frames`` with a progress bar on stderr (a terminal), its total estimated from the audio length."""
    from facelib._progress import progress
    from facelib.io.audio import audio_info

    total = round(audio_info(audio).duration * fps) or None
    return progress(frames, total=total, desc="audio2face", unit="frame")


class _Counter:
    """Counts the frames an iterator yields (for the summary line)."""

    def __init__(self, frames: Any) -> None:
        self.frames = frames
        self.count = 0

    def __iter__(self) -> Any:
        for frame in self.frames:
            self.count += 1
            yield frame


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_audio2face]
CONVERTERS: list[Callable[[Any], None]] = [_add_convert_faceformer]
EVALUATIONS: list[Callable[[Any], None]] = []
