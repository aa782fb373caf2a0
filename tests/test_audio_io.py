"""Audio loading: formats, rates, channels, blockwise reading, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from facelib.errors import InputError, MediaReadError
from facelib.io.audio import audio_info, iter_audio_blocks, load_audio


def test_matches_librosa_load(media_dir: Path) -> None:
    import librosa

    wav = media_dir / "audio" / "faceformer_test.wav"  # 44.1 kHz
    ours = load_audio(wav)
    theirs, _ = librosa.load(str(wav), sr=16000)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-6
    blocks = list(iter_audio_blocks(wav, block_seconds=0.7))
    assert len(blocks) > 10
    assert np.abs(np.concatenate(blocks) - ours).max() < 1e-6
    assert audio_info(wav).duration == pytest.approx(11.5, abs=0.1)


@pytest.mark.parametrize(
    ("rate", "subtype", "channels"), [(8000, "PCM_U8", 2), (16000, "PCM_16", 1), (48000, "FLOAT", 3)]
)
def test_rates_depths_channels(tmp_path: Path, rate: int, subtype: str, channels: int) -> None:
    t = np.arange(rate) / rate
    data = np.stack([0.3 * np.sin(2 * np.pi * 200 * (c + 1) * t) for c in range(channels)], axis=1)
    path = tmp_path / f"a_{rate}.wav"
    sf.write(path, data, rate, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 1
    assert np.abs(audio).max() < 0.7


def test_flac_and_array_inputs(tmp_path: Path) -> None:
    x = (np.random.default_rng(0).normal(size=22050) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.flac", x, 22050)
    assert abs(len(load_audio(tmp_path / "a.flac")) - 16000) <= 1
    assert len(load_audio(x, sample_rate=22050)) == 16000
    pcm = (x * 32767).astype(np.int16)
    np.testing.assert_allclose(load_audio(pcm, sample_rate=16000), x, atol=1e-3)
    stereo = np.stack([x, x])  # (C, N) is accepted too
    assert load_audio(stereo, sample_rate=16000).shape == (22050,)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaReadError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(MediaReadError, match="empty"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"definitely not audio" * 10)
    with pytest.raises(MediaReadError):
        load_audio(tmp_path / "junk.wav")
    with pytest.raises(InputError, match="NaN"):
        load_audio(np.array([0.0, np.nan, 0.1], np.float32))
    with pytest.raises(InputError, match="non-empty"):
        load_audio(np.zeros(0, np.float32))
    nan_file = tmp_path / "nan.wav"
    sf.write(nan_file, np.array([0.0, np.inf, 0.0] * 100, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="NaN or infinite"):
        load_audio(nan_file)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    assert not load_audio(silent).any()  # silence is valid
