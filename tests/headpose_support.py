"""Helpers shared by the head-pose and face-detection tests: build packages from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FSANET_STEMS = {
    "capsule": "fsanet_capsule_3_16_2_21_5",
    "var_capsule": "fsanet_var_capsule_3_16_2_21_5",
    "noS_capsule": "fsanet_noS_capsule_3_16_2_192_5",
}
#: Keys of the reference npz for each variant.
REF_KEYS = {
    "capsule": "capsule_3_16_2_21_5",
    "var_capsule": "var_capsule_3_16_2_21_5",
    "noS_capsule": "noS_capsule_3_16_2_192_5",
}
#: The parity tolerance of issue 3, in degrees.
TOLERANCE_DEG = 0.01


def build_fsanet(models_dir: Path, out: Path, suffix: str = ".onnx", **options: object) -> Path:
    from facelib.models.convert.fsanet import build_package

    sources = {role: models_dir / "fsanet" / f"{stem}{suffix}" for role, stem in FSANET_STEMS.items()}
    return build_package(sources, out, **options).root  # type: ignore[arg-type]


def build_ultraface(models_dir: Path, out: Path, variant: str = "RFB-320") -> Path:
    from facelib.models.convert.ultraface import VARIANTS, build_package

    return build_package({"detector": models_dir / "ultraface" / VARIANTS[variant][0]}, out, variant=variant).root


def load_reference(reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(reference_dir / "fsanet_aflw_shared_ref.npz") as data:
        return {k: data[k] for k in data.files}
