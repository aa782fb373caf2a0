"""Animation exports read back with independent readers: ufbx (FBX), usd-core (USD), pygltflib (GLB).

Every value of every frame is compared with what was written (within 1e-4).  Blender's own
import of the same files is in test_exports_blender.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from export_helpers import RIG_NAMES, flame_animation, real_take, renamed_rig

from facelib.cli import main
from facelib.errors import InputError, MediaReadError, MissingDependencyError
from facelib.io.animation_export import export_blendshapes, export_mesh_animation, load_rig, load_take
from facelib.io.face_rig import BlendshapeTake, match_channels
from facelib.io.fbx_rig import UfbxKeeper
from facelib.io.pc2 import read_pc2
from facelib.io.standin_face import standin_face
from facelib.processing.arkit import ARKIT_NAMES

ufbx = pytest.importorskip("ufbx", reason="the export extra (ufbx) is not installed")
pxr = pytest.importorskip("pxr", reason="the export extra (usd-core) is not installed")
pygltflib = pytest.importorskip("pygltflib", reason="the export extra (pygltflib) is not installed")

TOL = 1e-4


@pytest.fixture(scope="module")
def take(reference_dir: Path, media_dir: Path) -> BlendshapeTake:
    return real_take(reference_dir, media_dir)


def _fbx_weights(path: Path, times: np.ndarray) -> dict[str, np.ndarray]:
    """``mesh/channel`` -> (T,) weights ufbx evaluates at ``times`` (seconds)."""
    keeper = UfbxKeeper(ufbx.load_file(str(path)))  # ufbx's bindings need every wrapper kept alive
    try:
        return _read_fbx_weights(keeper, times)
    finally:
        keeper.close()  # the wrappers newest first, the scene last


def _read_fbx_weights(keeper: UfbxKeeper, times: np.ndarray) -> dict[str, np.ndarray]:
    scene = keeper.scene
    anim = keeper.keep(scene.anim)
    out = {}
    for node in keeper.items(scene.nodes):
        mesh = keeper.keep(node.mesh)
        if mesh is None:
            continue
        for deformer in keeper.items(mesh.blend_deformers):
            for channel in keeper.items(deformer.channels):
                values = [ufbx.evaluate_blend_weight(anim, channel, float(t)) for t in times]
                out[f"{node.name}/{channel.name}"] = np.asarray(values)
    out["_fps"] = np.asarray(keeper.keep(scene.settings).frames_per_second)
    return out


def _usd_weights(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(path))
    skel = next(p for p in stage.Traverse() if p.IsA(UsdSkel.Skeleton))
    (source,) = UsdSkel.BindingAPI(skel).GetAnimationSourceRel().GetTargets()
    anim = UsdSkel.Animation(stage.GetPrimAtPath(source))
    attr = anim.GetBlendShapeWeightsAttr()
    codes = np.asarray(attr.GetTimeSamples())
    values = np.stack([np.asarray(attr.Get(c)) for c in codes])
    return list(anim.GetBlendShapesAttr().Get()), codes, values, stage.GetTimeCodesPerSecond()


def _glb_animation(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """node name -> (times (T,), weights (T, K)) of the weights channels of the GLB's last animation."""
    from facelib.io.gltf import _read_accessor

    gltf = pygltflib.GLTF2().load(str(path))
    blob = gltf.binary_blob()
    out = {}
    anim = gltf.animations[-1]
    for channel in anim.channels:
        sampler = anim.samplers[channel.sampler]
        times = _read_accessor(gltf, blob, sampler.input)
        node = gltf.nodes[channel.target.node]
        k = len(gltf.meshes[node.mesh].weights)
        out[node.name] = (times, _read_accessor(gltf, blob, sampler.output).reshape(len(times), k))
    return out


def test_fbx_on_the_standin_face(take: BlendshapeTake, tmp_path: Path) -> None:
    out = tmp_path / "take.fbx"
    result = export_blendshapes(out, take)
    assert result.match.matched == 52 and result.frames == len(take.times) == 240
    got = _fbx_weights(out, take.times)
    assert float(got["_fps"]) == pytest.approx(take.fps)
    for i, name in enumerate(ARKIT_NAMES):
        np.testing.assert_allclose(got[f"StandInFace/{name}"], take.weights[:, i], atol=TOL, err_msg=name)
    # the geometry and shapes read back equal to what was written
    back = load_rig(out).meshes[0]
    face = standin_face().meshes[0]
    np.testing.assert_allclose(back.points, face.points, atol=1e-6)
    np.testing.assert_array_equal(back.face_counts, face.face_counts)
    np.testing.assert_array_equal(back.face_indices, face.face_indices)
    assert back.shape_names == ARKIT_NAMES
    np.testing.assert_allclose(back.shape_offsets, face.shape_offsets, atol=1e-6)


def test_usd_on_the_standin_face(take: BlendshapeTake, tmp_path: Path) -> None:
    out = tmp_path / "take.usd"
    export_blendshapes(out, take)
    names, codes, values, rate = _usd_weights(out)
    assert names == list(ARKIT_NAMES) and rate == pytest.approx(take.fps)
    np.testing.assert_allclose(codes / rate, take.times, atol=1e-9)
    np.testing.assert_allclose(values, take.weights, atol=TOL)
    back = load_rig(out).meshes[0]
    np.testing.assert_allclose(back.shape_offsets, standin_face().meshes[0].shape_offsets, atol=1e-6)
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(out))
    query = UsdSkel.Cache().GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath("/Face/Skeleton")))
    assert query.GetAnimQuery().GetBlendShapeOrder() == list(ARKIT_NAMES)


def test_glb_on_the_standin_face(take: BlendshapeTake, tmp_path: Path) -> None:
    out = tmp_path / "take.glb"
    export_blendshapes(out, take)
    times, weights = _glb_animation(out)["StandInFace"]
    np.testing.assert_allclose(times, take.times - take.times[0], atol=1e-6)
    np.testing.assert_allclose(weights, take.weights, atol=TOL)
    back = load_rig(out).meshes[0]
    assert back.shape_names == ARKIT_NAMES
    np.testing.assert_allclose(back.shape_offsets, standin_face().meshes[0].shape_offsets, atol=1e-6)


@pytest.mark.parametrize("rig_suffix", [".glb", ".fbx", ".usd"])
@pytest.mark.parametrize("out_suffix", [".fbx", ".glb", ".usd"])
def test_on_a_rig_channels_match_by_name(
    take: BlendshapeTake, tmp_path: Path, rig_suffix: str, out_suffix: str
) -> None:
    rig_file = tmp_path / f"rig{rig_suffix}"
    still = BlendshapeTake.from_weights(np.zeros((1, 52), np.float32), 30.0)
    export_blendshapes(rig_file, still, renamed_rig())  # a rig file in each format
    out = tmp_path / f"take{out_suffix}"
    result = export_blendshapes(out, take, rig_file)
    assert result.match.unmatched_rig == ("Head/smirk_custom",)
    assert result.match.matched == 6 and "mouthDimpleLeft" in result.match.missing_arkit
    assert "smirk_custom" in result.summary() and "6 of 52" in result.summary()
    expected = {rig: take.weights[:, ARKIT_NAMES.index(arkit)] for rig, arkit in RIG_NAMES.items()}
    expected["smirk_custom"] = np.zeros(len(take.times))
    if out_suffix == ".fbx":
        got = _fbx_weights(out, take.times)
        for name, values in expected.items():
            np.testing.assert_allclose(got[f"Head/{name}"], values, atol=TOL, err_msg=name)
    elif out_suffix == ".glb":
        _, weights = _glb_animation(out)["Head"]
        np.testing.assert_allclose(weights, np.stack(list(expected.values()), axis=1), atol=TOL)
    else:
        names, _, values, _ = _usd_weights(out)
        assert names == [n for n in RIG_NAMES if n != "smirk_custom"]  # the rig's own names
        for j, name in enumerate(names):
            np.testing.assert_allclose(values[:, j], expected[name], atol=TOL, err_msg=name)
    back = load_rig(out).meshes[0]
    np.testing.assert_allclose(back.points, standin_face().meshes[0].points, atol=1e-5)


def test_a_glb_character_is_kept_whole(take: BlendshapeTake, tmp_path: Path) -> None:
    rig_file = tmp_path / "avatar.glb"
    export_blendshapes(rig_file, BlendshapeTake.from_weights(np.zeros((1, 52), np.float32), 30.0), renamed_rig())
    gltf = pygltflib.GLTF2().load(str(rig_file))
    gltf.materials.append(pygltflib.Material(name="Skin"))
    gltf.meshes[0].primitives[0].material = 0
    gltf.nodes.append(pygltflib.Node(name="Camera"))
    gltf.scenes[0].nodes.append(len(gltf.nodes) - 1)
    gltf.save(str(rig_file))
    out = tmp_path / "take.glb"
    export_blendshapes(out, take, rig_file)
    back = pygltflib.GLTF2().load(str(out))
    assert [m.name for m in back.materials] == ["Skin"] and back.meshes[0].primitives[0].material == 0
    assert [n.name for n in back.nodes] == ["Head", "Camera"]
    assert [a.name for a in back.animations] == ["Take", "Take"]  # the rig's own, then the capture
    _, weights = _glb_animation(out)["Head"]
    np.testing.assert_allclose(weights[:, 2], take.weights[:, ARKIT_NAMES.index("jawOpen")], atol=TOL)
    np.testing.assert_allclose(load_rig(out).meshes[0].shape_offsets, renamed_rig().meshes[0].shape_offsets, atol=1e-6)


def test_a_usd_character_without_a_skeleton_is_refused(take: BlendshapeTake, tmp_path: Path) -> None:
    from pxr import Usd, UsdGeom, UsdSkel

    rig_file = tmp_path / "noskel.usda"
    stage = Usd.Stage.CreateNew(str(rig_file))
    mesh = UsdGeom.Mesh.Define(stage, "/Head")
    mesh.CreatePointsAttr([(0, 0, 0), (1, 0, 0), (0, 1, 0)])
    mesh.CreateFaceVertexCountsAttr([3])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2])
    shape = UsdSkel.BlendShape.Define(stage, "/Head/jawOpen")
    shape.CreateOffsetsAttr([(0, -0.1, 0)])
    shape.CreatePointIndicesAttr([2])
    binding = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
    binding.CreateBlendShapesAttr(["jawOpen"])
    binding.CreateBlendShapeTargetsRel().SetTargets([shape.GetPath()])
    stage.GetRootLayer().Save()
    assert load_rig(rig_file).meshes[0].shape_names == ("jawOpen",)
    with pytest.raises(InputError, match="bound to a Skeleton"):
        export_blendshapes(tmp_path / "take.usd", take, rig_file)
    export_blendshapes(tmp_path / "take.fbx", take, rig_file)  # rewritten as FBX it plays
    got = _fbx_weights(tmp_path / "take.fbx", take.times)
    np.testing.assert_allclose(got["Head/jawOpen"], take.weights[:, ARKIT_NAMES.index("jawOpen")], atol=TOL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noskel.usda", "take.fbx"]


def test_rig_without_arkit_names_is_refused(tmp_path: Path, take: BlendshapeTake) -> None:
    rig = renamed_rig()
    mesh = rig.meshes[0]
    odd = type(rig)((type(mesh)(mesh.name, mesh.points, mesh.face_counts, mesh.face_indices,
                                tuple(f"shape{i}" for i in range(7)), mesh.shape_offsets),), "odd")  # fmt: skip
    with pytest.raises(InputError, match="no blend shape of the rig odd has an ARKit name"):
        match_channels(odd)
    with pytest.raises(MediaReadError, match="rig not found"):
        export_blendshapes(tmp_path / "a.fbx", take, tmp_path / "missing.glb")
    with pytest.raises(InputError, match="unsupported export"):
        export_blendshapes(tmp_path / "a.abc", take)
    assert not list(tmp_path.iterdir())


def test_mesh_animation_usd_and_pc2(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    vertices, faces, fps = flame_animation(reference_dir, media_dir)
    wav = media_dir / "audio" / "faceformer_test.wav"
    out, n = export_mesh_animation(tmp_path / "talk.usd", iter(vertices), faces, fps, audio=wav)
    assert n == len(vertices) == 89
    from pxr import Usd, UsdGeom, UsdMedia

    stage = Usd.Stage.Open(str(out))
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Face/Mesh"))
    codes = mesh.GetPointsAttr().GetTimeSamples()
    assert codes == list(range(89)) and stage.GetTimeCodesPerSecond() == 30.0
    for code in codes:
        np.testing.assert_allclose(np.asarray(mesh.GetPointsAttr().Get(code)), vertices[int(code)], atol=TOL)
    np.testing.assert_array_equal(np.asarray(mesh.GetFaceVertexIndicesAttr().Get()).reshape(-1, 3), faces)
    audio = UsdMedia.SpatialAudio(stage.GetPrimAtPath("/Face/Audio"))
    assert audio.GetFilePathAttr().Get().path == "./talk.wav"
    assert (tmp_path / "talk.wav").read_bytes() == wav.read_bytes()

    out, n = export_mesh_animation(tmp_path / "talk.pc2", iter(vertices), faces, fps, audio=wav)
    cache = read_pc2(out)
    np.testing.assert_array_equal(cache.points, vertices)
    assert (cache.start_frame, cache.sample_rate) == (0.0, 1.0)
    from facelib.io.mesh import read_mesh

    base = read_mesh(tmp_path / "talk.obj")
    np.testing.assert_allclose(base.vertices, vertices[0], atol=1e-6)
    np.testing.assert_array_equal(base.faces, faces)
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("suffix", [".usd", ".pc2"])
def test_a_failed_mesh_export_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    face = standin_face().meshes[0]

    def frames():
        yield face.points
        yield face.points
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_mesh_animation(tmp_path / f"a{suffix}", frames(), face.triangles(), 30.0)
    bad = [face.points, face.points[:10]]
    with pytest.raises(InputError, match="points, the first had"):
        export_mesh_animation(tmp_path / f"b{suffix}", iter(bad), face.triangles(), 30.0)
    assert not list(tmp_path.iterdir())


def test_load_take_from_files(tmp_path: Path, take: BlendshapeTake) -> None:
    np.save(tmp_path / "w.npy", take.weights)
    with pytest.raises(InputError, match="--fps"):
        load_take(tmp_path / "w.npy")
    t = load_take(tmp_path / "w.npy", fps=25.0)
    np.testing.assert_allclose(t.times, np.arange(240) / 25.0)
    # a capture NPZ (facelib's) keeps the capture's frame times
    from facelib.io.blendshape_export import save_npz
    from facelib.results import BlendshapeFrame, FaceBlendshapes

    frames = [
        BlendshapeFrame(
            i, 1000.0 * float(take.times[i]), (FaceBlendshapes(np.zeros(4, np.float32), 1.0, take.weights[i]),)
        )
        for i in range(20)
    ]
    frames[5] = BlendshapeFrame(5, frames[5].timestamp_ms, ())  # no face: holds frame 4
    save_npz(frames, tmp_path / "cap.npz")
    t = load_take(tmp_path / "cap.npz")
    np.testing.assert_allclose(t.times, take.times[:20])
    np.testing.assert_allclose(t.weights[5], take.weights[4])
    assert t.fps == 30000 / 1001 == pytest.approx(take.fps, rel=1e-12)  # the video's NTSC rate
    np.testing.assert_allclose(t.frames, np.arange(20), atol=1e-9)  # USD time codes on whole frames
    # a plain npz of named weights in another order
    order = list(reversed(ARKIT_NAMES))
    np.savez(tmp_path / "named.npz", weights=take.weights[:, ::-1], names=np.asarray(order), times=take.times)
    np.testing.assert_allclose(load_take(tmp_path / "named.npz").weights, take.weights)
    # a Live Link Face CSV
    from facelib.io.livelink import write_livelink_csv

    write_livelink_csv(frames[:4], tmp_path / "take.csv", fps=60.0)
    t = load_take(tmp_path / "take.csv")
    np.testing.assert_allclose(t.weights, take.weights[:4], atol=1e-6)
    np.testing.assert_allclose(t.times, take.times[:4] - take.times[0], atol=1 / 60 + 1e-9)
    with pytest.raises(InputError, match="increase strictly"):
        BlendshapeTake(times=np.asarray([0.0, 0.0]), weights=np.zeros((2, 52), np.float32), fps=30.0)
    with pytest.raises(InputError, match=r"\(frames, 52\)"):
        np.save(tmp_path / "bad.npy", np.zeros((3, 51), np.float32))
        load_take(tmp_path / "bad.npy", fps=30.0)


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, take: BlendshapeTake) -> None:
    export_blendshapes(tmp_path / "rig.fbx", take)  # the FBX writer is facelib's own: no extra needed
    monkeypatch.setitem(sys.modules, "ufbx", None)
    with pytest.raises(MissingDependencyError, match="ufbx"):
        load_rig(tmp_path / "rig.fbx")
    (tmp_path / "rig.fbx").unlink()
    monkeypatch.setitem(sys.modules, "pygltflib", None)
    with pytest.raises(MissingDependencyError, match=r"facelib\[export\]"):
        export_blendshapes(tmp_path / "a.glb", take)
    monkeypatch.setitem(sys.modules, "pxr", None)
    with pytest.raises(MissingDependencyError, match="usd-core"):
        export_blendshapes(tmp_path / "a.usd", take)
    assert not list(tmp_path.iterdir())


def test_cli_export(tmp_path: Path, take: BlendshapeTake, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "w.npy", take.weights)
    rig = tmp_path / "rig.glb"
    export_blendshapes(rig, BlendshapeTake.from_weights(np.zeros((1, 52), np.float32), 30.0), renamed_rig())
    assert (
        main(["export", str(tmp_path / "w.npy"), "-o", str(tmp_path / "a.fbx"), "--fps", "24", "--rig", str(rig)]) == 0
    )
    out = capsys.readouterr().out
    assert "6 of 52 ARKit blendshapes matched" in out and "Head/smirk_custom" in out
    got = _fbx_weights(tmp_path / "a.fbx", np.arange(240) / 24.0)
    np.testing.assert_allclose(got["Head/JawOpen"], take.weights[:, ARKIT_NAMES.index("jawOpen")], atol=TOL)
    assert main(["export", str(tmp_path / "w.npy"), "-o", str(tmp_path / "a.fbx")]) == 2
    assert "--fps" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "w.npy"), "-o", str(tmp_path / "a.obj"), "--fps", "24"]) == 2
    assert "unsupported export" in capsys.readouterr().err


def test_cli_export_vertices(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    vertices, _, _ = flame_animation(reference_dir, media_dir)
    np.save(tmp_path / "v.npy", vertices[:10])
    tpl = str(media_dir / "meshes" / "FLAME_sample.ply")
    assert main(["export", str(tmp_path / "v.npy"), "-o", str(tmp_path / "v.pc2"), "--fps", "30"]) == 2
    assert (
        main(["export", str(tmp_path / "v.npy"), "-o", str(tmp_path / "v.pc2"), "--fps", "30", "--template", tpl]) == 0
    )
    np.testing.assert_array_equal(read_pc2(tmp_path / "v.pc2").points, vertices[:10])


def test_blendshapes_cli_export(mediapipe_package: Path, media_dir: Path, tmp_path: Path) -> None:
    from facelib.tasks.blendshapes import BlendshapeCapture

    video = media_dir / "video" / "talking_face_01.mp4"
    out = tmp_path / "take.usd"
    args = ["blendshapes", str(video), "--model", str(mediapipe_package), "--max-frames", "8", "--export", str(out)]
    assert main(args) == 0
    with BlendshapeCapture(mediapipe_package, mode="video") as capture:
        results = [r for _, r in capture.iter_video(video, max_frames=8)]
    _, codes, values, rate = _usd_weights(out)
    np.testing.assert_allclose(codes / rate, [r.timestamp_ms / 1000 for r in results], atol=1e-9)
    np.testing.assert_allclose(codes, np.arange(8), atol=1e-9)  # whole frames at the video's rate
    np.testing.assert_allclose(values, np.stack([r.faces[0].blendshapes for r in results]), atol=TOL)
    assert main([*args[:-2], "--rig", str(tmp_path / "x.glb")]) == 2


def test_audio2face_cli_usd_and_pc2(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import soundfile as sf
    from faceformer_helpers import convert

    voca = convert(reference_dir, tmp_path / "voca", "vocaset")
    wav = tmp_path / "short.wav"
    audio, rate = sf.read(media_dir / "audio" / "faceformer_test.wav", frames=44100)
    sf.write(wav, audio, rate)
    tpl = str(media_dir / "meshes" / "FLAME_sample.ply")
    base = ["audio2face", "--model", str(voca), "--audio", str(wav), "--template", tpl, "--subject", "1"]
    assert main([*base, "-o", str(tmp_path / "a.npy")]) == 0
    expected = np.load(tmp_path / "a.npy")
    assert main([*base, "-o", str(tmp_path / "out" / "talk.pc2")]) == 0
    np.testing.assert_array_equal(read_pc2(tmp_path / "out" / "talk.pc2").points, expected)
    assert (tmp_path / "out" / "talk.wav").read_bytes() == wav.read_bytes()
    assert (tmp_path / "out" / "talk.obj").is_file()
    assert main([*base, "-o", str(tmp_path / "out" / "talk.usda")]) == 0
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(tmp_path / "out" / "talk.usda"))
    points = UsdGeom.Mesh(stage.GetPrimAtPath("/Face/Mesh")).GetPointsAttr()
    assert len(points.GetTimeSamples()) == len(expected) == 29 and stage.GetTimeCodesPerSecond() == 30.0
    np.testing.assert_allclose(np.asarray(points.Get(7)), expected[7], atol=TOL)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["talk.obj", "talk.pc2", "talk.usda", "talk.wav"]
