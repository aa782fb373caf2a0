"""Save and load sequences of :class:`~facelib.results.BlendshapeFrame` as JSON or NPZ.

JSON (streamed, one frame per line inside ``frames``)::

    {"format": "facelib.blendshapes", "version": 1, "names": [52 ARKit names],
     "frames": [
       {"index": 0, "timestamp_ms": 0.0, "faces": [
          {"box": [x1, y1, x2, y2], "score": 0.99, "blendshapes": [52 floats],
           "head_pose": [yaw, pitch, roll] | null, "transform": [[4x4]] | null,
           "landmarks": [[x, y, z], ...] | null}]},
       ...]}

NPZ (arrays, F = most faces in any frame, padded with NaN)::

    names (52,) str        index (T,) int64        timestamp_ms (T,) float64
    face_count (T,) int64  boxes (T, F, 4)         scores (T, F)
    blendshapes (T, F, 52) float32   head_pose (T, F, 3)   [transform (T, F, 4, 4)]
    [landmarks (T, F, N, 3)]  (optional arrays only when some face has them)

Weights are in :data:`~facelib.processing.arkit.ARKIT_NAMES` order; readers map by the stored
``names`` so files stay readable if the canonical order ever changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import InputError, MediaReadError
from facelib.processing.arkit import ARKIT_NAMES, to_arkit
from facelib.results import BlendshapeFrame, FaceBlendshapes

FORMAT = "facelib.blendshapes"
VERSION = 1


def _list(value: np.ndarray | None) -> Any:
    return None if value is None else np.asarray(value, dtype=np.float64).round(7).tolist()


def _face_json(face: FaceBlendshapes, landmarks: bool) -> dict[str, Any]:
    return {
        "box": _list(face.box),
        "score": float(face.score),
        "blendshapes": _list(face.blendshapes),
        "head_pose": _list(face.head_pose),
        "transform": _list(face.transform),
        "landmarks": _list(face.landmarks) if landmarks else None,
    }


def save_json(frames: Iterable[BlendshapeFrame], path: str | os.PathLike[str], *, landmarks: bool = False) -> Path:
    """Write frames as JSON, streaming (a generator of frames is fine); returns the path.

    ``landmarks=False`` leaves the (large) landmark arrays out.
    """
    from facelib.io.atomic import AtomicOutput

    with AtomicOutput(path, "JSON") as out, open(out.partial, "w", encoding="utf-8") as fh:
        head = {"format": FORMAT, "version": VERSION, "names": list(ARKIT_NAMES)}
        fh.write(json.dumps(head)[:-1] + ', "frames": [\n')
        first = True
        for frame in frames:
            item = {
                "index": int(frame.index),
                "timestamp_ms": float(frame.timestamp_ms),
                "faces": [_face_json(f, landmarks) for f in frame.faces],
            }
            fh.write(("" if first else ",\n") + json.dumps(item))
            first = False
        fh.write("\n]}\n")
    return out.target


def _array(value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if value is None:
        return None
    out = np.asarray(value, dtype=np.float32)
    if shape is not None and out.shape != shape:
        raise MediaReadError(f"expected an array of shape {shape}, got {out.shape}")
    return out


def load_json(path: str | os.PathLike[str]) -> list[BlendshapeFrame]:
    """Read frames written by :func:`save_json`."""
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"blendshape JSON not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MediaReadError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise MediaReadError(f"{path} is not a facelib blendshape file (format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise MediaReadError(f"{path}: version {data.get('version')} is not supported (reads {VERSION})")
    names = data.get("names") or list(ARKIT_NAMES)
    frames = []
    try:
        for item in data["frames"]:
            faces = []
            for f in item["faces"]:
                weights = to_arkit(np.asarray(f["blendshapes"], np.float32), names)
                faces.append(
                    FaceBlendshapes(
                        box=np.asarray(f["box"], np.float32).reshape(4),
                        score=float(f["score"]),
                        blendshapes=weights,
                        landmarks=_array(f.get("landmarks")),
                        transform=_array(f.get("transform"), (4, 4)),
                        head_pose=_array(f.get("head_pose"), (3,)),
                    )
                )
            frames.append(BlendshapeFrame(int(item["index"]), float(item["timestamp_ms"]), tuple(faces)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise MediaReadError(f"{path}: malformed frame data ({type(exc).__name__}: {exc})") from exc
    return frames


def save_npz(frames: Iterable[BlendshapeFrame], path: str | os.PathLike[str], *, landmarks: bool = False) -> Path:
    """Write frames as a compressed ``.npz`` of padded arrays (see the module docstring)."""
    frames = list(frames)
    t = len(frames)
    f = max((len(fr.faces) for fr in frames), default=0)
    nan = np.float32(np.nan)
    arrays: dict[str, np.ndarray] = {
        "names": np.asarray(ARKIT_NAMES),
        "index": np.asarray([fr.index for fr in frames], np.int64),
        "timestamp_ms": np.asarray([fr.timestamp_ms for fr in frames], np.float64),
        "face_count": np.asarray([len(fr.faces) for fr in frames], np.int64),
        "boxes": np.full((t, f, 4), nan, np.float32),
        "scores": np.full((t, f), nan, np.float32),
        "blendshapes": np.full((t, f, 52), nan, np.float32),
        "head_pose": np.full((t, f, 3), nan, np.float32),
    }
    faces = [(i, j, face) for i, fr in enumerate(frames) for j, face in enumerate(fr.faces)]
    if any(face.transform is not None for _, _, face in faces):
        arrays["transform"] = np.full((t, f, 4, 4), nan, np.float32)
    n_landmarks = {np.shape(face.landmarks)[0] for _, _, face in faces if face.landmarks is not None}
    if landmarks and n_landmarks:
        if len(n_landmarks) > 1:
            raise InputError(f"faces have different landmark counts {sorted(n_landmarks)}; cannot stack them")
        arrays["landmarks"] = np.full((t, f, n_landmarks.pop(), 3), nan, np.float32)
    for i, j, face in faces:
        arrays["boxes"][i, j] = face.box
        arrays["scores"][i, j] = face.score
        arrays["blendshapes"][i, j] = face.blendshapes
        if face.head_pose is not None:
            arrays["head_pose"][i, j] = face.head_pose
        if face.transform is not None:
            arrays["transform"][i, j] = face.transform
        if face.landmarks is not None and "landmarks" in arrays:
            arrays["landmarks"][i, j] = np.asarray(face.landmarks, np.float32).reshape(-1, 3)
    from facelib.io.atomic import AtomicOutput

    with AtomicOutput(path, "NPZ") as out, open(out.partial, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]  # a file object: numpy adds no ".npz"
    return out.target


def load_npz(path: str | os.PathLike[str]) -> list[BlendshapeFrame]:
    """Read frames written by :func:`save_npz`."""
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"blendshape NPZ not found: {path}")
    try:
        data = dict(np.load(path, allow_pickle=False))
    except Exception as exc:  # numpy and zipfile raise many types on damaged archives
        # (BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, TokenError, ...)
        raise MediaReadError(f"{path} is not a readable .npz file: {type(exc).__name__}: {exc}") from exc
    required = {"names", "index", "timestamp_ms", "face_count", "boxes", "scores", "blendshapes", "head_pose"}
    missing = sorted(required - set(data))
    if missing:
        raise MediaReadError(f"{path} is not a facelib blendshape NPZ (missing {missing})")
    try:
        return _npz_frames(data)
    except (IndexError, ValueError, TypeError) as exc:
        raise MediaReadError(f"{path}: malformed blendshape arrays ({type(exc).__name__}: {exc})") from exc


def _npz_frames(data: dict[str, np.ndarray]) -> list[BlendshapeFrame]:
    names = [str(n) for n in np.atleast_1d(data["names"])]
    weights = to_arkit(data["blendshapes"], names)
    frames = []
    for i in range(len(data["index"])):
        faces = []
        for j in range(int(data["face_count"][i])):
            pose = data["head_pose"][i, j]
            faces.append(
                FaceBlendshapes(
                    box=data["boxes"][i, j].copy(),
                    score=float(data["scores"][i, j]),
                    blendshapes=weights[i, j].copy(),
                    landmarks=data["landmarks"][i, j].copy() if "landmarks" in data else None,
                    transform=data["transform"][i, j].copy()
                    if "transform" in data and np.isfinite(data["transform"][i, j]).all()
                    else None,
                    head_pose=pose.copy() if np.isfinite(pose).all() else None,
                )
            )
        frames.append(BlendshapeFrame(int(data["index"][i]), float(data["timestamp_ms"][i]), tuple(faces)))
    return frames
