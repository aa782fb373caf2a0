"""Long inputs keep memory bounded: streaming APIs fed a long generator of fresh frames hold no
growing state.  Python/numpy allocations are measured with tracemalloc (numpy reports to it): the
memory in use late in the stream must not exceed the memory in use early on by more than a few
frames' worth, whereas keeping every frame would add ``frames x frame size``."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.io.video import Frame, iter_frames
from facelib.results import BlendshapeFrame, FaceBlendshapes


@pytest.fixture(scope="module")
def clip(media_dir: Path) -> list[np.ndarray]:
    return [f.image for f, _ in zip(iter_frames(media_dir / "video" / "talking_face_01.mp4"), range(20))]


def _long(clip: list[np.ndarray], n: int) -> Iterator[Frame]:
    """``n`` frames cycling over ``clip``, each a fresh copy (as a decoder would hand out)."""
    for i in range(n):
        yield Frame(i, i * 1000 / 30, clip[i % len(clip)].copy())


def _growth(results: Iterable[Any], early: int, late: int) -> int:
    """Bytes in use at result ``late`` minus bytes in use at result ``early``."""
    tracemalloc.start()
    try:
        marks = {}
        for i, _ in enumerate(results):
            if i in (early, late):
                marks[i] = tracemalloc.get_traced_memory()[0]
        assert set(marks) == {early, late}, "the stream ended early"
        return marks[late] - marks[early]
    finally:
        tracemalloc.stop()


def _bounded(make: Callable[[], Iterable[Any]], frame_bytes: int, early: int = 10, late: int = 70) -> None:
    growth = _growth(make(), early, late)
    # holding on to every frame would grow by (late - early) frames; allow a couple
    assert growth < 3 * frame_bytes, f"memory grew by {growth / 1e6:.1f} MB over {late - early} frames"


def test_headpose_video_stream_is_bounded(models_dir: Path, tmp_path: Path, clip: list[np.ndarray]) -> None:
    from facelib.tasks.head_pose import HeadPose

    pose, det = build_fsanet(models_dir, tmp_path / "fsanet"), build_ultraface(models_dir, tmp_path / "ultraface")
    with HeadPose(pose, detector=det, backend="onnxruntime", variants=["capsule"]) as task:
        _bounded(lambda: task.predict_video(_long(clip, 80)), clip[0].nbytes)


def test_face_landmarker_stream_is_bounded(mediapipe_package: Path, clip: list[np.ndarray]) -> None:
    from facelib.tasks.face_landmarker import FaceLandmarker

    with FaceLandmarker(mediapipe_package, mode="video", output_blendshapes=True, output_transform=True) as lm:
        _bounded(lambda: lm.stream((f.image, f.timestamp_ms) for f in _long(clip, 80)), clip[0].nbytes)


def test_livelink_csv_writer_streams(tmp_path: Path) -> None:
    from facelib.io.livelink import LiveLinkCSVWriter

    face = FaceBlendshapes(
        np.zeros(4, np.float32), 1.0, np.full(52, 0.5, np.float32), head_pose=np.zeros(3, np.float32)
    )

    def frames() -> Iterator[int]:
        with LiveLinkCSVWriter(tmp_path / "long.csv") as writer:
            for i in range(3000):
                writer.write(BlendshapeFrame(i, i * 1000 / 60, (face,)))
                yield i

    growth = _growth(frames(), 200, 2900)
    assert growth < 200_000  # 2700 rows of 61 values held in memory would be > 1 MB
    assert len((tmp_path / "long.csv").read_text().splitlines()) == 3001


def test_audio2face_stream_is_bounded(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("facelib.tasks.audio2face")  # merged from the audio2face branch
    pytest.importorskip("torch")  # to convert the tiny checkpoint
    helpers = pytest.importorskip("faceformer_helpers")  # tests/ of the audio2face branch
    from facelib.io.audio import load_audio
    from facelib.tasks.audio2face import Audio2Face

    pkg = helpers.convert(reference_dir, tmp_path / "faceformer", "vocaset")
    template = helpers.reference(reference_dir, "vocaset")["template"]
    speech = load_audio(media_dir / "audio" / "jfk_16k_mono.wav")
    chunk = 8000  # 0.5 s

    with Audio2Face(pkg, backend="onnxruntime", max_context=30) as task:
        stream = task.stream(0, template)

        def chunks() -> Iterator[int]:  # 40 s of speech, the clip over and over
            for i in range(80):
                start = (i * chunk) % (len(speech) - chunk)
                stream.feed(speech[start : start + chunk].copy())
                yield i

        growth = _growth(chunks(), 20, 75)
    # 55 chunks = 825 frames: keeping the frames would add ~50 MB, keeping the audio 1.8 MB
    assert growth < 1_000_000, f"memory grew by {growth / 1e6:.1f} MB"
