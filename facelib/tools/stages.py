"""Splitting a task's time into preprocess / inference / postprocess.

Every session a task opens is wrapped (through ``Task.session_hook``) so the time spent inside
``Session.run`` is inference.  Within one task call, the time before the first ``run`` is
preprocessing and everything else outside ``run`` (work between model calls and after the last
one) is postprocessing — the split the Sophgo port published, made for any backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from facelib.backends.base import Session, TensorSpec


class StageClock:
    """Accumulates preprocess / inference / postprocess seconds over task calls."""

    def __init__(self) -> None:
        self.totals = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
        self.calls = 0
        self._start = 0.0
        self._first_run: float | None = None
        self._inference = 0.0

    def begin(self) -> None:
        """Mark the start of one task call."""
        self._start = time.perf_counter()
        self._first_run = None
        self._inference = 0.0

    def end(self) -> None:
        """Mark the end of one task call and add its split to the totals."""
        total = time.perf_counter() - self._start
        pre = (self._first_run - self._start) if self._first_run is not None else total
        self.totals["preprocess"] += pre
        self.totals["inference"] += self._inference
        self.totals["postprocess"] += max(total - pre - self._inference, 0.0)
        self.calls += 1

    def record_run(self, started: float, seconds: float) -> None:
        if self._first_run is None:
            self._first_run = started
        self._inference += seconds

    def mean_ms(self) -> dict[str, float]:
        """Mean milliseconds per task call for each stage."""
        n = max(self.calls, 1)
        return {k: 1000 * v / n for k, v in self.totals.items()}

    def hook(self, role: str, session: Session) -> Session:
        """A ``Task.session_hook`` that times every ``run`` of ``session``."""
        return TimedSession(session, self)


class TimedSession(Session):
    """A session that reports the time of each ``run`` to a :class:`StageClock`."""

    def __init__(self, inner: Session, clock: StageClock) -> None:
        self._inner = inner
        self._clock = clock
        self.model_path = inner.model_path

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._inner.outputs

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        try:
            return self._inner.run(feeds, output_names)
        finally:
            self._clock.record_run(start, time.perf_counter() - start)

    def close(self) -> None:
        self._inner.close()


def instrument(task: object, clock: StageClock, _depth: int = 0, _seen: set[int] | None = None) -> None:
    """Time every session of ``task`` and of the tasks it holds (detectors, engines) on ``clock``.

    Sessions opened later go through ``Task.session_hook``; sessions a task opened already (some
    tasks open theirs in the constructor) are wrapped in place.
    """
    from facelib.tasks.base import Task

    seen = set() if _seen is None else _seen
    if id(task) in seen or _depth > 3:
        return
    seen.add(id(task))
    if isinstance(task, Task):
        task.session_hook = clock.hook
        sessions: dict[str, Session] = task._sessions
        for role, session in list(sessions.items()):
            if not isinstance(session, TimedSession):
                sessions[role] = TimedSession(session, clock)
    for value in getattr(task, "__dict__", {}).values():
        if type(value).__module__.startswith("facelib.tasks") and not isinstance(value, type):
            instrument(value, clock, _depth + 1, seen)
