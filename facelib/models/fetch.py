"""Download upstream artefacts into the cache: verified, resumable, atomic, safe to run twice.

Standard library only (``urllib``).  An artefact (:class:`facelib.models.registry.Artefact`) is
looked for, in order, in

1. the download cache, ``<cache>/downloads/<mirror_path>`` (verified again when its sha256 is known),
2. the mirror, when one is set (``mirror=`` or ``$FACELIB_MIRROR``): a local directory laid out like
   ``shared/assets`` or a base URL under which ``<mirror_path>`` is served,
3. its upstream URLs (unless the artefact is *manual*: Google Drive/Yandex folders are never scraped).

Guarantees
----------
- **Atomic**: bytes go to ``<file>.part`` and are renamed onto ``<file>`` only after the size and
  sha256 checks pass; a reader never sees a partial file under the final name.
- **Resumable**: an interrupted transfer leaves ``<file>.part``; the next attempt (a retry, or a
  later call) asks for the rest with an HTTP ``Range`` request and appends, or starts over if the
  server ignores ranges.
- **Verified**: a wrong size (truncated) or sha256 (corrupt) is a :class:`DownloadError` naming the
  file, the source, the expected and the actual values; the bad bytes are deleted.
- **Concurrent-safe**: one lock file per artefact (``<cache>/locks``, ``fcntl.flock`` on POSIX,
  ``msvcrt.locking`` on Windows; the OS drops the lock when a process dies, so a crashed process
  cannot leave a stale lock).  The second process waits, then finds the verified file.
- **Offline** (``offline=True`` or ``FACELIB_OFFLINE=1``): no socket is opened; only the cache and
  a local-directory mirror are used, and the error lists what is missing and where to put it.
- **Licences**: the licence is announced before any download; non-commercial artefacts need an
  explicit acceptance (``accept_licence=True``, ``--accept-licence``, or
  ``FACELIB_ACCEPT_LICENCE=1`` / a comma-separated list of artefact or package names).
- **Unknown checksums**: artefacts whose sha256 upstream never published need
  ``allow_unverified=True``; the sha256 actually obtained is then recorded beside the file
  (``<file>.sha256``) and in the package built from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.client import HTTPException
from pathlib import Path
from typing import IO, Any

from facelib.errors import DownloadError
from facelib.models.cache import cache_dir
from facelib.models.registry import Artefact

__all__ = [
    "ACCEPT_ENV",
    "MIRROR_ENV",
    "OFFLINE_ENV",
    "LicenceNotAcceptedError",
    "cached_path",
    "downloads_dir",
    "fetch_artefact",
    "file_lock",
    "licence_accepted",
    "resolve_mirror",
    "resolve_offline",
]

log = logging.getLogger("facelib.models")

MIRROR_ENV = "FACELIB_MIRROR"
OFFLINE_ENV = "FACELIB_OFFLINE"
ACCEPT_ENV = "FACELIB_ACCEPT_LICENCE"

CHUNK = 1 << 20  # 1 MiB: the unit of the progress bar
PIECE = 1 << 16  # read size: what arrived is on disk before the next read
USER_AGENT = "facelib-model-fetch/1"

Notify = Callable[[str], None]


class LicenceNotAcceptedError(DownloadError):
    """A non-commercial artefact was requested without accepting its licence."""


# --- settings ---------------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_offline(offline: bool | None) -> bool:
    """``offline`` if given, else ``$FACELIB_OFFLINE`` (1/true/yes/on)."""
    return _truthy(os.environ.get(OFFLINE_ENV)) if offline is None else bool(offline)


def resolve_mirror(mirror: str | os.PathLike[str] | None) -> str | Path | None:
    """The mirror to use: ``mirror`` if given, else ``$FACELIB_MIRROR``, else None.

    Returns a :class:`Path` for a local directory (plain path or ``file://`` URL) and a string
    ending in ``/`` for an ``http(s)`` base URL.  Anything else is a :class:`DownloadError`.
    """
    value = os.fspath(mirror) if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if not value:
        return None
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme in ("http", "https"):
        return value if value.endswith("/") else value + "/"
    if parsed.scheme == "file":
        value = urllib.request.url2pathname(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise DownloadError(f"mirror {value!r}: only http(s) URLs and local directories are supported")
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DownloadError(f"mirror directory {path} does not exist (set by argument or ${MIRROR_ENV})")
    return path


def licence_accepted(names: tuple[str, ...], accept: bool) -> bool:
    """Whether a non-commercial licence is accepted for any of ``names`` (artefact/package names)."""
    if accept:
        return True
    env = os.environ.get(ACCEPT_ENV, "")
    if _truthy(env):
        return True
    accepted = {item.strip() for item in env.split(",") if item.strip()}
    return bool(accepted.intersection(names))


def downloads_dir() -> Path:
    """``<cache>/downloads``: verified artefacts, laid out like a mirror (usable as one)."""
    return cache_dir() / "downloads"


def cached_path(artefact: Artefact) -> Path:
    """Where ``artefact`` lives in the download cache (whether or not it is there)."""
    return downloads_dir() / _safe_relpath(artefact.mirror_path)


def _safe_relpath(path: str) -> Path:
    rel = Path(*[p for p in path.replace("\\", "/").split("/") if p not in ("", ".")])
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise DownloadError(f"invalid mirror path {path!r}")
    return rel


# --- locking ----------------------------------------------------------------------------------


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 3600.0, poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive inter-process lock on ``path`` (created if needed).

    The lock is advisory (``fcntl.flock`` / ``msvcrt.locking``) and released by the OS if the
    holder dies, so no stale-lock cleanup is needed.  Raises :class:`DownloadError` after
    ``timeout`` seconds of waiting.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the lock file {path}: {exc}; set FACELIB_HOME to a writable directory"
        ) from exc
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                _lock(fd)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise DownloadError(
                        f"timed out after {timeout:.0f} s waiting for {path} (another facelib process is "
                        "fetching the same model)"
                    ) from None
                time.sleep(poll)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lock_path(artefact: Artefact) -> Path:
    key = hashlib.sha256(artefact.mirror_path.encode()).hexdigest()[:16]
    return cache_dir() / "locks" / f"download-{key}.lock"


# --- verification -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check(path: Path, artefact: Artefact, origin: str) -> str:
    """Size and sha256 check; returns the sha256.  Raises DownloadError (file kept)."""
    size = path.stat().st_size
    if artefact.size is not None and size != artefact.size:
        kind = "truncated" if size < artefact.size else "too long"
        raise DownloadError(
            f"{artefact.filename} from {origin} is {kind}: expected {artefact.size:,} bytes, got {size:,}"
        )
    actual = _sha256(path)
    if artefact.sha256 is not None and actual != artefact.sha256:
        raise DownloadError(
            f"{artefact.filename} from {origin} is corrupt: expected sha256 {artefact.sha256}, got {actual}"
        )
    return actual


def _cached_ok(artefact: Artefact, target: Path, verify: bool) -> bool:
    if not target.is_file():
        return False
    if not verify:
        return True
    try:
        _check(target, artefact, f"the cache ({target})")
    except DownloadError as exc:
        log.warning("%s; fetching it again", exc)
        target.unlink(missing_ok=True)
        return False
    return True


# --- sources ----------------------------------------------------------------------------------


def _sources(artefact: Artefact, mirror: str | Path | None, offline: bool) -> tuple[list[str | Path], list[str]]:
    """Places to try in order, and the places skipped (for the error message)."""
    rel = _safe_relpath(artefact.mirror_path)
    tried: list[str | Path] = []
    skipped: list[str] = []
    if isinstance(mirror, Path):
        tried.append(mirror / rel)
    elif isinstance(mirror, str):
        url = urllib.parse.urljoin(mirror, urllib.parse.quote(rel.as_posix()))
        if offline:
            skipped.append(f"{url} (offline)")
        else:
            tried.append(url)
    for url in artefact.urls:
        if artefact.manual:
            skipped.append(f"{url} (needs a manual download)")
        elif offline:
            skipped.append(f"{url} (offline)")
        else:
            tried.append(url)
    return tried, skipped


def _announce(artefact: Artefact, notify: Notify) -> None:
    size = f"{artefact.size / 1e6:.1f} MB" if artefact.size else "size unknown"
    flag = " [NON-COMMERCIAL]" if artefact.non_commercial else ""
    note = f" ({artefact.licence_note})" if artefact.licence_note else ""
    notify(f"fetching {artefact.filename} ({size}); licence{flag}: {artefact.licence}{note}")


def _stderr(message: str) -> None:
    print(f"facelib: {message}", file=sys.stderr)


def fetch_artefact(
    artefact: Artefact,
    *,
    mirror: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    progress: bool = True,
    accept_licence: bool = False,
    allow_unverified: bool = False,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    lock_timeout: float = 3600.0,
    notify: Notify | None = None,
    accept_names: tuple[str, ...] = (),
) -> Path:
    """Return the local path of ``artefact``, downloading and verifying it when needed.

    Parameters
    ----------
    artefact:
        What to fetch (see :mod:`facelib.models.registry`).
    mirror:
        Local directory or ``http(s)`` base URL laid out like ``shared/assets``; default
        ``$FACELIB_MIRROR``.  Tried before the upstream URLs.
    offline:
        Never open a network connection (default ``$FACELIB_OFFLINE``).
    progress:
        Announce the licence and draw a progress bar (on a terminal) while downloading.
    accept_licence:
        Accept a non-commercial licence (else :class:`LicenceNotAcceptedError` before any transfer).
    allow_unverified:
        Allow artefacts with no known sha256 (their actual sha256 is recorded beside the file).
    timeout, retries, backoff:
        Socket timeout in seconds; transfer retries per source after a network error (each resumes
        the partial file); first wait between retries in seconds (doubles each time).
    lock_timeout:
        Seconds to wait for another process fetching the same artefact.
    notify:
        Receives one-line messages (licence, source); default: stderr when ``progress``.
    accept_names:
        Extra names (e.g. the package's) matched against ``$FACELIB_ACCEPT_LICENCE``.

    Returns
    -------
    Path
        ``<cache>/downloads/<mirror_path>``, verified.

    Raises
    ------
    DownloadError
        Every source failed (message lists each), or offline and the file is not available.
    LicenceNotAcceptedError
        Non-commercial licence not accepted.
    """
    offline = resolve_offline(offline)
    resolved = resolve_mirror(mirror)
    say: Notify = notify or (_stderr if progress else log.info)
    target = cached_path(artefact)
    verify = artefact.sha256 is not None or artefact.size is not None
    if _cached_ok(artefact, target, verify):
        return target
    if artefact.sha256 is None and not allow_unverified:
        where = f"; put it at {target} or use a mirror" if artefact.manual else ""
        raise DownloadError(
            f"{artefact.filename} has no published sha256, so facelib cannot verify it; pass "
            f"allow_unverified=True (CLI: --allow-unverified) to accept it unverified{where}"
        )
    with file_lock(_lock_path(artefact), timeout=lock_timeout):
        if _cached_ok(artefact, target, verify):  # another process finished it meanwhile
            return target
        sources, skipped = _sources(artefact, resolved, offline)
        if not sources:
            raise DownloadError(_missing_message(artefact, target, skipped, offline))
        if artefact.non_commercial and not licence_accepted((artefact.name, *accept_names), accept_licence):
            link = artefact.homepage or (artefact.urls[0] if artefact.urls else "its homepage")
            raise LicenceNotAcceptedError(
                f"{artefact.filename} is under a non-commercial licence: {artefact.licence}"
                f"{' (' + artefact.licence_note + ')' if artefact.licence_note else ''}. Read it ({link}) "
                f"and accept it with accept_licence=True (CLI: --accept-licence) or {ACCEPT_ENV}={artefact.name}"
            )
        _announce(artefact, say)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DownloadError(f"cannot write to the download cache {target.parent}: {exc}") from exc
        failures: list[str] = []
        for source in sources:
            try:
                if isinstance(source, Path):
                    _copy_local(source, target, artefact, progress)
                else:
                    _download(source, target, artefact, progress, timeout, retries, backoff, say)
                actual = _verify_part(target, artefact, str(source))
            except DownloadError as exc:
                failures.append(str(exc))
                continue
            if artefact.sha256 is None:
                _note_unverified(target, artefact, actual, str(source), say)
            os.replace(_part(target), target)
            return target
        failures += [f"skipped {s}" for s in skipped]
        raise DownloadError(f"could not fetch {artefact.filename}:\n  " + "\n  ".join(failures))


def _missing_message(artefact: Artefact, target: Path, skipped: list[str], offline: bool) -> str:
    lines = [f"{artefact.filename} is not in the cache ({target})"]
    if offline:
        lines[0] += f" and offline mode is on (${OFFLINE_ENV} or --offline)"
    if artefact.manual:
        lines.append(f"download it by hand from {artefact.homepage or artefact.urls[0]} and put it at {target}")
    lines.append(f"or set a mirror holding {artefact.mirror_path} (--mirror DIR|URL or ${MIRROR_ENV})")
    lines += [f"skipped {s}" for s in skipped]
    return "\n  ".join(lines)


def _part(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def _verify_part(target: Path, artefact: Artefact, origin: str) -> str:
    part = _part(target)
    try:
        return _check(part, artefact, origin)
    except DownloadError:
        part.unlink(missing_ok=True)  # wrong bytes cannot be resumed: start afresh next time
        raise


def _note_unverified(target: Path, artefact: Artefact, actual: str, origin: str, say: Notify) -> None:
    say(f"WARNING: {artefact.filename} could not be verified (no published sha256); got sha256 {actual}")
    target.with_name(target.name + ".sha256").write_text(f"{actual}  {artefact.filename}  {origin}\n")


def _copy_local(source: Path, target: Path, artefact: Artefact, progress: bool) -> None:
    if not source.is_file():
        raise DownloadError(f"{artefact.filename}: not in the mirror ({source} does not exist)")
    from facelib._progress import progress as bar

    part = _part(target)
    total = source.stat().st_size
    with open(source, "rb") as src, open(part, "wb") as dst:
        chunks = iter(lambda: src.read(CHUNK), b"")
        for chunk in bar(chunks, total=-(-total // CHUNK), desc=artefact.filename, enabled=_bar(progress), unit="MiB"):
            dst.write(chunk)


def _bar(progress: bool) -> bool | None:
    return None if progress else False  # None: draw only on a terminal


_RETRYABLE = (urllib.error.URLError, ConnectionError, TimeoutError, HTTPException, OSError)


def _download(
    url: str,
    target: Path,
    artefact: Artefact,
    progress: bool,
    timeout: float,
    retries: int,
    backoff: float,
    say: Notify,
) -> None:
    """Fill ``<target>.part`` from ``url``, resuming and retrying; the caller verifies it."""
    delay = backoff
    for attempt in range(retries + 1):
        try:
            _transfer(url, target, artefact, progress, timeout)
            return
        except urllib.error.HTTPError as exc:
            if exc.code in (408, 429) or exc.code >= 500:
                problem = f"HTTP {exc.code} {exc.reason}"
            else:
                raise DownloadError(f"{artefact.filename}: {url} answered HTTP {exc.code} {exc.reason}") from None
        except DownloadError:
            raise
        except _RETRYABLE as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt == retries:
            part = _part(target)
            kept = part.stat().st_size if part.exists() else 0
            hint = (
                f"run the command again to resume ({kept:,} bytes kept in {part})"
                if kept
                else f"check the network, or use a mirror (--mirror DIR|URL or ${MIRROR_ENV})"
            )
            raise DownloadError(f"{artefact.filename}: {url} failed after {retries + 1} attempts ({problem}); {hint}")
        say(f"{artefact.filename}: {problem}; retrying in {delay:.1f} s (attempt {attempt + 2}/{retries + 1})")
        time.sleep(delay)
        delay *= 2


def _transfer(url: str, target: Path, artefact: Artefact, progress: bool, timeout: float) -> None:
    from facelib._progress import progress as bar

    part = _part(target)
    have = part.stat().st_size if part.exists() else 0
    if artefact.size is not None and have > artefact.size:
        part.unlink()
        have = 0
    if artefact.size is not None and have == artefact.size:
        return  # complete already; verification follows
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # http(s) only, see _sources
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # range past the end: our partial file is stale or complete
            exc.close()
            part.unlink()
            raise ConnectionError("server refused to resume; restarting from the beginning") from None
        raise
    with response:
        status = response.status
        mode = "ab"
        if have and status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                part.unlink(missing_ok=True)
                raise ConnectionError(f"server resumed at byte {start}, expected {have}; restarting")
        elif status == 200:
            mode, have = "wb", 0  # server ignored the range: start over
        else:
            raise ConnectionError(f"unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        total = expected if expected is not None else (artefact.size - have if artefact.size else None)
        counter = [0]
        with open(part, mode) as fh:
            ticks = _write_pieces(response, fh, counter)
            n_ticks = -(-total // CHUNK) if total else None
            for _ in bar(ticks, total=n_ticks, desc=artefact.filename, enabled=_bar(progress), unit="MiB"):
                pass
        received = counter[0]
        if expected is not None and received < expected:
            # http.client returns b"" when the peer closes early; treat it as an interruption.
            raise ConnectionError(f"connection closed after {have + received:,} bytes")


def _write_pieces(response: Any, fh: IO[Any], counter: list[int]) -> Iterator[None]:
    """Write the body as it arrives (so a stall or cut loses nothing already received);
    yield once per MiB written, for the progress bar."""
    pending = 0
    while piece := response.read1(PIECE):
        fh.write(piece)
        counter[0] += len(piece)
        pending += len(piece)
        while pending >= CHUNK:
            pending -= CHUNK
            yield None
    if pending:
        yield None


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


def copy_into_cache(artefact: Artefact, source: Path, *, allow_unverified: bool = False) -> Path:
    """Put a hand-downloaded file into the cache after checking it (used for manual artefacts)."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise DownloadError(f"{source} does not exist")
    if artefact.sha256 is None and not allow_unverified:
        raise DownloadError(f"{artefact.filename} has no published sha256; pass allow_unverified=True to use {source}")
    target = cached_path(artefact)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(_lock_path(artefact)):
        part = _part(target)
        shutil.copyfile(source, part)
        actual = _verify_part(target, artefact, str(source))
        if artefact.sha256 is None:
            _note_unverified(target, artefact, actual, str(source), log.warning)
        os.replace(part, target)
    return target
