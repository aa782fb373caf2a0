"""What a new user hit with the real models (issue 20): one head-pose convention for both tasks,
grayscale portraits, faceless videos, and interrupting a real command mid-write."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.cli import main
from facelib.io.image import read_image

PORTRAITS = ["images/obama.jpg", "images/obama2.jpg", "images/two_people.jpg"]
#: AFLW2000 images whose labelled yaw is within +-45 degrees (image00251/00475 are near-profile).
AFLW = ["aflw2000/image00050.jpg", "aflw2000/image00081.jpg", "aflw2000/image00430.jpg", "aflw2000/image00514.jpg"]


@pytest.fixture(scope="module")
def pose_packages(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("firsthour")
    return build_fsanet(models_dir, root / "fsanet"), build_ultraface(models_dir, root / "uf")


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)


def test_headpose_and_blendshapes_agree_on_yaw_pitch_roll(pose_packages, mediapipe_package, media_dir):
    """Both tasks report the same signed angles for the same faces (the convention of
    docs/decisions.md), within what two different models can agree on."""
    from facelib import BlendshapeCapture, HeadPose

    fsanet, ultraface = pose_packages
    pairs = []
    with HeadPose(fsanet, detector=ultraface) as pose, BlendshapeCapture(mediapipe_package, num_faces=2) as capture:
        for name in PORTRAITS + AFLW:
            faces = pose.predict(media_dir / name)
            captured = capture.process(media_dir / name).faces
            for face in faces:
                if not captured or min(face.box[2] - face.box[0], face.box[3] - face.box[1]) < 60:
                    continue  # a background face too small for the landmarker
                other = min(captured, key=lambda c: np.linalg.norm(_centre(c.box) - _centre(face.box)))
                assert other.head_pose is not None
                pairs.append((np.array([face.yaw, face.pitch, face.roll]), np.asarray(other.head_pose, np.float64)))
    assert len(pairs) >= 8
    pose_angles = np.stack([p for p, _ in pairs])
    capture_angles = np.stack([c for _, c in pairs])
    diff = np.abs(pose_angles - capture_angles)
    assert diff.mean(axis=0).max() < 6.0, diff  # mean per axis: a few degrees
    assert diff.max() < 15.0, diff  # no face disagrees grossly (opposite signs gave up to 29)
    clear = (np.abs(pose_angles) > 8) & (np.abs(capture_angles) > 8)
    assert clear.sum() >= 4 and np.all(np.sign(pose_angles[clear]) == np.sign(capture_angles[clear]))


def test_blendshapes_find_the_face_of_a_grayscale_portrait(mediapipe_package, media_dir):
    """A grayscale near-profile (AFLW2000 image00475): head pose finds it, so must blendshapes."""
    import cv2

    from facelib import BlendshapeCapture

    colour = read_image(media_dir / "aflw2000" / "image00475.jpg")
    gray = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    with BlendshapeCapture(mediapipe_package) as capture:
        found = capture.process(gray).faces
        assert len(found) == 1 and found[0].score > 0.5
        reference = capture.process(colour).faces[0]
    assert np.linalg.norm(_centre(found[0].box) - _centre(reference.box)) < 15
    assert found[0].head_pose is not None and found[0].head_pose[0] > 30  # turned to the image left


def test_blendshapes_csv_of_a_video_without_faces(mediapipe_package, tmp_path, capsys):
    """No face in any frame: exit 2 and no CSV, rather than rows of zeros (a neutral face)."""
    from facelib.io.video import VideoWriter

    video = tmp_path / "wall.mp4"
    rng = np.random.default_rng(1)
    with VideoWriter(video, 10) as writer:
        for _ in range(6):
            writer.write(np.full((96, 128, 3), 90, np.uint8) + rng.integers(0, 20, (96, 128, 3), dtype=np.uint8))
    out = tmp_path / "take.csv"
    code = main(["blendshapes", str(video), "--model", str(mediapipe_package), "--csv", str(out)])
    assert code == 2
    assert "no face in any of the 6 frames" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall.mp4"]


def test_output_mistakes_fail_before_any_work(pose_packages, mediapipe_package, media_dir, tmp_path, capsys):
    fsanet, ultraface = pose_packages
    image = str(media_dir / "images" / "obama.jpg")
    video = str(media_dir / "video" / "talking_face_01.mp4")
    hp = ["--model", str(fsanet), "--detector", str(ultraface)]
    (tmp_path / "dir").mkdir()
    cases = [
        (["headpose", image, "--draw", str(tmp_path / "out.xyz"), *hp], "image file"),
        (["headpose", video, "--draw", str(tmp_path / "x.png"), *hp], "video file"),
        (["headpose", image, image, "--draw", str(tmp_path / "x.png"), *hp], "directory"),
        (["blendshapes", image, "--model", str(mediapipe_package), "--csv", str(tmp_path / "dir")], "is a directory"),
        (["blendshapes", image, "--model", str(mediapipe_package), "--draw", str(tmp_path / "o.xyz")], "image file"),
        (["blendshapes", str(tmp_path / "dir"), "--model", str(mediapipe_package)], "is a directory"),
        (["motion", "--model", "x", "--source", str(tmp_path / "dir"), "--driving", video, "-o", "o.mp4"], "directory"),
        (["audio2face", "--model", "x", "--audio", str(tmp_path / "dir")], "is a directory"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"] and not any((tmp_path / "dir").iterdir())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_headpose_draw_leaves_no_video(pose_packages, media_dir, tmp_path, sig):
    fsanet, ultraface = pose_packages
    out = tmp_path / "drawn.mp4"
    video = media_dir / "video" / "talking_face_01.mp4"
    cmd = [sys.executable, "-m", "facelib.cli", "headpose", str(video), "--model", str(fsanet)]
    cmd += ["--detector", str(ultraface), "--draw", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("frame 5:"):
                break
        else:
            pytest.fail(f"no per-frame output: {proc.stderr.read() if proc.stderr else ''}")
        proc.send_signal(sig)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == (130 if sig == signal.SIGINT else 143)
    assert list(tmp_path.iterdir()) == []


def _record_progress(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None, int]]:
    """Replace the progress bar by a recorder of (desc, total, items seen)."""
    import facelib._progress

    calls: list[tuple[str, int | None, int]] = []

    def fake(items, total=None, desc="", enabled=None, unit="it"):  # type: ignore[no-untyped-def]
        count = 0
        for item in items:
            count += 1
            yield item
        calls.append((desc, total, count))

    monkeypatch.setattr(facelib._progress, "progress", fake)
    return calls


def test_headpose_video_shows_progress(pose_packages, media_dir, tmp_path, monkeypatch, capsys):
    fsanet, ultraface = pose_packages
    data = (media_dir / "video" / "talking_face_01.mp4").read_bytes()
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: len(data) // 10])
    calls = _record_progress(monkeypatch)
    assert main(["headpose", str(short), "--model", str(fsanet), "--detector", str(ultraface), "--json"]) == 0
    assert [c[0] for c in calls] == ["headpose"] and calls[0][2] > 0 and calls[0][1]


def test_audio2face_shows_progress(reference_dir, media_dir, tmp_path, monkeypatch):
    from faceformer_helpers import convert

    package = convert(reference_dir, tmp_path / "voca", "vocaset")
    calls = _record_progress(monkeypatch)
    out = tmp_path / "a.npy"
    argv = ["audio2face", "--model", str(package), "--audio", str(media_dir / "audio" / "jfk_16k_mono.wav")]
    argv += ["--template", str(media_dir / "meshes" / "FLAME_sample.ply"), "-o", str(out)]
    assert main(argv) == 0
    (desc, total, seen) = calls[0]
    assert desc == "audio2face" and total is not None and abs(total - seen) <= 2
    assert np.load(out).shape[0] == seen
