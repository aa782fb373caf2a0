"""Run every benchmark against its upstream implementation and write docs/benchmarks.md.

Usage (from the project root, with ../shared beside it or FACELIB_SHARED set)::

    python benchmarks/run_all.py            # all of benchmarks/bench_*.py
    python benchmarks/run_all.py headpose   # only bench_headpose.py
    python benchmarks/run_all.py --list     # what would run

Each ``bench_<task>.py`` runs facelib and the upstream code on the same machine in the same run
and writes ``benchmarks/results/<task>.md``; this script runs them one after another (they must
not compete for the CPU) and assembles the results with the date and the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
OUTPUT = ROOT / "docs" / "benchmarks.md"


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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Run every benchmarks/bench_*.py (facelib vs upstream, same machine, same run) "
        "one after another and assemble docs/benchmarks.md from benchmarks/results/*.md."
    )
    parser.add_argument("tasks", nargs="*", help="only these benchmarks (e.g. headpose motion); default all")
    parser.add_argument("--list", action="store_true", help="print the scripts that would run, run nothing")
    parser.add_argument(
        "--assemble-only", action="store_true", help="run nothing; rebuild docs/benchmarks.md from the results"
    )
    args = parser.parse_args(argv)
    selected = scripts(args.tasks)
    if args.list:
        for script in selected:
            print(script.relative_to(ROOT))
        return 0
    failures = []
    for script in [] if args.assemble_only else selected:
        print(f"== {script.name}", flush=True)
        code = subprocess.call([sys.executable, str(script)], cwd=ROOT)
        if code != 0:
            failures.append(script.name)
    sections = [p.read_text().strip() for p in sorted(RESULTS.glob("*.md"))]
    header = [
        "# Benchmarks",
        "",
        "Produced by `python benchmarks/run_all.py` (do not edit by hand). Every figure compares facelib",
        "with the upstream implementation on the same machine in the same run; ratios matter more than",
        "absolute times. Each section states when and where it was measured.",
        "",
        f"Last assembled: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "",
    ]
    OUTPUT.write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {OUTPUT}")
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
