"""Streaming Audio2Face options (issue 19): running normalisation, cross-fade, latency of the default."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
from faceformer_helpers import convert, reference

from facelib.errors import InputError
from facelib.tasks.audio2face import STREAM_WINDOWING, Audio2Face, Windowing

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def voca(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(reference_dir, tmp_path_factory.mktemp("voca"), "vocaset")


@pytest.fixture(scope="module")
def speech(media_dir: Path) -> np.ndarray:
    from facelib.io.audio import load_audio

    return load_audio(media_dir / "audio" / "faceformer_test.wav")[: 16000 * 6]


def _stream(task: Audio2Face, audio: np.ndarray, template: np.ndarray, windowing: Windowing, chunk: int) -> tuple:
    stream = task.stream(0, template, windowing=windowing)
    frames, fed_at = [], []
    for i in range(0, len(audio), chunk):
        got = stream.feed(audio[i : i + chunk])
        frames += got
        fed_at += [min(i + chunk, len(audio))] * len(got)
    rest = stream.close()
    return np.stack(frames + rest), np.asarray(fed_at + [len(audio)] * len(rest)), stream


def test_windowing_is_validated() -> None:
    with pytest.raises(InputError, match="stream_normalization"):
        Windowing(stream_normalization="global")
    with pytest.raises(InputError, match="crossfade_seconds"):
        Windowing(right_seconds=0.5, crossfade_seconds=0.6)


def test_running_statistics_cover_everything_seen(voca: Path, speech: np.ndarray) -> None:
    windowing = attrs.evolve(STREAM_WINDOWING, stream_normalization="running")
    with Audio2Face(voca) as task:
        encoder = task._encoder(windowing, None, None)
        loud = speech * 4.0
        encoder.feed(loud[: 16000 * 4])
        assert encoder.buf_start > 0  # earlier samples were dropped from the buffer...
        mean, var = encoder._running_stats(len(encoder.buffer))
        seen = loud[: encoder.buf_start + len(encoder.buffer)].astype(np.float64)
        # ...but still count in the statistics (float64 sums)
        assert mean == pytest.approx(seen.mean(), rel=1e-9, abs=1e-12)
        assert var == pytest.approx(seen.var(), rel=1e-9)


def test_default_stream_latency_and_chunking(voca: Path, reference_dir: Path, speech: np.ndarray) -> None:
    tpl = reference(reference_dir, "vocaset")["template"]
    w = STREAM_WINDOWING
    assert w.stream_normalization == "running" and w.crossfade_seconds == 0.0
    with Audio2Face(voca) as task:
        small, fed_at, stream = _stream(task, speech, tpl, w, 320)
        large, _, _ = _stream(task, speech, tpl, w, 7000)
        batch = task.predict(speech, 0, tpl, causal=True).vertices
    # running statistics run to each window's last sample: chunking does not change the result
    np.testing.assert_array_equal(small, large)
    assert batch is not None
    np.testing.assert_array_equal(small, batch)
    assert stream.lookahead_seconds == pytest.approx(0.8)
    # every frame came out once at most core + look-ahead (+ one 20 ms chunk) of audio past its start
    n = len(fed_at) - 1  # the last frames come out at close()
    wait = fed_at[:n] / 16000 - np.arange(n) / task.fps
    assert wait.max() <= w.core_seconds + w.right_seconds + 0.02 + 1e-9
    assert wait[0] <= 0.8 + 0.02 + 1e-9


def test_crossfade_changes_frames_after_the_first_seam_only(
    voca: Path, reference_dir: Path, speech: np.ndarray
) -> None:
    tpl = reference(reference_dir, "vocaset")["template"]
    plain = attrs.evolve(STREAM_WINDOWING, crossfade_seconds=0.0)
    faded = attrs.evolve(STREAM_WINDOWING, crossfade_seconds=0.2)
    with Audio2Face(voca) as task:
        a, _, _ = _stream(task, speech, tpl, plain, 1600)
        b, _, _ = _stream(task, speech, tpl, faded, 1600)
    first = round(STREAM_WINDOWING.first_core_seconds * 30)  # frames of the first window
    assert a.shape == b.shape
    np.testing.assert_array_equal(a[:first], b[:first])
    assert np.abs(a[first] - b[first]).max() > 0
