"""FaceBoxes: facelib (ONNX Runtime, numpy post-processing) vs upstream 3DDFA_V2 FaceBoxes (PyTorch).

Run from the project root::

    python benchmarks/bench_faceboxes.py [--cores N] [--rounds 5] [--quick]

Upstream code: cleardusk/3DDFA_V2 ``FaceBoxes/`` at its pinned commit from
``$FACELIB_SHARED/upstream/3DDFA_V2`` (copied into a temporary directory, never cloned).  Its
Cython NMS is replaced by the repository's own pure-Python ``py_cpu_nms`` so nothing needs
compiling.  Both sides use the same real weights (../shared/assets/models/faceboxes/
FaceBoxesProd.pth), the same images and upstream's settings (downscale to fit 720x1080,
threshold 0.5, NMS 0.3), the same number of threads (torch and ONNX Runtime both on ``--cores``),
and time the whole call (resize, network, decoding, NMS) on the same image, alternating call by
call.  Besides speed, the detections of both are compared.  Writes
benchmarks/results/faceboxes-<N>core.md.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
from common import add_common_args, alternate, ort_options, ratio, setup, shared_dir, upstream_dir, write_result

IMAGES = ("obama.jpg", "two_people.jpg")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--calls", type=int, default=10, help="calls per contender per round")
    args = parser.parse_args()
    run = setup(args)
    calls = 1 if args.quick else args.calls

    import cv2
    import torch

    from facelib.io.image import read_image
    from facelib.models.convert.faceboxes import build_package
    from facelib.tasks.faceboxes import FaceBoxesDetector

    torch.set_num_threads(run.cores)
    shared = shared_dir()
    weights = shared / "assets" / "models" / "faceboxes" / "FaceBoxesProd.pth"
    images = IMAGES[:1] if args.quick else IMAGES
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        build_package({"weights": weights}, scratch / "pkg")
        shutil.copytree(upstream_dir("3DDFA_V2") / "FaceBoxes", scratch / "3DDFA_V2" / "FaceBoxes")
        upstream = _load_upstream(scratch / "3DDFA_V2", weights)
        with FaceBoxesDetector(scratch / "pkg", backend="onnxruntime", backend_options=ort_options(run.cores)) as ours:
            for name in images:
                rgb = read_image(shared / "assets" / "media" / "images" / name)
                bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                mine = ours.detect(rgb)
                theirs = upstream(bgr)  # type: ignore[operator]
                box_diff = score_diff = float("nan")
                if len(mine) == len(theirs) and mine:
                    a = np.stack([f.box for f in mine])
                    b = np.asarray([t[:4] for t in theirs], np.float32)
                    box_diff = float(np.abs(a - b).max())
                    score_diff = float(np.abs(np.asarray([f.score for f in mine]) - [t[4] for t in theirs]).max())

                def up(bgr: np.ndarray = bgr) -> None:
                    for _ in range(calls):
                        upstream(bgr)  # type: ignore[operator]

                def fl(rgb: np.ndarray = rgb) -> None:
                    for _ in range(calls):
                        ours.detect(rgb)

                stats = alternate({"upstream": up, "facelib": fl}, args.rounds, per=calls)
                rows.append((name, rgb.shape, len(mine), len(theirs), box_diff, score_diff, stats))

    lines = [
        f"Upstream: cleardusk/3DDFA_V2 `FaceBoxes.FaceBoxes` (PyTorch {torch.__version__}, py_cpu_nms, "
        f"{run.cores} thread(s)). facelib: `FaceBoxesDetector` on ONNX Runtime "
        f"{importlib.import_module('onnxruntime').__version__} CPU ({run.cores} intra-op thread(s)). Same weights, "
        f"images and settings; whole call (resize, network, decoding, NMS); {calls} calls per contender per round.",
        "",
        "| image | size | faces facelib / upstream | max box diff (px) | max score diff "
        "| upstream ms | facelib ms | speed-up (per-round range) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, shape, n1, n2, bd, sd, st in rows:
        lines.append(
            f"| {name} | {shape[1]}x{shape[0]} | {n1} / {n2} | {bd:.2g} | {sd:.2g} | {st['upstream'].fmt()} "
            f"| {st['facelib'].fmt()} | {ratio(st['upstream'], st['facelib'])} |"
        )
    lines += [
        "",
        "Correction: an earlier docs/benchmarks.md gave upstream as about 1.2 s per image and facelib "
        "41-53x faster; upstream takes about 42-52 ms per image on this machine, and that figure "
        "could not be reproduced.",
    ]
    write_result("faceboxes", "FaceBoxes: facelib vs upstream", "\n".join(lines), run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
