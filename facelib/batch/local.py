"""The ``local`` engine: worker processes on this machine, one task instance each.

The parent hands each worker at most ``prefetch`` items at a time through the worker's own
queue (so it always knows which items a worker holds), and workers report back on one shared
queue.  When a worker process dies (killed, out of memory, a crash in native code), the items
it held go back to the front of the queue and a fresh worker takes its place; the
:class:`~facelib.batch.runner.ItemRunner` counts starts, so an item that keeps killing its
worker ends as an error row instead of looping forever.  Workers are started with ``spawn``
(no state inherited from the parent, which is safe with ONNX Runtime's threads).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from facelib.batch.items import Item
from facelib.batch.runner import ItemRunner, JobConfig
from facelib.errors import FacelibError

#: Items handed to one worker ahead of time (the one it runs and the next).
PREFETCH = 2
#: Seconds between checks that the workers are alive.
_POLL_S = 0.5


class BatchError(FacelibError):
    """The job as a whole cannot run (the task does not open in a worker, workers die at start)."""


def _worker_main(config: JobConfig, slot: int, inbox: Any, outbox: Any) -> None:
    """A worker process: open the task, then run items from ``inbox`` until ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops workers
    runner = ItemRunner(config)
    try:
        runner.open()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the job
        outbox.put(("init_error", slot, f"{type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", slot, None))
    try:
        while True:
            text = inbox.get()
            if text is None:
                break
            row = runner.run(Item.from_json(text))
            outbox.put(("done", slot, (row["name"], row["status"])))
    finally:
        runner.close()


class _Slot:
    def __init__(self, ctx: Any, config: JobConfig, slot: int, outbox: Any) -> None:
        self.inbox = ctx.Queue()
        self.held: deque[Item] = deque()
        self.ready = False
        self.process = ctx.Process(
            target=_worker_main, args=(config, slot, self.inbox, outbox), name=f"facelib-batch-{slot}", daemon=True
        )
        self.process.start()

    def stop(self, timeout: float) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.inbox.put(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        self.inbox.close()
        self.inbox.cancel_join_thread()


def run_local(config: JobConfig, items: Sequence[Item], workers: int) -> Iterator[tuple[str, str]]:
    """Run ``items`` on ``workers`` processes; yields ``(name, status)`` as each item finishes.

    Raises :class:`BatchError` when the task cannot be opened in a worker or workers keep
    dying before they are ready.  Closing the generator (Ctrl-C) stops the workers; items
    they were running are redone by the next run of the job.
    """
    ctx = multiprocessing.get_context("spawn")
    outbox = ctx.Queue()
    pending: deque[Item] = deque(items)
    count = max(1, min(int(workers), len(items)))
    slots = {i: _Slot(ctx, config, i, outbox) for i in range(count)}
    by_name = {item.name: item for item in items}
    remaining = len(items)
    finished: set[str] = set()
    early_deaths = 0
    clean = False
    try:
        while remaining:
            for slot in slots.values():
                while pending and len(slot.held) < PREFETCH:
                    item = pending.popleft()
                    slot.held.append(item)
                    slot.inbox.put(item.to_json())
            try:
                kind, index, payload = outbox.get(timeout=_POLL_S)
            except queue.Empty:
                kind = ""
            if kind == "init_error":
                raise BatchError(f"the {config.task} task could not be opened in a worker: {payload}")
            if kind == "ready":
                slots[index].ready = True
            elif kind == "done":
                name, status = payload
                with contextlib.suppress(ValueError):
                    slots[index].held.remove(by_name[name])
                if name not in finished:  # a requeued item whose first report came late
                    finished.add(name)
                    remaining -= 1
                    yield name, status
            for number, slot in list(slots.items()):
                if slot.process.is_alive():
                    continue
                # a dead worker: its items go back to the front, a fresh worker takes the slot
                code = slot.process.exitcode
                if not slot.ready:
                    early_deaths += 1
                    if early_deaths > 2 * count:
                        raise BatchError(
                            f"batch workers keep dying before they start (exit code {code}); a script that "
                            "calls facelib.batch.run must do so under `if __name__ == '__main__':` (workers are "
                            "spawned and import the script)"
                        )
                pending.extendleft(reversed([item for item in slot.held if item.name not in finished]))
                slot.stop(0)
                slots[number] = _Slot(ctx, config, number, outbox)
        clean = True
    finally:
        for slot in slots.values():
            slot.stop(timeout=30 if clean else 0)
        outbox.close()
        outbox.cancel_join_thread()
