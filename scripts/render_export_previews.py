"""Render one frame of each animation export, imported by Blender, as small PNGs for docs/exports.md.

    python scripts/render_export_previews.py [--bpy-python .venv-bpy/bin/python] [--out docs/images]

Uses the shared data (../shared): Google MediaPipe's blendshapes of talking_face_01.mp4 on the
stand-in face (FBX, GLB, USD), and the same take baked into vertex frames of the stand-in face
for the mesh-animation files (USD points, PC2).  (The FaceFormer checkpoint in the shared data
has random weights, so its vertices are noise: fine for the tests' value checks, not for a picture.)
Each file is written by facelib, imported by Blender's own importer and rendered with Workbench.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from export_helpers import real_take  # noqa: E402

from facelib.io.animation_export import export_blendshapes, export_mesh_animation  # noqa: E402
from facelib.io.standin_face import standin_face  # noqa: E402
from facelib.processing.arkit import ARKIT_NAMES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bpy-python", default=str(ROOT / ".venv-bpy" / "bin" / "python"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    take = real_take(args.shared / "reference", args.shared / "assets" / "media")
    frame = int(np.argmax(take.weights[:, ARKIT_NAMES.index("jawOpen")]))
    face = standin_face().meshes[0]
    vertices = face.points + np.einsum("ts,svc->tvc", take.weights, face.shape_offsets)
    faces, fps = face.triangles(), take.fps
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for suffix in (".fbx", ".glb", ".usd"):
            path = Path(tmp) / f"take{suffix}"
            export_blendshapes(path, take)
            blender_frame = frame * (take.fps if suffix == ".usd" else round(take.fps)) / take.fps
            jobs.append((path, f"export-standin-{suffix[1:]}.png", take.fps, blender_frame, []))
        for suffix in (".usd", ".pc2"):
            path, _ = export_mesh_animation(Path(tmp) / f"talk{suffix}", vertices, faces, fps)
            extra = ["--kind", "points"] + (["--pc2", str(Path(tmp) / "talk.obj")] if suffix == ".pc2" else [])
            jobs.append((path, f"export-mesh-{suffix[1:]}.png", fps, float(frame), extra))
        for path, name, rate, at, extra in jobs:
            cmd = [args.bpy_python, str(ROOT / "tests" / "blender" / "probe.py"), str(path), str(path) + ".npz",
                   "--fps", str(rate), "--frames", str(at), "--render", str(args.out / name),
                   "--render-frame", str(at), *extra]  # fmt: skip
            subprocess.run(cmd, check=True, capture_output=True)
            print(f"wrote {args.out / name} (frame {at:g} of {path.name})")


if __name__ == "__main__":
    main()
