"""The registry: every upstream artefact facelib can fetch, and the packages built from them.

An :class:`Artefact` is one released file (a TF graph, an ONNX file, a torch checkpoint, a
MediaPipe bundle): where upstream publishes it (URLs pinned to a commit or a versioned release),
its sha256 and size, its licence, and its path inside a *mirror* (a directory or web server laid
out like ``shared/assets``: ``models/<family>/<file>``).

A :class:`PackageSpec` says how a model package is made: which artefact plays each *source role*
of a converter (``facelib.models.convert.<name>:build_package``) and with which options.  Some
mirrors also hold *prebuilt* ONNX files for a package (``prebuilt``); they are used when a mirror
is configured so that users without the ``convert`` extra still get a package.

Facts recorded here were checked against the upstream repositories (git blob ids of the pinned
commits equal those of the mirrored files) and against ``shared/MANIFEST.tsv``.

Adding entries (plugins, tests)::

    from facelib.models import registry
    registry.register_artefact(Artefact(...))
    registry.register_package(PackageSpec(...))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from facelib.errors import ModelError

__all__ = [
    "ARTEFACTS",
    "DEFAULT_MODELS",
    "PACKAGES",
    "Artefact",
    "PackageSpec",
    "get_artefact",
    "get_package",
    "register_artefact",
    "register_package",
]


def _strs(value: Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class Artefact:
    """One upstream file.

    Attributes
    ----------
    name:
        Registry key, unique (e.g. ``"fsanet_capsule_pb"``).
    filename:
        The file's upstream name (e.g. ``"fsanet_capsule_3_16_2_21_5.pb"``).
    mirror_path:
        POSIX path of the file inside a mirror laid out like ``shared/assets``, also its path
        inside the download cache (``<cache>/downloads/<mirror_path>``).
    urls:
        Upstream download URLs, tried in order after the mirror; pinned to a commit or release.
        Empty for mirror-only files (prebuilt ONNX made by facelib developers).
    sha256, size:
        Expected hex sha256 and size in bytes; ``None`` only where truly unknown (then a download
        needs ``allow_unverified=True``; see docs/models.md).
    licence:
        Licence of the file as released (short: SPDX id or a few words).
    licence_note:
        Why, when the short form needs explaining (training data terms, relicensing).
    non_commercial:
        True when the licence or the training data forbid commercial use; downloads then need an
        explicit licence acceptance.
    manual:
        True when upstream only offers the file behind an interactive page (Google Drive folder,
        Yandex disk): facelib never scrapes those; the file must come from a mirror or be placed
        in the download cache by hand.
    homepage:
        Page a human can read (README section, model card).
    note:
        Anything else a user should know.
    """

    name: str
    filename: str
    mirror_path: str
    urls: tuple[str, ...] = attrs.field(converter=_strs, factory=tuple)
    sha256: str | None = None
    size: int | None = None
    licence: str = "unknown"
    licence_note: str = ""
    non_commercial: bool = False
    manual: bool = False
    homepage: str = ""
    note: str = ""

    @property
    def verifiable(self) -> bool:
        """Whether the file can be checked against a known sha256."""
        return self.sha256 is not None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


Converter = Callable[..., Any]


@attrs.frozen
class PackageSpec:
    """How to build one model package.

    Attributes
    ----------
    name:
        Package name as users type it (``"fsanet"``, ``"fomm-vox-256"``).
    task:
        The card's task (``head_pose``, ``blendshapes``, ``audio2face``, ``motion_transfer``,
        ``face_detection``).
    description:
        One line for ``facelib models list``.
    converter:
        ``"module:function"`` import string of the converter's ``build_package`` (or, for
        plugins and tests, the callable itself).
    sources:
        Converter source role -> artefact name.
    options:
        Keyword options passed to the converter.
    prebuilt:
        Role -> artefact name of prebuilt ONNX files a mirror may hold; merged over ``sources``
        (same role: replaces the upstream file; new role: an extra input the converter accepts).
    needs:
        Modules the converter imports to convert from ``sources`` alone (checked before any
        download so a missing ``convert`` extra fails fast).
    prebuilt_needs:
        Modules needed when the prebuilt files are used.
    """

    name: str
    task: str
    description: str
    converter: str | Converter
    sources: Mapping[str, str]
    options: Mapping[str, Any] = attrs.field(factory=dict)
    prebuilt: Mapping[str, str] = attrs.field(factory=dict)
    needs: tuple[str, ...] = attrs.field(converter=_strs, factory=tuple)
    prebuilt_needs: tuple[str, ...] = attrs.field(converter=_strs, factory=tuple)

    def artefacts(self, use_prebuilt: bool = False) -> dict[str, Artefact]:
        """Role -> artefact for a build from upstream files (or with the prebuilt ones)."""
        roles = dict(self.sources)
        if use_prebuilt:
            roles.update(self.prebuilt)
        return {role: get_artefact(name) for role, name in roles.items()}

    @property
    def licences(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for name in self.sources.values():
            seen[get_artefact(name).licence] = None
        return tuple(seen)

    @property
    def non_commercial(self) -> bool:
        return any(get_artefact(n).non_commercial for n in self.sources.values())

    @property
    def manual(self) -> bool:
        return any(get_artefact(n).manual for n in self.sources.values())

    def recipe(self) -> dict[str, Any]:
        """What identifies a build (a package made from another recipe is rebuilt)."""
        converter = self.converter if isinstance(self.converter, str) else _qualname(self.converter)
        return {
            "name": self.name,
            "converter": converter,
            "options": dict(self.options),
            "sources": {r: get_artefact(n).sha256 or n for r, n in sorted(self.sources.items())},
            "prebuilt": {r: get_artefact(n).sha256 or n for r, n in sorted(self.prebuilt.items())},
        }


def _qualname(func: Converter) -> str:
    return f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(func))}"


#: Every known artefact by name.
ARTEFACTS: dict[str, Artefact] = {}
#: Every known package by name.
PACKAGES: dict[str, PackageSpec] = {}


def register_artefact(artefact: Artefact, *, replace: bool = False) -> Artefact:
    """Add an artefact to the registry (``replace=True`` to overwrite one with the same name)."""
    if artefact.name in ARTEFACTS and not replace:
        raise ModelError(f"artefact {artefact.name!r} is already registered")
    ARTEFACTS[artefact.name] = artefact
    return artefact


def register_package(spec: PackageSpec, *, replace: bool = False) -> PackageSpec:
    """Add a package to the registry; every artefact it names must be registered first."""
    if spec.name in PACKAGES and not replace:
        raise ModelError(f"package {spec.name!r} is already registered")
    for name in [*spec.sources.values(), *spec.prebuilt.values()]:
        if name not in ARTEFACTS:
            raise ModelError(f"package {spec.name!r} names unknown artefact {name!r}")
    PACKAGES[spec.name] = spec
    return spec


def get_artefact(name: str) -> Artefact:
    try:
        return ARTEFACTS[name]
    except KeyError:
        raise ModelError(f"unknown artefact {name!r}; known: {', '.join(sorted(ARTEFACTS))}") from None


#: The one table of default model names: task (a model card's ``task``) -> hub name.  Tasks
#: (``Task.from_pretrained()`` without a name), the measuring tools and the CLI's ``--model`` /
#: ``--detector`` defaults all read it.
DEFAULT_MODELS: dict[str, str] = {
    "head_pose": "fsanet",
    "face_detection": "ultraface-rfb-320",
    "blendshapes": "mediapipe-face-landmarker",
    "audio2face": "faceformer-vocaset",
    "motion_transfer": "fomm-vox-256",
}


def get_package(name: str) -> PackageSpec:
    """The package spec called ``name``; the error lists the known names."""
    try:
        return PACKAGES[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}; known models: {', '.join(sorted(PACKAGES))} (see 'facelib models list')"
        ) from None


# --- the real upstream artefacts --------------------------------------------------------------

_GH_RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"

_FSANET_REPO = "shamangary/FSA-Net"
_FSANET_COMMIT = "4361d0e48103bb215d15734220c9d17e6812bb48"
_ULTRA_REPO = "Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB"
# version-RFB-320.onnx is unchanged since 0f9ca4a9; version-RFB-640.onnx was added in cc497be4
# (both blobs equal those of the mirrored files).
_ULTRA_COMMIT_320 = "0f9ca4a9fc80170fd505168fd1132b837141f7df"
_ULTRA_COMMIT_640 = "cc497be475371d891d5795e46fc80ebaddf683c5"
_3DDFA_REPO = "cleardusk/3DDFA_V2"
_3DDFA_COMMIT = "f3ec646695600230f60bb6d7de4a5dbe5aaa59f8"
_FACEFORMER_README = "https://github.com/EvelynFan/FaceFormer/blob/01f08f9c84b909ba1f94b89a96cdd7beba25e0bf/README.md"
_FOMM_README = "https://github.com/AliaksandrSiarohin/first-order-model#pre-trained-checkpoint"
_FOMM_DRIVE = "https://drive.google.com/open?id=1PyQJmkdCsAkOYwUyaj_l-l0as-iLDgeH"
_FOMM_YANDEX = "https://yadi.sk/d/lEw8uRm140L_eQ"

_FSANET = {
    # variant role: (file stem, pb sha256, pb size, onnx sha256, onnx size)
    "capsule": (
        "fsanet_capsule_3_16_2_21_5",
        "95d12028571084c6bf8f97825272e1f3324e075627024854fe1e584bd4b6dae1",
        1105763,
        "88e01b42b2dd36633dfe5d950b52d1c3d28968604d4ecb44c400741ad91f068a",
        1014907,
    ),
    "var_capsule": (
        "fsanet_var_capsule_3_16_2_21_5",
        "f9760f6d2a378de625d511337ec75e8400f02d2615e9713ca4e154b5d61fefb1",
        1107430,
        "a3068a820dce1d59d4eb82a435f2f52d6008d146fe9a38aca10f3f034c93e677",
        1016071,
    ),
    "noS_capsule": (
        "fsanet_noS_capsule_3_16_2_192_5",
        "96600aa7939b9ac027fab0531b823f933f80390e45f736ac939444ebdbd5c9e4",
        2912781,
        "9cf8c8082804ae13d3c5a7b97e5cde471d67fa6ff63c23274d4377259df9cc90",
        2830946,
    ),
}

_MEDIAPIPE_ONNX = {
    # role: (file stem, sha256, size)
    "detector": ("face_detector", "4e309e785ef31168bed55719db322de73549b24697d194390dd011c2c1ced203", 418457),
    "landmarks": (
        "face_landmarks_detector",
        "1ef653aee83d19d2d34939b029aba4e2d0274a556486758a1bcdd98380cd8f55",
        4920998,
    ),
    "blendshapes": ("face_blendshapes", "a3a994229f203f983e0c2db9613903a91725f8664beb6b5ac3bfd22c3e106037", 1883791),
}

_TF_ONNX_NOTE = "prebuilt ONNX (tf2onnx 1.17.0, opset 17) made by facelib developers; found on mirrors only"


def _builtin() -> None:
    for role, (stem, pb_sha, pb_size, onnx_sha, onnx_size) in _FSANET.items():
        path = f"pre-trained/converted-models/tf/{stem}.pb"
        register_artefact(
            Artefact(
                name=f"fsanet-{role}-pb",
                filename=f"{stem}.pb",
                mirror_path=f"models/fsanet/{stem}.pb",
                urls=(_GH_RAW.format(repo=_FSANET_REPO, commit=_FSANET_COMMIT, path=path),),
                sha256=pb_sha,
                size=pb_size,
                licence="Apache-2.0",
                homepage=f"https://github.com/{_FSANET_REPO}",
                note="TF frozen graph as released (input input_1:0 [N,64,64,3] BGR 0..255)",
            )
        )
        register_artefact(
            Artefact(
                name=f"fsanet-{role}-onnx",
                filename=f"{stem}.onnx",
                mirror_path=f"models/fsanet/{stem}.onnx",
                sha256=onnx_sha,
                size=onnx_size,
                licence="Apache-2.0",
                homepage=f"https://github.com/{_FSANET_REPO}",
                note=f"{_TF_ONNX_NOTE}, from {stem}.pb",
            )
        )
    register_package(
        PackageSpec(
            name="fsanet",
            task="head_pose",
            description="FSA-Net head pose, ensemble of the three released variants (yaw, pitch, roll)",
            converter="facelib.models.convert.fsanet:build_package",
            sources={role: f"fsanet-{role}-pb" for role in _FSANET},
            prebuilt={role: f"fsanet-{role}-onnx" for role in _FSANET},
            needs=("tensorflow", "tf2onnx"),
        )
    )

    for variant, commit, sha, size in (
        ("RFB-320", _ULTRA_COMMIT_320, "34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017", 1270727),
        ("RFB-640", _ULTRA_COMMIT_640, "8f4c659275977e7a3bfbfa339a9c769ad793df50f9c0baa8c14b11baa1646430", 1588012),
    ):
        name = f"ultraface-{variant.lower()}"
        register_artefact(
            Artefact(
                name=f"{name}-onnx",
                filename=f"version-{variant}.onnx",
                mirror_path=f"models/ultraface/version-{variant}.onnx",
                urls=(_GH_RAW.format(repo=_ULTRA_REPO, commit=commit, path=f"models/onnx/version-{variant}.onnx"),),
                sha256=sha,
                size=size,
                licence="MIT",
                homepage=f"https://github.com/{_ULTRA_REPO}",
            )
        )
        register_package(
            PackageSpec(
                name=name,
                task="face_detection",
                description=f"Ultra-Light-Fast face detector {variant} (ONNX as released)",
                converter="facelib.models.convert.ultraface:build_package",
                sources={"detector": f"{name}-onnx"},
                options={"variant": variant},
            )
        )

    register_artefact(
        Artefact(
            name="mediapipe-face-landmarker-task",
            filename="face_landmarker.task",
            mirror_path="models/mediapipe/face_landmarker.task",
            urls=(
                "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
                "face_landmarker.task",
            ),
            sha256="64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
            size=3758596,
            licence="Apache-2.0",
            homepage="https://ai.google.dev/edge/mediapipe/solutions/vision/face_landmarker",
            note="zip bundle: face_detector.tflite, face_landmarks_detector.tflite, face_blendshapes.tflite, "
            "geometry_pipeline_metadata_landmarks.binarypb",
        )
    )
    for role, (stem, sha, size) in _MEDIAPIPE_ONNX.items():
        register_artefact(
            Artefact(
                name=f"mediapipe-{role}-onnx",
                filename=f"{stem}.onnx",
                mirror_path=f"models/mediapipe/{stem}.onnx",
                sha256=sha,
                size=size,
                licence="Apache-2.0",
                note=f"{_TF_ONNX_NOTE}, from {stem}.tflite in face_landmarker.task",
            )
        )
    register_package(
        PackageSpec(
            name="mediapipe-face-landmarker",
            task="blendshapes",
            description="MediaPipe Face Landmarker float16/1: BlazeFace, 478-point mesh, 52 blendshapes",
            converter="facelib.models.convert.mediapipe:build_package",
            sources={"task": "mediapipe-face-landmarker-task"},
            prebuilt={role: f"mediapipe-{role}-onnx" for role in _MEDIAPIPE_ONNX},
            needs=("tensorflow", "tf2onnx"),
        )
    )

    register_artefact(
        Artefact(
            name="faceboxes-weights",
            filename="FaceBoxesProd.pth",
            mirror_path="models/faceboxes/FaceBoxesProd.pth",
            urls=(_GH_RAW.format(repo=_3DDFA_REPO, commit=_3DDFA_COMMIT, path="FaceBoxes/weights/FaceBoxesProd.pth"),),
            sha256="c0cb2b1e40710c0aa5fc32a8759b1496a0fe0a126c907ca0ffe35b4bd0709d09",
            size=4072492,
            licence="MIT",
            homepage=f"https://github.com/{_3DDFA_REPO}/tree/{_3DDFA_COMMIT}/FaceBoxes",
            note="legacy torch pickle of a state_dict; converters load it weights-only",
        )
    )
    register_package(
        PackageSpec(
            name="faceboxes",
            task="face_detection",
            description="FaceBoxes face detector (3DDFA_V2 weights)",
            converter="facelib.models.convert.faceboxes:build_package",
            sources={"weights": "faceboxes-weights"},
            needs=("torch",),
        )
    )

    for dataset, drive_id, licence, licence_note in (
        (
            "vocaset",
            "1GUQBk9FqUimoT6UNgU0gyQnjGv-2_Lyp",
            "VOCA/FLAME non-commercial",
            "FaceFormer code is MIT; these weights are trained on VOCASET in FLAME topology, whose licence "
            "allows non-commercial research use only",
        ),
        (
            "biwi",
            "1WR1P25EE7Aj1nDZ4MeRsqdyGnGzmkbPX",
            "BIWI research-only",
            "FaceFormer code is MIT; these weights are trained on the BIWI 3D Audiovisual Corpus, "
            "released for research use only",
        ),
    ):
        register_artefact(
            Artefact(
                name=f"faceformer-{dataset}-checkpoint",
                filename=f"{dataset}.pth",
                mirror_path=f"models/faceformer/{dataset}.pth",
                urls=(f"https://drive.google.com/file/d/{drive_id}/view?usp=sharing",),
                licence=licence,
                licence_note=licence_note,
                non_commercial=True,
                manual=True,
                homepage=_FACEFORMER_README,
                note="Google Drive link from the FaceFormer README (sha256/size not published): download it by "
                "hand, or use a mirror; it is a full-model state_dict including the fine-tuned wav2vec2",
            )
        )
        register_package(
            PackageSpec(
                name=f"faceformer-{dataset}",
                task="audio2face",
                description=f"FaceFormer speech-driven 3D face animation, {dataset} release",
                converter="facelib.models.convert.faceformer:build_package",
                sources={"checkpoint": f"faceformer-{dataset}-checkpoint"},
                options={"dataset": dataset},
                needs=("torch",),
            )
        )

    fomm_note = (
        "the checkpoints were released under the repository's CC BY-NC 4.0 licence (the code was "
        "relicensed MIT in 2023); trained on VoxCeleb / TaiChi YouTube videos: non-commercial research use"
    )
    fomm: tuple[tuple[str, str, str | None, int | None], ...] = (
        ("vox-256", "vox-cpk.pth.tar", "abb41ab1f279f26326c0d6e4d20702de6658364665aa1313daa7a63e89ea2b23", 728766691),
        ("taichi-256", "taichi-cpk.pth.tar", None, None),
    )
    for config, filename, cpk_sha, cpk_size in fomm:
        family = config.split("-")[0]
        register_artefact(
            Artefact(
                name=f"fomm-{family}-checkpoint",
                filename=filename,
                mirror_path=f"models/fomm/{filename}",
                urls=(_FOMM_DRIVE, _FOMM_YANDEX),
                sha256=cpk_sha,
                size=cpk_size,
                licence="CC-BY-NC-4.0",
                licence_note=fomm_note,
                non_commercial=True,
                manual=True,
                homepage=_FOMM_README,
                note="published in a Google Drive / Yandex disk folder (no direct link): download it by hand, "
                "or use a mirror; a dict with 'generator', 'kp_detector' and training state",
            )
        )
        register_package(
            PackageSpec(
                name=f"fomm-{config}",
                task="motion_transfer",
                description=f"First Order Motion Model, {config} release",
                converter="facelib.models.convert.fomm:build_package",
                sources={"checkpoint": f"fomm-{family}-checkpoint"},
                options={"config": config},
                needs=("torch",),
            )
        )


_builtin()
