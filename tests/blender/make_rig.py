"""Run inside Blender's Python: build a small character with shape keys and save it with Blender's exporter.

    python make_rig.py OUT.fbx|OUT.glb|OUT.usd NAME [NAME ...]

The mesh is a UV sphere named "Head"; each NAME becomes a shape key that moves a different band
of points (so every key is distinct).  The file is written by Blender's own FBX / glTF / USD
exporter: a rig made by a real DCC tool, not by facelib.
"""

import sys

import bpy


def main(argv: list[str]) -> None:
    out, names = argv[0], argv[1:]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, radius=0.1)
    obj = bpy.context.active_object
    obj.name = obj.data.name = "Head"
    material = bpy.data.materials.new("Skin")
    material.diffuse_color = (0.8, 0.6, 0.5, 1.0)
    obj.data.materials.append(material)
    obj.shape_key_add(name="Basis")
    n = len(obj.data.vertices)
    for k, name in enumerate(names):
        key = obj.shape_key_add(name=name, from_mix=False)
        for i in range(k, n, len(names)):
            key.data[i].co.z += 0.01 * (1 + k % 3)
    low = out.lower()
    if low.endswith(".fbx"):
        bpy.ops.export_scene.fbx(filepath=out, use_selection=False, bake_anim=False)
    elif low.endswith(".glb"):
        bpy.ops.export_scene.gltf(filepath=out, export_format="GLB", export_animations=False)
    else:
        bpy.ops.wm.usd_export(filepath=out, export_animation=False)


if __name__ == "__main__":
    main(sys.argv[1:])
