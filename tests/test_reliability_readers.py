"""Property-based robustness of the file readers: any bytes give a frame/image or a clear error."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facelib.errors import FacelibError
from facelib.io.image import read_image
from facelib.io.video import iter_frames
from facelib.models.card import ModelCard
from facelib.models.package import read_onnx_specs

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".jpg", ".png", ".bmp", ".webp", ".tif"]))
def test_image_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except FacelibError:
        return
    assert image.ndim == 3 and image.shape[2] == 3


@FUZZ
@given(data=st.binary(max_size=2048))
def test_onnx_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.onnx"
    path.write_bytes(data)
    try:
        read_onnx_specs(path)
    except FacelibError:
        return


@FUZZ
@given(data=st.binary(max_size=1024))
def test_video_reader_on_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(data)
    try:
        for frame in iter_frames(path):
            assert frame.image.ndim == 3
    except FacelibError:
        return


@FUZZ
@given(text=st.text(max_size=300))
def test_card_reader_on_arbitrary_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "facelib.json"
    path.write_text(text, encoding="utf-8")
    try:
        ModelCard.read(path)
    except FacelibError:
        return
