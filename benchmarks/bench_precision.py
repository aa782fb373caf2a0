"""int8 against float32 for every task: speed (alternating, same cores) and accuracy cost on real data.

Run from the project root::

    python benchmarks/bench_precision.py [--cores N] [--rounds 5] [--quick]

Each task's package is quantized with :func:`facelib.models.precision.quantize_package` as users
get it: the files :data:`facelib.models.precision.MEASURED` picks (the others stay float32),
static Q/DQ calibrated on real inputs recorded while the float32 task runs them, dynamic int8 for
the FaceFormer graphs.  Where that variant keeps every file float32 (HeadPose,
BlendshapeCapture) the bench also times the "all files int8" variant, to show why.  Calibration
inputs are kept apart from the inputs the accuracy is measured on; every contender of a task
runs in one alternating loop on the same cores and threads, upstream included:

* HeadPose: calibrated on 3 AFLW2000 faces; AFLW2000 MAE (landmark crops, 6 images) of both;
* BlendshapeCapture (FaceLandmarker): against Google's ``mediapipe`` (when installed);
  calibrated on the first 30 frames of talking_face_01.mp4, timed and compared on the next frames;
* Audio2Face: the full-size random-weight package of bench_audio2face.py (built when absent),
  against upstream FaceFormer (torch); vertex error against float32 on faceformer_test.wav;
* MotionTransfer: the full-size random-weight package of bench_motion.py (built when absent),
  against upstream ``demo.make_animation``; calibrated on driving frames 0-3 of
  fomm_driving_00.mp4, frame error against float32 on the next frames.

The reduced-precision targets are ratios to upstream, printed with each section.  Writes
benchmarks/results/precision-<N>core.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    SCRATCH,
    Stats,
    add_common_args,
    alternate,
    ort_options,
    ratio,
    setup,
    shared_dir,
    target,
    write_result,
)

from facelib.models.package import ModelPackage
from facelib.models.precision import PrecisionWarning, quantize_package, record_feeds

TARGETS = {"HeadPose": None, "BlendshapeCapture": 1.6, "Audio2Face": 8.0, "MotionTransfer": 3.0}


def section(
    name: str, stats: dict[str, Stats], unit: str, scale: float, accuracy: str, upstream: str | None = None
) -> list[str]:
    """A table of every contender (median [IQR] (range) per unit), the int8 / fp32 ratio, the
    ratio to upstream of the variant users get, and the accuracy cost."""
    lines = [f"### {name}", "", f"| contender | {unit} | vs fp32 |", "|---|---|---|"]
    lines += [f"| {k} | {st.fmt(scale, 2)} | {ratio(stats['fp32'], st)} |" for k, st in stats.items()]
    lines += ["", f"Accuracy cost: {accuracy}", ""]
    wanted = TARGETS[name]
    if upstream is not None and wanted is not None:
        got = stats[upstream].median / stats["int8"].median
        lines.append(
            f"fp32 is {ratio(stats[upstream], stats['fp32'])} {upstream}; int8 {ratio(stats[upstream], stats['int8'])}."
        )
        lines.append(target(f"{name} int8 vs {upstream} (same cores)", got, wanted))
        lines.append("")
    return lines


def _quiet_quantize(pkg: Path, out: Path, feeds: Any = None, roles: list[str] | None = None) -> Path:
    """The variant (no PrecisionWarning: the section says when it keeps every file float32)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        return quantize_package(pkg, "int8", out, calibration=feeds, roles=roles)


def _methods(path: Path) -> str:
    return "; ".join(
        f"{r}: {m.split(' (')[0]}" for r, m in ModelPackage.load(path).card.metadata["quantization"].items()
    )


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
    given = _quiet_quantize(pkg, tmp / "fsanet-int8")
    forced = _quiet_quantize(pkg, tmp / "fsanet-int8-forced", feeds, roles=["ensemble"])
    tasks = {
        "fp32": HeadPose(pkg, backend="onnxruntime", backend_options=opts),
        "int8 (all convolutions, static Q/DQ)": HeadPose(forced, backend="onnxruntime", backend_options=opts),
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
            f"AFLW2000 MAE (6 images, landmark crops) fp32 {mae['fp32']:.2f}, all-int8 "
            f"{mae['int8 (all convolutions, static Q/DQ)']:.2f} deg.  The int8 variant users get keeps every "
            f"file float32 ({_methods(given)}), so it costs nothing and gains nothing.",
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
    # smoothing on, as Google's package smooths one face in VIDEO mode (facelib's default is off)
    options: dict[str, Any] = dict(
        mode="video", num_faces=1, output_blendshapes=True, output_transform=True, smoothing=True
    )
    with FaceLandmarker(pkg, backend="onnxruntime", **options) as fp32:
        feeds = record_feeds(fp32, lambda: [fp32.detect_for_video(i, ts) for i, ts in calib])
    given = _quiet_quantize(pkg, tmp / "mediapipe-int8")
    forced = _quiet_quantize(pkg, tmp / "mediapipe-int8-forced", feeds, roles=["detector", "landmarks", "blendshapes"])
    opts = ort_options(n)
    tasks = {
        "fp32": FaceLandmarker(pkg, backend="onnxruntime", backend_options=opts, **options),
        "int8 (all files, static Q/DQ)": FaceLandmarker(forced, backend="onnxruntime", backend_options=opts, **options),
    }
    out: dict[str, list[Any]] = {}

    def run(k: str) -> None:
        tasks[k].reset()
        out[k] = list(tasks[k].stream(iter(test)))

    contenders: dict[str, Any] = {k: (lambda k=k: run(k)) for k in tasks}
    prepare: dict[str, Any] = {}
    google = None
    try:
        from bench_blendshapes import Google

        google = Google(models / "face_landmarker.task", test)
        contenders = {"mediapipe": google.run, **contenders}
        prepare["mediapipe"] = google.prepare
    except ImportError:
        pass
    stats = alternate(contenders, rounds, per=len(test), prepare=prepare)
    forced_name = "int8 (all files, static Q/DQ)"
    pairs = [(a.faces[0], b.faces[0]) for a, b in zip(out["fp32"], out[forced_name]) if a.faces and b.faces]
    bs = max(float(np.abs(a.blendshapes - b.blendshapes).max()) for a, b in pairs)
    lm = max(float(np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).max()) for a, b in pairs)
    vs_google = ""
    if google is not None:
        theirs = [g[1] if g is not None else None for g in google.arrays()]
        diffs = [
            float(np.abs(r.faces[0].blendshapes - g).max())
            for r, g in zip(out["fp32"], theirs)
            if r.faces and g is not None
        ]
        vs_google = f" fp32 vs mediapipe: blendshapes max {max(diffs):.3f} over {len(diffs)} frames."
        google.close()
    for t in tasks.values():
        t.close()
    lines = section(
        "BlendshapeCapture",
        stats,
        "ms / frame (stream)",
        1000,
        f"all-int8 vs fp32: blendshapes max {bs:.3f}, landmarks max {lm:.2f} px over {len(pairs)} frames.{vs_google} "
        f"The int8 variant users get keeps every file float32 ({_methods(given)}): the all-int8 row is slower "
        f"and wrong, so int8 here is the fp32 row.",
    )
    if google is not None:
        got = stats["mediapipe"].median / stats["fp32"].median
        lines += [target("BlendshapeCapture int8 (= fp32) vs mediapipe (same cores)", got, 1.6), ""]
    return lines


def _audio2face_package() -> Path:
    import bench_audio2face

    return bench_audio2face.package()


def audio2face(shared: Path, n: int, rounds: int, quick: bool, tmp: Path, with_upstream: bool) -> list[str]:
    from facelib.io.audio import load_audio
    from facelib.tasks.audio2face import Audio2Face

    pkg = _audio2face_package()
    q = _quiet_quantize(pkg, tmp / "a2f-int8")
    wav = shared / "assets" / "media" / "audio" / "faceformer_test.wav"
    audio = load_audio(wav)
    if quick:
        import soundfile as sf

        audio = audio[: 2 * 16000]
        wav = tmp / "quick.wav"
        sf.write(wav, audio, 16000, subtype="PCM_16")
    template = np.zeros((5023, 3), np.float32)
    tasks = {
        "fp32": Audio2Face(pkg, backend="onnxruntime", backend_options=ort_options(n, spinning=False)),
        "int8": Audio2Face(q, backend="onnxruntime", backend_options=ort_options(n, spinning=False)),
    }
    out: dict[str, np.ndarray] = {}

    def run(k: str) -> None:
        out[k] = tasks[k].predict(audio, 0, template).vertices

    contenders: dict[str, Any] = {k: (lambda k=k: run(k)) for k in tasks}
    upstream = None
    if with_upstream:
        import torch
        from bench_audio2face import upstream_model, upstream_predict
        from common import upstream_dir

        torch.set_num_threads(n)
        model = upstream_model(
            SCRATCH / "bench_audio2face" / "faceformer_vocaset_full_random.pth", upstream_dir("FaceFormer")
        )
        upstream = f"upstream (torch, {n} thread(s))"
        contenders = {upstream: lambda: upstream_predict(model, wav), **contenders}
    stats = alternate(contenders, rounds)
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
        f"mean {err.mean():.2e} (full-size random weights). Files: {_methods(q)}.",
        upstream,
    )


def motion(shared: Path, n: int, rounds: int, quick: bool, tmp: Path, with_upstream: bool) -> list[str]:
    import bench_motion

    from facelib.io.image import read_image
    from facelib.io.video import iter_frames
    from facelib.processing.fomm import to_model_input
    from facelib.tasks.motion_transfer import MotionTransfer

    ckpt = bench_motion.SCRATCH / "vox-random.pth.tar"
    pkg = bench_motion.package()
    source = to_model_input(read_image(shared / "assets/media/images/fomm_source_02_256.png"), (256, 256))[0]
    source = source.transpose(1, 2, 0)
    driving = []
    for frame in iter_frames(shared / "assets/media/video/fomm_driving_00.mp4"):
        driving.append(frame.image.astype(np.float32) / 255.0)
        if len(driving) == (6 if quick else 10):
            break
    calib, test = driving[:4], driving[4:]
    opts = ort_options(n)
    kwargs: dict[str, Any] = dict(movement="relative", adapt_scale=True, batch_size=4, backend="onnxruntime")
    with MotionTransfer(pkg, backend_options=opts, **kwargs) as fp32:
        feeds = record_feeds(fp32, lambda: list(fp32.animate(source, calib)))
    q = _quiet_quantize(pkg, tmp / "fomm-int8", feeds)
    tasks = {
        "fp32": MotionTransfer(pkg, backend_options=opts, **kwargs),
        "int8": MotionTransfer(q, backend_options=opts, **kwargs),
    }
    out: dict[str, np.ndarray] = {}

    def run(k: str) -> None:
        out[k] = np.stack(list(tasks[k].animate(source, test)))

    contenders: dict[str, Any] = {k: (lambda k=k: run(k)) for k in tasks}
    upstream = None
    if with_upstream:
        import torch
        from common import upstream_dir

        torch.set_num_threads(n)
        config = bench_motion.write_config(bench_motion.SCRATCH / "vox-256.yaml")
        demo, _ = bench_motion.import_upstream(upstream_dir("first-order-model"))
        generator, kp_detector = demo.load_checkpoints(str(config), str(ckpt), cpu=True)
        upstream = f"upstream (torch, {n} thread(s))"

        def run_upstream() -> None:
            demo.make_animation(
                source, test, generator, kp_detector, relative=True, adapt_movement_scale=True, cpu=True
            )

        contenders = {upstream: run_upstream, **contenders}
    stats = alternate(contenders, rounds, per=len(test))
    err = np.abs(out["int8"].astype(np.float64) - out["fp32"])
    for t in tasks.values():
        t.close()
    return section(
        "MotionTransfer",
        stats,
        "ms / frame",
        1000,
        f"frame error max {err.max():.3f}, mean {err.mean():.4f} (RGB in [0, 1]; full-size random weights). "
        f"Files: {_methods(q)}.",
        upstream,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--no-upstream", action="store_true", help="leave out the upstream (torch) contenders")
    parser.add_argument("--only", nargs="+", help="run only these sections (headpose, blendshapes, audio2face, motion)")
    args = parser.parse_args()
    run = setup(args)
    if run.cores < (os.cpu_count() or 1) and not args.quick:
        print("bench_precision.py: measured on all cores only (run_all also runs it with --cores 1)")
        return 0
    shared = shared_dir()
    lines = [f"Each task's float32 package and its int8 variant on {run.cores} thread(s), alternating.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        if not args.only or "headpose" in args.only:
            lines += headpose(shared, run.cores, args.rounds, t)
        if not args.only or "blendshapes" in args.only:
            lines += landmarker(shared, run.cores, args.rounds, args.quick, t)
        if not args.only or "audio2face" in args.only:
            lines += audio2face(shared, run.cores, args.rounds, args.quick, t, not args.no_upstream)
        if not args.only or "motion" in args.only:
            lines += motion(shared, run.cores, args.rounds, args.quick, t, not args.no_upstream)
    if args.only:  # a partial run is not a result
        print("\n".join(lines))
        return 0
    write_result("precision", "Reduced precision (int8) against float32", "\n".join(lines), run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
