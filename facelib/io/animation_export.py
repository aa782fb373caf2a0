"""Animation files that animators open: pick the writer by the output's suffix.

* Blendshape takes ((frames, 52) ARKit weights) -> ``.fbx`` (:mod:`facelib.io.fbx`), ``.glb``
  (:mod:`facelib.io.gltf`), ``.usd``/``.usda``/``.usdc`` (:mod:`facelib.io.usd`), on the user's rig
  (:func:`load_rig`: ``.glb``/``.gltf``/``.fbx``/``.usd*``) or on the stand-in face.
* Mesh animation ((frames, V, 3) vertices, e.g. Audio2Face) -> ``.usd*`` (time-sampled points)
  or ``.pc2`` (point cache, with the rest mesh as ``<stem>.obj`` beside it); the speech is copied
  beside the file.

Takes come from a capture (:func:`take_from_frames`) or from files (:func:`load_take`: ``.npy``,
``.npz``, Live Link Face ``.csv``, facelib ``.json``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs
import numpy as np

from facelib.errors import InputError, MediaReadError
from facelib.io.face_rig import BlendshapeTake, ChannelMatch, FaceRig, match_channels, nominal_fps
from facelib.processing.arkit import ARKIT_NAMES, to_arkit
from facelib.results import BlendshapeFrame

BLENDSHAPE_SUFFIXES = (".fbx", ".glb", ".usd", ".usda", ".usdc")
MESH_SUFFIXES = (".usd", ".usda", ".usdc", ".pc2")
RIG_SUFFIXES = (".fbx", ".glb", ".gltf", ".usd", ".usda", ".usdc", ".usdz")


@attrs.frozen
class ExportResult:
    """What :func:`export_blendshapes` wrote: the file, the rig used and how its channels matched."""

    path: Path
    rig: FaceRig
    match: ChannelMatch
    frames: int

    def summary(self) -> str:
        """Lines for people."""
        rig = "the stand-in face" if self.rig.source == "stand-in" else self.rig.source
        head = f"wrote {self.frames} frames to {self.path} on {rig}"
        return head if self.rig.source == "stand-in" else head + "\n" + self.match.report()


def load_rig(path: str | os.PathLike[str]) -> FaceRig:
    """Read a character's meshes and blend shapes from ``.glb``/``.gltf``, ``.fbx`` or ``.usd*``."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise MediaReadError(f"rig not found: {p}")
    if suffix in (".glb", ".gltf"):
        from facelib.io.gltf import read_gltf_rig

        return read_gltf_rig(p)
    if suffix == ".fbx":
        from facelib.io.fbx_rig import read_fbx_rig

        return read_fbx_rig(p)
    if suffix in (".usd", ".usda", ".usdc", ".usdz"):
        from facelib.io.usd import read_usd_rig

        return read_usd_rig(p)
    raise InputError(f"unsupported rig {p.name}; use one of {', '.join(RIG_SUFFIXES)}")


def export_blendshapes(
    path: str | os.PathLike[str], take: BlendshapeTake, rig: FaceRig | str | os.PathLike[str] | None = None
) -> ExportResult:
    """Write ``take`` as ``.fbx``, ``.glb`` or ``.usd*`` on ``rig`` (a rig, a rig file, or None = stand-in).

    A ``.glb``/``.gltf`` rig written to ``.glb`` is kept whole (materials, skeleton, ...) with the
    take added as an animation; a USD rig written to USD gets an animation layer that sublayers
    it (keep the two files together); otherwise the rig's meshes and blend shapes are written anew.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in BLENDSHAPE_SUFFIXES:
        raise InputError(f"unsupported export {out.name}; use one of {', '.join(BLENDSHAPE_SUFFIXES)}")
    rig_file = None if rig is None or isinstance(rig, FaceRig) else Path(rig)
    if rig is None:
        from facelib.io.standin_face import standin_face

        face = standin_face()
    elif isinstance(rig, FaceRig):
        face = rig
    else:
        face = load_rig(rig)
    match = match_channels(face)
    if suffix == ".fbx":
        from facelib.io.fbx import write_fbx

        write_fbx(out, face, take)
    elif suffix == ".glb" and rig_file is not None and rig_file.suffix.lower() in (".glb", ".gltf"):
        from facelib.io.gltf import animate_gltf_rig

        animate_gltf_rig(rig_file, out, take)  # keeps the whole character
    elif suffix == ".glb":
        from facelib.io.gltf import write_glb

        write_glb(out, face, take)
    elif rig_file is not None and rig_file.suffix.lower() in (".usd", ".usda", ".usdc", ".usdz"):
        from facelib.io.usd import animate_usd_rig

        animate_usd_rig(rig_file, out, take)  # an animation layer over the whole character
    else:
        from facelib.io.usd import write_usd_blendshapes

        write_usd_blendshapes(out, face, take)
    return ExportResult(out, face, match, len(take.times))


def export_mesh_animation(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    faces: np.ndarray,
    fps: float,
    *,
    rest: np.ndarray | None = None,
    audio: str | os.PathLike[str] | None = None,
) -> tuple[Path, int]:
    """Write (V, 3) vertex frames (metres, Y up) as ``.usd*`` or ``.pc2``; returns (path, frames).

    ``faces``: (F, 3) triangles.  ``rest``: the neutral mesh written as ``<stem>.obj`` beside a
    PC2 (default: the first frame).  ``audio`` is copied beside the output as ``<stem>.<ext>``.
    Frames are streamed (bounded memory).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputError(f"unsupported mesh animation {out.name}; use one of {', '.join(MESH_SUFFIXES)}")
    if not np.isfinite(fps) or fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    if suffix != ".pc2":
        from facelib.io.usd import write_usd_mesh_animation

        return write_usd_mesh_animation(out, frames, faces, fps, audio)
    return _write_pc2_with_mesh(out, frames, faces, rest, audio)


def _write_pc2_with_mesh(
    out: Path,
    frames: Iterable[np.ndarray],
    faces: np.ndarray,
    rest: np.ndarray | None,
    audio: str | os.PathLike[str] | None,
) -> tuple[Path, int]:
    from facelib.io.atomic import atomic_path, copy_file_atomic
    from facelib.io.mesh import write_obj
    from facelib.io.pc2 import PC2Writer

    it: Iterator[np.ndarray] = iter(frames)
    with PC2Writer(out) as writer:
        for frame in it:
            if rest is None:
                rest = np.asarray(frame, np.float32).reshape(-1, 3)
            writer.write(frame)
        if writer.count == 0:
            raise InputError("no frames to write")
    assert rest is not None
    with atomic_path(out.with_suffix(".obj")) as tmp:
        write_obj(tmp, rest, np.asarray(faces).reshape(-1, 3))
    if audio is not None:
        src = Path(audio)
        if not src.is_file():
            raise MediaReadError(f"audio not found: {src}")
        copy_file_atomic(src, out.with_suffix(src.suffix.lower()))
    return out, writer.count


# --- takes ----------------------------------------------------------------------------------------


def take_from_frames(frames: Iterable[BlendshapeFrame], face: int = 0, fps: float | None = None) -> BlendshapeTake:
    """A take from capture results: face ``face`` of each frame, at the frames' timestamps.

    Frames where that face is missing hold the last weights seen (0 before the first face).
    ``fps`` (the scene rate the files declare) defaults to the rate the frame times imply.
    """
    collector = TakeCollector(face)
    for frame in frames:
        collector(frame)
    return collector.take(fps)


class TakeCollector:
    """A capture sink: call it with each :class:`BlendshapeFrame`, then :meth:`take`.

    Keeps only each frame's time and the chosen face's 52 weights (not landmarks or images), so
    long captures stay small; a frame without that face holds the last weights (0 before any).
    """

    def __init__(self, face: int = 0) -> None:
        self.face = face
        self.times: list[float] = []
        self.weights: list[np.ndarray] = []
        self._last = np.zeros(len(ARKIT_NAMES), np.float32)

    def __call__(self, frame: BlendshapeFrame) -> None:
        if self.face < len(frame.faces):
            self._last = np.asarray(frame.faces[self.face].blendshapes, np.float32).copy()
        self.times.append(frame.timestamp_ms / 1000.0)
        self.weights.append(self._last)

    def take(self, fps: float | None = None) -> BlendshapeTake:
        """The collected take (``fps`` defaults to the rate implied by the frame times)."""
        if not self.times:
            raise InputError("no frames to export")
        t = np.asarray(self.times, np.float64)
        return BlendshapeTake(times=t, weights=np.stack(self.weights), fps=float(fps or nominal_fps(t)))


def load_take(path: str | os.PathLike[str], fps: float | None = None, face: int = 0) -> BlendshapeTake:
    """Read blendshape weights from a file.

    * ``.npy``: (T, 52) in ARKit order, at ``fps`` (required).
    * ``.npz``: facelib's capture NPZ (:func:`facelib.io.blendshape_export.save_npz`), or arrays
      ``weights``/``blendshapes`` (T, 52) with optional ``names`` and ``times`` (s) /
      ``timestamp_ms``.
    * ``.csv``: a Live Link Face take (times from its timecodes at ``fps``, default 60).
    * ``.json``: facelib's capture JSON.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.is_file():
        raise MediaReadError(f"input not found: {p}")
    if suffix == ".csv":
        from facelib.io.livelink import read_livelink_csv

        csv = read_livelink_csv(p, fps=fps or 60.0)
        times = csv.times - csv.times[0] if len(csv.times) else csv.times
        return BlendshapeTake(times=times, weights=csv.blendshapes, fps=float(fps or 60.0))
    if suffix == ".json":
        from facelib.io.blendshape_export import load_json

        return take_from_frames(load_json(p), face, fps)
    if suffix == ".npy":
        weights = _load_npy(p)
        if weights.ndim != 2 or weights.shape[1] != len(ARKIT_NAMES):
            raise InputError(f"{p}: expected (frames, 52) ARKit weights, got shape {weights.shape}")
        if fps is None:
            raise InputError(f"{p} has no frame times; give the frame rate (--fps)")
        return BlendshapeTake.from_weights(weights, fps)
    if suffix == ".npz":
        return _npz_take(p, fps, face)
    raise InputError(f"unsupported input {p.name}; use .npy, .npz, .csv or .json")


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(p, allow_pickle=False), np.float32)
    except (ValueError, OSError, EOFError) as exc:
        raise MediaReadError(f"{p} is not a readable .npy file: {exc}") from exc


def _npz_take(p: Path, fps: float | None, face: int) -> BlendshapeTake:
    from facelib.io.blendshape_export import load_npz

    try:
        with np.load(p, allow_pickle=False) as data:
            keys = set(data.files)
            arrays = {k: data[k] for k in keys}
    except (ValueError, OSError, EOFError) as exc:
        raise MediaReadError(f"{p} is not a readable .npz file: {exc}") from exc
    if {"face_count", "boxes", "blendshapes"} <= keys:
        return take_from_frames(load_npz(p), face, fps)
    key = "weights" if "weights" in keys else "blendshapes" if "blendshapes" in keys else None
    if key is None:
        raise InputError(f"{p} has no 'weights' or 'blendshapes' array (it has {sorted(keys)})")
    weights = np.asarray(arrays[key], np.float32)
    if "names" in keys:
        weights = to_arkit(weights, [str(n) for n in np.atleast_1d(arrays["names"])])
    times = arrays.get("times")
    if times is None and "timestamp_ms" in keys:
        times = np.asarray(arrays["timestamp_ms"], np.float64) / 1000.0
    if times is None:
        if fps is None:
            raise InputError(f"{p} has no frame times; give the frame rate (--fps)")
        return BlendshapeTake.from_weights(weights, fps)
    t = np.asarray(times, np.float64)
    return BlendshapeTake(times=t, weights=weights, fps=float(fps or nominal_fps(t)))


def check_export_path(path: str | os.PathLike[str], rig: str | os.PathLike[str] | None = None) -> None:
    """Refuse an unsupported output or a missing rig before a long capture starts."""
    out = Path(path)
    if out.suffix.lower() not in BLENDSHAPE_SUFFIXES:
        raise InputError(f"unsupported export {out.name}; use one of {', '.join(BLENDSHAPE_SUFFIXES)}")
    if rig is not None:
        r = Path(rig)
        if r.suffix.lower() not in RIG_SUFFIXES:
            raise InputError(f"unsupported rig {r.name}; use one of {', '.join(RIG_SUFFIXES)}")
        if not r.is_file():
            raise MediaReadError(f"rig not found: {r}")
