"""MotionTransfer task: streaming equals batch, reference frame, outputs, cropping, bad input, memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from _fomm_helpers import SMALL_CONFIG, UltraFaceAdapter, make_checkpoint

from facelib.cli import main
from facelib.errors import InputError, MediaReadError, NoFaceError
from facelib.io.video import VideoWriter
from facelib.models.convert import fomm as convert
from facelib.processing import fomm
from facelib.tasks.motion_transfer import MotionTransfer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 random FOMM package (converted from a released-layout checkpoint)."""
    work = tmp_path_factory.mktemp("fomm_small")
    ckpt = make_checkpoint(work / "small.pth.tar", SMALL_CONFIG)
    convert.build_package({"checkpoint": ckpt}, work / "pkg", config=SMALL_CONFIG)
    return work / "pkg"


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """12 frames (96x80, odd aspect) of a moving blob on a gradient: uint8 RGB."""
    t = np.arange(12)[:, None, None]
    yy, xx = np.mgrid[0:96, 0:80]
    blob = np.exp(-(((xx[None] - 30 - 2 * t) ** 2 + (yy[None] - 40 - t) ** 2) / 200.0))
    frames = np.stack([blob * 255, xx[None].repeat(12, 0) * 3.0, yy[None].repeat(12, 0) * 2.0], -1)
    return np.clip(frames, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def source_image() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (77, 91, 3), dtype=np.uint8)  # odd size: resized to 64x64


def _batch_reference(mt: MotionTransfer, source: np.ndarray, frames: np.ndarray, best: int) -> np.ndarray:
    """Upstream's procedure on the whole clip: forward and backward passes from ``best``."""
    state = mt.prepare_source(source)
    v, j = mt.keypoints(frames)
    backward, forward = fomm.animation_order(len(frames), best)

    def run(order: list[int]) -> list[np.ndarray]:
        ini = (v[order[0]], j[order[0]])
        norm = fomm.normalize_kp(state.kp, (v[order], j[order]), ini, mt.movement, adapt_scale=mt.adapt_scale)
        return list(mt.generate(state, norm))

    return np.stack(run(backward)[::-1] + run(forward)[1:])


@pytest.mark.parametrize("best", [0, 5])
def test_streaming_equals_upstream_order(
    small_pkg: Path, clip: np.ndarray, source_image: np.ndarray, best: int
) -> None:
    with MotionTransfer(small_pkg, adapt_scale=True, batch_size=1) as mt:
        expected = _batch_reference(mt, source_image, clip, best)
    for batch_size in (1, 4, 12):
        with MotionTransfer(small_pkg, adapt_scale=True, batch_size=batch_size, best_frame=best) as mt:
            got = np.stack(list(mt.animate(source_image, clip)))
        assert got.shape == (12, 64, 64, 3)
        assert np.abs(got - expected).max() < 1e-5


def test_best_frame_auto_uses_landmarks(small_pkg: Path, clip: np.ndarray, source_image: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    base = rng.uniform(5, 60, (30, 2))
    calls: list[int] = []

    def landmarks(image: np.ndarray) -> np.ndarray | None:
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        calls.append(len(calls))
        n = len(calls) - 1  # call 0: source; call k: driving frame k-1
        if n == 0:
            return base
        if n - 1 == 7:
            return base * 0.8 + 3  # same shape: the best frame
        return None if n % 3 == 0 else base + rng.normal(scale=4, size=base.shape)

    with MotionTransfer(small_pkg, best_frame="auto", landmarks_fn=landmarks) as mt:
        assert mt.find_best_frame(source_image, clip) == 7
        calls.clear()
        got = np.stack(list(mt.animate(source_image, clip)))
        expected = _batch_reference(mt, source_image, clip, 7)
    assert np.abs(got - expected).max() < 1e-5


def test_outputs_npy_png_mp4_with_audio(small_pkg: Path, media_dir: Path, tmp_path: Path) -> None:
    video = media_dir / "video" / "talking_face_01.mp4"
    src = media_dir / "images" / "fomm_source_02.png"
    with MotionTransfer(small_pkg, batch_size=8) as mt:
        s_npy = mt.animate_to_file(src, video, tmp_path / "out.npy")
        s_mp4 = mt.animate_to_file(src, video, tmp_path / "out.mp4")
        s_png = mt.animate_to_file(src, np.load(tmp_path / "out.npy", mmap_mode="r")[:5], tmp_path / "pngs")
    arr = np.load(tmp_path / "out.npy")
    assert arr.dtype == np.float32 and arr.shape == (s_npy.frames, 64, 64, 3) and s_npy.frames > 100
    assert arr.min() >= 0 and arr.max() <= 1
    assert s_mp4.audio and s_mp4.frames == s_npy.frames
    from facelib.io.ffmpeg import has_audio_stream
    from facelib.io.video import VideoReader

    assert has_audio_stream(tmp_path / "out.mp4")
    with VideoReader(tmp_path / "out.mp4") as reader:
        assert (reader.width, reader.height) == (64, 64) and abs(reader.fps - s_mp4.fps) < 0.01
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir())[:2] == ["frame_000000.png", "frame_000001.png"]
    assert s_png.frames == 5


def test_crop_and_paste_back_with_real_detector(small_pkg: Path, models_dir: Path, media_dir: Path) -> None:
    detector = UltraFaceAdapter(models_dir / "ultraface" / "version-RFB-320.onnx")
    from facelib.io.image import read_image

    full = read_image(media_dir / "images" / "obama.jpg")
    driving = [full, full[:, ::-1]]
    with MotionTransfer(small_pkg, detector=detector, crop=True, paste_back=True) as mt:
        state = mt.prepare_source(full)
        assert state.box is not None and 0 < state.box.side < max(full.shape[:2]) * 1.5
        frames = list(mt.animate(state, driving))
    assert frames[0].shape == (*full.shape[:2], 3)
    # outside the crop box the full image is untouched
    b = state.box
    outside = np.ones(full.shape[:2], bool)
    outside[max(b.y1, 0) : b.y2, max(b.x1, 0) : b.x2] = False
    np.testing.assert_allclose(frames[0][outside], full[outside] / 255.0, atol=1e-6)
    flat = np.full((120, 120, 3), 128, np.uint8)
    with MotionTransfer(small_pkg, detector=detector, crop=True) as mt, pytest.raises(NoFaceError):
        mt.prepare_source(flat)


def test_bad_input(small_pkg: Path, tmp_path: Path, source_image: np.ndarray) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    with MotionTransfer(small_pkg) as mt:
        with pytest.raises(MediaReadError):
            list(mt.animate(source_image, bad))
        with pytest.raises(MediaReadError, match="no frames"):
            list(mt.animate(source_image, np.zeros((0, 8, 8, 3), np.uint8)))
        with pytest.raises(MediaReadError, match="no frames"):
            list(mt.animate(source_image, iter([])))
        with pytest.raises(InputError):
            list(mt.animate(source_image, np.zeros((4, 8, 8), np.uint8)))
        with pytest.raises(MediaReadError):
            mt.prepare_source(tmp_path / "missing.png")
    with MotionTransfer(small_pkg, best_frame=50) as mt, pytest.raises(InputError, match="past the end"):
        list(mt.animate(source_image, np.zeros((3, 8, 8, 3), np.uint8)))
    with MotionTransfer(small_pkg, best_frame=2) as mt, pytest.raises(InputError, match="twice"):
        list(mt.animate(source_image, iter([np.zeros((8, 8, 3), np.uint8)] * 3)))
    for kwargs in (
        {"movement": "sideways"},
        {"best_frame": -1},
        {"batch_size": 0},
        {"crop": True},
        {"paste_back": True},
    ):
        with pytest.raises(InputError):
            MotionTransfer(small_pkg, **kwargs)  # type: ignore[arg-type]


def test_cli_convert_and_motion(
    tmp_path: Path, reference_dir: Path, media_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = make_checkpoint(tmp_path / "small.pth.tar", SMALL_CONFIG)
    cfg = tmp_path / "small.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(SMALL_CONFIG))
    assert (
        main(["convert", "fomm", str(ckpt), "--config", str(cfg), "-o", str(tmp_path / "pkg"), "--align-corners"]) == 0
    )
    assert json.loads((tmp_path / "pkg" / "facelib.json").read_text())["metadata"]["align_corners"] is True
    args = ["motion", "--model", str(tmp_path / "pkg"), "--source", str(media_dir / "images" / "fomm_source_05.png")]
    video = str(tmp_path / "driving.mp4")
    with VideoWriter(video, 25) as writer:
        for i in range(10):
            writer.write(np.full((70, 90, 3), 20 * i, np.uint8))
    assert (
        main([*args, "--driving", video, "-o", str(tmp_path / "o.npy"), "--best-frame", "3", "--batch-size", "8"]) == 0
    )
    assert np.load(tmp_path / "o.npy", mmap_mode="r").shape[1:] == (64, 64, 3)
    capsys.readouterr()
    assert main([*args, "--driving", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "video not found" in capsys.readouterr().err
    assert main([*args, "--driving", video, "-o", str(tmp_path / "x.mp4"), "--best-frame", "abc"]) == 2


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    from facelib.tasks.motion_transfer import MotionTransfer
    with MotionTransfer(sys.argv[1], batch_size=8) as mt:
        summary = mt.animate_to_file(sys.argv[2], sys.argv[3], sys.argv[4])
    print(summary.frames, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def test_memory_does_not_grow_with_video_length(small_pkg: Path, media_dir: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    paths = {}
    counts = {"short": 40, "long": 400}
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for name, count in counts.items():
        paths[name] = tmp_path / f"{name}.mp4"
        with VideoWriter(paths[name], 25) as writer:
            for i in range(count):
                writer.write(np.roll(noise, i, axis=1) if i % 2 else np.full((256, 256, 3), i % 256, np.uint8))
    peaks = {}
    source = str(media_dir / "images" / "obama.jpg")
    for name, path in paths.items():
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_SCRIPT, str(small_pkg), source, str(path), str(tmp_path / f"{name}.npy")],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        frames, peak_kb = (int(v) for v in out.stdout.split()[-2:])
        peaks[name] = peak_kb
        assert frames == counts[name]
    # holding the long clip would take 400 * 256 * 256 * 3 bytes = 79 MB (315 MB as float)
    print("peak RSS kB", peaks)
    assert peaks["long"] - peaks["short"] < 20_000, peaks


def test_auto_best_frame_uses_facelib_landmarks_from_the_hub(
    small_pkg: Path,
    source_image: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    from facelib.io.image import read_image
    from facelib.io.video import iter_frames

    monkeypatch.setenv("FACELIB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FACELIB_MIRROR", str(media_dir.parent))
    face = read_image(media_dir / "images" / "fomm_source_02_256.png")
    driving = np.stack([f.image for f, _ in zip(iter_frames(media_dir / "video" / "fomm_driving_00.mp4"), range(6))])
    with MotionTransfer(small_pkg, best_frame="auto") as mt:
        assert len(list(mt.animate(face, driving))) == len(driving)
        with pytest.raises(NoFaceError, match="no face landmarks"):
            list(mt.animate(source_image, driving))  # random noise: no face to match


def test_square_crop_outside_the_image_and_paste_back() -> None:
    from facelib.processing.fomm_crop import crop, paste_back, square_box

    image = np.arange(40 * 50 * 3, dtype=np.uint8).reshape(40, 50, 3)
    box = square_box(np.array([-5.0, 10, 15, 30]), margin=0.5, shift_up=0.0)
    assert box.side == 30 and (box.x1, box.y1) == (-10, 5)
    patch = crop(image, box, 16)
    assert patch.shape == (16, 16, 3)
    out = paste_back(image, np.zeros((16, 16, 3), np.uint8), box, feather=0.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[5:35, 0:20] == 0).all() and (out[:, 21:] == image[:, 21:]).all()
    with pytest.raises(InputError):
        square_box(np.array([5.0, 5, 5, 9]))


class _FixedBatchBackend:
    """Wraps ONNX Runtime and declares every input with batch 3, as a static-shape compiler would."""

    @staticmethod
    def make() -> object:
        from facelib.backends.base import Session, TensorSpec
        from facelib.backends.onnxruntime import OnnxRuntimeBackend

        class FixedSession(Session):
            def __init__(self, inner: Session) -> None:
                self.inner = inner
                self.model_path = inner.model_path
                self.batches: list[int] = []

            @property
            def inputs(self) -> tuple[TensorSpec, ...]:
                return tuple(TensorSpec(s.name, (3, *s.shape[1:]), s.dtype) for s in self.inner.inputs)

            @property
            def outputs(self) -> tuple[TensorSpec, ...]:
                return self.inner.outputs

            def run(self, feeds, output_names=None):  # type: ignore[no-untyped-def]
                self.check_feeds(feeds)
                return self.inner.run(feeds, output_names)

        class FixedBackend(OnnxRuntimeBackend):
            name = "fixed-batch-test"

            def load(self, artefact: Path) -> Session:
                return FixedSession(super().load(artefact))

        return FixedBackend()


def test_fixed_batch_backend_gets_padded_batches(small_pkg: Path, clip: np.ndarray, source_image: np.ndarray) -> None:
    with MotionTransfer(small_pkg, batch_size=5) as mt:
        expected = np.stack(list(mt.animate(source_image, clip[:7])))
    with MotionTransfer(small_pkg, backend=_FixedBatchBackend.make(), batch_size=5) as mt:  # type: ignore[arg-type]
        state = mt.prepare_source(source_image)  # the encoder gets the source padded to 3
        assert state.features.shape[0] == 1
        streamed = np.stack(list(mt.animate(state, clip[:7])))  # batches of 5 become 3 + 3 + 1 (padded)
        v, j = mt.keypoints(clip[:3])  # the kp detector is fixed at 3 too
        assert v.shape[0] == 3
        got = mt.generate(state, fomm.normalize_kp(state.kp, (v, j), (v[0], j[0])))
        assert got.shape[0] == 3
        norm = fomm.normalize_kp(state.kp, mt.keypoints(clip[:3]), (v[0], j[0]))
        seven = (np.concatenate([norm[0], norm[0], norm[0][:1]]), np.concatenate([norm[1], norm[1], norm[1][:1]]))
        assert mt.generate(state, seven).shape[0] == 7  # 3 + 3 + 1 padded to 3
    assert np.abs(got - expected[:3]).max() < 1e-5
    assert np.abs(streamed - expected).max() < 1e-5


def test_missing_webcam_is_a_media_error(small_pkg: Path, source_image: np.ndarray, tmp_path: Path) -> None:
    with MotionTransfer(small_pkg) as mt, pytest.raises(MediaReadError, match="webcam"):
        mt.animate_to_file(source_image, 9, tmp_path / "live.mp4")
    assert not (tmp_path / "live.mp4").exists()


def test_default_landmarker_runs_on_the_backend_and_closes(small_pkg: Path, mediapipe_package: Path) -> None:
    # issue 14: the landmarker best_frame="auto" opens lost the backend and was never closed
    mt = MotionTransfer(small_pkg, backend="onnxruntime", best_frame="auto", landmarker=mediapipe_package)
    fn = mt._landmarks()
    assert mt._landmarks() is fn  # opened once
    (landmarker,) = mt._owned
    assert landmarker.backend.name == "onnxruntime" and landmarker._sessions
    assert "MotionTransfer('" in repr(mt) and "movement='relative'" in repr(mt)
    mt.close()
    assert not landmarker._sessions and not mt._owned
