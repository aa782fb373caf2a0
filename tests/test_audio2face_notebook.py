"""The Audio2Face example notebook runs headless (nbclient) and renders frames inline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_notebook_runs(shared: Path) -> None:
    pytest.importorskip("torch")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = ROOT / "examples" / "audio2face.ipynb"
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("FACELIB_SHARED")
    os.environ["FACELIB_SHARED"] = str(shared)
    try:
        nbclient.NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        if env_before is None:
            os.environ.pop("FACELIB_SHARED", None)
        else:
            os.environ["FACELIB_SHARED"] = env_before
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
