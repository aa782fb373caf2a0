"""USD export (usd-core): UsdSkel blend-shape animation, time-sampled mesh animation, and a USD rig reader.

Blendshape animation (``write_usd_blendshapes``)::

    /Face                  SkelRoot (default prim)
      Skeleton             Skeleton, one joint "root"; skel:animationSource -> Skeleton/Take
        Take               SkelAnimation: blendShapes (ARKit names on the rig), blendShapeWeights
                           time-sampled at the take's frames
      <mesh>               Mesh bound to the skeleton: skel:blendShapes, skel:blendShapeTargets
        <shape>            BlendShape: offsets, pointIndices (the points that move)

Mesh animation (``write_usd_mesh_animation``, Audio2Face vertices): ``/Face/Mesh`` with the
template's polygons and time-sampled ``points``, and ``/Face/Audio`` (UsdMediaSpatialAudio)
pointing at the speech placed beside the file.

Time codes are frames of the take's fps (``timeCodesPerSecond`` = ``framesPerSecond`` = fps;
a frame at t seconds is at time code t * fps).  Metres (``metersPerUnit`` 1), Y up.  Needs
``usd-core`` (``facelib[export]``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from facelib.errors import InputError, MediaReadError, MissingDependencyError
from facelib.io.atomic import atomic_path, copy_file_atomic
from facelib.io.face_rig import BlendshapeTake, FaceRig, RigMesh, match_channels, sparse_offsets


def _pxr() -> Any:
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdMedia, UsdSkel, Vt
    except ImportError as exc:
        raise MissingDependencyError("usd-core", "export", "USD export") from exc
    return Gf, Sdf, Usd, UsdGeom, UsdMedia, UsdSkel, Vt


def _prim_name(name: str, taken: set[str]) -> str:
    """A valid, unique USD prim name for ``name``."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    if base[0].isdigit():
        base = "_" + base
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def _new_stage(tmp: Path, fps: float, start: float, end: float) -> Any:
    _, _, Usd, UsdGeom, _, _, _ = _pxr()
    stage = Usd.Stage.CreateNew(str(tmp))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    stage.SetStartTimeCode(start)
    stage.SetEndTimeCode(end)
    return stage


def _define_mesh(stage: Any, path: str, mesh: RigMesh) -> Any:
    _, _, _, UsdGeom, _, _, Vt = _pxr()
    prim = UsdGeom.Mesh.Define(stage, path)
    prim.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(mesh.points.astype(np.float32)))
    prim.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(mesh.face_counts.astype(np.int32)))
    prim.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(mesh.face_indices.astype(np.int32)))
    prim.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    prim.CreateExtentAttr([tuple(mesh.points.min(0).tolist()), tuple(mesh.points.max(0).tolist())])
    return prim


def write_usd_blendshapes(path: str | os.PathLike[str], rig: FaceRig, take: BlendshapeTake) -> Path:
    """Write ``rig`` animated by ``take`` as UsdSkel blend shapes (atomically); returns the path."""
    Gf, Sdf, _, _, _, UsdSkel, Vt = _pxr()
    match = match_channels(rig)
    frames = take.frames
    with atomic_path(path) as tmp:
        stage = _new_stage(tmp, take.fps, float(frames[0]), float(frames[-1]))
        root = UsdSkel.Root.Define(stage, "/Face")
        stage.SetDefaultPrim(root.GetPrim())
        skel = UsdSkel.Skeleton.Define(stage, "/Face/Skeleton")
        skel.CreateJointsAttr(["root"])
        identity = Vt.Matrix4dArray([Gf.Matrix4d(1.0)])
        skel.CreateBindTransformsAttr(identity)
        skel.CreateRestTransformsAttr(identity)
        anim = UsdSkel.Animation.Define(stage, "/Face/Skeleton/Take")
        # The animation drives the rig's own blend-shape names; each takes its ARKit column.
        driven = _driven_names(rig, match)
        names, columns = list(driven), list(driven.values())
        anim.CreateJointsAttr(["root"])
        anim.CreateTranslationsAttr(Vt.Vec3fArray([Gf.Vec3f(0, 0, 0)]))
        anim.CreateRotationsAttr(Vt.QuatfArray([Gf.Quatf(1, 0, 0, 0)]))
        anim.CreateScalesAttr(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)]))
        anim.CreateBlendShapesAttr(names)
        weights_attr = anim.CreateBlendShapeWeightsAttr()
        for i, frame in enumerate(frames):
            weights_attr.Set(Vt.FloatArray.FromNumpy(take.weights[i, columns].astype(np.float32)), float(frame))
        UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
        taken: set[str] = {"Skeleton"}
        for mesh in rig.meshes:
            mesh_path = f"/Face/{_prim_name(mesh.name, taken)}"
            prim = _define_mesh(stage, mesh_path, mesh)
            binding = UsdSkel.BindingAPI.Apply(prim.GetPrim())
            binding.CreateSkeletonRel().SetTargets([skel.GetPath()])
            binding.CreateJointIndicesPrimvar(constant=True, elementSize=1).Set(Vt.IntArray([0]))
            binding.CreateJointWeightsPrimvar(constant=True, elementSize=1).Set(Vt.FloatArray([1.0]))
            binding.CreateGeomBindTransformAttr(Gf.Matrix4d(1.0))
            tokens, targets = [], []
            shape_taken: set[str] = set()
            for s, shape_name in enumerate(mesh.shape_names):
                shape_path = f"{mesh_path}/{_prim_name(shape_name, shape_taken)}"
                shape = UsdSkel.BlendShape.Define(stage, shape_path)
                idx, off = sparse_offsets(mesh.shape_offsets[s])
                shape.CreateOffsetsAttr(Vt.Vec3fArray.FromNumpy(off))
                shape.CreatePointIndicesAttr(Vt.IntArray.FromNumpy(idx))
                tokens.append(shape_name)
                targets.append(Sdf.Path(shape_path))
            if tokens:
                binding.CreateBlendShapesAttr(tokens)
                binding.CreateBlendShapeTargetsRel().SetTargets(targets)
        stage.GetRootLayer().Save()
        del stage
    return Path(path)


def _driven_names(rig: FaceRig, match: Any) -> dict[str, int]:
    """Rig blend-shape name -> ARKit index, for the names some ARKit shape drives (first seen order)."""
    out: dict[str, int] = {}
    for mesh, channels in zip(rig.meshes, match.channels):
        for name, idx in zip(mesh.shape_names, channels):
            if idx is not None:
                out.setdefault(name, idx)
    return out


def write_usd_mesh_animation(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    faces: np.ndarray,
    fps: float,
    audio: str | os.PathLike[str] | None = None,
) -> tuple[Path, int]:
    """Write (V, 3) vertex frames (metres, Y up) as a USD mesh with time-sampled points.

    ``faces`` (F, 3) int triangles of the template.  ``audio``: a sound file copied beside the
    USD (``<stem>.<ext>``) and referenced by a UsdMediaSpatialAudio prim starting at frame 0.
    Frames are written as they come.  Returns the path and the number of frames.
    """
    _, Sdf, _, UsdGeom, UsdMedia, _, Vt = _pxr()
    target = Path(path)
    tri = np.asarray(faces, np.int32).reshape(-1, 3)
    if not len(tri):
        raise InputError("a USD mesh animation needs the template's triangles")
    count = 0
    sound = _copy_audio(audio, target) if audio is not None else None
    try:
        with atomic_path(target) as tmp:
            stage = _new_stage(tmp, fps, 0.0, 0.0)
            root = UsdGeom.Xform.Define(stage, "/Face")
            stage.SetDefaultPrim(root.GetPrim())
            mesh = UsdGeom.Mesh.Define(stage, "/Face/Mesh")
            mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(tri), 3, np.int32)))
            mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(tri.reshape(-1)))
            mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
            points = mesh.CreatePointsAttr()
            extent = mesh.CreateExtentAttr()
            n_points = None
            for frame in frames:
                v = np.asarray(frame, np.float32).reshape(-1, 3)
                if n_points is None:
                    n_points = len(v)
                    if int(tri.max()) >= n_points:
                        raise InputError(f"template triangles index {int(tri.max())} but frames have {n_points} points")
                elif len(v) != n_points:
                    raise InputError(f"frame {count} has {len(v)} points, the first had {n_points}")
                points.Set(Vt.Vec3fArray.FromNumpy(v), float(count))
                extent.Set([tuple(v.min(0).tolist()), tuple(v.max(0).tolist())], float(count))
                count += 1
            if count == 0:
                raise InputError("no frames to write")
            stage.SetEndTimeCode(float(count - 1))
            if sound is not None:
                clip = UsdMedia.SpatialAudio.Define(stage, "/Face/Audio")
                clip.CreateFilePathAttr(Sdf.AssetPath(f"./{sound.name}"))
                clip.CreateAuralModeAttr(UsdMedia.Tokens.nonSpatial)
            stage.GetRootLayer().Save()
            del stage
    except BaseException:
        if sound is not None:
            sound.unlink(missing_ok=True)
        raise
    return target, count


def _copy_audio(audio: str | os.PathLike[str], target: Path) -> Path:
    """Copy the speech beside ``target`` as ``<stem><audio suffix>`` (atomically)."""
    src = Path(audio)
    if not src.is_file():
        raise MediaReadError(f"audio not found: {src}")
    return copy_file_atomic(src, target.with_suffix(src.suffix.lower()))


# --- reading ------------------------------------------------------------------------------------


def read_usd_rig(path: str | os.PathLike[str]) -> FaceRig:
    """Meshes and UsdSkel blend shapes of a USD character (world space, metres, Y up).

    Shape names are the mesh's ``skel:blendShapes`` tokens (what a SkelAnimation drives).
    """
    _, _, Usd, UsdGeom, _, UsdSkel, _ = _pxr()
    path = Path(path)
    if not path.is_file():
        raise MediaReadError(f"USD rig not found: {path}")
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise MediaReadError(f"{path} is not a USD file usd-core can open")
    scale = UsdGeom.GetStageMetersPerUnit(stage) or 1.0
    z_up = UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    to_y_up = np.asarray([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float64) if z_up else np.eye(3)
    cache = UsdGeom.XformCache()
    meshes = []
    for prim in stage.Traverse():
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        pts = np.asarray(mesh.GetPointsAttr().Get() or [], np.float64).reshape(-1, 3)
        world = np.asarray(cache.GetLocalToWorldTransform(prim), np.float64)  # row-vector convention
        rot = world[:3, :3] @ to_y_up.T * scale
        points = pts @ rot + world[3, :3] @ to_y_up.T * scale
        counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get() or [], np.int32)
        indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get() or [], np.int32)
        binding = UsdSkel.BindingAPI(prim)
        tokens = list(binding.GetBlendShapesAttr().Get() or []) if binding.GetBlendShapesAttr() else []
        targets = binding.GetBlendShapeTargetsRel().GetTargets() if binding.GetBlendShapeTargetsRel() else []
        offsets = []
        for target in targets[: len(tokens)]:
            shape = UsdSkel.BlendShape(stage.GetPrimAtPath(target))
            off = np.asarray(shape.GetOffsetsAttr().Get() or [], np.float64).reshape(-1, 3)
            idx = shape.GetPointIndicesAttr().Get()
            dense = np.zeros_like(pts)
            if idx is not None and len(idx):
                dense[np.asarray(idx, np.int64)] = off
            else:
                dense[: len(off)] = off
            offsets.append(dense @ rot)
        names = tuple(str(t) for t in tokens[: len(offsets)])
        shape_offsets = np.stack(offsets).astype(np.float32) if offsets else np.zeros((0, len(pts), 3), np.float32)
        meshes.append(RigMesh(prim.GetName(), points.astype(np.float32), counts, indices, names, shape_offsets))
    if not meshes:
        raise InputError(f"{path} has no mesh to animate")
    return FaceRig(tuple(meshes), str(path))


def animate_usd_rig(rig_path: str | os.PathLike[str], path: str | os.PathLike[str], take: BlendshapeTake) -> Path:
    """Write a USD animation layer over the character ``rig_path`` (kept whole, as a sublayer).

    The output's root layer sublayers the character (by a path relative to the output, so keep
    the two together) and adds, under every Skeleton that meshes with ARKit-named blend shapes
    are bound to, a SkelAnimation "FacelibTake" with those shapes' weights, made the skeleton's
    ``skel:animationSource``; the joints keep the pose of the animation they had (or their rest
    pose).  Raises InputError when no bound mesh has an ARKit-named blend shape.
    """
    from facelib.processing.arkit import arkit_index

    _, Sdf, Usd, _, _, UsdSkel, Vt = _pxr()
    rig = Path(rig_path).resolve()
    target = Path(path)
    frames = take.frames
    with atomic_path(target) as tmp:
        stage = _new_stage(tmp, take.fps, float(frames[0]), float(frames[-1]))
        stage.GetRootLayer().subLayerPaths.append(os.path.relpath(rig, target.resolve().parent))
        source = Usd.Stage.Open(str(rig))
        if source is not None and source.GetDefaultPrim():
            stage.SetDefaultPrim(stage.GetPrimAtPath(source.GetDefaultPrim().GetPath()))
        driven: dict[str, dict[str, int]] = {}
        for prim in stage.Traverse():
            binding = UsdSkel.BindingAPI(prim)
            tokens = binding.GetBlendShapesAttr().Get() if prim.HasAPI(UsdSkel.BindingAPI) else None
            skel = binding.GetInheritedSkeleton() if tokens else None
            if not tokens or not skel:
                continue
            names = driven.setdefault(str(skel.GetPath()), {})
            for token in tokens:
                idx = arkit_index(str(token))
                if idx is not None:
                    names.setdefault(str(token), idx)
        driven = {k: v for k, v in driven.items() if v}
        if not driven:
            raise InputError(
                f"no mesh of the USD rig {rig} bound to a Skeleton has an ARKit-named blend shape; "
                "rename its skel:blendShapes (e.g. jawOpen)"
            )
        for skel_path, names in driven.items():
            skel = UsdSkel.Skeleton(stage.GetPrimAtPath(skel_path))
            skel_binding = UsdSkel.BindingAPI(skel.GetPrim())
            old = skel_binding.GetAnimationSourceRel().GetTargets() if skel_binding.GetAnimationSourceRel() else []
            anim = UsdSkel.Animation.Define(stage, f"{skel_path}/FacelibTake")
            _copy_pose(anim, UsdSkel.Animation(stage.GetPrimAtPath(old[0])) if old else None, skel, Vt)
            anim.CreateBlendShapesAttr(list(names))
            columns = list(names.values())
            weights = anim.CreateBlendShapeWeightsAttr()
            for i, frame in enumerate(frames):
                weights.Set(Vt.FloatArray.FromNumpy(take.weights[i, columns].astype(np.float32)), float(frame))
            UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([Sdf.Path(anim.GetPath())])
        stage.GetRootLayer().Save()
        del stage
    return target


def _copy_pose(anim: Any, old: Any, skel: Any, Vt: Any) -> None:
    """Give ``anim`` the joints and (first-time) pose of ``old``, or of the skeleton's rest pose."""
    from pxr import Gf, UsdSkel

    if old and old.GetPrim().IsValid() and old.GetJointsAttr().Get():
        anim.CreateJointsAttr(old.GetJointsAttr().Get())
        for get, create in (
            (old.GetTranslationsAttr, anim.CreateTranslationsAttr),
            (old.GetRotationsAttr, anim.CreateRotationsAttr),
            (old.GetScalesAttr, anim.CreateScalesAttr),
        ):
            attr = get()
            samples = attr.GetTimeSamples()
            value = attr.Get(samples[0]) if samples else attr.Get()
            if value is not None:
                create(value)
        return
    joints = skel.GetJointsAttr().Get() or []
    anim.CreateJointsAttr(joints)
    rest = skel.GetRestTransformsAttr().Get()
    if rest is not None and len(rest) == len(joints):
        translations, rotations, scales = UsdSkel.DecomposeTransforms(rest)
        anim.CreateTranslationsAttr(translations)
        anim.CreateRotationsAttr(rotations)
        anim.CreateScalesAttr(scales)
    elif joints:
        n = len(joints)
        anim.CreateTranslationsAttr(Vt.Vec3fArray([Gf.Vec3f(0, 0, 0)] * n))
        anim.CreateRotationsAttr(Vt.QuatfArray([Gf.Quatf(1, 0, 0, 0)] * n))
        anim.CreateScalesAttr(Vt.Vec3hArray([Gf.Vec3h(1, 1, 1)] * n))
