"""TFLite sources of converted models: read a ``.tflite`` file's interface, record it in a card.

Some packages are converted from TFLite flatbuffers (the MediaPipe Face Landmarker: three
``.tflite`` models in ``face_landmarker.task``).  Their converter keeps each source ``.tflite``
beside its ONNX file and records, under the card's ``metadata["tflite"]``, one
:class:`TFLiteSource` per role: the file, its sha256, the sha256 of the ONNX file made from it,
and which TFLite tensor each ONNX input and output is.  A backend that runs TFLite (the LiteRT
plugin, ``facelib[litert]``) then runs the very model the ONNX was made from, behind the ONNX
session's interface.

:func:`read_interface` reads the names, shapes and element types of a ``.tflite`` file's graph
inputs and outputs straight from its flatbuffer (the TFLite schema: ``Model.subgraphs[0]``,
``SubGraph.tensors/inputs/outputs``, ``Tensor.shape/type/name/shape_signature``) with nothing but
:mod:`struct`, so converting with prebuilt ONNX needs no TFLite runtime.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from facelib.backends.base import TensorSpec
from facelib.errors import ConversionError, ModelCardError

#: Card metadata key holding the TFLite sources, role -> :meth:`TFLiteSource.to_dict`.
METADATA_KEY = "tflite"

#: TFLite ``TensorType`` enum values -> numpy dtype names (schema.fbs).
_TYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
}


class _Table:
    """One flatbuffer table: fields by index (vtable slot), each read on demand."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt_size = struct.unpack_from("<H", buf, vtable)[0]
        self._vtable = vtable

    def _field(self, index: int) -> int | None:
        slot = 4 + 2 * index
        if slot >= self._vt_size:
            return None
        offset = struct.unpack_from("<H", self.buf, self._vtable + slot)[0]
        return self.pos + offset if offset else None

    def _deref(self, at: int) -> int:
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def scalar(self, index: int, fmt: str, default: int) -> int:
        at = self._field(index)
        return default if at is None else int(struct.unpack_from("<" + fmt, self.buf, at)[0])

    def string(self, index: int) -> str:
        at = self._field(index)
        if at is None:
            return ""
        start = self._deref(at)
        length = struct.unpack_from("<I", self.buf, start)[0]
        return self.buf[start + 4 : start + 4 + length].decode("utf-8")

    def ints(self, index: int) -> list[int] | None:
        at = self._field(index)
        if at is None:
            return None
        start = self._deref(at)
        length = struct.unpack_from("<I", self.buf, start)[0]
        return list(struct.unpack_from(f"<{length}i", self.buf, start + 4))

    def tables(self, index: int) -> list[_Table]:
        at = self._field(index)
        if at is None:
            return []
        start = self._deref(at)
        length = struct.unpack_from("<I", self.buf, start)[0]
        return [_Table(self.buf, self._deref(start + 4 + 4 * i)) for i in range(length)]


def read_interface(model: bytes, what: str = "model") -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Inputs and outputs of a ``.tflite`` flatbuffer's main subgraph, in the model's order.

    A dimension the model leaves open (``-1`` in its ``shape_signature``) is ``None``.
    ``what`` names the model in errors.  Raises :class:`ConversionError` when ``model`` is not a
    TFLite flatbuffer (identifier ``TFL3`` at byte 4) or cannot be read.
    """
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ConversionError(f"{what} is not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        root = _Table(model, struct.unpack_from("<I", model, 0)[0])
        graph = root.tables(2)[0]  # Model.subgraphs
        tensors = graph.tables(0)  # SubGraph.tensors

        def spec(index: int) -> TensorSpec:
            tensor = tensors[index]
            shape = tensor.ints(7) or tensor.ints(0) or []  # shape_signature, else shape
            dtype = _TYPES.get(tensor.scalar(1, "b", 0), "unknown")
            return TensorSpec(tensor.string(3), tuple(None if d < 0 else d for d in shape), dtype)

        inputs = tuple(spec(i) for i in graph.ints(1) or [])
        outputs = tuple(spec(i) for i in graph.ints(2) or [])
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ConversionError(f"{what}: cannot read the TFLite flatbuffer: {exc}") from exc
    return inputs, outputs


def _fits(onnx: TensorSpec, tflite: TensorSpec) -> bool:
    """Same rank and element type; every dimension fixed on both sides equal."""
    if len(onnx.shape) != len(tflite.shape) or onnx.dtype != tflite.dtype:
        return False
    return all(not isinstance(a, int) or not isinstance(b, int) or a == b for a, b in zip(onnx.shape, tflite.shape))


def match_by_name(onnx: Sequence[TensorSpec], tflite: Sequence[TensorSpec], kind: str, what: str) -> dict[str, str]:
    """ONNX tensor name -> the TFLite tensor of the same name (tf2onnx keeps the TFLite graph's
    input and output names), checked to have the same rank, element type and fixed dimensions.

    Raises :class:`ConversionError` naming what does not line up.
    """
    by_name = {spec.name: spec for spec in tflite}
    problems = []
    for spec in onnx:
        other = by_name.get(spec.name)
        if other is None:
            problems.append(f"ONNX {kind} {spec.name!r} has no TFLite {kind} of that name")
        elif not _fits(spec, other):
            problems.append(f"{kind} {spec.name!r}: ONNX {spec.shape} {spec.dtype}, TFLite {other.shape} {other.dtype}")
    if len(onnx) != len(tflite):
        problems.append(f"{len(onnx)} ONNX {kind}s, {len(tflite)} TFLite {kind}s")
    if problems:
        raise ConversionError(f"{what}: the ONNX file and its TFLite source differ: " + "; ".join(problems))
    return {spec.name: spec.name for spec in onnx}


@attrs.frozen
class TFLiteSource:
    """The TFLite model one ONNX file of a package was converted from.

    Attributes
    ----------
    path:
        The ``.tflite`` file, relative to the package root.
    sha256:
        Its sha256.
    onnx_sha256:
        The sha256 of the ONNX file converted from it: an ONNX file changed afterwards (a
        quantized variant) no longer has this TFLite source.
    inputs, outputs:
        ONNX tensor name -> TFLite tensor name, in the ONNX model's order.
    rule:
        How the names were matched (for people reading the card).
    """

    path: str
    sha256: str
    onnx_sha256: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    rule: str = "same tensor names (tf2onnx keeps the TFLite graph's); layout and shapes kept"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, value: Any, role: str) -> TFLiteSource:
        """Read one entry of the card's ``metadata["tflite"]``; :class:`ModelCardError` if malformed."""
        try:
            fields = {f.name for f in attrs.fields(cls)}
            if not isinstance(value, Mapping) or not {"path", "sha256", "onnx_sha256", "inputs", "outputs"} <= set(
                value
            ):
                raise TypeError("needs path, sha256, onnx_sha256, inputs, outputs")
            return cls(**{k: v for k, v in value.items() if k in fields})
        except TypeError as exc:
            raise ModelCardError(f"metadata.{METADATA_KEY}.{role} is malformed: {exc}") from exc


def sources(metadata: Mapping[str, Any]) -> dict[str, TFLiteSource]:
    """The TFLite sources a card's metadata records, role -> :class:`TFLiteSource` (may be empty)."""
    raw = metadata.get(METADATA_KEY) or {}
    if not isinstance(raw, Mapping):
        raise ModelCardError(f"metadata.{METADATA_KEY} must map roles to TFLite sources")
    return {role: TFLiteSource.from_dict(value, role) for role, value in raw.items()}
