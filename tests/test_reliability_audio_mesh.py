"""Property-based robustness of the audio and mesh readers (Audio2Face inputs): arbitrary bytes,
damaged real files and malformed headers give a result or a clear FacelibError (and a mesh
never has faces pointing outside its vertices)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facelib.errors import FacelibError
from facelib.io import audio, mesh

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6)


def _mutate(data: bytes, changes: list[tuple[float, int]], keep: float, head: int) -> bytes:
    """Flip bytes within the first ``head`` bytes (where the headers are), then cut at ``keep``."""
    buf = bytearray(data)
    for where, value in changes:
        buf[int(where * min(head, len(buf)))] = value
    return bytes(buf[: max(1, int(keep * len(buf)))])


def _small_wav(seconds: float = 0.3) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (np.sin(2 * np.pi * 220 * t) * 20000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _read_audio(path: Path) -> np.ndarray | None:
    try:
        samples = audio.load_audio(path)
    except FacelibError:
        return None
    assert samples.ndim == 1 and samples.dtype == np.float32 and np.all(np.isfinite(samples))
    return samples


@FUZZ
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3"]))
def test_audio_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    _read_audio(path)


@FUZZ
@given(changes=edits, keep=st.one_of(st.just(1.0), st.floats(0, 1)))
def test_audio_reader_on_damaged_wav(tmp_path: Path, changes: list[tuple[float, int]], keep: float) -> None:
    path = tmp_path / "damaged.wav"
    path.write_bytes(_mutate(_small_wav(), changes, keep, head=64))
    _read_audio(path)


def _read_mesh(path: Path) -> object:
    try:
        m = mesh.read_mesh(path)
    except FacelibError:
        return None
    vertices = np.asarray(m.vertices)
    assert vertices.ndim == 2 and vertices.shape[1] == 3
    if m.faces is not None:
        faces = np.asarray(m.faces)
        assert faces.ndim == 2 and faces.shape[1] == 3
        assert faces.size == 0 or (faces.min() >= 0 and faces.max() < len(vertices))
    return m


@FUZZ
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".ply", ".obj", ".npy"]))
def test_mesh_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    _read_mesh(path)


@pytest.fixture(scope="module")
def flame_path(media_dir: Path) -> Path:
    return media_dir / "meshes" / "FLAME_sample.ply"


@FUZZ
@given(changes=edits, keep=st.one_of(st.just(1.0), st.floats(0, 1)))
def test_mesh_reader_on_damaged_ply(
    tmp_path: Path, flame_path: Path, changes: list[tuple[float, int]], keep: float
) -> None:
    path = tmp_path / "damaged.ply"
    path.write_bytes(_mutate(flame_path.read_bytes(), changes, keep, head=256))
    _read_mesh(path)


obj_line = st.one_of(
    st.tuples(st.just("v"), st.lists(st.sampled_from(["0", "1.5", "-2", "nan", "x", ""]), max_size=4)),
    st.tuples(
        st.just("f"), st.lists(st.sampled_from(["1", "2", "3", "4", "-1", "0", "99", "1/1", "2//3", "a"]), max_size=5)
    ),
    st.tuples(st.sampled_from(["vn", "vt", "#", "o", "g", "usemtl"]), st.lists(st.just("1"), max_size=3)),
)


@FUZZ
@given(lines=st.lists(obj_line, max_size=12))
def test_mesh_reader_on_malformed_obj(tmp_path: Path, lines: list[tuple[str, list[str]]]) -> None:
    path = tmp_path / "fuzz.obj"
    path.write_text("\n".join(" ".join([k, *v]) for k, v in lines), encoding="utf-8")
    _read_mesh(path)


ply_header = st.lists(
    st.sampled_from(
        [
            "element vertex 3",
            "element vertex -1",
            "element vertex 99999999999",
            "element face 1",
            "property float x",
            "property float y",
            "property float z",
            "property double w",
            "property list uchar int vertex_indices",
            "property list uchar uint vertex_index",
            "format ascii 1.0",
            "format binary_big_endian 1.0",
            "comment x",
        ]
    ),
    max_size=10,
)


@FUZZ
@given(header=ply_header, body=st.binary(max_size=256))
def test_mesh_reader_on_malformed_ply_headers(tmp_path: Path, header: list[str], body: bytes) -> None:
    path = tmp_path / "fuzz.ply"
    path.write_bytes(
        ("\n".join(["ply", "format binary_little_endian 1.0", *header, "end_header"]) + "\n").encode() + body
    )
    _read_mesh(path)
