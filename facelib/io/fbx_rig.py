"""Reading a character's meshes and blend shapes from FBX (``--rig character.fbx``) with ufbx.

Needs the ``ufbx`` package (``facelib[export]``).  Points come out in metres, world space, Y up
(ufbx converts the file's units and axes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import InputError, MediaReadError, require
from facelib.io.face_rig import FaceRig, RigMesh


def _ufbx() -> Any:
    return require("ufbx", "export", "reading an FBX rig")


class UfbxKeeper:
    """Holds every ufbx wrapper object until the scene is done with.

    ufbx's Python bindings (0.0.5) crash the interpreter when a list wrapper is freed while
    elements taken from it are still in use, when a list is iterated, or when a wrapper outlives
    its scene; so lists are read by index, all wrappers are kept alive together with the scene,
    and :meth:`close` frees them newest first and the scene last.  Take wrappers only inside
    functions that return before :meth:`close` (their locals die with them), and hold the scene
    only through :attr:`scene`.
    """

    def __init__(self, scene: Any) -> None:
        self.objects: list[Any] = [scene]

    @property
    def scene(self) -> Any:
        """The ``ufbx.Scene`` these wrappers belong to."""
        return self.objects[0]

    def close(self) -> None:
        """Free every wrapper, the newest first and the scene last."""
        while self.objects:
            self.objects.pop()

    def keep(self, obj: Any) -> Any:
        self.objects.append(obj)
        return obj

    def items(self, seq: Any) -> list[Any]:
        """The elements of a ufbx list, read by index and kept alive."""
        self.objects.append(seq)
        out = [seq[i] for i in range(len(seq))]
        self.objects.extend(out)
        return out


def read_fbx_rig(path: str | os.PathLike[str]) -> FaceRig:
    """Meshes and blend shapes of an FBX character (points in metres, world space, Y up)."""
    ufbx = _ufbx()
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"FBX rig not found: {path}")
    try:
        scene = ufbx.load_file(
            str(path),
            target_axes=ufbx.axes_right_handed_y_up,
            target_unit_meters=1.0,
            space_conversion=ufbx.SpaceConversion.MODIFY_GEOMETRY,
        )
    except ufbx.UfbxError as exc:
        raise MediaReadError(f"{path} is not an FBX file ufbx can read: {exc}") from exc
    keeper = UfbxKeeper(scene)
    del scene
    try:
        meshes = _rig_meshes(keeper)
    finally:
        keeper.close()
    if not meshes:
        raise InputError(f"{path} has no mesh to animate")
    return FaceRig(tuple(meshes), str(path))


def _rig_meshes(keeper: UfbxKeeper) -> list[RigMesh]:
    """Every mesh of the scene (its wrappers die with this call, before the keeper closes)."""
    nodes = [node for node in keeper.items(keeper.scene.nodes) if keeper.keep(node.mesh) is not None]
    return [_rig_mesh(keeper, node, i) for i, node in enumerate(nodes)]


def _rig_mesh(keeper: UfbxKeeper, node: Any, index: int) -> RigMesh:
    mesh = keeper.keep(node.mesh)
    matrix = _matrix(node.geometry_to_world)
    points = np.asarray(memoryview(keeper.keep(mesh.vertices)), np.float64).reshape(-1, 3)
    world = points @ matrix[:3, :3].T + matrix[:3, 3]
    faces = np.asarray(memoryview(keeper.keep(mesh.faces)), np.int64).reshape(-1, 2)  # (index_begin, num_indices)
    corner_vertex = np.asarray(keeper.items(mesh.vertex_indices), np.int64)
    corners = np.concatenate([np.arange(b, b + n) for b, n in faces]) if len(faces) else np.zeros(0, np.int64)
    names: list[str] = []
    offsets: list[np.ndarray] = []
    for deformer in keeper.items(mesh.blend_deformers):
        for channel in keeper.items(deformer.channels):
            keyframes = keeper.items(channel.keyframes)
            if not keyframes:
                continue
            shape = keeper.keep(keyframes[-1].shape)
            idx = np.asarray(keeper.items(shape.offset_vertices), np.int64)
            off = np.asarray(memoryview(keeper.keep(shape.position_offsets)), np.float64).reshape(-1, 3)
            dense = np.zeros_like(points)
            dense[idx] = off @ matrix[:3, :3].T
            names.append(channel.name)
            offsets.append(dense)
    shape_offsets = np.stack(offsets) if offsets else np.zeros((0, len(points), 3))
    return RigMesh(
        node.name or mesh.name or f"mesh{index}",
        world.astype(np.float32),
        faces[:, 1].astype(np.int32),
        corner_vertex[corners].astype(np.int32),
        tuple(names),
        shape_offsets.astype(np.float32),
    )


def _matrix(m: Any) -> np.ndarray:
    """ufbx's affine matrix (columns c0..c3 of 3 values) as a 4x4 array."""
    out = np.eye(4)
    for c, col in enumerate((m.c0, m.c1, m.c2, m.c3)):
        out[:3, c] = (col.x, col.y, col.z)
    return out
