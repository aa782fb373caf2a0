"""Run every benchmark against its upstream implementation and write docs/benchmarks.md.

Usage (from the project root, with ../shared beside it or FACELIB_SHARED set)::

    python benchmarks/run_all.py            # all of benchmarks/bench_*.py
    python benchmarks/run_all.py headpose   # only bench_headpose.py
    python benchmarks/run_all.py --list     # what would run
    python benchmarks/run_all.py --quick --allow-loaded --output /tmp/b.md   # smoke run (CI)

Each ``bench_<task>.py`` runs facelib and the upstream code on the same machine in the same run,
alternating, and writes ``benchmarks/results/<task>-<N>core.md``; this script runs them one after
another (they must not compete for the CPU), each pinned to 1 core and to all cores
(``--cores``), and assembles the results.  It refuses to measure when the 1-minute load average
is above 0.5 per core (``--allow-loaded`` measures anyway and marks every section LOADED).
On a quiet 2-core machine the whole run takes about 15 minutes; ``--quick`` is a smoke run of
a few minutes whose sections say QUICK.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = Path(os.environ.get("FACELIB_BENCH_RESULTS", HERE / "results"))
OUTPUT = ROOT / "docs" / "benchmarks.md"
#: Above this 1-minute load average per core the machine is not quiet (as benchmarks/common.py).
QUIET_LOAD_PER_CORE = 0.5


def machine() -> str:
    """One line describing this machine: CPU model, cores, memory, OS, Python, onnxruntime."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "unknown memory"
    try:
        import onnxruntime

        ort = f"onnxruntime {onnxruntime.__version__}"
    except ImportError:
        ort = "no onnxruntime"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {ort}"
    )


def scripts(wanted: list[str] | None = None) -> list[Path]:
    """The benchmark scripts to run, in order: every ``bench_*.py`` or the ``wanted`` tasks."""
    found = sorted(HERE.glob("bench_*.py"))
    if not wanted:
        return found
    names = {s.stem.removeprefix("bench_"): s for s in found}
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"run_all.py: no benchmark named {', '.join(unknown)}; known: {', '.join(names)}")
    return [names[w] for w in dict.fromkeys(wanted)]


def settle(limit: float, timeout: float) -> float:
    """Wait until the 1-minute load average is at most ``limit`` or ``timeout`` seconds have passed.

    Each benchmark loads every core it is given, and the 1-minute load average decays over about
    a minute, so without this pause the next section would start on a machine that our own previous
    section still shows as loaded.  Returns the seconds waited.
    """
    start = time.monotonic()
    while os.getloadavg()[0] > limit and time.monotonic() - start < timeout:
        time.sleep(2.0)
    return time.monotonic() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run every benchmarks/bench_*.py (facelib vs upstream, same machine, same run) "
        "one after another, on 1 core and on all cores, and assemble docs/benchmarks.md."
    )
    parser.add_argument("tasks", nargs="*", help="only these benchmarks (e.g. headpose motion); default all")
    parser.add_argument("--list", action="store_true", help="print the scripts that would run, run nothing")
    parser.add_argument(
        "--assemble-only", action="store_true", help="run nothing; rebuild docs/benchmarks.md from the results"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (tiny sizes; results not publishable)")
    parser.add_argument("--cores", default=None, help="comma-separated core counts (default: 1 and all cores)")
    parser.add_argument(
        "--settle",
        type=float,
        default=180.0,
        help="seconds to wait before each benchmark for the load left by the previous one to decay to "
        "quiet (default 180); a section still above it is marked LOADED",
    )
    parser.add_argument(
        "--allow-loaded", action="store_true", help="run on a loaded machine anyway; sections are marked LOADED"
    )
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help="the assembled markdown (default docs/benchmarks.md)"
    )
    args = parser.parse_args(argv)
    selected = scripts(args.tasks)
    if args.list:
        for script in selected:
            print(script.relative_to(ROOT))
        return 0
    total = len(os.sched_getaffinity(0))
    counts = [int(c) for c in args.cores.split(",")] if args.cores else sorted({1, total})
    load = os.getloadavg()[0]
    env = dict(os.environ)
    if load > QUIET_LOAD_PER_CORE * (os.cpu_count() or 1) and not args.assemble_only:
        if not args.allow_loaded:
            print(
                f"run_all.py: 1-minute load average is {load:.2f} on {os.cpu_count()} cores (quiet means <= "
                f"{QUIET_LOAD_PER_CORE} per core); refusing to measure. Stop other work, or pass --allow-loaded "
                "to get sections marked LOADED -- not publishable.",
                file=sys.stderr,
            )
            return 3
        env["FACELIB_BENCH_LOADED"] = "1"
    failures = []
    started = time.perf_counter()
    for script in [] if args.assemble_only else selected:
        for cores in counts:
            # a quick or --allow-loaded run is not publishable anyway: no pause
            pause = 0.0 if args.quick or args.allow_loaded else args.settle
            waited = settle(QUIET_LOAD_PER_CORE * (os.cpu_count() or 1), pause)
            print(f"== {script.name} --cores {cores} (waited {waited:.0f} s for quiet)", flush=True)
            cmd = [sys.executable, str(script), "--cores", str(cores), *(["--quick"] if args.quick else [])]
            code = subprocess.call(cmd, cwd=ROOT, env=env)
            if code != 0:
                failures.append(f"{script.name} --cores {cores}")
    results = Path(env.get("FACELIB_BENCH_RESULTS", RESULTS))
    # every benchmark's latest result, not only this run's: each section carries its own date and load
    wanted = {s.stem.removeprefix("bench_") for s in scripts()}
    sections = [p.read_text().strip() for p in sorted(results.glob("*.md")) if p.stem.rsplit("-", 1)[0] in wanted]
    header = [
        "# Benchmarks",
        "",
        "Produced by `python benchmarks/run_all.py` (do not edit by hand). Every figure compares facelib",
        "with the upstream implementation on the same machine in the same run, the contenders alternating",
        "round by round; each benchmark runs pinned to 1 core and to all cores, every runtime given as many",
        "threads as cores. Times are medians [interquartile range] (min-max). Each section states when,",
        "where and under what load it was measured; a LOADED or QUICK section is not a result.",
        "",
        f"Last assembled: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"load average {load:.2f} at the start of the last run, "
        f"{time.perf_counter() - started:.0f} s of benchmarks in it.",
        "",
    ]
    output = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n")
    os.replace(tmp, output)
    print(f"wrote {output}")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
