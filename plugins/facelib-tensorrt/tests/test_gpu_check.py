"""``scripts/gpu-check.sh`` keeps working on CPU (``--dry-run``) and catches a broken CUDA path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def _env(models_dir: Path) -> dict[str, str]:
    return {**os.environ, "FACELIB_SHARED": str(models_dir.parents[1]), "PYTHON": sys.executable}


def test_dry_run_checks_tasks_against_cpu(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [str(SCRIPT), "--dry-run", "--task", "headpose", "--task", "blendshapes", "--out", str(out)],
        capture_output=True,
        text=True,
        env=_env(models_dir),
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["mode"].startswith("dry-run")
    tasks = {t["task"]: t for t in report["tasks"]}
    assert set(tasks) == {"headpose", "blendshapes"}
    for result in tasks.values():
        assert result["status"] == "ok" and result["device_bytes_left"] == 0
        assert result["device_buffers_left"] == 0 and result["streams_left"] == 0
        assert result["fields"] and result["worst_max_abs"] <= result["tolerance"]
    assert {"yaw", "pitch", "roll"} <= {f["field"] for f in tasks["headpose"]["fields"]}


def test_a_skipped_copy_fails_the_check(models_dir: Path) -> None:
    """Outputs never copied back from the device must show up as a failure, not a pass."""
    driver = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "import gpu_check\n"
        "original = gpu_check.use_doubles\n"
        "def broken(dry_run, scratch):\n"
        "    original(dry_run, scratch)\n"
        "    import facelib_tensorrt.cuda as cuda\n"
        "    cuda.Stream.download = lambda self, array, buffer: None\n"
        "gpu_check.use_doubles = broken\n"
        "sys.exit(gpu_check.main(['--dry-run', '--task', 'headpose']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, env=_env(models_dir), timeout=600, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "headpose     FAILED" in proc.stdout


def test_without_a_gpu_it_says_so(models_dir: Path) -> None:
    try:
        from cuda.bindings import runtime
    except ImportError:
        pytest.skip("cuda-bindings is not installed")
    if "doubles" in str(getattr(runtime, "__file__", "")) or runtime.cudaGetDeviceCount()[1]:
        pytest.skip("a GPU (or the double) is present")
    proc = subprocess.run(
        [str(SCRIPT), "--task", "headpose"], capture_output=True, text=True, env=_env(models_dir), timeout=300
    )
    assert proc.returncode == 2 and "no usable CUDA GPU" in proc.stderr


def test_a_leaked_buffer_fails_the_check(models_dir: Path) -> None:
    driver = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'scripts')!r})\n"
        "import gpu_check\n"
        "original = gpu_check.use_doubles\n"
        "def leaky(dry_run, scratch):\n"
        "    original(dry_run, scratch)\n"
        "    import facelib_tensorrt.cuda as cuda\n"
        "    cuda.DeviceBuffer.free = lambda self: None\n"
        "gpu_check.use_doubles = leaky\n"
        "sys.exit(gpu_check.main(['--dry-run', '--task', 'blendshapes']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, env=_env(models_dir), timeout=600, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "blendshapes  FAILED" in proc.stdout
