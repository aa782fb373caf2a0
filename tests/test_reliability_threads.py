"""Threads sharing one task (and so its sessions) get exactly the results of serial runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from headpose_support import build_fsanet, build_ultraface

from facelib.io.image import read_image
from facelib.tools.task_tools import result_fields

THREADS = 4


def _images(media_dir: Path) -> list[np.ndarray]:
    names = ["images/obama.jpg", "images/two_people.jpg", "images/obama2.jpg", "images/fomm_source_02.png"]
    names += [f"aflw2000/image{n}.jpg" for n in ("00050", "00081", "00251", "00430")]
    return [read_image(media_dir / n) for n in names]


def _same(a: object, b: object) -> None:
    fa, fb = result_fields([a]), result_fields([b])
    assert fa.keys() == fb.keys()
    for key in fa:
        np.testing.assert_array_equal(fa[key], fb[key], err_msg=key)


def _shared_by_threads(call, images: list[np.ndarray]) -> None:  # type: ignore[no-untyped-def]
    serial = [call(im) for im in images]
    jobs = [i for _ in range(3) for i in range(len(images))]  # every image several times, interleaved
    with ThreadPoolExecutor(THREADS) as pool:
        parallel = list(pool.map(lambda i: (i, call(images[i])), jobs))
    for i, result in parallel:
        _same(result, serial[i])


def test_headpose_shared_by_threads(models_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    from facelib.tasks.head_pose import HeadPose

    pose, det = build_fsanet(models_dir, tmp_path / "fsanet"), build_ultraface(models_dir, tmp_path / "ultraface")
    with HeadPose(pose, detector=det, backend="onnxruntime") as task:
        _shared_by_threads(task.predict, _images(media_dir))


def test_blendshape_capture_image_mode_shared_by_threads(mediapipe_package: Path, media_dir: Path) -> None:
    from facelib.tasks.blendshapes import BlendshapeCapture

    with BlendshapeCapture(mediapipe_package, mode="image", num_faces=2) as capture:
        _shared_by_threads(lambda im: capture.process(im).faces, _images(media_dir))


@pytest.mark.parametrize("mode", ["image"])
def test_face_landmarker_shared_by_threads(mediapipe_package: Path, media_dir: Path, mode: str) -> None:
    from facelib.tasks.face_landmarker import FaceLandmarker

    with FaceLandmarker(mediapipe_package, mode=mode, num_faces=2, output_blendshapes=True) as lm:
        _shared_by_threads(lm.detect, _images(media_dir))


def test_motion_transfer_shared_by_threads(tmp_path: Path, media_dir: Path) -> None:
    pytest.importorskip("torch")  # to make and convert the small checkpoint
    from _fomm_helpers import SMALL_CONFIG, make_checkpoint

    from facelib.models.convert import fomm as convert
    from facelib.tasks.motion_transfer import MotionTransfer

    ckpt = make_checkpoint(tmp_path / "small.pth.tar", SMALL_CONFIG)
    convert.build_package({"checkpoint": ckpt}, tmp_path / "pkg", config=SMALL_CONFIG)
    sources = _images(media_dir)[:4]
    driving = np.stack(_images(media_dir)[4:])  # four 450x450 frames
    with MotionTransfer(tmp_path / "pkg", backend="onnxruntime", batch_size=3) as task:
        _shared_by_threads(lambda src: np.stack(list(task.animate(src, driving))), sources)


def test_audio2face_shared_by_threads(reference_dir: Path, media_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("facelib.tasks.audio2face")  # merged from the audio2face branch
    pytest.importorskip("torch")  # to convert the tiny checkpoint
    helpers = pytest.importorskip("faceformer_helpers")  # tests/ of the audio2face branch
    convert, reference = helpers.convert, helpers.reference
    from facelib.io.audio import load_audio
    from facelib.tasks.audio2face import Audio2Face

    pkg = convert(reference_dir, tmp_path / "faceformer", "vocaset")
    template = reference(reference_dir, "vocaset")["template"]
    speech = load_audio(media_dir / "audio" / "jfk_16k_mono.wav")
    clips = [speech[i * 8000 : i * 8000 + 16000] for i in range(4)]  # 1 s each, different
    with Audio2Face(pkg, backend="onnxruntime") as task:
        _shared_by_threads(lambda clip: task.predict(clip, 0, template).vertices, clips)
