"""Property-based robustness of the readers the first reader suite did not cover: MATLAB .mat,
Live Link Face CSV, facelib blendshape JSON / NPZ.  Any bytes (random, or a real file with bytes
flipped or cut off) give a result or a clear :class:`~facelib.errors.FacelibError`."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from facelib.errors import FacelibError
from facelib.io.blendshape_export import load_json, load_npz, save_json, save_npz
from facelib.io.livelink import read_livelink_csv, write_livelink_csv
from facelib.io.matfile import read_mat
from facelib.results import BlendshapeFrame, FaceBlendshapes

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: (position fraction, new byte) edits, and a cut-off fraction (1.0 keeps the whole file).
edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8)
cut = st.one_of(st.just(1.0), st.floats(0, 1))


def _mutate(data: bytes, changes: list[tuple[float, int]], keep: float) -> bytes:
    buf = bytearray(data)
    for where, value in changes:
        buf[int(where * len(buf))] = value
    return bytes(buf[: int(keep * len(buf))] if keep < 1.0 else buf)


def _frames(n: int = 3) -> list[BlendshapeFrame]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        face = FaceBlendshapes(
            box=np.array([10, 20, 110, 140], np.float32),
            score=0.9,
            blendshapes=rng.random(52).astype(np.float32),
            landmarks=rng.random((478, 3)).astype(np.float32),
            transform=np.eye(4, dtype=np.float32),
            head_pose=np.array([1, 2, 3], np.float32),
        )
        out.append(BlendshapeFrame(i, i * 33.3, (face,) if i != 1 else ()))
    return out


def _expect_result_or_clear_error(read: object, path: Path) -> object:
    try:
        return read(path)  # type: ignore[operator]
    except FacelibError as exc:
        assert str(path) in str(exc) or str(path.name) in str(exc) or str(exc)
        return None


# --- MATLAB .mat ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mat_bytes(media_dir: Path) -> bytes:
    return (media_dir / "aflw2000" / "image00050.mat").read_bytes()


@FUZZ
@given(data=st.binary(max_size=1024))
def test_mat_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.mat"
    path.write_bytes(data)
    out = _expect_result_or_clear_error(read_mat, path)
    assert out is None or isinstance(out, dict)


@FUZZ
@given(changes=edits, keep=cut)
def test_mat_reader_on_damaged_real_files(tmp_path: Path, mat_bytes: bytes, changes: list, keep: float) -> None:  # type: ignore[type-arg]
    path = tmp_path / "damaged.mat"
    path.write_bytes(_mutate(mat_bytes, changes, keep))
    out = _expect_result_or_clear_error(read_mat, path)
    if isinstance(out, dict):
        assert all(isinstance(v, np.ndarray | str) for v in out.values())


def test_mat_reader_reads_the_real_file(mat_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "ok.mat"
    path.write_bytes(mat_bytes)
    data = read_mat(path)
    assert data["Pose_Para"].size == 7 and data["pt2d"].shape[0] == 2


# --- Live Link Face CSV --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("livelink") / "take.csv"
    write_livelink_csv(_frames(), path)
    return path.read_bytes()


@FUZZ
@given(data=st.binary(max_size=1024))
def test_livelink_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    _expect_result_or_clear_error(read_livelink_csv, path)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["Timecode", "BlendShapeCount", "JawOpen", "eyeBlink_L", "HeadYaw", "x", ""])),
    cells=st.lists(st.lists(st.sampled_from(["0.5", "", "nan", "abc", "00:00:01:02.5", "1e3", "-"]), max_size=8)),
)
def test_livelink_reader_on_structured_nonsense(tmp_path: Path, header: list[str], cells: list[list[str]]) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *cells]), encoding="utf-8")
    take = _expect_result_or_clear_error(read_livelink_csv, path)
    if take is not None:
        assert take.blendshapes.shape[1] == 52  # type: ignore[attr-defined]


@FUZZ
@given(changes=edits, keep=cut)
def test_livelink_reader_on_damaged_takes(tmp_path: Path, csv_bytes: bytes, changes: list, keep: float) -> None:  # type: ignore[type-arg]
    path = tmp_path / "damaged.csv"
    path.write_bytes(_mutate(csv_bytes, changes, keep))
    _expect_result_or_clear_error(read_livelink_csv, path)


# --- blendshape JSON / NPZ -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 60) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
face_keys = st.fixed_dictionaries(
    {},
    optional={
        "box": json_values,
        "score": json_values,
        "blendshapes": json_values | st.just([0.5] * 52),
        "landmarks": json_values,
        "transform": json_values,
        "head_pose": json_values,
    },
)


@FUZZ
@given(
    frames=st.lists(
        st.fixed_dictionaries({}, optional={"index": json_values, "timestamp_ms": json_values, "faces": json_values})
        | st.fixed_dictionaries(
            {"index": st.integers(0, 9), "timestamp_ms": st.floats(0, 1e4), "faces": st.lists(face_keys, max_size=2)}
        ),
        max_size=3,
    )
    | json_values,
    names=st.none() | json_values,
)
# found by Hypothesis once (issue 20): null weights reached to_arkit as a 0-d array -> IndexError
@example(frames=[{"index": 0, "timestamp_ms": 0.0, "faces": [{"blendshapes": None}]}], names=None)
@example(
    frames=[{"index": 0, "timestamp_ms": 0.0, "faces": [{"box": [0, 0, 1, 1], "score": 1.0, "blendshapes": None}]}],
    names=None,
)
def test_blendshape_json_reader_on_malformed_content(tmp_path: Path, frames: object, names: object) -> None:
    path = tmp_path / "fuzz.json"
    doc: dict[str, object] = {"format": "facelib.blendshapes", "version": 1, "frames": frames}
    if names is not None:
        doc["names"] = names
    path.write_text(json.dumps(doc), encoding="utf-8")
    out = _expect_result_or_clear_error(load_json, path)
    assert out is None or all(isinstance(f, BlendshapeFrame) for f in out)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    root = tmp_path_factory.mktemp("bsexport")
    save_json(_frames(), root / "a.json", landmarks=True)
    save_npz(_frames(), root / "a.npz", landmarks=True)
    return (root / "a.json").read_bytes(), (root / "a.npz").read_bytes()


def test_saved_files_round_trip(saved: tuple[bytes, bytes], tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(saved[0])
    (tmp_path / "a.npz").write_bytes(saved[1])
    for frames in (load_json(tmp_path / "a.json"), load_npz(tmp_path / "a.npz")):
        assert [len(f.faces) for f in frames] == [1, 0, 1]


@FUZZ
@given(changes=edits, keep=cut, which=st.sampled_from([0, 1]))
def test_blendshape_readers_on_damaged_files(
    tmp_path: Path,
    saved: tuple[bytes, bytes],
    changes: list,  # type: ignore[type-arg]
    keep: float,
    which: int,
) -> None:
    path = tmp_path / ("damaged.json", "damaged.npz")[which]
    path.write_bytes(_mutate(saved[which], changes, keep))
    _expect_result_or_clear_error((load_json, load_npz)[which], path)


@FUZZ
@given(data=st.binary(max_size=512), which=st.sampled_from([0, 1]))
def test_blendshape_readers_on_arbitrary_bytes(tmp_path: Path, data: bytes, which: int) -> None:
    path = tmp_path / ("fuzz.json", "fuzz.npz")[which]
    path.write_bytes(data)
    _expect_result_or_clear_error((load_json, load_npz)[which], path)


array_strategy = st.sampled_from(
    [np.zeros(0), np.zeros((2,)), np.zeros((2, 1)), np.ones((2, 1, 52)), np.array(["a", "b"]), np.full((2, 3), 5)]
)


@FUZZ
@given(
    arrays=st.dictionaries(
        st.sampled_from(
            ["names", "index", "timestamp_ms", "face_count", "boxes", "scores", "blendshapes", "head_pose", "transform"]
        ),
        array_strategy,
    )
)
def test_blendshape_npz_reader_on_wrong_arrays(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    path = tmp_path / "fuzz.npz"
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    path.write_bytes(buf.getvalue())
    assert zipfile.is_zipfile(path)
    _expect_result_or_clear_error(load_npz, path)
