"""Finding backends: built-ins first, then plugins from the ``facelib.backends`` entry points.

Plugins are loaded once, lazily, on the first call that needs them.  A plugin that fails to
import (or whose hook fails) is remembered with its error and listed by
:func:`failed_plugins` and ``facelib backends``; it never breaks ``import facelib``.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any, cast

import attrs
import pluggy

from facelib.backends import hookspecs
from facelib.backends.base import Backend
from facelib.errors import (
    BackendError,
    BackendNotFoundError,
    BackendUnavailableError,
    DuplicateBackendError,
)


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

    # -- loading -------------------------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
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

    def backend_class(self, name: str) -> type[Backend]:
        self._ensure_loaded()
        if name == "auto":
            return self._auto()
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

    def _auto(self) -> type[Backend]:
        candidates = [
            entries[0].cls
            for entries in self._backends.values()
            if len(entries) == 1 and _availability(entries[0].cls)[0]
        ]
        if not candidates:
            ort = self._backends.get("onnxruntime")
            reason = _availability(ort[0].cls)[1] if ort else "the built-in backend is not registered"
            raise BackendUnavailableError(f"no backend is available; ONNX Runtime: {reason}")
        return max(candidates, key=lambda c: (c.priority, c.name))


def _availability(cls: type[Backend]) -> tuple[bool, str]:
    try:
        result = cls.available()
    except Exception as exc:  # noqa: BLE001 - a broken availability check means unavailable
        return False, f"availability check failed: {type(exc).__name__}: {exc}"
    return bool(result.ok), result.reason


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


def backend_class(name: str = "auto") -> type[Backend]:
    """The backend class registered as ``name``; ``"auto"`` picks the best available one."""
    return _REGISTRY.backend_class(name)


def get_backend(name: str | Backend = "auto", **options: Any) -> Backend:
    """A backend instance by name (``"auto"``: best available, ONNX Runtime CPU last).

    An existing :class:`Backend` instance is returned unchanged (``options`` must be empty).
    Raises :class:`BackendNotFoundError`, :class:`DuplicateBackendError` or
    :class:`BackendUnavailableError` with the reason the backend gave.
    """
    if isinstance(name, Backend):
        if options:
            raise BackendError("pass options either to the backend instance or here, not both")
        return name
    cls = backend_class(name)
    ok, reason = _availability(cls)
    if not ok:
        raise BackendUnavailableError(f"backend {cls.name!r} cannot run here: {reason}")
    return cls(**options)


def register_backend(cls: type[Backend], origin: str = "runtime") -> None:
    """Register a backend class from code (tests, notebooks) without an entry point."""
    _REGISTRY.register(cls, origin)


def reload_plugins() -> None:
    """Forget what was loaded; the next query loads built-ins and entry points again."""
    _REGISTRY.reset()
