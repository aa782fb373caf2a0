"""Batch jobs: a plain Python loop vs ``facelib batch`` on the local engine and on Ray, same run.

Run from the project root (needs ../shared or FACELIB_SHARED, and ``facelib[ray]``)::

    python benchmarks/bench_batch.py            # writes benchmarks/results/batch.md

Two datasets of real media:

* head pose over a folder of photos (the AFLW2000 samples and portraits of ../shared, copied
  under new names up to ``--images``);
* blendshapes over a set of short clips (cut from the two videos of ../shared, ``--clips`` of
  ``--frames`` frames each).

Contenders, each timed from the call to the last result (wall clock):

* plain loop: one task instance, items one after another, results kept in memory; no outputs
  written, no results table (the least a user's own loop would do);
* ``local`` engine with 1 worker and with ``--workers`` workers (spawned processes; each loads
  the model, so startup is part of the time);
* ``ray`` engine with ``--workers`` actors on a local Ray cluster started beforehand (its own
  start is reported apart).

Per-item overhead of an engine = the median interval between the starts of consecutive items
in a one-worker job (from the results table) - the plain loop's median time per item: what the
engine adds to every item (staging, writing outputs, the row commit, queues or Ray scheduling)
once its workers are up; startup is what remains of the wall time.  The machine's load average is recorded: on a
shared machine the absolute figures move, the ratios less.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import shared_dir, write_result  # noqa: E402


def _images(media: Path, folder: Path, count: int) -> list[Path]:
    sources = [*sorted((media / "aflw2000").glob("*.jpg")), media / "images" / "obama.jpg"]
    folder.mkdir(parents=True)
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        out.append(folder / f"img{i:03d}{src.suffix}")
        shutil.copy(src, out[-1])
    return out


def _clips(media: Path, folder: Path, count: int, frames: int) -> list[Path]:
    from facelib.io.video import VideoReader, VideoWriter

    folder.mkdir(parents=True)
    videos = [media / "video" / "talking_face_01.mp4", media / "video" / "fomm_driving_00.mp4"]
    out = []
    for i in range(count):
        with VideoReader(videos[i % 2]) as reader:
            start = (i // 2) * frames
            writer = VideoWriter(folder / f"clip{i:02d}.mp4", reader.fps)
            for j, frame in enumerate(reader):
                if j >= start + frames:
                    break
                if j >= start:
                    writer.write(frame.image)
            writer.close()
        out.append(folder / f"clip{i:02d}.mp4")
    return out


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _engine_run(
    task: str, items: list[Path], out: Path, engine: str, workers: int, options: dict[str, str]
) -> tuple[float, float, float]:
    """Wall seconds of one batch job, its items / s from the first item's start to the last item's
    end (workers up), and the median interval between consecutive item starts."""
    from facelib import batch

    start = time.perf_counter()
    result = batch.run(task, items, out, engine=engine, workers=workers, **options)
    seconds = time.perf_counter() - start
    rows = result.table().to_pylist()
    starts = sorted(r["started_at"].timestamp() for r in rows)
    running = max(r["started_at"].timestamp() + r["seconds"] for r in rows) - starts[0]
    return seconds, len(rows) / running, float(statistics.median(b - a for a, b in itertools.pairwise(starts)))


def _loadavg() -> str:
    try:
        return " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48, help="photos in the head pose set (default 48)")
    parser.add_argument("--clips", type=int, default=6, help="clips in the blendshapes set (default 6)")
    parser.add_argument("--frames", type=int, default=30, help="frames per clip (default 30)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="workers / actors (default: cores)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    args = parser.parse_args()

    from facelib.models.convert.fsanet import VARIANTS
    from facelib.models.convert.fsanet import build_package as build_fsanet
    from facelib.models.convert.mediapipe import build_package as build_mediapipe
    from facelib.models.convert.ultraface import build_package as build_ultraface
    from facelib.tasks.blendshapes import BlendshapeCapture
    from facelib.tasks.head_pose import HeadPose

    shared = shared_dir()
    models, media = shared / "assets" / "models", shared / "assets" / "media"
    load_before = _loadavg()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fsanet = build_fsanet(
            {role: models / "fsanet" / f"{stem}.onnx" for role, stem in VARIANTS.items()}, tmp / "fsanet"
        ).root
        ultra = build_ultraface({"detector": models / "ultraface" / "version-RFB-320.onnx"}, tmp / "uf").root
        mp = models / "mediapipe"
        landmarker = build_mediapipe(
            {
                "task": mp / "face_landmarker.task",
                "detector": mp / "face_detector.onnx",
                "landmarks": mp / "face_landmarks_detector.onnx",
                "blendshapes": mp / "face_blendshapes.onnx",
            },
            tmp / "mp",
        ).root
        images = _images(media, tmp / "images", args.images)
        clips = _clips(media, tmp / "clips", args.clips, args.frames)

        jobs = {
            "head pose, photos": (
                "headpose",
                images,
                {"model": str(fsanet), "detector": str(ultra)},
                lambda times: _loop_headpose(HeadPose, fsanet, ultra, images, times),
            ),
            "blendshapes, clips": (
                "blendshapes",
                clips,
                {"model": str(landmarker)},
                lambda times: _loop_blendshapes(BlendshapeCapture, landmarker, clips, times),
            ),
        }
        ray_start = None
        if not args.no_ray:
            import ray

            t0 = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - t0

        rows = []
        overheads = []
        outdirs = (tmp / f"out{i}" for i in range(1000))
        for title, (task, items, options, loop) in jobs.items():
            n = len(items)
            per_item: list[float] = []
            plain = _timed(lambda loop=loop, per_item=per_item: loop(per_item))

            rows.append((title, "plain loop", 1, plain, n, n / plain))
            plain_item = float(statistics.median(per_item))
            for engine in ["local"] + ([] if ray_start is None else ["ray"]):
                one, one_rate, interval = _engine_run(task, items, next(outdirs), engine, 1, options)
                many, many_rate, _ = _engine_run(task, items, next(outdirs), engine, args.workers, options)
                rows.append((title, engine, 1, one, n, one_rate))
                rows.append((title, engine, args.workers, many, n, many_rate))
                overheads.append((title, engine, plain_item, interval, interval - plain_item))
        if ray_start is not None:
            ray.shutdown()
    load_after = _loadavg()

    lines = [
        "| dataset | contender | workers | seconds | items / s | vs plain loop | items / s, workers up |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    plain_rate = {}
    for title, who, workers, seconds, n, steady in rows:
        rate = n / seconds
        if who == "plain loop":
            plain_rate[title] = rate
        ratio = rate / plain_rate[title]
        lines.append(
            f"| {title} ({n}) | {who} | {workers} | {seconds:.2f} | {rate:.2f} | {ratio:.2f}x | {steady:.2f} |"
        )
    lines += [
        "",
        "| dataset | engine | plain loop, ms / item | engine, ms / item (1 worker) | overhead, ms / item |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {t} | {e} | {p * 1e3:.0f} | {i * 1e3:.0f} | {o * 1e3:.0f} |" for t, e, p, i, o in overheads]
    notes = [
        "",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_after}.  This run shared the machine "
        "with other work (its load average says how much); the figures move with it.",
        f"Photos: {args.images}; clips: {args.clips} x {args.frames} frames.  Ray: a local cluster "
        + (f"started in {ray_start:.1f} s before the timings (not counted)." if ray_start is not None else "not run."),
        "The plain loop writes nothing; the engines write every item's outputs, its row and the Parquet table, "
        "and their times include starting the workers and loading the model in each.  'Workers up': items / s "
        "from the first item's start to the last item's end (startup left out).",
    ]
    body = "\n".join(lines + notes)
    path = write_result("batch", "Batch jobs: plain loop vs local engine vs Ray", body)
    print(body)
    print(f"wrote {path}")


def _loop_headpose(cls: type, model: Path, detector: Path, images: list[Path], times: list[float]) -> list[object]:
    """The plain loop: one HeadPose, every image in turn (``times``: seconds per item)."""
    out = []
    with cls(model, detector=detector) as pose:
        for path in images:
            t0 = time.perf_counter()
            out.append(pose.predict(path))
            times.append(time.perf_counter() - t0)
    return out


def _loop_blendshapes(cls: type, model: Path, clips: list[Path], times: list[float]) -> list[object]:
    """The plain loop: one BlendshapeCapture in video mode, every clip in turn."""
    out = []
    with cls(model, mode="video") as capture:
        for path in clips:
            t0 = time.perf_counter()
            out.append(list(capture.process_video(path)))
            times.append(time.perf_counter() - t0)
    return out


if __name__ == "__main__":
    main()
