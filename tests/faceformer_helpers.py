"""Shared fixtures for the Audio2Face / FaceFormer tests (tiny reference checkpoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TAGS = {"vocaset": "vocaset", "biwi": "BIWI"}


def convert(reference_dir: Path, out: Path, dataset: str, **options: object) -> Path:
    pytest.importorskip("torch")
    from facelib.models.convert.faceformer import build_package

    ckpt = reference_dir / f"faceformer_{TAGS[dataset]}_tiny_seed1.pth"
    build_package({"checkpoint": ckpt}, out, dataset=dataset, encoder_heads=4, **options)  # type: ignore[arg-type]
    return out


def reference(reference_dir: Path, dataset: str) -> dict[str, np.ndarray]:
    with np.load(reference_dir / f"faceformer_{TAGS[dataset]}_tiny_seed1_ref.npz") as z:
        return {k: z[k] for k in z.files}
