"""The double's .om container: magic, header length, JSON header, the ONNX bytes."""

from __future__ import annotations

import json
import struct
from typing import Any

MAGIC = b"OMDOUBLE"


def write(path: str, header: dict[str, Any], onnx_bytes: bytes) -> None:
    blob = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<Q", len(blob)) + blob + onnx_bytes)


def read(path: str) -> tuple[dict[str, Any], bytes]:
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.startswith(MAGIC):
        raise ValueError("not an om file")
    (size,) = struct.unpack("<Q", data[8:16])
    return json.loads(data[16 : 16 + size]), data[16 + size :]
