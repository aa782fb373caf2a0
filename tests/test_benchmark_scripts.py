"""The benchmark suite is runnable: run_all.py finds every script, each script shows its usage.

(The benchmarks themselves are run by ``python benchmarks/run_all.py``, not in the test suite.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_run_all_runs_every_script_in_turn() -> None:
    out = _run("benchmarks/run_all.py", "--list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(s.relative_to(ROOT)) for s in SCRIPTS]
    assert SCRIPTS, "no benchmarks/bench_*.py found"
    bad = _run("benchmarks/run_all.py", "--list", "no-such-task")
    assert bad.returncode != 0 and "no benchmark named no-such-task" in bad.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_script_shows_its_usage(script: Path) -> None:
    out = _run(str(script.relative_to(ROOT)), "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:")
