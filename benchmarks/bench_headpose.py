"""HeadPose (FSA-Net) speed: facelib vs the upstream TensorFlow frozen graphs, same machine, same run.

Run from the project root::

    python benchmarks/bench_headpose.py [--cores N] [--rounds 5] [--quick]

What is timed (contenders alternate round by round; each round makes ``--calls`` calls per
contender; figures are per face, median [IQR] (min-max) over rounds):

* network: the 3-variant ensemble on prepared 64x64 BGR crops at batch 1 and 16.
  Upstream = the three released ``.pb`` graphs (from ../shared), one TF session each, averaged
  (the demos' Keras ``Average``).  facelib = ``HeadPose.predict_crops`` (merged ensemble ONNX).
  Same cores: both pinned to ``--cores`` and both given that many intra-op threads (TF
  inter-op 1).  Each side's defaults (TF's own thread pools; facelib's workload preset) are
  timed in the same alternation: that is each side's "best configuration" by a rule fixed in
  advance -- what a user gets without tuning.
* pipeline, one face from an image + box: the demo's steps vs ``HeadPose.predict(image, boxes)``.

Needs the pinned tensorflow of benchmarks/requirements.txt and ../shared.  Writes
benchmarks/results/headpose-<N>core.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import add_common_args, alternate, ort_options, ratio, require, setup, shared_dir, target, write_result

from facelib.models.convert.fsanet import INPUT_NAME, OUTPUT_NAME, VARIANTS, build_package
from facelib.tasks.head_pose import HeadPose

TENSORFLOW = "2.21.0"


class UpstreamTF:
    """The three frozen graphs, each in its own TF session, averaged (the demos' ``Average`` of three models).

    (The graphs cannot share one TF graph: their ``while`` loop frames have the same names.)
    """

    def __init__(self, pb_files: dict[str, Path], threads: int | None) -> None:
        import tensorflow as tf

        config = tf.compat.v1.ConfigProto()
        if threads:  # None: TensorFlow's defaults (its own thread pools, as the demos run)
            config.intra_op_parallelism_threads = threads
            config.inter_op_parallelism_threads = 1

        self.runs = []
        for path in pb_files.values():
            graph = tf.Graph()
            with graph.as_default():
                gd = tf.compat.v1.GraphDef()
                gd.ParseFromString(path.read_bytes())
                tf.import_graph_def(gd, name="")
            session = tf.compat.v1.Session(graph=graph, config=config)
            self.runs.append((session, graph.get_tensor_by_name(INPUT_NAME), graph.get_tensor_by_name(OUTPUT_NAME)))

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        total = np.zeros((len(crops), 3), np.float64)
        for session, x, y in self.runs:
            total += session.run(y, {x: crops})
        return (total / len(self.runs)).astype(np.float32)


def upstream_demo_crop(image_bgr: np.ndarray, box: np.ndarray, ad: float = 0.6) -> np.ndarray:
    """The steps of demo_FSANET_ssd.py for one face (re-written here, not copied)."""
    import cv2

    h0, w0 = image_bgr.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = x2 - x1, y2 - y1
    xw1, yw1 = max(int(x1 - ad * w), 0), max(int(y1 - ad * h), 0)
    xw2, yw2 = min(int(x2 + ad * w), w0 - 1), min(int(y2 + ad * h), h0 - 1)
    face = cv2.resize(image_bgr[yw1 : yw2 + 1, xw1 : xw2 + 1, :], (64, 64)).astype(np.float64)
    face = cv2.normalize(face, None, alpha=0, beta=255, norm_type=cv2.NORM_MINMAX)
    return face[None].astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--calls", type=int, default=40, help="calls per contender per round at batch 1")
    args = parser.parse_args()
    run = setup(args)
    require("tensorflow", TENSORFLOW)
    import cv2
    import onnxruntime as ort

    n = run.cores
    shared = shared_dir()
    fsanet_dir = shared / "assets" / "models" / "fsanet"
    rng = np.random.default_rng(0)
    ref = np.load(shared / "reference" / "fsanet_aflw_shared_ref.npz")
    base = ref["crops_bgr_u8"].astype(np.float32)
    crops16 = np.concatenate([base, base, base[:4]])[:16] + rng.uniform(0, 1, (16, 64, 64, 3)).astype(np.float32)
    image_bgr = cv2.imread(str(shared / "assets" / "media" / "aflw2000" / str(ref["names"][0])))
    image_rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    box = ref["landmark_box_xyxy"][0].astype(np.float64)
    pbs = {role: fsanet_dir / f"{stem}.pb" for role, stem in VARIANTS.items()}
    calls = 2 if args.quick else args.calls
    sections: list[str] = []
    same: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        package = build_package({r: fsanet_dir / f"{s}.onnx" for r, s in VARIANTS.items()}, Path(tmp) / "fsanet")
        up_n, up_default = UpstreamTF(pbs, n), UpstreamTF(pbs, None)
        ours_n = HeadPose(package.root, backend="onnxruntime", backend_options=ort_options(n))
        ours_default = HeadPose(package.root, backend="onnxruntime")
        parity = float(np.abs(up_n(base) - ours_n.predict_crops(base)[0]).max())
        for batch in (1, 16):
            crops = crops16[:batch].copy()
            k = calls if batch == 1 else max(calls // 8, 1)
            names = {
                "up_n": f"upstream TF, {n} thread(s)",
                "ours_n": f"facelib, {n} thread(s)",
                "up_default": "upstream TF defaults",
                "ours_default": "facelib defaults",
            }
            fns = {
                "up_n": lambda c=crops, k=k: [up_n(c) for _ in range(k)],
                "ours_n": lambda c=crops, k=k: [ours_n.predict_crops(c) for _ in range(k)],
                "up_default": lambda c=crops, k=k: [up_default(c) for _ in range(k)],
                "ours_default": lambda c=crops, k=k: [ours_default.predict_crops(c) for _ in range(k)],
            }
            st = alternate(fns, args.rounds, per=k * batch)
            same[batch] = st["up_n"].median / st["ours_n"].median
            sections += [
                f"### Network, batch {batch} ({k} calls per contender per round)",
                "",
                "| contender | ms / face | faces / s |",
                "|---|---|---|",
                *(f"| {names[key]} | {st[key].fmt(digits=3)} | {1 / st[key].median:.0f} |" for key in fns),
                "",
                f"- same cores, {n} thread(s) each: facelib {ratio(st['up_n'], st['ours_n'])} upstream",
                f"- each side's defaults: facelib {ratio(st['up_default'], st['ours_default'])} upstream",
                "",
            ]

        def upstream_pipeline() -> None:
            for _ in range(calls):
                up_n(upstream_demo_crop(image_bgr, box))

        def facelib_pipeline() -> None:
            for _ in range(calls):
                ours_n.predict(image_rgb, boxes=box[None])

        pipe = alternate({"upstream": upstream_pipeline, "facelib": facelib_pipeline}, args.rounds, per=calls)
        ours_n.close()
        ours_default.close()
    body = "\n".join(
        [
            f"Upstream: the three released TF frozen graphs (tensorflow {TENSORFLOW}), one session each, averaged. "
            f"facelib: `HeadPose` on the merged ensemble ONNX (onnxruntime {ort.__version__}). "
            f"Max |facelib - upstream| on the reference crops: {parity:.2e} degrees.",
            "",
            *sections,
            f"### Pipeline, one face from an image + box (crop, min-max stretch, ensemble; {n} thread(s) each)",
            "",
            "| upstream demo steps ms/face | facelib `predict(image, boxes=...)` ms/face | speed-up |",
            "|---|---|---|",
            f"| {pipe['upstream'].fmt(digits=2)} | {pipe['facelib'].fmt(digits=2)} "
            f"| {ratio(pipe['upstream'], pipe['facelib'])} |",
            "",
            target("HeadPose batch 1 (same cores)", same[1], 4.0),
            target("HeadPose batch 16 (same cores)", same[16], 3.0),
        ]
    )
    write_result("headpose", "HeadPose (FSA-Net): facelib vs upstream TensorFlow", body, run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
