"""Batch jobs (facelib.batch, ``facelib batch``) on real media: every task, the local engine and
a local Ray cluster against plain loops over the task APIs, corrupt inputs, resume after a kill
or Ctrl-C, and workers that die."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from batch_support import assert_columns_close, blendshapes_loop, clip_video, clip_wav, headpose_loop, image_folder
from headpose_support import build_fsanet, build_ultraface

from facelib import batch
from facelib.batch.items import Item, expand_inputs
from facelib.batch.runner import ItemRunner, JobConfig
from facelib.batch.store import JobStore
from facelib.errors import InputError
from facelib.processing.arkit import ARKIT_NAMES

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ROOT = Path(__file__).resolve().parents[1]


# -- shared fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pose_models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pose")
    return build_fsanet(models_dir, root / "fsanet"), build_ultraface(models_dir, root / "ultraface")


@pytest.fixture(scope="module")
def photos(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_folder(media_dir, tmp_path_factory.mktemp("photos") / "set")


@pytest.fixture(scope="module")
def clips(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    clip_video(media_dir / "video" / "talking_face_01.mp4", root / "talk.mp4", 8)
    clip_video(media_dir / "video" / "fomm_driving_00.mp4", root / "drive.mp4", 6)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return root


@pytest.fixture(scope="module")
def a2f_model(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from faceformer_helpers import convert

    return convert(reference_dir, tmp_path_factory.mktemp("voca") / "pkg", "vocaset")


@pytest.fixture(scope="module")
def speech_manifest(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real speech clips with per-item subject and template, plus a missing file."""
    root = tmp_path_factory.mktemp("speech")
    clip_wav(media_dir / "audio" / "jfk_16k_mono.wav", root / "jfk.wav", 0.5, 1.5)
    clip_wav(media_dir / "audio" / "faceformer_test.wav", root / "ff.wav", 2.0, 1.2)
    flame = media_dir / "meshes" / "FLAME_sample.ply"
    with open(root / "lines.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "name", "subject", "template"])
        writer.writerow(["jfk.wav", "line_jfk", "0", str(flame)])
        writer.writerow(["ff.wav", "line_ff", "2", str(flame)])
        writer.writerow(["gone.wav", "line_gone", "1", str(flame)])
    return root / "lines.csv"


@pytest.fixture(scope="module")
def fomm_model(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from facelib.models.convert.fomm import build_package

    out = tmp_path_factory.mktemp("fomm") / "tiny"
    build_package(
        {"checkpoint": reference_dir / "fomm_tiny_seed1.pth.tar"}, out, config=reference_dir / "fomm_tiny_seed1.yaml"
    )
    return out


@pytest.fixture(scope="module")
def motion_manifest(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facelib.batch.table import write_table

    root = tmp_path_factory.mktemp("motion")
    driving = clip_video(media_dir / "video" / "fomm_driving_00.mp4", root / "drive.mp4", 5)
    images = media_dir / "images"
    table = pa.table(
        {
            "input": [str(images / "fomm_source_02_256.png"), str(images / "fomm_source_05.png")],
            "driving": [str(driving), str(driving)],
        }
    )
    return write_table(table, root / "pairs.parquet")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


def rows_by_name(result: batch.BatchResult) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in result.table().to_pylist()}


# -- inputs and options --------------------------------------------------------------------------


def test_inputs_expand_files_folders_globs_and_manifests(photos: Path, speech_manifest: Path) -> None:
    from facelib.batch.adapters import get_adapter

    adapter = get_adapter("headpose")
    options = adapter.options({})
    items = expand_inputs([photos], lambda p: adapter.accepts(p, options))
    assert [i.name for i in items] == ["corrupt", "image00050", "image00081", "image00251", "more/obama2", "talk"]
    again = expand_inputs([photos / "image00050.jpg", str(photos / "*.jpg"), photos / "more"], lambda p: True)
    # the glob repeats image00050.jpg: kept once; names stay unique
    assert [i.name for i in again] == ["image00050", "corrupt", "image00081", "image00251", "obama2"]
    same_stem = expand_inputs(
        [photos / "image00050.jpg", photos / "talk.mp4", photos / "more" / "obama2.jpg", photos / "image00081.jpg"],
        lambda p: True,
    )
    assert len({i.name for i in same_stem}) == 4
    a2f = get_adapter("audio2face")
    manifest = expand_inputs([speech_manifest], lambda p: True, a2f.path_params)
    assert [(i.name, i.params["subject"]) for i in manifest] == [
        ("line_jfk", "0"),
        ("line_ff", "2"),
        ("line_gone", "1"),
    ]
    assert manifest[0].input == str(speech_manifest.parent / "jfk.wav")
    assert Item.from_json(manifest[0].to_json()) == manifest[0]
    with pytest.raises(InputError, match="not found"):
        expand_inputs([photos / "nope.jpg"], lambda p: True)
    with pytest.raises(InputError, match="matches no input"):
        expand_inputs([str(photos / "*.png")], lambda p: True)


def test_model_paths_are_made_absolute_hub_names_kept(
    pose_models: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from facelib.batch.adapters import get_adapter

    model, _ = pose_models
    monkeypatch.chdir(model.parent)  # "fsanet" is a folder here: the workers (maybe elsewhere) get its full path
    options = get_adapter("headpose").options({"model": "fsanet"})
    assert options["model"] == str(model.resolve())
    assert options["detector"] == "ultraface-rfb-320"  # no such folder here: a hub name, resolved by the task


def test_bad_job_arguments(photos: Path, tmp_path: Path, pose_models: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="unknown batch task"):
        batch.run("nosuch", [photos], tmp_path / "a")
    with pytest.raises(InputError, match="no option"):
        batch.run("headpose", [photos], tmp_path / "a", subject="x")
    with pytest.raises(InputError, match="no input file for this task"):
        batch.run("audio2face", [photos], tmp_path / "a")
    with pytest.raises(InputError, match="engine"):
        batch.run("headpose", [photos], tmp_path / "a", engine="spark")
    # a job folder remembers its task and options
    model, detector = pose_models
    batch.run(
        "headpose", [photos / "image00050.jpg"], tmp_path / "job", model=str(model), detector=str(detector), workers=1
    )
    with pytest.raises(InputError, match="holds a 'headpose' job"):
        batch.run("blendshapes", [photos], tmp_path / "job")
    with pytest.raises(InputError, match="other task options"):
        batch.run("headpose", [photos], tmp_path / "job", model=str(model), detector=str(detector), variants="capsule")


def test_a_task_that_cannot_open_stops_the_job(photos: Path, tmp_path: Path) -> None:
    from facelib.batch.local import BatchError

    with pytest.raises(BatchError, match="could not be opened"):
        batch.run(
            "headpose",
            [photos / "image00050.jpg"],
            tmp_path / "out",
            model=str(tmp_path / "missing-pkg"),
            detector=None,
            workers=1,
        )


# -- every task: local engine == plain loop -----------------------------------------------------


@pytest.fixture(scope="module")
def headpose_local(
    pose_models: tuple[Path, Path], photos: Path, tmp_path_factory: pytest.TempPathFactory
) -> batch.BatchResult:
    model, detector = pose_models
    out = tmp_path_factory.mktemp("hp") / "out"
    return batch.run("headpose", [photos], out, workers=2, model=str(model), detector=str(detector), draw=True)


def test_headpose_local_matches_plain_loop(
    headpose_local: batch.BatchResult, pose_models: tuple[Path, Path], photos: Path
) -> None:
    result = headpose_local
    assert (result.total, result.processed, result.ok, result.errors) == (6, 6, 5, 1)
    rows = rows_by_name(result)
    assert rows["corrupt"]["status"] == "error" and rows["corrupt"]["error_type"] == "MediaReadError"
    assert "corrupt.jpg" in rows["corrupt"]["error"] and rows["corrupt"]["yaw"] is None
    inputs = {n: photos / f"{n}.jpg" for n in ("image00050", "image00081", "image00251")}
    inputs["more/obama2"] = photos / "more" / "obama2.jpg"
    inputs["talk"] = photos / "talk.mp4"
    expected = headpose_loop(*pose_models, list(inputs.values()))
    for name, path in inputs.items():
        row = rows[name]
        assert row["status"] == "ok" and row["error"] is None and row["seconds"] > 0
        assert_columns_close(row, expected[path.name])
    assert rows["image00081"]["frames"] == 1 and len(rows["image00081"]["yaw"]) == 2  # two faces
    assert rows["talk"]["frames"] == 6 and rows["talk"]["frames_with_face"] == 6
    # outputs where `facelib headpose --json/--draw` would put them, named after the item
    assert rows["more/obama2"]["outputs"] == ["more/obama2.json", "more/obama2.png"]
    report = json.loads((result.outdir / "more" / "obama2.json").read_text())
    assert report["faces"][0]["yaw"] == pytest.approx(rows["more/obama2"]["yaw"][0], abs=1e-4)
    assert rows["talk"]["outputs"] == ["talk.json", "talk.mp4"]
    assert len(json.loads((result.outdir / "talk.json").read_text())["frames"]) == 6
    # typed columns
    schema = result.table().schema
    assert schema.field("yaw").type == pa.list_(pa.float32())
    assert schema.field("face_box").type == pa.list_(pa.list_(pa.float32(), 4))
    assert schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert {r["worker"] for r in rows.values()} and all(r["attempts"] == 1 for r in rows.values())
    # nothing half-written or left behind
    leftovers = [p for p in result.outdir.rglob("*") if p.name.endswith(".part")]
    assert leftovers == [] and list((result.outdir / ".facelib-batch" / "staging").iterdir()) == []


def test_finished_job_is_not_redone(
    headpose_local: batch.BatchResult, pose_models: tuple[Path, Path], photos: Path
) -> None:
    model, detector = pose_models
    stamp = {p: p.stat().st_mtime_ns for p in headpose_local.outdir.rglob("*.json")}
    again = batch.run(
        "headpose", [photos], headpose_local.outdir, workers=2, model=str(model), detector=str(detector), draw=True
    )
    assert (again.skipped, again.processed) == (6, 0)
    assert {p: p.stat().st_mtime_ns for p in headpose_local.outdir.rglob("*.json")} == stamp
    retried = batch.run(
        "headpose",
        [photos],
        headpose_local.outdir,
        workers=1,
        model=str(model),
        detector=str(detector),
        draw=True,
        retry_errors=True,
    )
    assert (retried.skipped, retried.processed, retried.errors) == (5, 1, 1)  # only the corrupt file again


def test_blendshapes_local_matches_plain_loop(
    mediapipe_package: Path, clips: Path, photos: Path, tmp_path: Path
) -> None:
    result = batch.run(
        "blendshapes", [clips, photos / "image00251.jpg"], tmp_path / "out", workers=2, model=str(mediapipe_package)
    )
    rows = rows_by_name(result)
    assert sorted(rows) == ["broken", "drive", "image00251", "talk"]
    assert rows["broken"]["status"] == "error" and rows["broken"]["error_type"] == "MediaReadError"
    expected = blendshapes_loop(mediapipe_package, [clips / "talk.mp4", clips / "drive.mp4", photos / "image00251.jpg"])
    for name, file in (("talk", "talk.mp4"), ("drive", "drive.mp4"), ("image00251", "image00251.jpg")):
        assert rows[name]["status"] == "ok", rows[name]["error"]
        assert_columns_close(rows[name], expected[file], atol=2e-4)
    assert rows["talk"]["frames"] == 8 and rows["talk"]["frames_with_face"] == 8
    assert result.table().schema.field("jawOpen").type == pa.list_(pa.float32())
    assert set(ARKIT_NAMES) <= set(result.table().column_names)
    # a Live Link Face CSV per clip with one line per frame (as `facelib blendshapes --csv`)
    with open(result.outdir / "talk.csv", newline="") as fh:
        lines = list(csv.reader(fh))
    assert len(lines) == 1 + 8 and "JawOpen" in lines[0]
    # and facelib's blendshape JSON (what `facelib export` reads) for clips and photos
    from facelib.io.blendshape_export import load_json

    assert rows["talk"]["outputs"] == ["talk.csv", "talk.json"]
    take = load_json(result.outdir / "talk.json")
    assert [f.index for f in take] == list(range(8))
    jaw = ARKIT_NAMES.index("jawOpen")
    np.testing.assert_allclose([f.faces[0].blendshapes[jaw] for f in take], rows["talk"]["jawOpen"], atol=1e-6)
    (still,) = load_json(result.outdir / "image00251.json")
    assert len(still.faces) == len(rows["image00251"]["face_score"]) >= 1


def test_audio2face_local_matches_plain_loop(
    a2f_model: Path, speech_manifest: Path, media_dir: Path, tmp_path: Path
) -> None:
    from facelib.tasks.audio2face import Audio2Face

    result = batch.run("audio2face", [speech_manifest], tmp_path / "out", workers=2, model=str(a2f_model))
    rows = rows_by_name(result)
    assert rows["line_gone"]["status"] == "error"
    flame = media_dir / "meshes" / "FLAME_sample.ply"
    with Audio2Face(a2f_model) as task:
        for name, wav, subject in (("line_jfk", "jfk.wav", 0), ("line_ff", "ff.wav", 2)):
            want = task.predict(speech_manifest.parent / wav, subject, flame)
            got = np.load(result.outdir / f"{name}.npy")
            np.testing.assert_allclose(got, want.vertices, atol=1e-5)
            row = rows[name]
            assert row["frames"] == want.num_frames and row["subject"] == task.subjects[subject]
            assert row["vertices"] == 5023 and row["duration_s"] == pytest.approx(want.num_frames / 30)
            assert json.loads(row["params"])["subject"] == str(subject)


def test_motion_local_matches_plain_loop(fomm_model: Path, motion_manifest: Path, tmp_path: Path) -> None:
    from facelib.tasks.motion_transfer import MotionTransfer

    result = batch.run("motion", [motion_manifest], tmp_path / "out", workers=2, model=str(fomm_model), format="npy")
    rows = rows_by_name(result)
    assert sorted(rows) == ["fomm_source_02_256", "fomm_source_05"]
    with MotionTransfer(fomm_model) as task:
        for name, row in rows.items():
            assert row["status"] == "ok", row["error"]
            want = np.stack(list(task.animate(row["source"], row["driving"])))
            got = np.load(result.outdir / f"{name}.npy")
            assert row["frames"] == len(want) == 5
            np.testing.assert_allclose(got, want, atol=1e-5)
    # the same pairs as images with one driving=VIDEO option (a folder of portraits, one driver)
    first = rows["fomm_source_02_256"]
    folder = tmp_path / "portraits"
    folder.mkdir()
    (folder / "a.png").write_bytes(Path(first["input"]).read_bytes())
    again = batch.run(
        "motion", [folder], tmp_path / "out2", workers=1, model=str(fomm_model), format="npy", driving=first["driving"]
    )
    (row,) = again.table().to_pylist()
    assert row["driving"] == first["driving"] and row["source"] == str(folder / "a.png")
    np.testing.assert_array_equal(np.load(again.outdir / "a.npy"), np.load(result.outdir / "fomm_source_02_256.npy"))


# -- the Ray engine on a local cluster ------------------------------------------------------------


@pytest.mark.slow
def test_ray_matches_local_for_every_task(
    ray_cluster: Any,
    headpose_local: batch.BatchResult,
    pose_models: tuple[Path, Path],
    photos: Path,
    mediapipe_package: Path,
    clips: Path,
    a2f_model: Path,
    speech_manifest: Path,
    fomm_model: Path,
    motion_manifest: Path,
    tmp_path: Path,
) -> None:
    model, detector = pose_models
    hp = batch.run(
        "headpose", [photos], tmp_path / "hp", engine="ray", model=str(model), detector=str(detector), draw=True
    )
    assert (hp.ok, hp.errors) == (5, 1)
    local = rows_by_name(headpose_local)
    for name, row in rows_by_name(hp).items():
        assert row["status"] == local[name]["status"] and row["outputs"] == local[name]["outputs"]
        if row["status"] == "ok":
            assert_columns_close(row, {k: local[name][k] for k in ("face_frame", "face_box", "yaw", "pitch", "roll")})
    bs = batch.run("blendshapes", [clips], tmp_path / "bs", engine="ray", model=str(mediapipe_package))
    expected = blendshapes_loop(mediapipe_package, [clips / "talk.mp4", clips / "drive.mp4"])
    rows = rows_by_name(bs)
    assert rows["broken"]["status"] == "error"
    assert_columns_close(rows["talk"], expected["talk.mp4"], atol=2e-4)
    assert_columns_close(rows["drive"], expected["drive.mp4"], atol=2e-4)
    a2f = batch.run("audio2face", [speech_manifest], tmp_path / "a2f", engine="ray", model=str(a2f_model))
    assert (a2f.ok, a2f.errors) == (2, 1)
    local_a2f = batch.run("audio2face", [speech_manifest], tmp_path / "a2f_local", workers=1, model=str(a2f_model))
    for name in ("line_jfk", "line_ff"):
        np.testing.assert_allclose(
            np.load(a2f.outdir / f"{name}.npy"), np.load(local_a2f.outdir / f"{name}.npy"), atol=1e-5
        )
    mo = batch.run("motion", [motion_manifest], tmp_path / "mo", engine="ray", model=str(fomm_model), format="npy")
    from facelib.tasks.motion_transfer import MotionTransfer

    with MotionTransfer(fomm_model) as task:
        for name, row in rows_by_name(mo).items():
            want = np.stack(list(task.animate(row["source"], row["driving"])))
            np.testing.assert_allclose(np.load(mo.outdir / f"{name}.npy"), want, atol=1e-5)


@pytest.mark.slow
def test_ray_actor_killed_midway(
    ray_cluster: Any, pose_models: tuple[Path, Path], media_dir: Path, tmp_path: Path
) -> None:
    """A Ray actor process killed mid-job: Ray restarts it, no item is lost or done twice."""
    folder = _many_photos(media_dir, tmp_path / "in", 12)
    model, detector = pose_models
    out = tmp_path / "out"
    box: dict[str, Any] = {}

    def job() -> None:
        box["result"] = batch.run(
            "headpose", [folder], out, engine="ray", workers=2, model=str(model), detector=str(detector)
        )

    thread = threading.Thread(target=job)
    thread.start()
    rows_dir = out / ".facelib-batch" / "rows"
    first = _wait_for_rows(rows_dir, 1, thread)
    pid = int(json.loads(first[0].read_text())["worker"].rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    thread.join(300)
    assert not thread.is_alive()
    result = box["result"]
    assert result.complete and result.ok == 12
    rows = result.table().to_pylist()
    assert len(rows) == 12 and len({r["name"] for r in rows}) == 12
    assert pid in {int(r["worker"].rsplit(":", 1)[1]) for r in rows}
    assert any(int(r["worker"].rsplit(":", 1)[1]) != pid for r in rows)


# -- stopped jobs and dying workers (local engine, the CLI in a subprocess) -----------------------


def _many_photos(media: Path, folder: Path, count: int) -> Path:
    """``count`` real photos (the AFLW2000 images, repeated under new names)."""
    folder.mkdir(parents=True)
    sources = sorted((media / "aflw2000").glob("*.jpg"))
    for i in range(count):
        (folder / f"p{i:02d}.jpg").write_bytes(sources[i % len(sources)].read_bytes())
    return folder


def _wait_for_rows(rows_dir: Path, count: int, alive: Any, timeout: float = 240) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sorted(p for p in rows_dir.glob("*.json") if not p.name.startswith(".")) if rows_dir.is_dir() else []
        if len(rows) >= count:
            return rows
        running = alive.is_alive() if hasattr(alive, "is_alive") else alive.poll() is None
        assert running, "the job ended before the rows appeared"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} rows after {timeout} s")


def _cli(args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "facelib", "batch", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        kids += [int(t) for t in text]
    return kids


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_job_stopped_midway_resumes(how: str, pose_models: tuple[Path, Path], media_dir: Path, tmp_path: Path) -> None:
    folder = _many_photos(media_dir, tmp_path / "in", 14)
    model, detector = pose_models
    out = tmp_path / "out"
    args = [
        "headpose",
        str(folder),
        "-o",
        str(out),
        "--workers",
        "1",
        "--model",
        str(model),
        "--detector",
        str(detector),
    ]
    proc = _cli(args)
    rows_dir = out / ".facelib-batch" / "rows"
    _wait_for_rows(rows_dir, 3, proc)
    if how == "SIGKILL":  # the whole job, workers included, as a lost machine
        os.killpg(proc.pid, signal.SIGKILL)
    else:  # Ctrl-C: the job stops cleanly, with a results table of what it finished
        os.kill(proc.pid, signal.SIGINT)
    code = proc.wait(60)
    # rows committed before the stop (a row being written at the kill is a hidden partial file)
    before = {p.name: p.read_bytes() for p in rows_dir.glob("*.json") if not p.name.startswith(".")}
    assert 3 <= len(before) < 14
    if how == "SIGINT":
        assert code == 130
        assert pq.read_table(out / "results.parquet").num_rows == len(before)
    # no output under a final name without its content: every published JSON parses
    for path in out.glob("*.json"):
        json.loads(path.read_text())
    result = batch.run("headpose", [folder], out, workers=2, model=str(model), detector=str(detector))
    assert result.complete and (result.skipped, result.processed) == (len(before), 14 - len(before))
    # rows committed before the stop are untouched (not redone); the rest are from the second run
    for name, data in before.items():
        assert (rows_dir / name).read_bytes() == data
    rows = result.table().to_pylist()
    assert sorted(r["name"] for r in rows) == [f"p{i:02d}" for i in range(14)]
    assert all(r["status"] == "ok" for r in rows)
    assert len({r["run_id"] for r in rows}) == 2
    assert all(r["attempts"] <= 2 for r in rows)
    assert sorted(p.stem for p in out.glob("*.json")) == [f"p{i:02d}" for i in range(14)]


def test_worker_killed_midway(pose_models: tuple[Path, Path], media_dir: Path, tmp_path: Path) -> None:
    folder = _many_photos(media_dir, tmp_path / "in", 10)
    model, detector = pose_models
    out = tmp_path / "out"
    proc = _cli(
        [
            "headpose",
            str(folder),
            "-o",
            str(out),
            "--workers",
            "2",
            "--model",
            str(model),
            "--detector",
            str(detector),
            "--no-progress",
        ]
    )
    rows_dir = out / ".facelib-batch" / "rows"
    first = _wait_for_rows(rows_dir, 1, proc)
    pid = int(json.loads(first[0].read_text())["worker"].rsplit(":", 1)[1])
    assert pid in _children(proc.pid)
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert b"10 items" in stdout
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert sorted(r["name"] for r in rows) == [f"p{i:02d}" for i in range(10)]
    assert all(r["status"] == "ok" for r in rows)
    # the replacement worker took over; the killed one finished at least the first item
    workers = {r["worker"] for r in rows}
    assert len(workers) >= 2 and any(w.endswith(f":{pid}") for w in workers)


def test_item_that_keeps_killing_its_worker_gets_an_error_row(
    pose_models: tuple[Path, Path], photos: Path, tmp_path: Path
) -> None:
    model, detector = pose_models
    store = JobStore(tmp_path / "out")
    options = {"model": str(model), "detector": str(detector)}
    from facelib.batch.adapters import get_adapter

    merged = get_adapter("headpose").options(options)
    store.open_job("headpose", merged)
    item = Item("image00050", str(photos / "image00050.jpg"))
    store.begin(item.name)
    store.begin(item.name)  # two starts that never finished: the worker died twice
    runner = ItemRunner(JobConfig("headpose", merged, str(store.outdir), "run1", max_attempts=2))
    row = runner.run(item)
    assert row["status"] == "error" and row["error_type"] == "WorkerDied" and row["attempts"] == 3
    assert not (store.outdir / "image00050.json").exists()
    # under the limit it runs normally
    other = runner.run(Item("image00081", str(photos / "image00081.jpg")))
    assert other["status"] == "ok" and other["attempts"] == 1
    runner.close()


def test_cli_batch_exit_status_and_summary(pose_models: tuple[Path, Path], photos: Path, tmp_path: Path) -> None:
    from facelib.cli import main

    model, detector = pose_models
    out = tmp_path / "out"
    code = main(
        [
            "batch",
            "headpose",
            str(photos / "image00050.jpg"),
            str(photos / "corrupt.jpg"),
            "-o",
            str(out),
            "--workers",
            "1",
            "--model",
            str(model),
            "--detector",
            str(detector),
            "--no-progress",
        ]
    )
    assert code == 1  # an error row
    table = pq.read_table(out / "results.parquet").to_pylist()
    assert [r["status"] for r in table] == ["ok", "error"]
    assert main(["batch", "headpose", str(photos / "nope.jpg"), "-o", str(out)]) == 2


@pytest.mark.slow
def test_cli_ray_engine_starts_and_stops_its_own_cluster(
    pose_models: tuple[Path, Path], photos: Path, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    model, detector = pose_models
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "facelib",
            "batch",
            "headpose",
            str(photos / "image00081.jpg"),
            str(photos / "talk.mp4"),
            "-o",
            str(out),
            "--engine",
            "ray",
            "--workers",
            "2",
            "--model",
            str(model),
            "--detector",
            str(detector),
            "--no-progress",
        ],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "2 items: 2 done now (2 ok, 0 errors)" in done.stdout
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert [r["name"] for r in rows] == ["image00081", "talk"] and rows[1]["frames"] == 6


def test_core_imports_neither_ray_nor_pyarrow() -> None:
    code = (
        "import sys, facelib, facelib.cli, facelib.batch, facelib.batch.local, facelib.batch.ray_engine\n"
        "facelib.cli.build_parser()\n"
        "print(sorted(m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch, photos: Path, tmp_path: Path) -> None:
    from facelib.batch.ray_engine import run_ray
    from facelib.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    config = JobConfig("headpose", {}, str(tmp_path), "r")
    with pytest.raises(MissingDependencyError, match=r"facelib\[ray\]"):
        next(run_ray(config, [Item("a", str(photos / "image00050.jpg"))], 1))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"facelib\[batch\]"):
        batch.run("headpose", [photos], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_row_killed_while_being_written_does_not_count(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "out")
    assert store.open_job("headpose", {"model": "m"}) is False
    row = {"name": "a/b", "status": "ok", "run_id": "r1"}
    store.commit(row)
    assert store.read_row("a/b") == row and store.row_path("a/b").name == "a%2Fb.json"
    # a complete row that was not yet renamed into place when the job was killed
    (store.rows_dir / ".c.x1y2.part.json").write_text(json.dumps({"name": "c", "status": "ok"}))
    assert [r["name"] for r in store.iter_rows()] == ["a/b"]
    assert store.open_job("headpose", {"model": "m"}) is True  # resuming clears it
    assert [p.name for p in store.rows_dir.iterdir()] == ["a%2Fb.json"]
