"""What every task shares: a model package, a backend, sessions by role, sub-models, closing.

Every task has the same shape::

    Task.from_pretrained(name=None, *, backend="auto", backend_options=None, **options)
    Task(path_or_name, *, backend="auto", backend_options=None, **options)

``name`` defaults to the task's entry of :data:`facelib.models.registry.DEFAULT_MODELS`; a path or
a hub name goes through the one resolver, :func:`facelib.models.hub.resolve_package`, which checks
the task before anything is downloaded.  Options are keyword-only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar

from typing_extensions import Self

from facelib.backends.base import Backend, Session
from facelib.backends.registry import active_backend, auto_for, get_backend, keep_auto
from facelib.models.card import ModelCard
from facelib.models.package import ModelPackage

#: A model package: its directory (or ``facelib.json``), a hub name, or a loaded package.
ModelSource = str | os.PathLike[str] | ModelPackage
#: A backend: a registered name (``"auto"``, ``"onnxruntime"``, a plugin's) or an instance.
BackendSource = str | Backend


def _identity(role: str, session: Session) -> Session:
    return session


class Task:
    """Base of the task classes: owns sessions opened from a package on a backend.

    Subclasses set :attr:`task_name` (a card ``task``), optionally :attr:`workload` (the
    :data:`facelib.backends.base.WORKLOADS` preset their backend is tuned for when the user
    names it without options), call :meth:`_session` for each role they use, and open their
    sub-models (detectors, inner tasks) with :meth:`_sub_backend` so that they run where the
    caller asked.  Tasks are context managers; leaving the ``with`` block (or :meth:`close`)
    frees their sessions and the sub-models they own.
    """

    task_name: ClassVar[str] = ""
    workload: ClassVar[str | None] = None

    def __init__(
        self,
        model: ModelSource,
        *,
        backend: BackendSource = "auto",
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        from facelib.models.hub import resolve_package

        chosen = get_backend(backend, **dict(backend_options or {}))  # before any download
        self.package = resolve_package(model, task=self.task_name)
        chosen = auto_for(chosen, self.package.card)  # "auto": the best backend for this package
        by_name = isinstance(backend, str)
        #: What sub-models get: the resolved backend's name (they tune it for their own workload)
        #: with the caller's options, or the caller's instance as it is.
        self._backend_request: dict[str, Any] = {
            "backend": ("auto" if backend == "auto" else chosen.name) if by_name else chosen,
            "backend_options": dict(backend_options) if by_name and backend_options else None,
        }
        # a backend named without options gets the preset of this task's workload; the user's
        # options or instance are used as given
        tuned = by_name and not backend_options and self.workload is not None
        self.backend = keep_auto(chosen, chosen.for_workload(self.workload)) if tuned and self.workload else chosen
        #: Sessions for batches of ``BATCHED_FROM`` items or more (per-item tasks only, see :meth:`_session`).
        self._batch_backend = (
            keep_auto(chosen, chosen.for_workload("batched")) if tuned and self.workload == "small_models" else None
        )
        self._sessions: dict[str, Session] = {}
        self._owned: list[Any] = []
        #: Applied to every session this task opens; measuring tools replace it (``facelib bench``).
        self.session_hook: Callable[[str, Session], Session] = _identity

    @classmethod
    def default_model(cls) -> str:
        """The hub name :meth:`from_pretrained` uses without one (``DEFAULT_MODELS``)."""
        from facelib.models.registry import DEFAULT_MODELS

        return DEFAULT_MODELS[cls.task_name]

    @classmethod
    def from_pretrained(
        cls,
        name: str | None = None,
        *,
        offline: bool | None = None,
        progress: bool = True,
        hub_options: Mapping[str, Any] | None = None,
        precision: str = "fp32",
        calibrate: Callable[[Any], object] | None = None,
        **options: Any,
    ) -> Self:
        """The task on a package of facelib's model hub (fetched, converted and cached on first use).

        ``name`` defaults to :meth:`default_model`; ``hub_options`` go to
        :func:`facelib.models.hub.ensure_package` (``mirror``, ``prebuilt``, ``accept_licence``...);
        ``options`` (``backend``, ``backend_options`` and the task's own) to the constructor.
        ``precision="int8"`` runs a quantized variant of the package, made once and cached
        (:func:`facelib.models.precision.precision_variant`); ``calibrate(task)`` runs the
        float32 task on your own real inputs to calibrate convolutional models.
        """
        from facelib.models.hub import resolve_package

        hub = {"offline": offline, "progress": progress, **dict(hub_options or {})}
        package = resolve_package(name or cls.default_model(), task=cls.task_name, **hub)
        if precision != "fp32":
            from facelib.models.precision import precision_variant

            package = precision_variant(cls, package, precision, calibrate)
        return cls(package, **options)

    @property
    def card(self) -> ModelCard:
        """The model card of the package this task runs."""
        return self.package.card

    def _sub_backend(self) -> dict[str, Any]:
        """``backend=`` / ``backend_options=`` keywords for a sub-model: the caller's choice."""
        return dict(self._backend_request)

    def _own(self, sub_model: Any) -> Any:
        """Close ``sub_model`` (a task this task created) with this task; returns it."""
        self._owned.append(sub_model)
        return sub_model

    def _session(self, role: str, batch: int = 1) -> Session:
        """The session of ``role`` (opened on first use); ``batch``: items the caller will run.

        A task tuned for ``small_models`` gets a second session, tuned for ``batched``, for
        batches of at least :data:`~facelib.backends.base.BATCHED_FROM` items.
        """
        from facelib.backends.base import BATCHED_FROM

        backend, key = self.backend, role
        if self._batch_backend is not None and batch >= BATCHED_FROM:
            backend, key = self._batch_backend, f"{role}@batched"
        session = self._sessions.get(key)
        if session is None:
            session = self.session_hook(role, self.package.session(role, backend))
            # another backend if "auto"'s choice failed to load
            if key == role:
                self.backend = active_backend(self.backend)
            else:
                self._batch_backend = active_backend(backend)
            self._sessions[key] = session
        return session

    def _repr_options(self) -> dict[str, Any]:
        """Options shown by ``repr`` (subclasses add theirs)."""
        return {}

    def __repr__(self) -> str:
        package = getattr(self, "package", None)
        if package is None:
            return f"<{type(self).__name__} (not initialised)>"
        parts = [f"{package.card.name!r}", f"backend={self.backend.name!r}"]
        parts += [f"{k}={v!r}" for k, v in self._repr_options().items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def close(self) -> None:
        """Free every session this task opened and close the sub-models it created."""
        owned, self._owned = getattr(self, "_owned", []), []
        for sub_model in owned:
            sub_model.close()
        for session in getattr(self, "_sessions", {}).values():
            session.close()
        if hasattr(self, "_sessions"):
            self._sessions.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
