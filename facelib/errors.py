"""One hierarchy of errors for everything facelib raises on purpose.

Every error a user can cause (a bad file, a missing model, an unavailable backend) is a
:class:`FacelibError`; its message says what was wrong and what to do about it.  Catch
``FacelibError`` to handle all of them, or a child class to handle one kind.
"""

from __future__ import annotations


class FacelibError(Exception):
    """Base class of every error facelib raises deliberately."""


# --- inputs -----------------------------------------------------------------------------------


class InputError(FacelibError, ValueError):
    """The user's input (image, video, audio, array, option) cannot be used as given."""


class MediaReadError(InputError):
    """A media file is missing, empty, corrupt or in a format facelib cannot decode."""


class NoFaceError(InputError):
    """An operation needs a face and none was found in the input."""


# --- models -----------------------------------------------------------------------------------


class ModelError(FacelibError):
    """A model file or model package is missing, malformed or does not match its card."""


class ModelCardError(ModelError):
    """A model card (``facelib.json``) is missing, not valid JSON or has wrong fields."""


class ModelFileError(ModelError):
    """A model file is missing, truncated, corrupt, or its inputs/outputs differ from the card."""


class ConversionError(ModelError):
    """Converting an upstream checkpoint into a model package failed."""


class DownloadError(ModelError):
    """Fetching a model from its source or mirror failed (network, checksum, size)."""


class MissingDependencyError(FacelibError, ImportError):
    """An optional dependency (an extra such as ``facelib[convert]``) is not installed."""

    def __init__(self, package: str, extra: str, purpose: str, alternative: str = "") -> None:
        """``alternative``: another way out, appended as ``", or <alternative>"``."""
        super().__init__(
            f"{purpose} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install 'facelib[{extra}]'" + (f", or {alternative}" if alternative else "")
        )
        self.package = package
        self.extra = extra


# --- backends ---------------------------------------------------------------------------------


class BackendError(FacelibError):
    """A backend could not be found, loaded, or failed while running a model."""


class BackendNotFoundError(BackendError, KeyError):
    """No backend with the requested name is registered."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(BackendError):
    """The backend is registered but cannot run here (SDK, driver or device missing)."""


class DuplicateBackendError(BackendError):
    """Two plugins registered backends with the same name."""


class InferenceError(BackendError):
    """Running a session failed; the message names the model file and the inputs."""


def require(module: str, extra: str, purpose: str) -> object:
    """Import an optional module lazily, or raise :class:`MissingDependencyError`.

    Parameters
    ----------
    module:
        Import name, e.g. ``"torch"``.
    extra:
        The facelib extra that installs it, e.g. ``"convert"``.
    purpose:
        What needs it, for the message, e.g. ``"Converting FaceFormer checkpoints"``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module, extra, purpose) from exc
