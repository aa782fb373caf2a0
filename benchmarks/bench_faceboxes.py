"""FaceBoxes: facelib (ONNX Runtime, numpy post-processing) vs upstream 3DDFA_V2 FaceBoxes (PyTorch).

Run from the project root::

    python benchmarks/bench_faceboxes.py [--upstream DIR] [--repeats 30]

Upstream code: cleardusk/3DDFA_V2 ``FaceBoxes/`` is cloned into a temporary directory (or taken
from ``--upstream``, a checkout or a bare git mirror of that repository).  Its Cython NMS is
replaced by the repository's own pure-Python ``py_cpu_nms`` so nothing needs compiling.  Both
sides use the same real weights (../shared/assets/models/faceboxes/FaceBoxesProd.pth), the same
images and upstream's settings (downscale to fit 720x1080, threshold 0.5, NMS 0.3), on the same
machine in the same run.  Besides speed, the detections of both are compared (max box
difference in pixels, score difference).

Writes benchmarks/results/faceboxes.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
REPO = "https://github.com/cleardusk/3DDFA_V2"
DEFAULT_MIRROR = "/work/.mirror/cleardusk+3DDFA_V2/repo"
IMAGES = ("obama.jpg", "two_people.jpg")


def _fetch_upstream(source: str | None, scratch: Path) -> Path:
    target = scratch / "3DDFA_V2"
    if source and (Path(source) / "FaceBoxes").is_dir():
        shutil.copytree(Path(source) / "FaceBoxes", target / "FaceBoxes")
        return target
    target.mkdir(parents=True)
    if source:  # a bare mirror: export the FaceBoxes folder of HEAD
        archive = subprocess.run(
            ["git", f"--git-dir={source}", "archive", "HEAD", "FaceBoxes"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return target
    subprocess.run(["git", "clone", "--depth", "1", REPO, str(target)], check=True)
    return target


def _load_upstream(root: Path, weights: Path) -> object:
    sys.path.insert(0, str(root))
    (root / "FaceBoxes" / "weights").mkdir(exist_ok=True)
    shutil.copyfile(weights, root / "FaceBoxes" / "weights" / "FaceBoxesProd.pth")
    import importlib.util

    spec = importlib.util.spec_from_file_location("_py_cpu_nms", root / "FaceBoxes/utils/nms/py_cpu_nms.py")
    assert spec is not None and spec.loader is not None
    py_nms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(py_nms)
    stub = types.ModuleType("FaceBoxes.utils.nms.cpu_nms")
    stub.cpu_nms = lambda dets, thresh: py_nms.py_cpu_nms(dets, thresh)  # type: ignore[attr-defined]
    stub.cpu_soft_nms = None  # type: ignore[attr-defined]
    sys.modules["FaceBoxes.utils.nms.cpu_nms"] = stub
    module = importlib.import_module("FaceBoxes.FaceBoxes")
    return module.FaceBoxes()


def _time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--upstream",
        default=os.environ.get("FACEBOXES_UPSTREAM", DEFAULT_MIRROR if Path(DEFAULT_MIRROR).exists() else None),
        help="3DDFA_V2 checkout or bare git mirror (default: $FACEBOXES_UPSTREAM, a fetched mirror, else GitHub)",
    )
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import cv2
    import torch

    from facelib.io.image import read_image
    from facelib.models.convert.faceboxes import build_package
    from facelib.tasks.faceboxes import FaceBoxesDetector

    weights = SHARED / "assets" / "models" / "faceboxes" / "FaceBoxesProd.pth"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        build_package({"weights": weights}, scratch / "pkg")
        upstream = _load_upstream(_fetch_upstream(args.upstream, scratch), weights)
        with FaceBoxesDetector(scratch / "pkg", backend="onnxruntime") as ours:
            for name in IMAGES:
                rgb = read_image(SHARED / "assets" / "media" / "images" / name)
                bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                mine = ours.detect(rgb)
                theirs = upstream(bgr)  # type: ignore[operator]
                box_diff = score_diff = float("nan")
                if len(mine) == len(theirs) and mine:
                    a = np.stack([f.box for f in mine])
                    b = np.asarray([t[:4] for t in theirs], np.float32)
                    box_diff = float(np.abs(a - b).max())
                    score_diff = float(np.abs(np.asarray([f.score for f in mine]) - [t[4] for t in theirs]).max())
                t_ours = _time(lambda rgb=rgb: ours.detect(rgb), args.repeats)
                t_up = _time(lambda bgr=bgr: upstream(bgr), args.repeats)  # type: ignore[misc,operator]
                rows.append((name, rgb.shape, len(mine), len(theirs), box_diff, score_diff, t_ours, t_up))

    lines = [
        "# FaceBoxes: facelib vs upstream",
        "",
        f"Generated by `benchmarks/bench_faceboxes.py` on {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"onnxruntime {importlib.import_module('onnxruntime').__version__}.",
        "",
        "Upstream: cleardusk/3DDFA_V2 `FaceBoxes.FaceBoxes` (PyTorch, py_cpu_nms). facelib: "
        "`FaceBoxesDetector` on ONNX Runtime CPU. Same weights, images and settings; median of "
        f"{args.repeats} runs after one warm-up, whole call (resize, network, decoding, NMS).",
        "",
        "| image | size | faces facelib / upstream | max box diff (px) | max score diff "
        "| facelib ms | upstream ms | speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, shape, n1, n2, bd, sd, t1, t2 in rows:
        lines.append(
            f"| {name} | {shape[1]}x{shape[0]} | {n1} / {n2} | {bd:.2g} | {sd:.2g} | {t1:.1f} | {t2:.1f} "
            f"| {t2 / t1:.2f}x |"
        )
    out = ROOT / "benchmarks" / "results" / "faceboxes.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
