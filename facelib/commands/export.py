"""``facelib export``: turn saved results (npy / npz / Live Link CSV / JSON) into animation files."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _add_export(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write saved blendshapes or vertex animation as FBX / GLB / USD / PC2",
        description="Blendshape takes ((T,52) .npy, capture .npz/.json, Live Link .csv) -> .fbx/.glb/.usd on "
        "--rig or the stand-in face; vertex animation ((T,V,3) .npy) -> .usd/.pc2 with --template.",
    )
    p.add_argument("input", type=Path, help="TAKE.npy | TAKE.npz | TAKE.csv | TAKE.json | VERTICES.npy")
    p.add_argument("-o", "--output", type=Path, required=True, help="OUT.fbx | OUT.glb | OUT.usd | OUT.pc2")
    p.add_argument("--fps", type=float, help="frame rate of inputs without frame times (.npy); CSV timecode rate")
    p.add_argument("--rig", type=Path, help="character to animate (.glb/.fbx/.usd); default: the stand-in face")
    p.add_argument("--face", type=int, default=0, help="which face of a multi-face capture (default 0)")
    p.add_argument("--template", type=Path, help="mesh with the triangles of vertex animation (.ply/.obj)")
    p.add_argument("--audio", type=Path, help="speech to place beside a vertex animation")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    import numpy as np

    from facelib.errors import InputError
    from facelib.io import animation_export as ax

    src: Path = args.input
    if src.suffix.lower() == ".npy" and _is_vertices(src):
        from facelib.io.mesh import read_mesh

        if args.template is None:
            raise InputError("vertex animation needs --template MESH.ply/.obj for its triangles")
        if args.fps is None:
            raise InputError(f"{src} has no frame times; give the frame rate (--fps)")
        mesh = read_mesh(args.template)
        frames = np.load(src, mmap_mode="r")
        out, count = ax.export_mesh_animation(
            args.output, (np.asarray(f) for f in frames.reshape(len(frames), -1, 3)), mesh.faces, args.fps,
            rest=mesh.vertices, audio=args.audio,
        )  # fmt: skip
        print(f"wrote {count} frames at {args.fps:g} fps to {out}")
        return 0
    ax.check_export_path(args.output, args.rig)
    take = ax.load_take(src, fps=args.fps, face=args.face)
    print(ax.export_blendshapes(args.output, take, args.rig).summary())
    return 0


def _is_vertices(path: Path) -> bool:
    """True for (T, V, 3) / (T, 3V) arrays, False for (T, 52) blendshape weights."""
    import numpy as np

    from facelib.errors import MediaReadError

    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MediaReadError(f"{path} is not a readable .npy file: {exc}") from exc
    return arr.ndim == 3 or (arr.ndim == 2 and arr.shape[1] != 52 and arr.shape[1] % 3 == 0)


#: Subcommands, converters (``facelib convert``) and evaluations (``facelib eval``) of this module.
COMMANDS: list[Callable[[Any], None]] = [_add_export]
CONVERTERS: list[Callable[[Any], None]] = []
EVALUATIONS: list[Callable[[Any], None]] = []
