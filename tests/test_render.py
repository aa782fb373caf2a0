"""Software rasteriser: the face lands where the camera projects it, shading is sane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelib.errors import InputError
from facelib.io.mesh import read_mesh
from facelib.io.render import Camera, render_animation, render_mesh


@pytest.mark.parametrize(("name", "dataset"), [("FLAME_sample", "vocaset"), ("BIWI", "biwi")])
def test_face_pixels_where_projected(media_dir: Path, name: str, dataset: str) -> None:
    mesh = read_mesh(media_dir / "meshes" / f"{name}.ply")
    camera = Camera.for_dataset(dataset, 200)
    image = render_mesh(mesh.vertices, mesh.faces, camera)
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    face = (image != 255).any(axis=2)
    proj = camera.project(mesh.vertices - mesh.vertices.mean(axis=0))
    x0, y0 = np.floor(proj[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(proj[:, :2].max(axis=0)).astype(int)
    ys, xs = np.nonzero(face)
    # every covered pixel lies inside the projected bounding box, and it is well filled
    assert xs.min() >= x0 - 1 and xs.max() <= x1 + 1 and ys.min() >= y0 - 1 and ys.max() <= y1 + 1
    assert face.sum() > 0.4 * (x1 - x0) * (y1 - y0)
    # the projected vertices (away from holes) are covered
    inside = (proj[:, 0] >= 0) & (proj[:, 0] < 200) & (proj[:, 1] >= 0) & (proj[:, 1] < 200)
    covered = face[proj[inside, 1].astype(int), proj[inside, 0].astype(int)]
    assert covered.mean() > 0.9
    # lit surface: frontal lighting makes the face mostly bright but shaded
    values = image[face][:, 0]
    assert 60 < values.mean() < 250 and values.std() > 3


def test_flat_and_errors(media_dir: Path, tmp_path: Path) -> None:
    mesh = read_mesh(media_dir / "meshes" / "FLAME_sample.ply")
    flat = render_mesh(mesh.vertices, mesh.faces, Camera.for_dataset("vocaset", 96), shading="flat")
    assert (flat != 255).any()
    with pytest.raises(InputError):
        render_mesh(mesh.vertices, np.zeros((0, 3), int))
    with pytest.raises(InputError):
        render_mesh(mesh.vertices, mesh.faces, shading="toon")
    with pytest.raises(InputError):
        Camera.for_dataset("other")


def test_occlusion_nearest_wins() -> None:
    # two overlapping triangles: the nearer one (z = 0.1) must win everywhere they overlap
    v = np.array(
        [[-0.05, -0.05, 0], [0.05, -0.05, 0], [0, 0.05, 0], [-0.05, -0.05, 0.1], [0.05, -0.05, 0.1], [0, 0.05, 0.1]],
        np.float32,
    )
    f = np.array([[0, 1, 2], [3, 4, 5]])
    cam = Camera(64, 64, 100.0, 32.0, 32.0)
    img = render_mesh(v, f, cam, center=np.zeros(3))
    near = render_mesh(v[3:], f[:1], cam, center=np.zeros(3))
    covered = (near != 255).any(axis=2)
    np.testing.assert_array_equal(img[covered], near[covered])


def test_animation_video(media_dir: Path, tmp_path: Path) -> None:
    mesh = read_mesh(media_dir / "meshes" / "FLAME_sample.ply")
    frames = [mesh.vertices + np.float32(0.002 * i) for i in range(4)]
    out = render_animation(
        frames, mesh.faces, tmp_path / "a.mp4", 30, size=64, audio=media_dir / "audio" / "jfk_16k_mono.wav"
    )
    assert out.stat().st_size > 500
    from facelib.io.ffmpeg import has_audio_stream

    assert has_audio_stream(out)
