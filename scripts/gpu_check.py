"""The TensorRT plugin's real CUDA path on a GPU, every task, compared with onnxruntime on the CPU.

Run through ``scripts/gpu-check.sh``.  TensorRT itself is not installable on the GPU machines
this is meant for, so the ``tensorrt`` test double stands in for it -- but with the *real*
cuda-bindings: the plugin's ``cudaMalloc``'d device buffers, its ``cudaMemcpyAsync`` copies on
its own stream, the tensor addresses it hands to ``set_tensor_address`` and the stream handle
given to ``execute_async_v3`` are all real; the double reads the inputs back from device memory,
computes with onnxruntime (CPU) and writes the outputs to the device addresses it was given.
A wrong address, size, copy direction or missing synchronisation therefore shows up as wrong
numbers or a CUDA error.  Afterwards every device buffer and stream the plugin created must be
freed (the bytes in use by the driver's count are reported too).

``--dry-run`` runs the same thing with the cuda-bindings double (simulated device memory) so
that CPU-only CI keeps the script working.  Inputs come from the shared assets
(``--shared``, default ``$FACELIB_SHARED`` or ``../shared``); a task whose files are missing is
reported as skipped, never as passed.  Exit status: 0 all checked tasks within tolerance,
1 a difference or error, 2 no usable GPU (without ``--dry-run``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "facelib-tensorrt"
DOUBLES = PLUGIN / "tests" / "doubles"
TASKS = ("headpose", "blendshapes", "motion", "audio2face")


def use_doubles(dry_run: bool, scratch: Path) -> None:
    """Make ``tensorrt`` the double; ``cuda.bindings`` the double too only for a dry run."""
    import importlib.util

    if importlib.util.find_spec("facelib") is None:  # a checkout without pip install -e .
        sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(PLUGIN))
    if dry_run:
        sys.path.insert(0, str(DOUBLES))
        return
    only_trt = scratch / "trt-double"
    only_trt.mkdir()
    (only_trt / "tensorrt").symlink_to(DOUBLES / "tensorrt", target_is_directory=True)
    sys.path.insert(0, str(only_trt))


def cuda_runtime(dry_run: bool) -> Any:
    from cuda.bindings import runtime

    simulated = hasattr(runtime, "_device_view")
    if simulated != dry_run:
        raise SystemExit(f"internal: expected {'the double' if dry_run else 'the real'} cuda-bindings, got {runtime}")
    return runtime


def device_summary(rt: Any) -> dict[str, Any]:
    err, count = rt.cudaGetDeviceCount()
    if err != rt.cudaError_t.cudaSuccess or not count:
        raise SystemExit(2)
    _, prop = rt.cudaGetDeviceProperties(0)
    name = prop.name.split(b"\0", 1)[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
    _, driver = rt.cudaDriverGetVersion()
    return {"gpu": name, "sm": f"{prop.major}.{prop.minor}", "driver": int(driver), "devices": int(count)}


class Tracker:
    """Counts the device allocations and streams the plugin makes through cuda-bindings.

    ``facelib_tensorrt.cuda.import_runtime`` is wrapped so that the plugin's runtime module is a
    proxy recording every successful ``cudaMalloc``/``cudaFree`` and
    ``cudaStreamCreate``/``cudaStreamDestroy``; what is left after a task was never released.
    """

    def __init__(self) -> None:
        from facelib_tensorrt import cuda

        self.buffers: set[int] = set()
        self.streams: set[int] = set()
        importer = cuda.import_runtime
        tracker = self

        class Proxy:
            def __init__(self, rt: Any) -> None:
                self._rt = rt

            def __getattr__(self, name: str) -> Any:
                return getattr(self._rt, name)

            def _ok(self, err: Any) -> bool:
                return bool(err == self._rt.cudaError_t.cudaSuccess)

            def cudaMalloc(self, size: int) -> Any:
                result = self._rt.cudaMalloc(size)
                if self._ok(result[0]):
                    tracker.buffers.add(int(result[1]))
                return result

            def cudaFree(self, ptr: int) -> Any:
                result = self._rt.cudaFree(ptr)
                if self._ok(result[0]):
                    tracker.buffers.discard(int(ptr))
                return result

            def cudaStreamCreate(self) -> Any:
                result = self._rt.cudaStreamCreate()
                if self._ok(result[0]):
                    tracker.streams.add(int(result[1]))
                return result

            def cudaStreamDestroy(self, stream: Any) -> Any:
                result = self._rt.cudaStreamDestroy(stream)
                if self._ok(result[0]):
                    tracker.streams.discard(int(stream))
                return result

        setattr(cuda, "import_runtime", lambda: Proxy(importer()))  # noqa: B010 - patching the plugin module


def memory_in_use(rt: Any) -> int:
    """Bytes of device memory in use (the double: live simulated allocations)."""
    if hasattr(rt, "_live_allocations"):
        return int(sum(rt._live_allocations().values()))
    _, free, total = rt.cudaMemGetInfo()
    return int(total) - int(free)


# -- task packages from the shared assets --------------------------------------------------------


def _need(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(", ".join(missing))


def headpose(shared: Path, work: Path) -> Any:
    from facelib.models.convert import fsanet, ultraface
    from facelib.tools.task_tools import prepare

    models, image = shared / "assets" / "models", shared / "assets" / "media" / "images" / "two_people.jpg"
    stems = {
        "capsule": "fsanet_capsule_3_16_2_21_5",
        "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
        "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
    }
    sources = {r: models / "fsanet" / f"{s}.onnx" for r, s in stems.items()}
    detector = models / "ultraface" / ultraface.VARIANTS["RFB-320"][0]
    _need(image, detector, *sources.values())
    pose = fsanet.build_package(sources, work / "fsanet")
    det = ultraface.build_package({"detector": detector}, work / "ultraface", variant="RFB-320")
    return prepare("headpose", pose.root, [image], detector=str(det.root))


def blendshapes(shared: Path, work: Path) -> Any:
    from facelib.models.convert.mediapipe import build_package
    from facelib.tools.task_tools import prepare

    mp, image = shared / "assets" / "models" / "mediapipe", shared / "assets" / "media" / "images" / "obama.jpg"
    sources = {
        "task": mp / "face_landmarker.task",
        "detector": mp / "face_detector.onnx",
        "landmarks": mp / "face_landmarks_detector.onnx",
        "blendshapes": mp / "face_blendshapes.onnx",
    }
    _need(image, *sources.values())
    return prepare("blendshapes", build_package(sources, work / "mediapipe").root, [image])


def motion(shared: Path, work: Path) -> Any:
    from facelib.models.convert.fomm import build_package
    from facelib.tools.task_tools import prepare

    ref, media = shared / "reference", shared / "assets" / "media"
    inputs = [media / "images" / "fomm_source_02.png", media / "video" / "fomm_driving_00.mp4"]
    _need(ref / "fomm_tiny_seed1.pth.tar", ref / "fomm_tiny_seed1.yaml", *inputs)
    pkg = build_package(
        {"checkpoint": ref / "fomm_tiny_seed1.pth.tar"}, work / "fomm", config=ref / "fomm_tiny_seed1.yaml"
    )
    return prepare("motion", pkg.root, inputs)


def audio2face(shared: Path, work: Path) -> Any:
    from facelib.models.convert.faceformer import build_package
    from facelib.tools.task_tools import prepare

    ref, media = shared / "reference", shared / "assets" / "media"
    ckpt = ref / "faceformer_vocaset_tiny_seed1.pth"
    audio, template = media / "audio" / "jfk_16k_mono.wav", media / "meshes" / "FLAME_sample.ply"
    _need(ckpt, audio, template)
    build_package({"checkpoint": ckpt}, work / "faceformer", dataset="vocaset", encoder_heads=4)
    return prepare("audio2face", work / "faceformer", [audio], template=str(template))


BUILDERS: dict[str, Callable[[Path, Path], Any]] = {
    "headpose": headpose,
    "blendshapes": blendshapes,
    "motion": motion,
    "audio2face": audio2face,
}


# -- the check --------------------------------------------------------------------------------------


def check_one(task: str, shared: Path, work: Path, rt: Any, max_frames: int, tracker: Tracker) -> dict[str, Any]:
    from facelib.backends import get_backend
    from facelib.tools.task_tools import check_task

    started = time.perf_counter()
    try:
        run = BUILDERS[task](shared, work / task)
    except FileNotFoundError as exc:
        return {"task": task, "status": "skipped", "reason": f"missing {exc}"}
    except ImportError as exc:  # torch for the checkpoint converters
        return {"task": task, "status": "skipped", "reason": f"cannot convert the model: {exc}"}
    before = memory_in_use(rt)
    backend = get_backend("tensorrt", timing_cache=str(work / "timing.cache"))
    diffs = check_task(run, backend, "onnxruntime", max_frames=max_frames)
    import gc

    gc.collect()  # sessions closed by the task; drop any stragglers before measuring
    leaked = memory_in_use(rt) - before  # informative on a GPU (the driver's own accounting)
    buffers, streams = len(tracker.buffers), len(tracker.streams)
    tolerance = float(run.adapter.default_tolerance)
    fields = [{"field": d.output, "max_abs": d.max_abs, "max_rel": d.max_rel, "shape": list(d.shape)} for d in diffs]
    worst = max((d.max_abs for d in diffs), default=float("inf"))
    exact = hasattr(rt, "_live_allocations")  # the double counts bytes exactly; a driver need not
    ok = bool(diffs) and worst <= tolerance and buffers == 0 and streams == 0 and (leaked == 0 or not exact)
    return {
        "task": task,
        "status": "ok" if ok else "FAILED",
        "tolerance": tolerance,
        "worst_max_abs": worst,
        "device_buffers_left": buffers,
        "streams_left": streams,
        "device_bytes_left": leaked,
        "fields": fields,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="simulated device memory (CPU only, for CI)")
    parser.add_argument("--shared", type=Path, help="shared assets folder (default $FACELIB_SHARED or ../shared)")
    parser.add_argument("--task", action="append", choices=TASKS, help="only these tasks (repeatable)")
    parser.add_argument("--max-frames", type=int, default=8, help="frames of video inputs (default 8)")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)
    shared = (args.shared or Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))).resolve()
    with tempfile.TemporaryDirectory(prefix="facelib-gpu-check-") as tmp:
        scratch = Path(tmp)
        os.environ.setdefault("FACELIB_HOME", str(scratch / "home"))
        use_doubles(args.dry_run, scratch)
        rt = cuda_runtime(args.dry_run)
        try:
            device = device_summary(rt)
        except SystemExit:
            print("no usable CUDA GPU (cudaGetDeviceCount); use --dry-run on a machine without one", file=sys.stderr)
            return 2
        from facelib.backends import reload_plugins

        reload_plugins()
        report: dict[str, Any] = {
            "mode": "dry-run (simulated device memory)" if args.dry_run else "real CUDA through cuda-bindings",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "device": device,
            "tasks": [],
        }
        tracker = Tracker()
        for task in args.task or TASKS:
            try:
                result = check_one(task, shared, scratch, rt, args.max_frames, tracker)
            except Exception as exc:  # noqa: BLE001 - reported, the other tasks still run
                result = {"task": task, "status": "FAILED", "error": f"{type(exc).__name__}: {exc}"}
                traceback.print_exc()
            report["tasks"].append(result)
            line = f"{task:<12} {result['status']:<8}"
            if "worst_max_abs" in result:
                line += f" max abs {result['worst_max_abs']:.3g} (tolerance {result['tolerance']:g})"
                line += f", buffers/streams left {result['device_buffers_left']}/{result['streams_left']}"
                line += f" ({result['device_bytes_left']} bytes), {result['seconds']} s"
            print(line + (f" {result.get('reason') or result.get('error') or ''}"), flush=True)
        shutil.rmtree(scratch / "trt-double", ignore_errors=True)
    print(json.dumps({k: v for k, v in report.items() if k != "tasks"}))
    if args.out:
        tmp_out = args.out.with_name(args.out.name + ".tmp")
        tmp_out.write_text(json.dumps(report, indent=1))
        tmp_out.replace(args.out)
    failed = [t for t in report["tasks"] if t["status"] == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
