"""Helpers shared by the benchmark scripts: where things are, fair timing, machine state, results.

The rules every comparison here follows (checked by tests/test_benchmark_scripts.py):

* contenders **alternate** (A B A B ...) for at least :data:`MIN_ROUNDS` rounds after one
  untimed warm-up call each, so that load from elsewhere hits every side alike;
* setup (model loads, session / landmarker / graph creation) happens before :func:`alternate`
  is called, on every side, and each timed callable does the same work on every side;
* each figure is a median with its spread (interquartile range and min-max) -- never a
  minimum or a best-of presented as typical;
* each script runs pinned to ``--cores N`` (process affinity, and every runtime's thread count
  set to N), so a "same cores" row puts both sides on the same cores; ``run_all.py`` runs each
  script on 1 core and on all cores;
* the 1-minute load average is recorded before and after; a section measured with more than
  :data:`QUIET_LOAD_PER_CORE` load per core at its start is marked ``LOADED -- not publishable``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("FACELIB_BENCH_RESULTS", ROOT / "benchmarks" / "results"))
SCRATCH = ROOT / "scratch"  # git-ignored: generated checkpoints and packages live here

#: Fewest timed rounds a publishable comparison may have.
MIN_ROUNDS = 5
#: Above this 1-minute load average per core at the start, a section is "LOADED".
QUIET_LOAD_PER_CORE = 0.5

sys.path.insert(0, str(ROOT / "benchmarks"))


def converter_stamp() -> str:
    """sha256 over the source of facelib's converters (facelib/models/convert): a package built
    by other converter code is rebuilt (:func:`current_package`)."""
    digest = hashlib.sha256()
    convert = ROOT / "facelib" / "models" / "convert"
    for path in sorted(convert.rglob("*.py")):
        digest.update(path.relative_to(convert).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def checkpoint_package(
    checkpoint: Path, make: Callable[[Path], object], pkg: Path, convert: Callable[[Path, Path], object]
) -> Path:
    """``pkg``: ``checkpoint`` (made once by ``make(path)``) converted by ``convert(checkpoint,
    folder)`` with this tree's converters (:func:`current_package`)."""
    if not checkpoint.is_file():
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        make(checkpoint)
    current_package(pkg, lambda out: convert(checkpoint, out))
    return pkg


def current_package(pkg: Path, build: Callable[[Path], object]) -> float:
    """Make sure ``pkg`` was converted by the converters of this tree: reuse it when its stamp
    (``<pkg>.stamp``, :func:`converter_stamp`) matches, else ``build(folder)`` aside and swap it
    in whole.  A package left from older converter code would otherwise be timed silently (its
    card may lack graphs the tasks now use).  Returns the seconds spent converting (0 if reused)."""
    from facelib.io.atomic import replace_directory

    stamp_file, stamp = pkg.with_name(pkg.name + ".stamp"), converter_stamp()
    if (pkg / "facelib.json").is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return 0.0
    start = time.perf_counter()
    work = pkg.with_name(f".{pkg.name}.building")
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    build(work)
    replace_directory(work, pkg)
    stamp_file.write_text(stamp)
    return time.perf_counter() - start


def shared_dir() -> Path:
    """The shared data folder (``$FACELIB_SHARED``, else ../shared); exits with a message when absent."""
    path = Path(os.environ.get("FACELIB_SHARED", ROOT.parent / "shared"))
    if not (path / "assets").is_dir():
        raise SystemExit(f"shared data not found at {path}; set FACELIB_SHARED")
    return path


def upstream_dir(name: str) -> Path:
    """Upstream code at its pinned commit: ``$FACELIB_SHARED/upstream/<name>`` (never cloned)."""
    path = shared_dir() / "upstream" / name
    if not path.is_dir():
        raise SystemExit(f"upstream code {name!r} not found at {path}; see $FACELIB_SHARED/upstream/README.md")
    return path


def require(module: str, version: str | None = None) -> None:
    """Exit with an install hint unless ``module`` imports (at ``version`` when given).

    Pinned versions are listed in benchmarks/requirements.txt.
    """
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"{module} is needed for this benchmark: pip install -r benchmarks/requirements.txt") from None
    got = getattr(mod, "__version__", None)
    if version and got != version:
        raise SystemExit(
            f"{module} {version} is pinned for this benchmark, found {got}: see benchmarks/requirements.txt"
        )


# --- arguments, cores ------------------------------------------------------------------------


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cores``, ``--rounds`` and ``--quick`` (every bench script takes them)."""
    parser.add_argument(
        "--cores", type=int, default=len(os.sched_getaffinity(0)), help="pin to this many cores, N threads per runtime"
    )
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help=f"alternating timed rounds (>= {MIN_ROUNDS})")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, 2 rounds, not publishable")


def setup(args: argparse.Namespace) -> Machine:
    """Pin the process to ``args.cores`` cores (before any runtime starts threads); record the load."""
    cores = sorted(os.sched_getaffinity(0))[: max(1, args.cores)]
    os.sched_setaffinity(0, cores)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(len(cores))
    if args.quick:
        args.rounds = min(args.rounds, 2)
    return Machine(cores=len(cores), quick=args.quick, rounds=args.rounds)


def ort_options(threads: int, spinning: bool = True) -> dict[str, object]:
    """ONNX Runtime backend options for ``threads`` intra-op threads (spin-waiting on or off)."""
    options: dict[str, object] = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    if not spinning:
        options["session_config"] = {"session.intra_op.allow_spinning": "0"}
    return options


# --- timing ----------------------------------------------------------------------------------


@dataclass
class Stats:
    """Wall times of one contender, seconds per call (or per unit when ``per`` was given)."""

    samples: list[float]

    def _q(self, q: float) -> float:
        import numpy as np

        return float(np.quantile(self.samples, q))

    @property
    def median(self) -> float:
        return self._q(0.5)

    @property
    def iqr(self) -> tuple[float, float]:
        return self._q(0.25), self._q(0.75)

    @property
    def span(self) -> tuple[float, float]:
        return min(self.samples), max(self.samples)

    def scaled(self, factor: float) -> Stats:
        return Stats([s * factor for s in self.samples])

    def fmt(self, scale: float = 1000.0, digits: int = 1) -> str:
        """``median [q1-q3] (min-max)`` in ``scale`` units (default ms)."""
        q1, q3 = self.iqr
        lo, hi = self.span
        f = f"{{:.{digits}f}}"
        return (
            f"{f.format(self.median * scale)} [{f.format(q1 * scale)}-{f.format(q3 * scale)}] "
            f"({f.format(lo * scale)}-{f.format(hi * scale)})"
        )


def ratio(slow: Stats, fast: Stats) -> str:
    """Speed-up of ``fast`` over ``slow`` from medians, with the range of per-round ratios."""
    per_round = sorted(s / f for s, f in zip(slow.samples, fast.samples))
    return f"{slow.median / fast.median:.2f}x ({per_round[0]:.2f}-{per_round[-1]:.2f})"


def alternate(
    contenders: Mapping[str, Callable[[], object]],
    rounds: int,
    per: float = 1.0,
    prepare: Mapping[str, Callable[[], object]] | None = None,
    warmup: Mapping[str, Callable[[], object]] | None = None,
) -> dict[str, Stats]:
    """Time each contender once per round, in turn (A B A B ...), after one untimed warm-up each.

    ``per`` divides every time (frames per call, faces per call...).  ``prepare[name]``, when
    given, runs untimed before each of that contender's calls (e.g. a fresh landmarker for a
    new clip).  ``warmup[name]``, when given, is that contender's untimed warm-up instead of a
    first call (a shorter input that allocates the same).  Every turn makes one untimed call
    before the timed one: thread pools the previous contender left spin-waiting (ONNX Runtime's,
    TensorFlow's Eigen pool, torch's OpenMP) go idle while it runs, and this contender's own are
    awake, as if it ran alone (without it, FSA-Net at batch 16 measured 1.6x slower right after
    ONNX Runtime's spinning 2-thread pool than in a process of its own; an idle pause instead let
    the virtual CPUs slow down).  Returns each contender's :class:`Stats`.  Nothing but the
    second call is timed.
    """
    prepare, warmup = prepare or {}, warmup or {}
    for name, call in contenders.items():
        if name in prepare:
            prepare[name]()
        warmup.get(name, call)()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, call in contenders.items():
            if name in prepare:
                prepare[name]()
            call()  # untimed: the handover (see above)
            if name in prepare:
                prepare[name]()
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) / per)
    return {name: Stats(values) for name, values in times.items()}


def median_time(call: Callable[[], object], repeat: int = MIN_ROUNDS, warmup: int = 1) -> Stats:
    """Wall times of ``call`` (one contender alone, e.g. a facelib-only figure); see :class:`Stats`."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return Stats(times)


def target(name: str, achieved: float, wanted: float) -> str:
    """A line saying whether a speed-up target is met and by how much."""
    verdict = "met" if achieved >= wanted else "MISSED"
    return f"- target {name} >= {wanted:g}x: **{verdict}** at {achieved:.2f}x ({(achieved / wanted - 1) * 100:+.0f}%)"


# --- machine state, results ------------------------------------------------------------------


def load1() -> float:
    return os.getloadavg()[0]


@dataclass
class Machine:
    """Cores this run is pinned to and the load average around it."""

    cores: int
    quick: bool
    rounds: int
    load_start: float = field(default_factory=load1)
    started: float = field(default_factory=time.perf_counter)

    @property
    def loaded(self) -> bool:
        total = os.cpu_count() or 1
        return self.load_start > QUIET_LOAD_PER_CORE * total or os.environ.get("FACELIB_BENCH_LOADED") == "1"

    def stamp(self) -> str:
        """The provenance paragraph of a section: when, where, cores, load before/after, verdict."""
        from run_all import machine

        now = f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
        marks = []
        if self.loaded:
            marks.append(
                f"**LOADED -- not publishable**: 1-minute load average {self.load_start:.2f} at the start "
                f"(limit {QUIET_LOAD_PER_CORE} per core)."
            )
        if self.quick:
            marks.append("**QUICK smoke run -- not publishable** (tiny sizes, few rounds).")
        elif self.rounds < MIN_ROUNDS:
            marks.append(f"**only {self.rounds} rounds -- not publishable** (at least {MIN_ROUNDS}).")
        return "\n".join(
            [
                f"Measured {now} on {machine()}; pinned to {self.cores} core(s), every runtime on "
                f"{self.cores} thread(s) unless a row says otherwise; Python {platform.python_version()}.",
                f"Load average (1 min): {self.load_start:.2f} at the start, {load1():.2f} at the end; "
                f"{time.perf_counter() - self.started:.0f} s in all. Times: median [interquartile range] "
                f"(min-max) over {self.rounds} alternating rounds after one untimed warm-up each.",
                *marks,
            ]
        )


def write_result(task: str, title: str, body: str, run: Machine) -> Path:
    """Write ``benchmarks/results/<task>-<N>core.md`` (written aside, then renamed into place)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{task}-{run.cores}core.md"
    text = f"## {title} -- {run.cores} core(s)\n\n{run.stamp()}\n\n{body.strip()}\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(text)
    return path
