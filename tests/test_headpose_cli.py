"""``facelib headpose``, ``facelib eval headpose`` and the converters from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.cli import main
from facelib.io.image import read_image


@pytest.fixture(scope="module")
def pkgs(models_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return str(build_fsanet(models_dir, root / "fsanet")), str(build_ultraface(models_dir, root / "uf"))


def test_headpose_json_and_draw(pkgs, media_dir, tmp_path, capsys):
    model, detector = pkgs
    out = tmp_path / "drawn.png"
    image = media_dir / "images" / "two_people.jpg"
    code = main(["headpose", str(image), "--model", model, "--detector", detector, "--json", "--draw", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout stays pure JSON; the file written is named on stderr
    assert f"wrote {out}" in captured.err
    assert len(data["faces"]) == 2
    assert set(data["faces"][0]) == {"box", "score", "yaw", "pitch", "roll"}
    drawn = read_image(out)
    assert drawn.shape == read_image(image).shape and not np.array_equal(drawn, read_image(image))


def test_headpose_several_images_text(pkgs, media_dir, capsys):
    model, detector = pkgs
    images = [str(media_dir / "images" / n) for n in ("obama.jpg", "two_people.jpg")]
    assert main(["headpose", *images, "--model", model, "--detector", detector]) == 0
    text = capsys.readouterr().out
    assert "obama.jpg: 1 face(s)" in text and "two_people.jpg: 2 face(s)" in text and "yaw" in text


def test_headpose_video(pkgs, media_dir, tmp_path, capsys):
    model, detector = pkgs
    data = (media_dir / "video" / "talking_face_01.mp4").read_bytes()
    short = tmp_path / "short.mp4"
    short.write_bytes(data[: len(data) // 10])
    out = tmp_path / "out.mp4"
    assert main(["headpose", str(short), "--model", model, "--detector", detector, "--json", "--draw", str(out)]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert f"wrote {out}" in captured.err
    assert len(result["frames"]) > 0 and all(len(f["faces"]) == 1 for f in result["frames"])
    assert out.stat().st_size > 0


def test_headpose_errors_exit_2(pkgs, tmp_path, capsys):
    model, detector = pkgs
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert main(["headpose", str(empty), "--model", model, "--detector", detector]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["headpose", str(empty), "--model", model, "--detector", detector, "--variants", "nope"]) == 2


def test_eval_headpose(pkgs, media_dir, capsys):
    model, detector = pkgs
    assert main(["eval", "headpose", str(media_dir / "aflw2000"), "--model", model, "--crop", "landmarks"]) == 0
    text = capsys.readouterr().out
    assert "MAE mean" in text and "images scored: 6" in text
    code = main(["eval", "headpose", str(media_dir / "aflw2000"), "--model", model, "--detector", detector, "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 6 and data["crop"] == "detector" and data["mae_mean"] > 0


def test_convert_commands(models_dir, tmp_path, capsys):
    out = tmp_path / "uf"
    src = models_dir / "ultraface" / "version-RFB-320.onnx"
    assert main(["convert", "ultraface", str(src), "-o", str(out)]) == 0
    assert (out / "facelib.json").is_file()
    fs = tmp_path / "fs"
    args = ["convert", "fsanet", "-o", str(fs)]
    for flag, stem in (
        ("--capsule", "capsule_3_16_2_21_5"),
        ("--var-capsule", "var_capsule_3_16_2_21_5"),
        ("--nos-capsule", "noS_capsule_3_16_2_192_5"),
    ):
        args += [flag, str(models_dir / "fsanet" / f"fsanet_{stem}.onnx")]
    assert main(args) == 0
    assert (fs / "fsanet_ensemble.onnx").is_file()
    assert main(["convert", "fsanet", "-o", str(tmp_path / "none")]) == 2


def test_headpose_unreadable_video_exit_2(pkgs, media_dir, tmp_path, capsys):
    model, detector = pkgs
    broken = tmp_path / "broken.mp4"
    broken.write_bytes((media_dir / "video" / "talking_face_01.mp4").read_bytes()[:64])
    assert main(["headpose", str(broken), "--model", model, "--detector", detector]) == 2
    assert "facelib: error" in capsys.readouterr().err


def test_json_list_writer_streams_valid_json(capsys):
    """Video --json output: each frame printed as it comes, the whole still one JSON document."""
    from facelib.commands._common import _JsonListWriter

    listing = _JsonListWriter({"input": "clip.mp4", "fps": 25.0}, "frames")
    assert capsys.readouterr().out == ""  # nothing before the first frame
    listing.add({"index": 0, "faces": []})
    first = capsys.readouterr().out
    assert first.rstrip().endswith('{"index": 0, "faces": []}')  # already out, before the end
    listing.add({"index": 1, "faces": [{"yaw": 1.5}]})
    listing.close()
    assert json.loads(first + capsys.readouterr().out) == {
        "input": "clip.mp4",
        "fps": 25.0,
        "frames": [{"index": 0, "faces": []}, {"index": 1, "faces": [{"yaw": 1.5}]}],
    }
    empty = _JsonListWriter({"input": "x"}, "frames")
    empty.close()
    assert json.loads(capsys.readouterr().out) == {"input": "x", "frames": []}
