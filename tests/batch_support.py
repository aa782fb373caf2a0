"""Datasets and plain-loop references for the batch tests, built from real media in ../shared."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path
from typing import Any

import numpy as np

from facelib.processing.arkit import ARKIT_NAMES


def clip_video(source: Path, target: Path, frames: int) -> Path:
    """The first ``frames`` frames of a real video, re-encoded (short clips keep tests fast)."""
    from facelib.io.video import VideoReader, VideoWriter

    with VideoReader(source) as reader:
        writer = VideoWriter(target, reader.fps)
        try:
            for i, frame in enumerate(reader):
                if i >= frames:
                    break
                writer.write(frame.image)
        finally:
            writer.close()
    return target


def clip_wav(source: Path, target: Path, start_s: float, seconds: float) -> Path:
    """A slice of a real PCM .wav file."""
    with wave.open(str(source), "rb") as src:
        rate = src.getframerate()
        src.setpos(int(start_s * rate))
        data = src.readframes(int(seconds * rate))
        with wave.open(str(target), "wb") as dst:
            dst.setparams(src.getparams())
            dst.writeframes(data)
    return target


def image_folder(media: Path, root: Path) -> Path:
    """Real photos (one in a sub-folder), a short real clip, and a corrupt JPEG."""
    root.mkdir(parents=True)
    (root / "more").mkdir()
    for name in ("image00050.jpg", "image00081.jpg", "image00251.jpg"):
        shutil.copy(media / "aflw2000" / name, root / name)
    shutil.copy(media / "images" / "obama2.jpg", root / "more" / "obama2.jpg")
    (root / "corrupt.jpg").write_bytes((media / "aflw2000" / "image00430.jpg").read_bytes()[:3000])
    clip_video(media / "video" / "talking_face_01.mp4", root / "talk.mp4", 6)
    (root / "notes.txt").write_text("not an input\n")
    return root


def face_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Per-face columns of a task's plain-loop results, as the batch table holds them."""
    cols: dict[str, list[Any]] = {k: [] for k in ("face_frame", "face_box", "face_score", "yaw", "pitch", "roll")}
    for index, box, score, pose in rows:
        cols["face_frame"].append(index)
        cols["face_box"].append(list(np.asarray(box, dtype=np.float32)))
        cols["face_score"].append(float(score))
        for key, value in zip(("yaw", "pitch", "roll"), pose):
            cols[key].append(float(value))
    return cols


def headpose_loop(model: Path, detector: Path, inputs: list[Path]) -> dict[str, dict[str, list[Any]]]:
    """Head pose per input with the task API in a plain loop (per-face columns)."""
    from facelib.io.video import is_video_path
    from facelib.tasks.head_pose import HeadPose

    out = {}
    with HeadPose(model, detector=detector) as pose:
        for path in inputs:
            if is_video_path(path):
                rows = [
                    (fr.index, f.box, f.score, (f.yaw, f.pitch, f.roll))
                    for fr in pose.predict_video(path)
                    for f in fr.faces
                ]
            else:
                rows = [(0, f.box, f.score, (f.yaw, f.pitch, f.roll)) for f in pose.predict(path)]
            out[path.name] = face_columns(rows)
    return out


def blendshapes_loop(model: Path, inputs: list[Path]) -> dict[str, dict[str, list[Any]]]:
    """Blendshapes per input (image mode for photos, video mode for clips) in a plain loop."""
    from facelib.io.video import is_video_path
    from facelib.tasks.blendshapes import BlendshapeCapture

    out = {}
    with BlendshapeCapture(model, mode="image") as still, BlendshapeCapture(model, mode="video") as video:
        for path in inputs:
            frames = list(video.process_video(path)) if is_video_path(path) else [still.process(path)]
            faces = [(fr.index, f) for fr in frames for f in fr.faces]
            cols = face_columns([(i, f.box, f.score, f.head_pose) for i, f in faces])
            for k, name in enumerate(ARKIT_NAMES):
                cols[name] = [float(f.blendshapes[k]) for _, f in faces]
            cols["frames"] = [len(frames)]
            out[path.name] = cols
    return out


def assert_columns_close(row: dict[str, Any], expected: dict[str, list[Any]], atol: float = 1e-4) -> None:
    """Batch row columns equal the plain loop's (float32 precision)."""
    for key, want in expected.items():
        if key == "frames":
            assert row["frames"] == want[0], key
            continue
        got = row[key]
        assert len(got) == len(want), (key, got, want)
        if key == "face_frame":
            assert list(got) == list(want)
        else:
            np.testing.assert_allclose(
                np.asarray(got, np.float64), np.asarray(want, np.float64), atol=atol, err_msg=key
            )
