"""What every task shares: a model package, a backend, sessions by role, and closing them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from facelib.backends.base import Backend, Session
from facelib.backends.registry import active_backend, get_backend
from facelib.errors import ModelCardError
from facelib.models.card import ModelCard
from facelib.models.package import ModelPackage

ModelSource = str | Path | ModelPackage


def _identity(role: str, session: Session) -> Session:
    return session


def fixed_batch(session: Session, name: str | None = None) -> int | None:
    """The batch size an input of ``session`` was built for, or None when its batch is dynamic.

    Static-shape artefacts (e.g. a MagicMind model built with fixed shapes) take exactly this
    many items per call: tasks send chunks of at most that size and the backend pads the last
    one.  ``name`` selects the input (default: the first).
    """
    spec = next((s for s in session.inputs if s.name == name), None) if name else session.inputs[0]
    dim = spec.shape[0] if spec is not None and spec.shape else None
    return dim if isinstance(dim, int) and dim > 0 else None


def open_package(model: ModelSource, task: str) -> ModelPackage:
    """A :class:`ModelPackage` from a path or package, checked to be for ``task``."""
    package = model if isinstance(model, ModelPackage) else ModelPackage.load(model)
    if package.card.task != task:
        raise ModelCardError(f"{package.root} is a {package.card.task!r} model, not a {task!r} model")
    return package


class Task:
    """Base of the task classes: owns sessions opened from a package on a backend.

    Subclasses call :meth:`_session` for each role they use.  Tasks are context managers;
    leaving the ``with`` block (or :meth:`close`) frees their sessions.
    """

    task_name: str = ""

    def __init__(
        self,
        model: ModelSource,
        backend: str | Backend = "auto",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.package = open_package(model, self.task_name)
        self.backend = get_backend(backend, **(backend_options or {}))
        self._sessions: dict[str, Session] = {}
        #: Applied to every session this task opens; measuring tools replace it (``facelib bench``).
        self.session_hook: Callable[[str, Session], Session] = _identity

    def __repr__(self) -> str:
        details = [f"model={self.card.name!r}", f"backend={self.backend.name!r}"]
        for name in ("mode", "num_faces"):
            value = getattr(self, name, None)
            if isinstance(value, str | int) and not isinstance(value, bool):
                details.append(f"{name}={value!r}")
        return f"<{type(self).__name__} {' '.join(details)} package={str(self.package.root)!r}>"

    @property
    def card(self) -> ModelCard:
        """The model card of the package this task runs."""
        return self.package.card

    def _session(self, role: str) -> Session:
        session = self._sessions.get(role)
        if session is None:
            session = self.session_hook(role, self.package.session(role, self.backend))
            self.backend = active_backend(self.backend)  # another one if "auto"'s choice failed to load
            self._sessions[role] = session
        return session

    def close(self) -> None:
        """Free every session this task opened."""
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    def __enter__(self) -> Task:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
