"""The benchmark suite is runnable and honest by construction.

* run_all.py finds every script, each script shows its usage;
* the timing helpers alternate contenders, keep setup out of the timed region and report
  medians with spread (not minima);
* run_all.py refuses a loaded machine unless told, and marks what it measured there;
* the ``--quick`` smoke path runs end to end (FaceBoxes and HeadPose: real weights from
  ../shared and the upstream code in ../shared/upstream; skipped where those are absent).

(The real benchmarks are run by ``python benchmarks/run_all.py`` on a quiet machine.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
SHARED = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402


def _run(*args: str, env: dict[str, str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


def test_run_all_runs_every_script_in_turn() -> None:
    out = _run("benchmarks/run_all.py", "--list")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(s.relative_to(ROOT)) for s in SCRIPTS]
    assert SCRIPTS, "no benchmarks/bench_*.py found"
    bad = _run("benchmarks/run_all.py", "--list", "no-such-task")
    assert bad.returncode != 0 and "no benchmark named no-such-task" in bad.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_script_shows_its_usage_and_the_common_options(script: Path) -> None:
    out = _run(str(script.relative_to(ROOT)), "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:")
    for option in ("--cores", "--rounds", "--quick"):
        assert option in out.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_no_machine_paths_no_cloning_no_run_time_installs(script: Path) -> None:
    text = script.read_text()
    for bad in ("/work/", "git clone", 'pip", "install', "best_of"):
        assert bad not in text, f"{script.name} contains {bad!r}"


def test_alternate_interleaves_contenders_and_keeps_prepare_untimed() -> None:
    order: list[str] = []

    def prepare() -> None:
        order.append("prepare")
        time.sleep(0.05)  # would dominate the figure if it were timed

    stats = common.alternate(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=5, prepare={"b": prepare}
    )
    calls = [c for c in order if c != "prepare"]
    # one warm-up each, then A B A B ..., each turn an untimed handover call and the timed one
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 5
    assert order.count("prepare") == 11  # before the warm-up, the handover call and the timed call
    assert len(stats["a"].samples) == len(stats["b"].samples) == 5
    assert stats["b"].median < 0.01


def test_stats_report_median_and_spread_not_the_minimum() -> None:
    st = common.Stats([0.001, 0.002, 0.003, 0.004, 0.100])
    assert st.median == pytest.approx(0.003)
    assert st.iqr == (pytest.approx(0.002), pytest.approx(0.004))
    assert st.span == (0.001, 0.100)
    assert st.fmt() == "3.0 [2.0-4.0] (1.0-100.0)"
    assert common.median_time(lambda: None, repeat=5).samples.__len__() == 5
    assert not hasattr(common, "best_of")


def test_ratio_and_target_lines() -> None:
    slow, fast = common.Stats([4.0, 4.0, 5.0]), common.Stats([1.0, 2.0, 1.0])
    assert common.ratio(slow, fast) == "4.00x (2.00-5.00)"
    assert "**met** at 5.50x (+10%)" in common.target("x", 5.5, 5.0)
    assert "**MISSED** at 4.00x (-20%)" in common.target("x", 4.0, 5.0)


def test_defaults_verdict_separates_a_loss_from_noise() -> None:
    import bench_defaults

    preset, other = common.Stats([1.0, 1.0, 1.2]), common.Stats([1.1, 1.1, 0.9])
    assert bench_defaults.verdict({"p": preset, "q": other}, "p") == "preset fastest, 1.10x the next"
    slower = common.Stats([1.2, 1.0, 1.3])
    noisy = bench_defaults.verdict({"p": slower, "q": other}, "p")
    assert noisy.startswith("within noise: `q`") and "faster in 1 of 3 rounds" in noisy
    lost = bench_defaults.verdict({"p": common.Stats([2.0, 2.0, 2.0]), "q": other}, "p")
    assert lost.startswith("**preset not fastest**: `q`")


def test_run_all_refuses_a_loaded_machine_and_marks_what_it_ran_there(tmp_path: Path) -> None:
    env = {"FACELIB_BENCH_RESULTS": str(tmp_path / "results")}
    # a threshold no machine is below: the machine counts as loaded
    code = (
        "import sys, runpy; sys.argv = ['run_all.py', *sys.argv[1:]]; "
        "import importlib.util as u; s = u.spec_from_file_location('run_all', 'benchmarks/run_all.py'); "
        "m = u.module_from_spec(s); sys.modules['run_all'] = m; s.loader.exec_module(m); "
        "m.QUIET_LOAD_PER_CORE = -1.0; raise SystemExit(m.main(sys.argv[1:]))"
    )
    refused = _run("-c", code, "faceboxes", "--output", str(tmp_path / "b.md"), env=env)
    assert refused.returncode == 3 and "refusing to measure" in refused.stderr
    assert not (tmp_path / "b.md").exists()


def _have(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not (SHARED / "upstream" / "3DDFA_V2").is_dir() or not _have("torch"), reason="needs ../shared")
def test_quick_smoke_run_writes_a_marked_section(tmp_path: Path) -> None:
    env = {"FACELIB_BENCH_RESULTS": str(tmp_path / "results"), "FACELIB_BENCH_LOADED": "1"}
    out = _run(
        "benchmarks/run_all.py",
        "faceboxes",
        "--quick",
        "--allow-loaded",
        "--cores",
        "1",
        "--output",
        str(tmp_path / "b.md"),
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    text = (tmp_path / "b.md").read_text()
    assert "## FaceBoxes: facelib vs upstream -- 1 core(s)" in text
    assert "QUICK smoke run -- not publishable" in text
    assert "LOADED -- not publishable" in text
    assert "Load average (1 min):" in text and "alternating rounds" in text
    row = next(line for line in text.splitlines() if line.startswith("| obama.jpg"))
    assert "| 1 / 1 |" in row  # both found the one face
    assert row.count("[") == 2 and row.rstrip(" |").endswith(")")  # medians with spread, ratio with range
