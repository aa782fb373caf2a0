"""Blender (the ``bpy`` wheel, run in its own interpreter) imports every export; values match every frame.

Blender 5.0's ``bpy`` needs Python 3.11 and numpy < 2, so it lives in its own virtual environment
(``.venv-bpy``, made by scripts/test.sh; or set ``FACELIB_BPY_PYTHON`` to a Python that has it).
Each check runs tests/blender/probe.py in that interpreter: it imports the file with Blender's own
importer and dumps shape-key values / evaluated vertex positions at every frame.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from export_helpers import RIG_NAMES, flame_animation, real_take

from facelib.io.animation_export import export_blendshapes, export_mesh_animation
from facelib.io.face_rig import BlendshapeTake
from facelib.processing.arkit import ARKIT_NAMES

pytest.importorskip("ufbx", reason="the export extra is not installed")
pytest.importorskip("pxr", reason="the export extra is not installed")
pytest.importorskip("pygltflib", reason="the export extra is not installed")

pytestmark = pytest.mark.blender

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "blender" / "probe.py"
MAKE_RIG = ROOT / "tests" / "blender" / "make_rig.py"
TOL = 1e-4


@functools.lru_cache(maxsize=1)
def _bpy_python() -> str | None:
    candidate = os.environ.get("FACELIB_BPY_PYTHON") or str(ROOT / ".venv-bpy" / "bin" / "python")
    if not Path(candidate).exists():
        return None
    ok = subprocess.run([candidate, "-c", "import bpy"], capture_output=True, timeout=300).returncode == 0
    return candidate if ok else None


@pytest.fixture(scope="module")
def blender() -> str:
    python = _bpy_python()
    if python is None:
        reason = (
            "Blender's bpy is not installed: scripts/test.sh installs it into .venv-bpy "
            "(or set FACELIB_BPY_PYTHON to a Python 3.11 with bpy)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Blender import tests. {reason}")
        pytest.skip(reason)
    return python


def _run(python: str, script: Path, *args: object) -> None:
    proc = subprocess.run([python, str(script), *map(str, args)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"Blender failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _probe(python: str, path: Path, fps: float, frames: np.ndarray, *extra: object) -> dict[str, np.ndarray]:
    out = path.with_name(path.name + ".probe.npz")
    _run(python, PROBE, path, out, "--fps", fps, "--frames", *frames.tolist(), *extra)
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def take(reference_dir: Path, media_dir: Path) -> BlendshapeTake:
    return real_take(reference_dir, media_dir)


def _blender_frames(take: BlendshapeTake, suffix: str) -> np.ndarray:
    """Where Blender puts the take's samples: USD time codes are frames of the file's rate; the FBX
    and glTF importers put seconds x the whole-number rate (30 for 29.97 fps: keys at 1.001,
    2.002, ...), right when the scene plays at 30 fps (see docs/exports.md)."""
    return take.times * (take.fps if suffix == ".usd" else round(take.fps))


@pytest.mark.parametrize("suffix", [".fbx", ".glb", ".usd"])
def test_blender_plays_the_standin_face(blender: str, take: BlendshapeTake, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"take{suffix}"
    export_blendshapes(path, take)
    got = _probe(blender, path, take.fps, _blender_frames(take, suffix))
    if suffix == ".fbx":  # Blender takes the scene rate from FBX only (glTF has none; USD's is left)
        assert float(got["_fps"]) == pytest.approx(take.fps, rel=1e-6)
    assert list(got["_objects"]) == ["StandInFace"]
    for i, name in enumerate(ARKIT_NAMES):
        np.testing.assert_allclose(got[f"StandInFace/{name}"], take.weights[:, i], atol=TOL, err_msg=name)


@pytest.mark.parametrize("suffix", [".fbx", ".glb", ".usd"])
def test_blender_plays_a_blender_made_rig(blender: str, take: BlendshapeTake, tmp_path: Path, suffix: str) -> None:
    rig = tmp_path / f"rig{suffix}"
    _run(blender, MAKE_RIG, rig, *RIG_NAMES)
    out = tmp_path / f"take{suffix}"
    result = export_blendshapes(out, take, rig)
    assert result.match.unmatched_rig == ("Head/smirk_custom",) and result.match.matched == 6
    if suffix == ".glb":  # a glTF character is kept whole: its material is still there
        import pygltflib

        assert [m.name for m in pygltflib.GLTF2().load(str(out)).materials] == ["Skin"]
    if suffix == ".usd":  # an animation layer over the character, which keeps its material
        from pxr import Usd

        stage = Usd.Stage.Open(str(out))
        assert stage.GetRootLayer().subLayerPaths == ["rig.usd"]
        assert [p.GetName() for p in stage.Traverse() if p.GetTypeName() == "Material"] == ["Skin"]
    got = _probe(blender, out, take.fps, _blender_frames(take, suffix))
    for name, arkit in RIG_NAMES.items():
        expected = np.zeros(len(take.times)) if name == "smirk_custom" else take.weights[:, ARKIT_NAMES.index(arkit)]
        np.testing.assert_allclose(got[f"Head/{name}"], expected, atol=TOL, err_msg=name)


@pytest.mark.parametrize("suffix", [".usd", ".pc2"])
def test_blender_plays_the_mesh_animation(
    blender: str, reference_dir: Path, media_dir: Path, tmp_path: Path, suffix: str
) -> None:
    vertices, faces, fps = flame_animation(reference_dir, media_dir)
    path, count = export_mesh_animation(tmp_path / f"talk{suffix}", vertices, faces, fps)
    frames = np.arange(count, dtype=np.float64)
    extra = ("--kind", "points") + (("--pc2", tmp_path / "talk.obj") if suffix == ".pc2" else ())
    got = _probe(blender, path, fps, frames, *extra)
    (name,) = got["_objects"]
    points = got[str(name)]  # in the object's own space: the importers turn Y up into Z up by rotating it
    assert points.shape == vertices.shape
    np.testing.assert_allclose(points, vertices, atol=TOL)
