"""File format of the fake bmodels written by the TPU-MLIR doubles and read by the SAIL double.

A real bmodel is a flatbuffer of compiled TPU code; the fake one is a marker line plus JSON that
keeps, per graph (net), the chip, quantization, static stages or dynamic max shapes, and the
ONNX model (base64) the SAIL double runs with onnxruntime to compute real outputs.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

MAGIC = b"FACELIB-FAKE-BMODEL v1\n"


def write(path: str | Path, graphs: list[dict[str, Any]]) -> None:
    Path(path).write_bytes(MAGIC + json.dumps({"graphs": graphs}).encode())


def read(path: str | Path) -> list[dict[str, Any]]:
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a bmodel")
    graphs: list[dict[str, Any]] = json.loads(data[len(MAGIC) :])["graphs"]
    return graphs


def decode_onnx(text: str) -> bytes:
    return base64.b64decode(text)
