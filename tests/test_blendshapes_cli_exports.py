"""``facelib blendshapes --csv / --livelink``: the CLI writes Live Link CSV and streams UDP packets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelib.cli import main
from facelib.io.livelink import LiveLinkReceiver, read_livelink_csv
from facelib.processing.arkit import ARKIT_NAMES
from facelib.tasks.blendshapes import BlendshapeCapture


def test_csv_and_udp_from_an_image(
    mediapipe_package: Path, media_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = media_dir / "images" / "obama.jpg"
    with BlendshapeCapture(mediapipe_package) as capture:
        expected = capture.process(image).faces[0].blendshapes
    out = tmp_path / "take.csv"
    with LiveLinkReceiver() as receiver:
        code = main(
            [
                "blendshapes", str(image), "--model", str(mediapipe_package),
                "--csv", str(out), "--livelink", f"127.0.0.1:{receiver.port}",
            ]
        )  # fmt: skip
        assert code == 0
        packet = receiver.receive(timeout=5)
    np.testing.assert_allclose(packet.blendshapes, expected, atol=1e-6)
    take = read_livelink_csv(out)
    assert take.blendshapes.shape == (1, 52)
    np.testing.assert_allclose(take.blendshapes[0], expected, atol=1e-6)
    assert expected[ARKIT_NAMES.index("tongueOut")] == 0


def test_csv_from_a_video(mediapipe_package: Path, media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "video.csv"
    video = media_dir / "video" / "talking_face_01.mp4"
    args = ["blendshapes", str(video), "--model", str(mediapipe_package), "--csv", str(out), "--max-frames", "12"]
    assert main(args) == 0
    take = read_livelink_csv(out)
    assert take.blendshapes.shape == (12, 52)
    assert take.blendshapes[:, ARKIT_NAMES.index("jawOpen")].max() > 0


def test_bad_livelink_address(mediapipe_package: Path, media_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = media_dir / "images" / "obama.jpg"
    assert main(["blendshapes", str(image), "--model", str(mediapipe_package), "--livelink", "nowhere"]) == 2
    assert "HOST:PORT" in capsys.readouterr().err
