"""Mesh IO: PLY/OBJ templates, sequences, streaming .npy writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelib.errors import InputError, MediaReadError
from facelib.io.mesh import NpyFrameWriter, read_mesh, write_obj, write_ply, write_sequence


def test_reads_upstream_templates(media_dir: Path) -> None:
    flame = read_mesh(media_dir / "meshes" / "FLAME_sample.ply")
    assert flame.vertices.shape == (5023, 3) and flame.faces.shape == (9976, 3)
    assert flame.faces.max() < 5023 and flame.vertices.dtype == np.float32
    biwi = read_mesh(media_dir / "meshes" / "BIWI.ply")
    assert biwi.vertices.shape == (23370, 3) and biwi.faces.shape == (46068, 3)


def test_roundtrips(media_dir: Path, tmp_path: Path) -> None:
    mesh = read_mesh(media_dir / "meshes" / "FLAME_sample.ply")
    ply = read_mesh(write_ply(tmp_path / "a.ply", mesh.vertices, mesh.faces))
    np.testing.assert_array_equal(ply.vertices, mesh.vertices)
    np.testing.assert_array_equal(ply.faces, mesh.faces)
    obj = read_mesh(write_obj(tmp_path / "a.obj", mesh.vertices, mesh.faces))
    assert np.abs(obj.vertices - mesh.vertices).max() < 1e-6
    np.testing.assert_array_equal(obj.faces, mesh.faces)
    np.save(tmp_path / "a.npy", mesh.vertices)
    np.testing.assert_array_equal(read_mesh(tmp_path / "a.npy").vertices, mesh.vertices)
    (tmp_path / "ascii.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n"
    )
    quad = read_mesh(tmp_path / "ascii.ply")
    assert quad.faces.tolist() == [[0, 1, 2], [0, 2, 3]]


def test_sequences_and_writer(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    folder = write_sequence(tmp_path / "seq", frames)
    np.testing.assert_array_equal(np.load(folder / "3.npy"), frames[3])
    write_sequence(tmp_path / "objs", frames, np.array([[0, 1, 2]]), fmt="obj")
    assert len(list((tmp_path / "objs").glob("*.obj"))) == 5
    with NpyFrameWriter(tmp_path / "all.npy") as writer:
        for f in frames:
            writer.write(f)
    np.testing.assert_array_equal(np.load(tmp_path / "all.npy"), frames)
    with pytest.raises(InputError):
        write_sequence(tmp_path / "x", frames, fmt="fbx")


def test_mesh_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaReadError):
        read_mesh(tmp_path / "missing.ply")
    (tmp_path / "bad.ply").write_bytes(b"not a ply")
    with pytest.raises(MediaReadError):
        read_mesh(tmp_path / "bad.ply")
    (tmp_path / "x.stl").write_bytes(b"solid")
    with pytest.raises(InputError):
        read_mesh(tmp_path / "x.stl")
