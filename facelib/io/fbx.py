"""Binary FBX (version 7.4) writer for blendshape animation.

The writer is our own (see docs/decisions.md): FBX's binary layout is a tree of named records
whose properties are typed scalars, strings and (zlib-compressed) arrays.  A file holds, per
mesh of the rig: a ``Model`` and its ``Geometry``, one ``BlendShape`` deformer with one
``BlendShapeChannel`` per blend shape (each with its ``Shape`` geometry: sparse point indices and
offsets), and for every channel an ``AnimationCurve`` of its ``DeformPercent`` (0..100) keyed at
the take's frame times (linear interpolation), in one ``AnimationStack`` "Take".  Units: the
rig's metres declared with ``UnitScaleFactor`` 100 (FBX counts in centimetres); Y up, +Z front.

Reading an FBX rig is in :mod:`facelib.io.fbx_rig` (ufbx).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelib.io.atomic import write_bytes_atomic
from facelib.io.face_rig import (
    BlendshapeTake,
    FaceRig,
    RigMesh,
    channel_weights,
    match_channels,
    sparse_offsets,
)

FBX_VERSION = 7400
KTIME_PER_SECOND = 46_186_158_000  # FBX time unit ("KTime" ticks per second)
_MAGIC = b"Kaydara FBX Binary  \x00\x1a\x00"
_FOOTER_ID = bytes.fromhex("fabcab09d0c8d466b176fb831cf7267e")
_FOOTER_MAGIC = bytes.fromhex("f85a8c6adef5d97eece90ce3758f290b")
_NULL_RECORD = b"\x00" * 13  # 7.4: three uint32 + one uint8

# FbxAnimCurveDef flags: linear interpolation | auto tangent | generic time-independent.
_KEY_FLAGS_LINEAR = 0x0004 | 0x0100 | 0x2000
# FBX's standard frame rates (GlobalSettings TimeMode); anything else is 14 = custom.
_TIME_MODES = {
    120.0: 1,
    100.0: 2,
    60.0: 3,
    50.0: 4,
    48.0: 5,
    30.0: 6,
    25.0: 10,
    24.0: 11,
    1000.0: 12,
    96.0: 15,
    72.0: 16,
}


# --- binary records ---------------------------------------------------------------------------


class _Node:
    """One FBX record: a name, typed properties and child records."""

    __slots__ = ("children", "name", "props")

    def __init__(self, name: str, *props: Any, children: Sequence[_Node] = ()) -> None:
        self.name = name
        self.props = props
        self.children = list(children)

    def add(self, name: str, *props: Any) -> _Node:
        node = _Node(name, *props)
        self.children.append(node)
        return node


class _Raw(bytes):
    """A raw-bytes property ('R')."""


class _I64(int):
    """A 64-bit integer property ('L')."""


def _prop(value: Any) -> bytes:
    if isinstance(value, _Raw):
        return b"R" + struct.pack("<I", len(value)) + bytes(value)
    if isinstance(value, bool):
        return b"C" + struct.pack("<?", value)
    if isinstance(value, _I64):
        return b"L" + struct.pack("<q", value)
    if isinstance(value, int):
        return b"I" + struct.pack("<i", value)
    if isinstance(value, float):
        return b"D" + struct.pack("<d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return b"S" + struct.pack("<I", len(data)) + data
    if isinstance(value, np.ndarray):
        code = {np.dtype("<f8"): b"d", np.dtype("<f4"): b"f", np.dtype("<i4"): b"i", np.dtype("<i8"): b"l"}
        arr = np.ascontiguousarray(value.reshape(-1))
        if arr.dtype not in code:
            raise TypeError(f"FBX arrays are f8/f4/i4/i8, got {arr.dtype}")
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        if len(raw) > 128:
            packed = zlib.compress(raw, 6)
            return code[arr.dtype] + struct.pack("<III", len(arr), 1, len(packed)) + packed
        return code[arr.dtype] + struct.pack("<III", len(arr), 0, len(raw)) + raw
    raise TypeError(f"no FBX property type for {type(value).__name__}")


def _encode(node: _Node, offset: int) -> bytes:
    """The record ``node`` starting at file offset ``offset`` (7.4: uint32 header fields)."""
    props = b"".join(_prop(p) for p in node.props)
    name = node.name.encode("ascii")
    head_len = 13 + len(name)
    body = bytearray()
    pos = offset + head_len + len(props)
    for child in node.children:
        data = _encode(child, pos)
        body += data
        pos += len(data)
    if node.children or not node.props:
        body += _NULL_RECORD
    end = offset + head_len + len(props) + len(body)
    return struct.pack("<IIIB", end, len(node.props), len(props), len(name)) + name + props + bytes(body)


def _document(nodes: Sequence[_Node]) -> bytes:
    out = bytearray(_MAGIC + struct.pack("<I", FBX_VERSION))
    for node in nodes:
        out += _encode(node, len(out))
    out += _NULL_RECORD
    out += _FOOTER_ID + b"\x00" * 4
    out += b"\x00" * (16 - len(out) % 16)
    out += struct.pack("<I", FBX_VERSION) + b"\x00" * 120 + _FOOTER_MAGIC
    return bytes(out)


def _p70(*entries: tuple[Any, ...]) -> _Node:
    return _Node("Properties70", children=[_Node("P", *e) for e in entries])


def _name(name: str, cls: str) -> str:
    return f"{name}\x00\x01{cls}"


# --- scene ------------------------------------------------------------------------------------


class _Ids:
    def __init__(self) -> None:
        self._next = 1_000_000

    def __call__(self) -> _I64:
        self._next += 1
        return _I64(self._next)


def _header(fps: float, stop_ticks: int) -> list[_Node]:
    ext = _Node("FBXHeaderExtension")
    ext.add("FBXHeaderVersion", 1003)
    ext.add("FBXVersion", FBX_VERSION)
    ext.add("EncryptionType", 0)
    stamp = ext.add("CreationTimeStamp")
    for key, value in (
        ("Version", 1000),
        ("Year", 2000),
        ("Month", 1),
        ("Day", 1),
        ("Hour", 0),
        ("Minute", 0),
        ("Second", 0),
        ("Millisecond", 0),
    ):
        stamp.add(key, value)
    ext.add("Creator", "facelib")
    mode = _TIME_MODES.get(round(fps, 3), 14)
    settings = _Node("GlobalSettings", children=[_Node("Version", 1000)])
    settings.children.append(
        _p70(
            ("UpAxis", "int", "Integer", "", 1),
            ("UpAxisSign", "int", "Integer", "", 1),
            ("FrontAxis", "int", "Integer", "", 2),
            ("FrontAxisSign", "int", "Integer", "", 1),
            ("CoordAxis", "int", "Integer", "", 0),
            ("CoordAxisSign", "int", "Integer", "", 1),
            ("OriginalUpAxis", "int", "Integer", "", 1),
            ("OriginalUpAxisSign", "int", "Integer", "", 1),
            ("UnitScaleFactor", "double", "Number", "", 100.0),
            ("OriginalUnitScaleFactor", "double", "Number", "", 100.0),
            ("TimeMode", "enum", "", "", mode),
            ("TimeSpanStart", "KTime", "Time", "", _I64(0)),
            ("TimeSpanStop", "KTime", "Time", "", _I64(stop_ticks)),
            ("CustomFrameRate", "double", "Number", "", float(fps)),
        )
    )
    return [
        ext,
        _Node("FileId", _Raw(b"facelib-fbx-0001")),
        _Node("CreationTime", "2000-01-01 00:00:00:000"),
        _Node("Creator", "facelib"),
        settings,
    ]


def _mesh_nodes(mesh: RigMesh, ids: _Ids) -> tuple[_Node, _Node, _I64, _I64]:
    geom_id, model_id = ids(), ids()
    poly = mesh.face_indices.astype(np.int32).copy()
    ends = np.cumsum(mesh.face_counts) - 1
    poly[ends] = -poly[ends] - 1  # FBX marks each polygon's last corner as -(index + 1)
    geom = _Node("Geometry", geom_id, _name(mesh.name, "Geometry"), "Mesh")
    geom.add("Vertices", mesh.points.astype(np.float64))
    geom.add("PolygonVertexIndex", poly)
    geom.add("GeometryVersion", 124)
    model = _Node("Model", model_id, _name(mesh.name, "Model"), "Mesh")
    model.add("Version", 232)
    model.children.append(_p70(("DefaultAttributeIndex", "int", "Integer", "", 0)))
    model.add("Shading", True)
    model.add("Culling", "CullingOff")
    return geom, model, geom_id, model_id


def build_fbx(rig: FaceRig, take: BlendshapeTake) -> bytes:
    """The FBX file (bytes) of ``rig`` animated by ``take`` (see the module docstring)."""
    match = match_channels(rig)
    ids = _Ids()
    ticks = np.round(take.times * KTIME_PER_SECOND).astype(np.int64)
    start, stop = int(ticks[0]), int(ticks[-1])
    objects = _Node("Objects")
    conns = _Node("Connections")
    stack_id, layer_id = ids(), ids()
    stack = objects.add("AnimationStack", stack_id, _name("Take", "AnimStack"), "")
    stack.children.append(
        _p70(
            ("LocalStart", "KTime", "Time", "", _I64(start)),
            ("LocalStop", "KTime", "Time", "", _I64(stop)),
            ("ReferenceStart", "KTime", "Time", "", _I64(start)),
            ("ReferenceStop", "KTime", "Time", "", _I64(stop)),
        )
    )
    objects.children.append(_Node("AnimationLayer", layer_id, _name("BaseLayer", "AnimLayer"), ""))
    conns.add("C", "OO", layer_id, stack_id)
    counts = {"Model": 0, "Geometry": 0, "Deformer": 0, "AnimationCurveNode": 0, "AnimationCurve": 0}
    for mesh, channels in zip(rig.meshes, match.channels):
        geom, model, geom_id, model_id = _mesh_nodes(mesh, ids)
        objects.children += [geom, model]
        conns.add("C", "OO", model_id, _I64(0))
        conns.add("C", "OO", geom_id, model_id)
        counts["Model"] += 1
        counts["Geometry"] += 1
        if not mesh.shape_names:
            continue
        deformer_id = ids()
        objects.add("Deformer", deformer_id, _name(mesh.name, "Deformer"), "BlendShape").add("Version", 100)
        conns.add("C", "OO", deformer_id, geom_id)
        counts["Deformer"] += 1
        weights = channel_weights(take, channels) * 100.0  # DeformPercent
        for s, shape_name in enumerate(mesh.shape_names):
            channel_id, shape_id = ids(), ids()
            channel = objects.add("Deformer", channel_id, _name(shape_name, "SubDeformer"), "BlendShapeChannel")
            channel.add("Version", 100)
            channel.add("DeformPercent", 0.0)
            channel.add("FullWeights", np.asarray([100.0]))
            channel.children.append(_p70(("DeformPercent", "Number", "", "A", 0.0)))
            idx, off = sparse_offsets(mesh.shape_offsets[s])
            shape = objects.add("Geometry", shape_id, _name(shape_name, "Geometry"), "Shape")
            shape.add("Version", 100)
            shape.add("Indexes", idx)
            shape.add("Vertices", off.astype(np.float64))
            shape.add("Normals", np.zeros(off.size, np.float64))
            conns.add("C", "OO", channel_id, deformer_id)
            conns.add("C", "OO", shape_id, channel_id)
            counts["Deformer"] += 1
            counts["Geometry"] += 1
            if channels[s] is None:
                continue
            node_id, curve_id = ids(), ids()
            node = objects.add("AnimationCurveNode", node_id, _name("DeformPercent", "AnimCurveNode"), "")
            node.children.append(_p70(("d|DeformPercent", "Number", "", "A", float(weights[0, s]))))
            curve = objects.add("AnimationCurve", curve_id, _name("", "AnimCurve"), "")
            values = weights[:, s].astype(np.float32)
            curve.add("Default", float(values[0]))
            curve.add("KeyVer", 4009)
            curve.add("KeyTime", ticks)
            curve.add("KeyValueFloat", values)
            curve.add("KeyAttrFlags", np.asarray([_KEY_FLAGS_LINEAR], np.int32))
            curve.add("KeyAttrDataFloat", np.asarray([0.0, 0.0, 9.419963346924634e-30, 0.0], np.float32))
            curve.add("KeyAttrRefCount", np.asarray([len(values)], np.int32))
            conns.add("C", "OO", node_id, layer_id)
            conns.add("C", "OP", node_id, channel_id, "DeformPercent")
            conns.add("C", "OP", curve_id, node_id, "d|DeformPercent")
            counts["AnimationCurveNode"] += 1
            counts["AnimationCurve"] += 1
    definitions = _Node("Definitions", children=[_Node("Version", 100)])
    types = {"GlobalSettings": 1, "AnimationStack": 1, "AnimationLayer": 1, **counts}
    definitions.add("Count", sum(types.values()))
    for kind, n in types.items():
        definitions.children.append(_Node("ObjectType", kind, children=[_Node("Count", n)]))
    document = _Node("Document", ids(), "Scene", "Scene")
    document.children.append(
        _p70(("SourceObject", "object", "", ""), ("ActiveAnimStackName", "KString", "", "", "Take"))
    )
    document.add("RootNode", _I64(0))
    documents = _Node("Documents", children=[_Node("Count", 1), document])
    takes = _Node("Takes", children=[_Node("Current", "Take")])
    take_node = takes.add("Take", "Take")
    take_node.add("FileName", "Take.tak")
    take_node.add("LocalTime", _I64(start), _I64(stop))
    take_node.add("ReferenceTime", _I64(start), _I64(stop))
    nodes = [*_header(take.fps, stop), documents, _Node("References"), definitions, objects, conns, takes]
    return _document(nodes)


def write_fbx(path: str | os.PathLike[str], rig: FaceRig, take: BlendshapeTake) -> Path:
    """Write ``rig`` animated by ``take`` as binary FBX 7.4 (atomically); returns the path."""
    return write_bytes_atomic(path, build_fbx(rig, take))
