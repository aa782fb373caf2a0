"""FaceLandmarker against Google's ``mediapipe`` package on hard poses, large images and rotations.

References: ``tests/data/mediapipe_refs/*.npz``, made by ``scripts/make_mediapipe_refs.py`` with
``mediapipe==1.2.2`` from the cases of ``tests/mediapipe_cases.py`` (all AFLW2000 images and
portraits of ../shared/assets/media, as they are, scaled up 4x/8x and rotated +-30 degrees, and
the first 30 frames of a real talking-face clip).  IMAGE mode runs with ``num_faces = 4``; VIDEO
mode with ``num_faces = 1`` (the package then tracks the face from its landmarks and smooths
them), on each image as a 4-frame sequence moving a pixel or two per frame, and on the clip.

Landmark errors are in normalised image units.  Bounds (issue 19): landmarks x/y max 5e-4 and
blendshapes mean abs 2e-3 on every face; the facial transformation matrix within 1e-3: its 3x3
rotation-and-scale block absolutely, its translation (in cm, 30-60 cm long here) relative to the
translation's length (1e-3 of 50 cm is 0.5 mm; absolute errors are printed in the test output).

Tracked frames and their floor.  In VIDEO mode each frame's crop comes from the previous frame's
landmarks, and the crop is sampled on a 1/32-pixel grid, so a last-bit difference anywhere grows
from frame to frame.  Google's package shows it against itself: flipping the lowest bit of one
border pixel in every frame moves its landmarks on the profile faces (image00251, image00475) by
up to 5.2e-3 two frames later (``video_self_noise`` in the references; eight pixel positions).
ONNX Runtime and TFLite differ in such last bits, so on ONNX Runtime facelib's tracked frames
(of the image sequences and of the clip) are held to the issue's bounds or to
``SELF_NOISE_FACTOR`` times the package's own spread up to that frame, whichever is larger; the
detector frames to the issue's bounds.  That facelib's pipeline is Google's to float32 rounding
is checked with the package's own TFLite models in place of the ONNX ones
(:func:`test_video_pipeline_is_mediapipes_on_its_own_models`).

The same cases run on the LiteRT backend (``facelib[litert]``: those TFLite models on Google's
runtime, ``test_litert_*``; skipped without the plugin, required on CI), held to the issue's
plain bounds on every face and frame (tracked ones included, no floor), the translation within
``CM_BOUND`` cm absolute, and IMAGE mode and the clip to float32 rounding (``LITERT_EXACT``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mediapipe_cases
import numpy as np
import pytest

from facelib.tasks.face_landmarker import FaceLandmarker

REFS = Path(__file__).parent / "data" / "mediapipe_refs"
#: (landmarks x/y max, blendshapes mean abs, matrix 3x3 block max abs, matrix translation max abs
#: relative to its length): the issue's bounds.
BOUNDS = (5e-4, 2e-3, 1e-3, 1e-3)
#: Tracked frames of the image sequences: the bound is the larger of BOUNDS and this many times
#: the package's own spread on that frame (module docstring).
SELF_NOISE_FACTOR = 3.0


def _sources() -> list[str]:
    return [f"aflw2000/{n}.jpg" for n in mediapipe_cases.AFLW] + [f"images/{n}" for n in mediapipe_cases.PORTRAITS]


def _errors(landmarks: np.ndarray, size: tuple[int, int], blend: np.ndarray, matrix: np.ndarray, ref: tuple) -> tuple:
    w, h = size
    lm = landmarks / np.array([w, h, w], dtype=np.float64)
    diff = np.abs(matrix.astype(np.float64) - ref[2])
    return (
        float(np.abs(lm[:, :2] - ref[0][:, :2]).max()),
        float(np.abs(blend - ref[1]).mean()),
        float(diff[:3, :3].max()),
        float(diff[:3, 3].max() / np.linalg.norm(ref[2][:3, 3])),
        float(diff[:3, 3].max()),  # absolute, cm (held only on LiteRT: CM_BOUND)
    )


def _describe(lm: float, bs: float, mat: float, trans: float, cm: float = -1.0) -> str:
    return f"landmarks {lm:.1e} blendshapes {bs:.1e} matrix {mat:.1e} translation {trans:.1e} ({cm:.1e} cm)"


def _image_landmarker(package: Path, backend: str = "onnxruntime") -> FaceLandmarker:
    # second_look=False: exactly Google's image-mode pipeline (facelib's second look only adds faces
    # the package misses; tests/test_first_hour_api.py covers it).
    return FaceLandmarker(
        package, num_faces=4, output_blendshapes=True, output_transform=True, second_look=False, backend=backend
    )


@pytest.fixture(scope="module")
def image_landmarker(mediapipe_package: Path) -> FaceLandmarker:
    with _image_landmarker(mediapipe_package) as lm:
        yield lm


@pytest.mark.parametrize("source", _sources())
def test_matches_mediapipe_package(
    source: str, image_landmarker: FaceLandmarker, mediapipe_package: Path, media_dir: Path
) -> None:
    _check_source(source, image_landmarker, mediapipe_package, media_dir, "onnxruntime", BOUNDS)


def _check_source(
    source: str,
    image_landmarker: FaceLandmarker,
    package: Path,
    media_dir: Path,
    backend: str,
    image_bounds: tuple,
    tracked_floor: bool = True,
    cm_bound: float = np.inf,
) -> None:
    """IMAGE mode within ``image_bounds`` on every face; VIDEO mode on the 4-frame sequences within
    BOUNDS on the detector frame and, on tracked frames, max(BOUNDS, SELF_NOISE_FACTOR x the
    package's spread) (``tracked_floor``) or BOUNDS; the translation within ``cm_bound`` cm."""
    ref = np.load(REFS / f"{Path(source).name.replace('.', '_')}.npz")
    assert str(ref["mediapipe_version"]) == "1.2.2"
    cases = [c for c in mediapipe_cases.cases(media_dir) if c.source == source]
    assert {f"{c.variant}/digest" for c in cases} <= set(ref.files)
    failures = []
    for case in cases:
        v = case.variant
        rgb = case.image(media_dir)
        assert mediapipe_cases.digest(rgb) == str(ref[f"{v}/digest"]), f"{case.key}: input pixels changed"
        size = (rgb.shape[1], rgb.shape[0])
        # IMAGE mode
        result = image_landmarker.detect(rgb)
        expected = ref[f"{v}/image_landmarks"]
        assert len(result.faces) == len(expected), f"{case.key}: {len(result.faces)} faces, package {len(expected)}"
        for i, face in enumerate(result.faces):
            assert face.blendshapes is not None and face.transform is not None
            refs = (expected[i], ref[f"{v}/image_blendshapes"][i], ref[f"{v}/image_matrix"][i])
            lm, bs, mat, trans, cm = _errors(face.landmarks, size, face.blendshapes, face.transform, refs)
            print(f"{case.key} image face {i} ({backend}): {_describe(lm, bs, mat, trans, cm)}")
            if any(e > b for e, b in zip((lm, bs, mat, trans, cm), (*image_bounds, cm_bound))):
                failures.append(f"{case.key} image face {i}: {lm:.1e} {bs:.1e} {mat:.1e} {trans:.1e}")
        # VIDEO mode: detector on frame 0, then tracked from landmarks, One-Euro smoothing
        frames = [mediapipe_cases.video_frame(rgb, t) for t in range(mediapipe_cases.VIDEO_FRAMES)]
        with _video_landmarker(package, backend) as video:
            errors = _video_errors(video, frames, mediapipe_cases.video_timestamps(), ref, f"{v}/", case.key)
        # the package's spread so far: a difference, once there, is carried on by the tracking
        noise = np.maximum.accumulate(ref[f"{v}/video_self_noise"], axis=0)
        for t, (lm, bs, mat, trans, cm) in enumerate(errors):
            if lm < 0:
                continue
            floor = t > 0 and tracked_floor
            bounds = tuple(np.maximum(BOUNDS, SELF_NOISE_FACTOR * noise[t])) if floor else BOUNDS
            if any(e > b for e, b in zip((lm, bs, mat, trans, cm), (*bounds, cm_bound))):
                failures.append(f"{case.key} video frame {t}: {lm:.1e} {bs:.1e} {mat:.1e} {trans:.1e}")
    assert not failures, "\n".join(failures)


def _video_landmarker(package: Path, backend: str = "onnxruntime") -> FaceLandmarker:
    return FaceLandmarker(
        package,
        mode="video",
        num_faces=1,
        smoothing=True,
        output_blendshapes=True,
        output_transform=True,
        backend=backend,
    )


def _video_errors(
    video: FaceLandmarker, frames: list[np.ndarray], timestamps: list[int], ref: Any, prefix: str, name: str
) -> list[tuple[float, float, float, float]]:
    """Run ``frames`` through a VIDEO-mode landmarker; per frame the errors of :func:`_errors`
    against the ``<prefix>video_*`` references (all -1 on a frame where neither finds a face)."""
    found = ref[f"{prefix}video_found"]
    out = []
    for t, (rgb, ts) in enumerate(zip(frames, timestamps)):
        frame = video.detect_for_video(rgb, ts)
        assert len(frame.faces) == int(found[t]), f"{name} frame {t}: {len(frame.faces)} faces"
        if not found[t]:
            out.append((-1.0, -1.0, -1.0, -1.0, -1.0))
            continue
        face = frame.faces[0]
        assert face.blendshapes is not None and face.transform is not None
        refs = tuple(ref[f"{prefix}video_{k}"][t] for k in ("landmarks", "blendshapes", "matrix"))
        errors = _errors(face.landmarks, (rgb.shape[1], rgb.shape[0]), face.blendshapes, face.transform, refs)
        print(f"{name} video frame {t}: {_describe(*errors)}")
        out.append(errors)
    return out


@pytest.fixture(scope="module")
def clip(media_dir: Path) -> tuple[list[np.ndarray], list[int], Any]:
    """The real clip's frames, timestamps (ms) and the package's VIDEO-mode outputs on them."""
    ref = np.load(REFS / f"{Path(mediapipe_cases.CLIP).name.replace('.', '_')}.npz")
    assert str(ref["mediapipe_version"]) == "1.2.2"
    frames, timestamps = mediapipe_cases.clip_frames(media_dir)
    assert mediapipe_cases.digest(np.stack(frames)) == str(ref["digest"]), "clip frames changed"
    assert timestamps == ref["timestamps"].tolist()
    return frames, timestamps, ref


def test_clip_matches_mediapipe_package(clip: tuple, mediapipe_package: Path) -> None:
    """The first 30 frames of a real talking-face clip, VIDEO mode, on ONNX Runtime: the issue's
    bounds on the detector frame, on tracked frames the larger of them and SELF_NOISE_FACTOR x the
    package's own spread so far (as the image sequences; worst measured 5.1e-4 landmarks on frame 8,
    where the package moves by 7.3e-4 against itself)."""
    frames, timestamps, ref = clip
    with _video_landmarker(mediapipe_package) as video:
        errors = _video_errors(video, frames, timestamps, ref, "", mediapipe_cases.CLIP)
    worst = np.max(np.array(errors), axis=0)
    print(f"{mediapipe_cases.CLIP} worst over {len(frames)} frames: {_describe(*worst)}")
    noise = np.maximum.accumulate(ref["video_self_noise"], axis=0)
    for t, errs in enumerate(errors):
        bounds = BOUNDS if t == 0 else tuple(np.maximum(BOUNDS, SELF_NOISE_FACTOR * noise[t]))
        assert all(e <= b for e, b in zip(errs, bounds)), f"frame {t}: {_describe(*errs)}"


class _TfliteSession:
    """Runs one of the ``.task``'s own TFLite models where facelib runs its ONNX conversion.

    A test stand-in for a facelib session (``inputs``/``outputs`` are the ONNX session's;
    ``run`` feeds one image at a time to tensorflow's TFLite interpreter).  The interpreter's
    outputs are the ONNX outputs named for them in the package card's TFLite record
    (``metadata["tflite"][role]["outputs"]``, :mod:`facelib.models.tflite`).
    """

    def __init__(self, model: bytes, onnx: Any, outputs: dict[str, str]) -> None:
        import tensorflow as tf

        self._interpreter = tf.lite.Interpreter(model_content=model)
        self._interpreter.allocate_tensors()
        self._onnx = onnx
        self._outputs = outputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._onnx, name)

    def run(self, feeds: dict[str, np.ndarray], output_names: list[str] | None = None) -> dict[str, np.ndarray]:
        ((name, batch),) = feeds.items()
        if len(batch) > 1:
            parts = [self.run({name: batch[i : i + 1]}, output_names) for i in range(len(batch))]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        it = self._interpreter
        it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(batch, np.float32))
        it.invoke()
        produced = {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}
        names = output_names or [o.name for o in self._onnx.outputs]
        return {key: produced[self._outputs[key]] for key in names}


#: Issue-bound-free check of the VIDEO pipeline itself (see the test below): landmarks x/y max,
#: blendshapes mean abs, matrix 3x3 block max abs, translation max abs relative to its length.
SAME_MODELS = (2e-5, 1e-4, 1e-4, 1e-4)
#: Frames of the clip held to SAME_MODELS: all of them (tensorflow's TFLite interpreter gives
#: LiteRT's bits, and the detector scores and ROI rotations are rounded as MediaPipe rounds them).
SAME_MODELS_FRAMES = mediapipe_cases.CLIP_FRAMES


@pytest.mark.convert
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_video_pipeline_is_mediapipes_on_its_own_models(clip: tuple, mediapipe_package: Path, shared: Path) -> None:
    """With the ``.task``'s TFLite models in place of the ONNX ones, facelib's VIDEO mode gives the
    package's results over the clip to float32 rounding.

    This isolates everything facelib re-implements on tracked frames (the next ROI from the
    landmarks, the crop, the projection, One-Euro smoothing with the frame timestamps, the
    blendshape input, the facial geometry) from the one thing it cannot reproduce bit for bit,
    ONNX Runtime's arithmetic: measured 1.2e-7 in landmarks, against up to 5.1e-4 with ONNX Runtime.
    """
    import zipfile

    pytest.importorskip("tensorflow")
    frames, timestamps, ref = clip
    task = shared / "assets" / "models" / "mediapipe" / "face_landmarker.task"
    with zipfile.ZipFile(task) as bundle:
        models = {
            "detector": bundle.read("face_detector.tflite"),
            "landmarks": bundle.read("face_landmarks_detector.tflite"),
            "blendshapes": bundle.read("face_blendshapes.tflite"),
        }
    with _video_landmarker(mediapipe_package) as video:
        record = video.package.card.metadata["tflite"]
        swapped = {
            role: _TfliteSession(model, video._session(role), record[role]["outputs"]) for role, model in models.items()
        }
        video._session = swapped.__getitem__  # type: ignore[method-assign]
        n = SAME_MODELS_FRAMES
        errors = _video_errors(video, frames[:n], timestamps[:n], ref, "", f"{mediapipe_cases.CLIP} (TFLite)")
    worst = np.max(np.array(errors), axis=0)
    print(f"{mediapipe_cases.CLIP} (TFLite) worst over {n} frames: {_describe(*worst)}")
    assert all(e <= b for e, b in zip(worst, SAME_MODELS)), _describe(*worst)


# -- LiteRT (facelib[litert]): the .task's own TFLite models on Google's runtime -----------------

#: LiteRT, IMAGE mode (every face) and the clip (every frame): landmarks x/y max, blendshapes mean
#: abs, matrix 3x3 block, relative translation.  The .task's own models on Google's runtime and
#: facelib's float32 pipeline give the package's numbers to float32 rounding: measured worst
#: 4.6e-8, 0, 1.2e-6, 1.7e-6 (ONNX Runtime: 5.6e-5, 1.1e-4, 1.8e-4, 7.7e-5).
LITERT_EXACT = (1e-6, 1e-5, 1e-5, 1e-5)
#: LiteRT: the translation's largest absolute error, cm, in both modes (measured 1.8e-4).
CM_BOUND = 1e-3


@pytest.fixture(scope="module")
def litert() -> str:
    """The LiteRT backend's name; skipped where the plugin is not installed (required on CI)."""
    import os

    from facelib.backends import list_backends

    info = next((b for b in list_backends() if b.name == "litert"), None)
    if info is None or not info.available:
        why = info.reason if info is not None else "facelib-litert is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"LiteRT backend needed on CI: {why}")
        pytest.skip(f"LiteRT backend: {why} (pip install 'facelib[litert]')")
    return "litert"


@pytest.fixture(scope="module")
def litert_image_landmarker(mediapipe_package: Path, litert: str) -> FaceLandmarker:
    with _image_landmarker(mediapipe_package, litert) as lm:
        yield lm


@pytest.mark.parametrize("source", _sources())
def test_litert_matches_mediapipe_package(
    source: str, litert_image_landmarker: FaceLandmarker, mediapipe_package: Path, media_dir: Path, litert: str
) -> None:
    """On LiteRT: IMAGE mode within LITERT_EXACT on every face; VIDEO mode within the issue's
    bounds on every frame, tracked ones included (no floor from the package's own spread); the
    translation within CM_BOUND cm everywhere."""
    _check_source(source, litert_image_landmarker, mediapipe_package, media_dir, litert, LITERT_EXACT, False, CM_BOUND)


def test_litert_clip_matches_mediapipe_package(clip: tuple, mediapipe_package: Path, litert: str) -> None:
    """The real clip on LiteRT, VIDEO mode: LITERT_EXACT and CM_BOUND on every frame."""
    frames, timestamps, ref = clip
    with _video_landmarker(mediapipe_package, litert) as video:
        errors = _video_errors(video, frames, timestamps, ref, "", f"{mediapipe_cases.CLIP} (LiteRT)")
    worst = np.max(np.array(errors), axis=0)
    print(f"{mediapipe_cases.CLIP} (LiteRT) worst over {len(frames)} frames: {_describe(*worst)}")
    assert all(e <= b for e, b in zip(worst, (*LITERT_EXACT, CM_BOUND))), _describe(*worst)
