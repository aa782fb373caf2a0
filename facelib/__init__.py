"""facelib: face AI (speech-driven 3D animation, image animation, head pose, expression capture)
on any accelerator, through one typed API.

Importing facelib is cheap: nothing heavy (onnxruntime, OpenCV, librosa) is imported until a
name that needs it is first used.

Quick tour::

    import facelib
    facelib.list_backends()                       # what can run here
    with facelib.HeadPose.from_pretrained("fsanet") as pose:
        faces = pose.predict("photo.jpg")         # list of HeadPoseResult: box, yaw, pitch, roll
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> "module:attribute", resolved on first access (PEP 562).
_LAZY: dict[str, str] = {
    # errors
    "FacelibError": "facelib.errors:FacelibError",
    "InputError": "facelib.errors:InputError",
    "MediaReadError": "facelib.errors:MediaReadError",
    "NoFaceError": "facelib.errors:NoFaceError",
    "ModelError": "facelib.errors:ModelError",
    "ModelCardError": "facelib.errors:ModelCardError",
    "ModelFileError": "facelib.errors:ModelFileError",
    "ConversionError": "facelib.errors:ConversionError",
    "DownloadError": "facelib.errors:DownloadError",
    "MissingDependencyError": "facelib.errors:MissingDependencyError",
    "BackendError": "facelib.errors:BackendError",
    "BackendNotFoundError": "facelib.errors:BackendNotFoundError",
    "BackendUnavailableError": "facelib.errors:BackendUnavailableError",
    "DuplicateBackendError": "facelib.errors:DuplicateBackendError",
    "InferenceError": "facelib.errors:InferenceError",
    # backends
    "Backend": "facelib.backends.base:Backend",
    "Session": "facelib.backends.base:Session",
    "TensorSpec": "facelib.backends.base:TensorSpec",
    "list_backends": "facelib.backends.registry:list_backends",
    "get_backend": "facelib.backends.registry:get_backend",
    "failed_plugins": "facelib.backends.registry:failed_plugins",
    # models
    "ModelCard": "facelib.models.card:ModelCard",
    "ModelPackage": "facelib.models.package:ModelPackage",
    # io
    "read_image": "facelib.io.image:read_image",
    # tasks and their results (each task module adds its own lines here)
    "Audio2Face": "facelib.tasks.audio2face:Audio2Face",
    "Audio2FaceResult": "facelib.tasks.audio2face:Audio2FaceResult",
    "Audio2FaceStream": "facelib.tasks.audio2face:Audio2FaceStream",
    "Windowing": "facelib.tasks.audio2face:Windowing",
    "load_audio": "facelib.io.audio:load_audio",
    "read_mesh": "facelib.io.mesh:read_mesh",
    "render_mesh": "facelib.io.render:render_mesh",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'facelib' has no attribute {name!r}")
    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from facelib.backends.base import Backend, Session, TensorSpec
    from facelib.backends.registry import failed_plugins, get_backend, list_backends
    from facelib.errors import (
        BackendError,
        BackendNotFoundError,
        BackendUnavailableError,
        ConversionError,
        DownloadError,
        DuplicateBackendError,
        FacelibError,
        InferenceError,
        InputError,
        MediaReadError,
        MissingDependencyError,
        ModelCardError,
        ModelError,
        ModelFileError,
        NoFaceError,
    )
    from facelib.io.image import read_image
    from facelib.models.card import ModelCard
    from facelib.models.package import ModelPackage
