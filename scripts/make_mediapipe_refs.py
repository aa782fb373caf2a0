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
    them), the image repeated ``VIDEO_FRAMES`` times at ``VIDEO_STEP_MS`` ms steps from t = 0;
    rows of frames without a face are NaN.

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


def run_case(task: Path, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """IMAGE- and VIDEO-mode outputs of the package for one RGB uint8 image."""
    import mediapipe as mp

    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    out: dict[str, np.ndarray] = {}
    with _landmarker(task, video=False) as lm:
        out["image_landmarks"], out["image_blendshapes"], out["image_matrix"] = _arrays(lm.detect(image))
    frames = mediapipe_cases.VIDEO_FRAMES
    video = {
        "video_landmarks": np.full((frames, 478, 3), np.nan, np.float32),
        "video_blendshapes": np.full((frames, 52), np.nan, np.float32),
        "video_matrix": np.full((frames, 4, 4), np.nan, np.float32),
        "video_found": np.zeros(frames, bool),
    }
    with _landmarker(task, video=True) as lm:
        for t in range(frames):
            lms, bss, mats = _arrays(lm.detect_for_video(image, t * mediapipe_cases.VIDEO_STEP_MS))
            if len(lms):
                video["video_landmarks"][t], video["video_blendshapes"][t], video["video_matrix"][t] = (
                    lms[0],
                    bss[0],
                    mats[0],
                )
                video["video_found"][t] = True
    out.update(video)
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
