"""int8 against float32 for every task: speed (alternating, same cores) and accuracy cost on real data.

Run from the project root::

    python benchmarks/bench_precision.py [--cores N] [--rounds 5] [--quick]

Each task's package is quantized with :func:`facelib.models.precision.quantize_package` (static
Q/DQ on the convolutions, calibrated on real inputs recorded while the float32 task runs them;
dynamic int8 for the FaceFormer graphs), then float32 and int8 run the same inputs alternating.
Calibration inputs are kept apart from the inputs the accuracy is measured on.

* HeadPose: calibrated on 3 AFLW2000 faces; AFLW2000 MAE (landmark crops, 6 images) of both;
* BlendshapeCapture (FaceLandmarker): calibrated on the first 30 frames of talking_face_01.mp4,
  timed and compared on the next frames (blendshape and landmark difference from float32);
* Audio2Face: the full-size random-weight package of bench_audio2face.py (built when absent);
  vertex error against float32 on faceformer_test.wav;
* MotionTransfer: the full-size random-weight package of bench_motion.py (skipped when absent),
  calibrated on driving frames 0-3, frame error against float32 on frames 4-7.

The targets for reduced precision are ratios to upstream: multiply the int8 / fp32 factor here
by the fp32 ratio of the task's own section (same cores) -- both are printed.  Writes
benchmarks/results/precision-<N>core.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from common import SCRATCH, add_common_args, alternate, ort_options, ratio, setup, shared_dir, write_result

from facelib.models.package import ModelPackage
from facelib.models.precision import quantize_package, record_feeds

TARGETS = {"HeadPose": None, "BlendshapeCapture": 1.6, "Audio2Face": 8.0, "MotionTransfer": 3.0}


def section(name: str, stats: dict[str, Any], unit: str, scale: float, accuracy: str) -> list[str]:
    fp32, int8 = stats["fp32"], stats["int8"]
    wanted = TARGETS[name]
    goal = f" Reduced-precision target vs upstream: >= {wanted:g}x." if wanted else ""
    return [
        f"### {name}",
        "",
        f"| precision | {unit} |",
        "|---|---|",
        f"| fp32 | {fp32.fmt(scale, 2)} |",
        f"| int8 | {int8.fmt(scale, 2)} |",
        "",
        f"int8 is {ratio(fp32, int8)} fp32.{goal} Accuracy cost: {accuracy}",
        "",
    ]


def headpose(shared: Path, n: int, rounds: int, tmp: Path) -> list[str]:
    from facelib.models.convert.fsanet import VARIANTS, build_package
    from facelib.tasks.head_pose import HeadPose
    from facelib.tasks.head_pose_eval import evaluate_aflw

    fsanet = shared / "assets" / "models" / "fsanet"
    pkg = build_package({r: fsanet / f"{s}.onnx" for r, s in VARIANTS.items()}, tmp / "fsanet").root
    crops = np.load(shared / "reference" / "fsanet_aflw_shared_ref.npz")["crops_bgr_u8"].astype(np.float32)
    opts = ort_options(n)
    with HeadPose(pkg, backend="onnxruntime", backend_options=opts) as fp32:
        feeds = record_feeds(fp32, lambda: [fp32.predict_crops(c[None]) for c in crops[:3]])
    q = quantize_package(pkg, "int8", tmp / "fsanet-int8", calibration=feeds)
    tasks = {
        "fp32": HeadPose(pkg, backend="onnxruntime", backend_options=opts),
        "int8": HeadPose(q, backend="onnxruntime", backend_options=opts),
    }
    mae = {
        k: evaluate_aflw(shared / "assets" / "media" / "aflw2000", t, crop="landmarks").mae_mean
        for k, t in tasks.items()
    }
    lines = []
    for batch in (1, 16):
        c = np.resize(crops, (batch, 64, 64, 3))
        calls = max(1, 32 // batch)
        stats = alternate(
            {k: (lambda t=t, c=c, m=calls: [t.predict_crops(c) for _ in range(m)]) for k, t in tasks.items()},
            rounds,
            per=calls * batch,
        )
        lines += section(
            "HeadPose",
            stats,
            f"ms / face, batch {batch}",
            1000,
            f"AFLW2000 MAE (6 images, landmark crops) fp32 {mae['fp32']:.2f}, int8 {mae['int8']:.2f} deg.",
        )
    for t in tasks.values():
        t.close()
    return lines


def landmarker(shared: Path, n: int, rounds: int, quick: bool, tmp: Path) -> list[str]:
    from facelib.io.video import VideoReader
    from facelib.models.convert.mediapipe import build_package
    from facelib.tasks.face_landmarker import FaceLandmarker

    models = shared / "assets" / "models" / "mediapipe"
    pkg = build_package(
        {
            "task": models / "face_landmarker.task",
            "detector": models / "face_detector.onnx",
            "landmarks": models / "face_landmarks_detector.onnx",
            "blendshapes": models / "face_blendshapes.onnx",
        },
        tmp / "mediapipe",
    ).root
    with VideoReader(shared / "assets" / "media" / "video" / "talking_face_01.mp4") as reader:
        frames = [(f.image, round(f.timestamp_ms)) for f, _ in zip(reader, range(40 if quick else 150))]
    calib, test = frames[:30], frames[30:]
    options: dict[str, Any] = dict(mode="video", num_faces=1, output_blendshapes=True, output_transform=True)
    with FaceLandmarker(pkg, backend="onnxruntime", **options) as fp32:
        feeds = record_feeds(fp32, lambda: [fp32.detect_for_video(i, ts) for i, ts in calib])
    q = quantize_package(pkg, "int8", tmp / "mediapipe-int8", calibration=feeds)
    tasks = {
        "fp32": FaceLandmarker(pkg, backend="onnxruntime", **options),
        "int8": FaceLandmarker(q, backend="onnxruntime", **options),
    }
    out: dict[str, list[Any]] = {}

    def run(k: str) -> None:
        tasks[k].reset()
        out[k] = list(tasks[k].stream(iter(test)))

    stats = alternate({k: (lambda k=k: run(k)) for k in tasks}, rounds, per=len(test))
    pairs = [(a.faces[0], b.faces[0]) for a, b in zip(out["fp32"], out["int8"]) if a.faces and b.faces]
    bs = max(float(np.abs(a.blendshapes - b.blendshapes).max()) for a, b in pairs)
    lm = max(float(np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).max()) for a, b in pairs)
    for t in tasks.values():
        t.close()
    return section(
        "BlendshapeCapture",
        stats,
        "ms / frame (stream)",
        1000,
        f"blendshapes max |int8 - fp32| {bs:.3f}, landmarks max {lm:.2f} px over {len(pairs)} frames; "
        f"files quantized: {ModelPackage.load(q).card.metadata['quantization']}.",
    )


def audio2face(shared: Path, n: int, rounds: int, quick: bool, tmp: Path) -> list[str]:
    from facelib.io.audio import load_audio
    from facelib.tasks.audio2face import Audio2Face

    pkg = SCRATCH / "bench_audio2face" / "pkg"
    if not (pkg / "facelib.json").is_file():
        from bench_audio2face import make_checkpoint

        from facelib.models.convert.faceformer import build_package

        ckpt = SCRATCH / "bench_audio2face" / "faceformer_vocaset_full_random.pth"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if not ckpt.is_file():
            make_checkpoint(ckpt)
        build_package({"checkpoint": ckpt}, pkg, dataset="vocaset")
    q = quantize_package(pkg, "int8", tmp / "a2f-int8")
    audio = load_audio(shared / "assets" / "media" / "audio" / "faceformer_test.wav")
    audio = audio[: 2 * 16000] if quick else audio
    template = np.zeros((5023, 3), np.float32)
    tasks = {
        "fp32": Audio2Face(pkg, backend="onnxruntime", backend_options=ort_options(n, spinning=False)),
        "int8": Audio2Face(q, backend="onnxruntime", backend_options=ort_options(n, spinning=False)),
    }
    out: dict[str, np.ndarray] = {}

    def run(k: str) -> None:
        out[k] = tasks[k].predict(audio, 0, template).vertices

    stats = alternate({k: (lambda k=k: run(k)) for k in tasks}, rounds)
    err = np.abs(out["int8"] - out["fp32"])
    scale = float(np.abs(out["fp32"]).max())
    for t in tasks.values():
        t.close()
    return section(
        "Audio2Face",
        stats,
        "seconds per file",
        1,
        f"vertex error max {err.max():.2e} ({err.max() / scale:.1%} of the largest offset), "
        f"mean {err.mean():.2e} (full-size random weights).",
    )


def motion(shared: Path, n: int, rounds: int, quick: bool, tmp: Path) -> list[str]:
    from facelib.tasks.motion_transfer import MotionTransfer

    pkg = SCRATCH / "bench_motion" / "fomm-vox-256-random"
    if not (pkg / "facelib.json").is_file():
        return ["### MotionTransfer", "", "Skipped: run bench_motion.py first (it builds the full-size package).", ""]
    ref = np.load(shared / "reference" / "fomm_tiny_seed1_ref.npz")
    source, driving = ref["source"], list(ref["driving"])
    calib, test = driving[:4], driving[4:6] if quick else driving[4:]
    opts = ort_options(n)
    with MotionTransfer(pkg, backend="onnxruntime", backend_options=opts) as fp32:
        feeds = record_feeds(fp32, lambda: list(fp32.animate(source, calib)))
    q = quantize_package(pkg, "int8", tmp / "fomm-int8", calibration=feeds)
    tasks = {
        "fp32": MotionTransfer(pkg, backend="onnxruntime", backend_options=opts),
        "int8": MotionTransfer(q, backend="onnxruntime", backend_options=opts),
    }
    out: dict[str, np.ndarray] = {}

    def run(k: str) -> None:
        out[k] = np.stack(list(tasks[k].animate(source, test)))

    stats = alternate({k: (lambda k=k: run(k)) for k in tasks}, rounds, per=len(test))
    err = np.abs(out["int8"].astype(np.float64) - out["fp32"])
    for t in tasks.values():
        t.close()
    return section(
        "MotionTransfer",
        stats,
        "ms / frame",
        1000,
        f"frame error max {err.max():.3f}, mean {err.mean():.4f} (pixel values in [0, 1]; full-size random weights).",
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args()
    run = setup(args)
    if run.cores < (os.cpu_count() or 1) and not args.quick:
        print("bench_precision.py: measured on all cores only (run_all also runs it with --cores 1)")
        return 0
    shared = shared_dir()
    lines = [f"Each task's float32 package and its int8 variant on {run.cores} thread(s), alternating.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        lines += headpose(shared, run.cores, args.rounds, t)
        lines += landmarker(shared, run.cores, args.rounds, args.quick, t)
        lines += audio2face(shared, run.cores, args.rounds, args.quick, t)
        lines += motion(shared, run.cores, args.rounds, args.quick, t)
    write_result("precision", "Reduced precision (int8) against float32", "\n".join(lines), run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
