"""glTF 2.0 binary (GLB) export of blendshape animation, and a glTF/GLB rig reader (pygltflib).

Each rig mesh becomes a glTF mesh (one triangle primitive) whose morph targets are its blend
shapes (names in ``mesh.extras.targetNames``, the convention Blender, three.js, Unreal and Ready
Player Me use), on a node of the same name; one animation "Take" has, per mesh, a ``weights``
channel sampled at the take's frame times (seconds, linear interpolation).  Needs
``pygltflib`` (``facelib[export]``).  Units: metres, Y up, +Z front (glTF's own convention).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import InputError, MediaReadError, require
from facelib.io.atomic import atomic_path
from facelib.io.face_rig import BlendshapeTake, FaceRig, RigMesh, channel_weights, match_channels
from facelib.processing.arkit import arkit_index

_FLOAT, _UINT32 = 5126, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963


def _gltf() -> Any:
    return require("pygltflib", "export", "glTF export and glTF rigs")


class _Blob:
    """Accumulates the binary chunk and its buffer views / accessors."""

    def __init__(self, g: Any, gltf: Any) -> None:
        self.g, self.gltf, self.data = g, gltf, bytearray()

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False) -> int:
        arr = np.ascontiguousarray(array)
        comp = _UINT32 if arr.dtype == np.uint32 else _FLOAT
        self.data += b"\x00" * (-len(self.data) % 4)
        view = self.g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=arr.nbytes, target=target)
        self.data += arr.tobytes()
        self.gltf.bufferViews.append(view)
        acc = self.g.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1,
            componentType=comp,
            count=len(arr),
            type=kind,
        )
        if bounds:
            flat = arr.reshape(len(arr), -1)
            acc.min = flat.min(axis=0).astype(float).tolist()
            acc.max = flat.max(axis=0).astype(float).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def build_glb(rig: FaceRig, take: BlendshapeTake) -> bytes:
    """The GLB file (bytes) of ``rig`` animated by ``take`` (see the module docstring)."""
    g = _gltf()
    match = match_channels(rig)
    gltf = g.GLTF2(asset=g.Asset(generator="facelib", version="2.0"))
    gltf.scenes.append(g.Scene(nodes=[]))
    gltf.scene = 0
    blob = _Blob(g, gltf)
    times = blob.accessor((take.times - take.times[0]).astype(np.float32), "SCALAR", bounds=True)
    anim = g.Animation(name="Take", channels=[], samplers=[])
    for mesh, channels in zip(rig.meshes, match.channels):
        tris = mesh.triangles().astype(np.uint32).reshape(-1)
        attributes = g.Attributes(POSITION=blob.accessor(mesh.points.astype(np.float32), "VEC3", _ARRAY_BUFFER, True))
        targets = [
            {"POSITION": blob.accessor(off.astype(np.float32), "VEC3", _ARRAY_BUFFER, True)}
            for off in mesh.shape_offsets
        ]
        prim = g.Primitive(
            attributes=attributes,
            indices=blob.accessor(tris, "SCALAR", _ELEMENT_ARRAY_BUFFER),
            targets=targets or None,
        )
        gmesh = g.Mesh(name=mesh.name, primitives=[prim])
        if mesh.shape_names:
            gmesh.weights = [0.0] * len(mesh.shape_names)
            gmesh.extras = {"targetNames": list(mesh.shape_names)}
        gltf.meshes.append(gmesh)
        gltf.nodes.append(g.Node(name=mesh.name, mesh=len(gltf.meshes) - 1))
        gltf.scenes[0].nodes.append(len(gltf.nodes) - 1)
        if any(c is not None for c in channels):
            values = channel_weights(take, channels).reshape(-1)
            output = blob.accessor(values.astype(np.float32), "SCALAR")
            anim.samplers.append(g.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
            anim.channels.append(
                g.AnimationChannel(
                    sampler=len(anim.samplers) - 1,
                    target=g.AnimationChannelTarget(node=len(gltf.nodes) - 1, path="weights"),
                )
            )
    if anim.channels:
        gltf.animations.append(anim)
    gltf.buffers.append(g.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    return bytes(b"".join(gltf.save_to_bytes()))


def write_glb(path: str | os.PathLike[str], rig: FaceRig, take: BlendshapeTake) -> Path:
    """Write ``rig`` animated by ``take`` as GLB (atomically); returns the path."""
    data = build_glb(rig, take)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# --- reading a rig ------------------------------------------------------------------------------


_DTYPES = {5126: "<f4", 5125: "<u4", 5123: "<u2", 5121: "u1", 5122: "<i2", 5120: "i1"}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _read_view(gltf: Any, blob: bytes, view_index: int, offset: int, count: int, dtype: str, width: int) -> np.ndarray:
    view = gltf.bufferViews[view_index]
    start = (view.byteOffset or 0) + offset
    item = np.dtype(dtype).itemsize * width
    stride = view.byteStride or item
    raw = (
        np.frombuffer(blob, np.uint8, count=stride * (count - 1) + item, offset=start)
        if count
        else np.zeros(0, np.uint8)
    )
    rows = np.lib.stride_tricks.as_strided(raw, shape=(count, item), strides=(stride, 1))
    return rows.copy().view(dtype).reshape(count, width)


def _read_accessor(gltf: Any, blob: bytes, index: int) -> np.ndarray:
    """An accessor's data as (count,) or (count, width), sparse substitutions applied."""
    acc = gltf.accessors[index]
    dtype, width = _DTYPES[acc.componentType], _WIDTHS[acc.type]
    if acc.bufferView is None:
        data = np.zeros((acc.count, width), dtype)
    else:
        data = _read_view(gltf, blob, acc.bufferView, acc.byteOffset or 0, acc.count, dtype, width)
    sparse = acc.sparse
    if sparse is not None and sparse.count:
        idx = _read_view(
            gltf,
            blob,
            sparse.indices.bufferView,
            sparse.indices.byteOffset or 0,
            sparse.count,
            _DTYPES[sparse.indices.componentType],
            1,
        )[:, 0]
        data[idx.astype(np.int64)] = _read_view(
            gltf, blob, sparse.values.bufferView, sparse.values.byteOffset or 0, sparse.count, dtype, width
        )
    if acc.normalized and dtype != "<f4":
        data = data.astype(np.float32) / np.float32(np.iinfo(np.dtype(dtype)).max)
    return data[:, 0] if width == 1 else data


def _node_matrices(gltf: Any) -> dict[int, np.ndarray]:
    """World matrix of every node reached from the scene(s)."""
    out: dict[int, np.ndarray] = {}

    def local(node: Any) -> np.ndarray:
        if node.matrix:
            return np.asarray(node.matrix, np.float64).reshape(4, 4).T
        t = np.eye(4)
        t[:3, 3] = node.translation or (0, 0, 0)
        x, y, z, w = node.rotation or (0, 0, 0, 1)
        r = np.eye(4)
        r[:3, :3] = [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
        s = np.diag([*(node.scale or (1, 1, 1)), 1.0])
        return t @ r @ s

    def walk(index: int, parent: np.ndarray) -> None:
        world = parent @ local(gltf.nodes[index])
        out[index] = world
        for child in gltf.nodes[index].children or []:
            walk(child, world)

    roots = [n for s in gltf.scenes for n in (s.nodes or [])] or list(range(len(gltf.nodes)))
    for root in roots:
        walk(root, np.eye(4))
    return out


def read_gltf_rig(path: str | os.PathLike[str]) -> FaceRig:
    """Meshes and morph targets of a glTF/GLB character (world space, metres, Y up).

    Target names come from ``mesh.extras.targetNames`` (or the first primitive's
    ``extras.targetNames``); a mesh's primitives are merged into one mesh.
    """
    g = _gltf()
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"glTF rig not found: {path}")
    try:
        gltf = g.GLTF2().load(str(path))
        gltf.convert_buffers(g.BufferFormat.BINARYBLOB)
        blob = gltf.binary_blob() or b""
    except Exception as exc:  # pygltflib raises many types on damaged files
        raise MediaReadError(f"{path} is not a glTF file pygltflib can read: {type(exc).__name__}: {exc}") from exc
    meshes = []
    for index, world in _node_matrices(gltf).items():
        node = gltf.nodes[index]
        if node.mesh is None:
            continue
        gmesh = gltf.meshes[node.mesh]
        names = _target_names(gmesh)
        points, tris, offsets = [], [], []
        base = 0
        for prim in gmesh.primitives:
            pos = _read_accessor(gltf, blob, prim.attributes.POSITION).astype(np.float64)
            idx = (
                _read_accessor(gltf, blob, prim.indices).astype(np.int64)
                if prim.indices is not None
                else np.arange(len(pos))
            )
            points.append(pos)
            tris.append(idx.reshape(-1, 3) + base)
            targets = prim.targets or []
            offs = [
                _read_accessor(gltf, blob, t["POSITION"]) if t.get("POSITION") is not None else np.zeros_like(pos)
                for t in targets
            ]
            offsets.append(np.stack(offs) if offs else np.zeros((0, len(pos), 3)))
            base += len(pos)
        n_shapes = min(len(o) for o in offsets) if offsets else 0
        names = (names + [f"target{i}" for i in range(len(names), n_shapes)])[:n_shapes]
        pts = np.concatenate(points)
        world_pts = pts @ world[:3, :3].T + world[:3, 3]
        off = np.concatenate([o[:n_shapes] for o in offsets], axis=1) @ world[:3, :3].T
        faces = np.concatenate(tris).astype(np.int32)
        meshes.append(
            RigMesh(
                node.name or gmesh.name or f"mesh{index}",
                world_pts.astype(np.float32),
                np.full(len(faces), 3, np.int32),
                faces.reshape(-1),
                tuple(names),
                off.astype(np.float32).reshape(n_shapes, len(pts), 3),
            )
        )
    if not meshes:
        raise InputError(f"{path} has no mesh to animate")
    return FaceRig(tuple(meshes), str(path))


def animate_gltf_rig(rig_path: str | os.PathLike[str], path: str | os.PathLike[str], take: BlendshapeTake) -> Path:
    """Write the whole glTF/GLB character ``rig_path`` as GLB with ``take`` added as an animation.

    Everything the character has (materials, textures, skeleton, skinning, other animations) is
    kept; a new animation "Take" drives the ``weights`` of every mesh node whose morph targets
    have ARKit names (targets without one stay at 0).  Raises InputError when no target matches.
    """
    g = _gltf()
    rig = Path(rig_path)
    try:
        gltf = g.GLTF2().load(str(rig))
        if len(gltf.buffers) > 1:
            raise InputError(f"{rig} has {len(gltf.buffers)} buffers; pack it into one GLB first")
        gltf.convert_buffers(g.BufferFormat.BINARYBLOB)
        data = bytearray(gltf.binary_blob() or b"")
    except InputError:
        raise
    except Exception as exc:  # pygltflib raises many types on damaged files
        raise MediaReadError(f"{rig} is not a glTF file pygltflib can read: {type(exc).__name__}: {exc}") from exc
    if not gltf.buffers:
        gltf.buffers.append(g.Buffer(byteLength=0))
    blob = _Blob(g, gltf)
    blob.data = data
    times = None
    anim = g.Animation(name="Take", channels=[], samplers=[])
    for index, node in enumerate(gltf.nodes):
        if node.mesh is None:
            continue
        gmesh = gltf.meshes[node.mesh]
        names = _target_names(gmesh)
        channels = [arkit_index(n) for n in names]
        if not any(c is not None for c in channels):
            continue
        if times is None:
            times = blob.accessor((take.times - take.times[0]).astype(np.float32), "SCALAR", bounds=True)
        values = channel_weights(take, channels).reshape(-1)
        output = blob.accessor(values.astype(np.float32), "SCALAR")
        anim.samplers.append(g.AnimationSampler(input=times, output=output, interpolation="LINEAR"))
        target = g.AnimationChannelTarget(node=index, path="weights")
        anim.channels.append(g.AnimationChannel(sampler=len(anim.samplers) - 1, target=target))
    if not anim.channels:
        raise InputError(f"no morph target of the rig {rig} has an ARKit name; rename them (e.g. jawOpen)")
    gltf.animations.append(anim)
    gltf.buffers[0].byteLength = len(blob.data)
    gltf.buffers[0].uri = None
    gltf.set_binary_blob(bytes(blob.data))
    with atomic_path(path) as tmp:
        tmp.write_bytes(bytes(b"".join(gltf.save_to_bytes())))
    return Path(path)


def _target_names(gmesh: Any) -> list[str]:
    """A glTF mesh's morph target names (``extras.targetNames`` of the mesh or its first primitive)."""
    extras = gmesh.extras or {}
    names = list(extras.get("targetNames") or [])
    if not names and gmesh.primitives and gmesh.primitives[0].extras:
        names = list(gmesh.primitives[0].extras.get("targetNames") or [])
    count = len(gmesh.primitives[0].targets or []) if gmesh.primitives else 0
    return (names + [f"target{i}" for i in range(len(names), count)])[:count]
