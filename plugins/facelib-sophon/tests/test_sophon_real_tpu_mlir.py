"""The real TPU-MLIR compiler on FSA-Net, when it is installed (it cannot be on Python != 3.10)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from facelib.backends import CompileRequest
from facelib.backends.base import ShapeRange

_REASON = (
    "TPU-MLIR is not installed: every tpu_mlir release on PyPI requires Python >=3.10,<3.11 and this is "
    f"Python {sys.version_info.major}.{sys.version_info.minor}; run this test in a Python 3.10 environment with "
    "pip install 'tpu_mlir[onnx]' (or in the sophgo/tpuc_dev docker image)"
)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("tpu_mlir") is None or shutil.which("model_transform") is None, reason=_REASON
)
def test_real_tpu_mlir_compiles_fsanet(models_dir: Path, tmp_path: Path) -> None:
    from facelib_sophon import SophonCompileOptions, compile_onnx

    from facelib.testing.model_cases import fsanet_crops

    crops = fsanet_crops(models_dir)
    request = CompileRequest(
        models_dir / "fsanet/fsanet_capsule_3_16_2_21_5.onnx",
        tmp_path / "fsanet.bmodel",
        shapes={"input_1:0": ShapeRange((1, 64, 64, 3), (1, 64, 64, 3), (4, 64, 64, 3))},
        calibration=[{"input_1:0": c[None]} for c in crops],
    )
    # model_deploy compares the bmodel (simulated on the host) with the top-level MLIR, which
    # model_transform compared with onnxruntime: both on the real AFLW2000 crops.
    out = compile_onnx(request, SophonCompileOptions(chip="bm1684x"))
    assert out.is_file() and out.stat().st_size > 100_000
