"""Run inside Blender's Python (the ``bpy`` wheel): import an exported file, sample it, render it.

    python probe.py FILE OUT.npz --fps F --frames 0 1 2.5 ... [--kind shapes|points] [--pc2 BASE.obj]
        [--render OUT.png --render-frame F]

``shapes``: for every mesh object with shape keys, the value of every key at every frame
(``{object}/{key}`` -> (T,) array).  ``points``: evaluated vertex positions of every mesh object
in its own (local) space at every frame (``{object}`` -> (T, V, 3)); with ``--pc2`` FILE is a PC2
cache put on the mesh BASE.obj with a Mesh Cache modifier.  Also stores the scene's fps.
"""

import argparse
import sys

import bpy
import numpy as np


def _import(path: str, pc2_base: str | None) -> None:
    low = path.lower()
    if pc2_base is not None:
        # As docs/exports.md says: the OBJ with the importer's defaults (it turns Y up into Z up
        # with the object's rotation, the points stay as in the file), and a Mesh Cache
        # modifier with its default axes.
        bpy.ops.wm.obj_import(filepath=pc2_base)
        obj = bpy.context.selected_objects[0]
        mod = obj.modifiers.new("cache", "MESH_CACHE")
        mod.cache_format = "PC2"
        mod.filepath = path
    elif low.endswith(".fbx"):
        bpy.ops.import_scene.fbx(filepath=path, anim_offset=0.0)
    elif low.endswith((".glb", ".gltf")):
        bpy.ops.import_scene.gltf(filepath=path)
    elif low.endswith((".usd", ".usda", ".usdc", ".usdz")):
        bpy.ops.wm.usd_import(filepath=path)
    else:
        raise SystemExit(f"unknown file type {path}")


def _set_frame(scene: "bpy.types.Scene", frame: float) -> None:
    whole = int(np.floor(frame))
    scene.frame_set(whole, subframe=float(frame - whole))


def _render(path: str, frame: float) -> None:
    scene = bpy.context.scene
    _set_frame(scene, frame)
    meshes = [o for o in scene.objects if o.type == "MESH"]
    deps = bpy.context.evaluated_depsgraph_get()
    pts = []
    for o in meshes:
        ev = o.evaluated_get(deps)
        pts += [ev.matrix_world @ v.co for v in ev.data.vertices]
    arr = np.array([tuple(p) for p in pts])
    lo, hi = arr.min(0), arr.max(0)
    centre = (lo + hi) / 2
    size = float(np.max(hi - lo))
    cam_data = bpy.data.cameras.new("cam")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = size * 1.15
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    # Blender is Z up; the imported face looks along -Y (its +Z front turned by the importer).
    cam.location = (centre[0], centre[1] - 3 * size, centre[2])
    cam.rotation_euler = (np.pi / 2, 0.0, 0.0)
    scene.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "SINGLE"
    scene.display.shading.show_cavity = True
    for poly in (p for o in meshes for p in o.data.polygons):
        poly.use_smooth = True
    scene.render.resolution_x = scene.render.resolution_y = 256
    scene.render.film_transparent = False
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("out")
    ap.add_argument("--fps", type=float, required=True)
    ap.add_argument("--frames", type=float, nargs="+", required=True)
    ap.add_argument("--kind", choices=["shapes", "points"], default="shapes")
    ap.add_argument("--pc2")
    ap.add_argument("--render")
    ap.add_argument("--render-frame", type=float, default=0.0)
    args = ap.parse_args(argv)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    # A whole-number rate with base 1, as docs/exports.md advises (glTF has no scene rate; the
    # FBX and USD importers set the file's own).
    scene.render.fps = round(args.fps)
    scene.render.fps_base = 1.0
    _import(args.file, args.pc2)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 0, int(np.ceil(max(args.frames))) + 1
    meshes = [o for o in scene.objects if o.type == "MESH"]
    out: dict[str, list] = {}
    for frame in args.frames:
        _set_frame(scene, frame)
        deps = bpy.context.evaluated_depsgraph_get()
        for o in meshes:
            if args.kind == "shapes":
                keys = o.data.shape_keys
                for kb in keys.key_blocks[1:] if keys else []:
                    out.setdefault(f"{o.name}/{kb.name}", []).append(kb.value)
            else:
                ev = o.evaluated_get(deps)
                co = np.empty(len(ev.data.vertices) * 3, np.float64)
                ev.data.vertices.foreach_get("co", co)
                out.setdefault(o.name, []).append(co.reshape(-1, 3))
    arrays = {k: np.asarray(v, np.float64) for k, v in out.items()}
    arrays["_fps"] = np.asarray(scene.render.fps / scene.render.fps_base)
    arrays["_objects"] = np.asarray([o.name for o in meshes])
    np.savez(args.out, **arrays)
    if args.render:
        _render(args.render, args.render_frame)


if __name__ == "__main__":
    main(sys.argv[1:])
