"""Reading images of every common kind into RGB uint8, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from facelib.errors import InputError, MediaReadError
from facelib.io.image import read_image, to_rgb_uint8, write_image


def test_reads_real_jpeg_as_rgb(media_dir: Path) -> None:
    path = media_dir / "images" / "obama.jpg"
    image = read_image(path)
    bgr = cv2.imread(str(path))
    assert image.dtype == np.uint8 and image.shape == bgr.shape
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])


def test_grayscale_rgba_and_16bit_files(tmp_path: Path) -> None:
    gray = np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    out = read_image(tmp_path / "gray.png")
    assert out.shape == (48, 64, 3) and (out[:, :, 0] == gray).all()

    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 0] = 200  # blue
    bgra[..., 3] = 128
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    out = read_image(tmp_path / "rgba.png")
    assert out.shape == (10, 12, 3) and (out[..., 2] == 200).all() and (out[..., 0] == 0).all()

    deep = np.full((5, 6, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert (read_image(tmp_path / "deep.png") == 255).all()


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 50])
def test_empty_and_corrupt_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(MediaReadError, match=r"bad\.jpg"):
        read_image(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaReadError, match="not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(MediaReadError, match="directory"):
        read_image(tmp_path)


def test_truncated_jpeg(media_dir: Path, tmp_path: Path) -> None:
    data = (media_dir / "images" / "obama.jpg").read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[:200])
    with pytest.raises(MediaReadError):
        read_image(path)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 5, 3), np.uint8),
        np.zeros((5, 5, 2), np.uint8),
        np.zeros(5, np.uint8),
        np.zeros((4, 4, 3), np.complex64),
        np.full((4, 4, 3), np.nan, np.float32),
    ],
)
def test_bad_arrays(array: np.ndarray) -> None:
    with pytest.raises(InputError):
        to_rgb_uint8(array)


def test_huge_image_refused() -> None:
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(20000, 20000, 3), strides=(0, 0, 0))
    with pytest.raises(InputError, match="pixel limit"):
        to_rgb_uint8(huge)


@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 8), st.integers(1, 8), st.sampled_from([1, 3, 4])),
        elements=st.floats(0, 1, width=32),
    )
)
def test_float_images_map_to_uint8_range(array: np.ndarray) -> None:
    out = to_rgb_uint8(array)
    assert out.dtype == np.uint8 and out.shape == (*array.shape[:2], 3)
    np.testing.assert_allclose(out[..., 0], np.rint(array[..., 0] * 255), atol=0)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (7, 9, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), image)
