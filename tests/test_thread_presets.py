"""Thread defaults: counted from the affinity mask and physical cores, chosen by batch size."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from facelib.backends import onnxruntime as ort_backend
from facelib.backends.base import BATCHED_FROM
from facelib.backends.onnxruntime import OnnxRuntimeBackend, default_intra_threads, physical_cores


def _fake_sysfs(root: Path, topology: dict[int, tuple[int, int]]) -> Path:
    """cpuN/topology/{physical_package_id,core_id} files under ``root``."""
    for cpu, (package, core) in topology.items():
        folder = root / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "physical_package_id").write_text(f"{package}\n")
        (folder / "core_id").write_text(f"{core}\n")
    return root


def test_physical_cores_count_smt_siblings_once(tmp_path: Path) -> None:
    # 2 packages x 2 cores x 2 threads: CPUs 0-3 on package 0, 4-7 on package 1; siblings n and n+2
    sysfs = _fake_sysfs(tmp_path, {cpu: (cpu // 4, cpu % 2) for cpu in range(8)})
    assert physical_cores(range(8), sysfs) == 4
    assert physical_cores([0, 2], sysfs) == 1  # two threads of one core
    assert physical_cores([0, 1], sysfs) == 2
    assert physical_cores([0, 4], sysfs) == 2  # same core id, other package
    assert physical_cores([3, 9], sysfs) == 2  # CPU 9 has no topology: counted as a core


def test_physical_cores_without_topology_count_logical_cpus(tmp_path: Path) -> None:
    assert physical_cores([0, 1, 2], tmp_path) == 3
    assert physical_cores([], tmp_path) == 1


def test_default_threads_follow_the_affinity_mask(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sysfs = _fake_sysfs(tmp_path, {cpu: (0, cpu // 2) for cpu in range(8)})  # 4 cores x 2 threads
    monkeypatch.setattr(ort_backend, "_SYSFS_CPU", sysfs)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert default_intra_threads() == 0  # whole machine: onnxruntime's own choice
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert default_intra_threads() == 2  # cores 0 and 1 (CPU 1 is core 0's sibling)
    assert OnnxRuntimeBackend().for_workload("batched").options["intra_op_num_threads"] == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert default_intra_threads() == 1


_THREADS_OUTSIDE_MASK = textwrap.dedent(
    """
    import glob, os, sys
    os.sched_setaffinity(0, {0})  # before any library starts a thread (they inherit the mask)
    import numpy as np
    from facelib.backends.onnxruntime import OnnxRuntimeBackend
    session = OnnxRuntimeBackend().load(sys.argv[1])
    session.run({session.inputs[0].name: np.zeros((4, 64, 64, 3), np.float32)})
    outside = []
    for status in glob.glob("/proc/self/task/*/status"):
        fields = dict(line.split(":", 1) for line in open(status).read().splitlines() if ":" in line)
        if fields["Cpus_allowed_list"].strip() != "0":
            outside.append(fields["Cpus_allowed_list"].strip())
    print(outside)
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2, reason="needs Linux with 2 or more CPUs"
)
def test_default_session_stays_inside_taskset(tmp_path: Path) -> None:
    """onnxruntime's default pool pinned a worker to CPU 1 of a process confined to CPU 0."""
    model = Path(__file__).resolve().parents[1] / "models" / "facelib_models" / "fsanet" / "fsanet_ensemble.onnx"
    out = subprocess.run(
        [sys.executable, "-c", _THREADS_OUTSIDE_MASK, str(model)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", f"threads outside the affinity mask: {out.stdout}"


def test_batches_from_batched_from_use_the_batched_session(tmp_path: Path) -> None:
    from facelib.tasks.head_pose import HeadPose

    package = Path(__file__).resolve().parents[1] / "models" / "facelib_models" / "fsanet"
    crops = np.random.default_rng(0).uniform(0, 255, (BATCHED_FROM, 64, 64, 3)).astype(np.float32)
    assert BATCHED_FROM == 4  # measured crossover (docs/architecture.md, "Thread presets")
    with HeadPose(package, backend="onnxruntime") as pose:
        small = pose.predict_crops(crops[: BATCHED_FROM - 1])[0]
        assert list(pose._sessions) == ["ensemble"]
        batched = pose.predict_crops(crops)[0]
        assert sorted(pose._sessions) == ["ensemble", "ensemble@batched"]
        np.testing.assert_allclose(batched[: BATCHED_FROM - 1], small, atol=1e-4)
