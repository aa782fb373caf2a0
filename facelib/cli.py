"""The ``facelib`` command: thin — parses arguments, calls the library, prints.

Subcommands live in :mod:`facelib.commands`, one module per area; each module lists its
``COMMANDS`` (``_add_<name>(subparsers)`` functions that set ``func`` to a
``_run_<name>(args) -> int``), ``CONVERTERS`` (members of ``facelib convert``) and
``EVALUATIONS`` (members of ``facelib eval``).  Errors that facelib raises on purpose
(:class:`~facelib.errors.FacelibError`) print one clear line and exit with status 2.

Interruptions: Ctrl-C exits with 130 and SIGTERM with 143, both by unwinding (SIGTERM is turned
into an exception), so every writer removes its partial file (:mod:`facelib.io.atomic`).  A
reader that closes the pipe early (``facelib ... --json | head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from facelib._version import __version__
from facelib.commands import (
    audio2face,
    batch,
    blendshapes,
    export,
    headpose,
    inspect,
    measure,
    models,
    motion,
    precision,
)
from facelib.errors import FacelibError

EXIT_USER_ERROR = 2
#: Exit status when stdout's reader closed the pipe (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141

#: Command modules, in the order ``facelib --help`` lists their subcommands.
_MODULES = (inspect, measure, models, headpose, blendshapes, motion, audio2face, precision, export, batch)


def _add_group(
    sub: Any, name: str, help_text: str, dest: str, metavar: str, members: list[Callable[[Any], None]]
) -> None:
    p = sub.add_parser(name, help=help_text)
    inner = p.add_subparsers(dest=dest, metavar=metavar, required=True)
    for add in members:
        add(inner)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``facelib`` command."""
    parser = argparse.ArgumentParser(
        prog="facelib",
        description="Face AI on any accelerator: head pose, blendshapes, audio-to-face, motion transfer.",
    )
    parser.add_argument("--version", action="version", version=f"facelib {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _MODULES[:3]:
        for add in module.COMMANDS:
            add(sub)
    converters = [c for module in _MODULES for c in module.CONVERTERS]
    evaluations = [e for module in _MODULES for e in module.EVALUATIONS]
    _add_group(
        sub, "convert", "convert an upstream checkpoint into a facelib model package", "converter", "MODEL", converters
    )
    _add_group(sub, "eval", "measure a task's accuracy on a labelled dataset", "evaluation", "TASK", evaluations)
    for module in _MODULES[3:]:
        for add in module.COMMANDS:
            add(sub)
    return parser


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (so ``finally`` blocks run)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the command runs, SIGTERM raises :class:`Terminated` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stdout_closed() -> int:
    """The reader of stdout went away: silence further writes (and the flush at exit)."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        with _sigterm_unwinds():
            status = int(args.func(args))
            sys.stdout.flush()
            return status
    except FacelibError as exc:
        if args.debug:
            raise
        print(f"facelib: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print("facelib: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("facelib: terminated", file=sys.stderr)
        return 143


if __name__ == "__main__":
    raise SystemExit(main())
