"""``facelib convert`` as a new user types it (issue 20): one spelling for outputs and checkpoints
across converters (old spellings kept), whole-package replacement, and mistakes caught at convert time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from headpose_support import build_ultraface

from facelib.cli import main


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_convert_faceboxes_spellings_and_whole_package_replacement(models_dir: Path, tmp_path: Path, capsys) -> None:
    weights = str(models_dir / "faceboxes" / "FaceBoxesProd.pth")
    out = tmp_path / "fb"
    assert main(["convert", "faceboxes", weights, "-o", str(out)]) == 0
    first = _names(out)
    (out / "stale-from-an-older-conversion.onnx").write_bytes(b"old")
    assert main(["convert", "faceboxes", "--weights", weights, "--output", str(out)]) == 0  # the old spelling
    assert _names(out) == first  # the older conversion's extra file is gone, not mixed in
    assert _names(tmp_path) == ["fb"]  # no partial or old folders left beside it
    capsys.readouterr()
    assert main(["convert", "faceboxes", weights, "--weights", str(tmp_path / "other.pth"), "-o", str(out)]) == 2
    assert "given twice" in capsys.readouterr().err


def test_convert_refuses_a_folder_that_is_not_a_package(models_dir: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "my-photos").mkdir()
    (tmp_path / "my-photos" / "holiday.jpg").write_bytes(b"precious")
    source = str(models_dir / "ultraface" / "version-RFB-320.onnx")
    assert main(["convert", "ultraface", source, "-o", str(tmp_path / "my-photos")]) == 2
    assert "not a model package" in capsys.readouterr().err
    assert _names(tmp_path / "my-photos") == ["holiday.jpg"]


def test_convert_mediapipe_takes_o_like_the_others(models_dir: Path, tmp_path: Path) -> None:
    mp = models_dir / "mediapipe"
    prebuilt = ["--detector", str(mp / "face_detector.onnx"), "--landmarks", str(mp / "face_landmarks_detector.onnx")]
    prebuilt += ["--blendshapes", str(mp / "face_blendshapes.onnx")]
    assert main(["convert", "mediapipe", str(mp / "face_landmarker.task"), "-o", str(tmp_path / "a"), *prebuilt]) == 0
    assert main(["convert", "mediapipe", str(mp / "face_landmarker.task"), str(tmp_path / "b"), *prebuilt]) == 0
    assert _names(tmp_path / "a") == _names(tmp_path / "b") and "facelib.json" in _names(tmp_path / "a")


def _tiny_regressor(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("weights", TensorProto.FLOAT, ["N", 52])
    w = numpy_helper.from_array(np.full((192, 52), 0.001, np.float32), "w")
    nodes = [helper.make_node("Flatten", ["image"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["weights"])]
    model = helper.make_model(
        helper.make_graph(nodes, "r", [x], [y], initializer=[w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    onnx.save(model, path)
    return path


def test_convert_regressor_refuses_an_ultraface_detector(models_dir: Path, tmp_path: Path, capsys) -> None:
    from facelib.processing.arkit import ARKIT_NAMES

    ultraface = build_ultraface(models_dir, tmp_path / "uf")
    regressor = _tiny_regressor(tmp_path / "r.onnx")
    argv = ["convert", "regressor", str(regressor), "--detector", str(ultraface), "-o", str(tmp_path / "pkg")]
    argv += ["--input-size", "8", "8", "--names", ",".join(ARKIT_NAMES)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "variant 'RFB-320'" in err and "bundle faceboxes detectors" in err
    assert not (tmp_path / "pkg").exists()


def test_convert_fomm_says_which_config_it_assumed(reference_dir: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    checkpoint = reference_dir / "fomm_tiny_seed1.pth.tar"
    assert main(["convert", "fomm", str(checkpoint), "-o", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert "vox-256 preset, assumed because no config was given" in err and "--config" in err
    assert not (tmp_path / "pkg").exists()


def test_audio_from_m4a_and_from_a_video_track(media_dir: Path, tmp_path: Path) -> None:
    """Speech in .m4a (AAC) or in an .mp4's audio track is read through ffmpeg (the media extra)."""
    import subprocess

    from facelib.errors import MediaReadError
    from facelib.io.audio import audio_info, iter_audio_blocks, load_audio
    from facelib.io.ffmpeg import find_ffmpeg

    ffmpeg = find_ffmpeg()
    if ffmpeg is None:
        pytest.skip("needs ffmpeg (pip install 'facelib[media]')")
    wav = media_dir / "audio" / "jfk_16k_mono.wav"
    m4a = tmp_path / "speech.m4a"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(wav), "-t", "2", "-c:a", "aac", str(m4a)], check=True)
    samples = load_audio(m4a)
    reference = load_audio(wav)[: len(samples)]
    assert abs(len(samples) - 32000) < 1600 and audio_info(m4a).duration == pytest.approx(2.0, abs=0.1)
    assert np.corrcoef(samples[2000:30000], reference[2000:30000])[0, 1] > 0.95  # the same speech
    blocks = list(iter_audio_blocks(m4a, block_seconds=0.5))
    assert sum(len(b) for b in blocks) == len(samples)
    assert {len(b) for b in blocks[:-1]} == {8000}  # read from ffmpeg's pipe 0.5 s at a time, never whole
    np.testing.assert_array_equal(np.concatenate(blocks), samples)
    first = iter_audio_blocks(m4a, block_seconds=0.5)
    np.testing.assert_array_equal(next(first), samples[:8000])
    first.close()  # stopping early stops ffmpeg, with no error
    track = load_audio(media_dir / "video" / "talking_face_01.mp4")
    assert track.ndim == 1 and len(track) > 16000 and np.abs(track).max() > 0.01
    with pytest.raises(MediaReadError, match="has no audio track"):
        load_audio(media_dir / "video" / "fomm_driving_00.mp4")
    with pytest.raises(MediaReadError, match="is a directory"):
        load_audio(tmp_path)
