"""Reference outputs of Google's ``mediapipe`` package for facelib's Face Landmarker tests.

Runs ``mediapipe.tasks.python.vision.FaceLandmarker`` (the reference; a development tool, never
a facelib dependency) on every case of ``tests/mediapipe_cases.py`` (the AFLW2000 images and the
portraits of ../shared/assets/media, as they are, scaled up 4-8x and rotated +-30 degrees) and
writes one ``tests/data/mediapipe_refs/<image>.npz`` per source image.

Per case (keys prefixed ``<variant>/``):

``digest``, ``size``
    Digest of the RGB pixels the outputs were made from (see ``mediapipe_cases.digest``) and
    (width, height).
``image_landmarks`` (F, 478, 3), ``image_blendshapes`` (F, 52), ``image_matrix`` (F, 4, 4)
    IMAGE mode, ``num_faces = 4``; landmarks normalised (x / W, y / H, z / W), float32.
``video_landmarks`` (T, 478, 3), ``video_blendshapes`` (T, 52), ``video_matrix`` (T, 4, 4),
``video_found`` (T,) bool
    VIDEO mode, ``num_faces = 1`` (so the package tracks the face from its landmarks and smooths
    them) on the case's sequence (``mediapipe_cases.video_frame``: the image moving by a pixel or
    two per frame, ``VIDEO_FRAMES`` frames at ``mediapipe_cases.video_timestamps()``); rows of
    frames without a face are NaN.
``video_self_noise`` (T, 4)
    The package against itself: per VIDEO frame, the largest change of its outputs (landmarks
    x/y max abs, blendshapes mean abs, matrix 3x3 block max abs, translation max abs relative to
    its length) when the lowest bit of one border pixel flips in every frame (see
    :func:`self_noise`).  Tracking feeds each frame's landmarks into the next frame's crop, so
    last-bit differences grow from frame to frame; this is that growth in Google's own pipeline.

The first ``CLIP_FRAMES`` frames of the real clip ``mediapipe_cases.CLIP`` go to
``<clip>.npz`` (e.g. ``talking_face_01_mp4.npz``): ``digest`` (of all its frames), ``size``,
``timestamps`` (ms) and the ``video_*`` arrays above (``video_self_noise`` included).

Usage (from the project root, with ``pip install mediapipe==1.2.2`` in the environment)::

    python scripts/make_mediapipe_refs.py [--shared ../shared] [--out tests/data/mediapipe_refs]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import mediapipe_cases  # noqa: E402

NUM_FACES_IMAGE = 4
NUM_FACES_VIDEO = 1


def _landmarker(task: Path, video: bool):  # type: ignore[no-untyped-def]
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)),
        running_mode=vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE,
        num_faces=NUM_FACES_VIDEO if video else NUM_FACES_IMAGE,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    return vision.FaceLandmarker.create_from_options(options)


def _arrays(result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    lms = np.array([[(p.x, p.y, p.z) for p in face] for face in result.face_landmarks], np.float32)
    bss = np.array([[c.score for c in face] for face in result.face_blendshapes], np.float32)
    mats = np.array([np.asarray(m) for m in result.facial_transformation_matrixes], np.float32)
    n = len(result.face_landmarks)
    return lms.reshape(n, 478, 3), bss.reshape(n, 52), mats.reshape(n, 4, 4)


def _image(rgb: np.ndarray):  # type: ignore[no-untyped-def]
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def run_video(task: Path, frames: list[np.ndarray], timestamps: list[int]) -> dict[str, np.ndarray]:
    """VIDEO-mode outputs of the package (``num_faces = 1``) on a sequence of RGB uint8 frames."""
    n = len(frames)
    video = {
        "video_landmarks": np.full((n, 478, 3), np.nan, np.float32),
        "video_blendshapes": np.full((n, 52), np.nan, np.float32),
        "video_matrix": np.full((n, 4, 4), np.nan, np.float32),
        "video_found": np.zeros(n, bool),
    }
    with _landmarker(task, video=True) as lm:
        for t, (rgb, ts) in enumerate(zip(frames, timestamps)):
            lms, bss, mats = _arrays(lm.detect_for_video(_image(rgb), ts))
            if len(lms):
                video["video_landmarks"][t], video["video_blendshapes"][t], video["video_matrix"][t] = (
                    lms[0],
                    bss[0],
                    mats[0],
                )
                video["video_found"][t] = True
    return video


def errors(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 4) float32 per frame: landmarks x/y max abs, blendshapes mean abs, matrix 3x3 block
    max abs, matrix translation max abs relative to its length, between two :func:`run_video`
    results; 0 on frames where either has no face."""
    out = np.zeros((len(a["video_found"]), 4), np.float32)
    for t in np.nonzero(a["video_found"] & b["video_found"])[0]:
        diff = np.abs(a["video_matrix"][t].astype(np.float64) - b["video_matrix"][t])
        out[t] = (
            np.abs(a["video_landmarks"][t] - b["video_landmarks"][t])[:, :2].max(),
            np.abs(a["video_blendshapes"][t] - b["video_blendshapes"][t]).mean(),
            diff[:3, :3].max(),
            diff[:3, 3].max() / np.linalg.norm(a["video_matrix"][t][:3, 3]),
        )
    return out


def self_noise(task: Path, frames: list[np.ndarray], timestamps: list[int], base: dict[str, np.ndarray]) -> np.ndarray:
    """How far the package moves from its own VIDEO-mode results when the lowest bit of one pixel
    on the image border flips in every frame (each corner and each edge's middle in turn; per
    frame the largest of the eight): (T, 4) as :func:`errors`."""
    h, w = frames[0].shape[:2]
    worst = np.zeros((len(frames), 4), np.float32)
    border = [(y, x) for y in (0, h // 2, h - 1) for x in (0, w // 2, w - 1) if (y, x) != (h // 2, w // 2)]
    for y, x in border:
        flipped = [f.copy() for f in frames]
        for f in flipped:
            f[y, x, 0] ^= 1
        worst = np.maximum(worst, errors(base, run_video(task, flipped, timestamps)))
    return worst


def run_case(task: Path, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """IMAGE-mode outputs of the package for one RGB uint8 image, VIDEO-mode on its sequence."""
    out: dict[str, np.ndarray] = {}
    with _landmarker(task, video=False) as lm:
        out["image_landmarks"], out["image_blendshapes"], out["image_matrix"] = _arrays(lm.detect(_image(rgb)))
    frames = [mediapipe_cases.video_frame(rgb, t) for t in range(mediapipe_cases.VIDEO_FRAMES)]
    timestamps = mediapipe_cases.video_timestamps()
    out.update(run_video(task, frames, timestamps))
    out["video_self_noise"] = self_noise(task, frames, timestamps, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared")))
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "mediapipe_refs")
    args = parser.parse_args(argv)
    import mediapipe as mp

    media = args.shared / "assets" / "media"
    task = args.shared / "assets" / "models" / "mediapipe" / "face_landmarker.task"
    by_source: dict[str, dict[str, np.ndarray]] = {}
    for case in mediapipe_cases.cases(media):
        rgb = case.image(media)
        arrays = run_case(task, rgb)
        arrays["digest"] = np.array(mediapipe_cases.digest(rgb))
        arrays["size"] = np.array([rgb.shape[1], rgb.shape[0]], np.int64)
        store = by_source.setdefault(case.source, {"mediapipe_version": np.array(mp.__version__)})
        store.update({f"{case.variant}/{k}": v for k, v in arrays.items()})
        print(
            f"{case.key}: {rgb.shape[1]}x{rgb.shape[0]}, image faces {len(arrays['image_landmarks'])}, "
            f"video frames with a face {int(arrays['video_found'].sum())}"
        )
    frames, timestamps = mediapipe_cases.clip_frames(media)
    clip = run_video(task, frames, timestamps)
    clip["video_self_noise"] = self_noise(task, frames, timestamps, clip)
    clip["digest"] = np.array(mediapipe_cases.digest(np.stack(frames)))
    clip["size"] = np.array([frames[0].shape[1], frames[0].shape[0]], np.int64)
    clip["timestamps"] = np.array(timestamps, np.int64)
    clip["mediapipe_version"] = np.array(mp.__version__)
    by_source[mediapipe_cases.CLIP] = clip
    print(f"{mediapipe_cases.CLIP}: {len(frames)} frames, with a face {int(clip['video_found'].sum())}")
    args.out.mkdir(parents=True, exist_ok=True)
    for source, store in by_source.items():
        target = args.out / f"{Path(source).name.replace('.', '_')}.npz"
        with tempfile.NamedTemporaryFile(dir=args.out, suffix=".npz", delete=False) as tmp:
            np.savez_compressed(tmp, **store)  # type: ignore[arg-type]
        os.replace(tmp.name, target)
        print(f"wrote {target} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
