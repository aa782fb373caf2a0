"""Finding backends: built-ins first, then plugins from the ``facelib.backends`` entry points.

Plugins are loaded once, lazily, on the first call that needs them.  A plugin that fails to
import (or whose hook fails) is remembered with its error and listed by
:func:`failed_plugins` and ``facelib backends``; it never breaks ``import facelib``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs
import pluggy

from facelib.backends import hookspecs
from facelib.backends.base import Backend
from facelib.errors import (
    BackendError,
    BackendNotFoundError,
    BackendUnavailableError,
    DuplicateBackendError,
    FacelibError,
)

T = TypeVar("T")
log = logging.getLogger("facelib.backends")


@attrs.frozen
class BackendInfo:
    """What ``facelib backends`` shows about one backend."""

    name: str
    version: str | None
    available: bool
    reason: str
    formats: tuple[str, ...]
    priority: int
    origin: str  #: "builtin" or "<distribution> <version> (entry point <name>)"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class PluginFailure:
    """A plugin that could not be loaded: its entry point, origin and the error it raised."""

    entry_point: str
    origin: str
    error: str
    details: str


@attrs.define
class _Registered:
    cls: type[Backend]
    origin: str


class _Registry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loaded = False
        self._backends: dict[str, list[_Registered]] = {}
        self._failures: list[PluginFailure] = []
        #: Backends whose load() failed under "auto": skipped by later "auto" choices.
        self._auto_failed: dict[type[Backend], str] = {}

    # -- loading -------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            _quiet_onnxruntime()
            manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            manager.add_hookspecs(hookspecs)
            from facelib.backends import builtin

            self._collect(manager, builtin, "facelib.backends.builtin", "builtin")
            for ep, origin in _entry_points():
                try:
                    plugin = ep.load()
                except Exception as exc:  # noqa: BLE001 - any plugin error is reported, not raised
                    self._fail(ep.name, origin, exc)
                    continue
                self._collect(manager, plugin, ep.name, origin)
            self._loaded = True

    def _collect(self, manager: pluggy.PluginManager, plugin: object, name: str, origin: str) -> None:
        try:
            manager.register(plugin, name=name)
            impls = manager.hook.facelib_backends.get_hookimpls()
            for impl in (i for i in impls if i.plugin is plugin):
                provided = cast("list[type[Backend]]", impl.function() or [])
                for cls in provided:
                    if not (isinstance(cls, type) and issubclass(cls, Backend)):
                        raise BackendError(f"facelib_backends returned {cls!r}, not a Backend subclass")
                    self._backends.setdefault(cls.name, []).append(_Registered(cls, origin))
        except Exception as exc:  # noqa: BLE001
            self._fail(name, origin, exc)

    def _fail(self, name: str, origin: str, exc: BaseException) -> None:
        self._failures.append(
            PluginFailure(
                entry_point=name,
                origin=origin,
                error=f"{type(exc).__name__}: {exc}",
                details="".join(traceback.format_exception(exc)),
            )
        )

    def reset(self) -> None:
        with self._lock:
            self._loaded = False
            self._backends.clear()
            self._failures.clear()
            self._auto_failed.clear()

    # -- queries -------------------------------------------------------------------------------

    def register(self, cls: type[Backend], origin: str = "runtime") -> None:
        self._ensure_loaded()
        with self._lock:
            self._backends.setdefault(cls.name, []).append(_Registered(cls, origin))

    def infos(self) -> list[BackendInfo]:
        self._ensure_loaded()
        out: list[BackendInfo] = []
        for name, entries in sorted(self._backends.items()):
            for entry in entries:
                ok, reason = _availability(entry.cls)
                if len(entries) > 1:
                    ok = False
                    reason = "registered more than once: " + ", ".join(e.origin for e in entries)
                out.append(
                    BackendInfo(
                        name=name,
                        version=_safe_version(entry.cls),
                        available=ok,
                        reason=reason,
                        formats=tuple(entry.cls.formats),
                        priority=entry.cls.priority,
                        origin=entry.origin,
                    )
                )
        return out

    def failures(self) -> list[PluginFailure]:
        self._ensure_loaded()
        return list(self._failures)

    def backend_class(self, name: str, card: Any = None) -> type[Backend]:
        self._ensure_loaded()
        if name == "auto":
            return self._auto(card)
        entries = self._backends.get(name)
        if not entries:
            known = ", ".join(sorted(self._backends)) or "none"
            hint = ""
            failed = [f.entry_point for f in self._failures]
            if failed:
                hint = f"; plugins that failed to load: {', '.join(failed)} (see 'facelib backends')"
            raise BackendNotFoundError(f"no backend named {name!r}; registered: {known}{hint}")
        if len(entries) > 1:
            raise DuplicateBackendError(
                f"backend name {name!r} is registered by more than one plugin: "
                + ", ".join(e.origin for e in entries)
                + ". Uninstall one of them."
            )
        return entries[0].cls

    def failed_under_auto(self, cls: type[Backend]) -> bool:
        with self._lock:
            return cls in self._auto_failed

    def mark_auto_failed(self, cls: type[Backend], reason: str) -> bool:
        """Remember that ``cls`` failed under "auto"; True the first time."""
        with self._lock:
            first = cls not in self._auto_failed
            self._auto_failed[cls] = reason
            return first

    def _auto(self, card: Any = None) -> type[Backend]:
        candidates = [
            entries[0].cls
            for entries in self._backends.values()
            if len(entries) == 1
            and entries[0].cls not in self._auto_failed
            and _runs(entries[0].cls, card)
            and _availability(entries[0].cls)[0]
        ]
        if not candidates:
            ort = self._backends.get("onnxruntime")
            reason = _availability(ort[0].cls)[1] if ort else "the built-in backend is not registered"
            raise BackendUnavailableError(f"no backend is available; ONNX Runtime: {reason}")
        return max(candidates, key=lambda c: (c.priority, c.name))


def _quiet_onnxruntime() -> None:
    """ONNX Runtime's default logger to errors only, before any plugin opens a session.

    Plugins built on onnxruntime (and their converted models) otherwise print a coloured line
    per unused initializer or unsupported-node assignment when a session opens — dozens for one
    model — though nothing is wrong.  facelib's own backend sets the same level per session.
    ``FACELIB_NATIVE_LOGS=1`` keeps onnxruntime's default (warnings).
    """
    import os

    if os.environ.get("FACELIB_NATIVE_LOGS") == "1":
        return
    try:
        import onnxruntime
    except ImportError:
        return
    onnxruntime.set_default_logger_severity(3)


def _availability(cls: type[Backend]) -> tuple[bool, str]:
    try:
        result = cls.available()
    except Exception as exc:  # noqa: BLE001 - a broken availability check means unavailable
        return False, f"availability check failed: {type(exc).__name__}: {exc}"
    return bool(result.ok), result.reason


def _runs(cls: type[Backend], card: Any) -> bool:
    """``cls.runs(card)``; a backend whose check raises is not chosen by "auto"."""
    try:
        return bool(cls.runs(card))
    except Exception:  # noqa: BLE001
        return False


def _safe_version(cls: type[Backend]) -> str | None:
    try:
        return cls.version()
    except Exception:  # noqa: BLE001
        return None


def _entry_points() -> list[tuple[Any, str]]:
    import importlib_metadata

    found = []
    for ep in importlib_metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
        dist = ep.dist
        where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
        found.append((ep, f"{where} (entry point {ep.name})"))
    return found


_REGISTRY = _Registry()


def list_backends() -> list[BackendInfo]:
    """Every registered backend with its version, availability (and why not) and origin."""
    return _REGISTRY.infos()


def failed_plugins() -> list[PluginFailure]:
    """Plugins whose entry point or hook raised while loading, with the error."""
    return _REGISTRY.failures()


def backend_class(name: str = "auto", card: Any = None) -> type[Backend]:
    """The backend class registered as ``name``; ``"auto"`` picks the best available one (for a
    package with ``card`` when given: among the backends that run it, :meth:`Backend.runs`)."""
    return _REGISTRY.backend_class(name, card)


def get_backend(name: str | Backend = "auto", *, card: Any = None, **options: Any) -> Backend:
    """A backend instance by name (``"auto"``: best available, ONNX Runtime CPU last; with
    ``card``, a :class:`~facelib.models.card.ModelCard`, the best that runs that package).

    An existing :class:`Backend` instance is returned unchanged (``options`` must be empty).
    Raises :class:`BackendNotFoundError`, :class:`DuplicateBackendError` or
    :class:`BackendUnavailableError` with the reason the backend gave.
    """
    if isinstance(name, Backend):
        if options:
            raise BackendError("pass options either to the backend instance or here, not both")
        return name
    cls = backend_class(name, card if name == "auto" else None)
    ok, reason = _availability(cls)
    if not ok:
        raise BackendUnavailableError(f"backend {cls.name!r} cannot run here: {reason}")
    backend = cls(**options)
    if name == "auto":
        backend._facelib_auto = True  # type: ignore[attr-defined]  # may give way (open_with_fallback)
        backend._facelib_options = bool(options)  # type: ignore[attr-defined]  # the caller's, for auto_for
    return backend


def auto_for(chosen: Backend, card: Any) -> Backend:
    """The backend ``"auto"`` picks for a package with ``card``, given ``chosen``, the one it picked
    with no package known: ``chosen`` itself when it was not chosen by "auto", was given options
    (they were written for it), or runs the package (:meth:`Backend.runs`); else a new instance
    of the best available backend that does (e.g. LiteRT, for the packages that keep their TFLite
    sources).  A workload preset is applied to the result by the caller, as to ``chosen``."""
    if not getattr(chosen, "_facelib_auto", False) or getattr(chosen, "_facelib_options", False):
        return chosen
    if _REGISTRY.failed_under_auto(type(chosen)):  # open_with_fallback replaces it, and says so
        return chosen
    cls = backend_class("auto", card)
    if cls is type(chosen):
        return chosen
    return get_backend("auto", card=card)


def keep_auto(chosen: Backend, tuned: Backend) -> Backend:
    """``tuned`` (e.g. ``chosen.for_workload(...)``), still allowed to give way if ``chosen`` was."""
    if getattr(chosen, "_facelib_auto", False):
        tuned._facelib_auto = True  # type: ignore[attr-defined]
        tuned._facelib_options = getattr(chosen, "_facelib_options", False)  # type: ignore[attr-defined]
    return tuned


def active_backend(backend: Backend) -> Backend:
    """The backend that replaced ``backend`` after its load failed under ``"auto"`` (else itself)."""
    while (nxt := getattr(backend, "_facelib_replacement", None)) is not None:
        backend = nxt
    return backend


def open_with_fallback(backend: Backend, load: Callable[[Backend], T]) -> T:
    """``load(backend)``; when that raises and ``backend`` was chosen by ``"auto"``, the next-best
    available backend is tried instead, with a one-line warning on the ``facelib.backends`` logger.

    A plugin whose ``load()``/``compile()`` crashes must not break a user's plain command: the
    failing backend is skipped by every later ``"auto"`` choice in this process.  Errors that
    say the model or the input is wrong (:class:`~facelib.errors.ModelError`,
    :class:`~facelib.errors.InputError`) are raised as they are; an explicitly named backend's
    crash becomes a :class:`BackendError` that names it.
    """
    current = active_backend(backend)
    while True:
        try:
            return load(current)
        except Exception as exc:
            if isinstance(exc, FacelibError) and not isinstance(exc, BackendError):
                raise
            why = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if not getattr(current, "_facelib_auto", False):
                if isinstance(exc, FacelibError):
                    raise
                raise BackendError(f"backend {current.name!r} failed to load the model: {why}") from exc
            first = _REGISTRY.mark_auto_failed(type(current), why)
            try:
                replacement = get_backend("auto")
            except BackendError:
                raise BackendError(f"backend {current.name!r} failed to load the model: {why}") from exc
            if first:  # one line per failing backend, however many tasks and models hit it
                log.warning(
                    "facelib: warning: backend %r failed to load a model (%s); using %r instead",
                    current.name,
                    why,
                    replacement.name,
                )
            current._facelib_replacement = replacement  # type: ignore[attr-defined]
            current = replacement


def register_backend(cls: type[Backend], origin: str = "runtime") -> None:
    """Register a backend class from code (tests, notebooks) without an entry point."""
    _REGISTRY.register(cls, origin)


def reload_plugins() -> None:
    """Forget what was loaded; the next query loads built-ins and entry points again."""
    _REGISTRY.reset()
