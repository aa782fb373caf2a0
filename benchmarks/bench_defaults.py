"""Are facelib's default thread settings the fastest? Each workload preset against its alternative.

Run from the project root::

    python benchmarks/bench_defaults.py [--cores N] [--rounds 5] [--quick]

For every choice the tasks make when given a backend without options
(``facelib.backends.onnxruntime.WORKLOAD_OPTIONS``), the preset and the alternatives it was
chosen over are timed alternating round by round, on the real models (FSA-Net, MediaPipe face
models from ../shared; FaceFormer and FOMM full size with the random weights that
bench_audio2face.py / bench_motion.py make under scratch/, built here when absent):

* HeadPose's defaults (``small_models``: 1 thread below ``BATCHED_FROM`` faces, ``batched``:
  every usable physical core from there, spinning) vs 1 thread and N threads
  at batch 1, 2, 4, 8 and 16 (the network alone, called back to back), and on photos as users
  call it (``predict(image)``: the detector and FSA-Net taking turns);
* FaceLandmarker ``pipelined`` (1 thread, no spinning) vs ONNX Runtime's defaults, in
  ``stream`` (pipelined) and frame by frame;
* Audio2Face ``interleaved`` (spinning inside a run, stopped when it returns) vs spinning off
  and spinning on (ONNX Runtime's default), same threads;
* MotionTransfer ``interleaved`` (its keypoint detector and generator take turns) vs spinning on
  and off.

Each row says which setting the preset uses and whether it measured fastest.  On one core
there is nothing to choose, so run it with at least 2.  Writes
benchmarks/results/defaults-<N>core.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import Stats, add_common_args, alternate, ort_options, setup, shared_dir, write_result


def verdict(stats: dict[str, Stats], preset: str) -> str:
    """Is the preset fastest (medians)?  When not, say by how much and in how many of the
    alternating rounds the preset still beat the faster setting (paired round by round)."""
    fastest = min(stats, key=lambda k: stats[k].median)
    if fastest == preset:
        runner_up = min((k for k in stats if k != preset), key=lambda k: stats[k].median)
        return f"preset fastest, {stats[runner_up].median / stats[preset].median:.2f}x the next"
    wins = sum(p <= f for p, f in zip(stats[preset].samples, stats[fastest].samples))
    rounds = len(stats[preset].samples)
    slower = stats[preset].median / stats[fastest].median
    if wins:
        return (
            f"within noise: `{fastest}` {slower:.2f}x faster by medians, the preset faster in {wins} of {rounds} rounds"
        )
    return f"**preset not fastest**: `{fastest}` is {slower:.2f}x faster (in every round)"


def table(title: str, stats: dict[str, Stats], preset: str, unit: str, scale: float) -> list[str]:
    return [
        f"### {title}",
        "",
        f"| setting | {unit} |",
        "|---|---|",
        *(f"| {k}{' (preset)' if k == preset else ''} | {st.fmt(scale, 2)} |" for k, st in stats.items()),
        "",
        f"Verdict: {verdict(stats, preset)}.",
        "",
    ]


def headpose(shared: Path, n: int, rounds: int, quick: bool, tmp: Path) -> list[str]:
    from facelib.backends.base import BATCHED_FROM
    from facelib.models.convert.fsanet import VARIANTS, build_package
    from facelib.tasks.head_pose import HeadPose

    fsanet = shared / "assets" / "models" / "fsanet"
    package = build_package({r: fsanet / f"{s}.onnx" for r, s in VARIANTS.items()}, tmp / "fsanet")
    crops = np.random.default_rng(0).uniform(0, 255, (16, 64, 64, 3)).astype(np.float32)
    tasks = {
        f"{t} thread(s)": HeadPose(package.root, backend="onnxruntime", backend_options=ort_options(t))
        for t in sorted({1, n})
    }
    preset = "facelib defaults"
    tasks[preset] = HeadPose(package.root, backend="onnxruntime")  # the presets, switched by batch size
    lines = []
    for batch in (1, 16) if quick else (1, 2, 4, 8, 16):
        calls = max(1, (4 if quick else 64) // batch)
        c = crops[:batch]
        fns: dict[str, Callable[[], object]] = {
            k: (lambda p=p, c=c, k=calls: [p.predict_crops(c) for _ in range(k)]) for k, p in tasks.items()
        }
        chosen = f"batched: {n} threads, spinning" if batch >= BATCHED_FROM else "small_models: 1 thread"
        lines += table(
            f"HeadPose, batch {batch} (defaults = {chosen})",
            alternate(fns, rounds, per=calls * batch),
            preset,
            "ms / face",
            1000,
        )
    for p in tasks.values():
        p.close()
    return lines + headpose_photos(shared, n, rounds, quick, package.root, tmp)


def headpose_photos(shared: Path, n: int, rounds: int, quick: bool, fsanet: Path, tmp: Path) -> list[str]:
    """``HeadPose.predict(image)`` as users call it: the detector and FSA-Net take turns."""
    from facelib.io.image import read_image
    from facelib.models.convert.ultraface import build_package
    from facelib.tasks.head_pose import HeadPose

    media = shared / "assets" / "media"
    detector = build_package(
        {"detector": shared / "assets" / "models" / "ultraface" / "version-RFB-320.onnx"}, tmp / "uf"
    )
    paths = sorted((media / "aflw2000").glob("*.jpg"))[: 3 if quick else 12]
    images = [read_image(p) for p in [*paths, media / "images" / "two_people.jpg", media / "images" / "obama.jpg"]]
    settings: dict[str, dict[str, Any] | None] = {
        "1 thread": ort_options(1),
        f"{n} threads, spinning on (ONNX Runtime default)": ort_options(n),
        f"{n} threads, no spinning": ort_options(n, spinning=False),
        "facelib defaults": None,
    }
    tasks = {
        k: HeadPose(fsanet, detector=detector.root, backend="onnxruntime", backend_options=o)
        for k, o in settings.items()
    }
    fns: dict[str, Callable[[], object]] = {k: (lambda t=t: [t.predict(i) for i in images]) for k, t in tasks.items()}
    faces = sum(len(f) for f in tasks["1 thread"].predict(images))
    lines = table(
        f"HeadPose on photos: detector + FSA-Net taking turns ({len(images)} images, {faces} faces, `predict(image)`)",
        alternate(fns, rounds, per=len(images)),
        "facelib defaults",
        "ms / image",
        1000,
    )
    for t in tasks.values():
        t.close()
    return lines


def landmarker(shared: Path, n: int, rounds: int, quick: bool, tmp: Path) -> list[str]:
    from facelib.io.video import VideoReader
    from facelib.models.convert.mediapipe import build_package
    from facelib.tasks.face_landmarker import FaceLandmarker

    models = shared / "assets" / "models" / "mediapipe"
    package = build_package(
        {
            "task": models / "face_landmarker.task",
            "detector": models / "face_detector.onnx",
            "landmarks": models / "face_landmarks_detector.onnx",
            "blendshapes": models / "face_blendshapes.onnx",
        },
        tmp / "mediapipe",
    ).root
    with VideoReader(shared / "assets" / "media" / "video" / "talking_face_01.mp4") as reader:
        frames = [(f.image, round(f.timestamp_ms)) for f, _ in zip(reader, range(20 if quick else 60))]
    settings: dict[str, dict[str, Any] | None] = {
        "pipelined preset (1 thread, no spinning)": None,
        f"ONNX Runtime defaults ({n} threads, spinning)": {"intra_op_num_threads": 0},
        f"{n} threads, no spinning": ort_options(n, spinning=False),
    }
    marks = {
        k: FaceLandmarker(
            package,
            backend="onnxruntime",
            backend_options=o,
            mode="video",
            num_faces=1,
            output_blendshapes=True,
            output_transform=True,
        )
        for k, o in settings.items()
    }
    lines = []
    for piped in (True, False):

        def call(lm: Any, piped: bool = piped) -> None:
            lm.reset()
            if piped:
                list(lm.stream(iter(frames)))
            else:
                for image, ts in frames:
                    lm.detect_for_video(image, ts)

        fns = {k: (lambda lm=lm: call(lm)) for k, lm in marks.items()}
        mode = "stream (pipelined)" if piped else "frame by frame (detect_for_video)"
        lines += table(
            f"FaceLandmarker, {mode}", alternate(fns, rounds, per=len(frames)), next(iter(settings)), "ms / frame", 1000
        )
    for lm in marks.values():
        lm.close()
    return lines


def audio2face(shared: Path, n: int, rounds: int, quick: bool) -> list[str]:
    import bench_audio2face

    from facelib.io.audio import load_audio
    from facelib.tasks.audio2face import Audio2Face

    pkg = bench_audio2face.package()
    audio = load_audio(shared / "assets" / "media" / "audio" / "faceformer_test.wav")[: (2 if quick else 12) * 16000]
    template = np.zeros((5023, 3), np.float32)
    tasks = {
        "interleaved preset (spinning inside a run only)": Audio2Face(pkg, backend="onnxruntime"),
        f"{n} threads, no spinning": Audio2Face(
            pkg, backend="onnxruntime", backend_options=ort_options(n, spinning=False)
        ),
        f"{n} threads, spinning on (ONNX Runtime default)": Audio2Face(
            pkg, backend="onnxruntime", backend_options=ort_options(n)
        ),
    }
    fns = {k: (lambda t=t: t.predict(audio, 0, template)) for k, t in tasks.items()}
    lines = table(
        f"Audio2Face, {len(audio) / 16000:.0f} s of speech, {n} threads",
        alternate(fns, rounds),
        next(iter(tasks)),
        "seconds per call",
        1,
    )
    for t in tasks.values():
        t.close()
    return lines


def motion(shared: Path, n: int, rounds: int, quick: bool) -> list[str]:
    import bench_motion

    from facelib.tasks.motion_transfer import MotionTransfer

    pkg = bench_motion.package()
    ref = np.load(shared / "reference" / "fomm_tiny_seed1_ref.npz")
    source, driving = ref["source"], list(ref["driving"][: 2 if quick else 4])
    tasks = {
        "interleaved preset (spinning inside a run only)": MotionTransfer(pkg, backend="onnxruntime"),
        f"{n} threads, spinning on (ONNX Runtime default)": MotionTransfer(
            pkg, backend="onnxruntime", backend_options=ort_options(n)
        ),
        "no spinning": MotionTransfer(pkg, backend="onnxruntime", backend_options=ort_options(n, spinning=False)),
    }
    fns = {k: (lambda t=t: list(t.animate(source, driving))) for k, t in tasks.items()}
    lines = table(
        f"MotionTransfer, {len(driving)} frames, {n} threads",
        alternate(fns, rounds, per=len(driving)),
        next(iter(tasks)),
        "ms / frame",
        1000,
    )
    for t in tasks.values():
        t.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()
    run = setup(args)
    if (run.cores < 2 or run.cores < (os.cpu_count() or 1)) and not args.quick:
        print("bench_defaults.py: thread choices need at least 2 cores; nothing to measure on 1")
        return 0
    shared = shared_dir()
    lines = [
        "Each preset of `facelib.backends.onnxruntime.WORKLOAD_OPTIONS` against the settings it was chosen over, "
        "same models and inputs, alternating.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lines += headpose(shared, run.cores, args.rounds, args.quick, Path(tmp))
        lines += landmarker(shared, run.cores, args.rounds, args.quick, Path(tmp))
    lines += audio2face(shared, run.cores, args.rounds, args.quick)
    lines += motion(shared, run.cores, args.rounds, args.quick)
    write_result("defaults", "Default thread settings (workload presets)", "\n".join(lines), run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
