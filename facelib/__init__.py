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

from facelib._version import __version__

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
    "ensure_package": "facelib.models.hub:ensure_package",
    "LicenceNotAcceptedError": "facelib.models.fetch:LicenceNotAcceptedError",
    "list_models": "facelib.models.hub:list_models",
    # io
    "read_image": "facelib.io.image:read_image",
    # tasks and their results (each task module adds its own lines here)
    "BlendshapeCapture": "facelib.tasks.blendshapes:BlendshapeCapture",
    "FaceLandmarker": "facelib.tasks.face_landmarker:FaceLandmarker",
    "LandmarkerResult": "facelib.results:LandmarkerResult",
    "LandmarkerFace": "facelib.results:LandmarkerFace",
    "FaceBlendshapes": "facelib.results:FaceBlendshapes",
    "BlendshapeFrame": "facelib.results:BlendshapeFrame",
    "ARKIT_NAMES": "facelib.processing.arkit:ARKIT_NAMES",
    "FaceBoxesDetector": "facelib.tasks.faceboxes:FaceBoxesDetector",
    "RegressorEngine": "facelib.tasks.blendshape_regressor:RegressorEngine",
    "RegressorFace": "facelib.results:RegressorFace",
    "LiveLinkSender": "facelib.io.livelink:LiveLinkSender",
    "LiveLinkReceiver": "facelib.io.livelink:LiveLinkReceiver",
    "write_livelink_csv": "facelib.io.livelink:write_livelink_csv",
    "read_livelink_csv": "facelib.io.livelink:read_livelink_csv",
    "save_blendshapes_json": "facelib.io.blendshape_export:save_json",
    "load_blendshapes_json": "facelib.io.blendshape_export:load_json",
    "save_blendshapes_npz": "facelib.io.blendshape_export:save_npz",
    "load_blendshapes_npz": "facelib.io.blendshape_export:load_npz",
    "BlendshapeTake": "facelib.io.face_rig:BlendshapeTake",
    "take_from_frames": "facelib.io.animation_export:take_from_frames",
    "export_blendshapes": "facelib.io.animation_export:export_blendshapes",
    "export_mesh_animation": "facelib.io.animation_export:export_mesh_animation",
    "load_rig": "facelib.io.animation_export:load_rig",
    "HeadPose": "facelib.tasks.head_pose:HeadPose",
    "HeadPoseResult": "facelib.results:HeadPoseResult",
    "FaceDetector": "facelib.tasks.face_detection:FaceDetector",
    "FaceBox": "facelib.results:FaceBox",
    "MotionTransfer": "facelib.tasks.motion_transfer:MotionTransfer",
    "MotionSummary": "facelib.results:MotionSummary",
    "MotionResult": "facelib.results:MotionResult",
    "HeadPoseFrame": "facelib.results:HeadPoseFrame",
    "resolve_package": "facelib.models.hub:resolve_package",
    "DEFAULT_MODELS": "facelib.models.registry:DEFAULT_MODELS",
    "MotionMode": "facelib.processing.fomm:MotionMode",
    "FaceCropper": "facelib.tasks.motion_transfer:FaceCropper",
    "Audio2Face": "facelib.tasks.audio2face:Audio2Face",
    "Audio2FaceResult": "facelib.results:Audio2FaceResult",
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
    from facelib.io.blendshape_export import load_json as load_blendshapes_json
    from facelib.io.blendshape_export import load_npz as load_blendshapes_npz
    from facelib.io.blendshape_export import save_json as save_blendshapes_json
    from facelib.io.blendshape_export import save_npz as save_blendshapes_npz
    from facelib.io.image import read_image
    from facelib.io.livelink import LiveLinkReceiver, LiveLinkSender, read_livelink_csv, write_livelink_csv
    from facelib.models.card import ModelCard
    from facelib.models.fetch import LicenceNotAcceptedError
    from facelib.models.hub import ensure_package, list_models, resolve_package
    from facelib.models.package import ModelPackage
    from facelib.models.registry import DEFAULT_MODELS
    from facelib.processing.arkit import ARKIT_NAMES
    from facelib.processing.fomm import MotionMode
    from facelib.results import (
        Audio2FaceResult,
        BlendshapeFrame,
        FaceBlendshapes,
        FaceBox,
        HeadPoseFrame,
        HeadPoseResult,
        LandmarkerFace,
        LandmarkerResult,
        MotionResult,
        MotionSummary,
        RegressorFace,
    )
    from facelib.tasks.audio2face import Audio2Face, Audio2FaceStream, Windowing
    from facelib.tasks.blendshape_regressor import RegressorEngine
    from facelib.tasks.blendshapes import BlendshapeCapture
    from facelib.tasks.face_detection import FaceDetector
    from facelib.tasks.face_landmarker import FaceLandmarker
    from facelib.tasks.faceboxes import FaceBoxesDetector
    from facelib.tasks.head_pose import HeadPose
    from facelib.tasks.motion_transfer import FaceCropper, MotionTransfer
