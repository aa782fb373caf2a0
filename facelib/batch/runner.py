"""Running items inside one worker: one task instance, each item staged, published and committed.

Both engines use :class:`ItemRunner`: the local engine in each worker process, the Ray engine
in each actor.  The runner turns any failure of an item (a corrupt file, a model error, any
exception) into an error row, so one bad item never stops a job; an item whose worker died
while running it more than ``max_attempts`` times gets an error row instead of a new try.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import traceback
from typing import Any

import attrs

from facelib.batch.adapters import get_adapter
from facelib.batch.items import Item
from facelib.batch.store import JobStore


@attrs.frozen
class JobConfig:
    """Everything a worker needs (picklable): the task, its merged options, OUTDIR, retry limit."""

    task: str
    options: dict[str, Any]
    outdir: str
    run_id: str
    max_attempts: int = 2


class ItemRunner:
    """Runs items of one job with one task instance (opened by :meth:`open`, once)."""

    def __init__(self, config: JobConfig) -> None:
        self.config = config
        self.adapter = get_adapter(config.task)
        self.store = JobStore(config.outdir)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._task: Any = None

    def open(self) -> None:
        """Open the task instance (errors here concern the whole job: a bad model, a bad backend)."""
        if self._task is None:
            self._task = self.adapter.open(self.config.options)

    def close(self) -> None:
        if self._task is not None:
            self.adapter.close(self._task)
            self._task = None

    def run(self, item: Item) -> dict[str, Any]:
        """Run one item, publish its outputs, commit and return its row."""
        self.open()
        done = self.store.read_row(item.name)
        if done is not None and done.get("run_id") == self.config.run_id:
            return done  # finished by this run already (a retried Ray task, a requeued item)
        attempt = self.store.begin(item.name)
        started = time.time()
        t0 = time.perf_counter()
        row: dict[str, Any] = {
            "name": item.name,
            "input": item.input,
            "params": item.params,
            "status": "ok",
            "error_type": None,
            "error": None,
            "outputs": [],
            "started_at": started,
            "seconds": 0.0,
            "worker": self.worker,
            "attempts": attempt,
            "run_id": self.config.run_id,
            "summary": {},
        }
        if attempt > self.config.max_attempts:
            row.update(
                status="error",
                error_type="WorkerDied",
                error=f"a worker died while processing this item {attempt - 1} times; not retried again",
            )
        else:
            staging = self.store.staging(item.name)
            try:
                output = self.adapter.process(self._task, item, staging, self.config.options)
                row["outputs"] = self.store.publish(staging, output.files)
                row["summary"] = _plain(output.summary)
            except Exception as exc:  # noqa: BLE001 - any failure of one item becomes its error row
                row.update(status="error", error_type=type(exc).__name__, error=_message(exc))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        row["seconds"] = time.perf_counter() - t0
        self.store.commit(row)
        return row


def _message(exc: BaseException) -> str:
    from facelib.errors import FacelibError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, FacelibError):
        return text
    # not a deliberate facelib error: keep where it happened, for the bug report
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    return text + "".join(f" (at {f.filename}:{f.lineno})" for f in where)


def _plain(value: Any) -> Any:
    """Summary values as JSON values (numpy scalars and arrays become numbers and lists)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
