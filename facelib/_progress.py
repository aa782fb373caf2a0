"""Progress bars for long work (conversion, long audio, long video).

Uses tqdm when it is installed; otherwise a small bar on stderr.  Bars only draw when stderr is a
terminal, unless ``enabled=True`` forces them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(
    items: Iterable[T], total: int | None = None, desc: str = "", enabled: bool | None = None, unit: str = "it"
) -> Iterator[T]:
    """Yield ``items`` while drawing a progress bar on stderr."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield from _plain_bar(items, total, desc, unit)
        return
    yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False)


def _plain_bar(items: Iterable[T], total: int | None, desc: str, unit: str) -> Iterator[T]:
    start = last = time.monotonic()
    count = 0
    for count, item in enumerate(items, 1):
        now = time.monotonic()
        if now - last > 0.2:
            last = now
            rate = count / max(now - start, 1e-9)
            if total:
                filled = int(30 * count / total)
                bar = "#" * filled + "-" * (30 - filled)
                sys.stderr.write(f"\r{desc} [{bar}] {count}/{total} {rate:.1f} {unit}/s")
            else:
                sys.stderr.write(f"\r{desc} {count} {unit} {rate:.1f} {unit}/s")
            sys.stderr.flush()
        yield item
    sys.stderr.write("\r" + " " * 79 + "\r")
    sys.stderr.flush()
