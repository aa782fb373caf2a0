"""The numpy MATLAB v5 reader."""

from __future__ import annotations

import numpy as np
import pytest

from facelib.errors import MediaReadError
from facelib.io.matfile import read_mat


def test_aflw_annotations(media_dir):
    data = read_mat(media_dir / "aflw2000" / "image00050.mat")
    assert data["Pose_Para"].shape == (1, 7) and data["Pose_Para"].dtype == np.float32
    assert data["pt2d"].shape[0] == 2 and data["pt2d"].dtype == np.float64
    assert data["pt3d_68"].shape == (3, 68)
    assert data["roi"].dtype == np.int16


def test_against_scipy_when_available(media_dir):
    sio = pytest.importorskip("scipy.io", reason="scipy is only used to cross-check the reader")
    for path in sorted((media_dir / "aflw2000").glob("*.mat")):
        ours = read_mat(path)
        theirs = {k: v for k, v in sio.loadmat(path).items() if not k.startswith("__")}
        assert set(ours) == set(theirs)
        for key, value in theirs.items():
            assert ours[key].dtype == value.dtype
            np.testing.assert_array_equal(ours[key], value)


def test_uncompressed_and_char(tmp_path):
    sio = pytest.importorskip("scipy.io", reason="scipy writes the uncompressed test file")
    path = tmp_path / "u.mat"
    sio.savemat(path, {"x": np.arange(6.0).reshape(2, 3), "i": np.int16([[1, 2]]), "s": "hi"})
    data = read_mat(path)
    np.testing.assert_array_equal(data["x"], np.arange(6.0).reshape(2, 3))
    assert data["i"].dtype == np.int16 and data["s"].tolist() == ["hi"]


def test_bad_files(tmp_path, media_dir):
    empty = tmp_path / "e.mat"
    empty.write_bytes(b"")
    with pytest.raises(MediaReadError):
        read_mat(empty)
    with pytest.raises(MediaReadError, match="not found"):
        read_mat(tmp_path / "missing.mat")
    text = tmp_path / "t.mat"
    text.write_bytes(b"hello" * 40)
    with pytest.raises(MediaReadError, match="not a MATLAB v5"):
        read_mat(text)
    data = (media_dir / "aflw2000" / "image00050.mat").read_bytes()
    cut = tmp_path / "cut.mat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaReadError):
        read_mat(cut)
