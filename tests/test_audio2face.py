"""Audio2Face task: any length, windows, bounded cache, streaming, coefficient models, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faceformer_helpers import TAGS, convert, reference

from facelib.errors import InputError, MediaReadError
from facelib.tasks.audio2face import Audio2Face, Windowing

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def voca(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(reference_dir, tmp_path_factory.mktemp("voca"), "vocaset")


@pytest.fixture(scope="module")
def biwi(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert(reference_dir, tmp_path_factory.mktemp("biwi"), "biwi")


@pytest.fixture(scope="module")
def speech(media_dir: Path) -> np.ndarray:
    from facelib.io.audio import load_audio

    return load_audio(media_dir / "audio" / "faceformer_test.wav")  # 11.5 s


def test_windowed_matches_whole(voca: Path, reference_dir: Path, speech: np.ndarray) -> None:
    ref = reference(reference_dir, "vocaset")
    tpl = ref["template"]
    with Audio2Face(voca) as whole_task:
        whole = whole_task.predict(speech, 2, tpl).vertices
    win = Windowing(whole_seconds=0, core_seconds=4.0, left_seconds=2.0, right_seconds=2.0)
    with Audio2Face(voca, windowing=win) as task:
        windowed = task.predict(speech, 2, tpl).vertices
    assert whole is not None and windowed is not None
    assert windowed.shape == whole.shape == (345, 5023, 3)
    motion = np.abs(whole - tpl).max()
    # seams: only the attention span and the first-layer group norm differ from the whole run
    err = np.abs(windowed - whole).max()
    assert err < 0.1 * motion, (err, motion)
    # frames far from any seam (within the first window's core) are closer still
    assert np.abs(windowed[:60] - whole[:60]).max() <= err


@pytest.mark.parametrize("dataset", ["vocaset", "biwi"])
def test_stream_equals_causal_batch(
    dataset: str, voca: Path, biwi: Path, reference_dir: Path, speech: np.ndarray
) -> None:
    root = voca if dataset == "vocaset" else biwi
    ref = reference(reference_dir, dataset)
    audio = speech[: 16000 * 5]
    with Audio2Face(root) as task:
        batch = task.predict(audio, 1, ref["template"], causal=True).vertices
        stream = task.stream(1, ref["template"])
        frames: list[np.ndarray] = []
        rng = np.random.default_rng(0)
        i, first_at = 0, None
        while i < len(audio):
            n = int(rng.integers(160, 8000))
            got = stream.feed(audio[i : i + n])
            if got and first_at is None:
                first_at = i + n
            frames += got
            i += n
        frames += stream.close()
    assert batch is not None
    assert len(frames) == len(batch)
    np.testing.assert_array_equal(np.stack(frames), batch)
    assert stream.first_frame_latency is not None
    assert first_at is not None and first_at < 16000 * 2  # frames arrive before the audio ends


def test_beyond_600_frames_and_bounded_cache(voca: Path, reference_dir: Path, speech: np.ndarray) -> None:
    tpl = reference(reference_dir, "vocaset")["template"]
    audio = np.concatenate([speech, speech])[: 16000 * 23]  # 689 frames at 30 fps
    win = Windowing(whole_seconds=30)
    with Audio2Face(voca, windowing=win, max_context=None) as task:
        full = task.predict(audio, 0, tpl).vertices
    with Audio2Face(voca, windowing=win, max_context=600) as task:
        bounded = task.predict(audio, 0, tpl).vertices
    with Audio2Face(voca, windowing=win, max_context=120) as task:
        short = task.predict(audio, 0, tpl).vertices
    assert full is not None and bounded is not None and short is not None
    assert full.shape == (689, 5023, 3)
    np.testing.assert_array_equal(bounded[:601], full[:601])  # identical while the cache holds everything
    assert np.isfinite(bounded).all()
    motion = np.abs(full - tpl).max()
    assert np.abs(bounded - full).max() < 0.05 * motion
    np.testing.assert_array_equal(short[:121], full[:121])


def test_subjects_and_templates(voca: Path, reference_dir: Path, speech: np.ndarray, media_dir: Path) -> None:
    ref = reference(reference_dir, "vocaset")
    with Audio2Face(voca) as task:
        by_name = task.predict(speech[:16000], task.subjects[2], ref["template"])
        by_index = task.predict(speech[:16000], 2, ref["template"])
        assert by_name.subject == task.subjects[2]
        np.testing.assert_array_equal(by_name.vertices, by_index.vertices)
        flame = task.predict(speech[:16000], "2", media_dir / "meshes" / "FLAME_sample.ply")
        assert flame.vertices is not None and flame.vertices.shape == (29, 5023, 3)
        with pytest.raises(InputError, match="unknown subject"):
            task.predict(speech[:16000], "nobody", ref["template"])
        with pytest.raises(InputError, match="out of range"):
            task.predict(speech[:16000], 99, ref["template"])
        with pytest.raises(InputError, match="no template"):
            task.predict(speech[:16000], 0)
        with pytest.raises(InputError, match="vertices"):
            task.predict(speech[:16000], 0, media_dir / "meshes" / "BIWI.ply")


def test_bad_and_odd_audio(voca: Path, reference_dir: Path, tmp_path: Path) -> None:
    import soundfile as sf

    tpl = reference(reference_dir, "vocaset")["template"]
    with Audio2Face(voca) as task:
        silent = task.predict(np.zeros(16000, np.float32), 0, tpl)
        assert silent.vertices is not None and silent.num_frames == 29  # int(49 CNN frames / 50 * 30)
        assert np.isfinite(silent.vertices).all()
        with pytest.raises(InputError, match="NaN"):
            task.predict(np.full(16000, np.nan, np.float32), 0, tpl)
        with pytest.raises(InputError, match="too short"):
            task.predict(np.zeros(500, np.float32), 0, tpl)
        empty = tmp_path / "empty.wav"
        empty.write_bytes(b"")
        with pytest.raises(MediaReadError, match="empty"):
            task.predict(empty, 0, tpl)
        corrupt = tmp_path / "corrupt.wav"
        corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
        with pytest.raises(MediaReadError):
            task.predict(corrupt, 0, tpl)
        # 8-bit, stereo, 8 kHz: resampled and mixed down
        t = np.arange(8000 * 2) / 8000
        stereo = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1) * 0.5
        odd = tmp_path / "u8_stereo_8k.wav"
        sf.write(odd, stereo, 8000, subtype="PCM_U8")
        result = task.predict(odd, 0, tpl)
        assert result.num_frames == 59


def test_coefficient_model(reference_dir: Path, tmp_path: Path, speech: np.ndarray) -> None:
    import torch

    from facelib.models.convert.faceformer import build_package

    state = torch.load(reference_dir / f"faceformer_{TAGS['vocaset']}_tiny_seed1.pth", weights_only=True)
    k, d = 51, state["vertice_map.weight"].shape[0]
    gen = torch.Generator().manual_seed(0)
    state["vertice_map_r.weight"] = torch.randn(k, d, generator=gen) * 0.1
    state["vertice_map_r.bias"] = torch.zeros(k)
    state["vertice_map.weight"] = torch.randn(d, k, generator=gen) * 0.1
    ckpt = tmp_path / "coeff.pth"
    torch.save(state, ckpt)
    names = [f"expr{i}" for i in range(50)] + ["jaw"]
    pkg = build_package(
        {"checkpoint": ckpt},
        tmp_path / "pkg",
        dataset="vocaset",
        encoder_heads=4,
        motion="coefficients",
        coefficient_names=names,
        fps=25.0,
    )
    assert pkg.card.outputs["kind"] == "coefficients"
    with Audio2Face(pkg) as task:
        res = task.predict(speech[:32000], 0)
    assert res.vertices is None and res.coefficients is not None
    assert res.fps == 25.0 and res.coefficients.shape[1] == 51
    basis = np.random.default_rng(0).normal(size=(51, 10, 3)).astype(np.float32)
    base = np.ones((10, 3), np.float32)
    np.savez(tmp_path / "basis.npz", basis=basis, template=base)
    with Audio2Face(pkg, basis=tmp_path / "basis.npz") as task:
        verts = task.predict(speech[:32000], 0).vertices
    assert verts is not None
    expected = np.einsum("tk,kvc->tvc", res.coefficients, basis) + base
    assert np.abs(verts - expected).max() < 1e-4


def test_cli_outputs(voca: Path, media_dir: Path, tmp_path: Path) -> None:
    import soundfile as sf

    from facelib.cli import main

    wav = tmp_path / "short.wav"
    audio, rate = sf.read(media_dir / "audio" / "faceformer_test.wav", frames=44100)
    sf.write(wav, audio, rate)
    tpl = str(media_dir / "meshes" / "FLAME_sample.ply")
    base = ["audio2face", "--model", str(voca), "--audio", str(wav), "--template", tpl, "--subject", "1"]
    assert main([*base, "-o", str(tmp_path / "a.npy")]) == 0
    arr = np.load(tmp_path / "a.npy")
    assert arr.shape == (29, 5023, 3) and arr.dtype == np.float32
    assert main([*base, "-o", str(tmp_path / "frames")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "frames" / "7.npy"), arr[7])
    assert main([*base, "-o", str(tmp_path / "seq.obj")]) == 0
    assert len(list((tmp_path / "seq").glob("*.obj"))) == 29
    assert main([*base, "-o", str(tmp_path / "out.mp4"), "--size", "128"]) == 0
    assert (tmp_path / "out.mp4").stat().st_size > 1000
    failed = tmp_path / "failed.npy"
    assert main(["audio2face", "--model", str(voca), "--audio", str(tmp_path / "missing.wav"), "-o", str(failed)]) == 2
    assert not failed.exists() and not list(tmp_path.glob("*.part"))
