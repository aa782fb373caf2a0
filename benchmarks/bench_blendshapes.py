"""Expression capture speed: facelib's FaceLandmarker vs Google's ``mediapipe`` package, VIDEO mode.

Usage (from the project root; needs ../shared or FACELIB_SHARED, and the pinned ``mediapipe``
of benchmarks/requirements.txt for the upstream side)::

    python benchmarks/bench_blendshapes.py [--cores N] [--rounds 5] [--frames 240] [--quick]

Both run the same clip (talking_face_01.mp4, decoded once into memory so decoding is not
timed), in VIDEO mode with num_faces = 1 and the same work per frame: landmarks, 52 blendshapes
and the facial transformation matrix, with landmark smoothing on (Google's package always
smooths when num_faces = 1).  Each landmarker is created (and the package's one re-created per
round, as VIDEO mode needs rising timestamps) outside the timed region; inside it both sides
only produce their result objects -- converting them to arrays for the parity check happens
after timing, on both.  Google's package takes no thread setting, so "same cores" means the
process is pinned to ``--cores`` cores; facelib rows on ``--cores`` threads are beside its
defaults.  Rounds alternate between the implementations.  Writes
benchmarks/results/blendshapes-<N>core.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import add_common_args, alternate, ort_options, ratio, require, setup, shared_dir, target, write_result

from facelib.io.video import VideoReader
from facelib.models.convert.mediapipe import build_package
from facelib.tasks.face_landmarker import FaceLandmarker

CLIP = "talking_face_01.mp4"
MEDIAPIPE = "1.2.2"


def load_frames(path: Path, limit: int) -> list[tuple[np.ndarray, int]]:
    with VideoReader(path) as reader:
        return [(f.image, round(f.timestamp_ms)) for f, _ in zip(reader, range(limit))]


class Google:
    """Google's landmarker: :meth:`prepare` (untimed) makes a fresh one, :meth:`run` only detects."""

    def __init__(self, task: Path, frames: list[tuple[np.ndarray, int]]) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self.mp, self.frames = mp, frames
        self.options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self.vision = vision
        self.images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=image) for image, _ in frames]
        self.landmarker: Any = None
        self.results: list[Any] = []

    def prepare(self) -> None:
        if self.landmarker is not None:
            self.landmarker.close()
        self.landmarker = self.vision.FaceLandmarker.create_from_options(self.options)

    def run(self) -> None:
        detect = self.landmarker.detect_for_video
        self.results = [detect(image, ts) for image, (_, ts) in zip(self.images, self.frames)]

    def close(self) -> None:
        if self.landmarker is not None:
            self.landmarker.close()
            self.landmarker = None

    def arrays(self) -> list[Any]:
        out = []
        for result in self.results:
            if result.face_landmarks:
                lms = np.array([[p.x, p.y, p.z] for p in result.face_landmarks[0]], dtype=np.float32)
                scores = np.array([c.score for c in result.face_blendshapes[0]], dtype=np.float32)
                out.append((lms, scores, np.asarray(result.facial_transformation_matrixes[0])))
            else:
                out.append(None)
        return out


class Ours:
    """facelib's landmarker (created once, untimed); :meth:`prepare` resets its tracking state."""

    def __init__(
        self, package: Path, backend_options: dict | None, pipelined: bool, frames: list, backend: str = "onnxruntime"
    ) -> None:
        self.landmarker = FaceLandmarker(
            package,
            backend=backend,
            backend_options=backend_options,
            mode="video",
            num_faces=1,
            output_blendshapes=True,
            output_transform=True,
            smoothing=True,
        )
        self.pipelined, self.frames = pipelined, frames
        self.results: list[Any] = []

    def prepare(self) -> None:
        self.landmarker.reset()

    def run(self) -> None:
        if self.pipelined:
            self.results = list(self.landmarker.stream(iter(self.frames)))
        else:
            detect = self.landmarker.detect_for_video
            self.results = [detect(image, ts) for image, ts in self.frames]

    def close(self) -> None:
        self.landmarker.close()

    def arrays(self) -> list[Any]:
        out = []
        for result in self.results:
            if result.faces:
                face = result.faces[0]
                w, h = result.image_size
                out.append((face.landmarks / np.array([w, h, w], np.float32), face.blendshapes, face.transform))
            else:
                out.append(None)
        return out


def litert_available() -> bool:
    """Whether the LiteRT backend plugin (``facelib[litert]``) is installed and can run."""
    from facelib.backends import list_backends

    return any(b.name == "litert" and b.available for b in list_backends())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()
    run = setup(args)
    require("mediapipe", MEDIAPIPE)
    shared = shared_dir()
    models = shared / "assets" / "models" / "mediapipe"
    frames = load_frames(shared / "assets" / "media" / "video" / CLIP, 20 if args.quick else args.frames)
    n = run.cores
    with tempfile.TemporaryDirectory(prefix="facelib-bench-") as tmp:
        package = build_package(
            {
                "task": models / "face_landmarker.task",
                "detector": models / "face_detector.onnx",
                "landmarks": models / "face_landmarks_detector.onnx",
                "blendshapes": models / "face_blendshapes.onnx",
            },
            Path(tmp) / "pkg",
        ).root
        google_name = f"mediapipe {MEDIAPIPE} (TFLite + XNNPACK, its own threads on {n} core(s))"
        headline = "facelib defaults, pipelined (stream / process_video)"
        contenders: dict[str, Any] = {
            google_name: Google(models / "face_landmarker.task", frames),
            headline: Ours(package, None, True, frames),
            "facelib defaults, frame by frame (detect_for_video)": Ours(package, None, False, frames),
            f"facelib, {n} ORT thread(s), spinning on, pipelined": Ours(package, ort_options(n), True, frames),
        }
        if n > 1:
            contenders["facelib, 1 ORT thread, pipelined"] = Ours(package, ort_options(1), True, frames)
        if litert_available():  # facelib[litert]: the .task's own TFLite models on Google's runtime
            contenders["facelib on LiteRT, defaults, frame by frame"] = Ours(package, None, False, frames, "litert")
            contenders["facelib on LiteRT, defaults, pipelined"] = Ours(package, None, True, frames, "litert")
            for threads in sorted({1, n}):
                contenders[f"facelib on LiteRT, {threads} thread(s), frame by frame"] = Ours(
                    package, {"num_threads": threads}, False, frames, "litert"
                )
        stats = alternate(
            {k: c.run for k, c in contenders.items()},
            args.rounds,
            per=len(frames),
            prepare={k: c.prepare for k, c in contenders.items()},
        )
        outputs = {k: c.arrays() for k, c in contenders.items()}
        for c in contenders.values():
            c.close()
    base = stats[google_name]
    rows = [
        f"| {name} | {st.fmt(digits=2)} | {1 / st.median:.1f} | {ratio(base, st) if name != google_name else '1.00x'} |"
        for name, st in stats.items()
    ]
    ref, ours = outputs[google_name], outputs[headline]
    pairs = [(r, o) for r, o in zip(ref, ours) if r is not None and o is not None]
    lm_err = np.stack([np.abs(o[0][:, :2] - r[0][:, :2]) for r, o in pairs])
    bs_err = np.stack([np.abs(o[1] - r[1]) for r, o in pairs])
    rot_err = np.stack([np.abs(o[2][:3, :3] - r[2][:3, :3]).max() for r, o in pairs])
    speedup = base.median / stats[headline].median
    body = f"""
Clip `{CLIP}` ({len(frames)} frames, 256x256), VIDEO mode, num_faces = 1, blendshapes + matrix,
landmark smoothing on (as Google's package does for one face); frames decoded beforehand.  facelib
runs the converted ONNX models on ONNX Runtime (CPU); the LiteRT rows (when facelib[litert] is
installed) run the package's TFLite sources on Google's LiteRT (XNNPACK).  "defaults" = what FaceLandmarker /
BlendshapeCapture use when given no backend options (their workload preset).  Each side's best
configuration is stated before measuring, not picked afterwards: Google's package has one (its
defaults); facelib's is its defaults, the headline row.  The other facelib rows show what the
defaults were chosen from.  Speed-up = median mediapipe time / median facelib time (range of
per-round ratios).

| implementation | ms / frame | frames / s | speed vs mediapipe |
|---|---|---|---|
{chr(10).join(rows)}

{target("BlendshapeCapture fp32 (facelib defaults vs mediapipe, same cores)", speedup, 1.3)}

Parity of `{headline}` against the package on the same {len(pairs)} frames (normalised image units):
landmarks x/y mean {lm_err.mean():.2e}, max {lm_err.max():.2e}; blendshapes mean abs {bs_err.mean():.2e}
(max {bs_err.max():.2e}); matrix rotation max {rot_err.max():.2e}.  Faces found: mediapipe
{sum(r is not None for r in ref)}, facelib {sum(o is not None for o in ours)} of {len(frames)}.
"""
    write_result("blendshapes", "BlendshapeCapture / FaceLandmarker (MediaPipe models)", body, run)


if __name__ == "__main__":
    main()
